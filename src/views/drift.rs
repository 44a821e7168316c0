//! A connection's drift as API clients see it: what is missing, per bundle,
//! and the one step that closes it.

use crate::clock::iso;
use crate::domain::{AccountId, Drift, DriftFix};
use crate::policy::RenderedPolicy;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ConnectionDrift)]
pub struct DriftView {
    /// Per bundle, the actions the role does not grant.
    missing: BTreeMap<String, Vec<String>>,
    fix: FixView,
    /// When the check that found it ran.
    #[schema(format = DateTime)]
    found_at: String,
}

/// How the customer closes the drift.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[schema(as = DriftFix)]
pub enum FixView {
    /// Update the stack that connected it with the current template (for
    /// an organization's management connection: the management stack with
    /// the management template).
    #[serde(rename_all = "camelCase")]
    UpdateStack {
        stack_id: String,
        /// The console page that updates the stack with `templateUrl`.
        update_url: String,
        template_url: String,
    },
    /// Paste these documents into the role's policies.
    #[serde(rename_all = "camelCase")]
    EditPolicy {
        steps: String,
        policies: Vec<RenderedPolicy>,
    },
    /// An organization member: update the organization's StackSet, in its
    /// management account, with the current member template.
    #[serde(rename_all = "camelCase")]
    UpdateStackSet {
        stack_set_name: String,
        management_account_id: AccountId,
        /// The StackSet's region (the management stack's).
        region: String,
        /// The StackSet's page in the management account's console.
        console_url: String,
        /// The member template to replace the StackSet's with.
        template_url: String,
        steps: String,
    },
}

impl DriftView {
    /// `policies`: the connection's current documents, for a manual fix.
    pub fn new(d: &Drift, policies: &[RenderedPolicy]) -> Self {
        let fix = match &d.fix {
            DriftFix::UpdateStack {
                stack_id,
                update_url,
                template_url,
            } => FixView::UpdateStack {
                stack_id: stack_id.clone(),
                update_url: update_url.clone(),
                template_url: template_url.clone(),
            },
            DriftFix::EditPolicy { steps } => FixView::EditPolicy {
                steps: steps.clone(),
                policies: policies.to_vec(),
            },
            DriftFix::UpdateStackSet {
                stack_set_name,
                management_account_id,
                region,
                console_url,
                template_url,
                steps,
            } => FixView::UpdateStackSet {
                stack_set_name: stack_set_name.clone(),
                management_account_id: management_account_id.clone(),
                region: region.clone(),
                console_url: console_url.clone(),
                template_url: template_url.clone(),
                steps: steps.clone(),
            },
        };
        DriftView {
            missing: d.missing.clone(),
            fix,
            found_at: iso(d.found_at),
        }
    }
}
