//! What the connection routes do, independent of HTTP.

use super::model::{Connection, ConnectionId, Event, EventKind, Method, Status};
use crate::auth::Tenant;
use crate::config::Config;
use crate::domain::{AccountId, ExternalId, Partition, SpotAccountId};
use crate::policy::{render, Permissions, RenderError, Selection, SelectionError};
use crate::store::{DynStore, Guard, Idempotency, Page, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Attempts for a write that lost a race (version or transaction conflict).
const WRITE_ATTEMPTS: u32 = 5;

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[derive(Debug)]
pub enum ServiceError {
    NotFound,
    AccountNotAllowed(SpotAccountId),
    PartitionNotConfigured(Partition),
    Selection(SelectionError),
    Render(RenderError),
    /// The Spot account already has a live connection.
    AccountBusy(ConnectionId),
    IdempotencyMismatch,
    /// The connection's status does not allow this.
    WrongStatus {
        status: Status,
        action: &'static str,
    },
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    pub account_id: SpotAccountId,
    pub partition: Partition,
    pub permissions: Permissions,
    pub aws_account_id: Option<AccountId>,
    pub method: Method,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub account_id: Option<SpotAccountId>,
    pub status: Option<Status>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Clone)]
pub struct ConnectionService {
    pub store: DynStore,
    pub config: Arc<Config>,
}

fn event(c: &Connection, kind: EventKind, actor: &str, outcome: &str, detail: Option<serde_json::Value>) -> Event {
    Event {
        connection_id: c.id.clone(),
        kind,
        at: now(),
        actor: actor.to_owned(),
        outcome: outcome.to_owned(),
        detail,
    }
}

impl ConnectionService {
    pub fn new(store: DynStore, config: Arc<Config>) -> Self {
        ConnectionService { store, config }
    }

    pub fn principal(&self, partition: Partition) -> Result<&str, ServiceError> {
        self.config
            .principals
            .get(&partition)
            .map(String::as_str)
            .ok_or(ServiceError::PartitionNotConfigured(partition))
    }

    /// Issues a new external ID for a Spot account. With an idempotency key,
    /// a retry of the same request answers the same connection.
    pub async fn create(
        &self,
        tenant: &Tenant,
        req: CreateRequest,
        idempotency_key: Option<String>,
    ) -> Result<(Connection, bool), ServiceError> {
        if !tenant.may_access(&req.account_id) {
            return Err(ServiceError::AccountNotAllowed(req.account_id));
        }
        self.principal(req.partition)?;
        let selection = Selection::resolve(req.partition, &req.permissions).map_err(ServiceError::Selection)?;
        render(&selection).map_err(ServiceError::Render)?;
        let request_hash = hex(&Sha256::digest(serde_json::to_vec(&req).expect("requests serialize")));
        let idem = idempotency_key.map(|key| Idempotency {
            key,
            request_hash: request_hash.clone(),
        });

        for attempt in 0..WRITE_ATTEMPTS {
            let at = now();
            let conn = Connection {
                id: ConnectionId::generate(),
                org: tenant.org.clone(),
                account_id: req.account_id.clone(),
                partition: req.partition,
                method: req.method,
                permissions: selection.permissions(),
                aws_account_id: req.aws_account_id.clone(),
                external_id: ExternalId::generate(&self.config.external_id_prefix),
                pending_external_id: None,
                state: Status::Pending,
                health: None,
                role_arn: None,
                report: None,
                created_at: at,
                created_by: tenant.sub.clone(),
                updated_at: at,
                expires_at: at + self.config.external_id_ttl_secs as i64,
                verified_at: None,
                version: 1,
            };
            let ev = event(
                &conn,
                EventKind::Created,
                &tenant.sub,
                "ok",
                Some(serde_json::json!({"method": req.method})),
            );
            match self.store.create(&conn, &ev, idem.as_ref(), at).await {
                Ok(()) => return Ok((conn, true)),
                Err(StoreError::IdempotencyKeyUsed {
                    request_hash: h,
                    connection_id,
                }) => {
                    if h != request_hash {
                        return Err(ServiceError::IdempotencyMismatch);
                    }
                    let existing = self.store.get(&tenant.org, &connection_id).await?;
                    return existing.map(|c| (c, false)).ok_or(ServiceError::NotFound);
                }
                Err(StoreError::AccountHeld(id)) => return Err(ServiceError::AccountBusy(id)),
                // A fresh ID collides only by a miracle; a conflict is a race: try again.
                Err(StoreError::ExternalIdTaken | StoreError::Conflict) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Store(StoreError::Unavailable(
            "too many concurrent writes; try again".into(),
        )))
    }

    /// The tenant's connection, or NotFound: another org's reads as unknown.
    pub async fn get(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        match self.store.get(&tenant.org, id).await? {
            Some(c) if tenant.may_access(&c.account_id) => Ok(c),
            _ => Err(ServiceError::NotFound),
        }
    }

    pub async fn list(&self, tenant: &Tenant, q: &ListQuery) -> Result<Page, ServiceError> {
        if let Some(a) = &q.account_id {
            if !tenant.may_access(a) {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                });
            }
        }
        let limit = q.limit.unwrap_or(50);
        let mut page = self
            .store
            .list(&tenant.org, q.account_id.as_ref(), q.cursor.as_deref(), limit)
            .await?;
        let t = now();
        page.items
            .retain(|c| tenant.may_access(&c.account_id) && q.status.is_none_or(|s| c.status(t) == s));
        Ok(page)
    }

    pub async fn events(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Vec<Event>, ServiceError> {
        self.get(tenant, id).await?;
        Ok(self.store.events(id).await?)
    }

    /// Reads, changes and writes back under the version check, retrying a lost race.
    pub async fn change<F>(&self, tenant: &Tenant, id: &ConnectionId, mut f: F) -> Result<Connection, ServiceError>
    where
        F: FnMut(&mut Connection, i64) -> Result<Option<(Event, Vec<Guard>)>, ServiceError>,
    {
        for attempt in 0..WRITE_ATTEMPTS {
            let mut c = self.get(tenant, id).await?;
            let t = now();
            let Some((ev, guards)) = f(&mut c, t)? else {
                return Ok(c); // Nothing to change.
            };
            c.version += 1;
            c.updated_at = t;
            match self.store.update(&c, &ev, &guards, t).await {
                Ok(()) => return Ok(c),
                Err(StoreError::Conflict | StoreError::ExternalIdTaken) => backoff(attempt).await,
                Err(StoreError::AccountHeld(other)) => return Err(ServiceError::AccountBusy(other)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Store(StoreError::Unavailable(
            "too many concurrent changes; try again".into(),
        )))
    }

    /// A new external ID beside the current one; the current one keeps
    /// working until a role is verified with the new one.
    pub async fn rotate(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        let prefix = self.config.external_id_prefix.clone();
        let ttl = self.config.external_id_ttl_secs as i64;
        let actor = tenant.sub.clone();
        self.change(tenant, id, move |c, t| {
            let status = c.status(t);
            if !matches!(status, Status::Pending | Status::Connected) {
                return Err(ServiceError::WrongStatus {
                    status,
                    action: "rotate the external ID of",
                });
            }
            let new = ExternalId::generate(&prefix);
            c.pending_external_id = Some(new.clone());
            let mut guards = vec![Guard::ClaimExternalId(new)];
            if status == Status::Pending {
                // A pending connection's new ID gets a full lifetime.
                c.expires_at = t + ttl;
                guards.push(Guard::HoldAccount { until: c.expires_at });
            }
            Ok(Some((event(c, EventKind::Rotated, &actor, "ok", None), guards)))
        })
        .await
    }

    /// Retires the connection and its external IDs (never reissued).
    pub async fn disconnect(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        let actor = tenant.sub.clone();
        self.change(tenant, id, move |c, _| {
            if c.state == Status::Disconnected {
                return Ok(None);
            }
            c.state = Status::Disconnected;
            c.health = None;
            Ok(Some((
                event(c, EventKind::Disconnected, &actor, "ok", None),
                vec![Guard::ReleaseAccount],
            )))
        })
        .await
    }

    /// The live connection of a Spot account, if any.
    pub async fn active_for_account(
        &self,
        tenant: &Tenant,
        account: &SpotAccountId,
    ) -> Result<Option<Connection>, ServiceError> {
        if !tenant.may_access(account) {
            return Err(ServiceError::AccountNotAllowed(account.clone()));
        }
        let Some(id) = self.store.account_holder(&tenant.org, account, now()).await? else {
            return Ok(None);
        };
        Ok(self.store.get(&tenant.org, &id).await?.filter(|c| c.is_active(now())))
    }

    /// Spot's externalId call: the live connection's ID, or a new default
    /// connection. Never silently a second ID for the same account.
    pub async fn external_id_for_account(
        &self,
        tenant: &Tenant,
        account: &SpotAccountId,
    ) -> Result<Connection, ServiceError> {
        for _ in 0..WRITE_ATTEMPTS {
            if let Some(c) = self.active_for_account(tenant, account).await? {
                return Ok(c);
            }
            let req = CreateRequest {
                account_id: account.clone(),
                partition: Partition::Aws,
                permissions: Permissions::Default,
                aws_account_id: None,
                method: Method::Manual,
            };
            match self.create(tenant, req, None).await {
                Ok((c, _)) => return Ok(c),
                // Someone else created it meanwhile: answer theirs.
                Err(ServiceError::AccountBusy(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ServiceError::Store(StoreError::Conflict))
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(10 * (1 << attempt.min(5)) as u64)).await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
