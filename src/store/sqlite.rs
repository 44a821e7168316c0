//! SQLite store for local runs: the same guarantees as DynamoDB, from one
//! transaction per write.

use super::{account_prefix, list_start, tenant_sort_key, Guard, Idempotency, OpenError, Page, Store, StoreError};
use crate::domain::SpotAccountId;
use crate::domain::{Connection, ConnectionId, Event, OutboxItem};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use std::sync::{Arc, Mutex};

mod organizations;
mod webhooks;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY, org TEXT NOT NULL, sort_key TEXT NOT NULL,
    state TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS connections_by_tenant ON connections (org, sort_key);
CREATE TABLE IF NOT EXISTS external_ids (external_id TEXT PRIMARY KEY, connection_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS account_holds (
    org TEXT NOT NULL, account TEXT NOT NULL, connection_id TEXT NOT NULL, until INTEGER NOT NULL,
    PRIMARY KEY (org, account));
-- Keys were once per org only; they live a day, so the old table just goes.
DROP TABLE IF EXISTS idempotency;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    org TEXT NOT NULL, scoped_key TEXT NOT NULL, request_hash TEXT NOT NULL, connection_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL, PRIMARY KEY (org, scoped_key));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, connection_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_connection ON events (connection_id, seq);
CREATE TABLE IF NOT EXISTS role_claims (role_arn TEXT PRIMARY KEY, connection_id TEXT NOT NULL);
-- remember_once: expired rows are purged by the next call.
CREATE TABLE IF NOT EXISTS once_keys (key TEXT PRIMARY KEY, until INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS once_keys_by_expiry ON once_keys (until);
-- take_lease: a row is the holder's until `until`, or until released.
CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL);
-- The outbox: state changes written with the change, delivered from here.
CREATE TABLE IF NOT EXISTS outbox (
    connection_id TEXT NOT NULL, sequence INTEGER NOT NULL, at INTEGER NOT NULL, data TEXT NOT NULL,
    delivered_at INTEGER, PRIMARY KEY (connection_id, sequence));
CREATE INDEX IF NOT EXISTS outbox_undelivered ON outbox (at, connection_id, sequence) WHERE delivered_at IS NULL;
-- Delivered rows are purged after DELIVERED_RETENTION_SECS, as marks come.
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
";

/// A delivered outbox row stays this long (as DynamoDB's TTL keeps one),
/// then the next mark removes it.
const DELIVERED_RETENTION_SECS: i64 = 7 * 24 * 3600;

#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Mutex<rusqlite::Connection>>,
    /// Signalled after each commit that stored an outbox item: the local
    /// dispatcher wakes on it instead of waiting for its next poll.
    outbox_written: Arc<tokio::sync::Notify>,
    /// Seals and opens webhook signing secrets (`sealing`).
    sealer: Arc<super::sealing::Sealer>,
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialize")
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The `data` column of the row with this id in `table`, parsed.
pub(super) fn data_by_id<T: serde::de::DeserializeOwned>(
    db: &rusqlite::Connection,
    table: &'static str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    let data: Option<String> = db
        .query_row(&format!("SELECT data FROM {table} WHERE id = ?1"), params![id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(unavailable)?;
    data.map(|d| from_json(&d)).transpose()
}

impl SqliteStore {
    pub fn open(path: &str) -> Result<Self, OpenError> {
        let conn = rusqlite::Connection::open(path).map_err(|source| OpenError::SqliteOpen {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Self, OpenError> {
        Self::init(rusqlite::Connection::open_in_memory().map_err(OpenError::SqliteSetup)?)
    }

    fn init(mut conn: rusqlite::Connection) -> Result<Self, OpenError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(OpenError::SqliteSetup)?;
        conn.execute_batch(SCHEMA)
            .and_then(|()| conn.execute_batch(organizations::SCHEMA))
            .and_then(|()| webhooks::init(&mut conn))
            .map_err(OpenError::SqliteSchema)?;
        Ok(SqliteStore {
            db: Arc::new(Mutex::new(conn)),
            outbox_written: Arc::new(tokio::sync::Notify::new()),
            sealer: Arc::new(super::sealing::Sealer::ephemeral()),
        })
    }

    /// The same, its webhook secrets sealed under `key`'s data keys
    /// (`aws` for a KMS key).
    pub fn with_secrets_key(mut self, key: super::SecretsKey, aws: &crate::sdk::AwsConfigs) -> Self {
        self.sealer = Arc::new(super::sealing::Sealer::new(key, Some(aws)).expect("AWS is at hand"));
        self
    }

    /// Runs `f` on the database off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = db
                .lock()
                .map_err(|_| StoreError::Unavailable("sqlite lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

fn insert_event(tx: &rusqlite::Transaction, event: &Event) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events (connection_id, data) VALUES (?1, ?2)",
        params![event.connection_id.as_str(), to_json(event)],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// A change's outbox item, in the change's transaction.
fn insert_outbox(tx: &rusqlite::Transaction, item: &OutboxItem) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO outbox (connection_id, sequence, at, data) VALUES (?1, ?2, ?3, ?4)",
        params![
            item.connection_id.as_str(),
            item.sequence as i64,
            item.at,
            to_json(item)
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

fn claim_external_id(tx: &rusqlite::Transaction, ext: &str, id: &str) -> Result<(), StoreError> {
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO external_ids (external_id, connection_id) VALUES (?1, ?2)",
            params![ext, id],
        )
        .map_err(unavailable)?;
    if n == 0 {
        return Err(StoreError::ExternalIdTaken);
    }
    Ok(())
}

fn hold_account(tx: &rusqlite::Transaction, c: &Connection, until: i64, now: i64) -> Result<(), StoreError> {
    if c.spot_account().is_none() {
        return Ok(()); // An unassigned member never holds its organization's account.
    }
    let holder: Option<(String, i64)> = tx
        .query_row(
            "SELECT connection_id, until FROM account_holds WHERE org = ?1 AND account = ?2",
            params![c.org, c.account_id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    if let Some((holder, held_until)) = holder {
        if holder != c.id.as_str() && held_until > now {
            return Err(StoreError::AccountHeld(
                holder.parse().map_err(|_| StoreError::Corrupt(holder))?,
            ));
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO account_holds (org, account, connection_id, until) VALUES (?1, ?2, ?3, ?4)",
        params![c.org, c.account_id.as_str(), c.id.as_str(), until],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// A new connection's rows in `tx`: idempotency record, external-ID claim,
/// account hold, the connection and its event.
pub(super) fn insert_connection(
    tx: &rusqlite::Transaction,
    c: &Connection,
    e: &Event,
    idem: Option<&Idempotency>,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(idem) = idem {
        let scoped = idem.scoped_key();
        let used: Option<(String, String)> = tx
            .query_row(
                "SELECT request_hash, connection_id FROM idempotency_keys WHERE org = ?1 AND scoped_key = ?2 AND expires_at > ?3",
                params![c.org, scoped, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(unavailable)?;
        if let Some((request_hash, id)) = used {
            let connection_id = id.parse().map_err(|_| StoreError::Corrupt(id))?;
            return Err(StoreError::IdempotencyKeyUsed {
                request_hash,
                connection_id,
            });
        }
        tx.execute(
            "INSERT OR REPLACE INTO idempotency_keys (org, scoped_key, request_hash, connection_id, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.org, scoped, idem.request_hash, c.id.as_str(), now + super::IDEMPOTENCY_TTL_SECS],
        )
        .map_err(unavailable)?;
    }
    claim_external_id(tx, c.external_id.as_str(), c.id.as_str())?;
    hold_account(tx, c, c.expires_at, now)?;
    tx.execute(
        "INSERT INTO connections (id, org, sort_key, state, version, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            c.id.as_str(),
            c.org,
            tenant_sort_key(c),
            c.state.as_str(),
            c.version as i64,
            to_json(c)
        ],
    )
    .map_err(unavailable)?;
    insert_event(tx, e)
}

/// One page of a query selecting `(data, position)` with `LIMIT limit + 1`:
/// the first `limit` records, and the position after them when more follow.
fn page_of<T: serde::de::DeserializeOwned, K: rusqlite::types::FromSql + ToString>(
    stmt: &mut rusqlite::Statement,
    params: impl rusqlite::Params,
    limit: usize,
) -> Result<Page<T>, StoreError> {
    let rows: Vec<(String, K)> = stmt
        .query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let more = rows.len() > limit;
    let rows = &rows[..rows.len().min(limit)];
    let next = if more {
        rows.last().map(|(_, k)| k.to_string())
    } else {
        None
    };
    let items = rows.iter().map(|(d, _)| from_json(d)).collect::<Result<_, _>>()?;
    Ok(Page { items, next })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create(
        &self,
        conn: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Result<(), StoreError> {
        let (c, e, idem) = (conn.clone(), event.clone(), idem.cloned());
        self.with(move |db| {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            insert_connection(&tx, &c, &e, idem.as_ref(), now)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn update(&self, conn: &Connection, event: &Event, guards: &[Guard], now: i64) -> Result<(), StoreError> {
        let (c, e, guards) = (conn.clone(), event.clone(), guards.to_vec());
        let publishes = guards.iter().any(|g| matches!(g, Guard::Publish(_)));
        let written = self.with(move |db| {
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            let n = tx
                .execute(
                    "UPDATE connections SET state = ?1, version = ?2, data = ?3, sort_key = ?7 WHERE id = ?4 AND org = ?5 AND version = ?6",
                    params![c.state.as_str(), c.version as i64, to_json(&c), c.id.as_str(), c.org, c.version as i64 - 1, tenant_sort_key(&c)],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
            for g in &guards {
                match g {
                    Guard::Publish(item) => insert_outbox(&tx, item)?,
                    Guard::ClaimExternalId(ext) => claim_external_id(&tx, ext.as_str(), c.id.as_str())?,
                    Guard::HoldAccount { until } => hold_account(&tx, &c, *until, now)?,
                    Guard::ClaimRole(arn) => {
                        let holder: Option<String> = tx
                            .query_row("SELECT connection_id FROM role_claims WHERE role_arn = ?1", params![arn.as_str()], |r| r.get(0))
                            .optional()
                            .map_err(unavailable)?;
                        if holder.is_some_and(|h| h != c.id.as_str()) {
                            return Err(StoreError::RoleHeld);
                        }
                        tx.execute(
                            "INSERT OR REPLACE INTO role_claims (role_arn, connection_id) VALUES (?1, ?2)",
                            params![arn.as_str(), c.id.as_str()],
                        )
                        .map_err(unavailable)?;
                    }
                    Guard::ReleaseRole(arn) => {
                        tx.execute(
                            "DELETE FROM role_claims WHERE role_arn = ?1 AND connection_id = ?2",
                            params![arn.as_str(), c.id.as_str()],
                        )
                        .map_err(unavailable)?;
                    }
                    Guard::ReleaseAccount => {
                        tx.execute(
                            "DELETE FROM account_holds WHERE org = ?1 AND account = ?2 AND connection_id = ?3",
                            params![c.org, c.account_id.as_str(), c.id.as_str()],
                        )
                        .map_err(unavailable)?;
                    }
                }
            }
            insert_event(&tx, &e)?;
            tx.commit().map_err(unavailable)
        })
        .await;
        if written.is_ok() && publishes {
            self.outbox_written.notify_one();
        }
        written
    }

    fn outbox_written(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.outbox_written.clone())
    }

    async fn idempotency_record(
        &self,
        org: &str,
        idem: &Idempotency,
        now: i64,
    ) -> Result<Option<(String, ConnectionId)>, StoreError> {
        let (org, scoped) = (org.to_owned(), idem.scoped_key());
        self.with(move |db| {
            let row: Option<(String, String)> = db
                .query_row(
                    "SELECT request_hash, connection_id FROM idempotency_keys WHERE org = ?1 AND scoped_key = ?2 AND expires_at > ?3",
                    params![org, scoped, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|(h, id)| Ok((h, id.parse().map_err(|_| StoreError::Corrupt(id))?)))
                .transpose()
        })
        .await
    }

    async fn append_event(&self, event: &Event) -> Result<(), StoreError> {
        let e = event.clone();
        self.with(move |db| {
            let tx = db.transaction().map_err(unavailable)?;
            insert_event(&tx, &e)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn get(&self, org: &str, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let (org, id) = (org.to_owned(), id.clone());
        self.with(move |db| {
            let data: Option<String> = db
                .query_row(
                    "SELECT data FROM connections WHERE id = ?1 AND org = ?2",
                    params![id.as_str(), org],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            data.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list(
        &self,
        org: &str,
        account: Option<&SpotAccountId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let org = org.to_owned();
        let prefix = account_prefix(account);
        let after = list_start(account, after)?.unwrap_or_default();
        let limit = limit.clamp(1, super::MAX_PAGE);
        self.with(move |db| {
            let mut stmt = db
                .prepare(
                    "SELECT data, sort_key FROM connections WHERE org = ?1 AND sort_key > ?2 AND substr(sort_key, 1, length(?3)) = ?3
                     ORDER BY sort_key LIMIT ?4",
                )
                .map_err(unavailable)?;
            page_of::<_, String>(&mut stmt, params![org, after, prefix, limit as i64 + 1], limit)
        })
        .await
    }

    async fn events(&self, id: &ConnectionId, after: Option<&str>, limit: usize) -> Result<Page<Event>, StoreError> {
        let id = id.clone();
        // Positions are event sequence numbers.
        let after: i64 = match after {
            None => 0,
            Some(a) => a.parse().ok().filter(|n| *n > 0).ok_or(StoreError::OutsideQuery)?,
        };
        let limit = limit.clamp(1, super::MAX_PAGE);
        self.with(move |db| {
            let mut stmt = db
                .prepare("SELECT data, seq FROM events WHERE connection_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
                .map_err(unavailable)?;
            page_of::<_, i64>(&mut stmt, params![id.as_str(), after, limit as i64 + 1], limit)
        })
        .await
    }

    async fn get_any(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let id = id.clone();
        self.with(move |db| data_by_id(db, "connections", id.as_str())).await
    }

    async fn list_connected(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let after = cursor.map(str::to_owned).unwrap_or_default();
        let limit = limit.clamp(1, 1000);
        self.with(move |db| {
            let mut stmt = db
                .prepare("SELECT data, id FROM connections WHERE state = 'connected' AND id > ?1 ORDER BY id LIMIT ?2")
                .map_err(unavailable)?;
            page_of::<_, String>(&mut stmt, params![after, limit as i64 + 1], limit)
        })
        .await
    }

    async fn account_holder(
        &self,
        org: &str,
        account: &SpotAccountId,
        now: i64,
    ) -> Result<Option<ConnectionId>, StoreError> {
        let (org, account) = (org.to_owned(), account.clone());
        self.with(move |db| {
            let id: Option<String> = db
                .query_row(
                    "SELECT connection_id FROM account_holds WHERE org = ?1 AND account = ?2 AND until > ?3",
                    params![org, account.as_str(), now],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            id.map(|s| s.parse().map_err(|_| StoreError::Corrupt(s))).transpose()
        })
        .await
    }

    async fn remember_once(&self, key: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.with(move |db| {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            tx.execute("DELETE FROM once_keys WHERE until <= ?1", params![now])
                .map_err(unavailable)?;
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO once_keys (key, until) VALUES (?1, ?2)",
                    params![key, until],
                )
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn forget(&self, key: &str, until: i64) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.with(move |db| {
            db.execute(
                "DELETE FROM once_keys WHERE key = ?1 AND until = ?2",
                params![key, until],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn is_remembered(&self, key: &str, now: i64) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.with(move |db| {
            db.query_row(
                "SELECT 1 FROM once_keys WHERE key = ?1 AND until > ?2",
                params![key, now],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(unavailable)
        })
        .await
    }

    async fn take_lease(&self, key: &str, holder: &str, until: i64, now: i64) -> Result<bool, StoreError> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        self.with(move |db| {
            let n = db
                .execute(
                    "INSERT INTO leases (key, holder, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE leases.until <= ?4 OR leases.holder = excluded.holder",
                    params![key, holder, until, now],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        self.with(move |db| {
            db.execute(
                "DELETE FROM leases WHERE key = ?1 AND holder = ?2",
                params![key, holder],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn undelivered(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        let limit = limit.clamp(1, super::MAX_PAGE) as i64;
        self.with(move |db| {
            let mut stmt = db
                .prepare(
                    "SELECT data FROM outbox WHERE delivered_at IS NULL ORDER BY at, connection_id, sequence LIMIT ?1",
                )
                .map_err(unavailable)?;
            let rows: Vec<String> = stmt
                .query_map(params![limit], |r| r.get(0))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            rows.iter().map(|d| from_json(d)).collect()
        })
        .await
    }

    async fn mark_delivered(&self, id: &ConnectionId, sequence: u64, now: i64) -> Result<(), StoreError> {
        let id = id.clone();
        self.with(move |db| {
            db.execute(
                "UPDATE outbox SET delivered_at = ?1 WHERE connection_id = ?2 AND sequence = ?3 AND delivered_at IS NULL",
                params![now, id.as_str(), sequence as i64],
            )
            .map_err(unavailable)?;
            db.execute(
                "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?1",
                params![now - DELIVERED_RETENTION_SECS],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn is_delivered(&self, id: &ConnectionId, sequence: u64) -> Result<bool, StoreError> {
        let id = id.clone();
        self.with(move |db| {
            let row: Option<Option<i64>> = db
                .query_row(
                    "SELECT delivered_at FROM outbox WHERE connection_id = ?1 AND sequence = ?2",
                    params![id.as_str(), sequence as i64],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(row.is_none_or(|at| at.is_some()))
        })
        .await
    }
}
