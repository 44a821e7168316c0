//! Webhooks with local receivers: signatures that an independent
//! implementation of Standard Webhooks verifies (before and during a secret
//! rotation), a connect's event fanned out to its tenant's webhooks only,
//! the write that stored it waking the dispatcher between its polls,
//! retries until a failing receiver recovers, a receiver that never answers
//! holding up no other, URLs that reach private addresses refused at
//! creation and at delivery, and restricted tokens refused.

use crate::common::receiver::{verify_independently, Behaviour, Receiver};
use crate::common::{self, TestApp};
use account_connect::config::Config;
use account_connect::events::Dispatcher;
use account_connect::services::Services;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn allowing(hosts: &[&str]) -> Config {
    Config {
        webhook_allow_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..common::test_config()
    }
}

/// The app with its dispatcher running (as `serve` runs it).
pub(crate) async fn running(config: Config) -> (TestApp, Services) {
    let (app, state) = common::spawn_with_state(config).await;
    start_dispatcher(&state).await;
    (app, state)
}

async fn start_dispatcher(state: &Services) {
    let d = Dispatcher::for_services(state).await;
    tokio::spawn(d.run(Duration::from_millis(100)));
}

pub(crate) async fn webhook(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, hook) = app.create_webhook(token, &body).await;
    assert_eq!(status, 201, "{hook}");
    hook
}

/// The webhook's deliveries once the newest has `attempts` attempts, or
/// after 20 s.
pub(crate) async fn deliveries_after(app: &TestApp, token: &str, id: &str, attempts: u64) -> Vec<Value> {
    for _ in 0..200 {
        let (status, page) = app.webhook_deliveries(token, id, "").await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        if items.first().is_some_and(|d| d["attempts"].as_u64() >= Some(attempts)) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no delivery of {id} reached {attempts} attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_verify_independently_before_and_during_a_secret_rotation() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let (app, _) = running(allowing(&[&rx.authority])).await;
    let token = common::token("org-a", None);
    let hook = webhook(&app, &token, json!({"url": rx.url, "description": "partner"})).await;
    let (id, old) = (
        hook["id"].as_str().unwrap(),
        hook["secret"].as_str().unwrap().to_owned(),
    );
    assert!(old.starts_with("whsec_"), "{hook}");
    assert_eq!(
        (hook["state"].as_str(), &hook["events"]),
        (Some("active"), &Value::Null)
    );
    // The secret is shown once.
    let (_, again) = app.get_webhook(&token, id).await;
    assert!(again.get("secret").is_none(), "{again}");
    assert_eq!(app.list_webhooks(&token).await.1["items"][0]["id"], hook["id"]);

    let (status, queued) = app.test_webhook(&token, id).await;
    assert_eq!(
        (status, queued["eventType"].as_str()),
        (202, Some("webhook.test")),
        "{queued}"
    );
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert_eq!(got[0].json()["data"]["webhookId"], hook["id"]);
    assert_eq!(got[0].id(), queued["messageId"].as_str().unwrap());

    let (status, rotated) = app.rotate_webhook_secret(&token, id).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previousSecretExpiresAt"].is_string(), "{rotated}");
    app.test_webhook(&token, id).await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].headers["webhook-signature"].split(' ').count(),
        2,
        "old and new sign"
    );

    // The PyPI package verifies with the secret the receiver holds: the old
    // one both, the new one the delivery after the rotation only.
    assert_eq!(verify_independently(&old, &got), vec![json!(true), json!(true)]);
    let with_new = verify_independently(&new, &got);
    assert_eq!(with_new[1], json!(true));
    assert!(
        with_new[0].as_str().is_some_and(|e| e.contains("signature")),
        "{with_new:?}"
    );
    // A body changed in transit verifies with neither.
    let mut forged = got[1].clone();
    forged.body = forged.body.replace("webhook.test", "webhook.tesT");
    assert_ne!(verify_independently(&new, &[forged])[0], json!(true));

    let items = deliveries_after(&app, &token, id, 1).await;
    assert_eq!(items.len(), 2);
    for d in &items {
        assert_eq!(
            (d["state"].as_str(), d["statusCode"].as_u64()),
            (Some("succeeded"), Some(204)),
            "{d}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connect_reaches_its_tenants_webhooks_with_the_connection_view() {
    let (rx_a, rx_b, rx_other) = tokio::join!(
        Receiver::start(Behaviour::Accept),
        Receiver::start(Behaviour::Accept),
        Receiver::start(Behaviour::Accept)
    );
    let (app, _) = running(allowing(&[&rx_a.authority, &rx_b.authority, &rx_other.authority])).await;
    let (a, b) = (common::token("org-a", None), common::token("org-b", None));
    webhook(&app, &a, json!({"url": rx_a.url})).await;
    // Subscribed to other types only: the connect is not for it.
    webhook(
        &app,
        &a,
        json!({"url": rx_other.url, "events": ["connection.disconnected"]}),
    )
    .await;
    let hook_b = webhook(&app, &b, json!({"url": rx_b.url})).await;
    // Another tenant's webhook is not found.
    assert_eq!(app.get_webhook(&a, hook_b["id"].as_str().unwrap()).await.0, 404);
    assert_eq!(app.test_webhook(&a, hook_b["id"].as_str().unwrap()).await.0, 404);

    let (c, _, _) = crate::events::connected(&app, &a).await;
    let got = rx_a.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let event = got[0].json();
    assert_eq!(event["type"], "connection.connected");
    assert_eq!(event["data"]["id"], c["id"]);
    assert_eq!(event["data"]["status"], "connected");
    assert_eq!(event["data"]["sequence"], c["version"]);
    assert_eq!(
        got[0].id(),
        format!("msg_{}_{}", c["id"].as_str().unwrap(), c["version"])
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(rx_b.got().is_empty(), "org-b's webhook got org-a's event");
    assert!(rx_other.got().is_empty(), "a webhook not subscribed to the type got it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_write_that_stores_an_event_wakes_the_dispatcher_between_polls() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let (app, state) = common::spawn_with_state(allowing(&[&rx.authority])).await;
    // Polls an hour apart, its first one already made: only the SQLite
    // store's signal after the commit can bring the event within the test.
    let d = Dispatcher::for_services(&state).await;
    tokio::spawn(d.run(Duration::from_secs(3600)));
    let a = common::token("org-a", None);
    webhook(&app, &a, json!({"url": rx.url})).await;
    let (c, _, _) = crate::events::connected(&app, &a).await;
    let got = rx.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "the connect's event did not arrive");
    assert_eq!(got[0].json()["type"], "connection.connected");
    assert_eq!(got[0].json()["data"]["id"], c["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt() {
    let rx = Receiver::start(Behaviour::FailFirst(2)).await;
    let (app, state) = running(allowing(&[&rx.authority])).await;
    let clock = state.connections.clock();
    let token = common::token("org-a", None);
    let hook = webhook(&app, &token, json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    app.test_webhook(&token, id).await;

    let first = &deliveries_after(&app, &token, id, 1).await[0];
    assert_eq!(
        (first["state"].as_str(), first["statusCode"].as_u64()),
        (Some("pending"), Some(500)),
        "{first}"
    );
    assert!(first["nextAttemptAt"].is_string(), "{first}");
    // Not before its time: the schedule's first delay is 5 s (±20 %).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), 1);
    clock.advance(7);
    let second = &deliveries_after(&app, &token, id, 2).await[0];
    assert_eq!(second["statusCode"], 500, "{second}");
    clock.advance(361);
    let third = &deliveries_after(&app, &token, id, 3).await[0];
    assert_eq!(
        (third["state"].as_str(), third["statusCode"].as_u64()),
        (Some("succeeded"), Some(204)),
        "{third}"
    );
    let got = rx.got();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|g| g.id() == got[0].id() && g.body == got[0].body),
        "the same message each time"
    );
    let (_, hook) = app.get_webhook(&token, id).await;
    assert_eq!(hook["consecutiveFailures"], 0, "a success ends the run: {hook}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_never_answers_does_not_delay_another() {
    let (stuck, fine) = tokio::join!(Receiver::start(Behaviour::Hang), Receiver::start(Behaviour::Accept));
    let (app, _) = running(allowing(&[&stuck.authority, &fine.authority])).await;
    let (a, b) = (common::token("org-a", None), common::token("org-b", None));
    let slow = webhook(&app, &a, json!({"url": stuck.url})).await;
    let quick = webhook(&app, &b, json!({"url": fine.url})).await;
    app.test_webhook(&a, slow["id"].as_str().unwrap()).await;
    assert_eq!(
        stuck.wait_for(1, Duration::from_secs(10)).await.len(),
        1,
        "the stuck one is being sent"
    );
    let started = std::time::Instant::now();
    app.test_webhook(&b, quick["id"].as_str().unwrap()).await;
    assert_eq!(fine.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The stuck one ends as a failure at the attempt's timeout.
    let d = &deliveries_after(&app, &a, slow["id"].as_str().unwrap(), 1).await[0];
    assert!(
        d["error"].as_str().unwrap().contains("did not answer within 10 s"),
        "{d}"
    );
    assert!(d.get("statusCode").is_none(), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn urls_that_reach_private_addresses_are_refused_at_creation_and_at_delivery() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let (app, _) = running(common::test_config()).await;
    let token = common::token("org-a", None);
    let port = rx.port;
    for url in [
        rx.url.clone(),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://localhost:{port}/hook"),
        "https://10.1.2.3/hook".into(),
        "https://192.168.0.10/hook".into(),
        "https://169.254.169.254/latest/meta-data".into(),
        "https://[::1]/hook".into(),
        "https://[::ffff:127.0.0.1]/hook".into(),
        "https://[fd00:ec2::254]/hook".into(),
    ] {
        let (status, err) = app.create_webhook(&token, &json!({"url": url})).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (422, Some("webhook_url_refused")),
            "{url}: {err}"
        );
        // A name is refused by the kind of address it leads to, never the address.
        if url.contains("localhost") {
            let message = err["error"]["message"].as_str().unwrap();
            assert!(message.starts_with("localhost resolves to a loopback address"), "{err}");
            assert!(!message.contains("127.0.0.1") && !message.contains("::1"), "{err}");
        }
    }
    for (body, field) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "https://user:pw@example.com/"}), "url"),
        (
            json!({"url": "https://example.com/", "events": ["connection.exploded"]}),
            "events",
        ),
        (json!({"url": "https://example.com/", "events": []}), "events"),
        (
            json!({"url": "https://example.com/", "description": "x".repeat(257)}),
            "description",
        ),
    ] {
        // A URL is refused as the body is read; the rest by the service.
        let (status, err) = app.create_webhook(&token, &body).await;
        assert_eq!(status, 422, "{body}: {err}");
        let named = err["error"]["details"]["field"] == field
            || err["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{field}: "));
        assert!(named, "{err}");
    }

    // Allowed by name when registered; a process without the setting
    // resolves the name at delivery and sends nothing to loopback.
    let file = std::env::temp_dir().join(format!("webhooks-{}.db", account_connect::ids::random_token(6)));
    let store_url = format!("sqlite://{}", file.display());
    let allowed = Config {
        store_url: store_url.clone(),
        ..allowing(&[&format!("localhost:{port}")])
    };
    let (app, _) = common::spawn_with_state(allowed).await;
    let hook = webhook(&app, &token, json!({"url": format!("https://localhost:{port}/hook")})).await;
    let id = hook["id"].as_str().unwrap();
    app.test_webhook(&token, id).await;
    let (strict, _) = running(Config {
        store_url,
        ..common::test_config()
    })
    .await;
    let d = &deliveries_after(&strict, &token, id, 1).await[0];
    let error = d["error"].as_str().unwrap();
    assert_eq!(error, "refused: localhost resolves to a loopback address", "{d}");
    assert!(rx.got().is_empty(), "a request reached the loopback receiver");
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_restricted_token_manages_no_webhooks() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let (app, _) = running(allowing(&[&rx.authority])).await;
    let full = common::token("org-a", None);
    let hook = webhook(&app, &full, json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    let limited = common::token("org-a", Some(&["act-1"]));
    let answers = [
        app.create_webhook(&limited, &json!({"url": rx.url})).await,
        app.list_webhooks(&limited).await,
        app.get_webhook(&limited, id).await,
        app.rotate_webhook_secret(&limited, id).await,
        app.test_webhook(&limited, id).await,
        app.webhook_deliveries(&limited, id, "").await,
        app.enable_webhook(&limited, id).await,
        app.recover_webhook(&limited, id, &json!({"since": "2026-01-01T00:00:00Z"}))
            .await,
        app.retry_delivery(&limited, id, "msg_test_0").await,
        app.delete_webhook(&limited, id).await,
    ];
    for (status, err) in answers {
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (403, Some("webhooks_need_full_access")),
            "{err}"
        );
        assert!(!err.to_string().contains("whsec_"), "{err}");
    }
    assert_eq!(app.delete_webhook(&full, id).await.0, 204);
    assert_eq!(app.get_webhook(&full, id).await.0, 404);
    assert_eq!(app.delete_webhook(&full, "not-an-id").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_failing_for_five_days_is_disabled_and_announced() {
    let rx = Receiver::start(Behaviour::FailFirst(usize::MAX)).await;
    let (bus, queue) = crate::events::bus_to_queue().await;
    let config = Config {
        event_bus: Some(bus),
        ..allowing(&[&rx.authority])
    };
    let (app, state) = running(config).await;
    let clock = state.connections.clock();
    let token = common::token("org-a", None);
    let hook = webhook(&app, &token, json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    app.test_webhook(&token, id).await;
    deliveries_after(&app, &token, id, 1).await;
    let (_, failing) = app.get_webhook(&token, id).await;
    assert_eq!(
        (failing["state"].as_str(), failing["consecutiveFailures"].as_u64()),
        (Some("active"), Some(1))
    );
    assert!(failing["failingSince"].is_string(), "{failing}");

    // Five days on, the next attempt fails too: the endpoint is disabled.
    clock.advance(5 * 24 * 3600 + 10);
    let mut disabled = Value::Null;
    for _ in 0..200 {
        disabled = app.get_webhook(&token, id).await.1;
        if disabled["state"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(disabled["state"], "disabled", "{disabled}");
    let log = app.webhook_deliveries(&token, id, "").await.1["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(log[1]["attempts"], 2, "the test event's second attempt: {log:#?}");
    let line = log
        .iter()
        .find(|d| d["eventType"] == "webhook.disabled")
        .unwrap_or_else(|| panic!("no webhook.disabled line: {log:#?}"));
    let why = line["error"].as_str().unwrap();
    assert!(
        why.starts_with("disabled: every attempt since ") && why.contains("(2 attempts, none succeeding for 5 days)"),
        "{line}"
    );
    let on_bus = crate::events::received(&queue, 1, Duration::from_secs(10)).await;
    let announced: Vec<&Value> = on_bus
        .iter()
        .filter(|e| e["detail-type"] == "webhook.disabled")
        .collect();
    assert_eq!(announced.len(), 1, "{on_bus:#?}");
    assert_eq!(announced[0]["detail"]["data"]["webhookId"], hook["id"]);
    assert_eq!(announced[0]["detail"]["data"]["reason"], "failing");
    crate::common::schemas::assert_documented(&[announced[0]["detail"].clone()]);
    // Nothing more is sent to it, and a test is refused.
    let sent = rx.got().len();
    assert_eq!(app.test_webhook(&token, id).await.0, 409);
    clock.advance(3600);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), sent);
}
