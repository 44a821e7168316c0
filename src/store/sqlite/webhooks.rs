//! SQLite: webhooks (counted and inserted in one transaction), and their
//! deliveries (keyed by position for the log; `webhook_messages` claims
//! each message once per webhook, so a fan-out at any later time writes
//! nothing; a partial index finds the due ones). Old rows go as new ones
//! come: deliveries after 30 days or beyond the newest 10,000 of their
//! webhook once finished, claims a week after their delivery's 30 days.

use super::{from_json, page_of, to_json, unavailable, SqliteStore};
use crate::domain::{Delivery, DeliveryState, Webhook, WebhookId};
use crate::store::webhooks::{
    delivery_after, DELIVERY_RETENTION_SECS, MAX_DELIVERIES_PER_WEBHOOK, MAX_WEBHOOKS, MESSAGE_CLAIM_SECS,
};
use crate::store::{Page, StoreError, WebhookStore, MAX_PAGE};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhooks (
    org TEXT NOT NULL, id TEXT NOT NULL, created_at INTEGER NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (org, id));
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    webhook_id TEXT NOT NULL, position TEXT NOT NULL, due INTEGER, created_at INTEGER NOT NULL,
    version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (webhook_id, position));
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (due) WHERE due IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_age ON webhook_deliveries (created_at);
";

/// Added after the first release: created, and filled from the deliveries
/// already stored, in one transaction on the first open that lacks it.
const CLAIMS: &str = "
CREATE TABLE webhook_messages (
    webhook_id TEXT NOT NULL, message_id TEXT NOT NULL, position TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, message_id));
CREATE INDEX webhook_messages_by_age ON webhook_messages (created_at);
-- A position is the creation time (12 digits), '#' and the message id.
INSERT OR IGNORE INTO webhook_messages (webhook_id, message_id, position, created_at)
    SELECT webhook_id, substr(position, 14), position, created_at FROM webhook_deliveries;
";

/// The webhook tables, and the message claims on a database without them.
pub(super) fn init(db: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    db.execute_batch(SCHEMA)?;
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let has_claims: bool = tx.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_messages'",
        [],
        |r| r.get(0),
    )?;
    if !has_claims {
        tx.execute_batch(CLAIMS)?;
    }
    tx.commit()
}

/// The due column: the next attempt, while pending.
fn due(d: &Delivery) -> Option<i64> {
    (d.state == DeliveryState::Pending)
        .then_some(d.next_attempt_at)
        .flatten()
}

#[async_trait::async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, hook: &Webhook) -> Result<bool, StoreError> {
        let (h, data) = (hook.clone(), self.sealer.seal(hook).await?);
        self.with(move |db| {
            // Counted and inserted under one write lock: no other writer,
            // of this process or another, comes between.
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let count: i64 = tx
                .query_row("SELECT count(*) FROM webhooks WHERE org = ?1", params![h.org], |r| {
                    r.get(0)
                })
                .map_err(unavailable)?;
            if count >= MAX_WEBHOOKS as i64 {
                return Ok(false);
            }
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO webhooks (org, id, created_at, version, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![h.org, h.id.as_str(), h.created_at, h.version as i64, data],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn update_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        let (h, data) = (hook.clone(), self.sealer.seal(hook).await?);
        self.with(move |db| {
            let n = db
                .execute(
                    "UPDATE webhooks SET version = ?1, data = ?2 WHERE org = ?3 AND id = ?4 AND version = ?5",
                    params![h.version as i64, data, h.org, h.id.as_str(), h.version as i64 - 1],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        })
        .await
    }

    async fn get_webhook(&self, org: &str, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        let (org, id) = (org.to_owned(), id.clone());
        let data: Option<String> = self
            .with(move |db| {
                db.query_row(
                    "SELECT data FROM webhooks WHERE org = ?1 AND id = ?2",
                    params![org, id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)
            })
            .await?;
        match data {
            Some(d) => self.sealer.open(&d).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_webhooks(&self, org: &str, limit: usize) -> Result<Vec<Webhook>, StoreError> {
        let org = org.to_owned();
        let rows = self
            .with(move |db| {
                let mut stmt = db
                    .prepare("SELECT data FROM webhooks WHERE org = ?1 ORDER BY created_at, id LIMIT ?2")
                    .map_err(unavailable)?;
                let rows: Vec<String> = stmt
                    .query_map(params![org, limit as i64], |r| r.get(0))
                    .map_err(unavailable)?
                    .collect::<Result<_, _>>()
                    .map_err(unavailable)?;
                Ok(rows)
            })
            .await?;
        let mut hooks = Vec::with_capacity(rows.len());
        for d in &rows {
            hooks.push(self.sealer.open(d).await?);
        }
        Ok(hooks)
    }

    async fn delete_webhook(&self, org: &str, id: &WebhookId) -> Result<bool, StoreError> {
        let (org, id) = (org.to_owned(), id.clone());
        self.with(move |db| {
            let n = db
                .execute(
                    "DELETE FROM webhooks WHERE org = ?1 AND id = ?2",
                    params![org, id.as_str()],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool, StoreError> {
        let d = d.clone();
        self.with(move |db| {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            // Old records go as new ones come: the log keeps a month.
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE created_at < ?1 AND due IS NULL",
                params![d.created_at - DELIVERY_RETENTION_SECS],
            )
            .map_err(unavailable)?;
            tx.execute(
                "DELETE FROM webhook_messages WHERE created_at < ?1",
                params![d.created_at - MESSAGE_CLAIM_SECS],
            )
            .map_err(unavailable)?;
            let claimed = tx
                .execute(
                    "INSERT OR IGNORE INTO webhook_messages (webhook_id, message_id, position, created_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![d.webhook_id.as_str(), d.message_id, d.position(), d.created_at],
                )
                .map_err(unavailable)?;
            if claimed == 0 {
                return Ok(false); // This message has its delivery already.
            }
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO webhook_deliveries (webhook_id, position, due, created_at, version, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        d.webhook_id.as_str(),
                        d.position(),
                        due(&d),
                        d.created_at,
                        d.version as i64,
                        to_json(&d)
                    ],
                )
                .map_err(unavailable)?;
            // At most the newest MAX_DELIVERIES_PER_WEBHOOK, once finished.
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE webhook_id = ?1 AND due IS NULL AND position < \
                 (SELECT position FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY position DESC LIMIT 1 OFFSET ?2)",
                params![d.webhook_id.as_str(), MAX_DELIVERIES_PER_WEBHOOK as i64 - 1],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn update_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        let d = d.clone();
        self.with(move |db| {
            let n = db
                .execute(
                    "UPDATE webhook_deliveries SET due = ?1, version = ?2, data = ?3 \
                     WHERE webhook_id = ?4 AND position = ?5 AND version = ?6",
                    params![
                        due(&d),
                        d.version as i64,
                        to_json(&d),
                        d.webhook_id.as_str(),
                        d.position(),
                        d.version as i64 - 1
                    ],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        })
        .await
    }

    async fn resend_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        // The local dispatcher finds it due in the table; nothing to mark.
        self.update_delivery(d).await
    }

    async fn delivery_by_message(&self, hook: &WebhookId, message_id: &str) -> Result<Option<Delivery>, StoreError> {
        let (hook, message_id) = (hook.clone(), message_id.to_owned());
        self.with(move |db| {
            let data: Option<String> = db
                .query_row(
                    "SELECT d.data FROM webhook_messages m JOIN webhook_deliveries d \
                     ON d.webhook_id = m.webhook_id AND d.position = m.position \
                     WHERE m.webhook_id = ?1 AND m.message_id = ?2",
                    params![hook.as_str(), message_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            data.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn get_delivery(&self, hook: &WebhookId, position: &str) -> Result<Option<Delivery>, StoreError> {
        let (hook, position) = (hook.clone(), position.to_owned());
        self.with(move |db| {
            let data: Option<String> = db
                .query_row(
                    "SELECT data FROM webhook_deliveries WHERE webhook_id = ?1 AND position = ?2",
                    params![hook.as_str(), position],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            data.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        self.with(move |db| {
            let mut stmt = db
                .prepare("SELECT data FROM webhook_deliveries WHERE due <= ?1 ORDER BY due LIMIT ?2")
                .map_err(unavailable)?;
            let rows: Vec<String> = stmt
                .query_map(params![now, limit], |r| r.get(0))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            rows.iter().map(|d| from_json(d)).collect()
        })
        .await
    }

    async fn deliveries(
        &self,
        hook: &WebhookId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        let after = delivery_after(after)?;
        let hook = hook.clone();
        let limit = limit.clamp(1, MAX_PAGE);
        self.with(move |db| {
            // Newest first: positions sort by time.
            let mut stmt = db
                .prepare(
                    "SELECT data, position FROM webhook_deliveries WHERE webhook_id = ?1 AND position < ?2 \
                     ORDER BY position DESC LIMIT ?3",
                )
                .map_err(unavailable)?;
            let before = after.unwrap_or_else(|| "~".to_owned());
            page_of::<Delivery, String>(&mut stmt, params![hook.as_str(), before, limit as i64 + 1], limit)
        })
        .await
    }
}
