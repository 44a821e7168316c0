//! DynamoDB: webhooks (`HOOKS#<org>` / `HOOK#<id>`, counted by
//! `HOOKS#<org>` / `COUNT`: `webhook_cap`) and their deliveries
//! (`HOOK#<id>` / `DELIVERY#<position>`), each written with its message's
//! claim (`HOOK#<id>` / `MSG#<message id>`, holding the position, `ttl`
//! `MESSAGE_CLAIM_SECS` on) in one transaction, so a message has one
//! delivery per webhook whenever it is fanned out again. A pending delivery
//! carries `gsi2pk` = `DUE#<n>` (`shards`: n from its webhook and message
//! id, so one webhook's burst spreads too) and `gsi2sk` = its due time,
//! webhook and position, so the sender and the sweeper find what is due; a
//! finished one leaves the index and gets a `ttl`. A delivery made pending
//! again by a partner (`resend_delivery`) carries `requeued` = true in that
//! write only: the stream's filter passes it (as it passes inserts), and
//! the dispatcher queues its attempt; the next write of it drops the mark.

use super::shards::{sparse_key, Range, DUE};
use super::{attr_s, is_failed, n, put, s, sdk_err, DynamoStore, Item};
use crate::domain::{Delivery, DeliveryState, Webhook, WebhookId};
use crate::store::webhooks::{delivery_after, DELIVERY_RETENTION_SECS, MESSAGE_CLAIM_SECS};
use crate::store::{Page, StoreError, WebhookStore, MAX_PAGE};
use aws_sdk_dynamodb::types::AttributeValue;

/// Attempts at a write that lost to concurrent transactions on its items.
const WRITE_ATTEMPTS: u32 = 8;

pub(super) fn hooks_pk(org: &str) -> String {
    format!("HOOKS#{org}")
}
pub(super) fn hook_sk(id: &WebhookId) -> String {
    format!("HOOK#{}", id.as_str())
}
fn claim_sk(message_id: &str) -> String {
    format!("MSG#{message_id}")
}

/// The message's claim on its webhook: written once, with the delivery.
fn claim_item(d: &Delivery) -> Item {
    Item::from([
        ("pk".into(), s(hook_sk(&d.webhook_id))),
        ("sk".into(), s(claim_sk(&d.message_id))),
        ("position".into(), s(d.position())),
        ("ttl".into(), n(d.created_at + MESSAGE_CLAIM_SECS)),
    ])
}

/// Whether a cancelled transaction only lost a race (no condition failed):
/// the write is tried again.
pub(super) fn lost_race(codes: &[Option<String>]) -> bool {
    !codes.is_empty() && (0..codes.len()).all(|i| !is_failed(codes, i))
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let data = attr_s(item, "data").ok_or_else(|| StoreError::Corrupt("webhook record without data".into()))?;
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The webhook's item, its `data` as `sealing` stores it (secrets sealed).
fn hook_item(h: &Webhook, data: String) -> Item {
    Item::from([
        ("pk".into(), s(hooks_pk(&h.org))),
        ("sk".into(), s(hook_sk(&h.id))),
        ("version".into(), n(h.version)),
        ("data".into(), s(data)),
    ])
}

impl DynamoStore {
    async fn parse_hook(&self, item: &Item) -> Result<Webhook, StoreError> {
        let data = attr_s(item, "data").ok_or_else(|| StoreError::Corrupt("webhook record without data".into()))?;
        self.sealer.open(data).await
    }
}

fn delivery_item(d: &Delivery) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(hook_sk(&d.webhook_id))),
        ("sk".into(), s(format!("DELIVERY#{}", d.position()))),
        ("version".into(), n(d.version)),
        (
            "data".into(),
            s(serde_json::to_string(d).expect("deliveries serialize")),
        ),
    ]);
    match (d.state, d.next_attempt_at) {
        (DeliveryState::Pending, Some(due)) => {
            let owner = format!("{}#{}", d.webhook_id.as_str(), d.message_id);
            item.insert("gsi2pk".into(), s(sparse_key(DUE, &owner)));
            item.insert(
                "gsi2sk".into(),
                s(format!("{due:012}#{}#{}", d.webhook_id.as_str(), d.position())),
            );
        }
        _ => {
            item.insert("ttl".into(), n(d.created_at + DELIVERY_RETENTION_SECS));
        }
    }
    item
}

#[async_trait::async_trait]
impl WebhookStore for DynamoStore {
    async fn create_webhook(&self, hook: &Webhook) -> Result<bool, StoreError> {
        let data = self.sealer.seal(hook).await?;
        let item = put(
            &self.table,
            hook_item(hook, data),
            Some("attribute_not_exists(pk)"),
            &[],
        );
        self.create_counted(&hook.org, item).await
    }

    async fn update_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        let data = self.sealer.seal(hook).await?;
        let item = put(
            &self.table,
            hook_item(hook, data),
            Some("version = :v"),
            &[(":v", n(hook.version - 1))],
        );
        self.transact(vec![item]).await.map_err(|(_, e)| e)
    }

    async fn get_webhook(&self, org: &str, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        match self.get_item(hooks_pk(org), &hook_sk(id)).await? {
            Some(item) => self.parse_hook(&item).await.map(Some),
            None => Ok(None),
        }
    }

    async fn list_webhooks(&self, org: &str, limit: usize) -> Result<Vec<Webhook>, StoreError> {
        let out = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :hook)")
            .expression_attribute_values(":pk", s(hooks_pk(org)))
            .expression_attribute_values(":hook", s("HOOK#"))
            .consistent_read(true)
            .limit(limit.max(1) as i32)
            .send()
            .await
            .map_err(sdk_err)?;
        let mut hooks = Vec::with_capacity(out.items().len());
        for item in out.items() {
            hooks.push(self.parse_hook(item).await?);
        }
        hooks.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        Ok(hooks)
    }

    async fn delete_webhook(&self, org: &str, id: &WebhookId) -> Result<bool, StoreError> {
        self.delete_counted(org, id).await
    }

    async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool, StoreError> {
        for _ in 0..WRITE_ATTEMPTS {
            let items = vec![
                put(&self.table, delivery_item(d), Some("attribute_not_exists(pk)"), &[]),
                put(&self.table, claim_item(d), Some("attribute_not_exists(pk)"), &[]),
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(true),
                // Two writers of one message can cancel each other: again.
                Err((codes, StoreError::Conflict)) if lost_race(&codes) => continue,
                Err((_, StoreError::Conflict)) => return Ok(false),
                Err((_, e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn update_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        let item = put(
            &self.table,
            delivery_item(d),
            Some("version = :v"),
            &[(":v", n(d.version - 1))],
        );
        self.transact(vec![item]).await.map_err(|(_, e)| e)
    }

    async fn resend_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        let mut item = delivery_item(d);
        item.insert("requeued".into(), AttributeValue::Bool(true));
        let item = put(&self.table, item, Some("version = :v"), &[(":v", n(d.version - 1))]);
        self.transact(vec![item]).await.map_err(|(_, e)| e)
    }

    async fn delivery_by_message(&self, hook: &WebhookId, message_id: &str) -> Result<Option<Delivery>, StoreError> {
        let Some(claim) = self.get_item(hook_sk(hook), &claim_sk(message_id)).await? else {
            return Ok(None);
        };
        let position =
            attr_s(&claim, "position").ok_or_else(|| StoreError::Corrupt("claim without position".into()))?;
        self.get_delivery(hook, position).await
    }

    async fn get_delivery(&self, hook: &WebhookId, position: &str) -> Result<Option<Delivery>, StoreError> {
        self.get_item(hook_sk(hook), &format!("DELIVERY#{position}"))
            .await?
            .map(|i| parse(&i))
            .transpose()
    }

    async fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        // Every key due at `now` sorts before `<now>~`.
        let upto = format!("{now:012}~");
        let (entries, _) = self
            .sparse_entries(DUE, Range::Upto(&upto), limit.clamp(1, MAX_PAGE))
            .await?;
        let mut due = Vec::new();
        for item in self.get_items(&entries, true).await? {
            let d: Delivery = parse(&item)?;
            // Sent or leased ahead since the index was read: not due.
            if d.state == DeliveryState::Pending && d.next_attempt_at.is_some_and(|t| t <= now) {
                due.push(d);
            }
        }
        Ok(due)
    }

    async fn deliveries(
        &self,
        hook: &WebhookId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let before = delivery_after(after)?.unwrap_or_else(|| "~".to_owned());
        let out = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(hook_sk(hook)))
            .expression_attribute_values(":lo", s("DELIVERY#"))
            .expression_attribute_values(":hi", AttributeValue::S(format!("DELIVERY#{before}")))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(limit as i32 + 2)
            .send()
            .await
            .map_err(sdk_err)?;
        // BETWEEN is inclusive: the position itself is the previous page's last.
        let rows: Vec<Delivery> = out
            .items()
            .iter()
            .map(parse)
            .collect::<Result<Vec<Delivery>, _>>()?
            .into_iter()
            .filter(|d| d.position() != before)
            .collect();
        let more = rows.len() > limit;
        let items: Vec<Delivery> = rows.into_iter().take(limit).collect();
        let next = more.then(|| items.last().map(Delivery::position)).flatten();
        Ok(Page { items, next })
    }
}
