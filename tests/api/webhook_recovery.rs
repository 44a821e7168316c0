//! Recovery a partner does alone, through the API with the local
//! dispatcher running, on both stores: a disabled webhook enabled, what it
//! missed sent again since a time (same `webhook-id`, fresh attempts), one
//! delivery sent again by its message id, and every bad input a 4xx with a
//! stable code. And the caps: 20 webhooks per tenant among 30 concurrent
//! creations, and 5 test events a minute per webhook, counted in the store
//! (two processes share it).

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::{self, TestApp};
use account_connect::clock::iso;
use account_connect::config::Config;
use account_connect::domain::{Delivery, Webhook, WebhookId, WebhookState};
use account_connect::events::Dispatcher;
use account_connect::store::{DynStore, StoreError};
use serde_json::{json, Value};
use std::time::Duration;

async fn stores() -> Vec<(&'static str, Config)> {
    vec![
        ("sqlite", common::test_config()),
        (
            "dynamodb",
            Config {
                store_url: common::dynamo_store_url().await,
                ..common::test_config()
            },
        ),
    ]
}

/// The webhook's deliveries once `done` holds for the page, or after 20 s.
async fn deliveries_until(app: &TestApp, token: &str, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..200 {
        let (status, page) = app.webhook_deliveries(token, id, "").await;
        assert_eq!(status, 200, "{page}");
        items = page["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the deliveries of {id} never got there: {items:#?}");
}

/// Disables the webhook in the store (its attempts may change it meanwhile).
pub(crate) async fn disable(store: &DynStore, id: &str) -> Webhook {
    let id: WebhookId = id.parse().unwrap();
    loop {
        let mut h = store.get_webhook("org-a", &id).await.unwrap().unwrap();
        h.state = WebhookState::Disabled;
        h.version += 1;
        match store.update_webhook(&h).await {
            Ok(()) => return h,
            Err(StoreError::Conflict) => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

fn code(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["error"]["code"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_webhook_is_enabled_and_what_it_missed_is_sent_again() {
    for (name, base) in stores().await {
        let rx = Receiver::start(Behaviour::Outage).await;
        let config = Config {
            webhook_allow_hosts: vec![rx.authority.clone()],
            ..base
        };
        let (app, state, store) = common::spawn_with_store(config).await;
        tokio::spawn(Dispatcher::for_services(&state).await.run(Duration::from_millis(100)));
        let token = common::token("org-a", None);
        let (_, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        let since = iso(app.clock.now() - 1);

        // Three events, each failing its first attempt while the receiver is down.
        let mut messages = Vec::new();
        for _ in 0..3 {
            let (status, d) = app.test_webhook(&token, &id).await;
            assert_eq!(status, 202, "{name}: {d}");
            messages.push(d["messageId"].as_str().unwrap().to_owned());
        }
        deliveries_until(&app, &token, &id, |items| {
            items.len() == 3 && items.iter().all(|d| d["attempts"] == 1)
        })
        .await;
        // Then the webhook is disabled (as after days of failures): the
        // deliveries are dropped at their next attempt, nothing is sent.
        let h = disable(&store, &id).await;
        app.clock.advance(10);
        let dropped = deliveries_until(&app, &token, &id, |items| items.iter().all(|d| d["state"] == "failed")).await;
        assert!(
            dropped
                .iter()
                .all(|d| d["error"].as_str().unwrap().contains("disabled")),
            "{name}: {dropped:#?}"
        );
        // The log's webhook.disabled line is never sent, nor recovered.
        let mut line = Delivery::new(
            &h,
            "msg_disabled_x".into(),
            "webhook.disabled",
            "{}".into(),
            app.clock.now(),
        );
        line.abandon("disabled after failing", app.clock.now());
        store.enqueue_delivery(&line).await.unwrap();
        assert_eq!(rx.got().len(), 3, "{name}");

        // Disabled: nothing is sent again until it is enabled.
        let body = json!({ "since": since });
        for answer in [
            app.recover_webhook(&token, &id, &body).await,
            app.retry_delivery(&token, &id, &messages[0]).await,
            app.test_webhook(&token, &id).await,
        ] {
            assert_eq!(code(&answer), (409, Some("webhook_disabled")), "{name}: {answer:?}");
            assert!(answer.1["error"]["message"].as_str().unwrap().contains("/enable"));
        }
        rx.set_down(false);
        let (status, enabled) = app.enable_webhook(&token, &id).await;
        assert_eq!(
            (
                status,
                enabled["state"].as_str(),
                enabled["consecutiveFailures"].as_u64()
            ),
            (200, Some("active"), Some(0)),
            "{name}: {enabled}"
        );
        assert!(enabled.get("failingSince").is_none(), "{name}: {enabled}");
        let (status, again) = app.enable_webhook(&token, &id).await;
        assert_eq!(
            (status, &again["updatedAt"]),
            (200, &enabled["updatedAt"]),
            "{name}: idempotent"
        );

        let (status, done) = app.recover_webhook(&token, &id, &body).await;
        assert_eq!((status, done), (202, json!({"queued": 3, "complete": true})), "{name}");
        let got = rx.wait_for(6, Duration::from_secs(15)).await;
        let mut resent: Vec<&str> = got[3..].iter().map(|g| g.id()).collect();
        resent.sort();
        let mut want: Vec<&str> = messages.iter().map(String::as_str).collect();
        want.sort();
        assert_eq!(resent, want, "{name}: the same webhook-id each");
        let log = deliveries_until(&app, &token, &id, |items| {
            items.iter().filter(|d| d["state"] == "succeeded").count() == 3
        })
        .await;
        assert!(
            log.iter()
                .filter(|d| d["eventType"] == "webhook.test")
                .all(|d| d["attempts"] == 1 && d["statusCode"] == 204),
            "{name}: fresh attempts: {log:#?}"
        );
        let (_, nothing) = app.recover_webhook(&token, &id, &body).await;
        assert_eq!(nothing["queued"], 0, "{name}: nothing failed any more");

        // One by its message id: a delivery the receiver lost, sent again.
        let (status, d) = app.retry_delivery(&token, &id, &messages[1]).await;
        assert_eq!(
            (status, d["state"].as_str(), d["messageId"].as_str()),
            (202, Some("pending"), Some(messages[1].as_str())),
            "{name}: {d}"
        );
        let got = rx.wait_for(7, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 7, "{name}");
        assert_eq!(got[6].id(), messages[1]);
        assert_eq!(
            got[6].body,
            got[0..3].iter().find(|g| g.id() == messages[1]).unwrap().body
        );

        // Refusals, each with its code.
        rx.set_down(true);
        let (_, pending) = app.test_webhook(&token, &id).await;
        let pending = pending["messageId"].as_str().unwrap().to_owned();
        deliveries_until(&app, &token, &id, |items| {
            items.iter().any(|d| d["messageId"] == pending && d["attempts"] == 1)
        })
        .await;
        let month = 31 * 24 * 3600;
        for (answer, want) in [
            (
                app.retry_delivery(&token, &id, &pending).await,
                (409, Some("delivery_pending")),
            ),
            (
                app.retry_delivery(&token, &id, "msg_disabled_x").await,
                (409, Some("delivery_not_resendable")),
            ),
            (
                app.retry_delivery(&token, &id, "msg_unknown").await,
                (404, Some("delivery_not_found")),
            ),
            (
                app.retry_delivery(&token, &id, &"m".repeat(300)).await,
                (404, Some("delivery_not_found")),
            ),
            (
                app.retry_delivery(&token, &id, "a%2Fb").await,
                (404, Some("delivery_not_found")),
            ),
            (
                app.retry_delivery(&token, "wh-0123456789abcdef01234567", &messages[0])
                    .await,
                (404, Some("webhook_not_found")),
            ),
            (
                app.recover_webhook(&token, "not-an-id", &body).await,
                (404, Some("webhook_not_found")),
            ),
            (
                app.recover_webhook(&token, &id, &json!({"since": "yesterday"})).await,
                (422, Some("invalid_field")),
            ),
            (
                app.recover_webhook(&token, &id, &json!({"since": iso(app.clock.now() - month)}))
                    .await,
                (422, Some("invalid_field")),
            ),
            (
                app.recover_webhook(&token, &id, &json!({"since": iso(app.clock.now() + 3600)}))
                    .await,
                (422, Some("invalid_field")),
            ),
            (
                app.recover_webhook(&token, &id, &json!({})).await,
                (422, Some("invalid_body")),
            ),
            (
                app.recover_webhook(&token, &id, &json!({"since": since, "all": true}))
                    .await,
                (422, Some("invalid_body")),
            ),
            (
                app.call("POST", &format!("/v1/webhooks/{id}/recover"), Some(&token), None)
                    .await,
                (415, Some("unsupported_media_type")),
            ),
        ] {
            assert_eq!(code(&answer), want, "{name}: {answer:?}");
            if want.1 == Some("invalid_field") {
                assert_eq!(answer.1["error"]["details"]["field"], "since", "{answer:?}");
            }
        }

        // Waiting minutes for its next retry: brought forward, by its id
        // and by a recover, with a fresh schedule.
        let second_failed = |n: u64| {
            let pending = pending.clone();
            move |items: &[Value]| {
                items
                    .iter()
                    .any(|d| d["messageId"] == pending && d["attempts"] == n && d["statusCode"] == 503)
            }
        };
        app.clock.advance(7);
        deliveries_until(&app, &token, &id, second_failed(2)).await;
        let (status, d) = app.retry_delivery(&token, &id, &pending).await;
        assert_eq!(
            (status, d["state"].as_str(), d["attempts"].as_u64()),
            (202, Some("pending"), Some(0)),
            "{name}: {d}"
        );
        deliveries_until(&app, &token, &id, second_failed(1)).await;
        app.clock.advance(7);
        deliveries_until(&app, &token, &id, second_failed(2)).await;
        let (_, done) = app.recover_webhook(&token, &id, &body).await;
        assert_eq!(done, json!({"queued": 1, "complete": true}), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_creations_leave_a_tenant_twenty_webhooks() {
    for (name, base) in stores().await {
        let rx = Receiver::start(Behaviour::Accept).await;
        let app = common::spawn_app(Config {
            webhook_allow_hosts: vec![rx.authority.clone()],
            ..base
        })
        .await;
        let token = common::token("org-a", None);
        let body = json!({ "url": rx.url });
        let answers = futures::future::join_all((0..30).map(|_| app.create_webhook(&token, &body))).await;
        let created = answers.iter().filter(|a| a.0 == 201).count();
        let refused: Vec<_> = answers.iter().filter(|a| a.0 != 201).map(code).collect();
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        assert_eq!(created, 20, "{name}: {statuses:?}");
        assert!(
            refused.iter().all(|c| *c == (409, Some("too_many_webhooks"))),
            "{name}: {refused:?}"
        );
        let (_, list) = app.list_webhooks(&token).await;
        let ids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 20, "{name}");
        assert_eq!(app.delete_webhook(&token, ids[0]).await.0, 204, "{name}");
        assert_eq!(app.create_webhook(&token, &body).await.0, 201, "{name}: a place freed");
        assert_eq!(
            code(&app.create_webhook(&token, &body).await),
            (409, Some("too_many_webhooks")),
            "{name}"
        );
        let other = common::token("org-b", None);
        assert_eq!(app.create_webhook(&other, &body).await.0, 201, "{name}: its own count");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_events_are_limited_per_webhook_across_processes() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let file = std::env::temp_dir().join(format!("tests-{}.db", account_connect::ids::random_token(6)));
    let config = Config {
        store_url: format!("sqlite://{}", file.display()),
        webhook_allow_hosts: vec![rx.authority.clone()],
        ..common::test_config()
    };
    let (one, two) = (common::spawn_app(config.clone()).await, common::spawn_app(config).await);
    // Both at the start of the same minute (the limit counts per minute).
    let skip = 61 - one.clock.now().rem_euclid(60);
    one.clock.advance(skip);
    two.clock.advance(skip);
    let token = common::token("org-a", None);
    let (_, hook) = one.create_webhook(&token, &json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    for i in 0..5 {
        let app = if i % 2 == 0 { &one } else { &two };
        assert_eq!(app.test_webhook(&token, id).await.0, 202, "test {i}");
    }
    let res = two
        .request("POST", &format!("/v1/webhooks/{id}/test"), Some(&token))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("test_rate_limited")),
        "{body}"
    );
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        code(&one.test_webhook(&token, id).await),
        (429, Some("test_rate_limited"))
    );
    // Another webhook has its own; the next minute takes tests again.
    let (_, other) = one.create_webhook(&token, &json!({"url": rx.url})).await;
    assert_eq!(one.test_webhook(&token, other["id"].as_str().unwrap()).await.0, 202);
    one.clock.advance(wait as i64);
    assert_eq!(one.test_webhook(&token, id).await.0, 202);
    let _ = std::fs::remove_file(&file);
}

/// Unix seconds of an RFC 3339 time the API answered.
fn unix(v: &Value) -> i64 {
    time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_events_failed_in_a_burst_all_arrive_within_a_minute_of_a_recover() {
    let rx = Receiver::start(Behaviour::Outage).await;
    let config = Config {
        webhook_allow_hosts: vec![rx.authority.clone()],
        ..common::test_config()
    };
    let (app, state) = common::spawn_with_state(config).await;
    tokio::spawn(Dispatcher::for_services(&state).await.run(Duration::from_millis(100)));
    let token = common::token("org-a", None);
    let (_, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let since = iso(app.clock.now() - 1);

    // 100 events within a second (as a reconciliation makes), each failing
    // while the receiver answers 503, then again at its first retry.
    let messages: Vec<String> = (0..100).map(|i| format!("msg_burst_{i:03}")).collect();
    for m in &messages {
        let body = json!({"type": "connection.connected", "data": {"n": m}}).to_string();
        state
            .webhooks
            .fan_out("org-a", "connection.connected", m, &body)
            .await
            .unwrap();
    }
    rx.wait_for(100, Duration::from_secs(20)).await;
    app.clock.advance(7);
    // Until none is due within a minute: each failed (dropped, if the
    // failures disabled the webhook) or waits minutes for its next retry.
    let waiting = |items: &[Value]| {
        let now = app.clock.now();
        items.len() == 100
            && items.iter().all(|d| {
                d["state"] == "failed" || d["nextAttemptAt"].is_string() && unix(&d["nextAttemptAt"]) > now + 60
            })
    };
    let mut items = Vec::new();
    for _ in 0..200 {
        let (_, page) = app.webhook_deliveries(&token, &id, "limit=100").await;
        items = page["items"].as_array().unwrap().clone();
        if waiting(&items) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(waiting(&items), "{items:#?}");
    // Each attempt counts itself on the webhook after recording the
    // delivery: until those writes are done, the webhook may still change
    // (under a count rule, a late failure could disable it after the enable).
    let mut last = Value::Null;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (_, now) = app.get_webhook(&token, &id).await;
        if now == last {
            break;
        }
        last = now;
    }
    let before = rx.got().len();

    // The receiver is back: enable (a no-op on an active webhook), recover.
    rx.set_down(false);
    assert_eq!(app.enable_webhook(&token, &id).await.0, 200);
    let started = std::time::Instant::now();
    let (status, done) = app.recover_webhook(&token, &id, &json!({ "since": since })).await;
    assert_eq!((status, done), (202, json!({"queued": 100, "complete": true})));
    let got = rx.wait_for(before + 100, Duration::from_secs(60)).await;
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    let mut arrived: Vec<&str> = got[before..].iter().map(|g| g.id()).collect();
    arrived.sort();
    assert_eq!(arrived, messages.iter().map(String::as_str).collect::<Vec<_>>());
}
