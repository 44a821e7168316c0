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

/// A Lambda Runtime API stand-in for one event: answers `next` with it
/// (then holds `next` open, as Lambda does between invocations) and hands
/// over what the function reports, ("response" or "error", body).
async fn runtime_api_for(event: String) -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String)>) {
    use axum::extract::State;
    type Shared = std::sync::Arc<(
        std::sync::Mutex<Option<String>>,
        tokio::sync::mpsc::UnboundedSender<(String, String)>,
    )>;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let shared: Shared = std::sync::Arc::new((std::sync::Mutex::new(Some(event)), tx));
    let next = |State(s): State<Shared>| async move {
        let Some(event) = s.0.lock().unwrap().take() else {
            return std::future::pending().await;
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 60_000;
        let mut h = axum::http::HeaderMap::new();
        h.insert("lambda-runtime-aws-request-id", "invocation-1".parse().unwrap());
        h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:922761411349:function:account-connect-api"
                .parse()
                .unwrap(),
        );
        (h, event)
    };
    let report = |kind: &'static str| {
        move |State(s): State<Shared>, body: String| async move {
            let _ = s.1.send((kind.to_owned(), body));
            axum::http::StatusCode::ACCEPTED
        }
    };
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", axum::routing::get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            axum::routing::post(report("response")),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            axum::routing::post(report("error")),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            axum::routing::post(report("init error")),
        )
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

fn api_binary(runtime_api: &str, store: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_account-connect-api"));
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "account-connect-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("ACCOUNT_CONNECT_STORE", store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// The template's API function is the Lambda-only binary (src/bin/api.rs):
/// an API Gateway event through it answers what the router answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_binary_answers_an_api_gateway_event_as_the_router_does() {
    let event = common::read_event("policies-default.json");
    let (addr, mut reports) = runtime_api_for(event.clone()).await;
    // As the template sets it; a policy render reads no table.
    let mut child = api_binary(&addr, "dynamodb://connections")
        .spawn()
        .expect("the API binary starts");
    let report = tokio::time::timeout(std::time::Duration::from_secs(60), reports.recv()).await;
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let (kind, body) = report
        .unwrap_or_else(|_| panic!("no report in 60 s: {}", String::from_utf8_lossy(&out.stderr)))
        .unwrap();
    assert_eq!(kind, "response", "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    let want = common::invoke_lambda(common::test_config(), &event).await;
    assert_eq!(got["statusCode"], 200, "{got}");
    assert_eq!(got["statusCode"], want["statusCode"]);
    assert_eq!(body_of(&got), body_of(&want));
}

/// It links no SQLite store: an SQLite URL stops it at start, in words.
#[tokio::test]
async fn the_api_binary_refuses_an_sqlite_store_in_words() {
    let (addr, _reports) = runtime_api_for(String::new()).await;
    let out = tokio::task::spawn_blocking(move || api_binary(&addr, "sqlite::memory:").output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "ACCOUNT_CONNECT_STORE \"sqlite::memory:\": the Lambda entry point has no SQLite store; use dynamodb://TABLE"
    );
}

/// Both functions that serve the router run it (template.yaml), and it is a
/// binary of the crate.
#[test]
fn the_template_runs_the_api_and_the_relay_intake_on_the_lambda_only_binary() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    for function in ["ApiFunction", "RelayIntakeFunction"] {
        assert_eq!(
            t["Resources"][function]["Metadata"]["BuildProperties"]["Binary"], "account-connect-api",
            "{function}"
        );
    }
    let cargo = std::fs::read_to_string(common::repo_path("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"account-connect-api\"\npath = \"src/bin/api.rs\""));
}

/// A Lambda binary that cannot start says why in words, as the API's
/// errors do, and exits with status 2: never Rust's debug text of the
/// error (`Error: Config(ConfigError("…"))`).
/// Variables set for a binary's start.
type Env = &'static [(&'static str, &'static str)];

#[test]
fn a_binary_that_cannot_start_says_why_in_words() {
    const BAD_METRICS: &[(&str, &str)] = &[("ACCOUNT_CONNECT_METRICS", "bogus")];
    const METRICS: &str = "ACCOUNT_CONNECT_METRICS must be emf or off";
    let cases: [(&str, Env, &str); 6] = [
        (env!("CARGO_BIN_EXE_account-connect-api"), BAD_METRICS, METRICS),
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
