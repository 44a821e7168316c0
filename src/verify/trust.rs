//! The trust-policy audit, by asking IAM's questions rather than by
//! recognising shapes (iam-evaluation.md, "What makes a role safe"):
//! the vendor presenting this connection's external ID is allowed
//! `sts:AssumeRole`; the vendor with another ID, or none, is denied; every
//! principal outside the customer's account but the vendor is denied
//! whatever it sends; no federated identity may assume the role. Read from
//! the role itself, so the customer's CloudTrail gets no failed probe.

use super::report::{Check, CheckId};
use super::trust_probe::{Probe, Prober};
use crate::iam::{Caller, Policy, Tri};
use serde_json::Value;

/// The IDs that belong to this connection.
pub struct OurIds<'a> {
    pub current: &'a str,
    pub pending: Option<&'a str>,
    /// Earlier IDs of this connection, replaced by a rotation.
    pub previous: &'a [String],
}

impl OurIds<'_> {
    fn newest(&self) -> &str {
        self.pending.unwrap_or(self.current)
    }
    /// Issued IDs are lower-case hex after a fixed prefix, so no other
    /// connection's ID differs from ours only in case.
    fn is_ours(&self, v: &str) -> bool {
        v.eq_ignore_ascii_case(self.current) || self.pending.is_some_and(|p| v.eq_ignore_ascii_case(p))
    }
    fn is_previous(&self, v: &str) -> bool {
        self.previous.iter().any(|p| p.eq_ignore_ascii_case(v))
    }
}

pub struct TrustAudit {
    pub check: Check,
    pub pending_found: bool,
}

/// A policy document from the customer's account that is not JSON.
#[derive(Debug, thiserror::Error)]
#[error("the policy document does not parse: {0}")]
pub struct UnreadablePolicy(serde_json::Error);

/// Decodes a policy as IAM returns it: URL-encoded, or (moto) plain.
pub fn decode_policy(raw: &str) -> Result<Value, UnreadablePolicy> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_owned()
    } else {
        percent_encoding::percent_decode_str(&raw.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    serde_json::from_str(&text).map_err(UnreadablePolicy)
}

/// The statement the customer should have: the exact edit every failure ends with.
fn safe_statement(vendor_principal: &str, ids: &OurIds) -> String {
    let ext = match ids.pending {
        Some(p) => format!("[\"{}\", \"{p}\"]", ids.current),
        None => format!("\"{}\"", ids.current),
    };
    format!(
        "{{\"Effect\": \"Allow\", \"Principal\": {{\"AWS\": \"{vendor_principal}\"}}, \"Action\": \"sts:AssumeRole\", \
         \"Condition\": {{\"StringEquals\": {{\"sts:ExternalId\": {ext}}}}}}}"
    )
}

fn statements(labels: &[String]) -> String {
    match labels {
        [] => "no statement".to_owned(),
        [one] => format!("statement {one}"),
        many => format!("statements {}", many.join(", ")),
    }
}

/// "statement X lets WHO": the start of every finding about a probe.
fn lets(p: &Probe) -> String {
    sentence(format!(
        "{} lets {}",
        statements(&p.decision.allowed_by),
        p.caller.describe()
    ))
}

/// The text with its first letter upper-cased: findings start sentences.
fn sentence(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

fn unknowns(p: &Probe) -> String {
    if p.decision.unsupported.is_empty() {
        String::new()
    } else {
        format!(
            " (we cannot evaluate {}, so we count it against the role)",
            p.decision.unsupported.join("; ")
        )
    }
}

/// The trust verdict at the system's time (tables, benchmarks); the
/// verifier asks `audit_at` with the service's clock.
pub fn audit(doc: &Value, vendor_principal: &str, customer_account: &str, ids: &OurIds) -> TrustAudit {
    audit_at(doc, vendor_principal, customer_account, ids, crate::clock::now())
}

/// `audit` at `now` (unix seconds): the time IAM would see as
/// `aws:CurrentTime` and `aws:EpochTime`, from the service's clock.
pub fn audit_at(doc: &Value, vendor_principal: &str, customer_account: &str, ids: &OurIds, now: i64) -> TrustAudit {
    let canonical = safe_statement(vendor_principal, ids);
    let failed = |problems: Vec<String>, edits: Vec<String>| TrustAudit {
        check: Check::failed(
            CheckId::TrustPolicy,
            problems.join(" "),
            format!(
                "{}Make the role's trust relationship a single statement: {canonical}",
                edits.iter().map(|e| format!("{e} ")).collect::<String>()
            ),
        ),
        pending_found: false,
    };
    let policy = match Policy::parse(doc) {
        Ok(p) => p,
        Err(e) => {
            return failed(
                vec![format!("The trust policy is not one IAM evaluates: {e}.")],
                Vec::new(),
            )
        }
    };
    let prober = Prober::new(&policy, vendor_principal, customer_account, now);
    let mut problems = Vec::new();
    let mut edits = Vec::new();
    let mut warnings = Vec::new();

    // 1. The vendor with this connection's ID (or the pending one) gets in.
    let with_current = prober.vendor_with(Some(ids.current));
    let with_pending = ids.pending.map(|p| prober.vendor_with(Some(p)));
    let pending_found = with_pending.as_ref().is_some_and(|p| p.decision.allowed == Tri::True);
    if with_current.decision.allowed != Tri::True && !pending_found {
        let p = &with_current;
        if !p.decision.denied_by.is_empty() {
            problems.push(format!(
                "{} denies {vendor_principal} even with this connection's external ID, so the role can never be assumed{}.",
                sentence(statements(&p.decision.denied_by)),
                unknowns(p)
            ));
            edits.push(format!("Remove or narrow {}.", statements(&p.decision.denied_by)));
        } else if p.decision.allowed == Tri::Unknown {
            problems.push(format!(
                "We cannot tell whether {vendor_principal} may assume the role with this connection's external ID{}.",
                unknowns(p)
            ));
        } else {
            problems.push(format!(
                "No statement lets {vendor_principal} assume the role with this connection's external ID ({}).",
                ids.newest()
            ));
            edits.push(format!(
                "In \"Another AWS account\" enter {} and require the external ID {}.",
                prober.vendor_account(),
                ids.newest()
            ));
        }
    }

    // 2. The vendor with any other ID, or none, does not.
    for p in prober.vendor_without(|v| ids.is_ours(v)) {
        match p.external_id.as_deref() {
            Some(v) if ids.is_previous(v) => {
                warnings.push(format!(
                    "the trust policy still accepts the retired external ID {v}; remove it"
                ));
            }
            sent => {
                let with = match sent {
                    None => "without any external ID".to_owned(),
                    Some(v) => format!("with the external ID {v:?}, which is not this connection's"),
                };
                problems.push(format!(
                    "{} assume the role {with} (confused deputy: anyone can make the vendor use another ID){}.",
                    lets(&p),
                    unknowns(&p)
                ));
                edits.push(format!(
                    "In {}, require \"StringEquals\": {{\"sts:ExternalId\": \"{}\"}} and nothing looser.",
                    statements(&p.decision.allowed_by),
                    ids.newest()
                ));
                break;
            }
        }
    }

    // 3. Nobody else from outside gets in, whatever they send.
    if let Some(p) = prober.outsider_allowed() {
        let with = match p.external_id.as_deref() {
            None => "without an external ID".to_owned(),
            Some(v) => format!("with the external ID {v:?}"),
        };
        problems.push(format!(
            "{} assume the role {with}; the external ID is not a secret, so only {vendor_principal} may be trusted{}.",
            lets(&p),
            unknowns(&p)
        ));
        edits.push(format!(
            "Remove every principal but {vendor_principal} from {}.",
            statements(&p.decision.allowed_by)
        ));
    }

    // 4. No federated identity.
    if let Some(p) = prober.federated_allowed() {
        problems.push(format!(
            "{} assume the role ({}): every identity that provider vouches for would get the vendor's permissions{}.",
            lets(&p),
            p.action,
            unknowns(&p)
        ));
        edits.push(format!(
            "Remove {} and give those identities a role of their own.",
            statements(&p.decision.allowed_by)
        ));
    }

    // Warnings: services and the customer's own principals.
    for p in prober.insiders_allowed() {
        let who = match &p.caller {
            Caller::Service(s) => format!("the AWS service {s}"),
            other => format!("{} (your own account)", other.describe()),
        };
        warnings.push(format!(
            "{} also lets {who} assume this role and use the vendor's permissions; a separate role for it is safer",
            statements(&p.decision.allowed_by)
        ));
    }

    if !problems.is_empty() {
        return failed(problems, edits);
    }
    let check = if warnings.is_empty() {
        Check::passed(
            CheckId::TrustPolicy,
            format!("Only {vendor_principal} may assume the role, and only with this connection's external ID."),
        )
    } else {
        Check::warning(
            CheckId::TrustPolicy,
            format!("The trust policy is safe, but {}.", warnings.join("; ")),
            format!("Make the role's trust relationship a single statement: {canonical}"),
        )
    };
    TrustAudit { check, pending_found }
}

#[cfg(test)]
#[path = "trust_table.rs"]
mod table;
