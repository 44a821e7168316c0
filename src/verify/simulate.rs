//! AWS's own evaluation of the role's permissions: iam:SimulatePrincipalPolicy
//! with the role as PolicySourceArn also sees its permissions boundary and
//! the organization's SCPs, which the local evaluator cannot.

use super::aws::{classify, CallError};
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::types::PolicyEvaluationDecisionType as Eval;
use std::collections::BTreeMap;

/// Action names per call. The API model sets no count limit; 50 keeps each
/// call's work small, and the calls run side by side.
pub const ACTIONS_PER_CALL: usize = 50;
/// Results per page: the API's maximum MaxItems.
const PAGE_ITEMS: i32 = 1000;

/// IAM's answer for one action over the resources it was asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simulated {
    pub decision: Decision,
    /// The answer rests on context keys the simulation did not have
    /// (conditions), so the live answer may differ.
    pub needs_context: bool,
    /// The permissions boundary does not allow it.
    pub boundary_denies: bool,
    /// An SCP of the organization does not allow it.
    pub organization_denies: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

/// Whether the simulator can answer for this action name: it evaluates
/// named operations, not patterns, so `ec2:Describe*` is decided locally.
pub fn simulable(action: &str) -> bool {
    !action.contains(['*', '?'])
}

fn decision(e: &Eval) -> Decision {
    match e {
        Eval::Allowed => Decision::Allowed,
        Eval::ExplicitDeny => Decision::ExplicitDeny,
        // implicitDeny, and any value a newer API adds: never a grant.
        _ => Decision::ImplicitDeny,
    }
}

/// Simulates `actions` on every one of `resources` for the role, in calls of
/// ACTIONS_PER_CALL run side by side. Keys are the actions in lower case.
pub async fn simulate(
    iam: &aws_sdk_iam::Client,
    role_arn: &str,
    actions: &[String],
    resources: &[String],
) -> Result<BTreeMap<String, Simulated>, CallError> {
    let calls: Vec<_> = actions
        .chunks(ACTIONS_PER_CALL)
        .map(|chunk| simulate_call(iam, role_arn, chunk, resources))
        .collect();
    let mut out = BTreeMap::new();
    for part in futures::future::join_all(calls).await {
        out.extend(part?);
    }
    Ok(out)
}

async fn simulate_call(
    iam: &aws_sdk_iam::Client,
    role_arn: &str,
    actions: &[String],
    resources: &[String],
) -> Result<BTreeMap<String, Simulated>, CallError> {
    // IAM may end a page before MaxItems, but every page but the last holds
    // at least one of the actions × resources results.
    let max_pages = actions.len() * resources.len().max(1) + 1;
    let mut out: BTreeMap<String, Simulated> = BTreeMap::new();
    let mut marker: Option<String> = None;
    for _ in 0..max_pages {
        let page = iam
            .simulate_principal_policy()
            .policy_source_arn(role_arn)
            .set_action_names(Some(actions.to_vec()))
            .set_resource_arns(Some(resources.to_vec()).filter(|r| !r.is_empty()))
            .max_items(PAGE_ITEMS)
            .set_marker(marker.take())
            // The local evaluator is the fallback: a retry would only eat
            // the deadline the checks share.
            .customize()
            .config_override(
                aws_sdk_iam::config::Builder::default()
                    .retry_config(super::partitions::retries(RetryConfig::disabled())),
            )
            .send()
            .await
            .map_err(|e| classify(&e))?;
        for r in page.evaluation_results() {
            let mut s = Simulated {
                decision: decision(r.eval_decision()),
                needs_context: !r.missing_context_values().is_empty(),
                boundary_denies: r
                    .permissions_boundary_decision_detail()
                    .is_some_and(|d| !d.allowed_by_permissions_boundary()),
                organization_denies: r
                    .organizations_decision_detail()
                    .is_some_and(|d| !d.allowed_by_organizations()),
            };
            for rs in r.resource_specific_results() {
                s.decision = s.decision.max(decision(rs.eval_resource_decision()));
                s.needs_context |= !rs.missing_context_values().is_empty();
                s.boundary_denies |= rs
                    .permissions_boundary_decision_detail()
                    .is_some_and(|d| !d.allowed_by_permissions_boundary());
            }
            // One result per action and resource: the action needs them all.
            out.entry(r.eval_action_name().to_ascii_lowercase())
                .and_modify(|o| {
                    o.decision = o.decision.max(s.decision);
                    o.needs_context |= s.needs_context;
                    o.boundary_denies |= s.boundary_denies;
                    o.organization_denies |= s.organization_denies;
                })
                .or_insert(s);
        }
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_owned()),
            _ => return Ok(out),
        }
    }
    Err(CallError::PageCap(format!(
        "SimulatePrincipalPolicy gave more than {max_pages} pages for {} actions",
        actions.len()
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn patterns_are_left_to_the_local_evaluator() {
        assert!(super::simulable("ec2:RunInstances"));
        assert!(!super::simulable("ec2:Describe*"));
        assert!(!super::simulable("s3:Get?bject"));
    }
}
