//! What the store keeps for webhooks: each tenant's webhooks (at most
//! `MAX_WEBHOOKS`, counted in the same write as the creation), and each
//! delivery of an event to one, with its attempts. A delivery is unique by
//! its webhook and message id (a claim written with it), so fanning an
//! event out twice (an outbox item dispatched again, at any later time)
//! writes it once; its position (`Delivery::position`, time first) only
//! orders the deliveries log.

use super::{Page, StoreError};
use crate::domain::{Delivery, Webhook, WebhookId};

/// How long a delivery's record is kept, for the deliveries log.
pub const DELIVERY_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Webhooks one tenant may have: the store refuses the next creation, even
/// among concurrent ones.
pub const MAX_WEBHOOKS: usize = 20;
/// Finished deliveries the SQLite store keeps per webhook (the oldest go
/// first, as new ones come). DynamoDB keeps every delivery its 30 days
/// (TTL) and counts none: there the retention is the only bound.
pub const MAX_DELIVERIES_PER_WEBHOOK: usize = 10_000;
/// How long a message's claim on a webhook is kept: a week beyond its
/// delivery's retention, since a delivery resent on its last day stays
/// pending for up to the retry schedule's 38 hours.
pub const MESSAGE_CLAIM_SECS: i64 = DELIVERY_RETENTION_SECS + 7 * 24 * 3600;

#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    /// Writes a new webhook (its id is new: `Conflict` otherwise); false,
    /// and nothing written, when its tenant has `MAX_WEBHOOKS` already.
    /// The count and the write are one atomic step.
    async fn create_webhook(&self, hook: &Webhook) -> Result<bool, StoreError>;

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
    /// webhook and message id exists, whenever it was written.
    async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool, StoreError>;

    /// Replaces the delivery if its stored version is `d.version - 1`.
    async fn update_delivery(&self, d: &Delivery) -> Result<(), StoreError>;

    /// `update_delivery` for a delivery made pending again
    /// (`Delivery::resend`): on DynamoDB the write is marked so that the
    /// table's stream hands it to the dispatcher, which queues its attempt
    /// as it does a new delivery's.
    async fn resend_delivery(&self, d: &Delivery) -> Result<(), StoreError>;

    /// The delivery of this message to this webhook.
    async fn delivery_by_message(&self, hook: &WebhookId, message_id: &str) -> Result<Option<Delivery>, StoreError>;

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
