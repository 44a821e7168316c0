//! Fair shares of the dispatcher (docs/design.md, "Fair shares"): one
//! organization's webhook endpoints that hang hold at most its share of the
//! attempt queue's slots; its attempt over the share goes back on the queue
//! (moto's SQS), is not counted against its endpoint and is sent later, and
//! another organization's attempt is sent at once. The event source's
//! MaximumConcurrency is played by a semaphore around the real entry point,
//! one message per invocation; on both stores (the leases are the store's).

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::{self};
use crate::events::{attempt_queue, sdk, sqs_records, take_messages};
use account_connect::config::Config;
use account_connect::events::{lambda, AttemptQueue, Dispatcher};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The attempt queue's slots in this test (as in the rehearsal).
const SLOTS: usize = 2;

/// Tenant A tests two webhooks whose endpoints hang, then tenant B tests
/// one that answers; the queue is drained `SLOTS` invocations at a time,
/// A's messages first. Answers how long after the start B's endpoint got
/// its event, once every endpoint got its one (or the deadline passed).
async fn flood(store_url: String, share: u32) -> Duration {
    let (hang1, hang2) = (
        Receiver::start(Behaviour::Hang).await,
        Receiver::start(Behaviour::Hang).await,
    );
    let b_rx = Receiver::start(Behaviour::Accept).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let queue = attempt_queue(&sqs).await;
    let config = Config {
        store_url,
        webhook_queue_url: Some(queue.clone()),
        webhook_allow_hosts: vec![hang1.authority.clone(), hang2.authority.clone(), b_rx.authority.clone()],
        webhook_tenant_share: share,
        ..common::test_config()
    };
    let (app, state) = common::spawn_with_state(config).await;
    let tag = account_connect::ids::random_token(4);
    let (a, b) = (
        common::token(&format!("org-a-{tag}"), None),
        common::token(&format!("org-b-{tag}"), None),
    );
    let mut a_hooks = Vec::new();
    for rx in [&hang1, &hang2] {
        let (_, hook) = app.create_webhook(&a, &json!({"url": rx.url})).await;
        let id = hook["id"].as_str().unwrap().to_owned();
        assert_eq!(app.test_webhook(&a, &id).await.0, 202);
        a_hooks.push(id);
    }
    let (_, hook) = app.create_webhook(&b, &json!({"url": b_rx.url})).await;
    let b_hook = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(app.test_webhook(&b, &b_hook).await.0, 202);
    // Their first attempts queued, as the stream would.
    let due = state.webhooks.due(100).await.unwrap();
    assert_eq!(due.len(), 3, "{due:?}");
    AttemptQueue::on(&state.aws, queue.clone())
        .await
        .schedule(&due, app.clock.now())
        .await
        .unwrap();

    let dispatcher = Dispatcher::for_services(&state).await;
    let slots = Arc::new(Semaphore::new(SLOTS));
    let start = Instant::now();
    let mut b_at = None;
    // Which of A's webhooks was sent first (the other waited over the share).
    let mut first = None;
    while start.elapsed() < Duration::from_secs(45) {
        if b_at.is_none() && !b_rx.got().is_empty() {
            b_at = Some(start.elapsed());
        }
        if b_at.is_some() && first.is_none() && share > 0 {
            // B is through while A's second attempt waits, over the share.
            assert_eq!(
                hang1.got().len() + hang2.got().len(),
                1,
                "one of A's attempts in flight"
            );
            first = Some(usize::from(hang1.got().is_empty()));
        }
        if b_at.is_some() && !hang1.got().is_empty() && !hang2.got().is_empty() {
            break;
        }
        let mut messages = take_messages(&sqs, &queue).await;
        // The worst case for B: A's flood ahead of it.
        messages.sort_by_key(|m| m.body().unwrap_or_default().contains(&b_hook));
        for m in messages {
            let slot = slots.clone().acquire_owned().await.unwrap();
            let (dispatcher, event) = (dispatcher.clone(), sqs_records(std::slice::from_ref(&m), "attempts"));
            tokio::spawn(async move {
                let answer = lambda::handle_any(&dispatcher, event).await.unwrap();
                assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
                drop(slot);
            });
        }
    }
    // Nothing lost: every endpoint got its event (A's first one again,
    // maybe: its retry); and the attempt that waited over the share counts
    // no attempt of its own: its delivery records one, its send's timeout.
    assert!(
        !hang1.got().is_empty() && !hang2.got().is_empty() && b_rx.got().len() == 1,
        "every endpoint got its event"
    );
    let _all = slots.acquire_many(SLOTS as u32).await.unwrap();
    if let Some(first) = first {
        let (_, page) = app.webhook_deliveries(&a, &a_hooks[1 - first], "").await;
        assert_eq!(page["items"][0]["attempts"], 1, "{page}");
    }
    b_at.expect("B's event arrived")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_whose_endpoints_hang_holds_only_its_share_of_the_attempt_slots() {
    for (name, url) in [
        ("sqlite", "sqlite::memory:".to_owned()),
        ("dynamodb", common::dynamo_store_url().await),
    ] {
        let b = flood(url, 1).await;
        // A's hanging attempts hold their slot for the 10 s send timeout;
        // B waits for none of them.
        assert!(b < Duration::from_secs(4), "{name}: B's event came after {b:?}");
    }
}

#[test]
fn the_dispatcher_gets_its_share_from_the_template_and_may_release_only_its_leases() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let p = &t["Parameters"];
    assert!(
        p["WebhookTenantShare"]["Default"].as_u64() < p["WebhookAttemptMaxConcurrency"]["Default"].as_u64(),
        "one tenant leaves attempt slots to others"
    );
    let f = &t["Resources"]["DispatcherFunction"]["Properties"];
    assert_eq!(
        f["Environment"]["Variables"]["ACCOUNT_CONNECT_WEBHOOK_TENANT_SHARE"],
        json!({"Ref": "WebhookTenantShare"})
    );
    let statements = f["Policies"][0]["Statement"].as_array().unwrap();
    let deletes: Vec<&Value> = statements
        .iter()
        .filter(|s| s.to_string().contains("dynamodb:DeleteItem"))
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(
        deletes[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
        json!(["ONCE#wshare#*"]),
        "{}",
        deletes[0]
    );
}
