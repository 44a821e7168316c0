//! An event sent once per webhook however often its outbox item comes
//! back: a stream batch handled again (Lambda retries a batch whole) or a
//! dispatch repeated later is skipped by the item's delivered mark, and a
//! crash between the fan-out and the mark (the mark lost, the item
//! dispatched again minutes later) stores no second delivery. On SQLite
//! through the local dispatcher, on DynamoDB through the table's stream and
//! the attempt queue, as in AWS; each receiver gets one request. And the
//! SQLite store purges delivered outbox rows after a week.

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::{self, TestApp};
use crate::events::{attempt_queue, bus_to_queue, connected, received, sdk, stream_event, table_with_stream};
use crate::webhooks_aws::sqs_event;
use account_connect::config::Config;
use account_connect::events::{lambda, Dispatcher};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Two webhooks of org-a, each on its own receiver.
async fn two_webhooks(app: &TestApp, token: &str, rx: [&Receiver; 2]) -> Vec<String> {
    let mut ids = Vec::new();
    for r in rx {
        let (status, hook) = app.create_webhook(token, &json!({"url": r.url})).await;
        assert_eq!(status, 201, "{hook}");
        ids.push(hook["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Each webhook's deliveries log holds one delivery, of `message`.
async fn one_delivery_each(app: &TestApp, token: &str, hooks: &[String], message: &str) {
    for id in hooks {
        let (_, page) = app.webhook_deliveries(token, id, "").await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{id}: {page:#}");
        assert_eq!(items[0]["messageId"], message, "{page}");
    }
}

/// The bus's `connection.connected` events of the connection `id`.
async fn connected_on_bus(queue: &str, id: &Value) -> usize {
    received(queue, 1, Duration::from_secs(5))
        .await
        .iter()
        .filter(|e| e["detail-type"] == "connection.connected" && &e["detail"]["data"]["id"] == id)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_replayed_dispatch_and_a_crash_before_the_mark_send_each_event_once_per_webhook() {
    let (rx1, rx2) = tokio::join!(Receiver::start(Behaviour::Accept), Receiver::start(Behaviour::Accept));
    let (bus, bus_queue) = bus_to_queue().await;
    let file = std::env::temp_dir().join(format!("replay-{}.db", account_connect::ids::random_token(6)));
    let config = Config {
        store_url: format!("sqlite://{}", file.display()),
        event_bus: Some(bus),
        webhook_allow_hosts: vec![rx1.authority.clone(), rx2.authority.clone()],
        ..common::test_config()
    };
    let (app, state, store) = common::spawn_with_store(config).await;
    let token = common::token("org-a", None);
    let hooks = two_webhooks(&app, &token, [&rx1, &rx2]).await;
    let (c, _, _) = connected(&app, &token).await;
    let dispatcher = Dispatcher::for_services(&state).await;

    // The batch the dispatcher reads, delivered, then handed over again later.
    let batch = store.undelivered(100).await.unwrap();
    assert_eq!(batch.len(), 1, "the connect's event: {batch:?}");
    let message = format!("msg_{}_{}", batch[0].connection_id.as_str(), batch[0].sequence);
    assert_eq!(dispatcher.deliver(&batch).await.unwrap().delivered, 1);
    app.clock.advance(120);
    assert_eq!(
        dispatcher.deliver(&batch).await.unwrap().delivered,
        0,
        "marked delivered: skipped"
    );

    // A crash between the fan-out and the mark: the mark is lost, and the
    // next dispatcher sends the item again minutes later.
    let db = rusqlite::Connection::open(&file).unwrap();
    let unmarked = db
        .execute(
            "UPDATE outbox SET delivered_at = NULL WHERE connection_id = ?1",
            [c["id"].as_str().unwrap()],
        )
        .unwrap();
    assert_eq!(unmarked, 1);
    app.clock.advance(120);
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 1);
    one_delivery_each(&app, &token, &hooks, &message).await;

    for d in state.webhooks.due(100).await.unwrap() {
        dispatcher.attempt(d).await.unwrap();
    }
    for rx in [&rx1, &rx2] {
        let got = rx.wait_for(2, Duration::from_secs(2)).await;
        assert_eq!(got.len(), 1, "one request per webhook");
        assert_eq!(got[0].id(), message);
    }
    // The bus had it from the first dispatch and again after the crash (at
    // least once), never from the replay.
    assert_eq!(connected_on_bus(&bus_queue, &c["id"]).await, 2);
    let _ = std::fs::remove_file(&file);
}

/// The stream's records that `seen` does not hold: what Lambda would hand
/// over next.
fn newer(stream: &str, seen: &StreamEvent) -> StreamEvent {
    let old: HashSet<&str> = seen.records.iter().map(|r| r.event_id.as_str()).collect();
    let mut event = stream_event(stream);
    event.records.retain(|r| !old.contains(r.event_id.as_str()));
    event
}

/// Removes the delivered mark of the outbox item the batch carries, as a
/// crash after the fan-out and before the mark leaves it.
async fn unmark(store_url: &str, batch: &StreamEvent) {
    let record = batch
        .records
        .iter()
        .find(|r| {
            r.event_name == "INSERT"
                && serde_json::to_value(&r.change.keys).unwrap()["sk"]["S"]
                    .as_str()
                    .is_some_and(|sk| sk.starts_with("OUTBOX#"))
        })
        .expect("the batch's outbox insert");
    let keys = serde_json::to_value(&record.change.keys).unwrap();
    let key = |k: &str| aws_sdk_dynamodb::types::AttributeValue::S(keys[k]["S"].as_str().unwrap().to_owned());
    aws_sdk_dynamodb::Client::new(&sdk().await)
        .update_item()
        .table_name(store_url.strip_prefix("dynamodb://").unwrap())
        .key("pk", key("pk"))
        .key("sk", key("sk"))
        .update_expression("REMOVE delivered_at, #ttl")
        .expression_attribute_names("#ttl", "ttl")
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_a_replayed_stream_batch_and_a_crash_before_the_mark_send_each_event_once_per_webhook() {
    let (rx1, rx2) = tokio::join!(Receiver::start(Behaviour::Accept), Receiver::start(Behaviour::Accept));
    let (store_url, stream) = table_with_stream().await;
    let (bus, bus_queue) = bus_to_queue().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let attempts = attempt_queue(&sqs).await;
    let config = Config {
        store_url: store_url.clone(),
        event_bus: Some(bus),
        webhook_queue_url: Some(attempts.clone()),
        webhook_allow_hosts: vec![rx1.authority.clone(), rx2.authority.clone()],
        ..common::test_config()
    };
    let (app, state) = common::spawn_with_state(config).await;
    let token = common::token("org-a", None);
    let hooks = two_webhooks(&app, &token, [&rx1, &rx2]).await;
    let (c, _, _) = connected(&app, &token).await;
    let dispatcher = Dispatcher::for_services(&state).await;

    let batch = stream_event(&stream);
    let items = lambda::outbox_items(&batch).unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let message = format!("msg_{}_{}", items[0].connection_id.as_str(), items[0].sequence);
    assert_eq!(lambda::handle(&dispatcher, batch.clone()).await.unwrap(), 1);
    // Lambda retries the batch whole, two minutes on.
    app.clock.advance(120);
    assert_eq!(
        lambda::handle(&dispatcher, batch.clone()).await.unwrap(),
        0,
        "marked delivered: skipped"
    );

    // A crash between the fan-out and the mark, and the batch again.
    unmark(&store_url, &batch).await;
    app.clock.advance(120);
    assert_eq!(lambda::handle(&dispatcher, batch.clone()).await.unwrap(), 1);
    one_delivery_each(&app, &token, &hooks, &message).await;

    // What the stream hands over next: one delivery insert per webhook,
    // each queued once; the queue's batches make the attempts.
    let next = newer(&stream, &batch);
    assert_eq!(lambda::queued_deliveries(&next).unwrap().len(), 2, "{next:?}");
    lambda::handle(&dispatcher, next).await.unwrap();
    for _ in 0..5 {
        let msgs = sqs_event(&sqs, &attempts, Duration::from_secs(2)).await;
        if msgs["Records"].as_array().unwrap().is_empty() {
            break;
        }
        let answer = lambda::handle_any(&dispatcher, msgs).await.unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    }
    for rx in [&rx1, &rx2] {
        let got = rx.wait_for(2, Duration::from_secs(2)).await;
        assert_eq!(got.len(), 1, "one request per webhook");
        assert_eq!(got[0].id(), message);
    }
    assert_eq!(connected_on_bus(&bus_queue, &c["id"]).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_purges_delivered_outbox_rows_after_a_week() {
    let file = std::env::temp_dir().join(format!("purge-{}.db", account_connect::ids::random_token(6)));
    let config = Config {
        store_url: format!("sqlite://{}", file.display()),
        ..common::test_config()
    };
    let (app, state, store) = common::spawn_with_store(config).await;
    let token = common::token("org-a", None);
    let (c, _, _) = connected(&app, &token).await;
    let id = c["id"].as_str().unwrap();
    let dispatcher = Dispatcher::for_services(&state).await;
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 1);
    let db = rusqlite::Connection::open(&file).unwrap();
    let rows = || -> i64 {
        db.query_row("SELECT count(*) FROM outbox WHERE connection_id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(rows(), 1, "kept a week once delivered");
    let first = store.undelivered(10).await.unwrap();
    assert!(first.is_empty(), "{first:?}");

    app.clock.advance(8 * 24 * 3600);
    let (status, body) = app.disconnect(&token, id).await;
    assert!(status < 300, "{body}");
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 1);
    assert_eq!(rows(), 1, "the week-old delivered row went as the next was marked");
    let _ = std::fs::remove_file(&file);
}
