//! DynamoDB: a tenant's webhooks are counted in `HOOKS#<org>` / `COUNT`
//! (`hooks`), rewritten in the same transaction as each creation and each
//! deletion on condition that it still holds the value read (a creation
//! also only while it is under `MAX_WEBHOOKS`), so concurrent creations
//! cannot pass the cap: all but one lose the race, read again and retry.
//! Puts, not updates: the API function may put and delete items, never
//! update them (template.yaml). A tenant whose webhooks predate the count
//! gets it on its next creation, counted from its webhooks, in that
//! creation's transaction (on condition it is still absent).

use super::webhooks::{hook_sk, hooks_pk, lost_race};
use super::{attr_n, is_failed, n, put, s, sdk_err, DynamoStore, Item};
use crate::domain::WebhookId;
use crate::store::{StoreError, MAX_WEBHOOKS};
use aws_sdk_dynamodb::types::{Delete, Select, TransactWriteItem};
use std::time::Duration;

const COUNT_SK: &str = "COUNT";
/// Transactions on one tenant's count that may lose to concurrent ones
/// before the caller hears `Conflict`: every racer but one loses a round,
/// so a creation waits at most one round per place left (20) and one more.
const ATTEMPTS: u32 = 2 * MAX_WEBHOOKS as u32 + 2;

/// The count item holding `hooks`, put on condition that the stored one
/// holds `was` (None: that there is none).
fn count_put(table: &str, org: &str, hooks: i64, was: Option<i64>) -> TransactWriteItem {
    let item = Item::from([
        ("pk".into(), s(hooks_pk(org))),
        ("sk".into(), s(COUNT_SK)),
        ("hooks".into(), n(hooks)),
    ]);
    match was {
        Some(c) => put(table, item, Some("hooks = :was"), &[(":was", n(c))]),
        None => put(table, item, Some("attribute_not_exists(pk)"), &[]),
    }
}

/// A short random pause after a lost race, so racers spread out.
async fn pause(attempt: u32) {
    let mut b = [0u8; 1];
    getrandom::fill(&mut b).expect("the OS random source is unavailable");
    let ms = 5 + 2 * u64::from(attempt.min(10)) + u64::from(b[0]) % 20;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl DynamoStore {
    /// The tenant's count, if it has one.
    async fn webhook_count(&self, org: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .get_item(hooks_pk(org), COUNT_SK)
            .await?
            .map(|i| attr_n(&i, "hooks").unwrap_or_default()))
    }

    /// The tenant's webhooks, counted from their items (for a tenant
    /// without a count yet).
    async fn count_webhooks(&self, org: &str) -> Result<i64, StoreError> {
        let out = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :hook)")
            .expression_attribute_values(":pk", s(hooks_pk(org)))
            .expression_attribute_values(":hook", s("HOOK#"))
            .select(Select::Count)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(i64::from(out.count()))
    }

    /// Writes `hook_put` (the new webhook) with the tenant's count one up;
    /// false when the count is at `MAX_WEBHOOKS`.
    pub(super) async fn create_counted(&self, org: &str, hook_put: TransactWriteItem) -> Result<bool, StoreError> {
        for attempt in 0..ATTEMPTS {
            let stored = self.webhook_count(org).await?;
            let count = match stored {
                Some(c) => c,
                None => self.count_webhooks(org).await?,
            };
            if count >= MAX_WEBHOOKS as i64 {
                return Ok(false);
            }
            let counted = count_put(&self.table, org, count + 1, stored);
            match self.transact(vec![hook_put.clone(), counted]).await {
                Ok(()) => return Ok(true),
                Err((codes, StoreError::Conflict)) if is_failed(&codes, 0) => return Err(StoreError::Conflict),
                // The count moved (or appeared) meanwhile, or a concurrent
                // transaction won: read it again.
                Err((codes, StoreError::Conflict)) => {
                    if lost_race(&codes) || is_failed(&codes, 1) {
                        pause(attempt).await;
                    }
                }
                Err((_, e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Deletes the tenant's webhook with its count one down; false if there
    /// was none. A tenant without a count (webhooks from before it) just
    /// loses the webhook.
    pub(super) async fn delete_counted(&self, org: &str, id: &WebhookId) -> Result<bool, StoreError> {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Item::from([
                ("pk".into(), s(hooks_pk(org))),
                ("sk".into(), s(hook_sk(id))),
            ])))
            .condition_expression("attribute_exists(pk)")
            .build()
            .expect("table and key are set");
        let delete = TransactWriteItem::builder().delete(d).build();
        for attempt in 0..ATTEMPTS {
            let items = match self.webhook_count(org).await? {
                Some(c) if c > 0 => vec![delete.clone(), count_put(&self.table, org, c - 1, Some(c))],
                _ => vec![delete.clone()],
            };
            match self.transact(items).await {
                Ok(()) => return Ok(true),
                Err((codes, StoreError::Conflict)) if is_failed(&codes, 0) => return Ok(false),
                Err((_, StoreError::Conflict)) => pause(attempt).await,
                Err((_, e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}
