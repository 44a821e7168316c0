//! A store that cannot be reached: 503 with Retry-After, nothing half-written.
//! Its own test binary, because it points the SDK at a dead port through the
//! environment.

mod common;

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
