//! Verifying a role and connecting it, and the scheduled re-check of a
//! connected one: the verifier's report decides, the store records it.

use super::lease::Taken;
use super::service::{clip, ConnectionService, MAX_EVENT_TEXT};
use super::ServiceError;
use crate::domain::{ConnectedStack, Connection, ConnectionId, Event, EventKind, Health, Status};
use crate::store::Guard;
use crate::tenancy::Tenant;
use crate::verify::{Outcome, Report};
use std::time::Duration;

/// A re-check's result, with the health the connection had before.
#[derive(Debug)]
pub struct Rechecked {
    pub before: Option<Health>,
    pub connection: Connection,
    pub report: Report,
}

impl ConnectionService {
    /// Verifies the role and, when every check passes (permissions may be
    /// missing), connects it. A failed check changes nothing but the audit trail.
    pub async fn connect_role(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        role_arn: &str,
        budget: Duration,
    ) -> Result<(Connection, Report), ServiceError> {
        owned_by_organization(&self.get(tenant, id).await?)?;
        self.take_rate(tenant, crate::limits::Limit::Verifications).await?;
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
        // Checked first for the caller's right to the connection.
        self.get(tenant, id).await?;
        // One verification per connection at a time: an API client is
        // refused while another runs; a stack's request (the callback)
        // waits for it, and answers with its outcome when it connected the
        // same role for the same stack.
        let lease = match self.verify_lease(id, budget, stack.is_some()).await? {
            Taken::AtOnce(lease) => lease,
            Taken::AfterWaiting(lease) => match self.reuse_outcome(tenant, id, role_arn, stack.as_ref()).await {
                Ok(Some(done)) => {
                    lease.release().await;
                    return Ok(done);
                }
                Ok(None) => lease,
                Err(e) => {
                    lease.release().await;
                    return Err(e);
                }
            },
        };
        // Boxed: the verification's future is large, and callers nest it.
        let out = Box::pin(self.connect_role_leased(tenant, id, role_arn, budget, stack)).await;
        lease.release().await;
        out
    }

    /// After waiting for another verification of the same connection: the
    /// connection and its stored report if that one connected this role for
    /// this stack (nothing to verify again), else None.
    async fn reuse_outcome(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        role_arn: &str,
        stack: Option<&ConnectedStack>,
    ) -> Result<Option<(Connection, Report)>, ServiceError> {
        let c = self.get(tenant, id).await?;
        let same_stack = stack.is_some_and(|s| c.stack.as_ref().is_some_and(|cs| cs.stack_id == s.stack_id));
        let same_role = c.role_arn.as_ref().is_some_and(|r| r.as_str() == role_arn);
        if c.status(self.now()) != Status::Connected || !same_stack || !same_role {
            return Ok(None);
        }
        let report = c.report.clone().and_then(|r| serde_json::from_value::<Report>(r).ok());
        Ok(report.map(|r| (c, r)))
    }

    async fn connect_role_leased(
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
        // No AWS call for a role in the vendor's own accounts. An ARN that
        // does not parse is the verifier's to report.
        if let Ok(role) = role_arn.parse::<crate::domain::RoleArn>() {
            self.customer_account(role.partition(), role.account().as_str())?;
        }
        let principal = self.principal(c.partition)?.to_owned();
        let report = self.verifier.verify(&c, &principal, role_arn, budget).await;
        self.record_failure(tenant, &c, &report).await?;
        // A report that did not fail parsed the ARN; it carries it typed.
        let Some(role) = report.role.clone() else {
            return Err(ServiceError::VerificationFailed {
                report: Box::new(report),
                connection: Box::new(c),
            });
        };
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
                c.checked_at = Some(t);
                c.last_read = report.read.clone();
                if report.outcome != Outcome::Degraded {
                    c.drift = None;
                }
                // An organization member's reason for not being connected is gone.
                if let Some(m) = c.organization.as_mut() {
                    m.note = None;
                }
                let mut detail =
                    serde_json::json!({"roleArn": role.as_str(), "outcome": report.outcome, "promoted": promoted});
                if let Some(s) = &stack {
                    detail["stackId"] = serde_json::json!(clip(&s.stack_id, MAX_EVENT_TEXT));
                }
                Ok(Some((
                    Event::new(t, c, EventKind::Verified, &actor, "ok", Some(detail)),
                    guards,
                )))
            })
            .await?;
        Ok((updated, report))
    }

    /// Re-runs the checks on a connected role and records its health.
    pub async fn recheck(&self, tenant: &Tenant, id: &ConnectionId) -> Result<(Connection, Report), ServiceError> {
        self.take_rate(tenant, crate::limits::Limit::Rechecks).await?;
        let r = self.recheck_due(tenant, id, None).await?;
        let r = r.expect("without a time every connected connection is due");
        Ok((r.connection, r.report))
    }

    /// `recheck`, unless a conclusive check ended after `queued_at` (a
    /// second delivery of the same job): then None, and nothing is called.
    pub async fn recheck_due(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        queued_at: Option<i64>,
    ) -> Result<Option<Rechecked>, ServiceError> {
        // A verdict is written only onto the state it verified: a check
        // whose connection moved on meanwhile (another role or external
        // ID) is discarded and made again on what is stored now.
        for _ in 0..CHECK_ATTEMPTS {
            match self.recheck_once(tenant, id, queued_at).await? {
                Checked::Done(r) => return Ok(r.map(|r| *r)),
                Checked::Moved => continue,
            }
        }
        Err(ServiceError::TooManyConcurrentWrites)
    }

    async fn recheck_once(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        queued_at: Option<i64>,
    ) -> Result<Checked, ServiceError> {
        let c = self.get(tenant, id).await?;
        if queued_at.is_some_and(|q| c.checked_at.is_some_and(|at| at > q)) {
            return Ok(Checked::Done(None));
        }
        let verified = VerifiedState::of(&c);
        let health_before = c.health;
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
        // Before the write: an automatic connection's fix uploads a template.
        let drift = if report.inconclusive() {
            c.drift.clone()
        } else {
            self.drift_of(&c, &report).await
        };
        let actor = tenant.sub.clone();
        let report_json = serde_json::to_value(&report).expect("reports serialize");
        let mut moved = false;
        let updated = self
            .change_from(tenant, id, Some(c), |c, t| {
                if c.state != Status::Connected {
                    return Ok(None); // Disconnected meanwhile: nothing to record.
                }
                if VerifiedState::of(c) != verified {
                    moved = true;
                    return Ok(None);
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
                        Event::new(t, c, EventKind::Checked, &actor, "inconclusive", Some(detail)),
                        Vec::new(),
                    )));
                }
                c.health = Some(health_of(report.outcome));
                c.report = Some(report_json.clone());
                c.checked_at = Some(t);
                // Written with the report it goes with: the next check
                // reuses that report's permissions verdict while nothing moved.
                c.last_read = report.read.clone();
                let fix = drift.as_ref().map(|d| d.fix.kind());
                c.drift = drift.clone();
                let detail =
                    serde_json::json!({"health": c.health, "before": before, "outcome": report.outcome, "fix": fix});
                Ok(Some((
                    Event::new(
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
        if moved {
            return Ok(Checked::Moved);
        }
        Ok(Checked::Done(Some(Box::new(Rechecked {
            before: health_before,
            connection: updated,
            report,
        }))))
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
            .append_event(&Event::new(
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
}

/// Checks of one re-check request: the first, and one more when the
/// connection moved on under it.
const CHECK_ATTEMPTS: usize = 2;

enum Checked {
    Done(Option<Box<Rechecked>>),
    /// The role or external IDs changed while the check ran: its verdict is
    /// another state's, not written.
    Moved,
}

/// What a verdict is about: the role and the external IDs it was checked with.
#[derive(PartialEq)]
struct VerifiedState {
    role: Option<crate::domain::RoleArn>,
    external_id: crate::domain::ExternalId,
    pending: Option<crate::domain::ExternalId>,
}

impl VerifiedState {
    fn of(c: &Connection) -> Self {
        VerifiedState {
            role: c.role_arn.clone(),
            external_id: c.external_id.clone(),
            pending: c.pending_external_id.clone(),
        }
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

/// A client's change to an organization's management connection is
/// refused: its role is the management stack's, and it ends with the
/// organization (whose Spot account it holds).
pub(super) fn owned_by_organization(c: &Connection) -> Result<(), ServiceError> {
    match &c.organization {
        Some(m) if m.management => Err(ServiceError::ManagedByOrganization(m.organization_id.clone())),
        _ => Ok(()),
    }
}
