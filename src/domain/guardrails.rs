//! What an organization's guardrails (SCPs and RCPs) do to one member
//! account: the required actions they deny or make conditional, and whether
//! Spot can assume the member's role, each named by policy and level. Pure:
//! the organization service reads the policies, `crate::iam::guardrails`
//! evaluates, this names.

use super::{AccountId, Partition};
use crate::iam::guardrails::{self, Kind, Level, Outcome, Want};
use crate::iam::{Caller, Context, Tri};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PolicyType {
    ServiceControlPolicy,
    ResourceControlPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetType {
    Root,
    OrganizationalUnit,
    Account,
}

impl TargetType {
    pub fn of(id: &str) -> TargetType {
        if id.starts_with("r-") {
            TargetType::Root
        } else if id.starts_with("ou-") {
            TargetType::OrganizationalUnit
        } else {
            TargetType::Account
        }
    }
    fn words(self) -> &'static str {
        match self {
            TargetType::Root => "the root",
            TargetType::OrganizationalUnit => "the organizational unit",
            TargetType::Account => "the account",
        }
    }
}

/// How a policy blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum BlockKind {
    /// A Deny statement of the policy applies.
    Deny,
    /// No SCP attached at this level allows the actions (every level must).
    NoAllow,
}

/// One policy at one level and what it blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailBlock {
    /// Absent for `noAllow` at a level with no SCP attached at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    pub policy_type: PolicyType,
    /// The root, OU or account the policy is attached to.
    pub target_id: String,
    pub target_type: TargetType,
    pub kind: BlockKind,
    /// The required actions it blocks (or may block, when conditional).
    pub actions: Vec<String>,
    /// Only in these regions; empty: in every region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Set when it blocks depending on a value Spot cannot know: the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl GuardrailBlock {
    /// The block in a sentence, with what to change.
    pub fn describe(&self) -> String {
        let kind = match self.policy_type {
            PolicyType::ServiceControlPolicy => "service control policy",
            PolicyType::ResourceControlPolicy => "resource control policy",
        };
        let policy = match (&self.policy_name, &self.policy_id) {
            (Some(n), Some(id)) => format!("the {kind} {n} ({id})"),
            _ => format!("no {kind}"),
        };
        let at = format!("{} {}", self.target_type.words(), self.target_id);
        let what = match self.kind {
            BlockKind::Deny => format!("{policy} attached to {at} denies"),
            BlockKind::NoAllow => format!("{policy} attached to {at} allows none of"),
        };
        let mut s = format!("{what} {}", self.actions.join(", "));
        if !self.regions.is_empty() {
            s.push_str(&format!(" in {}", self.regions.join(", ")));
        }
        if let Some(c) = &self.condition {
            s.push_str(&format!(" when {c}"));
        }
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = GuardrailVerdict)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Depends on a value Spot cannot know (see the blocks' conditions).
    Conditional,
}

impl From<Tri> for Verdict {
    fn from(t: Tri) -> Self {
        match t {
            Tri::True => Verdict::Allowed,
            Tri::False => Verdict::Denied,
            Tri::Unknown => Verdict::Conditional,
        }
    }
}

/// The guardrails' verdicts for one member account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountGuardrails {
    /// Whether the RCPs let Spot's principal assume the member's role.
    pub assume_role: Verdict,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assume_role_blocked_by: Vec<GuardrailBlock>,
    /// Required actions the guardrails deny.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<GuardrailBlock>,
    /// Required actions they deny depending on a value Spot cannot know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditional: Vec<GuardrailBlock>,
}

impl AccountGuardrails {
    /// Nothing blocks, nothing may.
    pub fn clear(&self) -> bool {
        self.assume_role == Verdict::Allowed && self.denied.is_empty() && self.conditional.is_empty()
    }

    /// They block what Spot needs (its AssumeRole, or a required action):
    /// a connected member so blocked is `degraded`.
    pub fn blocks(&self) -> bool {
        self.assume_role == Verdict::Denied || !self.denied.is_empty()
    }

    /// Why the member cannot connect, or lacks permissions, in words.
    pub fn reason(&self) -> Option<String> {
        if self.assume_role == Verdict::Denied {
            let by: Vec<String> = self.assume_role_blocked_by.iter().map(|b| b.describe()).collect();
            return Some(format!(
                "Spot cannot assume this account's role: {}. Exempt Spot's principal from that policy (or detach it from that level).",
                by.join("; ")
            ));
        }
        if !self.denied.is_empty() {
            let by: Vec<String> = self.denied.iter().map(|b| b.describe()).collect();
            return Some(format!(
                "The organization's guardrails deny actions Spot needs: {}. Change or detach that policy at that level, or exempt the role from it.",
                by.join("; ")
            ));
        }
        None
    }
}

/// The request Spot would make, for one member account.
pub struct Subject<'a> {
    pub partition: Partition,
    pub account: &'a AccountId,
    /// The organization's id (`o-…`).
    pub organization_id: &'a str,
    /// The member's role, which makes the required calls and which Spot assumes.
    pub role_arn: &'a str,
    /// Spot's principal in the partition (who calls sts:AssumeRole).
    pub vendor_principal: &'a str,
    /// The required actions, each with the resources it is wanted on.
    pub required: &'a [(String, Vec<String>)],
    /// The regions Spot calls.
    pub regions: &'a [&'a str],
    pub management: bool,
}

/// Services whose calls name the partition's home region.
const GLOBAL_SERVICES: &[&str] = &[
    "iam",
    "organizations",
    "route53",
    "cloudfront",
    "budgets",
    "ce",
    "cur",
    "support",
];

/// Keys a call from Spot surely lacks (no MFA, no VPC, not through a service).
const ABSENT: &[&str] = &[
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:MultiFactorAuthPresent",
    "aws:MultiFactorAuthAge",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:VpcSourceIp",
    "aws:FederatedProvider",
];

fn base_context(s: &Subject, region: &str, org_path: &str) -> Context {
    let mut c = Context::open();
    for k in ABSENT {
        c.set_absent(k);
    }
    let one = |v: &str| vec![v.to_owned()];
    c.set("aws:RequestedRegion", one(region));
    c.set("aws:SecureTransport", one("true"));
    c.set("aws:PrincipalIsAWSService", one("false"));
    c.set("aws:ViaAWSService", one("false"));
    c.set("aws:ResourceAccount", one(s.account.as_str()));
    c.set("aws:ResourceOrgID", one(s.organization_id));
    c.set("aws:ResourceOrgPaths", one(org_path));
    c
}

/// The member role's own request (SCPs; RCPs on its own account's resources).
fn member_context(s: &Subject, region: &str, org_path: &str) -> Context {
    let mut c = base_context(s, region, org_path);
    let one = |v: &str| vec![v.to_owned()];
    c.set("aws:PrincipalArn", one(s.role_arn));
    c.set("aws:PrincipalAccount", one(s.account.as_str()));
    c.set("aws:PrincipalOrgID", one(s.organization_id));
    c.set("aws:PrincipalOrgPaths", one(org_path));
    c.set("aws:PrincipalType", one("AssumedRole"));
    c
}

/// Spot's sts:AssumeRole: a principal of Spot's account, outside the organization.
fn vendor_context(s: &Subject, region: &str, org_path: &str) -> Context {
    let mut c = base_context(s, region, org_path);
    let account = s.vendor_principal.split(':').nth(4).unwrap_or_default();
    c.set("aws:PrincipalAccount", vec![account.to_owned()]);
    c.set_absent("aws:PrincipalOrgID");
    c.set_absent("aws:PrincipalOrgPaths");
    if !s.vendor_principal.ends_with(":root") {
        // A named principal; a `:root` principal is some identity of the account.
        c.set("aws:PrincipalArn", vec![s.vendor_principal.to_owned()]);
    }
    c
}

fn role_caller(s: &Subject) -> Caller {
    Caller::Aws {
        account: s.account.as_str().to_owned(),
        arn: s.role_arn.to_owned(),
    }
}

fn vendor_caller(s: &Subject) -> Caller {
    Caller::Aws {
        account: s.vendor_principal.split(':').nth(4).unwrap_or_default().to_owned(),
        arn: s.vendor_principal.to_owned(),
    }
}

/// The organization path of the account (`o-x/r-x/ou-x/`), as the
/// `aws:PrincipalOrgPaths` key holds it.
fn org_path(s: &Subject, path: &[Level]) -> String {
    let mut p = format!("{}/", s.organization_id);
    for l in path.iter().filter(|l| !l.id.chars().all(|c| c.is_ascii_digit())) {
        p.push_str(&l.id);
        p.push('/');
    }
    p
}

fn mentions_region(path: &[Level]) -> bool {
    path.iter()
        .flat_map(|l| &l.policies)
        .flat_map(|p| &p.policy.statements)
        .flat_map(|s| &s.condition.clauses)
        .any(|c| c.key_lower == "aws:requestedregion")
}

/// A block before its actions and regions are gathered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: Kind,
    level: usize,
    policy: Option<usize>,
    block: BlockKind,
    condition: Option<String>,
}

#[derive(Default)]
struct Gather {
    /// (key, action) -> regions.
    by_action: BTreeMap<(Key, String), BTreeSet<String>>,
}

impl Gather {
    fn add(&mut self, k: Key, action: &str, region: &str) {
        self.by_action
            .entry((k, action.to_owned()))
            .or_default()
            .insert(region.to_owned());
    }

    /// One entry per outcome that blocks (`Tri::False`) or may (`Unknown`).
    fn outcome(&mut self, kind: Kind, path: &[Level], o: &Outcome, action: &str, region: &str) {
        let want = o.allowed;
        if want == Tri::True {
            return;
        }
        // A surely blocked request names only what surely blocks it.
        let sure = want == Tri::False;
        for d in &o.denies {
            if (d.applies == Tri::True) == sure {
                let condition =
                    (!sure).then(|| d.condition.clone().unwrap_or_else(|| "a value Spot cannot know".into()));
                self.add(
                    Key {
                        kind,
                        level: d.level,
                        policy: Some(d.policy),
                        block: BlockKind::Deny,
                        condition,
                    },
                    action,
                    region,
                );
            }
        }
        for (level, here, allows) in &o.not_allowed {
            if (*here == Tri::False) != sure {
                continue;
            }
            let scps: Vec<usize> = path[*level]
                .policies
                .iter()
                .enumerate()
                .filter(|(_, p)| p.kind == kind)
                .map(|(i, _)| i)
                .collect();
            let condition = (!sure).then(|| {
                let c: Vec<String> = allows.iter().filter_map(|h| h.condition.clone()).collect();
                if c.is_empty() {
                    "a value Spot cannot know".to_owned()
                } else {
                    c.join(" or ")
                }
            });
            let policies: Vec<Option<usize>> = if scps.is_empty() {
                vec![None]
            } else {
                scps.into_iter().map(Some).collect()
            };
            for p in policies {
                self.add(
                    Key {
                        kind,
                        level: *level,
                        policy: p,
                        block: BlockKind::NoAllow,
                        condition: condition.clone(),
                    },
                    action,
                    region,
                );
            }
        }
    }

    /// Blocks, each with the actions blocked in the same regions.
    fn blocks(self, path: &[Level], all_regions: &BTreeSet<String>) -> (Vec<GuardrailBlock>, Vec<GuardrailBlock>) {
        let mut grouped: BTreeMap<(Key, Vec<String>), Vec<String>> = BTreeMap::new();
        for ((k, action), regions) in self.by_action {
            let regions: Vec<String> = if &regions == all_regions {
                Vec::new()
            } else {
                regions.into_iter().collect()
            };
            grouped.entry((k, regions)).or_default().push(action);
        }
        let (mut denied, mut conditional) = (Vec::new(), Vec::new());
        for ((k, regions), actions) in grouped {
            let level = &path[k.level];
            let policy = k.policy.map(|i| &level.policies[i]);
            let b = GuardrailBlock {
                policy_id: policy.map(|p| p.id.clone()),
                policy_name: policy.map(|p| p.name.clone()),
                policy_type: match k.kind {
                    Kind::Scp => PolicyType::ServiceControlPolicy,
                    Kind::Rcp => PolicyType::ResourceControlPolicy,
                },
                target_id: level.id.clone(),
                target_type: TargetType::of(&level.id),
                kind: k.block,
                actions,
                regions,
                condition: k.condition.clone(),
            };
            if k.condition.is_some() {
                conditional.push(b);
            } else {
                denied.push(b);
            }
        }
        (denied, conditional)
    }
}

/// The guardrails' verdicts for the account whose path (root first, the
/// account last) is `path`.
pub fn assess(path: &[Level], s: &Subject) -> AccountGuardrails {
    let org_path = org_path(s, path);
    let home = s.partition.sts_region();
    let regional = mentions_region(path);
    let regions: Vec<&str> = if regional && !s.regions.is_empty() {
        s.regions.to_vec()
    } else {
        vec![home]
    };
    let all: BTreeSet<String> = regions.iter().map(|r| (*r).to_owned()).collect();
    let role = role_caller(s);
    let mut g = Gather::default();
    for (action, resources) in s.required {
        let service = action.split(':').next().unwrap_or_default().to_ascii_lowercase();
        let global = GLOBAL_SERVICES.contains(&service.as_str());
        // A global service's calls name its home region, whichever Spot is in.
        let asked: Vec<&str> = if global { vec![home] } else { regions.clone() };
        for region in asked {
            let ctx = member_context(s, region, &org_path);
            let w = Want {
                caller: &role,
                action,
                resources,
                context: &ctx,
            };
            let scp = guardrails::scp(path, s.management, &w);
            let rcp = guardrails::rcp(path, s.management, &w);
            let stands_for: Vec<&str> = if global { regions.clone() } else { vec![region] };
            for r in stands_for {
                g.outcome(Kind::Scp, path, &scp, action, r);
                g.outcome(Kind::Rcp, path, &rcp, action, r);
            }
        }
    }
    let (denied, conditional) = g.blocks(path, &all);

    // Spot's sts:AssumeRole of the member's role: RCPs only (SCPs bound the
    // organization's own principals, and Spot's is not one).
    let vendor = vendor_caller(s);
    let ctx = vendor_context(s, home, &org_path);
    let role_resource = [s.role_arn.to_owned()];
    let w = Want {
        caller: &vendor,
        action: "sts:AssumeRole",
        resources: &role_resource,
        context: &ctx,
    };
    let o = guardrails::rcp(path, s.management, &w);
    let mut g = Gather::default();
    g.outcome(Kind::Rcp, path, &o, "sts:AssumeRole", home);
    let (sure, maybe) = g.blocks(path, &BTreeSet::from([home.to_owned()]));
    AccountGuardrails {
        assume_role: o.allowed.into(),
        assume_role_blocked_by: sure.into_iter().chain(maybe).collect(),
        denied,
        conditional,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::guardrails::Attached;
    use crate::iam::Policy;
    use serde_json::json;
    use std::sync::Arc;

    fn attached(id: &str, kind: Kind, doc: serde_json::Value) -> Attached {
        Attached {
            id: id.into(),
            name: format!("name-{id}"),
            kind,
            policy: Arc::new(Policy::parse(&doc).unwrap()),
        }
    }

    fn full() -> Attached {
        attached(
            "p-full",
            Kind::Scp,
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
        )
    }

    fn path(ou: Vec<Attached>, account: Vec<Attached>) -> Vec<Level> {
        vec![
            Level {
                id: "r-ab12".into(),
                policies: vec![full()],
            },
            Level {
                id: "ou-ab12-cd34ef56".into(),
                policies: ou,
            },
            Level {
                id: "444455556666".into(),
                policies: account,
            },
        ]
    }

    fn assess_with(p: &[Level], management: bool) -> AccountGuardrails {
        let account: AccountId = "444455556666".parse().unwrap();
        let required = vec![
            ("ec2:DescribeInstances".to_owned(), vec!["*".to_owned()]),
            ("iam:GetRole".to_owned(), vec!["*".to_owned()]),
            ("s3:GetObject".to_owned(), vec!["*".to_owned()]),
        ];
        assess(
            p,
            &Subject {
                partition: Partition::Aws,
                account: &account,
                organization_id: "o-abcdefghij",
                role_arn: "arn:aws:iam::444455556666:role/Spot",
                vendor_principal: "arn:aws:iam::922761411349:root",
                required: &required,
                regions: &["eu-west-1", "us-east-1", "us-west-2"],
                management,
            },
        )
    }

    #[test]
    fn a_region_lock_names_the_regions_and_exempts_global_services() {
        let lock = attached(
            "p-lock",
            Kind::Scp,
            json!({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}}}),
        );
        let g = assess_with(&path(vec![full(), lock], vec![full()]), false);
        assert_eq!(g.assume_role, Verdict::Allowed);
        assert!(g.conditional.is_empty(), "{g:?}");
        assert_eq!(g.denied.len(), 1, "{g:?}");
        let b = &g.denied[0];
        assert_eq!(
            (b.policy_id.as_deref(), b.kind, b.target_type),
            (Some("p-lock"), BlockKind::Deny, TargetType::OrganizationalUnit)
        );
        // IAM's calls name us-east-1 wherever Spot is: not blocked.
        assert_eq!(b.actions, ["ec2:DescribeInstances", "s3:GetObject"]);
        assert_eq!(b.regions, ["us-west-2"]);
        assert!(b.describe().contains("in us-west-2"), "{}", b.describe());
        assert!(assess_with(&path(vec![full()], vec![full()]), false).clear());
    }

    #[test]
    fn an_unknown_key_is_conditional_with_its_condition_and_the_management_account_is_exempt() {
        let tagged = attached(
            "p-tag",
            Kind::Scp,
            json!({"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/secret": "yes"}}}}),
        );
        let p = path(vec![full(), tagged], vec![]);
        let g = assess_with(&p, false);
        // No SCP at the account: nothing below it may act.
        assert_eq!(g.denied.len(), 1, "{g:?}");
        assert_eq!(
            (g.denied[0].kind, g.denied[0].policy_id.as_deref()),
            (BlockKind::NoAllow, None)
        );
        assert_eq!(g.denied[0].actions.len(), 3);
        let p = path(vec![full(), p[1].policies[1].clone()], vec![full()]);
        let g = assess_with(&p, false);
        assert!(g.denied.is_empty(), "{g:?}");
        assert_eq!(g.conditional.len(), 1);
        assert_eq!(g.conditional[0].actions, ["s3:GetObject"]);
        assert_eq!(
            g.conditional[0].condition.as_deref(),
            Some("StringEquals aws:ResourceTag/secret [\"yes\"]")
        );
        assert!(assess_with(&p, true).clear(), "the management account is exempt");
    }

    #[test]
    fn an_rcp_for_the_organizations_principals_only_stops_spots_assume_role() {
        let rcp = attached(
            "p-rcp",
            Kind::Rcp,
            json!({"Statement": {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*",
                "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-abcdefghij"}}}}),
        );
        let mut p = path(vec![full()], vec![full()]);
        p[0].policies.push(rcp);
        let g = assess_with(&p, false);
        assert_eq!(g.assume_role, Verdict::Denied);
        assert_eq!(g.assume_role_blocked_by.len(), 1);
        assert_eq!(g.assume_role_blocked_by[0].target_type, TargetType::Root);
        assert!(g.denied.is_empty(), "the member role is the organization's own: {g:?}");
        let why = g.reason().unwrap();
        assert!(
            why.contains("cannot assume") && why.contains("p-rcp") && why.contains("r-ab12"),
            "{why}"
        );
        // Exempting Spot's account lets it through.
        let exempt = attached(
            "p-rcp2",
            Kind::Rcp,
            json!({"Statement": {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*",
                "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-abcdefghij"},
                    "StringNotEquals": {"aws:PrincipalAccount": "922761411349"}}}}),
        );
        p[0].policies[1] = exempt;
        assert_eq!(assess_with(&p, false).assume_role, Verdict::Allowed);
    }
}
