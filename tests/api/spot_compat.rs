//! Spot's public API, driven by Spot's own Python SDK (spotinst-sdk2).

use crate::common;

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
    let (status, body) = app.spot_read_external_id(&t, "act-12345678").await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["status"]["code"], 200);
    assert_eq!(body["response"]["items"][0]["externalId"], ext.as_str());
    assert_eq!(body["response"]["count"], 1);
    // It is the same connection the /v1 API shows.
    let (_, list) = app.list_connections(&t, "accountId=act-12345678").await;
    assert_eq!(list["items"][0]["externalId"], ext.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_in_spots_envelope() {
    let app = common::spawn_app(common::test_config()).await;
    let t = common::token("org-a", None);
    let (ok, out) = sdk(&app, "not-a-token", "act-12345678", &["create_external_id"]);
    assert!(!ok, "{out}");
    let (status, body) = app
        .call("POST", "/setup/credentials/aws/externalId", Some(&*t), None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["response"]["status"]["code"], 400);
    assert_eq!(body["response"]["errors"][0]["code"], "missing_account_id");
    let (status, body) = app.spot_read_external_id(&t, "act-00000000").await;
    assert_eq!(status, 404);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_sets_credentials_and_reads_them_back() {
    common::moto_endpoint();
    let app = common::spawn_app(common::test_config()).await;
    let t = common::token("org-s", None);
    let (ok, created) = sdk(&app, &t, "act-55555555", &["create_external_id"]);
    assert!(ok, "{created}");
    let (_, list) = app.list_connections(&t, "accountId=act-55555555").await;
    let conn = &list["items"][0];
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let name = format!("Spot-Role-{}", account_connect::ids::random_token(4));
    let role = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(conn["trustPolicy"].to_string())
        .send()
        .await
        .unwrap();
    let policy = iam
        .create_policy()
        .policy_name(format!("{name}-p"))
        .policy_document(conn["policies"][0]["document"].to_string())
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name(&name)
        .policy_arn(policy.policy.unwrap().arn.unwrap())
        .send()
        .await
        .unwrap();
    let arn = role.role.unwrap().arn;

    // A role that does not exist: the SDK raises, with the report's messages.
    let (ok, err) = sdk(
        &app,
        &t,
        "act-55555555",
        &["set_credentials", "arn:aws:iam::123456789012:role/Nope"],
    );
    assert!(!ok && err["error"].as_str().unwrap().contains("Nope"), "{err}");

    let (ok, set) = sdk(&app, &t, "act-55555555", &["set_credentials", &arn]);
    assert!(ok, "{set}");
    let (status, body) = app.spot_get_credentials(&t, "act-55555555").await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["items"][0]["iamRole"], arn.as_str());
    assert_eq!(body["response"]["items"][0]["status"], "connected");
}
