//! What the connection routes do, independent of HTTP: the service, its
//! read-change-write loop and the audit events. The operations are in
//! `create`, `connect`, `lifecycle` and `listing`; the errors in `error`.

use super::cursor::Cursors;
use super::organization::OrganizationTemplates;
use super::ServiceError;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{
    Connection, ConnectionId, Event, EventKind, Health, MemberChange, Organization, OrganizationChange, OutboxItem,
    Partition, SpotAccountId, Status,
};
use crate::store::{DynStore, Guard, StoreError};
use crate::tenancy::Tenant;
use crate::verify::Verifier;
use std::sync::Arc;

/// Attempts for a write that lost a race (version or transaction conflict).
pub(super) const WRITE_ATTEMPTS: u32 = 5;
/// Longest text taken from a client or a customer's account into an event.
pub(super) const MAX_EVENT_TEXT: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub account_id: Option<SpotAccountId>,
    pub status: Option<Status>,
    pub health: Option<Health>,
    /// Connections last checked (conclusively) before this unix time.
    pub checked_before: Option<i64>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

/// What the services are built from, once, by the composition root; each
/// service keeps the parts it needs, privately.
#[derive(Clone)]
pub struct Deps {
    pub store: DynStore,
    pub config: Arc<Config>,
    pub verifier: Arc<Verifier>,
    pub templates: Arc<crate::automatic::Templates>,
    /// Seals the cursors of lists and audit trails.
    pub cursors: Arc<Cursors>,
    /// Decides expiry and stamps every record.
    pub clock: Clock,
    /// The AWS SDK's configuration, loaded once per partition (by `app`).
    pub aws: crate::sdk::AwsConfigs,
}

#[derive(Clone)]
pub struct ConnectionService {
    pub(super) store: DynStore,
    pub(super) config: Arc<Config>,
    pub(super) verifier: Arc<Verifier>,
    pub(super) templates: Arc<crate::automatic::Templates>,
    pub(super) cursors: Arc<Cursors>,
    pub(super) clock: Clock,
    /// Renders an organization's templates for its connections' drift
    /// fixes; without it they get the documents to paste.
    pub(super) organization_templates: Option<Arc<dyn OrganizationTemplates>>,
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(super) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl ConnectionService {
    pub fn new(deps: &Deps) -> Self {
        ConnectionService {
            store: deps.store.clone(),
            config: deps.config.clone(),
            verifier: deps.verifier.clone(),
            templates: deps.templates.clone(),
            cursors: deps.cursors.clone(),
            clock: deps.clock.clone(),
            organization_templates: None,
        }
    }

    /// One of this minute's slots of the tenant's `limit`
    /// (`Config::rate_limits`), or `RateLimited`: nothing else is done.
    pub async fn take_rate(&self, tenant: &Tenant, limit: crate::limits::Limit) -> Result<(), ServiceError> {
        use crate::limits::Limit;
        let limits = &self.config.rate_limits;
        let per_minute = match limit {
            Limit::Verifications => limits.verifications_per_minute,
            Limit::Rechecks => limits.rechecks_per_minute,
            Limit::Syncs => limits.syncs_per_minute,
            Limit::WebhookTests => crate::limits::WEBHOOK_TESTS_PER_MINUTE,
        };
        crate::limits::RateLimiter::new(self.store.clone())
            .take(limit, &tenant.org, per_minute, self.now())
            .await??;
        Ok(())
    }

    /// Takes (or, for its holder, renews) the lease `key` for `secs` from
    /// now: false while another holder has it. For an entry point that
    /// must act once across instances (the callback's requests).
    pub async fn lease(&self, key: &str, holder: &str, secs: i64) -> Result<bool, StoreError> {
        let now = self.now();
        self.store.take_lease(key, holder, now + secs, now).await
    }

    /// Lets go of a lease `holder` took with `lease`.
    pub async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.store.release_lease(key, holder).await
    }

    /// The settings it was built with, to read (a worker's timeout, say).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One page of the connected connections of every tenant, for the
    /// scheduled re-check's enumeration.
    pub async fn connected_page(&self, cursor: Option<&str>, limit: usize) -> Result<crate::store::Page, StoreError> {
        self.store.list_connected(cursor, limit).await
    }

    /// Up to `limit` undelivered outbox items, oldest first, for the dispatcher.
    /// Signalled after a write that stored an outbox item, where the store
    /// can tell (see `Store::outbox_written`).
    pub fn outbox_written(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.store.outbox_written()
    }

    pub async fn outbox_page(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.store.undelivered(limit).await
    }

    /// Marks an outbox item delivered (after the bus took it).
    pub async fn outbox_delivered(&self, item: &OutboxItem, now: i64) -> Result<(), StoreError> {
        self.store.mark_delivered(&item.connection_id, item.sequence, now).await
    }

    /// Whether the stored outbox item is marked delivered (or purged, which
    /// only a delivered one is).
    pub async fn outbox_is_delivered(&self, item: &OutboxItem) -> Result<bool, StoreError> {
        self.store.is_delivered(&item.connection_id, item.sequence).await
    }

    /// The clock every record is stamped with (tests move an adjustable one).
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The same service with the organizations' template renderer.
    pub fn with_organization_templates(self, templates: Arc<dyn OrganizationTemplates>) -> Self {
        ConnectionService {
            organization_templates: Some(templates),
            ..self
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn principal(&self, partition: Partition) -> Result<&str, ServiceError> {
        self.config
            .principals
            .get(&partition)
            .map(String::as_str)
            .ok_or(ServiceError::PartitionNotConfigured(partition))
    }

    /// Refuses an AWS account of the vendor's own (`Config::is_vendor_account`).
    pub fn customer_account(&self, partition: Partition, account: &str) -> Result<(), ServiceError> {
        match self.config.is_vendor_account(partition, account) {
            true => Err(ServiceError::VendorAccount(account.to_owned())),
            false => Ok(()),
        }
    }

    /// The tenant's connection, or NotFound: another org's reads as unknown.
    pub async fn get(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        match self.store.get(&tenant.org, id).await? {
            Some(c) if tenant.may_access(&c.account_id) => Ok(c),
            _ => Err(ServiceError::NotFound),
        }
    }

    /// A connection by id alone, of any tenant, for a caller that proves its
    /// right to it another way (the CloudFormation callback's token).
    pub async fn get_for_token(&self, id: &ConnectionId) -> Result<Option<Connection>, ServiceError> {
        Ok(self.store.get_any(id).await?)
    }

    /// Reads, changes and writes back under the version check, retrying a lost race.
    pub async fn change<F>(&self, tenant: &Tenant, id: &ConnectionId, f: F) -> Result<Connection, ServiceError>
    where
        F: FnMut(&mut Connection, i64) -> Result<Option<(Event, Vec<Guard>)>, ServiceError>,
    {
        self.change_from(tenant, id, None, f).await
    }

    /// `change` starting from a connection the caller has just read, saving a
    /// round trip; a lost race re-reads.
    pub(super) async fn change_from<F>(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        read: Option<Connection>,
        f: F,
    ) -> Result<Connection, ServiceError>
    where
        F: FnMut(&mut Connection, i64) -> Result<Option<(Event, Vec<Guard>)>, ServiceError>,
    {
        self.write_change(tenant, id, read, MemberView::Stored, f).await
    }

    /// The read-change-write loop. Every attempt decides the change, its
    /// event and the member's state change from the connection it read
    /// (after a lost race, the one read again), never from an earlier read.
    async fn write_change<F>(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        mut read: Option<Connection>,
        view: MemberView<'_>,
        mut f: F,
    ) -> Result<Connection, ServiceError>
    where
        F: FnMut(&mut Connection, i64) -> Result<Option<(Event, Vec<Guard>)>, ServiceError>,
    {
        for attempt in 0..WRITE_ATTEMPTS {
            let mut c = match read.take() {
                Some(c) => c,
                None => self.get(tenant, id).await?,
            };
            let t = self.now();
            let before = c.clone();
            let Some((ev, mut guards)) = f(&mut c, t)? else {
                return Ok(c); // Nothing to change.
            };
            c.version += 1;
            c.updated_at = t;
            // A change of state is an event, written with the change (the
            // outbox); so is the member state it changes, for a member.
            let member = match view {
                MemberView::Stored => self.member_change(&before, &c, t).await?,
                MemberView::Reconciled { prior, next } => MemberChange::between(prior, &before, next, &c, t),
            };
            // And the organization's state, for its management connection.
            let organization = self.organization_change(&before, &c).await?;
            if let Some(item) = OutboxItem::of_change(&before, &c, member, organization, t) {
                guards.push(Guard::Publish(Box::new(item)));
            }
            match self.store.update(&c, &ev, &guards, t).await {
                Ok(()) => return Ok(c),
                Err(StoreError::Conflict | StoreError::ExternalIdTaken) => backoff(attempt).await,
                Err(StoreError::AccountHeld(other)) => return Err(ServiceError::AccountBusy(other)),
                Err(StoreError::RoleHeld) => return Err(ServiceError::RoleHeld),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::TooManyConcurrentWrites)
    }
}

/// Which organization a member's state is read against.
#[derive(Clone, Copy)]
enum MemberView<'a> {
    /// The stored organization: a change of the member connection.
    Stored,
    /// A reconciliation's: the organization before it and as it records it.
    Reconciled {
        prior: &'a Organization,
        next: &'a Organization,
    },
}

impl ConnectionService {
    /// How a change of an organization member's connection changes its
    /// member state (as the organization's reconciliation sees it).
    async fn member_change(
        &self,
        before: &Connection,
        after: &Connection,
        t: i64,
    ) -> Result<Option<MemberChange>, ServiceError> {
        let Some(m) = after.organization.as_ref().filter(|m| !m.management) else {
            return Ok(None);
        };
        let Some(o) = self.store.get_organization(&m.organization_id).await? else {
            return Ok(None);
        };
        Ok(MemberChange::between(&o, before, &o, after, t))
    }

    /// How a change of an organization's management connection changes the
    /// organization's state (its management stack deleted, or back).
    async fn organization_change(
        &self,
        before: &Connection,
        after: &Connection,
    ) -> Result<Option<OrganizationChange>, ServiceError> {
        let Some(m) = after.organization.as_ref().filter(|m| m.management) else {
            return Ok(None);
        };
        let Some(o) = self.store.get_organization(&m.organization_id).await? else {
            return Ok(None);
        };
        Ok(OrganizationChange::between(&o, before, after))
    }

    /// Records what a reconciliation changes about a member (its account
    /// moved, left, was suspended or came back): an audit event and the
    /// outbox item, on the member connection. `c` is the connection as the
    /// reconciliation read it; the change is decided again from the stored
    /// connection if another write got there first (none, if it no longer
    /// changes the member's state). Answers the connection as it is now.
    pub async fn announce_member(
        &self,
        c: &Connection,
        prior: &Organization,
        next: &Organization,
    ) -> Result<Connection, ServiceError> {
        let reconciliation = Tenant {
            org: c.org.clone(),
            sub: "reconciliation".into(),
            accounts: None,
        };
        let view = MemberView::Reconciled { prior, next };
        self.write_change(&reconciliation, &c.id, Some(c.clone()), view, |c, t| {
            let Some(change) = MemberChange::between(prior, c, next, c, t) else {
                return Ok(None);
            };
            let outcome = format!(
                "member state {} -> {}",
                change.previous_state.as_str(),
                change.state.as_str()
            );
            let detail = change.reason.as_ref().map(|r| serde_json::json!({ "reason": r }));
            let ev = Event::new(t, c, EventKind::Reconciled, "reconciliation", &outcome, detail);
            Ok(Some((ev, Vec::new())))
        })
        .await
    }
}

pub(super) async fn backoff(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(10 * (1 << attempt.min(5)) as u64)).await;
}
