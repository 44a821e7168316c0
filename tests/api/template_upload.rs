//! A template S3 will not take is reported as such (503
//! `template_upload_failed`), not as an unreachable database, and the
//! connection is not created without it.

use crate::common;
use common::callback::{config, ACCOUNT};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_says_so_and_saves_nothing() {
    common::moto_endpoint();
    // A bucket moto has never had: the PUT is answered NoSuchBucket.
    let missing = format!("no-such-bucket-{}", account_connect::ids::random_token(4));
    let app = common::spawn_app(config(Some(missing))).await;
    let t = common::token("org-upload", None);
    let body = json!({"accountId": "act-1", "partition": "aws", "permissions": {"mode": "default"},
        "method": "automatic", "awsAccountId": ACCOUNT});
    let res = app
        .request("POST", "/v1/connections", Some(&t))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "2", "worth a retry");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "template_upload_failed", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("could not store the CloudFormation template"),
        "{message}"
    );
    assert!(!message.contains("database"), "not blamed on the store: {message}");
    assert!(
        !message.contains("no-such-bucket"),
        "the bucket stays in the log: {message}"
    );
    // Nothing was saved: no connection, and the Spot account is still free.
    let (status, list) = app.list_connections(&t, "").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"], json!([]), "{list}");
    let manual = json!({"accountId": "act-1", "partition": "aws", "permissions": {"mode": "default"}});
    let (status, c) = app.create_connection(&t, &manual).await;
    assert_eq!(status, 201, "{c}");
}
