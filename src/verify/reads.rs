//! The reads after AssumeRole and the permissions check they feed, in
//! levels of calls made side by side:
//!
//! 1. the role's policy lists, its record (GetRole, or ListRoles where the
//!    last check saw GetRole refused) and, when it is due, IAM's policy
//!    simulation;
//! 2. each managed policy's GetPolicy (its id and default version), each
//!    inline policy's document, the boundary's GetPolicy, and ListRoles
//!    where GetRole was refused just now; beside the GetPolicy of a
//!    customer's policy nothing is remembered of, `v1`'s document (a new
//!    policy's default);
//! 3. only when something moved since the last conclusive check
//!    (`LastRead` on the connection), or there was none: every managed
//!    policy's and the boundary's document that level 2 did not bring
//!    (its default is not v1), and the simulation if it was not asked yet.
//!
//! So a first verification of a role whose policies are at v1 is AssumeRole
//! and two levels; one whose policy is at v3 takes the third level.
//!
//! With nothing moved, the last check's permissions verdict stands and no
//! document is read again: a re-check of an unchanged role with one managed
//! policy is AssumeRole and four reads in three levels. The simulator is
//! asked again only when the role's policies, its boundary or the required
//! actions changed, or its answer is a week old; a role that may not call
//! it is asked again when its policies change or a week after it refused
//! (the organization's SCPs change without any version the role shows).

use super::aws::{self, Assumed, Boundary, CallError, MetaRead, PolicyMeta, RoleRecord};
use super::evaluate::{Evaluator, Verdict};
use super::permissions::{self, Requirement, Simulation};
use super::report::{Check, CheckId};
use crate::domain::{Connection, InlineRead, LastRead, PolicyRead, RoleArn, SimulationRead};
use serde_json::{json, Value};
use std::future::Future;

/// How long IAM's simulator's answer stands while nothing it was asked
/// about moved: what it also sees (SCPs) shows no version we could read.
pub const SIMULATION_MAX_AGE_SECS: i64 = 7 * 86_400;

/// What the reads give the checks.
pub(super) struct Reads {
    /// The trust policy as the role's record holds it.
    pub trust: Result<String, CallError>,
    pub permissions: Check,
    /// What to remember for the next check; None when something could not
    /// be read (the next check reads everything).
    pub read: Option<LastRead>,
}

/// The role's record as the first level read it.
enum Record {
    /// GetRole: the trust policy and the boundary's ARN.
    Got { trust: String, boundary: Option<String> },
    /// ListRoles, as the last check found GetRole refused.
    Listed { trust: String },
    /// GetRole refused just now: ListRoles follows.
    Refused,
}

/// The call's result, or Deadline once `deadline` passes.
pub(super) async fn within<T>(
    deadline: tokio::time::Instant,
    call: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or(Err(CallError::Deadline))
}

/// The future's output when `go`, else None (and the future never runs).
async fn only_if<T>(go: bool, f: impl Future<Output = T>) -> Option<T> {
    if go {
        Some(f.await)
    } else {
        None
    }
}

/// A short digest of a JSON value, independent of its key order: the first
/// 16 bytes of the SHA-256 of its canonical text, hex.
pub fn digest(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut text = String::new();
    canonical(v, &mut text);
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Digest of what the selection requires: every bundle, action and resource.
pub(super) fn actions_digest(reqs: &[Requirement]) -> String {
    digest(&Value::Array(
        reqs.iter().map(|r| json!([r.bundle, r.action, r.resources])).collect(),
    ))
}

/// Digest of the role's policies and boundary as read: the managed
/// policies' ids and default versions (a version never changes), the
/// inline documents, and the boundary (or that it could not be seen).
fn policies_digest(managed: &[PolicyMeta], inline: &[InlineRead], boundary: &BoundarySeen) -> String {
    let mut m: Vec<Value> = managed
        .iter()
        .map(|p| json!([p.arn, p.id, p.default_version]))
        .collect();
    m.sort_by_key(|v| v.to_string());
    let mut i: Vec<Value> = inline.iter().map(|p| json!([p.name, p.digest])).collect();
    i.sort_by_key(|v| v.to_string());
    let b = match boundary {
        BoundarySeen::None => json!("none"),
        BoundarySeen::Unknown => json!("unknown"),
        BoundarySeen::Policy(p) => json!([p.arn, p.id, p.default_version]),
    };
    digest(&json!({"managed": m, "inline": i, "boundary": b}))
}

/// The boundary as the first two levels saw it.
enum BoundarySeen {
    None,
    /// Through ListRoles, which does not show it.
    Unknown,
    Policy(PolicyMeta),
}

/// The permissions check of the connection's last report, if it is the one
/// `past` was remembered with.
fn past_permissions(conn: &Connection, past: &LastRead) -> Option<Check> {
    let check = conn
        .report
        .as_ref()?
        .get("checks")?
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(CheckId::Permissions.as_str()))?;
    if digest(check) != past.permissions_digest {
        return None;
    }
    serde_json::from_value(check.clone()).ok()
}

/// What the role's reads gave: the last verdict standing (nothing moved),
/// or everything the check is made from.
enum Piped {
    Unchanged(Box<Reads>),
    Read(Box<Full>),
}

/// Every read of a check that must be made afresh, as it answered.
struct Full {
    lists: Result<aws::PolicyLists, CallError>,
    record: Result<Record, CallError>,
    trust: Result<String, CallError>,
    metas: Result<Vec<PolicyMeta>, CallError>,
    inline: Option<Vec<InlineRead>>,
    inline_docs: Result<Vec<Value>, CallError>,
    boundary_meta: Option<Result<PolicyMeta, CallError>>,
    docs: Result<Vec<Value>, CallError>,
    boundary_doc: Option<Result<Value, CallError>>,
    /// Digest of the role's policies and boundary, when every read of them answered.
    seen: Option<String>,
    policies_moved: bool,
    /// The simulation, where these reads asked it (something moved).
    simulation: Option<Result<Simulation, CallError>>,
}

/// Reads what the trust and permissions checks need, against what the last
/// conclusive check of this role read, and checks the permissions. The
/// simulation, when it is due before anything is read, runs beside all of
/// it; the reads of the role wait for nothing but each other.
pub(super) async fn read(
    a: &Assumed,
    role: &RoleArn,
    conn: &Connection,
    (reqs, actions): (&[Requirement], &str),
    now: i64,
    deadline: tokio::time::Instant,
) -> Reads {
    let past = conn.last_read.as_ref().filter(|m| m.role_arn == role.as_str());
    let past_sim = past.and_then(|p| p.simulation.as_ref());
    // Asked beside the reads when that is known before them.
    let ask_first = match past_sim {
        None => true,
        Some(s) if now.saturating_sub(s.at) >= SIMULATION_MAX_AGE_SECS => true,
        Some(s) if s.refused => false,
        Some(s) => s.actions != actions,
    };
    let simulate = || within(deadline, permissions::simulate_all(&a.iam, role.as_str(), reqs));
    let (sim_first, piped) = tokio::join!(
        only_if(ask_first, simulate()),
        role_reads(a, role, conn, past, ask_first, actions, &simulate, deadline),
    );
    let f = match piped {
        Piped::Unchanged(reads) => return *reads,
        Piped::Read(f) => *f,
    };
    let asked = sim_first.or(f.simulation);

    let policies: Result<Vec<Value>, CallError> = (|| {
        f.lists.as_ref().map_err(Clone::clone)?;
        f.metas.as_ref().map_err(Clone::clone)?;
        let mut all = f.inline_docs.clone()?;
        all.extend(f.docs.clone()?);
        Ok(all)
    })();
    let boundary = match (&f.record, &f.boundary_meta, &f.boundary_doc) {
        (Ok(Record::Got { boundary: None, .. }), _, _) => Boundary::None,
        (
            Ok(Record::Got {
                boundary: Some(arn), ..
            }),
            Some(Err(e)),
            _,
        )
        | (
            Ok(Record::Got {
                boundary: Some(arn), ..
            }),
            _,
            Some(Err(e)),
        ) => Boundary::Unreadable {
            arn: arn.clone(),
            error: e.clone(),
        },
        (
            Ok(Record::Got {
                boundary: Some(arn), ..
            }),
            _,
            Some(Ok(doc)),
        ) => Boundary::Policy {
            arn: arn.clone(),
            document: doc.clone(),
        },
        _ => Boundary::Unknown,
    };
    let role_record = f.trust.clone().map(|trust| RoleRecord {
        trust,
        boundary: boundary.clone(),
    });
    let simulation: Result<Simulation, CallError> = match &asked {
        Some(r) => r.clone(),
        None => Err(CallError::AccessDenied(
            "refused at the last check, and the role's policies did not change since".into(),
        )),
    };
    let check = permissions::check(reqs, &policies, &role_record, &simulation);

    // Remembered only when every read answered.
    let complete = !matches!(boundary, Boundary::Unreadable { .. }) && !check.transient;
    let read = match (&f.seen, &f.trust, &policies, &f.metas, &f.inline, complete) {
        (Some(policies_now), Ok(trust), Ok(all), Ok(metas), Some(inline), true) => {
            let docs = f.docs.as_ref().ok();
            let managed = metas
                .iter()
                .enumerate()
                .map(|(i, m)| PolicyRead {
                    arn: m.arn.clone(),
                    policy_id: m.id.clone(),
                    default_version: m.default_version.clone(),
                    digest: docs.and_then(|d| d.get(i)).map(digest).unwrap_or_default(),
                })
                .collect();
            let boundary_read = match (&f.boundary_meta, &boundary) {
                (Some(Ok(m)), Boundary::Policy { document, .. }) => Some(PolicyRead {
                    arn: m.arn.clone(),
                    policy_id: m.id.clone(),
                    default_version: m.default_version.clone(),
                    digest: digest(document),
                }),
                _ => None,
            };
            let asked_now = |refused| {
                Some(SimulationRead {
                    at: now,
                    refused,
                    policies: policies_now.clone(),
                    actions: actions.to_owned(),
                })
            };
            let simulation = match &asked {
                Some(Ok(_)) => asked_now(false),
                Some(Err(CallError::AccessDenied(_))) => asked_now(true),
                // An error that says nothing: asked again next time.
                Some(Err(_)) => None,
                None => past_sim.cloned(),
            };
            // GetRole again once the role's policies allow it, where it
            // was refused before.
            let get_role = match &f.record {
                Ok(Record::Got { .. }) => true,
                Ok(Record::Refused) => false,
                _ => f.policies_moved && Evaluator::new(all).verdict("iam:GetRole", role.as_str()) != Verdict::Missing,
            };
            Some(LastRead {
                role_arn: role.as_str().to_owned(),
                managed,
                inline: inline.clone(),
                get_role,
                boundary: boundary_read,
                trust_digest: trust_digest(trust),
                actions_digest: actions.to_owned(),
                policies_digest: policies_now.clone(),
                simulation,
                permissions_digest: digest(&serde_json::to_value(&check).expect("checks serialize")),
            })
        }
        _ => None,
    };
    Reads {
        trust: f.trust,
        permissions: check,
        read,
    }
}

/// The reads of the role in levels: the lists and the record; each
/// policy's version, the inline documents, the boundary's version and
/// ListRoles after a refused GetRole; then, only when something moved, the
/// documents. Asks the simulator itself only when it learns that something
/// moved and `asked_first` is false.
#[allow(clippy::too_many_arguments)]
async fn role_reads<S, F>(
    a: &Assumed,
    role: &RoleArn,
    conn: &Connection,
    past: Option<&LastRead>,
    asked_first: bool,
    actions: &str,
    simulate: &S,
    deadline: tokio::time::Instant,
) -> Piped
where
    S: Fn() -> F,
    F: Future<Output = Result<Simulation, CallError>>,
{
    let past_sim = past.and_then(|p| p.simulation.as_ref());
    let try_get_role = past.is_none_or(|p| p.get_role);

    // Level 1: the lists and the record.
    let record = async {
        if !try_get_role {
            return aws::trust_policy_listed(a, role)
                .await
                .map(|trust| Record::Listed { trust });
        }
        match aws::get_role(a, role).await {
            Ok((trust, boundary)) => Ok(Record::Got { trust, boundary }),
            Err(CallError::AccessDenied(_)) => Ok(Record::Refused),
            Err(e) => Err(e),
        }
    };
    let (lists, record) = tokio::join!(within(deadline, aws::list_policies(a, role)), within(deadline, record));

    // What the lists already show moved: the simulator need not wait for
    // the versions to hear of it.
    let boundary_arn = match &record {
        Ok(Record::Got { boundary, .. }) => boundary.clone(),
        _ => None,
    };
    let moved_in_lists = match (&lists, past) {
        (Ok(l), Some(p)) => {
            let sorted = |mut v: Vec<String>| {
                v.sort();
                v
            };
            sorted(l.attached.clone()) != sorted(p.managed.iter().map(|m| m.arn.clone()).collect())
                || sorted(l.inline.clone()) != sorted(p.inline.iter().map(|i| i.name.clone()).collect())
                || boundary_arn.as_deref() != p.boundary.as_ref().map(|b| b.arn.as_str())
                || (p.get_role && !matches!(record, Ok(Record::Got { .. })))
        }
        _ => true,
    };
    let ask_second = !asked_first && moved_in_lists;

    // Level 2: each policy's version, the inline documents, the boundary's
    // version, ListRoles after a refused GetRole.
    let (attached, inline_names) = match &lists {
        Ok(l) => (l.attached.clone(), l.inline.clone()),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let (meta_reads, inline_docs, boundary_read, listed, sim_second) = tokio::join!(
        within(
            deadline,
            aws::futures_all(attached.iter().map(|arn| aws::policy_meta_guessing(
                a,
                arn,
                guess_first(past, arn, false)
            )))
        ),
        within(
            deadline,
            aws::futures_all(inline_names.iter().map(|n| aws::inline_document(a, role, n)))
        ),
        only_if(
            boundary_arn.is_some(),
            within(
                deadline,
                aws::policy_meta_guessing(
                    a,
                    boundary_arn.as_deref().unwrap_or_default(),
                    guess_first(past, boundary_arn.as_deref().unwrap_or_default(), true)
                )
            )
        ),
        only_if(
            matches!(record, Ok(Record::Refused)),
            within(deadline, aws::trust_policy_listed(a, role))
        ),
        only_if(ask_second, simulate()),
    );

    let metas: Result<Vec<PolicyMeta>, CallError> = meta_reads
        .as_ref()
        .map(|m| m.iter().map(|r| r.meta.clone()).collect())
        .map_err(Clone::clone);
    let boundary_meta: Option<Result<PolicyMeta, CallError>> = boundary_read
        .as_ref()
        .map(|r| r.as_ref().map(|r| r.meta.clone()).map_err(Clone::clone));
    let trust = match (&record, listed) {
        (_, Some(listed)) => listed,
        (Ok(Record::Got { trust, .. } | Record::Listed { trust }), None) => Ok(trust.clone()),
        // Not reached: ListRoles follows a refused GetRole.
        (Ok(Record::Refused), None) => Err(CallError::AccessDenied(String::new())),
        (Err(e), None) => Err(e.clone()),
    };
    let boundary_seen = match (&record, &boundary_meta) {
        (Ok(Record::Got { .. }), Some(Ok(m))) => Some(BoundarySeen::Policy(m.clone())),
        (Ok(Record::Got { .. }), None) => Some(BoundarySeen::None),
        (Ok(Record::Got { .. }), Some(Err(_))) => None,
        (Ok(_), _) => Some(BoundarySeen::Unknown),
        (Err(_), _) => None,
    };
    let inline: Option<Vec<InlineRead>> = inline_docs.as_ref().ok().map(|docs| {
        inline_names
            .iter()
            .zip(docs)
            .map(|(name, doc)| InlineRead {
                name: name.clone(),
                digest: digest(doc),
            })
            .collect()
    });
    // The role's policies as read, when every read of them answered.
    let seen = match (&lists, &metas, &inline, &boundary_seen) {
        (Ok(_), Ok(metas), Some(inline), Some(boundary)) => Some(policies_digest(metas, inline, boundary)),
        _ => None,
    };
    let policies_moved = match (past, &seen) {
        (Some(p), Some(now_seen)) => p.policies_digest != *now_seen,
        _ => true,
    };

    // Nothing moved and the simulator was not due: the last verdict
    // stands, no document is read again.
    if let (Some(p), Some(policies), Some(sim), false, None, Ok(trust)) =
        (past, &seen, past_sim, asked_first, &sim_second, &trust)
    {
        if !policies_moved && p.actions_digest == actions {
            if let Some(check) = past_permissions(conn, p) {
                let read = LastRead {
                    trust_digest: trust_digest(trust),
                    policies_digest: policies.clone(),
                    simulation: Some(sim.clone()),
                    ..p.clone()
                };
                return Piped::Unchanged(Box::new(Reads {
                    trust: Ok(trust.clone()),
                    permissions: check,
                    read: Some(read),
                }));
            }
        }
    }

    // Level 3: the documents, and the simulation if it was not asked yet
    // (a role that refused it within the week, with the same policies, is
    // not asked again).
    let refused_before = past_sim.is_some_and(|s| s.refused && seen.as_deref() == Some(s.policies.as_str()));
    let ask_third = !asked_first && sim_second.is_none() && !refused_before;
    // A new policy's document came with level 2 when its default is v1:
    // then nothing of this level goes to AWS.
    let metas_ok: Vec<MetaRead> = meta_reads.clone().unwrap_or_default();
    let boundary_policy = match &boundary_read {
        Some(Ok(m)) => m.clone(),
        _ => MetaRead {
            meta: PolicyMeta::default(),
            first: None,
        },
    };
    let (docs, boundary_doc, sim_third) = tokio::join!(
        within(
            deadline,
            aws::futures_all(metas_ok.iter().map(|m| aws::default_document(a, m)))
        ),
        only_if(
            matches!(boundary_meta, Some(Ok(_))),
            within(deadline, aws::default_document(a, &boundary_policy))
        ),
        only_if(ask_third, simulate()),
    );
    Piped::Read(Box::new(Full {
        lists,
        record,
        trust,
        metas,
        inline,
        inline_docs,
        boundary_meta,
        docs,
        boundary_doc,
        seen,
        policies_moved,
        simulation: sim_second.or(sim_third),
    }))
}

/// Whether to ask for `v1`'s document beside GetPolicy: only when nothing is
/// remembered of this policy (a re-check that finds it unchanged reads no
/// document at all), and only for the customer's own policies (an AWS
/// managed policy, `arn:…:iam::aws:policy/…`, is seldom at v1). A wrong
/// guess costs one GetPolicyVersion call beside GetPolicy, not a level.
fn guess_first(past: Option<&LastRead>, arn: &str, boundary: bool) -> bool {
    let remembered = past.is_some_and(|p| {
        if boundary {
            p.boundary.as_ref().is_some_and(|b| b.arn == arn)
        } else {
            p.managed.iter().any(|m| m.arn == arn)
        }
    });
    !remembered && arn.split(':').nth(4).is_some_and(|account| account != "aws")
}

/// The trust policy's digest: of its JSON where it decodes, else of its text.
fn trust_digest(raw: &str) -> String {
    match super::trust::decode_policy(raw) {
        Ok(doc) => digest(&doc),
        Err(_) => digest(&Value::String(raw.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_ignores_key_order_and_sees_every_value() {
        let a = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*"}]});
        let b: Value =
            serde_json::from_str(r#"{"Statement":[{"Action":"s3:Get*","Effect":"Allow"}],"Version":"2012-10-17"}"#)
                .unwrap();
        assert_eq!(digest(&a), digest(&b));
        let c = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Put*"}]});
        assert_ne!(digest(&a), digest(&c));
        assert_eq!(digest(&a).len(), 32);
    }
}
