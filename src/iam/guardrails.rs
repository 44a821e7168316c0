//! An organization's guardrails by IAM's rules: service control policies
//! (SCPs) bound what the account's principals may do, resource control
//! policies (RCPs) what anyone may do to the account's resources.
//!
//! - An SCP allows an action only if every level of the account's path (the
//!   root, each OU, the account) has an Allow for it, and no level has a
//!   Deny: a Deny anywhere wins.
//! - An RCP only denies (`RCPFullAWSAccess` is attached at every level and
//!   cannot be detached), and only for the services RCPs support.
//! - Neither applies to the management account.
//!
//! A required action may itself be a wildcard (`ec2:Describe*`): an Allow
//! must cover all of it, a Deny that touches any of it takes it away.
//! Conditions are evaluated against the request Spot would make; a key
//! whose value Spot cannot know makes the answer `Unknown` (conditional).

use super::context::Context;
use super::eval::{principal_matches, Caller};
use super::policy::{Effect, Patterns, Policy, Statement};
use super::tri::Tri;
use super::wildcard::{covers, overlaps, Case};

/// The services whose resources RCPs govern (AWS Organizations user
/// guide, "Resource control policies": S3, STS, KMS, SQS and Secrets
/// Manager at launch, then ECR, OpenSearch Serverless, Cognito user pools
/// and CloudWatch Logs). An RCP statement on any other service has no effect.
pub const RCP_SERVICES: &[&str] = &[
    "aoss",
    "cognito-idp",
    "ecr",
    "kms",
    "logs",
    "s3",
    "secretsmanager",
    "sqs",
    "sts",
];

/// Whether RCPs govern `action` (by its service prefix).
pub fn rcp_applies(action: &str) -> bool {
    let service = action.split(':').next().unwrap_or_default().to_ascii_lowercase();
    RCP_SERVICES.contains(&service.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Scp,
    Rcp,
}

/// One policy attached at one level, parsed once.
#[derive(Debug, Clone)]
pub struct Attached {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    /// Shared: the same document is attached at many levels.
    pub policy: std::sync::Arc<Policy>,
}

/// One level of an account's path and the policies attached to it directly.
#[derive(Debug, Clone)]
pub struct Level {
    pub id: String,
    pub policies: Vec<Attached>,
}

/// What Spot's request would be: who asks, for what, and its context.
pub struct Want<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    /// The resources the action is wanted on (`*` for any).
    pub resources: &'a [String],
    pub context: &'a Context,
}

/// A statement that (may) decide: where it is, and how surely it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub level: usize,
    pub policy: usize,
    /// The statement's Sid or position.
    pub statement: String,
    /// True: applies; Unknown: applies depending on a value Spot cannot know.
    pub applies: Tri,
    /// The statement's condition, in words, when it has one.
    pub condition: Option<String>,
}

/// The verdict for one request, and the statements or levels behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// True: the guardrails let it through; False: they block it; Unknown:
    /// it depends on a value Spot cannot know.
    pub allowed: Tri,
    /// Deny statements that (may) apply.
    pub denies: Vec<Hit>,
    /// SCPs: levels where no Allow surely covers it (False: none at all;
    /// Unknown: only conditionally), by level index.
    pub not_allowed: Vec<(usize, Tri, Vec<Hit>)>,
}

impl Outcome {
    fn exempt() -> Outcome {
        Outcome {
            allowed: Tri::True,
            denies: Vec::new(),
            not_allowed: Vec::new(),
        }
    }
}

/// Whether one of the patterns passes `test`; a pattern with a policy
/// variable (`${…}`) might, or might not.
fn any_pattern(l: &[String], test: impl Fn(&str) -> bool) -> Tri {
    l.iter().fold(Tri::False, |any, x| {
        any.or(if x.contains("${") {
            Tri::Unknown
        } else {
            Tri::from(test(x))
        })
    })
}

/// Whether the patterns cover every value `want` names.
fn covers_all(p: &Patterns, want: &str, case: Case) -> Tri {
    match p {
        Patterns::Only(l) => any_pattern(l, |x| covers(x, want, case)),
        Patterns::AllBut(l) => Tri::from(!l.iter().any(|x| overlaps(x, want, case))),
    }
}

/// Whether the patterns name some value `want` names.
fn touches(p: &Patterns, want: &str, case: Case) -> Tri {
    match p {
        Patterns::Only(l) => any_pattern(l, |x| overlaps(x, want, case)),
        Patterns::AllBut(l) => Tri::from(!l.iter().any(|x| covers(x, want, case))),
    }
}

/// The statement's conditions, as the policy writes them.
pub fn condition_text(s: &Statement) -> Option<String> {
    if s.condition.clauses.is_empty() {
        return None;
    }
    let parts: Vec<String> = s
        .condition
        .clauses
        .iter()
        .map(|c| format!("{} {} {:?}", c.operator_name, c.key, c.values))
        .collect();
    Some(parts.join(" and "))
}

/// How surely statement `s` applies to `w`: a Deny applies if it touches
/// any of the wanted actions and resources, an Allow only if it covers all.
fn applies(s: &Statement, w: &Want) -> Tri {
    if !principal_matches(s, w.caller) {
        return Tri::False;
    }
    let f = match s.effect {
        Effect::Deny => touches,
        Effect::Allow => covers_all,
    };
    let mut m = f(&s.actions, w.action, Case::Insensitive);
    if let Some(res) = &s.resources {
        let each = w.resources.iter().map(|r| f(res, r, Case::Sensitive));
        m = m.and(match s.effect {
            Effect::Deny => each.fold(Tri::False, Tri::or),
            Effect::Allow => each.fold(Tri::True, Tri::and),
        });
    }
    if m == Tri::False {
        return m;
    }
    m.and(s.condition.eval(w.context))
}

fn hits(path: &[Level], kind: Kind, effect: Effect, w: &Want, level: Option<usize>) -> Vec<Hit> {
    let mut out = Vec::new();
    for (li, l) in path.iter().enumerate() {
        if level.is_some_and(|x| x != li) {
            continue;
        }
        for (pi, p) in l.policies.iter().enumerate().filter(|(_, p)| p.kind == kind) {
            for s in p.policy.statements.iter().filter(|s| s.effect == effect) {
                let a = applies(s, w);
                if a.possible() {
                    out.push(Hit {
                        level: li,
                        policy: pi,
                        statement: s.label.clone(),
                        applies: a,
                        condition: condition_text(s),
                    });
                }
            }
        }
    }
    out
}

fn any(h: &[Hit]) -> Tri {
    h.iter().fold(Tri::False, |acc, h| acc.or(h.applies))
}

/// The SCPs' verdict on `w` for an account whose path (root first, the
/// account last) is `path`.
pub fn scp(path: &[Level], management: bool, w: &Want) -> Outcome {
    if management {
        return Outcome::exempt();
    }
    let denies = hits(path, Kind::Scp, Effect::Deny, w, None);
    let mut allowed = any(&denies).not();
    let mut not_allowed = Vec::new();
    for li in 0..path.len() {
        let allows = hits(path, Kind::Scp, Effect::Allow, w, Some(li));
        let here = any(&allows);
        allowed = allowed.and(here);
        if here != Tri::True {
            not_allowed.push((li, here, allows));
        }
    }
    if path.is_empty() {
        // No level read: nothing says it is allowed.
        allowed = Tri::False;
    }
    Outcome {
        allowed,
        denies,
        not_allowed,
    }
}

/// The RCPs' verdict on `w` for the resources of an account whose path is
/// `path`: only a Deny counts, and only for the services RCPs support.
pub fn rcp(path: &[Level], management: bool, w: &Want) -> Outcome {
    if management || !rcp_applies(w.action) {
        return Outcome::exempt();
    }
    let denies = hits(path, Kind::Rcp, Effect::Deny, w, None);
    Outcome {
        allowed: any(&denies).not(),
        denies,
        not_allowed: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn level(id: &str, docs: &[(Kind, serde_json::Value)]) -> Level {
        Level {
            id: id.into(),
            policies: docs
                .iter()
                .enumerate()
                .map(|(i, (k, d))| Attached {
                    id: format!("p-{i}"),
                    name: format!("P{i}"),
                    kind: *k,
                    policy: std::sync::Arc::new(Policy::parse(d).unwrap()),
                })
                .collect(),
        }
    }

    fn full() -> (Kind, serde_json::Value) {
        (
            Kind::Scp,
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
        )
    }

    fn role() -> Caller {
        Caller::Aws {
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:role/Spot".into(),
        }
    }

    #[test]
    fn a_region_lock_is_denied_outside_and_unknown_keys_are_conditional() {
        let lock = (
            Kind::Scp,
            json!({"Statement": {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}}}}),
        );
        let path = [
            level("r-1", &[full()]),
            level("ou-1", &[full(), lock]),
            level("1", &[full()]),
        ];
        let caller = role();
        let res = vec!["*".to_owned()];
        let at = |region: &str, action: &str| {
            let mut ctx = Context::open();
            ctx.set("aws:RequestedRegion", vec![region.into()]);
            scp(
                &path,
                false,
                &Want {
                    caller: &caller,
                    action,
                    resources: &res,
                    context: &ctx,
                },
            )
            .allowed
        };
        assert_eq!(at("eu-west-1", "ec2:DescribeInstances"), Tri::True);
        assert_eq!(at("us-east-1", "ec2:DescribeInstances"), Tri::False);
        assert_eq!(at("us-east-1", "iam:GetRole"), Tri::True);
        assert_eq!(at("us-east-1", "iam:*"), Tri::True);
        assert_eq!(at("us-east-1", "*"), Tri::False);
        // The region not known: conditional.
        let ctx = Context::open();
        let o = scp(
            &path,
            false,
            &Want {
                caller: &caller,
                action: "ec2:DescribeInstances",
                resources: &res,
                context: &ctx,
            },
        );
        assert_eq!(o.allowed, Tri::Unknown);
        assert_eq!(
            o.denies[0].condition.as_deref(),
            Some("StringNotEquals aws:RequestedRegion [\"eu-west-1\"]")
        );
    }
}
