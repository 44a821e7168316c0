//! Events too large to send whole, against moto: over 64 KB a webhook gets
//! the event thin, over EventBridge's 256 KB the bus gets it thin too
//! (type, ids, sequence and the API path of the full view, which answers).

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::{self, TestApp};
use crate::events::{bus_to_queue, received, sdk};
use account_connect::config::Config;
use account_connect::domain::{OutboxItem, Permissions};
use account_connect::events::Dispatcher;
use account_connect::store::DynStore;
use serde_json::{json, Value};
use std::time::Duration;

const ACCOUNT: &str = "123456789012"; // moto's account

/// A manual connection with every product and integration, connected to
/// a fresh role in moto: the connect's answer and the role's policies.
async fn connected_with_everything(app: &TestApp, token: &str) -> (Value, Vec<String>) {
    let account = format!("act-{}", account_connect::ids::random_token(4));
    let body = json!({"accountId": account, "partition": "aws", "permissions": Permissions::everything(),
        "awsAccountId": ACCOUNT, "method": "manual"});
    let (status, c) = app.create_connection(token, &body).await;
    assert_eq!(status, 201, "{c}");
    let iam = aws_sdk_iam::Client::new(&sdk().await);
    let (role, policies) = common::connection_role(&iam, &c).await;
    let (status, body) = app.connect_role(token, c["id"].as_str().unwrap(), &role).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("connected")), "{body}");
    (body, policies)
}

/// The stored outbox item of a connection with everything, its last
/// report grown by `padding` bytes (a report as long as a future catalog
/// might make it; the view is otherwise the connection's own).
async fn item_with_report(store: &DynStore, id: &str, padding: usize) -> OutboxItem {
    let mut item = store
        .undelivered(10)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.connection_id.as_str() == id)
        .unwrap();
    let report = item.connection.report.as_mut().unwrap();
    report["notes"] = json!("n".repeat(padding));
    item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_over_64_kb_reach_webhooks_thin_and_over_256_kb_the_bus_thin_too() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let (bus, bus_queue) = bus_to_queue().await;
    let config = Config {
        event_bus: Some(bus),
        webhook_allow_hosts: vec![rx.authority.clone()],
        ..common::test_config()
    };
    let (app, state, store) = common::spawn_with_store(config).await;
    let token = common::token("org-a", None);
    let (status, _) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    assert_eq!(status, 201);
    let (a, _) = connected_with_everything(&app, &token).await;
    let (b, _) = connected_with_everything(&app, &token).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    // 100 KB: too large for a webhook, not for the bus; 300 KB: for both.
    let items = [
        item_with_report(&store, a_id, 100 * 1024).await,
        item_with_report(&store, b_id, 300 * 1024).await,
    ];
    let dispatcher = Dispatcher::for_services(&state).await;
    let out = dispatcher.deliver(&items).await.unwrap();
    assert_eq!((out.delivered, out.held_for_bus), (2, 0), "{out:?}");
    assert!(store.undelivered(10).await.unwrap().is_empty());

    // The bus: the first whole, the second thin.
    let mut on_bus = received(&bus_queue, 2, Duration::from_secs(10)).await;
    assert_eq!(on_bus.len(), 2, "{}", on_bus.len());
    on_bus.sort_by_key(|e| e["detail"]["data"]["report"].is_null());
    let (whole, thin) = (&on_bus[0]["detail"], &on_bus[1]["detail"]);
    assert_eq!(whole["data"]["id"], a_id);
    assert_eq!(whole["data"]["report"]["notes"].as_str().unwrap().len(), 100 * 1024);
    assert!(whole.to_string().len() > 64 * 1024);
    assert_thin(&app, &token, thin, &b).await;

    // The webhook: both thin.
    for d in state.webhooks.due(10).await.unwrap() {
        dispatcher.attempt(d).await.unwrap();
    }
    let got = rx.got();
    assert_eq!(got.len(), 2);
    for g in &got {
        let body = g.json();
        let c = if body["data"]["id"] == a_id { &a } else { &b };
        assert_eq!(g.id(), format!("msg_{}_{}", c["id"].as_str().unwrap(), c["version"]));
        assert_thin(&app, &token, &body, c).await;
    }
}

/// `event` is `c`'s `connection.connected` sent thin: its type, id,
/// sequence and the path that answers the view.
async fn assert_thin(app: &TestApp, token: &str, event: &Value, c: &Value) {
    assert_eq!(event["type"], "connection.connected", "{event}");
    assert!(event["timestamp"].is_string(), "{event}");
    // As the catalogue documents a thin event (the `webhooks` section).
    crate::common::schemas::assert_documented(std::slice::from_ref(event));
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        event["data"],
        json!({"thin": true, "id": id, "sequence": c["version"], "url": format!("/v1/connections/{id}")}),
    );
    assert!(event.to_string().len() < 1024, "{event}");
    let view = app.get_json(event["data"]["url"].as_str().unwrap(), Some(token)).await;
    assert_eq!(view["id"], id, "{view}");
    assert_eq!(view["version"], c["version"], "{view}");
}
