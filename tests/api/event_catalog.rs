//! The event catalogue, held to what is sent: a connection taken through
//! every change a single account goes through (connected, its health, a
//! rotation, another role, disconnected) and a webhook test, each received
//! by a partner's endpoint and checked against the schema the OpenAPI
//! document's `webhooks` section publishes for its type. The organization
//! members' events are checked the same way in `organizations`, and
//! `webhook.disabled` in `webhooks`.

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::schemas::{assert_documented, documentation_errors};
use crate::common::{self, drop_action, some_action};
use account_connect::config::Config;
use account_connect::events::Dispatcher;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_of_a_connection_is_an_event_as_documented() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let config = Config {
        webhook_allow_hosts: vec![rx.authority.clone()],
        ..common::test_config()
    };
    let (app, state) = common::spawn_with_state(config).await;
    tokio::spawn(Dispatcher::for_services(&state).await.run(Duration::from_millis(100)));
    let token = common::token(&format!("org-{}", account_connect::ids::random_token(4)), None);
    let (status, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    assert_eq!(status, 201, "{hook}");
    let iam = aws_sdk_iam::Client::new(&crate::events::sdk().await);

    // Connected.
    let (c, first_role, policies) = crate::events::connected(&app, &token).await;
    let id = c["id"].as_str().unwrap();
    // Degraded: the customer drops an action the role needs.
    drop_action(&iam, &policies[0], &some_action(&c)).await;
    let (status, degraded) = app.recheck(&token, id).await;
    assert_eq!(
        (status, degraded["health"].as_str()),
        (200, Some("degraded")),
        "{degraded}"
    );
    // A rotation, completed by a verification with the new external ID.
    let (status, rotated) = app.rotate_external_id(&token, id).await;
    assert_eq!(status, 200, "{rotated}");
    iam.update_assume_role_policy()
        .role_name(first_role.rsplit('/').next().unwrap())
        .policy_document(rotated["trustPolicy"].to_string())
        .send()
        .await
        .unwrap();
    let (status, done) = app.connect_role(&token, id, &first_role).await;
    assert_eq!(
        (status, &done["externalId"]),
        (200, &rotated["pendingExternalId"]),
        "{done}"
    );
    // Another role, with every permission, while connected.
    let (second_role, _) = common::connection_role(&iam, &done).await;
    let (status, switched) = app.connect_role(&token, id, &second_role).await;
    assert_eq!(
        (status, switched["roleArn"].as_str(), switched["health"].as_str()),
        (200, Some(second_role.as_str()), Some("healthy")),
        "{switched}"
    );
    assert_eq!(app.test_webhook(&token, hook["id"].as_str().unwrap()).await.0, 202);
    assert_eq!(app.disconnect(&token, id).await.0, 200);

    rx.wait_for(6, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // and nothing more
    let events: Vec<Value> = rx.got().iter().map(|g| g.json()).collect();
    let mut kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "connection.connected",
            "connection.disconnected",
            "connection.external_id_rotated",
            "connection.health_changed",
            "connection.role_changed",
            "webhook.test",
        ],
        "one event per change: {events:#?}"
    );
    assert_documented(&events);
    let of = |kind: &str| events.iter().find(|e| e["type"] == kind).unwrap();
    let switch = &of("connection.role_changed")["data"];
    assert_eq!(
        (switch["previousRoleArn"].as_str(), switch["roleArn"].as_str()),
        (Some(first_role.as_str()), Some(second_role.as_str())),
        "{switch}"
    );
    assert_eq!(of("connection.health_changed")["data"]["previousHealth"], "healthy");

    // The check fails a payload whose field was renamed, or one it does not know.
    let mut renamed = switch.clone();
    let previous = renamed.as_object_mut().unwrap().remove("previousRoleArn").unwrap();
    renamed["priorRoleArn"] = previous;
    let mut sequence_renamed = of("connection.connected").clone();
    let seq = sequence_renamed["data"]
        .as_object_mut()
        .unwrap()
        .remove("sequence")
        .unwrap();
    sequence_renamed["data"]["seq"] = seq;
    let wrong = [
        json!({"type": "connection.role_changed", "timestamp": of("connection.role_changed")["timestamp"], "data": renamed}),
        sequence_renamed,
        json!({"type": "connection.renamed", "timestamp": "2024-01-01T00:00:00Z", "data": {}}),
    ];
    let errors = documentation_errors(&wrong);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0]["errors"].to_string().contains("priorRoleArn"), "{errors:#?}");
    assert!(errors[1]["errors"].to_string().contains("sequence"), "{errors:#?}");
}

/// The table of events in docs/events.md lists the types the OpenAPI
/// document's `webhooks` section has, no more, no fewer.
#[test]
fn the_documented_table_lists_every_event_type() {
    let doc = std::fs::read_to_string(common::repo_path("docs/events.md")).unwrap();
    let section = doc.split("\n## Events\n").nth(1).expect("an Events section");
    let section = section.split("\n## ").next().unwrap();
    let mut listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|t| t.contains('.'))
        .collect();
    listed.sort();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo_path("tests/snapshots/openapi.json")).unwrap())
            .unwrap();
    let documented: Vec<&str> = doc["webhooks"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, documented);
}
