//! Spot's public API, driven by Spot's own Python SDK (spotinst-sdk2).

mod common;

use serde_json::Value;

fn sdk(app: &common::TestApp, token: &str, account: &str, args: &[&str]) -> (bool, Value) {
    let mut all = vec![app.base.as_str(), token, account];
    all.extend_from_slice(args);
    let (ok, out) = common::run_python("tests/tools/spot_sdk_client.py", &all, "");
    let line = out.lines().last().unwrap_or_default();
    (
        ok,
        serde_json::from_str(line).unwrap_or_else(|_| panic!("SDK printed: {out}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_gets_one_stable_external_id_per_account() {
    let app = common::spawn_app(common::test_config()).await;
    let t = common::token("org-a", None);
    let (ok, first) = sdk(&app, &t, "act-12345678", &["create_external_id"]);
    assert!(ok, "{first}");
    let ext = first["result"]["external_id"].as_str().unwrap().to_owned();
    assert!(ext.starts_with("spotinst:aws:extid:"));
    assert!(first["result"]["max_valid_until"].as_str().unwrap().ends_with('Z'));
    // Called again: the same ID, never silently a new one.
    let (_, second) = sdk(&app, &t, "act-12345678", &["create_external_id"]);
    assert_eq!(second["result"]["external_id"], ext.as_str());
    // Another account gets another.
    let (_, other) = sdk(&app, &t, "act-87654321", &["create_external_id"]);
    assert_ne!(other["result"]["external_id"], ext.as_str());

    // Read back through the GET route, in Spot's envelope.
    let res = app
        .client
        .get(app.url("/setup/credentials/aws/externalId/act-12345678"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["response"]["status"]["code"], 200);
    assert_eq!(body["response"]["items"][0]["externalId"], ext.as_str());
    assert_eq!(body["response"]["count"], 1);
    // It is the same connection the /v1 API shows.
    let list: Value = app
        .client
        .get(app.url("/v1/connections?accountId=act-12345678"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["externalId"], ext.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_in_spots_envelope() {
    let app = common::spawn_app(common::test_config()).await;
    let t = common::token("org-a", None);
    let (ok, out) = sdk(&app, "not-a-token", "act-12345678", &["create_external_id"]);
    assert!(!ok, "{out}");
    let res = app
        .client
        .post(app.url("/setup/credentials/aws/externalId"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["response"]["status"]["code"], 400);
    assert_eq!(body["response"]["errors"][0]["code"], "missing_account_id");
    let res = app
        .client
        .get(app.url("/setup/credentials/aws/externalId/act-00000000"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["response"]["errors"][0]["code"], "external_id_not_found");
    // Another org does not see org-a's ID.
    let (_, mine) = sdk(&app, &t, "act-12345678", &["create_external_id"]);
    let (_, theirs) = sdk(
        &app,
        &common::token("org-b", None),
        "act-12345678",
        &["create_external_id"],
    );
    assert_ne!(mine["result"]["external_id"], theirs["result"]["external_id"]);
}
