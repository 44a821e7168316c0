//! The connections API: issuing, listing, rotating and retiring external IDs,
//! per tenant, on SQLite and on DynamoDB (moto).

use crate::common;

use account_connect::config::Config;
use serde_json::{json, Value};

async fn apps() -> Vec<(&'static str, common::TestApp)> {
    let dynamo = Config {
        store_url: common::dynamo_store_url().await,
        ..common::test_config()
    };
    vec![
        ("sqlite", common::spawn_app(common::test_config()).await),
        ("dynamodb", common::spawn_app(dynamo).await),
    ]
}

fn body(account: &str) -> Value {
    json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}, "awsAccountId": "123456789012"})
}

#[tokio::test]
async fn create_returns_everything_the_customer_needs() {
    for (name, app) in apps().await {
        let t = common::token("org-a", None);
        let (status, c) = app.create_connection(&t, &body("act-1")).await;
        assert_eq!(status, 201, "{name}: {c}");
        assert_eq!(c["status"], "pending");
        let ext = c["externalId"].as_str().unwrap();
        assert!(
            ext.starts_with("spotinst:aws:extid:") && ext.len() >= "spotinst:aws:extid:".len() + 32,
            "{ext}"
        );
        assert_eq!(c["principal"], "arn:aws:iam::922761411349:root");
        let stmt = &c["trustPolicy"]["Statement"][0];
        assert_eq!(stmt["Principal"]["AWS"], "arn:aws:iam::922761411349:root");
        assert_eq!(stmt["Condition"]["StringEquals"]["sts:ExternalId"], ext);
        assert_eq!(c["policies"][0]["name"], "Spot-Policy");
        assert_eq!(c["permissions"]["mode"], "default");
        assert!(c["expiresAt"].as_str().unwrap().ends_with('Z'));
        let (status, got) = app.get_connection(&t, c["id"].as_str().unwrap()).await;
        assert_eq!((status, &got["externalId"]), (200, &c["externalId"]), "{name}");
        let (_, events) = app.events(&t, c["id"].as_str().unwrap(), "").await;
        assert_eq!(events["items"][0]["kind"], "created");
        assert_eq!(events["items"][0]["actor"], "user-of-org-a");
    }
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    for (name, app) in apps().await {
        let a = common::token("org-a", None);
        let b = common::token("org-b", None);
        let (_, c) = app.create_connection(&a, &body("act-1")).await;
        let id = c["id"].as_str().unwrap();
        let unknown = "con-000000000000000000000000";
        for (method, suffix) in [
            ("GET", ""),
            ("DELETE", ""),
            ("POST", "/external-id"),
            ("GET", "/events"),
        ] {
            let theirs = app
                .call(method, &format!("/v1/connections/{id}{suffix}"), Some(&*b), None)
                .await;
            let missing = app
                .call(method, &format!("/v1/connections/{unknown}{suffix}"), Some(&*b), None)
                .await;
            assert_eq!(theirs.0, 404, "{name} {method} {suffix}");
            assert_eq!(
                theirs, missing,
                "{name}: another org's id must read like an unknown one"
            );
        }
        let (_, list) = app.list_connections(&b, "").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 0, "{name}");
        // The same Spot account id in another org is another account.
        let (status, _) = app.create_connection(&b, &body("act-1")).await;
        assert_eq!(status, 201, "{name}");
        // Still there for its owner.
        assert_eq!(app.get_connection(&a, id).await.0, 200);
    }
}

#[tokio::test]
async fn a_token_limited_to_some_accounts_acts_on_those_only() {
    let app = common::spawn_app(common::test_config()).await;
    let all = common::token("org-a", None);
    let limited = common::token("org-a", Some(&["act-1"]));
    let (_, other) = app.create_connection(&all, &body("act-2")).await;
    let (status, err) = app.create_connection(&limited, &body("act-2")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap()),
        (403, "account_not_allowed")
    );
    assert_eq!(app.get_connection(&limited, other["id"].as_str().unwrap()).await.0, 404);
    assert_eq!(app.create_connection(&limited, &body("act-1")).await.0, 201);
    let (_, list) = app.list_connections(&limited, "").await;
    let accounts: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, vec!["act-1"]);
}

#[tokio::test]
async fn idempotent_retries_even_all_at_once_give_one_connection() {
    for (name, app) in apps().await {
        let t = common::token("org-a", None);
        let send_keyed = |key: &'static str, b: Value| {
            let (app, t) = (app.clone(), t.clone());
            async move { app.create_connection_keyed(&t, key, &b).await }
        };
        let answers = futures_join_all((0..16).map(|_| send_keyed("k-1", body("act-1")))).await;
        let ids: std::collections::BTreeSet<String> = answers
            .iter()
            .map(|(s, c)| {
                assert!(*s == 201 || *s == 200, "{name}: {s} {c}");
                c["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "{name}: {ids:?}");
        assert_eq!(
            answers.iter().filter(|(s, _)| *s == 201).count(),
            1,
            "{name}: exactly one creates"
        );
        let (_, list) = app.list_connections(&t, "accountId=act-1").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{name}");
        let (status, err) = send_keyed("k-1", body("act-9")).await;
        assert_eq!(
            (status, err["error"]["code"].as_str().unwrap()),
            (409, "idempotency_key_reused"),
            "{name}"
        );
        // Without a key, a second connection for a live account is refused, naming the first.
        let (status, err) = app.create_connection(&t, &body("act-1")).await;
        assert_eq!(
            (status, err["error"]["code"].as_str().unwrap()),
            (409, "account_has_connection"),
            "{name}"
        );
        assert_eq!(
            err["error"]["details"]["connectionId"].as_str().unwrap(),
            ids.iter().next().unwrap()
        );
    }
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn unused_external_ids_expire_before_any_ttl_deletion() {
    for store in ["sqlite::memory:".to_owned(), common::dynamo_store_url().await] {
        let config = Config {
            store_url: store.clone(),
            external_id_ttl_secs: 1,
            ..common::test_config()
        };
        let app = common::spawn_app(config).await;
        let t = common::token("org-a", None);
        let (_, c) = app.create_connection(&t, &body("act-1")).await;
        app.clock.advance(2);
        let (_, got) = app.get_connection(&t, c["id"].as_str().unwrap()).await;
        assert_eq!(got["status"], "expired", "{store}");
        let (_, expired) = app.list_connections(&t, "status=expired").await;
        assert_eq!(expired["items"].as_array().unwrap().len(), 1, "{store}");
        let (_, pending) = app.list_connections(&t, "status=pending").await;
        assert_eq!(pending["items"].as_array().unwrap().len(), 0, "{store}");
        // The account is free again, with a new ID; the expired one cannot be rotated.
        let (status, fresh) = app.create_connection(&t, &body("act-1")).await;
        assert_eq!(status, 201, "{store}");
        assert_ne!(fresh["externalId"], c["externalId"]);
        let (status, _) = app.rotate_external_id(&t, c["id"].as_str().unwrap()).await;
        assert_eq!(status, 409, "{store}");
    }
}

#[tokio::test]
async fn rotation_keeps_the_current_id_beside_the_new_one() {
    for (name, app) in apps().await {
        let t = common::token("org-a", None);
        let (_, c) = app.create_connection(&t, &body("act-1")).await;
        let id = c["id"].as_str().unwrap();
        let (status, r) = app.rotate_external_id(&t, id).await;
        assert_eq!(status, 200, "{name}: {r}");
        assert_eq!(r["externalId"], c["externalId"], "the current ID keeps working");
        let new = r["pendingExternalId"].as_str().unwrap();
        assert_ne!(new, c["externalId"].as_str().unwrap());
        assert_eq!(
            r["trustPolicy"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
            json!([c["externalId"], new])
        );
        let (_, events) = app.events(&t, id, "").await;
        let kinds: Vec<&str> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, vec!["created", "rotated"], "{name}");
    }
}

#[tokio::test]
async fn disconnect_retires_the_id_and_frees_the_account() {
    for (name, app) in apps().await {
        let t = common::token("org-a", None);
        let (_, c) = app.create_connection(&t, &body("act-1")).await;
        let id = c["id"].as_str().unwrap();
        let (status, d) = app.disconnect(&t, id).await;
        assert_eq!((status, d["status"].as_str().unwrap()), (200, "disconnected"), "{name}");
        // Idempotent.
        let (status, again) = app.disconnect(&t, id).await;
        assert_eq!((status, &again["version"]), (200, &d["version"]), "{name}");
        let (status, fresh) = app.create_connection(&t, &body("act-1")).await;
        assert_eq!(status, 201, "{name}");
        assert_ne!(
            fresh["externalId"], c["externalId"],
            "{name}: a retired ID is never reissued"
        );
        let (status, _) = app.rotate_external_id(&t, id).await;
        assert_eq!(status, 409, "{name}");
        let (_, events) = app.events(&t, id, "").await;
        assert_eq!(
            events["items"].as_array().unwrap().last().unwrap()["kind"],
            "disconnected"
        );
    }
}

#[tokio::test]
async fn refusals_are_clear_4xx() {
    let app = common::spawn_app(common::test_config()).await;
    let t = common::token("org-a", None);
    let gov = json!({"accountId": "act-1", "partition": "aws-us-gov", "permissions": {"mode": "default"}});
    let (status, err) = app.create_connection(&t, &gov).await;
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap()),
        (422, "partition_not_configured")
    );
    let bad = json!({"accountId": "acc-1", "partition": "aws", "permissions": {"mode": "default"}});
    assert_eq!(app.create_connection(&t, &bad).await.0, 422);
    let bad =
        json!({"accountId": "act-1", "partition": "aws", "permissions": {"mode": "default"}, "awsAccountId": "12"});
    assert_eq!(app.create_connection(&t, &bad).await.0, 422);
    let (status, err) = app.list_connections(&t, "cursor=garbage").await;
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap()),
        (400, "invalid_cursor")
    );
    assert_eq!(app.get_connection(&t, "not-an-id").await.0, 404);
    // No token, a bad token, a token signed with another key.
    let res = app.request("GET", "/v1/connections", None).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(app.list_connections("garbage", "").await.0, 401);
    let forged = account_connect::tenancy::mint(
        b"another-secret-another-secret-123",
        &account_connect::tenancy::Claims {
            sub: "x".into(),
            org: "org-a".into(),
            accounts: Some(common::AccountsClaim::every()),
            exp: None,
            iat: None,
        },
    );
    assert_eq!(app.list_connections(&forged, "").await.0, 401);
}

#[tokio::test]
async fn govcloud_connects_once_its_principal_and_credentials_are_configured() {
    let mut config = common::test_config();
    config.principals.insert(
        account_connect::domain::Partition::AwsUsGov,
        "arn:aws-us-gov:iam::123456789012:root".into(),
    );
    config.credential_sources.insert(
        account_connect::domain::Partition::AwsUsGov,
        account_connect::config::CredentialSource::Profile("govcloud".into()),
    );
    let app = common::spawn_app(config).await;
    let t = common::token("org-a", None);
    let gov = json!({"accountId": "act-1", "partition": "aws-us-gov", "permissions": {"mode": "default"}});
    let (status, c) = app.create_connection(&t, &gov).await;
    assert_eq!(status, 201, "{c}");
    assert!(!c["policies"].to_string().contains("arn:aws:"));
    assert_eq!(
        c["trustPolicy"]["Statement"][0]["Principal"]["AWS"],
        "arn:aws-us-gov:iam::123456789012:root"
    );
    let custom = json!({"accountId": "act-2", "partition": "aws-us-gov", "permissions": {"mode": "custom", "products": ["ocean"]}});
    let (status, err) = app.create_connection(&t, &custom).await;
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap()),
        (422, "custom_permissions_not_allowed")
    );
}
