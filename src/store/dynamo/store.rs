//! The `Store` operations on DynamoDB: every write one conditional
//! transaction, reads by key or by index.

use super::items::{outbox_sk, parse_connection};
use super::shards::{Range, CONNECTED, OUTBOX};
use super::{attr_n, attr_s, is_failed, n, put, s, sdk_err, written, DynamoStore, Item, GSI_TENANT};
use crate::domain::{Connection, ConnectionId, Event, OutboxItem, SpotAccountId};
use crate::store::{account_prefix, list_start, Guard, Idempotency, Page, Store, StoreError};
use aws_sdk_dynamodb::types::TransactWriteItem;

/// A delivered outbox item stays this long before TTL removes it.
const DELIVERED_RETENTION_SECS: i64 = 7 * 24 * 3600;

#[async_trait::async_trait]
impl Store for DynamoStore {
    async fn create(
        &self,
        c: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Result<(), StoreError> {
        let items = self.create_items(c, event, idem, now);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err((codes, e)) => Err(self.create_refused(c, idem, now, &codes, e).await),
        }
    }

    async fn update(&self, c: &Connection, event: &Event, guards: &[Guard], now: i64) -> Result<(), StoreError> {
        let mut items = vec![
            put(
                &self.table,
                self.connection_item(c),
                Some("version = :v AND org = :org"),
                &[(":v", n(c.version - 1)), (":org", s(&c.org))],
            ),
            self.event_put(event),
        ];
        // Which guard wrote each item after the first two (a release of
        // something no longer held writes none).
        let mut written: Vec<&Guard> = Vec::new();
        for g in guards {
            let item = match g {
                Guard::Publish(o) => Some(self.outbox_put(o)),
                Guard::ClaimExternalId(ext) => Some(self.claim_put(ext.as_str(), &c.id)),
                // An unassigned member never holds its organization's account.
                Guard::HoldAccount { until } => c.spot_account().map(|_| self.hold_put(c, *until, now)),
                Guard::ClaimRole(arn) => {
                    let item = Item::from([
                        ("pk".into(), s(format!("ROLE#{}", arn.as_str()))),
                        ("sk".into(), s("ROLE")),
                        ("connection_id".into(), s(c.id.as_str())),
                    ]);
                    Some(put(
                        &self.table,
                        item,
                        Some("attribute_not_exists(pk) OR connection_id = :id"),
                        &[(":id", s(c.id.as_str()))],
                    ))
                }
                Guard::ReleaseRole(arn) => {
                    self.release_if_held(format!("ROLE#{}", arn.as_str()), "ROLE", &c.id)
                        .await?
                }
                Guard::ReleaseAccount => {
                    self.release_if_held(format!("HOLD#{}#{}", c.org, c.account_id.as_str()), "HOLD", &c.id)
                        .await?
                }
            };
            if let Some(item) = item {
                items.push(item);
                written.push(g);
            }
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err((codes, StoreError::Conflict)) => {
                for (i, g) in written.iter().enumerate() {
                    if is_failed(&codes, i + 2) {
                        match g {
                            Guard::ClaimExternalId(_) => return Err(StoreError::ExternalIdTaken),
                            Guard::HoldAccount { .. } => {
                                if let Some(h) = self.account_holder(&c.org, &c.account_id, now).await? {
                                    return Err(StoreError::AccountHeld(h));
                                }
                            }
                            Guard::ClaimRole(_) => return Err(StoreError::RoleHeld),
                            Guard::ReleaseAccount | Guard::ReleaseRole(_) | Guard::Publish(_) => {}
                        }
                    }
                }
                Err(StoreError::Conflict)
            }
            Err((_, e)) => Err(e),
        }
    }

    async fn idempotency_record(
        &self,
        org: &str,
        idem: &Idempotency,
        now: i64,
    ) -> Result<Option<(String, ConnectionId)>, StoreError> {
        let Some(rec) = self
            .get_item(format!("IDEM#{org}#{}", idem.scoped_key()), "IDEM")
            .await?
        else {
            return Ok(None);
        };
        // TTL deletes late (or never, in moto): an expired record is none.
        if attr_n(&rec, "ttl").is_some_and(|t| t <= now) {
            return Ok(None);
        }
        let request_hash = attr_s(&rec, "request_hash").unwrap_or_default().to_owned();
        let id = attr_s(&rec, "connection_id").unwrap_or_default();
        let connection_id = id.parse().map_err(|_| StoreError::Corrupt(id.to_owned()))?;
        Ok(Some((request_hash, connection_id)))
    }

    async fn append_event(&self, event: &Event) -> Result<(), StoreError> {
        self.transact(vec![self.event_put(event)]).await.map_err(|(_, e)| e)
    }

    async fn get(&self, org: &str, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let Some(item) = self.get_item(format!("CONN#{}", id.as_str()), "CONN").await? else {
            return Ok(None);
        };
        // Another tenant's connection reads exactly like a missing one.
        if attr_s(&item, "org") != Some(org) {
            return Ok(None);
        }
        parse_connection(&item).map(Some)
    }

    async fn list(
        &self,
        org: &str,
        account: Option<&SpotAccountId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, crate::store::MAX_PAGE);
        let prefix = account_prefix(account);
        let start = list_start(account, after)?;
        let mut q = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .index_name(GSI_TENANT)
            .key_condition_expression("gsi1pk = :o AND begins_with(gsi1sk, :p)")
            .expression_attribute_values(":o", s(format!("ORG#{org}")))
            .expression_attribute_values(":p", s(&prefix))
            // One more than the page, to know whether there is a next one.
            .limit(limit as i32 + 1);
        if let Some(after) = start {
            let id = after.rsplit('#').next().unwrap_or_default().to_owned();
            q = q
                .exclusive_start_key("pk", s(format!("CONN#{id}")))
                .exclusive_start_key("sk", s("CONN"))
                .exclusive_start_key("gsi1pk", s(format!("ORG#{org}")))
                .exclusive_start_key("gsi1sk", s(after));
        }
        let out = q.send().await.map_err(sdk_err)?;
        let rows = out.items();
        let items: Vec<Connection> = rows
            .iter()
            .take(limit)
            .map(parse_connection)
            .collect::<Result<_, _>>()?;
        let next = if rows.len() > limit {
            attr_s(&rows[limit - 1], "gsi1sk").map(str::to_owned)
        } else {
            // Short of a page with a key: DynamoDB stopped at its 1 MB.
            out.last_evaluated_key()
                .and_then(|k| attr_s(k, "gsi1sk"))
                .map(str::to_owned)
        };
        Ok(Page { items, next })
    }

    async fn events(&self, id: &ConnectionId, after: Option<&str>, limit: usize) -> Result<Page<Event>, StoreError> {
        let limit = limit.clamp(1, crate::store::MAX_PAGE);
        let pk = format!("CONN#{}", id.as_str());
        let mut q = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :e)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":e", s("EVENT#"))
            .consistent_read(true)
            // One more than the page, to know whether there is a next one.
            .limit(limit as i32 + 1);
        if let Some(after) = after {
            // Positions are event sort keys of this connection.
            let ok = after.len() <= 64
                && after
                    .strip_prefix("EVENT#")
                    .is_some_and(|r| r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'#'));
            if !ok {
                return Err(StoreError::OutsideQuery);
            }
            q = q.exclusive_start_key("pk", s(&pk)).exclusive_start_key("sk", s(after));
        }
        let out = q.send().await.map_err(sdk_err)?;
        let rows = out.items();
        let mut items = Vec::new();
        for item in rows.iter().take(limit) {
            items.push(super::record(item, "event")?);
        }
        let next = if rows.len() > limit {
            attr_s(&rows[limit - 1], "sk").map(str::to_owned)
        } else {
            // Short of a page with a key: DynamoDB stopped at its 1 MB.
            out.last_evaluated_key()
                .and_then(|k| attr_s(k, "sk"))
                .map(str::to_owned)
        };
        Ok(Page { items, next })
    }

    async fn get_any(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let item = self.get_item(format!("CONN#{}", id.as_str()), "CONN").await?;
        item.as_ref().map(parse_connection).transpose()
    }

    async fn list_connected(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        // A cursor is the last connection id answered: every shard resumes
        // after it, since each is in id order (a malformed one starts over).
        let after = cursor.and_then(|c| c.parse::<ConnectionId>().ok());
        let range = after.as_ref().map_or(Range::All, |id| Range::After(id.as_str()));
        let (entries, more) = self.sparse_entries(CONNECTED, range, limit.clamp(1, 1000)).await?;
        let next = more
            .then(|| entries.last().and_then(|e| attr_s(e, "gsi2sk")).map(str::to_owned))
            .flatten();
        let mut items = Vec::new();
        for item in self.get_items(&entries, false).await? {
            let c = parse_connection(&item)?;
            // Disconnected since the index was read: not the re-check's.
            if c.state == crate::domain::Status::Connected {
                items.push(c);
            }
        }
        Ok(Page { items, next })
    }

    async fn account_holder(
        &self,
        org: &str,
        account: &SpotAccountId,
        now: i64,
    ) -> Result<Option<ConnectionId>, StoreError> {
        let Some(item) = self
            .get_item(format!("HOLD#{org}#{}", account.as_str()), "HOLD")
            .await?
        else {
            return Ok(None);
        };
        let until: i64 = item
            .get("until")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if until <= now {
            return Ok(None);
        }
        let id = attr_s(&item, "connection_id").unwrap_or_default();
        id.parse().map(Some).map_err(|_| StoreError::Corrupt(id.to_owned()))
    }

    async fn undelivered(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let (entries, _) = self
            .sparse_entries(OUTBOX, Range::All, limit.clamp(1, crate::store::MAX_PAGE))
            .await?;
        self.get_items(&entries, true)
            .await?
            .iter()
            // Marked delivered since the index was read.
            .filter(|item| !item.contains_key("delivered_at"))
            .map(|item| super::record(item, "outbox item"))
            .collect()
    }

    async fn mark_delivered(&self, id: &ConnectionId, sequence: u64, now: i64) -> Result<(), StoreError> {
        // Out of the index; kept a week for whoever investigates, then TTL.
        let out = self
            .client()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("CONN#{}", id.as_str())))
            .key("sk", s(outbox_sk(sequence)))
            .update_expression("REMOVE gsi2pk, gsi2sk SET delivered_at = :now, #ttl = :ttl")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(now + DELIVERED_RETENTION_SECS))
            .send()
            .await;
        // Refused: the item is gone (expired), nothing to mark.
        written(out).map(|_| ())
    }

    async fn is_delivered(&self, id: &ConnectionId, sequence: u64) -> Result<bool, StoreError> {
        let item = self
            .get_item(format!("CONN#{}", id.as_str()), &outbox_sk(sequence))
            .await?;
        Ok(item.is_none_or(|i| i.contains_key("delivered_at")))
    }

    async fn remember_once(&self, key: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        // TTL deletes an expired item days later at worst; until then the
        // condition treats it as gone.
        let out = self
            .client()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("ONCE#{key}")))
            .item("sk", s("ONCE"))
            .item("ttl", n(until))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        written(out)
    }

    async fn forget(&self, key: &str, until: i64) -> Result<(), StoreError> {
        let out = self
            .client()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("ONCE#{key}")))
            .key("sk", s("ONCE"))
            .condition_expression("#ttl = :until")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        // Expired and taken by another since, or gone: not ours to forget.
        written(out).map(|_| ())
    }

    async fn is_remembered(&self, key: &str, now: i64) -> Result<bool, StoreError> {
        let item = self.get_item(format!("ONCE#{key}"), "ONCE").await?;
        Ok(item.is_some_and(|i| attr_n(&i, "ttl").is_some_and(|t| t > now)))
    }

    async fn take_lease(&self, key: &str, holder: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        // A put, not an update: the API function may not update items.
        let out = self
            .client()
            .await
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("LEASE#{key}")))
            .item("sk", s("LEASE"))
            .item("holder", s(holder))
            .item("ttl", n(until))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now OR holder = :holder")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        written(out)
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let out = self
            .client()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("LEASE#{key}")))
            .key("sk", s("LEASE"))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        // Refused: another holder has it now, theirs to release.
        written(out).map(|_| ())
    }
}

impl DynamoStore {
    /// A new connection's items: the connection, its external-ID claim, its
    /// account hold, its event and (with a key) the idempotency record, in
    /// this order (`create_refused` reads the reasons by position).
    pub(super) fn create_items(
        &self,
        c: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Vec<TransactWriteItem> {
        let mut items = vec![
            put(
                &self.table,
                self.connection_item(c),
                Some("attribute_not_exists(pk)"),
                &[],
            ),
            self.claim_put(c.external_id.as_str(), &c.id),
            self.hold_put(c, c.expires_at, now),
            self.event_put(event),
        ];
        if let Some(idem) = idem {
            let item = Item::from([
                ("pk".into(), s(format!("IDEM#{}#{}", c.org, idem.scoped_key()))),
                ("sk".into(), s("IDEM")),
                ("request_hash".into(), s(&idem.request_hash)),
                ("connection_id".into(), s(c.id.as_str())),
                ("ttl".into(), n(now + crate::store::IDEMPOTENCY_TTL_SECS)),
            ]);
            items.push(put(
                &self.table,
                item,
                Some("attribute_not_exists(pk) OR #ttl <= :now"),
                &[(":now", n(now)), ("#ttl", s("ttl"))],
            ));
        }
        items
    }

    /// Why a transaction of `create_items` (first in it) was refused.
    pub(super) async fn create_refused(
        &self,
        c: &Connection,
        idem: Option<&Idempotency>,
        now: i64,
        codes: &[Option<String>],
        e: StoreError,
    ) -> StoreError {
        if e != StoreError::Conflict {
            return e;
        }
        // Reasons come in item order: connection, external ID, hold, event, idempotency.
        if let (Some(idem), true) = (idem, is_failed(codes, 4)) {
            let rec = match self
                .get_item(format!("IDEM#{}#{}", c.org, idem.scoped_key()), "IDEM")
                .await
            {
                Ok(r) => r,
                Err(e) => return e,
            };
            let Some(rec) = rec else {
                return StoreError::Conflict;
            };
            let request_hash = attr_s(&rec, "request_hash").unwrap_or_default().to_owned();
            let id = attr_s(&rec, "connection_id").unwrap_or_default();
            return match id.parse() {
                Ok(connection_id) => StoreError::IdempotencyKeyUsed {
                    request_hash,
                    connection_id,
                },
                Err(_) => StoreError::Corrupt(id.to_owned()),
            };
        }
        if is_failed(codes, 1) {
            return StoreError::ExternalIdTaken;
        }
        if is_failed(codes, 2) {
            match self.account_holder(&c.org, &c.account_id, now).await {
                Ok(Some(holder)) => return StoreError::AccountHeld(holder),
                Ok(None) => {}
                Err(e) => return e,
            }
        }
        StoreError::Conflict
    }
}
