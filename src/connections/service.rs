//! What the connection routes do, independent of HTTP.

use super::cursor::{CursorError, Cursors};
use super::model::{ConnectedStack, Connection, ConnectionId, Event, EventKind, Health, Method, Status};
use crate::auth::Tenant;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{AccountId, ExternalId, Partition, RoleArn, SpotAccountId};
use crate::policy::{render_shared, Permissions, RenderError, Selection, SelectionError};
use crate::store::{DynStore, Guard, Idempotency, StoreError};
use crate::verify::{Outcome, Report, Verifier};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Attempts for a write that lost a race (version or transaction conflict).
const WRITE_ATTEMPTS: u32 = 5;
/// Largest `detail` one event stores (serialized); a bigger one is replaced
/// by a note of its size, so the audit trail cannot grow without bound.
pub const MAX_EVENT_DETAIL_BYTES: usize = 4096;
/// Longest text taken from a client or a customer's account into an event.
const MAX_EVENT_TEXT: usize = 512;

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
    /// A check failed; the connection is unchanged but for an audit event.
    VerificationFailed {
        report: Box<Report>,
        connection: Box<Connection>,
    },
    /// Another connection is connected to this role.
    RoleHeld,
    /// A rotation is already pending: put this ID in the trust policy and
    /// verify the role, or disconnect.
    RotationPending(ExternalId),
    /// The cursor is not one this service issued for this caller and query.
    InvalidCursor(CursorError),
    /// An automatic connection needs the AWS account it is for: the
    /// callback token is bound to it.
    AwsAccountRequired,
    /// The connection is connected by another CloudFormation stack.
    OtherStack(ConnectedStack),
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
    pub verifier: Arc<Verifier>,
    pub templates: Arc<crate::automatic::Templates>,
    /// Seals the cursors of lists and audit trails.
    pub cursors: Arc<Cursors>,
    /// Decides expiry and stamps every record.
    pub clock: Clock,
}

fn event(
    at: i64,
    c: &Connection,
    kind: EventKind,
    actor: &str,
    outcome: &str,
    detail: Option<serde_json::Value>,
) -> Event {
    let detail = detail.map(|d| {
        let size = serde_json::to_vec(&d).map(|v| v.len()).unwrap_or(usize::MAX);
        if size <= MAX_EVENT_DETAIL_BYTES {
            d
        } else {
            serde_json::json!({"truncated": true, "bytes": size})
        }
    });
    Event {
        connection_id: c.id.clone(),
        kind,
        at,
        actor: actor.to_owned(),
        outcome: outcome.to_owned(),
        detail,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> String {
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
    pub fn new(store: DynStore, config: Arc<Config>) -> Self {
        let cursors = match &config.cursor_key {
            Some(key) => Cursors::new(key),
            None => Cursors::random(),
        };
        ConnectionService {
            verifier: Arc::new(Verifier::from_config(&config)),
            store,
            config,
            templates: Default::default(),
            cursors: Arc::new(cursors),
            clock: Clock::system(),
        }
    }

    /// The same service on another clock (a test's adjustable one).
    pub fn with_clock(self, clock: Clock) -> Self {
        ConnectionService { clock, ..self }
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
        if req.method == Method::Automatic && req.aws_account_id.is_none() {
            return Err(ServiceError::AwsAccountRequired);
        }
        self.principal(req.partition)?;
        let selection = Selection::resolve(req.partition, &req.permissions).map_err(ServiceError::Selection)?;
        render_shared(&selection).map_err(ServiceError::Render)?;
        let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&req).expect("requests serialize")));
        let idem = idempotency_key.map(|key| Idempotency {
            user: tenant.sub.clone(),
            key,
            request_hash: request_hash.clone(),
        });

        for attempt in 0..WRITE_ATTEMPTS {
            let at = self.now();
            let mut conn = Connection {
                id: ConnectionId::generate(),
                org: tenant.org.clone(),
                account_id: req.account_id.clone(),
                partition: req.partition,
                method: req.method,
                permissions: selection.permissions(),
                aws_account_id: req.aws_account_id.clone(),
                external_id: ExternalId::generate(&self.config.external_id_prefix),
                pending_external_id: None,
                previous_external_ids: Vec::new(),
                state: Status::Pending,
                health: None,
                role_arn: None,
                report: None,
                cloud_formation: None,
                stack: None,
                organization: None,
                created_at: at,
                created_by: tenant.sub.clone(),
                updated_at: at,
                expires_at: at + self.config.external_id_ttl_secs as i64,
                verified_at: None,
                version: 1,
            };
            if conn.method == Method::Automatic {
                // Uploaded before the record is written: an orphan template
                // (expired by the bucket's lifecycle) is harmless, a record
                // without its template is not.
                let template = self.template_for(&conn)?;
                let links = self.templates.links(&self.config, &conn, &template, at).await;
                conn.cloud_formation = Some(links.map_err(|m| ServiceError::Store(StoreError::Unavailable(m)))?);
            }
            let ev = event(
                at,
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
                    return self.get(tenant, &connection_id).await.map(|c| (c, false));
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

    /// The connection's CloudFormation template, with the callback custom
    /// resource when a topic and key are configured for its partition.
    pub fn template_for(&self, c: &Connection) -> Result<serde_json::Value, ServiceError> {
        let principal = self.principal(c.partition)?;
        let topic = self.config.topics.get(&c.partition).map(String::as_str);
        let token = self
            .config
            .callback_key
            .as_deref()
            .and_then(|k| crate::automatic::token::issue_for(k, c));
        Ok(crate::automatic::render(c, principal, topic, token.as_deref()))
    }

    /// The tenant's connection, or NotFound: another org's reads as unknown.
    pub async fn get(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        match self.store.get(&tenant.org, id).await? {
            Some(c) if tenant.may_access(&c.account_id) => Ok(c),
            _ => Err(ServiceError::NotFound),
        }
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
    async fn change_from<F>(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        mut read: Option<Connection>,
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
            let Some((ev, guards)) = f(&mut c, t)? else {
                return Ok(c); // Nothing to change.
            };
            c.version += 1;
            c.updated_at = t;
            match self.store.update(&c, &ev, &guards, t).await {
                Ok(()) => return Ok(c),
                Err(StoreError::Conflict | StoreError::ExternalIdTaken) => backoff(attempt).await,
                Err(StoreError::AccountHeld(other)) => return Err(ServiceError::AccountBusy(other)),
                Err(StoreError::RoleHeld) => return Err(ServiceError::RoleHeld),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Store(StoreError::Unavailable(
            "too many concurrent changes; try again".into(),
        )))
    }

    /// Verifies the role and, when every check passes (permissions may be
    /// missing), connects it. A failed check changes nothing but the audit trail.
    pub async fn connect_role(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        role_arn: &str,
        budget: Duration,
    ) -> Result<(Connection, Report), ServiceError> {
        self.connect_role_from(tenant, id, role_arn, budget, None).await
    }

    /// `connect_role` for a CloudFormation stack's custom resource: records
    /// the stack, and refuses a stack other than the one that connected it.
    pub async fn connect_role_from(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        role_arn: &str,
        budget: Duration,
        stack: Option<ConnectedStack>,
    ) -> Result<(Connection, Report), ServiceError> {
        let c = self.get(tenant, id).await?;
        let status = c.status(self.now());
        if !matches!(status, Status::Pending | Status::Connected) {
            return Err(ServiceError::WrongStatus {
                status,
                action: "connect a role to",
            });
        }
        // Before the checks, which may wait minutes for IAM; again below, atomically.
        other_stack(&c, stack.as_ref())?;
        let principal = self.principal(c.partition)?.to_owned();
        let report = self.verifier.verify(&c, &principal, role_arn, budget).await;
        self.record_failure(tenant, &c, &report).await?;
        let role: RoleArn = role_arn.parse().expect("the report passed the ARN check");
        let actor = tenant.sub.clone();
        let report_json = serde_json::to_value(&report).expect("reports serialize");
        let updated = self
            .change_from(tenant, id, Some(c), |c, t| {
                let status = c.status(t);
                if !matches!(status, Status::Pending | Status::Connected) {
                    return Err(ServiceError::WrongStatus {
                        status,
                        action: "connect a role to",
                    });
                }
                other_stack(c, stack.as_ref())?;
                if stack.is_some() {
                    c.stack = stack.clone();
                }
                let mut guards = vec![Guard::HoldAccount { until: i64::MAX }, Guard::ClaimRole(role.clone())];
                if let Some(old) = c.role_arn.take().filter(|old| *old != role) {
                    guards.push(Guard::ReleaseRole(old));
                }
                let promoted = report.promote_pending
                    && c.pending_external_id.as_ref().map(|p| p.as_str()) == report.external_id_used.as_deref();
                if promoted {
                    let new = c.pending_external_id.take().expect("checked above");
                    c.previous_external_ids
                        .push(std::mem::replace(&mut c.external_id, new).as_str().to_owned());
                }
                c.state = Status::Connected;
                c.aws_account_id.get_or_insert_with(|| role.account().clone());
                c.role_arn = Some(role.clone());
                c.health = Some(health_of(report.outcome));
                c.report = Some(report_json.clone());
                c.verified_at = Some(t);
                let detail =
                    serde_json::json!({"roleArn": role.as_str(), "outcome": report.outcome, "promoted": promoted});
                Ok(Some((
                    event(t, c, EventKind::Verified, &actor, "ok", Some(detail)),
                    guards,
                )))
            })
            .await?;
        Ok((updated, report))
    }

    /// Re-runs the checks on a connected role and records its health.
    pub async fn recheck(&self, tenant: &Tenant, id: &ConnectionId) -> Result<(Connection, Report), ServiceError> {
        let c = self.get(tenant, id).await?;
        let (Status::Connected, Some(role)) = (c.status(self.now()), c.role_arn.clone()) else {
            return Err(ServiceError::WrongStatus {
                status: c.status(self.now()),
                action: "re-check",
            });
        };
        let principal = self.principal(c.partition)?.to_owned();
        // A connected role has long propagated: no waiting.
        let report = self
            .verifier
            .verify(&c, &principal, role.as_str(), Duration::ZERO)
            .await;
        let actor = tenant.sub.clone();
        let report_json = serde_json::to_value(&report).expect("reports serialize");
        let updated = self
            .change_from(tenant, id, Some(c), |c, t| {
                if c.state != Status::Connected {
                    return Ok(None); // Disconnected meanwhile: nothing to record.
                }
                let before = c.health;
                if report.inconclusive() {
                    // Throttled or unreachable: the role's health and last
                    // conclusive report stand; the attempt is on record.
                    let failed: Vec<serde_json::Value> = report
                        .failed_checks()
                        .map(|f| serde_json::json!({"id": f.id, "message": clip(&f.message, MAX_EVENT_TEXT)}))
                        .collect();
                    let detail = serde_json::json!({"health": c.health, "outcome": "inconclusive", "failed": failed});
                    return Ok(Some((
                        event(t, c, EventKind::Checked, &actor, "inconclusive", Some(detail)),
                        Vec::new(),
                    )));
                }
                c.health = Some(health_of(report.outcome));
                c.report = Some(report_json.clone());
                let detail = serde_json::json!({"health": c.health, "before": before, "outcome": report.outcome});
                Ok(Some((
                    event(
                        t,
                        c,
                        EventKind::Checked,
                        &actor,
                        outcome_word(report.outcome),
                        Some(detail),
                    ),
                    Vec::new(),
                )))
            })
            .await?;
        Ok((updated, report))
    }

    /// A failed verification: an audit event, and the error carrying the report.
    async fn record_failure(&self, tenant: &Tenant, c: &Connection, report: &Report) -> Result<(), ServiceError> {
        if report.outcome != Outcome::Failed {
            return Ok(());
        }
        // What failed, not the whole report (the connection keeps the last
        // one): a client may send failing roles without end.
        let failed: Vec<serde_json::Value> = report
            .failed_checks()
            .map(|c| serde_json::json!({"id": c.id, "message": clip(&c.message, MAX_EVENT_TEXT)}))
            .collect();
        let detail = serde_json::json!({"roleArn": clip(&report.role_arn, MAX_EVENT_TEXT), "failed": failed});
        self.store
            .append_event(&event(
                self.now(),
                c,
                EventKind::Failed,
                &tenant.sub,
                "failed",
                Some(detail),
            ))
            .await?;
        Err(ServiceError::VerificationFailed {
            report: Box::new(report.clone()),
            connection: Box::new(c.clone()),
        })
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
            // A second rotation would drop the first pending ID, which the
            // customer may have put in the trust policy already: refuse it,
            // naming the pending one (so a retried request learns it too).
            if let Some(pending) = &c.pending_external_id {
                return Err(ServiceError::RotationPending(pending.clone()));
            }
            let new = ExternalId::generate(&prefix);
            c.pending_external_id = Some(new.clone());
            let mut guards = vec![Guard::ClaimExternalId(new)];
            if status == Status::Pending {
                // A pending connection's new ID gets a full lifetime.
                c.expires_at = t + ttl;
                guards.push(Guard::HoldAccount { until: c.expires_at });
            }
            Ok(Some((event(t, c, EventKind::Rotated, &actor, "ok", None), guards)))
        })
        .await
    }

    /// A stack's Delete: disconnects only when `stack_id` is the stack that
    /// connected it; answers whether it did. A recorded stack never changes
    /// while connected (`other_stack`), so checking before disconnecting is safe.
    pub async fn disconnect_stack(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        stack_id: &str,
    ) -> Result<bool, ServiceError> {
        let c = self.get(tenant, id).await?;
        let ours = c.state != Status::Disconnected && c.stack.as_ref().is_some_and(|s| s.stack_id == stack_id);
        if ours {
            self.disconnect(tenant, id).await?;
        }
        Ok(ours)
    }

    /// Retires the connection and its external IDs (never reissued).
    pub async fn disconnect(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        let actor = tenant.sub.clone();
        self.change(tenant, id, move |c, t| {
            if c.state == Status::Disconnected {
                return Ok(None);
            }
            c.state = Status::Disconnected;
            c.health = None;
            let mut guards = vec![Guard::ReleaseAccount];
            guards.extend(c.role_arn.clone().map(Guard::ReleaseRole));
            Ok(Some((event(t, c, EventKind::Disconnected, &actor, "ok", None), guards)))
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
        let Some(id) = self.store.account_holder(&tenant.org, account, self.now()).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .get(&tenant.org, &id)
            .await?
            .filter(|c| c.is_active(self.now())))
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

/// A connected connection belongs to the stack that connected it.
fn other_stack(c: &Connection, stack: Option<&ConnectedStack>) -> Result<(), ServiceError> {
    match (stack, &c.stack) {
        (Some(new), Some(old)) if c.state == Status::Connected && old.stack_id != new.stack_id => {
            Err(ServiceError::OtherStack(old.clone()))
        }
        _ => Ok(()),
    }
}

fn health_of(o: Outcome) -> Health {
    match o {
        Outcome::Passed => Health::Healthy,
        Outcome::Degraded => Health::Degraded,
        Outcome::Failed => Health::Broken,
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "ok",
        Outcome::Degraded => "degraded",
        Outcome::Failed => "failed",
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(10 * (1 << attempt.min(5)) as u64)).await;
}
