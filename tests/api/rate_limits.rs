//! Per-tenant rate limits on the expensive routes, and one verification in
//! flight per connection: a tenant over its limit is refused (429
//! rate_limited, Retry-After) while another tenant at the same time is not;
//! a second verification of a connection while one runs is refused (409
//! verification_in_progress) and makes no AWS call.

use crate::aws_standin::{Script, StandIn};
use crate::common::{self, TestApp};
use account_connect::domain::Partition;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Moves the app's clock to the start of a minute, so the requests that
/// follow (seconds of real time) share one limit window.
fn start_of_minute(app: &TestApp) {
    let now = app.clock.now();
    app.clock.advance(60 - now.rem_euclid(60));
}

/// Status, Retry-After and body of a POST.
async fn post(app: &TestApp, path: &str, token: &str, body: Option<Value>) -> (u16, Option<u32>, Value) {
    let mut req = app.request("POST", path, Some(token));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("the app answers");
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let status = res.status().as_u16();
    (status, retry, res.json().await.unwrap_or(Value::Null))
}

async fn connection(app: &TestApp, t: &str, account: &str) -> Value {
    let (status, c) = app
        .create_connection(
            t,
            &json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_limit_is_refused_while_another_is_not() {
    let mut config = common::test_config();
    config.rate_limits.verifications_per_minute = 3;
    config.rate_limits.rechecks_per_minute = 2;
    let app = common::spawn_app(config).await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let a = common::token(&format!("org-a-{}", account_connect::ids::random_token(4)), None);
    let b = common::token(&format!("org-b-{}", account_connect::ids::random_token(4)), None);
    let ca = connection(&app, &a, "act-la1").await;
    let cb = connection(&app, &b, "act-lb1").await;
    let (role_a, _) = common::connection_role(&iam, &ca).await;
    let (role_b, _) = common::connection_role(&iam, &cb).await;
    let (ida, idb) = (ca["id"].as_str().unwrap(), cb["id"].as_str().unwrap());
    start_of_minute(&app);

    for _ in 0..3 {
        let (status, body) = app.connect_role(&a, ida, &role_a).await;
        assert_eq!(status, 200, "within the limit: {body}");
    }
    let path = format!("/v1/connections/{ida}/role");
    let (status, retry, body) = post(&app, &path, &a, Some(json!({"roleArn": role_a}))).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(body["error"]["details"]["limit"], "verifications", "{body}");
    assert_eq!(body["error"]["details"]["perMinute"], 3, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("at most 3 role verifications"), "{message}");
    let retry = retry.expect("a Retry-After header");
    assert!((1..=60).contains(&retry), "{retry}");

    // The other tenant, in the same minute, is not counted with A.
    let (status, body) = app.connect_role(&b, idb, &role_b).await;
    assert_eq!(status, 200, "tenant B is unaffected: {body}");

    // Spot's route counts against the same limit, and answers in its envelope.
    let (status, _) = app.spot_create_external_id(&a, "act-la2").await;
    assert_eq!(status, 200);
    let (status, body) = app.spot_set_credentials(&a, "act-la2", &role_a).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["response"]["status"]["code"], 429, "{body}");
    assert_eq!(body["response"]["errors"][0]["code"], "rate_limited", "{body}");

    // Re-checks have their own limit.
    for _ in 0..2 {
        let (status, body) = app.recheck(&a, ida).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = post(&app, &format!("/v1/connections/{ida}/checks"), &a, None).await;
    assert_eq!(
        (status, body["error"]["details"]["limit"].as_str()),
        (429, Some("rechecks")),
        "{body}"
    );
    assert!(retry.is_some());
    let (status, body) = app.recheck(&b, idb).await;
    assert_eq!(status, 200, "B's re-check: {body}");

    // The next minute, A may verify again.
    app.clock.advance(60);
    let (status, body) = app.connect_role(&a, ida, &role_a).await;
    assert_eq!(status, 200, "a new minute: {body}");
}

/// The limit is held in the store: two app instances on one store share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_store_share_the_limit() {
    let dir = std::env::temp_dir().join(format!("limits-{}", account_connect::ids::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = common::test_config();
    config.store_url = format!("sqlite://{}", dir.join("store.db").display());
    config.rate_limits.verifications_per_minute = 2;
    let one = common::spawn_app(config.clone()).await;
    let two = common::spawn_app(config).await;
    let t = common::token(&format!("org-{}", account_connect::ids::random_token(4)), None);
    start_of_minute(&one);
    start_of_minute(&two);
    // A role ARN that does not parse fails verification after its slot is
    // taken, with no AWS call.
    let c = connection(&one, &t, "act-shared").await;
    let id = c["id"].as_str().unwrap();
    let (s1, _) = one.connect_role(&t, id, "not-an-arn").await;
    let (s2, _) = two.connect_role(&t, id, "not-an-arn").await;
    assert_eq!((s1, s2), (422, 422));
    let (s3, body) = one.connect_role(&t, id, "not-an-arn").await;
    assert_eq!(
        (s3, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let (s4, body) = two.connect_role(&t, id, "not-an-arn").await;
    assert_eq!(
        (s4, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_verification_of_a_connection_waits_its_turn() {
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let mut config = common::test_config();
    config.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    config.iam_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let app = common::spawn_app(config).await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let t = common::token(&format!("org-{}", account_connect::ids::random_token(4)), None);
    let c = connection(&app, &t, "act-lease1").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let (role, _) = common::connection_role(&iam, &c).await;
    // Every AssumeRole waits, so the first verification is still running
    // when the second arrives.
    standin.with(|s| s.delays.insert("AssumeRole".into(), Duration::from_millis(1500)));
    let first = {
        let (app, t, id, role) = (app.clone(), t.clone(), id.clone(), role.clone());
        tokio::spawn(async move { app.connect_role(&t, &id, &role).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, retry, body) = post(
        &app,
        &format!("/v1/connections/{id}/role"),
        &t,
        Some(json!({"roleArn": role})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "verification_in_progress", "{body}");
    assert!(retry.is_some_and(|r| r > 0), "Retry-After");
    // Spot's route, for the same connection, is refused the same way.
    let (status, body) = app.spot_set_credentials(&t, "act-lease1", &role).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["response"]["errors"][0]["code"], "verification_in_progress",
        "{body}"
    );
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200, "the first verifies: {body}");
    let during = standin.with(|s| s.assume_calls.get(&role).copied().unwrap_or(0));
    assert!(during > 0);

    // One verification alone makes as many AssumeRole calls as the two
    // side by side made: the refused one made none.
    standin.with(|s| s.delays.clear());
    let (status, body) = app.connect_role(&t, &id, &role).await;
    assert_eq!(status, 200, "released: the next one runs: {body}");
    let alone = standin.with(|s| s.assume_calls.get(&role).copied().unwrap_or(0)) - during;
    assert_eq!(during, alone, "the stand-in saw one verification's AssumeRole calls");
}

/// Racing takers on both stores: exactly the limit's slots are taken in a
/// minute, whatever the interleaving, and the next minute starts afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_requests_take_exactly_the_limit_on_both_stores() {
    use account_connect::limits::{Limit, RateLimiter};
    let file = std::env::temp_dir().join(format!("limit-{}.db", account_connect::ids::random_token(4)));
    let sqlite = format!("sqlite://{}", file.display());
    let dynamo = common::dynamo_store_url().await;
    let now = 1_800_000_000 - 30; // mid-minute
    for (name, url) in [("sqlite", sqlite.as_str()), ("dynamodb", dynamo.as_str())] {
        let limiters: Vec<RateLimiter> = (0..12)
            .map(|_| RateLimiter::new(account_connect::store::open(url, &account_connect::app::aws_configs()).unwrap()))
            .collect();
        let org = format!("org-{}", account_connect::ids::random_token(4));
        let takes = futures::future::join_all(limiters.iter().map(|l| l.take(Limit::Syncs, &org, 5, now))).await;
        let granted = takes.iter().filter(|t| matches!(t, Ok(Ok(())))).count();
        assert_eq!(granted, 5, "{name}: {takes:?}");
        let refused = takes.iter().find_map(|t| t.as_ref().unwrap().clone().err()).unwrap();
        assert_eq!((refused.per_minute, refused.retry_after_secs), (5, 30), "{name}");
        // Another scope is not counted with it; the next minute is fresh.
        assert_eq!(
            limiters[0].take(Limit::Syncs, "other-org", 5, now).await,
            Ok(Ok(())),
            "{name}"
        );
        assert_eq!(
            limiters[0].take(Limit::Syncs, &org, 5, now + 30).await,
            Ok(Ok(())),
            "{name}"
        );
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}
