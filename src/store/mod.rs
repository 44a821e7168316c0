//! Persistence: one trait, a DynamoDB implementation for AWS and an SQLite
//! one for local runs, both held to one conformance suite.

mod dynamo;
mod open;
mod organizations;
mod sealing;
mod sqlite;
mod webhooks;

pub use dynamo::{create_table, CreateTableError, DynamoStore};
pub use open::{open, open_with, OpenError};
pub use organizations::OrganizationStore;
pub use sealing::{SecretsKey, DATA_KEY_REUSE};
pub use sqlite::SqliteStore;
pub use webhooks::{WebhookStore, DELIVERY_RETENTION_SECS, MAX_DELIVERIES_PER_WEBHOOK, MAX_WEBHOOKS};

use crate::domain::{Connection, ConnectionId, Event, ExternalId, OutboxItem, RoleArn, SpotAccountId};
use std::sync::Arc;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;
/// Largest page `list` and `events` return.
pub const MAX_PAGE: usize = 100;

/// What a store answers besides success. The service decides what a client
/// is told (most of these are races it retries or refusals it words itself);
/// the messages are for logs and operators.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused for load; try again later.
    #[error("the store cannot be reached: {0}")]
    Unavailable(String),
    /// The connection changed since it was read (version mismatch).
    #[error("the connection changed since it was read")]
    Conflict,
    /// The external ID was issued before, to someone: never reissue it.
    #[error("the external ID was issued before")]
    ExternalIdTaken,
    /// Another live connection holds this Spot account.
    #[error("the Spot account is held by the connection {}", .0.as_str())]
    AccountHeld(ConnectionId),
    /// Another connection, of any tenant, is connected to this role.
    #[error("another connection is connected to this role")]
    RoleHeld,
    /// The idempotency key was used before, for the request with this hash.
    #[error("the idempotency key was used before, for the connection {}", connection_id.as_str())]
    IdempotencyKeyUsed {
        request_hash: String,
        connection_id: ConnectionId,
    },
    /// A stored record does not parse: a bug, not the client's fault.
    #[error("a stored record does not parse: {0}")]
    Corrupt(String),
    /// A list position that is not within the query asked (the service
    /// refuses such cursors before any store call; this is the backstop).
    #[error("the list position is outside the query")]
    OutsideQuery,
}

/// A key, whose it is, and the hash of the request that first used it.
/// Keys are scoped by organization and user: another user's key is another key.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The user (the token's `sub`) who sent the key.
    pub user: String,
    pub key: String,
    pub request_hash: String,
}

impl Idempotency {
    /// The user and key as one fixed-shape string: the user is hashed, so a
    /// `#` in a user or key cannot make two scopes collide.
    pub(crate) fn scoped_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let user = hex::encode(&Sha256::digest(self.user.as_bytes())[..16]);
        format!("{user}#{}", self.key)
    }
}

/// Side conditions and side writes in the same transaction as a change.
#[derive(Debug, Clone)]
pub enum Guard {
    /// The change's outbox item: committed with the change or not at all,
    /// then delivered at least once (`undelivered`, `mark_delivered`).
    Publish(Box<OutboxItem>),
    /// The ID is new to every tenant; kept forever, so it is never reissued.
    ClaimExternalId(ExternalId),
    /// This connection holds its Spot account until `until` (unix seconds).
    /// A connection without one (an unassigned organization member) holds
    /// nothing: both stores write no hold for it, whoever asks.
    HoldAccount { until: i64 },
    /// This connection lets go of its Spot account.
    ReleaseAccount,
    /// This connection is the only one connected to the role.
    ClaimRole(RoleArn),
    /// This connection lets go of the role.
    ReleaseRole(RoleArn),
}

/// One page of items and the store position after its last one (a sort key,
/// an event key or a connection id: the caller seals it before a client sees it).
#[derive(Debug, Clone)]
pub struct Page<T = Connection> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[async_trait::async_trait]
pub trait Store: OrganizationStore + WebhookStore + Send + Sync {
    /// Writes a new connection, its external-ID claim, its hold on the Spot
    /// account, the idempotency record and the `created` event, all or nothing.
    async fn create(
        &self,
        conn: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Replaces the connection if its stored version is `conn.version - 1`,
    /// with the event and guards, all or nothing.
    async fn update(&self, conn: &Connection, event: &Event, guards: &[Guard], now: i64) -> Result<(), StoreError>;

    /// Signalled after a commit that stored an outbox item, where the store
    /// runs in this process (SQLite): the local dispatcher wakes on it. None
    /// where a stream carries the outbox (DynamoDB, in AWS).
    fn outbox_written(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// The unexpired idempotency record of this user's key: the request hash
    /// and the connection it created. Lets a caller answer a replay before
    /// it writes anything outside the store (a template object).
    async fn idempotency_record(
        &self,
        org: &str,
        idem: &Idempotency,
        now: i64,
    ) -> Result<Option<(String, ConnectionId)>, StoreError>;

    /// Appends an event without changing the connection (a failed attempt).
    async fn append_event(&self, event: &Event) -> Result<(), StoreError>;

    /// The connection if it exists and belongs to `org`.
    async fn get(&self, org: &str, id: &ConnectionId) -> Result<Option<Connection>, StoreError>;

    /// The tenant's connections, by Spot account then creation time, after
    /// `after`: a `next` this store gave for the same query, or the query's
    /// `account_prefix` itself. A position outside the query is refused as
    /// `OutsideQuery`, never sent to the database.
    async fn list(
        &self,
        org: &str,
        account: Option<&SpotAccountId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// One page of the audit trail, oldest first, after `after` (a `next`
    /// this store gave for the same connection).
    async fn events(&self, id: &ConnectionId, after: Option<&str>, limit: usize) -> Result<Page<Event>, StoreError>;

    /// A connection by id alone, for callers that proved their right to it
    /// another way (the CloudFormation callback's token).
    async fn get_any(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError>;

    /// Connected connections of every tenant, for the scheduled re-check.
    async fn list_connected(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError>;

    /// The connection that holds the Spot account now, if any.
    async fn account_holder(
        &self,
        org: &str,
        account: &SpotAccountId,
        now: i64,
    ) -> Result<Option<ConnectionId>, StoreError>;

    /// Remembers `key` until `until` (unix seconds, exclusive): true the
    /// first time, false while a remembered `key` has not expired at `now`.
    /// Atomic across every process on the store, so a request acted on once
    /// (a signed relay request) is not acted on again by another instance.
    async fn remember_once(&self, key: &str, until: i64, now: i64) -> Result<bool, StoreError>;

    /// Forgets `key` if it is still remembered until `until` (the lease its
    /// `remember_once` took, not a later one's); no error when it is gone.
    async fn forget(&self, key: &str, until: i64) -> Result<(), StoreError>;

    /// Whether `key` is remembered (by `remember_once`) and not expired at
    /// `now`, read consistently. Lets the rate limiter find the first free
    /// slot of a window by reads before it writes.
    async fn is_remembered(&self, key: &str, now: i64) -> Result<bool, StoreError>;

    /// Takes the lease `key` for `holder` until `until` (unix seconds,
    /// exclusive): true if it was free (never taken, released, or expired
    /// at `now`) or already `holder`'s; false while another holder has it.
    /// Atomic across every process on the store.
    async fn take_lease(&self, key: &str, holder: &str, until: i64, now: i64) -> Result<bool, StoreError>;

    /// Lets go of the lease `key` if `holder` still has it (one that expired
    /// and was taken by another is left to that one). No error otherwise.
    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), StoreError>;

    /// Up to `limit` outbox items not yet marked delivered, of every tenant,
    /// oldest first (by time, then connection and sequence).
    async fn undelivered(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;

    /// Marks an outbox item delivered, so `undelivered` no longer answers it.
    /// Marking one twice, or one that does not exist, is no error.
    async fn mark_delivered(&self, id: &ConnectionId, sequence: u64, now: i64) -> Result<(), StoreError>;

    /// Whether the outbox item is marked delivered, read consistently; true
    /// also when it is gone (delivered items are purged after a week; an
    /// item is never removed otherwise), so a replayed stream batch or a
    /// stale index page sends nothing twice.
    async fn is_delivered(&self, id: &ConnectionId, sequence: u64) -> Result<bool, StoreError>;
}

pub type DynStore = Arc<dyn Store>;

/// Sort key within a tenant: Spot account, creation time, id.
/// A member without a Spot account sorts outside every account's range, so
/// account listings and holds never see it (`GET /v1/connections?organizationId=` does).
pub(crate) fn tenant_sort_key(c: &Connection) -> String {
    if c.spot_account().is_none() {
        let aws = c.aws_account_id.as_ref().map(|a| a.as_str()).unwrap_or_default();
        return format!("MEMBER#{}#{aws}#{}", c.account_id.as_str(), c.id.as_str());
    }
    format!("ACCT#{}#{:012}#{}", c.account_id.as_str(), c.created_at, c.id.as_str())
}

/// Sort-key prefix of one Spot account's connections, or of all of them.
pub(crate) fn account_prefix(account: Option<&SpotAccountId>) -> String {
    match account {
        Some(a) => format!("ACCT#{}#", a.as_str()),
        None => "ACCT#".to_owned(),
    }
}

/// Where a list resumes: `None` from the start, `Some(key)` after that sort
/// key. Only the query's own prefix or a well-formed key under it passes.
pub(crate) fn list_start(account: Option<&SpotAccountId>, after: Option<&str>) -> Result<Option<String>, StoreError> {
    let prefix = account_prefix(account);
    match after {
        None => Ok(None),
        Some(a) if a == prefix => Ok(None),
        Some(a) => {
            let rest = a.strip_prefix(&prefix).ok_or(StoreError::OutsideQuery)?;
            let id = rest.rsplit('#').next().unwrap_or_default();
            if !a.starts_with("ACCT#") || id.parse::<ConnectionId>().is_err() || rest.len() <= id.len() {
                return Err(StoreError::OutsideQuery);
            }
            Ok(Some(a.to_owned()))
        }
    }
}
