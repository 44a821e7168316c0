//! The dispatcher function's events: a batch of DynamoDB stream records, or
//! a batch of webhook attempts from SQS. The stream's event source mapping
//! passes only inserted outbox items and webhook deliveries, and deliveries
//! a partner made pending again (`requeued` in that write: see
//! `WebhookStore::resend_delivery`) (its filters); any other record is
//! skipped here too. A stream batch that fails is retried whole by Lambda
//! (then split, then sent to the on-failure queue), so a batch may come
//! twice: outbox items delivered already are skipped (`Dispatcher::deliver`
//! reads their mark), and a delivery is stored once per webhook and message.
//! An SQS batch answers the messages that failed (`batchItemFailures`).
//!
//! Why the stream and not the API queues a resent delivery's attempt: the
//! write and its queueing then cannot part (an API that stored the resend
//! and then failed to reach SQS would leave it pending with no message),
//! the API function needs no queue, and a resend is queued exactly as a new
//! delivery is.

use super::{DispatchError, Dispatcher};
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
/// new (or resent) webhook delivery; an error fails the batch (retried).
pub async fn handle(dispatcher: &Dispatcher, event: StreamEvent) -> Result<usize, DispatchError> {
    let items = outbox_items(&event)?;
    let delivered = dispatcher.deliver(&items).await?;
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

/// Either event source's batch, told apart by the records' `eventSource`.
pub async fn handle_any(
    dispatcher: &Dispatcher,
    event: serde_json::Value,
) -> Result<serde_json::Value, lambda_runtime::Error> {
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
    let delivered = handle(dispatcher, batch).await?;
    tracing::info!(delivered, "outbox records delivered");
    Ok(serde_json::json!({ "delivered": delivered }))
}
