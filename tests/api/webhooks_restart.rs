//! The outbox survives a killed process: `serve` is SIGKILLed right after a
//! connect answered 200 and, once started again on the same store, the
//! receiver gets the connect's event exactly once (by `webhook-id`).

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::server::Server;
use crate::common::{self, TestApp};
use serde_json::json;
use std::time::Duration;

/// `account-connect serve` on `store`, delivering webhooks to `allow`.
fn serve(store: &str, allow: &str) -> Server {
    Server::start_with(&[
        ("ACCOUNT_CONNECT_STORE", store.to_owned()),
        ("ACCOUNT_CONNECT_WEBHOOK_ALLOW_HOSTS", allow.to_owned()),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connect_stored_before_a_sigkill_is_delivered_once_after_the_restart() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let file = std::env::temp_dir().join(format!("restart-{}.db", account_connect::ids::random_token(6)));
    let store = format!("sqlite://{}", file.display());
    let token = common::token("org-a", None);

    let mut first = serve(&store, &rx.authority);
    let app = TestApp::at(&first.base);
    let (status, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    assert_eq!(status, 201, "{hook}");
    let (c, _, _) = crate::events::connected(&app, &token).await;
    first.child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    first.child.wait().unwrap();

    let second = serve(&store, &rx.authority);
    let want = format!("msg_{}_{}", c["id"].as_str().unwrap(), c["version"]);
    rx.wait_for(1, Duration::from_secs(15)).await;
    // Time for a duplicate to arrive, if one were coming.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(second);
    let got: Vec<_> = rx.got().into_iter().filter(|g| g.id() == want).collect();
    assert_eq!(got.len(), 1, "{want}: {got:#?}");
    assert_eq!(got[0].json()["type"], "connection.connected");
    let _ = std::fs::remove_file(&file);
}
