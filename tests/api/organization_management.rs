//! The management connection belongs to its organization: a token for the
//! organization's Spot account cannot re-point its role (the /v1 route or
//! Spot's set-credentials) nor disconnect it; each is refused with
//! `managed_by_organization`, nothing changes, and the Spot account stays
//! held until the organization is offboarded. On both stores.

use crate::common;
use common::callback::config;
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/Elsewhere";

fn refused(what: &str, status: u16, body: &Value, code_at: &Value) {
    assert_eq!(status, 409, "{what}: {body}");
    assert_eq!(code_at, "managed_by_organization", "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_connection_changes_only_through_its_organization() {
    for kind in ["sqlite", "dynamodb"] {
        let mut c = config(None);
        if kind == "dynamodb" {
            c.store_url = common::dynamo_store_url().await;
        }
        let app = common::spawn_app(c).await;
        let account = format!("act-m{}", account_connect::ids::random_token(4));
        let t = common::token(&format!("org-m{}", account_connect::ids::random_token(4)), None);
        let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"},
            "managementAccountId": common::organization::fresh_account()});
        let (status, o) = app.create_organization(&t, &body).await;
        assert_eq!(status, 201, "{kind}: {o}");
        let org = o["id"].as_str().unwrap();
        let mgmt = o["managementConnection"]["id"].as_str().unwrap();
        let before = app.get_connection(&t, mgmt).await.1;

        let (status, err) = app.connect_role(&t, mgmt, ROLE).await;
        refused(&format!("{kind}: POST .../role"), status, &err, &err["error"]["code"]);
        assert_eq!(err["error"]["details"]["organizationId"], org, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("DELETE /v1/organizations/{org}")),
            "{err}"
        );
        let (status, err) = app.spot_set_credentials(&t, &account, ROLE).await;
        refused(
            &format!("{kind}: Spot's set-credentials"),
            status,
            &err,
            &err["response"]["errors"][0]["code"],
        );
        let (status, err) = app.disconnect(&t, mgmt).await;
        refused(&format!("{kind}: DELETE"), status, &err, &err["error"]["code"]);
        let (status, err) = app.rotate_external_id(&t, mgmt).await;
        refused(
            &format!("{kind}: POST .../external-id"),
            status,
            &err,
            &err["error"]["code"],
        );

        // Nothing changed: the connection, its events, the hold.
        let after = app.get_connection(&t, mgmt).await.1;
        assert_eq!(before, after, "{kind}");
        let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}});
        let (status, err) = app.create_connection(&t, &body).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (409, Some("account_has_connection")),
            "{kind}: the organization's Spot account is still held: {err}"
        );

        // Offboarding ends the management connection, and the hold with it.
        let (status, off) = app.offboard_organization(&t, org).await;
        assert_eq!(status, 200, "{kind}: {off}");
        assert_eq!(app.get_connection(&t, mgmt).await.1["status"], "disconnected");
        let (status, c) = app.create_connection(&t, &body).await;
        assert_eq!(status, 201, "{kind}: the Spot account is free once offboarded: {c}");
    }
}

/// Spot's own SDK is told the same, in Spot's envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spots_sdk_cannot_re_point_the_management_role() {
    let app = common::spawn_app(config(None)).await;
    let account = format!("act-s{}", account_connect::ids::random_token(4));
    let t = common::token("org-msdk", None);
    let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"},
        "managementAccountId": common::organization::fresh_account()});
    let (status, o) = app.create_organization(&t, &body).await;
    assert_eq!(status, 201, "{o}");
    let all = [app.base.as_str(), t.as_str(), account.as_str(), "set_credentials", ROLE];
    let (ok, out) = common::run_python("tests/tools/spot_sdk_client.py", &all, "");
    assert!(!ok, "{out}");
    assert!(out.contains("managed_by_organization"), "{out}");
    let mgmt = o["managementConnection"]["id"].as_str().unwrap();
    assert_eq!(app.get_connection(&t, mgmt).await.1["roleArn"], Value::Null);
}
