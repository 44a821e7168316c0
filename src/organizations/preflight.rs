//! The preflight, before the customer deploys the StackSet: for each
//! account the StackSet would reach, whether Spot will be able to assume
//! its role and what the organization's guardrails deny, read live through
//! the management role.

use super::guardrails::{assess_accounts, Needs, Reader};
use super::service::{OrganizationError, OrganizationService};
use crate::domain::guardrails::AccountGuardrails;
use crate::domain::{AccountId, OrganizationId, Status};
use crate::tenancy::Tenant;

/// One account the StackSet would reach.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PreflightAccount)]
pub struct PreflightAccount {
    pub aws_account_id: AccountId,
    /// The root or OU it sits in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(flatten)]
    pub guardrails: AccountGuardrails,
}

pub struct Preflight {
    pub organization_id: OrganizationId,
    pub at: i64,
    pub accounts: Vec<PreflightAccount>,
}

impl OrganizationService {
    /// Reads the organization and its guardrails through the management
    /// role, once its connection is connected; changes nothing.
    pub async fn preflight(&self, tenant: &Tenant, id: &OrganizationId) -> Result<Preflight, OrganizationError> {
        let o = self.organization(tenant, id).await?;
        if o.state != crate::domain::OrgState::Active {
            return Err(OrganizationError::Offboarded);
        }
        self.refuse_without_management(&o).await?;
        let mgmt = self.store.get(&o.org, &o.management_connection_id).await?;
        if mgmt.is_none_or(|m| m.status(self.now()) != Status::Connected) {
            return Err(OrganizationError::ManagementNotConnected(
                o.management_account_id.clone(),
            ));
        }
        // It reads Organizations through the customer's role, as a sync does.
        self.connections.take_rate(tenant, crate::limits::Limit::Syncs).await?;
        let session = self
            .session(&o)
            .await
            .map_err(OrganizationError::OrganizationUnreadable)?;
        let accounts = session
            .accounts(&o.organizational_unit_ids, &o.management_account_id)
            .await
            .map_err(OrganizationError::OrganizationUnreadable)?;
        let principal = self.connections.principal(o.partition)?;
        let needs = Needs::of(&o, principal);
        let mut verdicts = assess_accounts(&Reader::new(&session), &o, &accounts, &needs)
            .await
            .map_err(OrganizationError::OrganizationUnreadable)?;
        // As the view: the AWS accounts of members assigned to Spot accounts
        // the token may not act on are not shown.
        let members = self.all_members(&o.id).await?;
        let hidden: std::collections::HashSet<AccountId> = members
            .iter()
            .filter(|c| !tenant.may_access(&c.account_id))
            .filter_map(|c| c.aws_account_id.clone())
            .collect();
        let accounts = accounts
            .into_iter()
            .filter(|a| !hidden.contains(&a.aws_account_id))
            .filter_map(|a| {
                let g = verdicts.remove(a.aws_account_id.as_str())?;
                Some(PreflightAccount {
                    aws_account_id: a.aws_account_id,
                    parent_id: a.parent_id,
                    guardrails: g,
                })
            })
            .collect();
        Ok(Preflight {
            organization_id: o.id,
            at: self.now(),
            accounts,
        })
    }
}
