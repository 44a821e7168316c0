//! What the store keeps for webhooks: each tenant's webhooks, and each
//! delivery of an event to one, with its attempts. A delivery's key is its
//! webhook and message id, so fanning an event out twice (an outbox item
//! dispatched again) writes it once.

use super::{Page, StoreError};
use crate::domain::{Delivery, Webhook, WebhookId};

/// How long a delivery's record is kept, for the deliveries log.
pub const DELIVERY_RETENTION_SECS: i64 = 30 * 24 * 3600;

#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    /// Writes a new webhook (its id is new).
    async fn create_webhook(&self, hook: &Webhook) -> Result<(), StoreError>;

    /// Replaces the webhook if its stored version is `hook.version - 1`
    /// (`Conflict` otherwise, also when it was deleted).
    async fn update_webhook(&self, hook: &Webhook) -> Result<(), StoreError>;

    /// The tenant's webhook.
    async fn get_webhook(&self, org: &str, id: &WebhookId) -> Result<Option<Webhook>, StoreError>;

    /// The tenant's webhooks, oldest first, at most `limit`.
    async fn list_webhooks(&self, org: &str, limit: usize) -> Result<Vec<Webhook>, StoreError>;

    /// Deletes the tenant's webhook; false if there was none.
    async fn delete_webhook(&self, org: &str, id: &WebhookId) -> Result<bool, StoreError>;

    /// Writes a new delivery; false (and nothing written) if one with its
    /// webhook and message id exists.
    async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool, StoreError>;

    /// Replaces the delivery if its stored version is `d.version - 1`.
    async fn update_delivery(&self, d: &Delivery) -> Result<(), StoreError>;

    /// One delivery, by webhook and position (`Delivery::position`).
    async fn get_delivery(&self, hook: &WebhookId, position: &str) -> Result<Option<Delivery>, StoreError>;

    /// Pending deliveries of every tenant whose next attempt is due at
    /// `now`, soonest first, at most `limit`.
    async fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// A webhook's deliveries, newest first, after the position `after`.
    async fn deliveries(
        &self,
        hook: &WebhookId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError>;
}

/// A list position is `Delivery::position`'s shape, nothing else.
pub(crate) fn delivery_after(after: Option<&str>) -> Result<Option<String>, StoreError> {
    match after {
        None => Ok(None),
        Some(a) => {
            let (time, id) = a.split_once('#').ok_or(StoreError::OutsideQuery)?;
            let ok = time.len() == 12
                && time.bytes().all(|b| b.is_ascii_digit())
                && !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            ok.then(|| Some(a.to_owned())).ok_or(StoreError::OutsideQuery)
        }
    }
}
