//! The permissions check: what the selected bundles need against what the
//! role may do. IAM's policy simulator decides where the role may call it
//! (it sees boundaries and SCPs); our evaluator of the role's policies and
//! its permissions boundary decides the rest.

use super::aws::{Boundary, CallError, RoleRecord};
use super::evaluate::{Evaluator, Verdict};
use super::report::{Check, CheckId, DecidedBy};
use super::simulate::{self, Decision, Simulated};
use crate::catalog::{BundleRef, Catalog, StatementTemplate};
use crate::domain::{Connection, Partition, Permissions};
use crate::policy::Selection;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One action of one bundle's statement, on that statement's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub bundle: String,
    pub action: String,
    pub resources: Vec<String>,
}

/// Per resource list, IAM's answer for each action (lower case).
pub type Simulation = BTreeMap<Vec<String>, BTreeMap<String, Simulated>>;

/// What the selection needs, one entry per bundle, statement and action.
pub fn required(conn: &Connection) -> Vec<Requirement> {
    required_for(conn.partition, &conn.permissions)
}

/// What a selection needs in a partition (an organization's members).
pub fn required_for(partition: Partition, permissions: &Permissions) -> Vec<Requirement> {
    let Ok(sel) = Selection::resolve(partition, permissions) else {
        return Vec::new();
    };
    let c = Catalog::get();
    let mut out = Vec::new();
    for id in sel.bundle_ids() {
        let sts: Vec<&StatementTemplate> = if id == c.core.id {
            c.core.statements.iter().collect()
        } else if let Some(b) = c.shared(id) {
            b.statements.iter().collect()
        } else {
            match c.find(id) {
                Some(BundleRef::Product(p)) => p.statements.iter().collect(),
                Some(BundleRef::Integration(_, i)) => i.statements.iter().collect(),
                None => Vec::new(),
            }
        };
        for s in sts {
            let resources: Vec<String> = s.resources_for(partition).collect();
            for a in &s.actions {
                out.push(Requirement {
                    bundle: id.to_owned(),
                    action: a.clone(),
                    resources: resources.clone(),
                });
            }
        }
    }
    out
}

/// Asks IAM's simulator about every named action, one group of calls per
/// resource list, all side by side.
pub async fn simulate_all(
    iam: &aws_sdk_iam::Client,
    role_arn: &str,
    reqs: &[Requirement],
) -> Result<Simulation, CallError> {
    let mut groups: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for r in reqs.iter().filter(|r| simulate::simulable(&r.action)) {
        groups.entry(r.resources.clone()).or_default().insert(r.action.clone());
    }
    let calls: Vec<_> = groups
        .into_iter()
        .map(|(resources, actions)| async move {
            let actions: Vec<String> = actions.into_iter().collect();
            let answers = simulate::simulate(iam, role_arn, &actions, &resources).await?;
            Ok::<_, CallError>((resources, answers))
        })
        .collect();
    futures::future::join_all(calls).await.into_iter().collect()
}

fn worst(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v| match v {
        Verdict::Allowed => 0,
        Verdict::Conditional => 1,
        Verdict::Missing => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn from_simulation(s: &Simulated) -> Verdict {
    match (s.decision, s.needs_context) {
        (Decision::Allowed, _) => Verdict::Allowed,
        // Decided on conditions whose keys only a live request has.
        (_, true) => Verdict::Conditional,
        _ => Verdict::Missing,
    }
}

/// Why the simulator did not decide, in the customer's words.
fn simulation_gap(e: &CallError) -> String {
    match e {
        CallError::AccessDenied(_) => "the role may not call iam:SimulatePrincipalPolicy".to_owned(),
        CallError::Deadline | CallError::Timeout => "IAM's policy simulator did not answer in time".to_owned(),
        CallError::Throttled(_) => "IAM throttled the policy simulation".to_owned(),
        other => format!("IAM's policy simulator did not answer: {}", short(other)),
    }
}

fn short(e: &CallError) -> String {
    let text = e.to_string();
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[derive(Default)]
struct Tally {
    total: usize,
    simulated: usize,
    local: usize,
    undecided: usize,
    missing: BTreeMap<String, Vec<String>>,
    conditional: BTreeMap<String, Vec<String>>,
    by_boundary: BTreeSet<String>,
    by_organization: BTreeSet<String>,
    /// What the local core could not evaluate in the role's policies or boundary.
    unsupported: Vec<String>,
}

/// The permissions check from the role's policies, its record (boundary)
/// and the simulation, each as far as it could be read.
pub fn check(
    reqs: &[Requirement],
    policies: &Result<Vec<Value>, CallError>,
    record: &Result<RoleRecord, CallError>,
    simulation: &Result<Simulation, CallError>,
) -> Check {
    let local = policies.as_ref().ok().map(|d| Evaluator::new(d));
    let boundary_docs: Vec<Value> = match record {
        Ok(RoleRecord {
            boundary: Boundary::Policy { document, .. },
            ..
        }) => vec![document.clone()],
        _ => Vec::new(),
    };
    let boundary = (!boundary_docs.is_empty()).then(|| Evaluator::new(&boundary_docs));
    let mut t = Tally::default();
    for r in reqs {
        t.total += r.resources.len().max(1);
        let answer = simulation
            .as_ref()
            .ok()
            .filter(|_| simulate::simulable(&r.action))
            .and_then(|s| s.get(&r.resources))
            .and_then(|s| s.get(&r.action.to_ascii_lowercase()));
        let verdict = if let Some(s) = answer {
            t.simulated += 1;
            if s.boundary_denies {
                t.by_boundary.insert(r.action.clone());
            }
            if s.organization_denies {
                t.by_organization.insert(r.action.clone());
            }
            from_simulation(s)
        } else if let Some(eval) = &local {
            t.local += 1;
            let mut v = Verdict::Allowed;
            for res in &r.resources {
                v = worst(v, eval.verdict(&r.action, res));
                if let Some(b) = &boundary {
                    let bv = b.verdict(&r.action, res);
                    if bv == Verdict::Missing {
                        t.by_boundary.insert(r.action.clone());
                    }
                    v = worst(v, bv);
                }
            }
            v
        } else {
            t.undecided += 1;
            continue;
        };
        match verdict {
            Verdict::Allowed => {}
            Verdict::Conditional => t
                .conditional
                .entry(r.bundle.clone())
                .or_default()
                .push(r.action.clone()),
            Verdict::Missing => t.missing.entry(r.bundle.clone()).or_default().push(r.action.clone()),
        }
    }
    for v in t.missing.values_mut().chain(t.conditional.values_mut()) {
        v.sort();
        v.dedup();
    }
    // Conditional only where nothing else already calls it missing.
    for (bundle, actions) in t.conditional.iter_mut() {
        if let Some(m) = t.missing.get(bundle) {
            actions.retain(|a| !m.contains(a));
        }
    }
    t.conditional.retain(|_, v| !v.is_empty());
    if t.local > 0 {
        t.unsupported = local
            .iter()
            .chain(&boundary)
            .flat_map(|e| e.notes().iter().cloned())
            .collect();
    }
    finish(t, policies, record, simulation)
}

fn finish(
    t: Tally,
    policies: &Result<Vec<Value>, CallError>,
    record: &Result<RoleRecord, CallError>,
    simulation: &Result<Simulation, CallError>,
) -> Check {
    let decided_by = match (t.simulated, t.local) {
        (0, 0) => None,
        (_, 0) => Some(DecidedBy::IamSimulation),
        (0, _) => Some(DecidedBy::Local),
        _ => Some(DecidedBy::IamSimulationAndLocal),
    };
    let mut notes = Vec::new();
    match decided_by {
        Some(DecidedBy::IamSimulation) => notes.push("IAM's policy simulator decided every action.".to_owned()),
        Some(DecidedBy::IamSimulationAndLocal) => notes.push(format!(
            "IAM's policy simulator decided {} actions; {} wildcard actions were evaluated here from the role's policies.",
            t.simulated, t.local
        )),
        Some(DecidedBy::Local) => {
            let why = simulation.as_ref().err().map(simulation_gap).unwrap_or_default();
            notes.push(format!("Evaluated here from the role's policies ({why})."));
        }
        None => {}
    }
    if t.local > 0 {
        match record {
            Ok(RoleRecord {
                boundary: Boundary::Policy { arn, .. },
                ..
            }) => notes.push(format!("The role's permissions boundary {arn} was evaluated too.")),
            Ok(RoleRecord {
                boundary: Boundary::Unreadable { arn, .. },
                ..
            }) => notes.push(format!(
                "The role has the permissions boundary {arn}, which it may not read: what the boundary blocks is not listed."
            )),
            Ok(RoleRecord {
                boundary: Boundary::Unknown,
                ..
            }) => notes.push("The role may not call iam:GetRole, so a permissions boundary, if it has one, was not seen.".to_owned()),
            _ => {}
        }
    }
    if !t.unsupported.is_empty() {
        notes.push(format!("Counted against the role: {}.", t.unsupported.join("; ")));
    }
    if t.undecided > 0 {
        let why = match policies {
            Err(CallError::Deadline | CallError::Timeout) => {
                "reading the role's policies did not finish in time".to_owned()
            }
            Err(CallError::AccessDenied(_)) => "the role may not read its own policies".to_owned(),
            Err(e) => format!("its policies could not be read ({})", short(e)),
            Ok(_) => String::new(),
        };
        notes.push(format!("{} permission(s) could not be checked: {why}.", t.undecided));
    }
    let notes = notes.join(" ");

    if t.missing.is_empty() && t.conditional.is_empty() {
        if t.undecided == 0 {
            let mut c = Check::passed(
                CheckId::Permissions,
                format!(
                    "The role grants all {} permissions of the selected products and integrations. {notes}",
                    t.total
                )
                .trim_end()
                .to_owned(),
            );
            c.decided_by = decided_by;
            return c;
        }
        let mut c = Check::skipped(CheckId::Permissions, skipped_message(policies, simulation, &notes));
        c.decided_by = decided_by;
        // Out of time reading the policies says nothing about the role.
        c.transient = policies.as_ref().err().is_some_and(CallError::is_transient);
        return c;
    }
    let count: usize = t.missing.values().map(Vec::len).sum();
    let bundles: Vec<&str> = t
        .missing
        .keys()
        .chain(t.conditional.keys())
        .map(String::as_str)
        .collect();
    let mut blocked = Vec::new();
    if !t.by_boundary.is_empty() {
        blocked.push(format!(
            "{} of them are blocked by the role's permissions boundary",
            t.by_boundary.len()
        ));
    }
    if !t.by_organization.is_empty() {
        blocked.push(format!(
            "{} denied by your organization's service control policies, not by the role's own policies: {}",
            t.by_organization.len(),
            t.by_organization
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let blocked = if blocked.is_empty() {
        String::new()
    } else {
        format!(" ({})", blocked.join("; "))
    };
    let mut fix =
        "Replace the role's policy with the one this connection gives you (View JSON), or add the listed actions"
            .to_owned();
    if !t.by_boundary.is_empty() {
        fix.push_str("; widen the role's permissions boundary to allow them");
    }
    if !t.by_organization.is_empty() {
        fix.push_str("; ask your organization's administrator to allow them in its service control policies");
    }
    fix.push_str("; the account stays connected meanwhile.");
    let mut c = Check::warning(
        CheckId::Permissions,
        format!(
            "The role lacks {count} permission(s){blocked}{} for: {}. {notes}",
            if t.conditional.is_empty() {
                String::new()
            } else {
                " and grants some only under conditions".to_owned()
            },
            bundles.join(", ")
        )
        .trim_end()
        .to_owned(),
        fix,
    );
    c.missing = t.missing;
    c.conditional = t.conditional;
    c.denied_by_organization = t.by_organization.into_iter().collect();
    c.decided_by = decided_by;
    c
}

fn skipped_message(
    policies: &Result<Vec<Value>, CallError>,
    simulation: &Result<Simulation, CallError>,
    notes: &str,
) -> String {
    let simulated = simulation.is_ok();
    match policies {
        Err(CallError::AccessDenied(_)) if !simulated => "The role may not read its own policies (iam:ListAttachedRolePolicies, iam:GetPolicyVersion …) nor call iam:SimulatePrincipalPolicy, so we cannot tell which permissions it has. Attach the policy this connection gives you: its core statement grants those reads.".to_owned(),
        Err(CallError::Deadline | CallError::Timeout) if !simulated => format!(
            "Not checked: reading the role's policies did not finish in time (the checks share {} s). Check again in a minute.",
            super::CHECKS_BUDGET.as_secs()
        ),
        Err(e) if !simulated => format!("Could not read the role's policies: {}", short(e)),
        _ => notes.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(action: &str) -> Requirement {
        Requirement {
            bundle: "b".into(),
            action: action.into(),
            resources: vec!["*".into()],
        }
    }

    fn record(boundary: Boundary) -> Result<RoleRecord, CallError> {
        Ok(RoleRecord {
            trust: String::new(),
            boundary,
        })
    }

    fn all_allowed() -> Result<Vec<Value>, CallError> {
        Ok(vec![
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
        ])
    }

    fn answer(decision: Decision, boundary_denies: bool, organization_denies: bool) -> Simulated {
        Simulated {
            decision,
            needs_context: false,
            boundary_denies,
            organization_denies,
        }
    }

    #[test]
    fn what_the_core_cannot_evaluate_is_said_and_counted_against() {
        let odd: Result<Vec<Value>, CallError> = Ok(vec![
            json!({"Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
            "Condition": {"StringSortOf": {"aws:RequestedRegion": "us-east-1"}}}}),
        ]);
        let c = check(
            &[req("ec2:RunInstances")],
            &odd,
            &record(Boundary::Unknown),
            &Err(CallError::AccessDenied("no".into())),
        );
        assert_eq!(c.conditional["b"], vec!["ec2:RunInstances"], "{c:?}");
        assert!(c.message.contains("StringSortOf"), "{}", c.message);
    }

    #[test]
    fn the_boundary_takes_away_what_the_policies_grant() {
        let boundary = Boundary::Policy {
            arn: "arn:aws:iam::123456789012:policy/b".into(),
            document: json!({"Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}}),
        };
        let reqs = [req("ec2:RunInstances"), req("route53:ChangeResourceRecordSets")];
        let c = check(
            &reqs,
            &all_allowed(),
            &record(boundary),
            &Err(CallError::AccessDenied("no".into())),
        );
        assert_eq!(c.decided_by, Some(DecidedBy::Local));
        assert_eq!(c.missing["b"], vec!["route53:ChangeResourceRecordSets"]);
        assert!(c.message.contains("permissions boundary"), "{}", c.message);
        assert!(
            c.message.contains("may not call iam:SimulatePrincipalPolicy"),
            "{}",
            c.message
        );
        assert!(c.remediation.unwrap().contains("boundary"));
    }

    #[test]
    fn the_simulator_decides_named_actions_and_we_decide_patterns() {
        let reqs = [
            req("ec2:RunInstances"),
            req("ec2:TerminateInstances"),
            req("ec2:Describe*"),
        ];
        let sim: Simulation = BTreeMap::from([(
            vec!["*".to_owned()],
            BTreeMap::from([
                ("ec2:runinstances".to_owned(), answer(Decision::Allowed, false, false)),
                (
                    "ec2:terminateinstances".to_owned(),
                    answer(Decision::ExplicitDeny, false, true),
                ),
            ]),
        )]);
        let c = check(&reqs, &all_allowed(), &record(Boundary::Unknown), &Ok(sim));
        assert_eq!(c.decided_by, Some(DecidedBy::IamSimulationAndLocal));
        // The role's policies allow everything; the SCP (seen only by IAM) does not.
        assert_eq!(c.missing["b"], vec!["ec2:TerminateInstances"]);
        assert!(
            c.message
                .contains("service control policies, not by the role's own policies: ec2:TerminateInstances"),
            "{}",
            c.message
        );
        assert_eq!(c.denied_by_organization, ["ec2:TerminateInstances"]);
    }

    #[test]
    fn nothing_readable_is_skipped_not_guessed() {
        let c = check(
            &[req("ec2:RunInstances")],
            &Err(CallError::Deadline),
            &Err(CallError::Deadline),
            &Err(CallError::Deadline),
        );
        assert_eq!(c.status, super::super::CheckStatus::Skipped);
        assert!(c.message.contains("did not finish"), "{}", c.message);
        assert_eq!(c.decided_by, None);
    }
}
