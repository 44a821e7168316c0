//! Request sequences at the edges of a connection's life, on SQLite and on
//! DynamoDB (moto): expiry and takeover, a second rotation, tampered and
//! foreign cursors, restricted tokens, the accounts claim, idempotency scope
//! and the size of the audit trail.

use crate::common;

use account_connect::config::Config;
use base64::Engine;
use common::AccountsClaim;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

async fn apps_with(config: Config) -> Vec<(&'static str, common::TestApp)> {
    let dynamo = Config {
        store_url: common::dynamo_store_url().await,
        ..config.clone()
    };
    vec![
        ("sqlite", common::spawn_app(config).await),
        ("dynamodb", common::spawn_app(dynamo).await),
    ]
}

async fn apps() -> Vec<(&'static str, common::TestApp)> {
    apps_with(common::test_config()).await
}

fn body(account: &str) -> Value {
    json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}, "awsAccountId": "123456789012"})
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A pending connection for `account`, then disconnected, so the account
/// can have another: returns the ids, oldest first.
async fn connections_of(app: &common::TestApp, t: &str, account: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, c) = app.create_connection(t, &body(account)).await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_str().unwrap().to_owned();
        if i + 1 < n {
            assert_eq!(app.disconnect(t, &id).await.0, 200);
        }
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn an_expired_connection_replaced_by_another_can_still_be_disconnected() {
    let config = Config {
        external_id_ttl_secs: 60,
        ..common::test_config()
    };
    for (name, app) in apps_with(config).await {
        let t = common::token("org-a", None);
        let (_, a) = app.create_connection(&t, &body("act-1")).await;
        let a_id = a["id"].as_str().unwrap();
        app.clock.advance(61);
        // The ttl is a minute of the app's clock: B's hold outlives the test.
        let (status, b) = app.create_connection(&t, &body("act-1")).await;
        assert_eq!(status, 201, "{name}: {b}");
        let (status, gone) = app.disconnect(&t, a_id).await;
        assert_eq!(
            (status, gone["status"].as_str()),
            (200, Some("disconnected")),
            "{name}: {gone}"
        );
        // B still holds the account (or has expired by now: then nobody does).
        let (status, ext) = app.spot_read_external_id(&t, "act-1").await;
        if status == 200 {
            assert_eq!(
                ext["response"]["items"][0]["externalId"], b["externalId"],
                "{name}: B's hold must survive A's disconnect"
            );
        }
    }
}

#[tokio::test]
async fn a_second_rotation_while_one_is_pending_is_refused_naming_it() {
    for (name, app) in apps().await {
        let t = common::token("org-a", None);
        let (_, c) = app.create_connection(&t, &body("act-1")).await;
        let id = c["id"].as_str().unwrap();
        let (_, first) = app.rotate_external_id(&t, id).await;
        let p1 = first["pendingExternalId"].as_str().unwrap();
        let (status, err) = app.rotate_external_id(&t, id).await;
        assert_eq!((status, code(&err)), (409, "rotation_pending"), "{name}: {err}");
        assert_eq!(err["error"]["details"]["pendingExternalId"], p1, "{name}");
        assert!(err["error"]["message"].as_str().unwrap().contains(p1));
        let (_, now) = app.get_connection(&t, id).await;
        assert_eq!(now["pendingExternalId"], p1, "{name}: the first pending ID is kept");
        assert_eq!(now["version"], first["version"], "{name}: nothing was written");
    }
}

/// The issue's sequence: connected with E0, rotated (P1), the customer trusts
/// [E0, P1], a second rotation is refused, and the re-check stays healthy.
#[tokio::test]
async fn a_refused_second_rotation_leaves_a_working_role_healthy() {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    for (name, app) in apps().await {
        let t = common::token("org-r", None);
        let account = format!("act-r{}", account_connect::ids::random_token(3));
        let (_, c) = app.create_connection(&t, &body(&account)).await;
        let id = c["id"].as_str().unwrap();
        let role = format!("Spot-Role-{}", account_connect::ids::random_token(4));
        let arn = common::create_role(&iam, &role, c["trustPolicy"].to_string()).await;
        for (i, p) in c["policies"].as_array().unwrap().iter().enumerate() {
            iam.put_role_policy()
                .role_name(&role)
                .policy_name(format!("p{i}"))
                .policy_document(p["document"].to_string())
                .send()
                .await
                .unwrap();
        }
        let (status, done) = app.connect_role(&t, id, &arn).await;
        assert_eq!(
            (status, done["health"].as_str()),
            (200, Some("healthy")),
            "{name}: {done}"
        );
        let (_, rotated) = app.rotate_external_id(&t, id).await;
        iam.update_assume_role_policy()
            .role_name(&role)
            .policy_document(rotated["trustPolicy"].to_string())
            .send()
            .await
            .unwrap();
        let (status, _) = app.rotate_external_id(&t, id).await;
        assert_eq!(status, 409, "{name}");
        let (status, checked) = app.recheck(&t, id).await;
        assert_eq!(
            (status, checked["health"].as_str()),
            (200, Some("healthy")),
            "{name}: {}",
            checked["report"]
        );
        assert_eq!(checked["pendingExternalId"], rotated["pendingExternalId"], "{name}");
    }
}

#[tokio::test]
async fn a_cursor_not_issued_for_this_query_and_caller_is_a_400() {
    for (name, app) in apps().await {
        let t = common::token("org-a", None);
        let ids1 = connections_of(&app, &t, "act-1", 3).await;
        let ids2 = connections_of(&app, &t, "act-2", 1).await;
        // Built as cursors once were: base64 of another account's store key.
        let (_, other) = app.get_connection(&t, &ids2[0]).await;
        let created = time::OffsetDateTime::parse(
            other["createdAt"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp();
        let forged = B64.encode(format!("ACCT#act-2#{created:012}#{}", ids2[0]));
        let (status, err) = app
            .list_connections(&t, &format!("accountId=act-1&cursor={forged}"))
            .await;
        assert_eq!((status, code(&err)), (400, "invalid_cursor"), "{name}: {err}");
        let own = B64.encode(format!("ACCT#act-1#{created:012}#{}", ids1[0]));
        let (status, _) = app.list_connections(&t, &format!("cursor={own}")).await;
        assert_eq!(status, 400, "{name}: a cursor the service did not seal");

        // A real cursor works for its own query only.
        let (_, page) = app.list_connections(&t, "accountId=act-1&limit=1").await;
        let cursor = page["nextCursor"].as_str().expect("more than one page").to_owned();
        let (status, next) = app
            .list_connections(&t, &format!("accountId=act-1&limit=1&cursor={cursor}"))
            .await;
        assert_eq!(status, 200, "{name}: {next}");
        let limited = common::token("org-a", Some(&["act-1", "act-2"]));
        let other_user = common::token_for("org-a", "someone-else", Some(AccountsClaim::every()));
        let other_org = common::token("org-b", None);
        for (what, path, token) in [
            (
                "another account",
                format!("/v1/connections?accountId=act-2&cursor={cursor}"),
                &t,
            ),
            ("no account filter", format!("/v1/connections?cursor={cursor}"), &t),
            (
                "a status filter",
                format!("/v1/connections?accountId=act-1&status=pending&cursor={cursor}"),
                &t,
            ),
            (
                "another scope",
                format!("/v1/connections?accountId=act-1&cursor={cursor}"),
                &limited,
            ),
            (
                "another user",
                format!("/v1/connections?accountId=act-1&cursor={cursor}"),
                &other_user,
            ),
            (
                "another org",
                format!("/v1/connections?accountId=act-1&cursor={cursor}"),
                &other_org,
            ),
            (
                "an audit trail",
                format!("/v1/connections/{}/events?cursor={cursor}", ids1[0]),
                &t,
            ),
            (
                "a cut cursor",
                format!("/v1/connections?accountId=act-1&cursor={}", &cursor[..cursor.len() - 2]),
                &t,
            ),
            (
                "a huge cursor",
                format!("/v1/connections?cursor={}", "A".repeat(4000)),
                &t,
            ),
        ] {
            let (status, err) = app.call("GET", &path, Some(token), None).await;
            assert_eq!((status, code(&err)), (400, "invalid_cursor"), "{name}: {what}: {err}");
        }
    }
}

#[tokio::test]
async fn a_restricted_token_pages_through_its_own_accounts_only() {
    for (name, app) in apps().await {
        let all = common::token("org-a", None);
        let mut hidden = connections_of(&app, &all, "act-0", 2).await;
        let mine = connections_of(&app, &all, "act-1", 3).await;
        hidden.extend(connections_of(&app, &all, "act-2", 2).await);
        let also_mine = connections_of(&app, &all, "act-3", 1).await;
        let limited = common::token("org-a", Some(&["act-3", "act-1"]));
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let path = match &cursor {
                Some(c) => format!("/v1/connections?limit=1&cursor={c}"),
                None => "/v1/connections?limit=1".to_owned(),
            };
            let (status, page) = app.call("GET", &path, Some(&*limited), None).await;
            assert_eq!(status, 200, "{name}: {page}");
            let items = page["items"].as_array().unwrap();
            seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
            match page["nextCursor"].as_str() {
                Some(c) => {
                    assert_eq!(items.len(), 1, "{name}: a page before the last is full");
                    let raw = B64.decode(c).unwrap();
                    let text = String::from_utf8_lossy(&raw);
                    assert!(
                        !text.contains("act-") && !text.contains("con-"),
                        "{name}: readable cursor"
                    );
                    for id in hidden.iter().chain(&mine) {
                        assert!(!c.contains(id.as_str()), "{name}");
                    }
                    cursor = Some(c.to_owned());
                }
                None => break,
            }
        }
        let mut expected: Vec<String> = mine.iter().chain(&also_mine).cloned().collect();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "{name}");
        // Asking for an account outside the token shows nothing.
        let (_, none) = app.list_connections(&limited, "accountId=act-0").await;
        assert_eq!(none["items"], json!([]), "{name}");
        assert!(none.get("nextCursor").is_none(), "{name}");
    }
}

#[tokio::test]
async fn every_account_is_an_explicit_claim() {
    for (name, app) in apps().await {
        let every = common::token("org-a", None);
        let (status, _) = app.create_connection(&every, &body("act-1")).await;
        assert_eq!(status, 201, "{name}");
        let absent = common::token_for("org-a", "forgotten", None);
        let (status, err) = app.list_connections(&absent, "").await;
        assert_eq!((status, code(&err)), (403, "accounts_claim_missing"), "{name}: {err}");
        let (status, err) = app.create_connection(&absent, &body("act-2")).await;
        assert_eq!((status, code(&err)), (403, "accounts_claim_missing"), "{name}");
        // Spot's routes answer in Spot's envelope.
        let (status, env) = app.spot_read_external_id(&absent, "act-1").await;
        assert_eq!(status, 403, "{name}");
        assert_eq!(env["response"]["errors"][0]["code"], "accounts_claim_missing", "{name}");
        for bad in [
            AccountsClaim::Every("all".into()),
            AccountsClaim::only(["*"]),
            AccountsClaim::only(["act-1", "not an account"]),
        ] {
            let t = common::token_for("org-a", "u", Some(bad.clone()));
            let (status, err) = app.list_connections(&t, "").await;
            assert_eq!((status, code(&err)), (403, "invalid_accounts_claim"), "{name}: {bad:?}");
        }
        let nothing = common::token_for("org-a", "u", Some(AccountsClaim::only(Vec::<String>::new())));
        let (status, list) = app.list_connections(&nothing, "").await;
        assert_eq!(
            (status, &list["items"]),
            (200, &json!([])),
            "{name}: an empty list grants nothing"
        );
    }
    // A deployment that still has such an issuer may read absent as every account.
    let lenient = Config {
        require_accounts_claim: false,
        ..common::test_config()
    };
    let app = common::spawn_app(lenient).await;
    let every = common::token("org-a", None);
    app.create_connection(&every, &body("act-1")).await;
    let absent = common::token_for("org-a", "legacy", None);
    let (status, list) = app.list_connections(&absent, "").await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));
}

#[tokio::test]
async fn idempotency_keys_belong_to_their_user() {
    for (name, app) in apps().await {
        let alice = common::token_for("org-a", "alice", Some(AccountsClaim::every()));
        let bob = common::token_for("org-a", "bob", Some(AccountsClaim::every()));
        let keyed = |token: &str, b: Value| {
            app.request("POST", "/v1/connections", Some(token))
                .header("Idempotency-Key", "k-shared")
                .json(&b)
                .send()
        };
        let res = keyed(&alice, body("act-1")).await.unwrap();
        assert_eq!(res.status(), 201, "{name}");
        let a: Value = res.json().await.unwrap();
        // Bob's same key and body is his own request: it meets Alice's live
        // connection as any second request for the account would.
        let res = keyed(&bob, body("act-1")).await.unwrap();
        assert!(res.headers().get("idempotent-replayed").is_none(), "{name}");
        let (status, err) = (res.status().as_u16(), res.json::<Value>().await.unwrap());
        assert_eq!((status, code(&err)), (409, "account_has_connection"), "{name}: {err}");
        // Bob's same key for another request is not "reused".
        let res = keyed(&bob, body("act-2")).await.unwrap();
        assert_eq!(res.status(), 201, "{name}");
        let b: Value = res.json().await.unwrap();
        assert_ne!(a["id"], b["id"]);
        // Each replay answers its own user's connection.
        let res = keyed(&alice, body("act-1")).await.unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(res.json::<Value>().await.unwrap()["id"], a["id"], "{name}");
        let res = keyed(&bob, body("act-2")).await.unwrap();
        assert_eq!(res.json::<Value>().await.unwrap()["id"], b["id"], "{name}");
    }
}

#[tokio::test]
async fn the_audit_trail_pages_and_each_event_is_capped() {
    for (name, app) in apps().await {
        let t = common::token("org-a", None);
        let (_, c) = app.create_connection(&t, &body("act-1")).await;
        let id = c["id"].as_str().unwrap();
        // Failing roles, one of them with a 60 KB "ARN".
        let huge = format!("arn:aws:iam::123456789012:role/{}", "x".repeat(60_000));
        for arn in [
            huge.as_str(),
            "not-an-arn",
            "arn:aws:iam::12:role/x",
            "nope",
            "still-not",
        ] {
            let (status, _) = app.connect_role(&t, id, arn).await;
            assert_eq!(status, 422, "{name}");
        }
        let mut kinds = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/connections/{id}/events?limit=2&cursor={c}"),
                None => format!("/v1/connections/{id}/events?limit=2"),
            };
            let (status, page) = app.call("GET", &path, Some(&*t), None).await;
            assert_eq!(status, 200, "{name}: {page}");
            pages += 1;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2, "{name}: {} events in a page of 2", items.len());
            for e in items {
                kinds.push(e["kind"].as_str().unwrap().to_owned());
                let size = e["detail"].to_string().len();
                assert!(
                    size <= account_connect::connections::MAX_EVENT_DETAIL_BYTES,
                    "{name}: an event of {size} bytes"
                );
            }
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 3, "{name}");
        assert_eq!(
            kinds,
            ["created", "failed", "failed", "failed", "failed", "failed"],
            "{name}"
        );
        let (status, err) = app.events(&t, id, "limit=1000").await;
        assert_eq!((status, code(&err)), (400, "invalid_query"), "{name}");
    }
}
