//! The callback binary itself, as Lambda runs it: a local stand-in of the
//! Lambda Runtime API hands it SNS events (`GET .../invocation/next`) and
//! takes its results (`POST .../invocation/{id}/response` or `/error`).
//! Also: the deployment template bounds the callback's concurrency.

use crate::common;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use common::callback::{config, create, get, stack_in_moto, template, token_of, Receiver, KEY, TOPIC};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What the function reported for one invocation: ("response" or "error", request id, body).
type Outcome = (String, String, String);

struct Runtime {
    events: Mutex<std::collections::VecDeque<String>>,
    served: std::sync::atomic::AtomicUsize,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// Serves `events` one per `next`, then holds `next` open (as Lambda does
/// between invocations); returns the address and the reported outcomes.
async fn runtime_api(events: Vec<String>) -> (String, mpsc::UnboundedReceiver<Outcome>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let rt = Arc::new(Runtime {
        events: Mutex::new(events.into()),
        served: Default::default(),
        outcomes: tx,
    });
    let next = |State(rt): State<Arc<Runtime>>| async move {
        let event = rt.events.lock().unwrap().pop_front();
        let Some(event) = event else {
            return std::future::pending().await;
        };
        let n = 1 + rt.served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 300_000;
        let mut h = HeaderMap::new();
        h.insert(
            "lambda-runtime-aws-request-id",
            format!("invocation-{n}").parse().unwrap(),
        );
        h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:922761411349:function:account-connect-callback"
                .parse()
                .unwrap(),
        );
        h.insert(
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".parse().unwrap(),
        );
        (h, event)
    };
    let report = |kind: &'static str| {
        move |State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: String| async move {
            let _ = rt.outcomes.send((kind.to_owned(), id, body));
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
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_binary_answers_cloudformation_under_the_lambda_runtime_api() {
    // One SQLite file for the API here and the function's process.
    let db = std::env::temp_dir().join(format!("callback-{}.db", account_connect::ids::random_token(4)));
    let store = format!("sqlite://{}", db.display());
    let mut cfg = config(None);
    cfg.store_url = store.clone();
    let (app, _state) = common::spawn_with_state(cfg).await;
    let rx = Receiver::start().await;
    let t = common::token("org-bin", None);
    let c = create(&app, &t, "act-b1", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let tpl = template(&app, &t, id).await;
    let (_, role) = stack_in_moto(&tpl, c["cloudFormation"]["stackName"].as_str().unwrap());
    let tok = token_of(&tpl);
    // First a forged event (its ResponseURL is loopback by another name),
    // then the stack's genuine Create.
    let forged_url = rx.url().replace("127.0.0.1", "localhost");
    let forged = common::callback::fixture_text("callback-create.json", &forged_url, id, &role, &tok);
    let genuine = common::callback::fixture_text("callback-create.json", &rx.url(), id, &role, &tok);
    let (got, stdout, stderr) = run_callback_binary(&store, vec![forged, genuine]).await;
    let logs = format!("{stdout}{stderr}");

    // Both invocations succeed: the forged one is not worth a retry.
    assert_eq!(
        got.iter()
            .map(|(k, id, _)| (k.as_str(), id.as_str()))
            .collect::<Vec<_>>(),
        [("response", "invocation-1"), ("response", "invocation-2")],
        "{got:?}\n{logs}"
    );
    // Only the genuine one reached CloudFormation's stand-in.
    let answer = rx.answer();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}\n{logs}");
    assert_eq!(answer["PhysicalResourceId"], id);
    let now = get(&app, &t, id).await;
    assert_eq!(now["status"], "connected", "{now}");
    assert_eq!(now["stack"]["stackId"], common::callback::STACK_A);
    // The metrics the alarms read (EMF on stdout, in Lambda only).
    let metric = |name: &str, dim: (&str, &str)| {
        stdout.lines().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_default();
            v[name] == 1 && v[dim.0] == dim.1
        })
    };
    assert!(metric("CallbackRejected", ("Reason", "response_url")), "{stdout}");
    assert!(metric("CallbackSucceeded", ("RequestType", "Create")), "{stdout}");
    let _ = std::fs::remove_file(&db);
}

/// Runs the callback binary under the Runtime API stand-in on `events`
/// (with the test's store, key and the receiver's host allowed); answers
/// each invocation's outcome, and the process's stdout (the EMF lines) and
/// stderr.
async fn run_callback_binary(store: &str, events: Vec<String>) -> (Vec<Outcome>, String, String) {
    let n = events.len();
    let (addr, mut outcomes) = runtime_api(events).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_account-connect-callback"))
        .env("AWS_LAMBDA_RUNTIME_API", &addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "account-connect-callback")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("ACCOUNT_CONNECT_STORE", store)
        .env("ACCOUNT_CONNECT_CALLBACK_KEY", std::str::from_utf8(KEY).unwrap())
        .env("ACCOUNT_CONNECT_TOPIC_AWS", TOPIC)
        .env("ACCOUNT_CONNECT_CALLBACK_PROPAGATION_SECS", "2")
        .env("ACCOUNT_CONNECT_CALLBACK_RESPONSE_HOSTS", "127.0.0.1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the callback binary starts");
    let mut got = Vec::new();
    for _ in 0..n {
        let o = tokio::time::timeout(Duration::from_secs(120), outcomes.recv())
            .await
            .expect("the function reports each invocation")
            .unwrap();
        got.push(o);
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (got, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_id_in_a_region_its_partition_lacks_is_dropped_unanswered_and_counted() {
    let db = std::env::temp_dir().join(format!("callback-{}.db", account_connect::ids::random_token(4)));
    let store = format!("sqlite://{}", db.display());
    let mut cfg = config(None);
    cfg.store_url = store.clone();
    let (app, _state) = common::spawn_with_state(cfg).await;
    let rx = Receiver::start().await;
    let t = common::token("org-region-bin", None);
    let c = create(&app, &t, "act-rb1", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let tpl = template(&app, &t, id).await;
    let (_, role) = stack_in_moto(&tpl, c["cloudFormation"]["stackName"].as_str().unwrap());
    let tok = token_of(&tpl);
    // The genuine Create, its ResponseURL the receiver (which records any
    // request), from StackIds whose region is not their partition's.
    let genuine = common::callback::fixture_text("callback-create.json", &rx.url(), id, &role, &tok);
    let events: Vec<String> = [
        "arn:aws:cloudformation:us-east-9:123456789012:stack/spotinst-iam-stack-con-0123/3f1c6a20-c3a4-11f0-9d2e-0affd41e6b35",
        "arn:aws:cloudformation:us-gov-west-1:123456789012:stack/spotinst-iam-stack-con-0123/3f1c6a20-c3a4-11f0-9d2e-0affd41e6b35",
    ]
    .iter()
    .map(|stack| genuine.replace(common::callback::STACK_A, stack))
    .collect();
    assert!(events.iter().all(|e| !e.contains(common::callback::STACK_A)));
    let (got, stdout, stderr) = run_callback_binary(&store, events).await;
    let logs = format!("{stdout}{stderr}");

    // Neither is worth a retry; nothing was contacted, nothing changed.
    assert_eq!(
        got.iter().map(|(k, _, _)| k.as_str()).collect::<Vec<_>>(),
        ["response", "response"],
        "{got:?}\n{logs}"
    );
    assert!(
        rx.take().is_empty(),
        "a StackId of an unknown region was answered\n{logs}"
    );
    assert_eq!(get(&app, &t, id).await["status"], "pending");
    // Each is counted, with its reason and without (the alarm's line).
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["CallbackRejected"] == 1)
        .collect();
    let with_reason = lines.iter().filter(|v| v["Reason"] == "region").count();
    let plain = lines
        .iter()
        .filter(|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([[]]))
        .count();
    assert_eq!((with_reason, plain, lines.len()), (2, 2, 4), "{stdout}");
    assert!(
        !stdout.contains("CallbackSucceeded") && !stdout.contains("CallbackFailed"),
        "{stdout}"
    );
    let _ = std::fs::remove_file(&db);
}

/// The dispatcher is bounded twice (its reservation, and the attempt
/// queue's share of it), each by a parameter with a default; a relayed
/// Create ends before the relay's forward gives up; the relay intake's logs
/// expire like every function's.
#[test]
fn the_template_bounds_the_dispatcher_and_the_relayed_create() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let (r, p) = (&t["Resources"], &t["Parameters"]);
    let dispatcher = &r["DispatcherFunction"]["Properties"];
    assert_eq!(
        dispatcher["ReservedConcurrentExecutions"],
        json!({"Ref": "DispatcherReservedConcurrency"})
    );
    assert_eq!(
        dispatcher["Events"]["Attempts"]["Properties"]["ScalingConfig"]["MaximumConcurrency"],
        json!({"Ref": "WebhookAttemptMaxConcurrency"})
    );
    let reserved = p["DispatcherReservedConcurrency"]["Default"].as_u64().unwrap();
    let attempts = p["WebhookAttemptMaxConcurrency"]["Default"].as_u64().unwrap();
    assert!(attempts >= 2, "Lambda's least MaximumConcurrency");
    assert!(reserved > attempts, "the stream keeps room beside the attempts");

    // The wait, then the checks after it (6 s, the last attempt 1 s more).
    let max = p["CallbackPropagationSecs"]["MaxValue"].as_u64().unwrap();
    let forward = account_connect::automatic::relay_forward::FORWARD_TIMEOUT.as_secs();
    assert!(max + 7 < forward, "{max} s + checks within the relay's {forward} s");
    assert!(p["CallbackPropagationSecs"]["Default"].as_u64().unwrap() <= max);

    let group = r["RelayIntakeFunction"]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        .as_str()
        .expect("the relay intake names its log group");
    assert_eq!(
        r[group]["Properties"]["RetentionInDays"],
        json!({"Ref": "LogRetentionDays"})
    );
    assert_eq!(r[group]["Condition"], r["RelayIntakeFunction"]["Condition"]);
}

#[test]
fn the_deployment_template_reserves_the_callbacks_and_relays_concurrency_and_lints_clean() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let r = &t["Resources"];
    assert_eq!(
        r["CallbackFunction"]["Properties"]["ReservedConcurrentExecutions"],
        json!({"Ref": "CallbackReservedConcurrency"})
    );
    let p = &t["Parameters"]["CallbackReservedConcurrency"];
    assert!(p["Default"].as_u64().is_some_and(|d| d >= 1), "{p}");
    // The relay intake's public URL has its own bound, apart from the
    // callback's (each reservation is taken from the account's limit).
    assert_eq!(
        r["RelayIntakeFunction"]["Properties"]["ReservedConcurrentExecutions"],
        json!({"Ref": "RelayReservedConcurrency"})
    );
    let p = &t["Parameters"]["RelayReservedConcurrency"];
    assert!(p["Default"].as_u64().is_some_and(|d| d >= 1), "{p}");
    // The API keeps the unreserved pool: only the callback and relay are bounded.
    assert!(r["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"].is_null());
    assert_eq!(
        r["CallbackRejectedAlarm"]["Properties"]["MetricName"],
        "CallbackRejected"
    );
    common::cfn_lint(&common::repo_path("template.yaml"), &[]);
}

/// A Create deferred to the callback queue (its organization was over its
/// share) reaches the same function from SQS: handled as from the topic,
/// and the batch answered with no failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_binary_handles_a_deferred_request_from_its_queue() {
    let db = std::env::temp_dir().join(format!("callback-{}.db", account_connect::ids::random_token(4)));
    let store = format!("sqlite://{}", db.display());
    let mut cfg = config(None);
    cfg.store_url = store.clone();
    let (app, _state) = common::spawn_with_state(cfg).await;
    let rx = Receiver::start().await;
    let t = common::token("org-deferred-bin", None);
    let c = create(&app, &t, "act-db1", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let tpl = template(&app, &t, id).await;
    let (_, role) = stack_in_moto(&tpl, c["cloudFormation"]["stackName"].as_str().unwrap());
    let message = common::callback::fixture_text("callback-create.json", &rx.url(), id, &role, &token_of(&tpl));
    let message: Value = serde_json::from_str(&message).unwrap();
    let deferred = json!({"since": app.clock.now(), "message": message["Records"][0]["Sns"]["Message"]});
    let event = json!({"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": deferred.to_string(),
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:922761411349:callback", "awsRegion": "us-east-1"}]});
    let (got, stdout, stderr) = run_callback_binary(&store, vec![event.to_string()]).await;
    let logs = format!("{stdout}{stderr}");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "response", "{got:?}\n{logs}");
    let batch: Value = serde_json::from_str(&got[0].2).unwrap();
    assert_eq!(batch["batchItemFailures"], json!([]), "{batch}");
    let answer = rx.answer();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}\n{logs}");
    assert_eq!(get(&app, &t, id).await["status"], "connected");
    let _ = std::fs::remove_file(&db);
}
