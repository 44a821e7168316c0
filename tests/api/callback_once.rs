//! The callback acts once per CloudFormation request: the same message
//! delivered twice (same StackId, RequestId and type), side by side or
//! later, is acted on and answered once; and two Creates for one
//! connection do not verify side by side (the second waits for the first
//! and answers with its outcome).

use crate::common;
use common::callback::{config, create, get, send, stack_in_moto, template, token_of, Message, Receiver};
use serde_json::{json, Value};

/// The connection's audit events of this kind.
async fn events_of(app: &common::TestApp, t: &str, id: &str, kind: &str) -> usize {
    let (_, events) = app.events(t, id, "").await;
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind || e["kind"] == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_twice_is_acted_on_once() {
    let (app, state) = common::spawn_with_state(config(None)).await;
    let rx = Receiver::start().await;
    let url = rx.url();
    let t = common::token(&format!("org-{}", account_connect::ids::random_token(4)), None);
    let c = create(&app, &t, "act-once1", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let tpl = template(&app, &t, id).await;
    let (stack_id, role) = stack_in_moto(&tpl, c["cloudFormation"]["stackName"].as_str().unwrap());
    let tok = token_of(&tpl);
    let m = Message {
        request_type: "Create",
        url: &url,
        stack_id: &stack_id,
        request_id: "0f4c1d6e-1111-4a6b-9a43-6d1b0e7c2a01",
        physical: None,
        connection: id,
        role: &role,
        token: &tok,
    };
    // Side by side, as SNS may deliver one message twice.
    tokio::join!(send(&state, &m), send(&state, &m));
    let answer = rx.answer();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let now = get(&app, &t, id).await;
    assert_eq!(now["status"], "connected", "{now}");
    let verified = events_of(&app, &t, id, "verified").await;
    assert_eq!(verified, 1, "one verification recorded");
    // Later, again: not acted on, not answered again (CloudFormation has its answer).
    send(&state, &m).await;
    assert!(rx.take().is_empty(), "no second answer");
    assert_eq!(events_of(&app, &t, id, "verified").await, verified);

    // Another request (another RequestId) of the same stack is acted on.
    let update = Message {
        request_type: "Update",
        request_id: "0f4c1d6e-2222-4a6b-9a43-6d1b0e7c2a02",
        physical: Some(id),
        ..m
    };
    send(&state, &update).await;
    assert_eq!(rx.answer()["Status"], "SUCCESS");
    assert_eq!(
        events_of(&app, &t, id, "verified").await,
        verified + 1,
        "the update re-verified"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_creates_for_one_connection_verify_once() {
    let (app, state) = common::spawn_with_state(config(None)).await;
    let rx = Receiver::start().await;
    let url = rx.url();
    let t = common::token(&format!("org-{}", account_connect::ids::random_token(4)), None);
    let c = create(&app, &t, "act-once2", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let tpl = template(&app, &t, id).await;
    let (stack_id, role) = stack_in_moto(&tpl, c["cloudFormation"]["stackName"].as_str().unwrap());
    let tok = token_of(&tpl);
    let first = Message {
        request_type: "Create",
        url: &url,
        stack_id: &stack_id,
        request_id: "5b2d7c1a-3333-4e1f-8c2b-1a9e3d5f7b03",
        physical: None,
        connection: id,
        role: &role,
        token: &tok,
    };
    // The same stack's Create under another RequestId (CloudFormation
    // retried it), at the same time.
    let second = Message {
        request_id: "5b2d7c1a-4444-4e1f-8c2b-1a9e3d5f7b04",
        ..first
    };
    tokio::join!(send(&state, &first), send(&state, &second));
    let answers: Vec<Value> = rx.take().iter().map(|h| h.json()).collect();
    assert_eq!(answers.len(), 2, "each request is answered: {answers:?}");
    for a in &answers {
        assert_eq!(a["Status"], "SUCCESS", "{a}");
        assert_eq!(a["PhysicalResourceId"], id, "{a}");
    }
    assert_eq!(
        events_of(&app, &t, id, "verified").await,
        1,
        "the second answered with the first's outcome"
    );
}
