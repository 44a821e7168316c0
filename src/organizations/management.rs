//! The management stack's own life. Its Delete (a stack can always be
//! deleted) takes the management role with it: the management connection
//! goes back to pending with its external ID and why, its role released,
//! and the organization reads as `managementStackDeleted` from then on
//! (`Organization::state_with`), in that one write with its event. The
//! Spot account stays the organization's until it is offboarded; members
//! keep their own roles. The same stack created again reports the same
//! connection and brings it back to `active`.

use super::members::unlinked_by_deleted_stack;
use super::service::{system_tenant, OrganizationError, OrganizationService};
use crate::domain::{Connection, Event, EventKind, OrgState, Organization, Status};
use crate::store::Guard;

/// A management connection waiting for its stack again does not expire:
/// it holds the organization's Spot account until the organization is
/// offboarded (9999-12-31T23:59:59Z).
const WAITING_EXPIRES_AT: i64 = 253_402_300_799;

impl OrganizationService {
    /// The organization's state now, from its management connection.
    pub async fn state_of(&self, o: &Organization) -> Result<OrgState, OrganizationError> {
        let mgmt = self
            .store
            .get(&o.org, &o.management_connection_id)
            .await?
            .ok_or(OrganizationError::NotFound)?;
        Ok(o.state_with(&mgmt))
    }

    /// Refuses a read through the management role when its stack was
    /// deleted: there is no role to assume, and the answer says what to do.
    pub(super) async fn refuse_without_management(&self, o: &Organization) -> Result<(), OrganizationError> {
        match self.state_of(o).await? {
            OrgState::ManagementStackDeleted => Err(OrganizationError::ManagementStackDeleted {
                id: o.id.clone(),
                reason: o.state_reason(OrgState::ManagementStackDeleted).unwrap_or_default(),
            }),
            _ => Ok(()),
        }
    }

    /// The management stack's Delete, from the stack that connected the
    /// management connection (any other changes nothing): answers whether
    /// it acted.
    pub async fn management_stack_deleted(
        &self,
        mgmt: &Connection,
        stack_id: &str,
        actor: &str,
    ) -> Result<bool, OrganizationError> {
        let ours = |c: &Connection| {
            c.state == Status::Connected
                && c.stack.as_ref().is_some_and(|s| s.stack_id == stack_id)
                && c.organization.as_ref().is_some_and(|m| m.management)
        };
        if !ours(mgmt) {
            return Ok(false);
        }
        let id = &mgmt.organization.as_ref().expect("checked").organization_id;
        let o = self
            .store
            .get_organization(id)
            .await?
            .ok_or(OrganizationError::NotFound)?;
        // A fresh quick-create link to create the stack again: the first
        // template's object expires with the external ID's first lifetime.
        // Without one (no bucket, an upload that failed), the template route.
        let mut waiting = mgmt.clone();
        waiting.expires_at = WAITING_EXPIRES_AT;
        let links = match self.template_for(&o, &waiting) {
            Ok(tpl) => match self.templates.links(&self.config, &waiting, &tpl, self.now()).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, organization = o.id.as_str(), "no fresh management template uploaded");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, organization = o.id.as_str(), "the management template did not render");
                None
            }
        };
        let tenant = system_tenant(&mgmt.org, actor);
        let mut acted = false;
        self.connections
            .change(&tenant, &mgmt.id, |c, t| {
                if !ours(c) {
                    return Ok(None);
                }
                acted = true;
                let mut guards = unlinked_by_deleted_stack(c, stack_id, "management stack");
                // The organization keeps its Spot account until it is offboarded.
                c.expires_at = WAITING_EXPIRES_AT;
                guards.push(Guard::HoldAccount { until: i64::MAX });
                if let Some(l) = &links {
                    c.cloud_formation = Some(l.clone());
                }
                let detail = serde_json::json!({"stackId": stack_id, "reason": "management stack deleted"});
                Ok(Some((
                    Event::new(t, c, EventKind::Disconnected, actor, "ok", Some(detail)),
                    guards,
                )))
            })
            .await?;
        Ok(acted)
    }
}
