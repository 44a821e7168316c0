//! A store that cannot be reached: 503 with Retry-After, nothing half-written.
//! The store's SDK client is pointed at a dead port by its own endpoint, so
//! the other tests in this process keep theirs. A write that loses every
//! race with other writers is not that: it has its own retryable code.

use crate::common;

use account_connect::app;
use account_connect::store::DynamoStore;
use serde_json::json;
use std::sync::Arc;

/// The app on a DynamoDB store nobody answers for: nothing listens on port 9
/// of loopback, and the SDK gives up within its timeouts.
async fn app_on_a_dead_store() -> common::TestApp {
    let config = account_connect::config::Config {
        store_url: "dynamodb://nowhere".into(),
        ..common::test_config()
    };
    let store = Arc::new(DynamoStore::with_endpoint(
        "nowhere".into(),
        "http://127.0.0.1:9",
        app::aws_configs(),
    ));
    common::serve(app::build_with_store(config, store)).await
}

#[tokio::test]
async fn an_unreachable_dynamodb_answers_503_with_retry_after() {
    let app = app_on_a_dead_store().await;
    let res = app
        .request("POST", "/v1/connections", Some(&common::token("org-a", None)))
        .json(&json!({"accountId": "act-1", "partition": "aws", "permissions": {"mode": "default"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable");
}

#[tokio::test]
async fn a_tampered_cursor_is_refused_before_any_store_call() {
    let app = app_on_a_dead_store().await;
    use base64::Engine;
    // Base64 of another Spot account's store key, as cursors once were.
    let forged =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ACCT#act-2#001800000000#con-000000000000000000000000");
    let t = common::token("org-a", None);
    for path in [
        format!("/v1/connections?accountId=act-1&cursor={forged}"),
        format!("/v1/connections/con-000000000000000000000000/events?cursor={forged}"),
    ] {
        let (status, body) = app.call("GET", &path, Some(&t), None).await;
        // The store is unreachable: a 503 would mean the cursor reached it.
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], "invalid_cursor");
    }
}

#[tokio::test]
async fn a_write_that_loses_every_race_is_its_own_retryable_error() {
    use account_connect::api::error::ApiError;
    use account_connect::connections::ServiceError;
    use account_connect::domain::{Event, EventKind};
    use axum::response::IntoResponse;

    let (app, state) = common::spawn_with_state(common::test_config()).await;
    let t = common::token("org-race", None);
    let body = json!({"accountId": "act-1", "partition": "aws", "permissions": {"mode": "default"}});
    let (status, c) = app.create_connection(&t, &body).await;
    assert_eq!(status, 201, "{c}");
    let tenant = account_connect::tenancy::Tenant {
        org: "org-race".into(),
        sub: "test".into(),
        accounts: None,
    };
    let id = c["id"].as_str().unwrap().parse().unwrap();
    // Another writer gets in before every attempt: the version each
    // attempt writes on is never the stored one.
    let mut attempts = 0;
    let err = state
        .connections
        .change(&tenant, &id, |c, t| {
            attempts += 1;
            c.version += 100;
            Ok(Some((
                Event::new(t, c, EventKind::Checked, "test", "ok", None),
                Vec::new(),
            )))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::TooManyConcurrentWrites), "{err:?}");
    assert!(attempts > 1, "retried before giving up");

    let api = ApiError::from(err);
    assert_eq!(
        (api.status.as_u16(), api.code),
        (503, "too_many_concurrent_writes"),
        "{api}"
    );
    assert!(!api.message.contains("database"), "not the store being down: {api}");
    let res = api.into_response();
    assert!(res.headers().contains_key("retry-after"));
    // Nothing was written.
    let (_, now) = app.get_connection(&t, c["id"].as_str().unwrap()).await;
    assert_eq!(now["version"], c["version"], "{now}");
}
