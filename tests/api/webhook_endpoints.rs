//! What a receiver's answers do to its webhook: a burst of failures in a
//! bad minute leaves it active (only time disables), `Retry-After` on a 429
//! or 503 holds the next attempt back, 410 Gone disables it at once, and an
//! attempt that reached nothing says so in a short phrase. And two secret
//! rotations within a day: all three secrets verify.

use crate::common::receiver::{verify_independently, Behaviour, Receiver};
use crate::common::{self, TestApp};
use crate::webhooks::{allowing, deliveries_after, running, webhook};
use serde_json::{json, Value};
use std::time::Duration;

/// Every delivery in the webhook's log (up to 100), newest first.
async fn log(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let (status, page) = app.webhook_deliveries(token, id, "limit=100").await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Waits (up to 30 s) until `done` holds for the log.
async fn log_until(app: &TestApp, token: &str, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..300 {
        let items = log(app, token, id).await;
        if done(&items) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the log of {id} never got there: {:#?}", log(app, token, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_failures_within_seconds_leave_the_webhook_active() {
    let rx = Receiver::start(Behaviour::AnswerFirst {
        n: 100,
        status: 503,
        retry_after: None,
    })
    .await;
    let (app, state) = running(allowing(&[&rx.authority])).await;
    let clock = state.connections.clock();
    let org = format!("org-{}", account_connect::ids::random_token(4));
    let token = common::token(&org, None);
    let hook = webhook(&app, &token, json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();

    // 100 events of the tenant within a couple of seconds, fanned out as
    // the outbox's are: the receiver is having its bad minute.
    let body = |i: usize| json!({"type": "connection.connected", "data": {"n": i}}).to_string();
    for i in 0..100 {
        let message = format!("msg_burst_{i:03}");
        state
            .webhooks
            .fan_out(&org, "connection.connected", &message, &body(i))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = |items: &[Value]| -> Vec<Value> {
        let of_events = items.iter().filter(|d| d["eventType"] == "connection.connected");
        of_events.cloned().collect()
    };
    assert_eq!(rx.wait_for(100, Duration::from_secs(30)).await.len(), 100);
    let failed_once = log_until(&app, &token, id, |items| {
        items.len() == 100 && events(items).iter().all(|d| d["attempts"].as_u64() >= Some(1))
    })
    .await;
    assert!(
        events(&failed_once).iter().all(|d| d["statusCode"] == 503),
        "{failed_once:#?}"
    );
    assert_eq!(rx.got().len(), 100);
    assert!(
        failed_once.iter().all(|d| d["eventType"] != "webhook.disabled"),
        "{failed_once:#?}"
    );
    let (_, after) = app.get_webhook(&token, id).await;
    assert_eq!(
        after["state"], "active",
        "100 failures in a minute disabled it: {after}"
    );
    assert!(after["failingSince"].is_string(), "{after}");

    // The receiver is back: each delivery's retry reaches it.
    clock.advance(10);
    let done = log_until(&app, &token, id, |items| {
        items.len() == 100 && items.iter().all(|d| d["state"] == "succeeded")
    })
    .await;
    assert!(done.iter().all(|d| d["attempts"] == 2), "{done:#?}");
    let mut ids: Vec<String> = rx.got()[100..].iter().map(|g| g.id().to_owned()).collect();
    ids.sort();
    let want: Vec<String> = (0..100).map(|i| format!("msg_burst_{i:03}")).collect();
    assert_eq!(ids, want);
    let (_, healthy) = app.get_webhook(&token, id).await;
    assert_eq!(
        (healthy["state"].as_str(), healthy.get("failingSince")),
        (Some("active"), None),
        "{healthy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_after_on_a_429_or_503_holds_the_next_attempt_back() {
    // The HTTP-date form, on a 503: ten minutes on (the app's clock starts
    // at the system's).
    let date = time::OffsetDateTime::from_unix_timestamp(account_connect::clock::now() + 600)
        .unwrap()
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap();
    let (seconds, dated) = tokio::join!(
        Receiver::start(Behaviour::AnswerFirst {
            n: 1,
            status: 429,
            retry_after: Some("120"),
        }),
        Receiver::start(Behaviour::AnswerFirst {
            n: 1,
            status: 503,
            retry_after: Some(Box::leak(date.into_boxed_str())),
        })
    );
    let (app, state) = running(allowing(&[&seconds.authority, &dated.authority])).await;
    let clock = state.connections.clock();
    let token = common::token("org-a", None);
    let hook = webhook(&app, &token, json!({"url": seconds.url})).await;
    let id = hook["id"].as_str().unwrap();
    let hook_dated = webhook(&app, &token, json!({"url": dated.url})).await;
    let id_dated = hook_dated["id"].as_str().unwrap();
    app.test_webhook(&token, id).await;
    app.test_webhook(&token, id_dated).await;

    let first = deliveries_after(&app, &token, id, 1).await[0].clone();
    assert_eq!(
        (first["state"].as_str(), first["statusCode"].as_u64()),
        (Some("pending"), Some(429)),
        "{first}"
    );
    assert!(
        first["error"]
            .as_str()
            .unwrap()
            .ends_with("asked for a retry after 120 s"),
        "the log shows what was asked: {first}"
    );
    let gap = at(&first["nextAttemptAt"]) - at(&first["lastAttemptAt"]);
    assert_eq!(gap, 120, "not the schedule's 5 s: {first}");
    let first_dated = deliveries_after(&app, &token, id_dated, 1).await[0].clone();
    assert_eq!(first_dated["statusCode"], 503, "{first_dated}");
    let gap = at(&first_dated["nextAttemptAt"]) - at(&first_dated["lastAttemptAt"]);
    assert!((590..=600).contains(&gap), "{first_dated}");

    // Past the schedule's first delay (5 s, at most 6 with jitter), before
    // the receivers': nothing is sent.
    clock.advance(60);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        (seconds.got().len(), dated.got().len()),
        (1, 1),
        "sent before Retry-After"
    );
    clock.advance(61);
    let second = deliveries_after(&app, &token, id, 2).await[0].clone();
    assert_eq!(
        (second["state"].as_str(), second["statusCode"].as_u64()),
        (Some("succeeded"), Some(204)),
        "{second}"
    );
    assert_eq!(dated.got().len(), 1, "the dated one waits for its date");
    clock.advance(480);
    let second = deliveries_after(&app, &token, id_dated, 2).await[0].clone();
    assert_eq!(second["state"], "succeeded", "{second}");
}

/// Unix seconds of an RFC 3339 answer field.
fn at(v: &Value) -> i64 {
    let t = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_410_disables_the_webhook_at_once() {
    let rx = Receiver::start(Behaviour::AnswerFirst {
        n: usize::MAX,
        status: 410,
        retry_after: None,
    })
    .await;
    let (app, _) = running(allowing(&[&rx.authority])).await;
    let token = common::token("org-a", None);
    let hook = webhook(&app, &token, json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    app.test_webhook(&token, id).await;

    let items = log_until(&app, &token, id, |items| items.len() == 2).await;
    let of_type = |t: &str| {
        items
            .iter()
            .find(|d| d["eventType"] == t)
            .unwrap_or_else(|| panic!("{items:#?}"))
    };
    let (disabled, test) = (of_type("webhook.disabled"), of_type("webhook.test"));
    assert_eq!(
        (
            test["state"].as_str(),
            test["statusCode"].as_u64(),
            test["attempts"].as_u64()
        ),
        (Some("failed"), Some(410), Some(1)),
        "no retry after a 410: {test}"
    );
    assert_eq!(disabled["eventType"], "webhook.disabled", "{disabled}");
    assert_eq!(
        disabled["error"],
        "disabled: the endpoint answered 410 Gone, which asks for no more deliveries"
    );
    let (_, after) = app.get_webhook(&token, id).await;
    assert_eq!(after["state"], "disabled", "{after}");
    let (status, refused) = app.test_webhook(&token, id).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("410 Gone"),
        "{refused}"
    );
    assert_eq!(rx.got().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_that_refuses_the_connection_is_logged_as_refused() {
    // A port nothing listens on any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    drop(listener);
    let (app, _) = running(allowing(&[&authority])).await;
    let token = common::token("org-a", None);
    let hook = webhook(&app, &token, json!({"url": format!("http://{authority}/hook")})).await;
    let id = hook["id"].as_str().unwrap();
    app.test_webhook(&token, id).await;
    let d = deliveries_after(&app, &token, id, 1).await[0].clone();
    assert_eq!(d["error"], "the endpoint refused the connection", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rotations_within_a_day_keep_all_three_secrets_verifying() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let (app, state) = running(allowing(&[&rx.authority])).await;
    let clock = state.connections.clock();
    let token = common::token("org-a", None);
    let hook = webhook(&app, &token, json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    let first = hook["secret"].as_str().unwrap().to_owned();

    let (_, one) = app.rotate_webhook_secret(&token, id).await;
    // Four minutes on: within the five the verifier allows a timestamp
    // ahead of its clock.
    clock.advance(240);
    let (status, two) = app.rotate_webhook_secret(&token, id).await;
    assert_eq!(status, 200, "{two}");
    let (second, third) = (
        one["secret"].as_str().unwrap().to_owned(),
        two["secret"].as_str().unwrap().to_owned(),
    );
    // The answer says what still signs: both replaced secrets, each until
    // a day after its own rotation.
    let kept: Vec<i64> = two["previousSecretsExpireAt"]
        .as_array()
        .unwrap_or_else(|| panic!("{two}"))
        .iter()
        .map(at)
        .collect();
    assert_eq!(kept.len(), 2, "{two}");
    assert!((240..=242).contains(&(kept[1] - kept[0])), "{two}");
    assert_eq!(two["previousSecretExpiresAt"], two["previousSecretsExpireAt"][1]);
    assert!(
        two.to_string().matches("whsec_").count() == 1,
        "only the new secret is shown: {two}"
    );

    app.test_webhook(&token, id).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 3);
    for secret in [&first, &second, &third] {
        assert_eq!(verify_independently(secret, &got), vec![json!(true)]);
    }

    // A day after the first rotation only the second's old secret and the
    // current one sign (checked against the header's signatures, as the
    // delivery's timestamp is a day ahead of the verifier's clock).
    clock.advance(24 * 3600 - 240 + 60);
    app.test_webhook(&token, id).await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    let signed: Vec<&str> = got[1].headers["webhook-signature"].split(' ').collect();
    let by = |secret: &str| {
        let stamp: i64 = got[1].headers["webhook-timestamp"].parse().unwrap();
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign(got[1].id(), stamp, got[1].body.as_bytes())
            .unwrap()
    };
    assert_eq!(signed, vec![by(&third), by(&second)]);
    assert!(!signed.contains(&by(&first).as_str()));
    let (_, now) = app.get_webhook(&token, id).await;
    assert_eq!(
        now["previousSecretsExpireAt"].as_array().map(Vec::len),
        Some(1),
        "{now}"
    );
}
