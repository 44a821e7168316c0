//! Evaluating one request against a set of policies by IAM's order: an
//! explicit Deny wins, then an Allow, else the implicit deny.

use super::context::Context;
use super::policy::{Effect, Patterns, Policy, PrincipalKind, Principals, Statement};
use super::tri::Tri;
use super::wildcard::{self, Case};

/// Who makes the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An IAM principal: its account and ARN (`…:root`, a role, a user or
    /// an assumed-role session).
    Aws {
        account: String,
        arn: String,
    },
    Service(String),
    Federated(String),
    CanonicalUser(String),
}

impl Caller {
    pub fn describe(&self) -> String {
        match self {
            Caller::Aws { arn, account } if arn.ends_with(":root") => {
                format!("any principal of account {account} ({arn})")
            }
            Caller::Aws { arn, .. } => arn.clone(),
            Caller::Service(s) => format!("the service {s}"),
            Caller::Federated(f) => format!("identities federated through {f}"),
            Caller::CanonicalUser(c) => format!("the canonical user {c}"),
        }
    }
}

pub struct Request<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    /// `None` in a trust policy, where the role itself is the resource.
    pub resource: Option<&'a str>,
    pub context: &'a Context,
}

/// The verdict, and the statements that decided it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// True: IAM allows it; False: it does not; Unknown: the core cannot tell.
    pub allowed: Tri,
    /// Allow statements that (may) match.
    pub allowed_by: Vec<String>,
    /// Deny statements that (may) match.
    pub denied_by: Vec<String>,
    /// What could not be evaluated in the statements that bore on it.
    pub unsupported: Vec<String>,
}

/// Whether an entry of `Principal.AWS` names the caller.
fn aws_entry_names(entry: &str, account: &str, arn: &str) -> bool {
    if entry == "*" {
        return true;
    }
    if entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit()) {
        return entry == account;
    }
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        // A unique ID (a deleted principal) names nobody.
        return false;
    }
    if parts[5] == "root" {
        return parts[4] == account;
    }
    if entry.contains(['*', '?']) {
        return wildcard::matches(entry, arn, Case::Sensitive);
    }
    if entry == arn {
        return true;
    }
    // A role also names its sessions: arn:…:sts::A:assumed-role/NAME/SESSION.
    if let (Some(role), Some(session)) = (
        parts[5].strip_prefix("role/"),
        arn.splitn(6, ':').nth(5).and_then(|r| r.strip_prefix("assumed-role/")),
    ) {
        let name = role.rsplit('/').next().unwrap_or(role);
        let same_account = arn.split(':').nth(4) == Some(parts[4]);
        return same_account && session.split('/').next() == Some(name);
    }
    false
}

fn names(p: &Principals, caller: &Caller) -> bool {
    let list = match p {
        Principals::Everyone => return true,
        Principals::Listed(l) => l,
    };
    list.iter().any(|(kind, entry)| match (kind, caller) {
        (PrincipalKind::Aws, Caller::Aws { account, arn }) => aws_entry_names(entry, account, arn),
        (PrincipalKind::Service, Caller::Service(s)) => entry.eq_ignore_ascii_case(s),
        (PrincipalKind::Federated, Caller::Federated(f)) => entry == f,
        (PrincipalKind::CanonicalUser, Caller::CanonicalUser(c)) => entry == c,
        _ => false,
    })
}

pub(crate) fn principal_matches(s: &Statement, caller: &Caller) -> bool {
    match (&s.principal, &s.not_principal) {
        (Some(p), _) => names(p, caller),
        (None, Some(np)) => !names(np, caller),
        // No principal element: an identity policy, which applies to its holder.
        (None, None) => true,
    }
}

fn patterns_match(p: &Patterns, value: &str, case: Case) -> Tri {
    let (list, negate) = match p {
        Patterns::Only(l) => (l, false),
        Patterns::AllBut(l) => (l, true),
    };
    let mut any = Tri::False;
    for pat in list {
        any = any.or(if pat.contains("${") {
            Tri::Unknown
        } else {
            Tri::from(wildcard::matches(pat, value, case))
        });
    }
    if negate {
        any.not()
    } else {
        any
    }
}

/// Whether the statement's principal, action and resource fit the request,
/// its conditions aside.
pub fn applies_before_conditions(s: &Statement, r: &Request) -> Tri {
    if !principal_matches(s, r.caller) {
        return Tri::False;
    }
    let m = patterns_match(&s.actions, r.action, Case::Insensitive);
    match (&s.resources, r.resource) {
        (Some(res), Some(value)) => m.and(patterns_match(res, value, Case::Sensitive)),
        _ => m,
    }
}

/// Whether the statement applies to the request.
pub fn statement_matches(s: &Statement, r: &Request) -> Tri {
    let m = applies_before_conditions(s, r);
    if m == Tri::False {
        return m;
    }
    m.and(s.condition.eval(r.context))
}

pub fn evaluate(policies: &[&Policy], r: &Request) -> Decision {
    let mut allow = Tri::False;
    let mut deny = Tri::False;
    let mut d = Decision {
        allowed: Tri::False,
        allowed_by: Vec::new(),
        denied_by: Vec::new(),
        unsupported: Vec::new(),
    };
    for s in policies.iter().flat_map(|p| p.statements.iter()) {
        let m = statement_matches(s, r);
        if !m.possible() {
            continue;
        }
        if m == Tri::Unknown {
            d.unsupported
                .extend(s.unsupported.iter().map(|u| format!("statement {}: {u}", s.label)));
        }
        match s.effect {
            Effect::Allow => {
                allow = allow.or(m);
                d.allowed_by.push(s.label.clone());
            }
            Effect::Deny => {
                deny = deny.or(m);
                d.denied_by.push(s.label.clone());
            }
        }
    }
    d.allowed = allow.and(deny.not());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role_session() -> Caller {
        Caller::Aws {
            account: "111122223333".into(),
            arn: "arn:aws:sts::111122223333:assumed-role/App/s1".into(),
        }
    }

    #[test]
    fn principals_name_who_iam_says() {
        let arn = "arn:aws:sts::111122223333:assumed-role/App/s1";
        for (entry, yes) in [
            ("*", true),
            ("111122223333", true),
            ("arn:aws:iam::111122223333:root", true),
            ("arn:aws:iam::111122223333:role/App", true),
            ("arn:aws:iam::111122223333:role/path/App", true),
            ("arn:aws:iam::111122223333:role/Other", false),
            ("arn:aws:iam::999999999999:root", false),
            ("AROAEXAMPLEID", false),
        ] {
            assert_eq!(aws_entry_names(entry, "111122223333", arn), yes, "{entry}");
        }
    }

    #[test]
    fn deny_wins_and_unknown_stays_unknown() {
        let p = Policy::parse(&json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"},
            {"Sid": "D", "Effect": "Deny", "Principal": "*", "Action": "sts:*", "Condition": {"StringNotEquals": {"sts:ExternalId": "x"}}}
        ]}))
        .unwrap();
        let caller = role_session();
        let mut ctx = Context::default();
        let req = |ctx: &Context| {
            evaluate(
                &[&p],
                &Request {
                    caller: &caller,
                    action: "sts:AssumeRole",
                    resource: None,
                    context: ctx,
                },
            )
            .allowed
        };
        assert_eq!(req(&ctx), Tri::False, "absent key satisfies StringNotEquals");
        ctx.set("sts:ExternalId", vec!["x".into()]);
        assert_eq!(req(&ctx), Tri::True);
        let odd = Policy::parse(&json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole", "Condition": {"Odd": {"k": "v"}}}
        ]}))
        .unwrap();
        let d = evaluate(
            &[&odd],
            &Request {
                caller: &caller,
                action: "sts:AssumeRole",
                resource: None,
                context: &ctx,
            },
        );
        assert_eq!(d.allowed, Tri::Unknown);
        assert_eq!(d.unsupported, ["statement #1: the condition operator Odd"]);
    }
}
