//! The sparse index `gsi2`'s keys, spread over shards, and its readers.
//!
//! One partition key takes at most 1,000 write units a second. A key every
//! tenant's connected connections, outbox items or pending deliveries shared
//! would cap the whole service there (and throttling an index throttles the
//! table's writes). So each sparse key is `<KIND>#<n>`, n a stable hash of
//! the item's owner modulo `SHARDS`, and a reader queries every shard side
//! by side and merges them in sort-key order. The index holds keys only
//! (under 1 KB: one write unit an entry, and a connection's or delivery's
//! update that keeps its index key writes nothing there); readers fetch the
//! items they page through by key (`get_items`). Every reader needs whole
//! items, whose `data` JSON is nearly all of them (a delivery's body, an
//! outbox item's connection view), so projecting it (ALL or INCLUDE) would
//! store each payload twice and write it twice on every lease and retry;
//! a batch read of the page costs what the projected query would have.

use super::{attr_s, s, sdk_err, DynamoStore, Item, GSI_CONNECTED};
use crate::store::StoreError;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use std::collections::HashMap;

/// Shards of each sparse key. A delivery makes about four index writes of
/// one unit (in, each reschedule out and in, out), a connection two
/// (connected, disconnected), an outbox item two: 16 shards take 16,000
/// units a second, some 4,000 deliveries a second across all tenants,
/// before any shard reaches 1,000. A reader queries all of them, so more
/// shards cost every read a query more.
pub(super) const SHARDS: u32 = 16;

/// Connected connections, by connection id.
pub(super) const CONNECTED: &str = "CONNECTED";
/// Undelivered outbox items, by time, connection and sequence.
pub(super) const OUTBOX: &str = "OUTBOX";
/// Pending deliveries, by due time, webhook and position.
pub(super) const DUE: &str = "DUE";

/// The shard of `owner`: FNV-1a (64 bits), the same in every process and
/// build (std's hasher is seeded per process).
pub(super) fn shard_of(owner: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(SHARDS)) as u32
}

/// The `gsi2pk` of `owner`'s items of this kind.
pub(super) fn sparse_key(kind: &str, owner: &str) -> String {
    format!("{kind}#{}", shard_of(owner))
}

/// Which sort keys a merged read of the sparse index answers.
#[derive(Clone, Copy)]
pub(super) enum Range<'a> {
    All,
    /// Those after this one.
    After(&'a str),
    /// This one and those before it.
    Upto(&'a str),
}

impl DynamoStore {
    /// Up to `limit` index entries (keys only) of `kind` within `range`, in
    /// `gsi2sk` order across every shard, and whether more follow the last.
    pub(super) async fn sparse_entries(
        &self,
        kind: &str,
        range: Range<'_>,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        // One more than the page from each, to know whether there is a next one.
        let reads = (0..SHARDS).map(|n| self.shard_entries(format!("{kind}#{n}"), range, limit + 1));
        let shards = futures::future::try_join_all(reads).await?;
        // A shard that stopped early (at the limit, or at DynamoDB's 1 MB)
        // is merged only up to its last key: past it, its items are unknown.
        let bound = shards
            .iter()
            .filter(|(_, more)| *more)
            .filter_map(|(rows, _)| rows.last().and_then(|r| attr_s(r, "gsi2sk")).map(str::to_owned))
            .min();
        // Stopped short of the limit: more may follow even a short page.
        let short = shards.iter().any(|(rows, more)| *more && rows.len() <= limit);
        let mut rows: Vec<Item> = shards
            .into_iter()
            .flat_map(|(rows, _)| rows)
            .filter(|r| {
                bound
                    .as_deref()
                    .is_none_or(|b| attr_s(r, "gsi2sk").is_some_and(|k| k <= b))
            })
            .collect();
        rows.sort_by(|a, b| attr_s(a, "gsi2sk").cmp(&attr_s(b, "gsi2sk")));
        let more = short || rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// One shard's entries within `range`, at most `limit`, and whether it
    /// has more.
    async fn shard_entries(
        &self,
        key: String,
        range: Range<'_>,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let (cond, value) = match range {
            Range::All => ("gsi2pk = :k", None),
            Range::After(a) => ("gsi2pk = :k AND gsi2sk > :v", Some(a)),
            Range::Upto(u) => ("gsi2pk = :k AND gsi2sk <= :v", Some(u)),
        };
        let mut q = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .index_name(GSI_CONNECTED)
            .key_condition_expression(cond)
            .expression_attribute_values(":k", s(key))
            .limit(limit as i32);
        if let Some(v) = value {
            q = q.expression_attribute_values(":v", s(v));
        }
        let out = q.send().await.map_err(sdk_err)?;
        let more = out.last_evaluated_key().is_some();
        Ok((out.items.unwrap_or_default(), more))
    }

    /// The items at these entries' table keys, in the entries' order; one
    /// gone since is left out. 100 keys a request, side by side.
    pub(super) async fn get_items(&self, entries: &[Item], consistent: bool) -> Result<Vec<Item>, StoreError> {
        let key = |i: &Item| Some((attr_s(i, "pk")?.to_owned(), attr_s(i, "sk")?.to_owned()));
        let keys: Vec<(String, String)> = entries.iter().filter_map(key).collect();
        let reads = keys.chunks(100).map(|chunk| self.batch_get(chunk, consistent));
        let mut found: HashMap<(String, String), Item> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|i| Some((key(&i)?, i)))
            .collect();
        Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
    }

    async fn batch_get(&self, keys: &[(String, String)], consistent: bool) -> Result<Vec<Item>, StoreError> {
        let client = self.client().await;
        let mut want: Vec<Item> = keys
            .iter()
            .map(|(pk, sk)| Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]))
            .collect();
        let mut got = Vec::new();
        // DynamoDB may leave keys unprocessed under load: asked again, briefly.
        for wait_ms in [0, 20, 80, 320, 1280] {
            if wait_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
            }
            let ask = KeysAndAttributes::builder()
                .set_keys(Some(want))
                .consistent_read(consistent)
                .build()
                .expect("keys are set");
            let out = client
                .batch_get_item()
                .request_items(&self.table, ask)
                .send()
                .await
                .map_err(sdk_err)?;
            got.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            want = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if want.is_empty() {
                return Ok(got);
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB left keys of a batch read unprocessed".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_owners_spread_over_every_shard() {
        let mut counts: HashMap<String, u32> = HashMap::new();
        for _ in 0..1000 {
            let id = crate::domain::ConnectionId::generate();
            *counts.entry(sparse_key(CONNECTED, id.as_str())).or_default() += 1;
        }
        // The capacity SHARDS's comment counts on: 16 keys at least, none
        // holding more than twice its share.
        assert!(counts.len() >= 16, "{counts:?}");
        assert_eq!(counts.len(), SHARDS as usize, "{counts:?}");
        assert!(counts.values().all(|&c| c <= 2 * 1000 / SHARDS), "{counts:?}");
    }

    #[test]
    fn a_key_is_the_same_in_every_process() {
        // FNV-1a of these bytes, worked out apart from this code: no per-process seed.
        assert_eq!(shard_of("con-000000000000000000000000"), 2);
        assert_eq!(sparse_key(DUE, "wh-0#msg_1"), "DUE#5");
    }
}
