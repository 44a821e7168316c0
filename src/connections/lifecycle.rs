//! A connection's later life: rotating its external ID, and disconnecting
//! (by a client, or by the stack that connected it).

use super::service::ConnectionService;
use super::ServiceError;
use crate::domain::{Connection, ConnectionId, Event, EventKind, ExternalId, Status};
use crate::store::Guard;
use crate::tenancy::Tenant;

impl ConnectionService {
    /// A new external ID beside the current one; the current one keeps
    /// working until a role is verified with the new one.
    pub async fn rotate(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        let prefix = self.config.external_id_prefix.clone();
        let ttl = self.config.external_id_ttl_secs as i64;
        let actor = tenant.sub.clone();
        self.change(tenant, id, move |c, t| {
            // The management stack holds its external ID: a new one would
            // never reach its role's trust policy.
            super::connect::owned_by_organization(c)?;
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
            // A pending connection's new ID gets a full lifetime; a member's
            // never expires (its account may join at any time).
            let member = c.organization.as_ref().is_some_and(|m| !m.management);
            if status == Status::Pending && !member {
                c.expires_at = t + ttl;
            }
            if status == Status::Pending {
                guards.push(Guard::HoldAccount { until: c.expires_at });
            }
            Ok(Some((Event::new(t, c, EventKind::Rotated, &actor, "ok", None), guards)))
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

    /// A client's disconnect (`DELETE /v1/connections/{id}`): an
    /// organization's management connection is disconnected only by
    /// offboarding its organization (or by its stack's Delete).
    pub async fn disconnect_by_client(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Connection, ServiceError> {
        super::connect::owned_by_organization(&self.get(tenant, id).await?)?;
        self.disconnect(tenant, id).await
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
            Ok(Some((
                Event::new(t, c, EventKind::Disconnected, &actor, "ok", None),
                guards,
            )))
        })
        .await
    }
}
