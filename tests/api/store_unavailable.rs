//! A store that cannot be reached: 503 with Retry-After, nothing half-written.
//! Its own test binary, because it points the SDK at a dead port through the
//! environment.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn an_unreachable_dynamodb_answers_503_with_retry_after() {
    // Nothing listens on port 9 of loopback; the SDK gives up within its timeouts.
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9");
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let config = account_connect::config::Config {
        store_url: "dynamodb://nowhere".into(),
        ..common::test_config()
    };
    let app = common::spawn_app(config).await;
    let res = app
        .client
        .post(app.url("/v1/connections"))
        .bearer_auth(common::token("org-a", None))
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
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9");
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let config = account_connect::config::Config {
        store_url: "dynamodb://nowhere".into(),
        ..common::test_config()
    };
    let app = common::spawn_app(config).await;
    use base64::Engine;
    // Base64 of another Spot account's store key, as cursors once were.
    let forged =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ACCT#act-2#001800000000#con-000000000000000000000000");
    for path in [
        format!("/v1/connections?accountId=act-1&cursor={forged}"),
        format!("/v1/connections/con-000000000000000000000000/events?cursor={forged}"),
    ] {
        let res = app
            .client
            .get(app.url(&path))
            .bearer_auth(common::token("org-a", None))
            .send()
            .await
            .unwrap();
        // The store is unreachable: a 503 would mean the cursor reached it.
        assert_eq!(res.status(), 400, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_cursor");
    }
}
