//! The dispatcher function's events: a batch of DynamoDB stream records, or
//! a batch of webhook attempts from SQS. The stream's event source mapping
//! passes only inserted outbox items and webhook deliveries (its filters);
//! any other record is skipped here too. A stream batch that fails is
//! retried whole by Lambda (then split, then sent to the on-failure queue),
//! so an event may be delivered twice, never lost while the stream keeps
//! it. An SQS batch answers the messages that failed (`batchItemFailures`).

use super::{DispatchError, Dispatcher};
use crate::domain::{Delivery, OutboxItem};
use crate::store::StoreError;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;

/// The records' new images of inserted items whose sort key starts with
/// `prefix`, parsed from their `data`.
fn inserted<T: serde::de::DeserializeOwned>(event: &StreamEvent, prefix: &str) -> Result<Vec<T>, StoreError> {
    let mut items = Vec::new();
    for record in &event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let keys = serde_json::to_value(&record.change.keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if !keys["sk"]["S"].as_str().is_some_and(|sk| sk.starts_with(prefix)) {
            continue;
        }
        let image = serde_json::to_value(&record.change.new_image).map_err(|e| StoreError::Corrupt(e.to_string()))?;
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
    inserted(event, "OUTBOX#")
}

/// Delivers the batch's outbox items and queues the first attempt of each
/// new webhook delivery; an error fails the batch (retried).
pub async fn handle(dispatcher: &Dispatcher, event: StreamEvent) -> Result<usize, DispatchError> {
    let items = outbox_items(&event)?;
    let delivered = dispatcher.deliver(&items).await?;
    let deliveries: Vec<Delivery> = inserted(&event, "DELIVERY#")?;
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
