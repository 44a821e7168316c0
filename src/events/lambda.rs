//! The dispatcher function's event: a batch of DynamoDB stream records. The
//! event source mapping passes only inserted outbox items (its filter); any
//! other record is skipped here too. A batch that fails is retried whole by
//! Lambda (then split, then sent to the on-failure queue), so an event may
//! be delivered twice, never lost while the stream keeps it.

use super::{DispatchError, Dispatcher};
use crate::domain::OutboxItem;
use crate::store::StoreError;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;

/// The outbox items among the stream's records: inserts whose sort key
/// starts with `OUTBOX#`, parsed from their `data`.
pub fn outbox_items(event: &StreamEvent) -> Result<Vec<OutboxItem>, StoreError> {
    let mut items = Vec::new();
    for record in &event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let keys = serde_json::to_value(&record.change.keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if !keys["sk"]["S"].as_str().is_some_and(|sk| sk.starts_with("OUTBOX#")) {
            continue;
        }
        let image = serde_json::to_value(&record.change.new_image).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let data = image["data"]["S"]
            .as_str()
            .ok_or_else(|| StoreError::Corrupt("outbox record without data".into()))?;
        items.push(serde_json::from_str(data).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(items)
}

/// Delivers the batch's outbox items; an error fails the batch (retried).
pub async fn handle(dispatcher: &Dispatcher, event: StreamEvent) -> Result<usize, DispatchError> {
    let items = outbox_items(&event)?;
    dispatcher.deliver(&items).await
}
