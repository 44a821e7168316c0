//! Property tests of the guardrail evaluator over generated SCP and RCP
//! hierarchies, against a small reference evaluator written here from the
//! rules alone (AWS Organizations user guide): an SCP allows only if every
//! level allows and none denies; an RCP only denies, and only for its
//! services; neither applies to the management account.

use super::context::Context;
use super::eval::Caller;
use super::guardrails::{rcp, scp, Attached, Kind, Level, Want};
use super::policy::Policy;
use super::tri::Tri;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;

/// Patterns policies are generated from.
const PATTERNS: &[&str] = &[
    "*",
    "ec2:*",
    "ec2:Describe*",
    "ec2:RunInstances",
    "s3:*",
    "s3:GetObject",
    "kms:*",
    "sts:AssumeRole",
    "iam:*",
    "logs:Put*",
];
/// Concrete actions asked about.
const ACTIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:RunInstances",
    "s3:GetObject",
    "s3:ListBucket",
    "kms:Decrypt",
    "sts:AssumeRole",
    "iam:GetRole",
    "logs:PutLogEvents",
    "cloudwatch:GetMetricData",
];
const REGIONS: &[&str] = &["us-east-1", "eu-west-1"];

/// One generated statement, kept as plain data for the reference.
#[derive(Debug, Clone)]
struct Gen {
    deny: bool,
    not_action: bool,
    actions: Vec<usize>,
    /// None; Some((negated, region)): String(Not)Equals aws:RequestedRegion.
    region: Option<(bool, usize)>,
}

#[derive(Debug, Clone)]
struct GenPolicy {
    rcp: bool,
    statements: Vec<Gen>,
}

fn statement() -> impl Strategy<Value = Gen> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::collection::vec(0..PATTERNS.len(), 1..3),
        prop::option::weighted(0.3, (any::<bool>(), 0..REGIONS.len())),
    )
        .prop_map(|(deny, not_action, actions, region)| Gen {
            deny,
            not_action,
            actions,
            region,
        })
}

fn policy() -> impl Strategy<Value = GenPolicy> {
    (any::<bool>(), prop::collection::vec(statement(), 1..3))
        .prop_map(|(rcp, statements)| GenPolicy { rcp, statements })
}

/// A path: the root, up to three OUs, the account; each level's policies.
fn hierarchy() -> impl Strategy<Value = Vec<Vec<GenPolicy>>> {
    prop::collection::vec(prop::collection::vec(policy(), 0..3), 2..6)
}

fn document(p: &GenPolicy) -> Value {
    let sts: Vec<Value> = p
        .statements
        .iter()
        .map(|s| {
            let actions: Vec<&str> = s.actions.iter().map(|i| PATTERNS[*i]).collect();
            let mut v = json!({"Effect": if s.deny {"Deny"} else {"Allow"}, "Resource": "*"});
            v[if s.not_action { "NotAction" } else { "Action" }] = json!(actions);
            if p.rcp {
                v["Principal"] = json!("*");
            }
            if let Some((neg, r)) = s.region {
                let op = if neg { "StringNotEquals" } else { "StringEquals" };
                v["Condition"] = json!({op: {"aws:RequestedRegion": REGIONS[r]}});
            }
            v
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": sts})
}

fn levels(h: &[Vec<GenPolicy>]) -> Vec<Level> {
    h.iter()
        .enumerate()
        .map(|(li, ps)| Level {
            id: format!("level-{li}"),
            policies: ps
                .iter()
                .enumerate()
                .map(|(pi, p)| Attached {
                    id: format!("p-{li}-{pi}"),
                    name: format!("P{li}{pi}"),
                    kind: if p.rcp { Kind::Rcp } else { Kind::Scp },
                    policy: Arc::new(Policy::parse(&document(p)).unwrap()),
                })
                .collect(),
        })
        .collect()
}

// ---- the reference, from the rules alone ----

/// Glob match, recursive: fine for these short patterns.
fn glob(p: &[u8], t: &[u8]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], t) || (!t.is_empty() && glob(p, &t[1..])),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &t[1..]),
        _ => false,
    }
}

fn ref_matches(s: &Gen, action: &str, region: &str) -> bool {
    let named = s
        .actions
        .iter()
        .any(|i| glob(PATTERNS[*i].as_bytes(), action.as_bytes()));
    let action_ok = named != s.not_action;
    let cond_ok = match s.region {
        None => true,
        Some((neg, r)) => (REGIONS[r] == region) != neg,
    };
    action_ok && cond_ok
}

fn ref_scp(h: &[Vec<GenPolicy>], management: bool, action: &str, region: &str) -> bool {
    if management {
        return true;
    }
    let scps = |l: &Vec<GenPolicy>| {
        l.iter()
            .filter(|p| !p.rcp)
            .flat_map(|p| p.statements.iter())
            .cloned()
            .collect::<Vec<_>>()
    };
    let denied = h
        .iter()
        .flat_map(scps)
        .any(|s| s.deny && ref_matches(&s, action, region));
    let every_level = h
        .iter()
        .all(|l| scps(l).iter().any(|s| !s.deny && ref_matches(s, action, region)));
    every_level && !denied
}

const RCP_SUPPORTED: &[&str] = &[
    "s3",
    "sts",
    "kms",
    "sqs",
    "secretsmanager",
    "ecr",
    "aoss",
    "cognito-idp",
    "logs",
];

fn ref_rcp(h: &[Vec<GenPolicy>], management: bool, action: &str, region: &str) -> bool {
    let service = action.split(':').next().unwrap();
    if management || !RCP_SUPPORTED.contains(&service) {
        return true;
    }
    !h.iter()
        .flatten()
        .filter(|p| p.rcp)
        .flat_map(|p| p.statements.iter())
        .any(|s| s.deny && ref_matches(s, action, region))
}

// ---- the evaluator under test ----

fn ours(path: &[Level], management: bool, action: &str, region: &str, rcps: bool) -> Tri {
    let caller = Caller::Aws {
        account: "111122223333".into(),
        arn: "arn:aws:iam::111122223333:role/Spot".into(),
    };
    let mut ctx = Context::open();
    ctx.set("aws:RequestedRegion", vec![region.into()]);
    let res = ["*".to_owned()];
    let w = Want {
        caller: &caller,
        action,
        resources: &res,
        context: &ctx,
    };
    if rcps {
        rcp(path, management, &w).allowed
    } else {
        scp(path, management, &w).allowed
    }
}

fn full_access(rcp: bool) -> GenPolicy {
    GenPolicy {
        rcp,
        statements: vec![Gen {
            deny: false,
            not_action: false,
            actions: vec![0],
            region: None,
        }],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every verdict, SCP and RCP, in every region, for every action,
    /// member or management account, is the reference's.
    #[test]
    fn verdicts_agree_with_the_reference(h in hierarchy(), management in prop::bool::weighted(0.15)) {
        let path = levels(&h);
        for action in ACTIONS {
            for region in REGIONS {
                let want = Tri::from(ref_scp(&h, management, action, region));
                prop_assert_eq!(ours(&path, management, action, region, false), want, "SCP {} in {}", action, region);
                let want = Tri::from(ref_rcp(&h, management, action, region));
                prop_assert_eq!(ours(&path, management, action, region, true), want, "RCP {} in {}", action, region);
            }
        }
    }

    /// Taking the only Allow away from any one level blocks every action
    /// below it, whatever the other levels allow.
    #[test]
    fn every_level_must_allow(depth in 2usize..6, bare in 0usize..6) {
        let bare = bare % depth;
        let h: Vec<Vec<GenPolicy>> = (0..depth)
            .map(|i| if i == bare { vec![] } else { vec![full_access(false)] })
            .collect();
        let path = levels(&h);
        for action in ACTIONS {
            prop_assert_eq!(ours(&path, false, action, REGIONS[0], false), Tri::False, "level {} of {}", bare, depth);
            prop_assert_eq!(ours(&path, true, action, REGIONS[0], false), Tri::True, "the management account is exempt");
        }
    }

    /// A Deny at any level wins over Allows everywhere; in RCPs only for
    /// the services RCPs govern.
    #[test]
    fn any_deny_wins(depth in 2usize..6, at in 0usize..6, pattern in 0..PATTERNS.len(), rcps in any::<bool>()) {
        let at = at % depth;
        let deny = GenPolicy {
            rcp: rcps,
            statements: vec![Gen { deny: true, not_action: false, actions: vec![pattern], region: None }],
        };
        let h: Vec<Vec<GenPolicy>> = (0..depth)
            .map(|i| {
                let mut l = vec![full_access(false), full_access(true)];
                if i == at {
                    l.push(deny.clone());
                }
                l
            })
            .collect();
        let path = levels(&h);
        for action in ACTIONS {
            let named = glob(PATTERNS[pattern].as_bytes(), action.as_bytes());
            let service = action.split(':').next().unwrap();
            let blocked = named && (!rcps || RCP_SUPPORTED.contains(&service));
            prop_assert_eq!(ours(&path, false, action, REGIONS[0], rcps), Tri::from(!blocked), "{} at level {}", action, at);
            prop_assert_eq!(ours(&path, true, action, REGIONS[0], rcps), Tri::True, "management exempt");
        }
    }
}
