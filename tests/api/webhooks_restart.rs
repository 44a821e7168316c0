//! The outbox survives a killed process: `serve` is SIGKILLed right after a
//! connect answered 200 and, once started again on the same store, the
//! receiver gets the connect's event exactly once (by `webhook-id`).

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::{self, TestApp};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `account-connect serve` on `store`, delivering webhooks to `allow`; its
/// base URL once it listens.
fn serve(store: &str, allow: &str) -> (Child, String) {
    common::moto_endpoint();
    let mut child = Command::new(env!("CARGO_BIN_EXE_account-connect"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("ACCOUNT_CONNECT_STORE", store)
        .env("ACCOUNT_CONNECT_JWT_SECRET", std::str::from_utf8(common::TEST_SECRET).unwrap())
        .env("ACCOUNT_CONNECT_WEBHOOK_ALLOW_HOSTS", allow)
        .env("ACCOUNT_CONNECT_PROPAGATION_BUDGET_SECS", "0")
        .env("RUST_LOG", "warn")
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    // Read on a thread to the end: a closed pipe would fail the server's
    // later prints.
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = lines
        .iter()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://"))
                .filter(|_| l.contains("listening on"))
                .map(str::to_owned)
        })
        .expect("the server listens");
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connect_stored_before_a_sigkill_is_delivered_once_after_the_restart() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let file = std::env::temp_dir().join(format!("restart-{}.db", account_connect::ids::random_token(6)));
    let store = format!("sqlite://{}", file.display());
    let token = common::token("org-a", None);

    let (mut first, base) = serve(&store, &rx.authority);
    let app = TestApp::at(&base);
    let (status, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    assert_eq!(status, 201, "{hook}");
    let (c, _, _) = crate::events::connected(&app, &token).await;
    first.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    first.wait().unwrap();

    let (mut second, _) = serve(&store, &rx.authority);
    let want = format!("msg_{}_{}", c["id"].as_str().unwrap(), c["version"]);
    rx.wait_for(1, Duration::from_secs(15)).await;
    // Time for a duplicate to arrive, if one were coming.
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    let got: Vec<_> = rx.got().into_iter().filter(|g| g.id() == want).collect();
    assert_eq!(got.len(), 1, "{want}: {got:#?}");
    assert_eq!(got[0].json()["type"], "connection.connected");
    let _ = std::fs::remove_file(&file);
}
