//! The dispatcher function's events: a batch of DynamoDB stream records, a
//! batch of webhook attempts from SQS, or the sweeper's schedule. The
//! stream's event source mapping passes only inserted outbox items and
//! webhook deliveries, and deliveries a partner made pending again
//! (`requeued` in that write: see `WebhookStore::resend_delivery`) (its
//! filters); any other record is skipped here too. A stream batch that
//! fails is retried whole by Lambda (then split, then sent to the
//! on-failure queue), so a batch may come twice: outbox items delivered
//! already are skipped (`Dispatcher::deliver` reads their mark), and a
//! delivery is stored once per webhook and message. An SQS batch answers
//! the messages that failed (`batchItemFailures`).
//!
//! Why the stream and not the API queues a resent delivery's attempt: the
//! write and its queueing then cannot part (an API that stored the resend
//! and then failed to reach SQS would leave it pending with no message),
//! the API function needs no queue, and a resend is queued exactly as a new
//! delivery is.

use super::{Delivered, DispatchError, Dispatcher};
use crate::domain::{Delivery, OutboxItem};
use crate::store::StoreError;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;

/// Which records a reader takes, by event name and new image.
type Takes = fn(&str, &serde_json::Value) -> bool;

fn inserts(event_name: &str, _: &serde_json::Value) -> bool {
    event_name == "INSERT"
}

/// New deliveries, and deliveries made pending again by a partner.
fn inserts_and_resends(event_name: &str, image: &serde_json::Value) -> bool {
    event_name == "INSERT" || event_name == "MODIFY" && image["requeued"]["BOOL"].as_bool() == Some(true)
}

/// The records' new images, of the records `takes` takes whose sort key
/// starts with `prefix`, parsed from their `data`.
fn new_images<T: serde::de::DeserializeOwned>(
    event: &StreamEvent,
    prefix: &str,
    takes: Takes,
) -> Result<Vec<T>, StoreError> {
    let mut items = Vec::new();
    for record in &event.records {
        let keys = serde_json::to_value(&record.change.keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if !keys["sk"]["S"].as_str().is_some_and(|sk| sk.starts_with(prefix)) {
            continue;
        }
        let image = serde_json::to_value(&record.change.new_image).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if !takes(&record.event_name, &image) {
            continue;
        }
        let fv = image["fv"]["N"].as_str().and_then(|n| n.parse().ok());
        crate::store::readable_format(fv, prefix)?;
        let data = image["data"]["S"]
            .as_str()
            .ok_or_else(|| StoreError::Corrupt(format!("{prefix} record without data")))?;
        items.push(serde_json::from_str(data).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(items)
}

/// The outbox items among the stream's records: inserts whose sort key
/// starts with `OUTBOX#`.
pub fn outbox_items(event: &StreamEvent) -> Result<Vec<OutboxItem>, StoreError> {
    new_images(event, "OUTBOX#", inserts)
}

/// The deliveries among the stream's records whose attempt is to be
/// queued: new ones, and ones made pending again.
pub fn queued_deliveries(event: &StreamEvent) -> Result<Vec<Delivery>, StoreError> {
    new_images(event, "DELIVERY#", inserts_and_resends)
}

/// Delivers the batch's outbox items and queues the first attempt of each
/// new (or resent) webhook delivery; answers how many items were marked
/// delivered. A store or queue error fails the batch (retried); the bus
/// refusing does not (`handle_stream`).
pub async fn handle(dispatcher: &Dispatcher, event: StreamEvent) -> Result<usize, DispatchError> {
    Ok(handle_stream(dispatcher, event).await?.delivered)
}

/// `handle`, answering what the delivery did. Items the bus did not take
/// were fanned out all the same and stay undelivered for the sweeper: a
/// failed batch would hold up the shard (the deliveries behind it
/// included) while the bus is down, and sends nothing more to the bus.
pub async fn handle_stream(dispatcher: &Dispatcher, event: StreamEvent) -> Result<Delivered, DispatchError> {
    let items = outbox_items(&event)?;
    let delivered = dispatcher.deliver(&items).await?;
    if let Some(e) = &delivered.bus_error {
        tracing::warn!(error = %e, held = delivered.held_for_bus, "the bus did not take some events; webhooks got them, the sweeper puts them on the bus later");
    }
    let deliveries = queued_deliveries(&event)?;
    if !deliveries.is_empty() {
        dispatcher
            .attempt_queue()?
            .schedule(&deliveries, dispatcher.webhooks.now())
            .await
            .map_err(DispatchError::Queue)?;
    }
    Ok(delivered)
}

/// Whether the event is an EventBridge schedule's (the sweeper's).
fn is_schedule(event: &serde_json::Value) -> bool {
    event["source"] == "aws.events" && event["detail-type"] == "Scheduled Event"
}

/// Any of the function's events: a schedule's (a sweep), or a batch, told
/// apart by the records' `eventSource`.
pub async fn handle_any(
    dispatcher: &Dispatcher,
    event: serde_json::Value,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    if is_schedule(&event) {
        let swept = dispatcher.sweep().await?;
        return Ok(serde_json::to_value(swept)?);
    }
    let source = event["Records"][0]["eventSource"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if source == "aws:sqs" {
        let batch: SqsEvent = serde_json::from_value(event)?;
        let answer = dispatcher.handle_attempts(batch).await;
        return Ok(serde_json::to_value(answer)?);
    }
    let batch: StreamEvent = serde_json::from_value(event)?;
    let out = handle_stream(dispatcher, batch).await?;
    tracing::info!(
        delivered = out.delivered,
        held_for_bus = out.held_for_bus,
        "outbox records delivered"
    );
    Ok(serde_json::json!({ "delivered": out.delivered, "heldForBus": out.held_for_bus }))
}
