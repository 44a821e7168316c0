//! The Lambda entry point: API Gateway events through lambda_http's own
//! conversion give the same bytes as the local server.

use crate::common;

use base64::Engine;
use serde_json::Value;

fn body_of(response: &Value) -> Vec<u8> {
    let body = response["body"].as_str().unwrap_or("");
    if response["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

async fn local(app: &common::TestApp, event: &Value) -> (u16, Vec<u8>) {
    let method = event["requestContext"]["http"]["method"].as_str().unwrap();
    let path = event["rawPath"].as_str().unwrap();
    let query = event["rawQueryString"].as_str().unwrap_or("");
    let target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let mut req = app.request(method, &target, None);
    for (k, v) in event["headers"].as_object().unwrap() {
        if k != "content-length" && k != "host" {
            req = req.header(k, v.as_str().unwrap());
        }
    }
    if let Some(b) = event["body"].as_str() {
        req = req.body(b.to_owned());
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn every_event_fixture_answers_as_the_local_server_does() {
    let app = common::spawn_app(common::test_config()).await;
    let mut seen = 0;
    for entry in std::fs::read_dir(common::repo_path("events")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        if event.get("routeKey").is_none() {
            continue; // Not an HTTP API event.
        }
        let response = common::invoke_lambda(common::test_config(), &text).await;
        let (status, bytes) = local(&app, &event).await;
        assert_eq!(
            response["statusCode"].as_u64().unwrap() as u16,
            status,
            "{}",
            path.display()
        );
        assert_eq!(body_of(&response), bytes, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} HTTP API fixtures in events/");
}

#[tokio::test]
async fn lambda_answers_default_policy_and_bad_json() {
    let ok = common::invoke_lambda(common::test_config(), &common::read_event("policies-default.json")).await;
    assert_eq!(ok["statusCode"], 200);
    let body: Value = serde_json::from_slice(&body_of(&ok)).unwrap();
    assert_eq!(body["policies"][0]["name"], "Spot-Policy");
    let bad = common::invoke_lambda(common::test_config(), &common::read_event("policies-bad-json.json")).await;
    assert_eq!(bad["statusCode"], 400);
    let err: Value = serde_json::from_slice(&body_of(&bad)).unwrap();
    assert_eq!(err["error"]["code"], "malformed_json");
}

/// A Lambda binary that cannot start says why in words, as the API's
/// errors do, and exits with status 2: never Rust's debug text of the
/// error (`Error: Config(ConfigError("…"))`).
#[test]
fn a_binary_that_cannot_start_says_why_in_words() {
    const BAD_METRICS: &[(&str, &str)] = &[("ACCOUNT_CONNECT_METRICS", "bogus")];
    const METRICS: &str = "ACCOUNT_CONNECT_METRICS must be emf or off";
    let cases: [(&str, &[(&str, &str)], &str); 6] = [
        (env!("CARGO_BIN_EXE_account-connect"), BAD_METRICS, METRICS),
        (env!("CARGO_BIN_EXE_account-connect-callback"), BAD_METRICS, METRICS),
        (env!("CARGO_BIN_EXE_account-connect-dispatcher"), BAD_METRICS, METRICS),
        (env!("CARGO_BIN_EXE_account-connect-recheck"), BAD_METRICS, METRICS),
        (
            env!("CARGO_BIN_EXE_account-connect-recheck"),
            &[],
            "ACCOUNT_CONNECT_RECHECK_QUEUE_URL is not set",
        ),
        (
            env!("CARGO_BIN_EXE_account-connect-relay"),
            &[],
            "ACCOUNT_CONNECT_RELAY_URL is not set",
        ),
    ];
    for (bin, env, says) in cases {
        // Lambda's Runtime API on a port nothing listens on: a binary that
        // did start would fail there instead, with another message.
        let out = std::process::Command::new(bin)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .env("AWS_REGION", "us-east-1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bin}: {stderr}");
        assert_eq!(stderr.trim(), says, "{bin}");
    }
}
