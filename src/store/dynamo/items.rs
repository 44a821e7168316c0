//! The table's items: a connection and its index keys, an audit event, and
//! the guard items (external-ID claim, account hold, role claim) written in
//! the same transaction.

use super::shards::{sparse_key, CONNECTED, OUTBOX};
use super::{attr_s, format_attr, n, put, record, s, unix_nanos, DynamoStore, Item};
use crate::domain::{Connection, ConnectionId, Event, OutboxItem};
use crate::store::{tenant_sort_key, StoreError};
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};

/// Pending connections linger this long after expiry before TTL removes them.
const EXPIRED_RETENTION_SECS: i64 = 90 * 24 * 3600;

impl DynamoStore {
    pub(super) fn connection_item(&self, c: &Connection) -> Item {
        let mut item = Item::from([
            ("pk".into(), s(format!("CONN#{}", c.id.as_str()))),
            ("sk".into(), s("CONN")),
            ("gsi1pk".into(), s(format!("ORG#{}", c.org))),
            ("gsi1sk".into(), s(tenant_sort_key(c))),
            ("org".into(), s(&c.org)),
            ("version".into(), n(c.version)),
            (
                "data".into(),
                s(serde_json::to_string(c).expect("connections serialize")),
            ),
            format_attr(),
        ]);
        if c.state == crate::domain::Status::Pending {
            item.insert("ttl".into(), n(c.expires_at + EXPIRED_RETENTION_SECS));
        }
        if c.state == crate::domain::Status::Connected {
            item.insert("gsi2pk".into(), s(sparse_key(CONNECTED, c.id.as_str())));
            item.insert("gsi2sk".into(), s(c.id.as_str()));
        }
        item
    }

    pub(super) fn event_put(&self, e: &Event) -> TransactWriteItem {
        let item = Item::from([
            ("pk".into(), s(format!("CONN#{}", e.connection_id.as_str()))),
            (
                "sk".into(),
                s(format!("EVENT#{:020}#{}", unix_nanos(), crate::ids::random_token(4))),
            ),
            ("data".into(), s(serde_json::to_string(e).expect("events serialize"))),
            format_attr(),
        ]);
        put(&self.table, item, None, &[])
    }

    /// An outbox item, in the sparse index `gsi2` under its connection's
    /// `OUTBOX#<n>` until it is delivered (oldest first); new only (a second write of one sequence
    /// cancels the transaction).
    pub(super) fn outbox_put(&self, o: &OutboxItem) -> TransactWriteItem {
        let item = Item::from([
            ("pk".into(), s(format!("CONN#{}", o.connection_id.as_str()))),
            ("sk".into(), s(outbox_sk(o.sequence))),
            ("gsi2pk".into(), s(sparse_key(OUTBOX, o.connection_id.as_str()))),
            (
                "gsi2sk".into(),
                s(format!(
                    "{:012}#{}#{:020}",
                    o.at.max(0),
                    o.connection_id.as_str(),
                    o.sequence
                )),
            ),
            (
                "data".into(),
                s(serde_json::to_string(o).expect("outbox items serialize")),
            ),
            format_attr(),
        ]);
        put(&self.table, item, Some("attribute_not_exists(pk)"), &[])
    }

    pub(super) fn claim_put(&self, ext: &str, id: &ConnectionId) -> TransactWriteItem {
        let item = Item::from([
            ("pk".into(), s(format!("EXTID#{ext}"))),
            ("sk".into(), s("EXTID")),
            ("connection_id".into(), s(id.as_str())),
        ]);
        put(&self.table, item, Some("attribute_not_exists(pk)"), &[])
    }

    pub(super) fn hold_put(&self, c: &Connection, until: i64, now: i64) -> TransactWriteItem {
        let item = Item::from([
            ("pk".into(), s(format!("HOLD#{}#{}", c.org, c.account_id.as_str()))),
            ("sk".into(), s("HOLD")),
            ("connection_id".into(), s(c.id.as_str())),
            ("until".into(), n(until)),
        ]);
        put(
            &self.table,
            item,
            Some("attribute_not_exists(pk) OR connection_id = :id OR #until <= :now"),
            &[(":id", s(c.id.as_str())), (":now", n(now)), ("#until", s("until"))],
        )
    }

    /// Deletes a hold item on condition that this connection still holds it.
    pub(super) fn release(&self, pk: String, sk: &str, id: &ConnectionId) -> TransactWriteItem {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])))
            .condition_expression("connection_id = :id")
            .expression_attribute_values(":id", s(id.as_str()))
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(d).build()
    }

    /// The release of a hold item, if this connection holds it now. A hold
    /// another connection took over (after this one expired) is theirs: left
    /// alone, as SQLite's `DELETE … AND connection_id = ?` leaves it. Should
    /// the holder change between this read and the write, the condition
    /// cancels the transaction and the caller's retry reads again.
    pub(super) async fn release_if_held(
        &self,
        pk: String,
        sk: &str,
        id: &ConnectionId,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let held = self
            .get_item(pk.clone(), sk)
            .await?
            .is_some_and(|item| attr_s(&item, "connection_id") == Some(id.as_str()));
        Ok(held.then(|| self.release(pk, sk, id)))
    }
}

/// The sort key of a connection's outbox item.
pub(super) fn outbox_sk(sequence: u64) -> String {
    format!("OUTBOX#{sequence:020}")
}

pub(super) fn parse_connection(item: &Item) -> Result<Connection, StoreError> {
    record(item, "connection")
}
