//! Every route, with malformed and hostile path values, query strings,
//! bodies, tokens and headers, on both stores: nothing a client sends may
//! produce a 5xx.

use crate::common;

use account_connect::config::Config;
use base64::Engine;
use common::AccountsClaim;
use serde_json::json;

struct Req {
    method: String,
    path: String,
    token: Option<String>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, Vec<u8>)>,
}

async fn create(app: &common::TestApp, t: &str, account: &str) -> String {
    let (status, c) = app
        .create_connection(
            t,
            &json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}}),
        )
        .await;
    assert_eq!(status, 201);
    c["id"].as_str().unwrap().to_owned()
}

/// Connections to aim at (external IDs live one second of the app's clock): one rotated,
/// one disconnected, one expired whose account another connection took over.
async fn seed(app: &common::TestApp, t: &str) -> Vec<String> {
    let ids = vec![
        create(app, t, "act-1").await,
        create(app, t, "act-2").await,
        create(app, t, "act-3").await,
    ];
    app.rotate_external_id(t, &ids[0]).await;
    app.disconnect(t, &ids[1]).await;
    app.clock.advance(2);
    create(app, t, "act-3").await;
    ids
}

fn tokens(org: &str) -> Vec<Option<String>> {
    let claims = |sub: &str, org: &str, accounts: Option<AccountsClaim>, exp: i64| account_connect::tenancy::Claims {
        sub: sub.into(),
        org: org.into(),
        accounts,
        exp: Some(exp),
        iat: None,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mint = |c| Some(account_connect::tenancy::mint(common::TEST_SECRET, &c));
    vec![
        None,
        Some("garbage".into()),
        Some("a.b.c".into()),
        Some(format!(
            "{}.e30.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#)
        )),
        mint(claims("u", org, None, now + 600)),
        mint(claims(
            "u",
            org,
            Some(AccountsClaim::Every("everything".into())),
            now + 600,
        )),
        mint(claims("u", org, Some(AccountsClaim::only(["*"])), now + 600)),
        mint(claims(
            "u",
            org,
            Some(AccountsClaim::only(vec!["act-1"; 1001])),
            now + 600,
        )),
        mint(claims("u", org, Some(AccountsClaim::only(["act-1"])), now + 600)),
        mint(claims(
            "u",
            org,
            Some(AccountsClaim::only(Vec::<String>::new())),
            now + 600,
        )),
        mint(claims(&"u".repeat(300), org, Some(AccountsClaim::every()), now + 600)),
        mint(claims(
            "u",
            "org#with/odd chars",
            Some(AccountsClaim::every()),
            now + 600,
        )),
        mint(claims("u", &"o".repeat(200), Some(AccountsClaim::every()), now + 600)),
        mint(claims("u", org, Some(AccountsClaim::every()), now - 10)),
        mint(claims("", org, Some(AccountsClaim::every()), now + 600)),
    ]
}

fn bodies(role: &str) -> Vec<Vec<u8>> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    vec![
        b"".to_vec(),
        b"{}".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"accountId\":".to_vec(),
        deep.into_bytes(),
        vec![0xff, 0xfe, b'{', 0x80],
        format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000)).into_bytes(),
        json!({"roleArn": format!("arn:aws:iam::123456789012:role/{}", "r".repeat(60_000))}).to_string().into_bytes(),
        json!({"roleArn": role}).to_string().into_bytes(),
        json!({"roleArn": 7}).to_string().into_bytes(),
        json!({"credentials": {"iamRole": role}}).to_string().into_bytes(),
        json!({"credentials": {"iamRole": "\u{0000}"}}).to_string().into_bytes(),
        json!({"accountId": "act-1", "partition": "aws", "permissions": {"mode": "default"}, "method": "automatic"})
            .to_string()
            .into_bytes(),
        json!({"accountId": "act-9", "partition": "aws-cn", "permissions": {"mode": "custom", "products": vec!["x"; 500]}})
            .to_string()
            .into_bytes(),
        json!({"accountId": "act-1", "partition": "aws", "permissions": {"mode": "default"}, "awsAccountId": "１２３"})
            .to_string()
            .into_bytes(),
        json!({"partition": "aws", "permissions": {"mode": "custom", "integrations": vec!["a"; 2000]}})
            .to_string()
            .into_bytes(),
    ]
}

fn queries(forged: &str, foreign: &str) -> Vec<String> {
    vec![
        String::new(),
        "?cursor=garbage".into(),
        format!("?cursor={forged}"),
        format!("?accountId=act-1&cursor={forged}"),
        format!("?cursor={foreign}"),
        format!("?cursor={}", "A".repeat(5000)),
        "?cursor=".into(),
        "?cursor=%00%ff".into(),
        "?limit=0".into(),
        "?limit=-1".into(),
        "?limit=99999999999999999999999".into(),
        "?limit=abc".into(),
        "?limit=100".into(),
        "?accountId=act-1&accountId=act-2".into(),
        "?accountId=%00".into(),
        "?accountId=*".into(),
        format!("?accountId=act-{}", "a".repeat(5000)),
        "?status=bogus".into(),
        "?status=expired&limit=1".into(),
        "?partition=mars".into(),
        "?partition=aws-cn".into(),
        "?unknown=1".into(),
        "?%zz=%zz".into(),
        "?accountId".into(),
    ]
}

fn path_values(ids: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ids.to_vec();
    v.extend(
        [
            "con-000000000000000000000000",
            "not-an-id",
            "con-AAAAAAAAAAAAAAAAAAAAAAAA",
            "%00",
            "..%2F..%2Fetc%2Fpasswd",
            "%ff%fe",
            "con-%C3%A9",
            "act-1",
            "act-%00",
            "*",
            "%2e%2e",
        ]
        .map(str::to_owned),
    );
    v.push("x".repeat(5000));
    v
}

fn concrete(path: &str, value: &str) -> String {
    path.replace("{id}", value)
        .replace("{accountId}", value)
        .replace("{messageId}", value)
}

/// Sends the requests eight at a time; the 5xx answers, described.
async fn run(app: &common::TestApp, reqs: Vec<Req>) -> Vec<String> {
    // A connection per request: the server closes one after refusing an
    // unread body, and a pooled client may send the next request into it.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut failures = Vec::new();
    for chunk in reqs.chunks(8) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|r| {
                let mut b = client
                    .request(r.method.parse().unwrap(), app.url(&r.path))
                    .header("content-type", "application/json");
                if let Some(t) = &r.token {
                    b = b.bearer_auth(t);
                }
                for (k, v) in &r.headers {
                    b = b.header(*k, reqwest::header::HeaderValue::from_bytes(v).unwrap());
                }
                if let Some(body) = &r.body {
                    b = b.body(body.clone());
                }
                tokio::spawn(async move {
                    match b.send().await {
                        Ok(res) => {
                            let status = res.status();
                            (Some(status), res.text().await.unwrap_or_default())
                        }
                        Err(e) => (None, e.to_string()),
                    }
                })
            })
            .collect();
        for (r, h) in chunk.iter().zip(handles) {
            let (status, text) = h.await.unwrap();
            if status.is_some_and(|s| !s.is_server_error()) {
                continue;
            }
            let body = r
                .body
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned());
            failures.push(format!(
                "{} {} body {:?}: {:?} {}",
                r.method,
                &r.path[..r.path.len().min(160)],
                body,
                status,
                &text[..text.len().min(300)]
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hostile_request_on_any_route_gets_a_server_error() {
    common::moto_endpoint(); // The role routes reach moto's STS and IAM.
    let base = Config {
        propagation_budget_secs: 0,
        external_id_ttl_secs: 1,
        ..common::test_config()
    };
    let dynamo = Config {
        store_url: common::dynamo_store_url().await,
        ..base.clone()
    };
    for (name, config) in [("sqlite", base), ("dynamodb", dynamo)] {
        let app = common::spawn_app(config).await;
        let org = "org-hostile";
        let good = common::token(org, None);
        let ids = seed(&app, &good).await;
        // A cursor of another query (the list of act-1), and one built as
        // cursors once were: base64 of a store key.
        let (_, page) = app.list_connections(&good, "limit=1").await;
        let foreign = page["nextCursor"]
            .as_str()
            .expect("two connections, pages of one")
            .to_owned();
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("ACCT#act-2#{:012}#{}", 1_800_000_000, ids[1]));
        let role = "arn:aws:iam::123456789012:role/Nobody";
        let mut reqs = Vec::new();
        for route in account_connect::api::route_table() {
            let method = route.method.to_uppercase();
            let default_path = concrete(
                route.path,
                if route.path.contains("{accountId}") {
                    "act-1"
                } else {
                    &ids[0]
                },
            );
            let body = route.body.map(|_| b"{}".to_vec());
            let req = |path: String, token: Option<String>, body: Option<Vec<u8>>| Req {
                method: method.clone(),
                path,
                token,
                body,
                headers: Vec::new(),
            };
            for v in path_values(&ids) {
                reqs.push(req(concrete(route.path, &v), Some(good.clone()), body.clone()));
            }
            for q in queries(&forged, &foreign) {
                reqs.push(req(format!("{default_path}{q}"), Some(good.clone()), body.clone()));
            }
            for b in bodies(role) {
                reqs.push(req(
                    format!("{default_path}?accountId=act-1"),
                    Some(good.clone()),
                    Some(b),
                ));
            }
            for t in tokens(org) {
                reqs.push(req(format!("{default_path}?accountId=act-1"), t, body.clone()));
            }
            for (k, v) in [
                ("idempotency-key", "k".repeat(300).into_bytes()),
                ("idempotency-key", vec![0xc3, 0xa9]),
                ("idempotency-key", b" ".to_vec()),
                ("x-request-id", "r".repeat(500).into_bytes()),
                ("content-type", b"text/plain".to_vec()),
            ] {
                let mut r = req(default_path.clone(), Some(good.clone()), body.clone());
                r.headers.push((k, v));
                reqs.push(r);
            }
        }
        let count = reqs.len();
        let failures = run(&app, reqs).await;
        assert!(
            failures.is_empty(),
            "{name}: {} of {count} requests got a 5xx:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// An answer that is the API's JSON error (or Spot's envelope): JSON, a
/// 4xx, and no Rust in it (debug text or a type name serde named).
async fn assert_json_refusal(what: &str, res: reqwest::Response) -> serde_json::Value {
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.unwrap();
    assert!(status.is_client_error(), "{what}: {status} {text}");
    assert!(kind.starts_with("application/json"), "{what}: {kind} {text}");
    common::assert_no_debug_text(what, &text);
    for rust in ["struct ", "enum ", "String", "alloc::"] {
        assert!(!text.contains(rust), "{what} names a Rust type ({rust}): {text}");
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"))
}

/// Every route: a path value that is not UTF-8 once decoded, and a body
/// that is an array where the route takes an object (serde reads a struct
/// from an array of its fields), get the API's JSON error.
#[tokio::test]
async fn invalid_utf8_paths_and_array_bodies_get_the_json_error_on_every_route() {
    let app = common::spawn_app(common::test_config()).await;
    let token = common::token("org-arrays", None);
    let mut checked = (0, 0);
    for route in account_connect::api::route_table() {
        let method = route.method.to_uppercase();
        if route.path.contains('{') {
            let path = concrete(route.path, "%ff%fe");
            let mut req = app.request(&method, &path, Some(&token));
            if route.body.is_some() {
                req = req.header("content-type", "application/json").body("{}");
            }
            let what = format!("{method} {path}");
            assert_json_refusal(&what, req.send().await.unwrap()).await;
            checked.0 += 1;
        }
        if route.body.is_some() {
            let path = concrete(route.path, "con-000000000000000000000000");
            for (kind, body) in [
                ("application/json", "[]"),
                ("application/json", " [\"act-1\", \"aws\", {\"mode\": \"default\"}]"),
                (
                    "application/json; charset=utf-8",
                    "[\"act-1\", \"aws\", {\"mode\": \"default\"}]",
                ),
            ] {
                let req = app
                    .request(&method, &path, Some(&token))
                    .header("content-type", kind)
                    .body(body);
                let what = format!("{method} {path} ({kind}) {body}");
                assert_json_refusal(&what, req.send().await.unwrap()).await;
            }
            checked.1 += 1;
        }
    }
    assert!(checked.0 >= 10 && checked.1 >= 5, "routes checked: {checked:?}");
}

/// The two holes on the main route, with their codes: a path that is not
/// UTF-8 is a 400 `invalid_path`; a connection sent as an array of its
/// fields is not created; a body of the wrong type names no Rust type.
#[tokio::test]
async fn the_connection_routes_name_the_refusal() {
    let app = common::spawn_app(common::test_config()).await;
    let token = common::token("org-arrays", None);
    let res = app
        .request("GET", "/v1/connections/%ff%fe", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = assert_json_refusal("utf-8", res).await;
    assert_eq!(body["error"]["code"], "invalid_path", "{body}");

    let array = json!(["act-1", "aws", {"mode": "default"}]);
    let (status, body) = app.create_connection(&token, &array).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_body", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("not an array"),
        "{body}"
    );
    let (_, page) = app.list_connections(&token, "").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "nothing created: {page}");

    let (status, body) = app.create_connection(&token, &json!("act-1")).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("expected an object"), "{message}");
}
