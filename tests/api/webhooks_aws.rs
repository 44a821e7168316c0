//! The webhook path as it runs in AWS, against moto: the table's stream
//! hands the dispatcher function a new delivery, which it queues on the
//! attempt queue; the queue's batch makes the attempt; an attempt that
//! fails queues the next one, delayed until it is due. A delivery a partner
//! sends again (recover) reaches the queue the same way.

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::{self};
use crate::events::{attempt_queue, sdk, sqs_records, stream_event, table_with_stream, take_messages};
use account_connect::config::Config;
use account_connect::events::{lambda, Dispatcher};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The queue's messages as an SQS event source mapping hands them over,
/// waiting up to `wait` for at least one.
pub(crate) async fn sqs_event(sqs: &aws_sdk_sqs::Client, url: &str, wait: Duration) -> Value {
    let end = Instant::now() + wait;
    loop {
        let messages = take_messages(sqs, url).await;
        if !messages.is_empty() || Instant::now() > end {
            return sqs_records(&messages, "attempts");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stream_queues_a_delivery_and_the_queue_retries_it_until_it_succeeds() {
    let rx = Receiver::start(Behaviour::FailFirst(1)).await;
    let (store_url, stream) = table_with_stream().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let queue = attempt_queue(&sqs).await;
    let config = Config {
        store_url,
        webhook_queue_url: Some(queue.clone()),
        webhook_allow_hosts: vec![rx.authority.clone()],
        ..common::test_config()
    };
    let (app, state) = common::spawn_with_state(config).await;
    let token = common::token("org-a", None);
    let (_, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    let (status, queued) = app.test_webhook(&token, id).await;
    assert_eq!(status, 202, "{queued}");

    let dispatcher = Dispatcher::for_services(&state).await;
    let answer = lambda::handle_any(&dispatcher, serde_json::to_value(stream_event(&stream)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"delivered": 0, "heldForBus": 0}),
        "no outbox item, one delivery queued"
    );

    // First attempt: 500. No batch failure (the attempt is recorded), and
    // the next attempt is queued with its delay.
    let first = sqs_event(&sqs, &queue, Duration::from_secs(5)).await;
    assert_eq!(first["Records"].as_array().unwrap().len(), 1, "{first}");
    let answer = lambda::handle_any(&dispatcher, first).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(rx.got().len(), 1);
    let (_, page) = app.webhook_deliveries(&token, id, "").await;
    assert_eq!(
        (
            page["items"][0]["state"].as_str(),
            page["items"][0]["statusCode"].as_u64()
        ),
        (Some("pending"), Some(500))
    );
    let started = Instant::now();
    let second = sqs_event(&sqs, &queue, Duration::from_secs(15)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "delayed: {:?}",
        started.elapsed()
    );
    assert_eq!(second["Records"].as_array().unwrap().len(), 1, "{second}");
    // moto may hand it over a little before the stored time: nothing is
    // sent early, the message goes back until it is due.
    let mut next = second;
    for _ in 0..5 {
        let answer = lambda::handle_any(&dispatcher, next.clone()).await.unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        if rx.got().len() == 2 {
            break;
        }
        next = sqs_event(&sqs, &queue, Duration::from_secs(10)).await;
    }
    let got = rx.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id(), got[1].id());
    let (_, page) = app.webhook_deliveries(&token, id, "").await;
    assert_eq!(page["items"][0]["state"], "succeeded", "{page}");
    assert_eq!(page["items"][0]["attempts"], 2, "{page}");
    // Done: nothing more is queued.
    let rest = sqs_event(&sqs, &queue, Duration::from_secs(1)).await;
    assert_eq!(rest["Records"], json!([]), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resent_delivery_reaches_the_attempt_queue_through_the_stream() {
    let rx = Receiver::start(Behaviour::Accept).await;
    let (store_url, stream) = table_with_stream().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let queue = attempt_queue(&sqs).await;
    let config = Config {
        store_url,
        webhook_queue_url: Some(queue.clone()),
        webhook_allow_hosts: vec![rx.authority.clone()],
        ..common::test_config()
    };
    let (app, state, store) = common::spawn_with_store(config).await;
    let token = common::token("org-a", None);
    let (_, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    let id = hook["id"].as_str().unwrap();
    let since = account_connect::clock::iso(app.clock.now() - 1);
    let (_, queued) = app.test_webhook(&token, id).await;
    let dispatcher = Dispatcher::for_services(&state).await;
    let first = stream_event(&stream);
    lambda::handle(&dispatcher, first.clone()).await.unwrap();

    // Disabled before its attempt: the attempt drops it, sending nothing.
    crate::webhook_recovery::disable(&store, id).await;
    let attempt = sqs_event(&sqs, &queue, Duration::from_secs(5)).await;
    lambda::handle_any(&dispatcher, attempt).await.unwrap();
    let (_, page) = app.webhook_deliveries(&token, id, "").await;
    assert_eq!(page["items"][0]["state"], "failed", "{page}");
    assert!(rx.got().is_empty());

    // Enabled and recovered: the stream hands over the resent delivery
    // (and none of the delivery's other writes), which is queued and sent.
    assert_eq!(app.enable_webhook(&token, id).await.0, 200);
    let (status, done) = app.recover_webhook(&token, id, &json!({ "since": since })).await;
    assert_eq!((status, done["queued"].as_u64()), (202, Some(1)), "{done}");
    let seen: std::collections::HashSet<String> = first.records.iter().map(|r| r.event_id.clone()).collect();
    let mut next = stream_event(&stream);
    next.records.retain(|r| !seen.contains(&r.event_id));
    let resent = lambda::queued_deliveries(&next).unwrap();
    assert_eq!(resent.len(), 1, "only the resend: {next:?}");
    assert_eq!(
        (resent[0].attempts, resent[0].message_id.as_str()),
        (0, queued["messageId"].as_str().unwrap())
    );
    lambda::handle(&dispatcher, next).await.unwrap();
    let attempt = sqs_event(&sqs, &queue, Duration::from_secs(5)).await;
    assert_eq!(attempt["Records"].as_array().unwrap().len(), 1, "{attempt}");
    let answer = lambda::handle_any(&dispatcher, attempt).await.unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id(), queued["messageId"].as_str().unwrap());
    let (_, page) = app.webhook_deliveries(&token, id, "").await;
    assert_eq!(
        (
            page["items"][0]["state"].as_str(),
            page["items"][0]["attempts"].as_u64()
        ),
        (Some("succeeded"), Some(1)),
        "{page}"
    );
}
