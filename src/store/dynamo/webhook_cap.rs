//! DynamoDB: a tenant's webhooks are counted in `HOOKS#<org>` / `COUNT`
//! (`hooks`), changed in the same transaction as each creation (on
//! condition that it stays within `MAX_WEBHOOKS`) and each deletion, so
//! concurrent creations cannot exceed the cap. A tenant whose webhooks
//! predate the count gets it on its next creation, counted from its
//! webhooks, in that creation's transaction (on condition it is still
//! absent).

use super::webhooks::{hook_sk, hooks_pk, lost_race};
use super::{attr_n, is_failed, n, put, s, sdk_err, DynamoStore, Item};
use crate::domain::WebhookId;
use crate::store::{StoreError, MAX_WEBHOOKS};
use aws_sdk_dynamodb::types::{Delete, Select, TransactWriteItem, Update};
use std::time::Duration;

const COUNT_SK: &str = "COUNT";
/// Transactions on one tenant's count that may lose to concurrent ones
/// before the caller hears `Conflict`.
const ATTEMPTS: u32 = 12;

fn count_key(org: &str) -> Item {
    Item::from([("pk".into(), s(hooks_pk(org))), ("sk".into(), s(COUNT_SK))])
}

/// A short random pause after a lost race, so racers spread out.
async fn pause(attempt: u32) {
    let mut b = [0u8; 1];
    getrandom::fill(&mut b).expect("the OS random source is unavailable");
    let ms = 5 * u64::from(attempt + 1) + u64::from(b[0]) % 20;
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
        let max = MAX_WEBHOOKS as i64;
        for attempt in 0..ATTEMPTS {
            let stored = self.webhook_count(org).await?;
            let count = match stored {
                Some(c) => c,
                None => self.count_webhooks(org).await?,
            };
            if count >= max {
                return Ok(false);
            }
            let counted = match stored {
                Some(_) => {
                    let u = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(count_key(org)))
                        .update_expression("SET hooks = hooks + :one")
                        .condition_expression("hooks < :max")
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":max", n(max))
                        .build()
                        .expect("table, key and expression are set");
                    TransactWriteItem::builder().update(u).build()
                }
                None => {
                    let mut item = count_key(org);
                    item.insert("hooks".into(), n(count + 1));
                    put(&self.table, item, Some("attribute_not_exists(pk)"), &[])
                }
            };
            match self.transact(vec![hook_put.clone(), counted]).await {
                Ok(()) => return Ok(true),
                Err((codes, StoreError::Conflict)) if is_failed(&codes, 0) => return Err(StoreError::Conflict),
                // The count moved (or appeared) meanwhile, or a concurrent
                // transaction won: read it again.
                Err((codes, StoreError::Conflict)) => {
                    if lost_race(&codes) {
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
        let down = Update::builder()
            .table_name(&self.table)
            .set_key(Some(count_key(org)))
            .update_expression("SET hooks = hooks - :one")
            .condition_expression("hooks > :zero")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .build()
            .expect("table, key and expression are set");
        let down = TransactWriteItem::builder().update(down).build();
        let mut counted = self.webhook_count(org).await?.is_some_and(|c| c > 0);
        for attempt in 0..ATTEMPTS {
            let items = match counted {
                true => vec![delete.clone(), down.clone()],
                false => vec![delete.clone()],
            };
            match self.transact(items).await {
                Ok(()) => return Ok(true),
                Err((codes, StoreError::Conflict)) if is_failed(&codes, 0) => return Ok(false),
                // No count to take one from (none yet, or at zero).
                Err((codes, StoreError::Conflict)) if is_failed(&codes, 1) => counted = false,
                Err((_, StoreError::Conflict)) => pause(attempt).await,
                Err((_, e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}
