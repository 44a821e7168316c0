//! The requests the trust audit asks IAM's rules about: who calls, with
//! which action and which context. AWS sets some keys from the caller
//! (`aws:PrincipalAccount` …); the caller chooses the rest, so for those
//! every value the policy could react to is tried: none, each literal the
//! policy holds, a string matching each wildcard, each number and date
//! moved by one, an address in and out of each block, and one value the
//! policy never names.

use crate::iam::condition::{date, Base, Cidr, Operator};
use crate::iam::eval::applies_before_conditions;
use crate::iam::wildcard::{common_witness, witness, Case};
use crate::iam::{
    evaluate, Caller, Context, Decision, Effect, Policy, PrincipalKind, Principals, Request, Statement, Tri,
};
use std::collections::BTreeSet;

/// More combinations of caller-chosen values than this are not enumerated:
/// the audit then counts the statement against the role.
const MAX_COMBINATIONS: usize = 4096;
/// Patterns on one key beyond this are not paired (quadratic); single
/// witnesses still are.
const MAX_PATTERN_PAIRS_OF: usize = 32;
const UNLISTED: &str = "value-the-policy-does-not-name";

/// Keys AWS sets from the request itself; the caller cannot choose them.
const SET_BY_AWS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principaltype",
    "aws:principalisawsservice",
    "aws:principalservicename",
    "aws:securetransport",
    "aws:viaawsservice",
    "aws:currenttime",
    "aws:epochtime",
];
/// Present only when a service acts for a resource: absent for an IAM caller.
const SERVICE_ONLY: &[&str] = &[
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
];
const EXTERNAL_ID: &str = "sts:externalid";

pub struct Probe {
    pub caller: Caller,
    pub action: &'static str,
    pub external_id: Option<String>,
    pub decision: Decision,
}

pub struct Prober<'a> {
    policy: &'a Policy,
    vendor: Caller,
    vendor_account: String,
    customer_account: &'a str,
    partition: String,
    /// Per caller-chosen key, the values worth trying (`None` = absent).
    candidates: Vec<(String, Vec<Option<String>>)>,
    now: (String, String),
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

impl<'a> Prober<'a> {
    /// `now` (unix seconds) is what `aws:CurrentTime` and `aws:EpochTime` read.
    pub fn new(policy: &'a Policy, vendor_principal: &str, customer_account: &'a str, now: i64) -> Self {
        let vendor_account = if vendor_principal.len() == 12 {
            vendor_principal.to_owned()
        } else {
            account_of(vendor_principal).unwrap_or(vendor_principal).to_owned()
        };
        let partition = vendor_principal.split(':').nth(1).unwrap_or("aws").to_owned();
        let vendor_arn = if vendor_principal.starts_with("arn:") {
            vendor_principal.to_owned()
        } else {
            format!("arn:{partition}:iam::{vendor_account}:root")
        };
        let iso = crate::clock::iso(now);
        Prober {
            policy,
            vendor: Caller::Aws {
                account: vendor_account.clone(),
                arn: vendor_arn,
            },
            vendor_account,
            customer_account,
            partition,
            candidates: candidates(policy),
            now: (iso, now.to_string()),
        }
    }

    pub fn vendor_account(&self) -> &str {
        &self.vendor_account
    }

    fn base_context(&self, caller: &Caller) -> Context {
        let mut c = Context::default();
        c.set("aws:SecureTransport", vec!["true".into()]);
        c.set("aws:CurrentTime", vec![self.now.0.clone()]);
        c.set("aws:EpochTime", vec![self.now.1.clone()]);
        c.set("aws:ViaAWSService", vec!["false".into()]);
        match caller {
            Caller::Aws { account, arn } => {
                c.set("aws:PrincipalAccount", vec![account.clone()]);
                c.set("aws:PrincipalArn", vec![arn.clone()]);
                let kind = if arn.ends_with(":root") {
                    "Account"
                } else if arn.contains(":assumed-role/") {
                    "AssumedRole"
                } else if arn.contains(":user/") {
                    "User"
                } else {
                    "Role"
                };
                c.set("aws:PrincipalType", vec![kind.into()]);
                c.set("aws:PrincipalIsAWSService", vec!["false".into()]);
            }
            Caller::Service(s) => {
                c.set("aws:PrincipalServiceName", vec![s.clone()]);
                c.set("aws:PrincipalIsAWSService", vec!["true".into()]);
            }
            Caller::Federated(_) | Caller::CanonicalUser(_) => {
                c.set("aws:PrincipalIsAWSService", vec!["false".into()]);
            }
        }
        c
    }

    fn ask(&self, caller: &Caller, action: &'static str, ctx: &Context) -> Decision {
        evaluate(
            &[self.policy],
            &Request {
                caller,
                action,
                resource: None,
                context: ctx,
            },
        )
    }

    /// The vendor's own request: it sends the external ID and nothing else.
    pub fn vendor_with(&self, external_id: Option<&str>) -> Probe {
        let mut ctx = self.base_context(&self.vendor);
        if let Some(id) = external_id {
            ctx.set(EXTERNAL_ID, vec![id.to_owned()]);
        }
        Probe {
            caller: self.vendor.clone(),
            action: "sts:AssumeRole",
            external_id: external_id.map(str::to_owned),
            decision: self.ask(&self.vendor, "sts:AssumeRole", &ctx),
        }
    }

    /// Principals of the vendor's account presenting an ID that is not
    /// ours (or none) that IAM may let in.
    pub fn vendor_without(&self, is_ours: impl Fn(&str) -> bool) -> Vec<Probe> {
        let ids: Vec<Option<String>> = self
            .values_of(EXTERNAL_ID)
            .into_iter()
            .filter(|v| v.as_deref().is_none_or(|v| !is_ours(v)))
            .collect();
        let mut out = Vec::new();
        for caller in self.callers_in(&self.vendor_account) {
            for id in &ids {
                let mut ctx = self.base_context(&caller);
                if let Some(v) = id {
                    ctx.set(EXTERNAL_ID, vec![v.clone()]);
                }
                let decision = self.ask(&caller, "sts:AssumeRole", &ctx);
                if decision.allowed.possible() {
                    out.push(Probe {
                        caller: caller.clone(),
                        action: "sts:AssumeRole",
                        external_id: id.clone(),
                        decision,
                    });
                }
            }
        }
        out
    }

    /// The first principal of another account IAM may let in.
    pub fn outsider_allowed(&self) -> Option<Probe> {
        let mut accounts: BTreeSet<String> = self
            .named(PrincipalKind::Aws)
            .iter()
            .filter_map(|e| if e.len() == 12 { Some(e.as_str()) } else { account_of(e) })
            .filter(|a| *a != self.vendor_account && *a != self.customer_account && a.len() == 12)
            .map(str::to_owned)
            .collect();
        let fresh = ["000000000001", "000000000002", "000000000003"]
            .into_iter()
            .find(|a| !accounts.contains(*a) && *a != self.vendor_account && *a != self.customer_account)
            .unwrap_or("000000000004");
        accounts.insert(fresh.to_owned());
        accounts
            .iter()
            .flat_map(|a| self.callers_in(a))
            .find_map(|c| self.any_context(&c, "sts:AssumeRole"))
    }

    /// The first federated identity IAM may let in.
    pub fn federated_allowed(&self) -> Option<Probe> {
        let mut providers = self.named(PrincipalKind::Federated);
        providers.push(format!(
            "arn:{}:iam::{}:oidc-provider/provider.example",
            self.partition, self.customer_account
        ));
        providers.into_iter().find_map(|p| {
            let caller = Caller::Federated(p);
            ["sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML"]
                .into_iter()
                .find_map(|action| self.any_context(&caller, action))
        })
    }

    /// Services and principals of the customer's own account IAM may let in.
    pub fn insiders_allowed(&self) -> Vec<Probe> {
        let services = self.named(PrincipalKind::Service).into_iter().map(Caller::Service);
        let own = self.callers_in(self.customer_account).into_iter();
        let mut seen = BTreeSet::new();
        services
            .chain(own)
            .filter_map(|c| self.any_context(&c, "sts:AssumeRole"))
            .filter(|p| seen.insert(p.decision.allowed_by.join(",")))
            .collect()
    }

    /// Entries of one principal type that the policy names.
    fn named(&self, kind: PrincipalKind) -> Vec<String> {
        let mut out = BTreeSet::new();
        for s in &self.policy.statements {
            for p in [&s.principal, &s.not_principal].into_iter().flatten() {
                if let Principals::Listed(l) = p {
                    out.extend(l.iter().filter(|(k, _)| *k == kind).map(|(_, e)| e.clone()));
                }
            }
        }
        out.into_iter().collect()
    }

    /// The account's root, each principal of it the policy names, and one it does not.
    fn callers_in(&self, account: &str) -> Vec<Caller> {
        let mut arns: BTreeSet<String> = self
            .named(PrincipalKind::Aws)
            .into_iter()
            .filter(|e| e.starts_with("arn:") && account_of(e) == Some(account) && !e.contains('*'))
            .collect();
        if let Caller::Aws { arn, account: a } = &self.vendor {
            if a == account {
                arns.insert(arn.clone());
            }
        }
        let root = format!("arn:{}:iam::{account}:root", self.partition);
        arns.remove(&root);
        // The root first: "any principal of the account" is what a report should name.
        std::iter::once(root)
            .chain(arns)
            .chain(std::iter::once(format!(
                "arn:{}:iam::{account}:role/unnamed-principal",
                self.partition
            )))
            .map(|arn| Caller::Aws {
                account: account.to_owned(),
                arn,
            })
            .collect()
    }

    fn values_of(&self, key: &str) -> Vec<Option<String>> {
        self.candidates
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| vec![None, Some(UNLISTED.into())])
    }

    /// Some context the caller can choose under which IAM may allow it.
    fn any_context(&self, caller: &Caller, action: &'static str) -> Option<Probe> {
        let mut ctx = self.base_context(caller);
        // Only statements that fit the caller and action but for their
        // conditions can decide; only their keys are worth varying.
        let req = Request {
            caller,
            action,
            resource: None,
            context: &ctx,
        };
        let applicable: Vec<Statement> = self
            .policy
            .statements
            .iter()
            .filter(|s| applies_before_conditions(s, &req).possible())
            .cloned()
            .collect();
        if !applicable.iter().any(|s| s.effect == Effect::Allow) {
            return None;
        }
        let service = matches!(caller, Caller::Service(_));
        let free: Vec<&(String, Vec<Option<String>>)> = self
            .candidates
            .iter()
            .filter(|(k, _)| !SET_BY_AWS.contains(&k.as_str()) && (service || !SERVICE_ONLY.contains(&k.as_str())))
            .filter(|(k, _)| {
                applicable
                    .iter()
                    .any(|s| s.condition.clauses.iter().any(|c| c.key_lower == *k))
            })
            .collect();
        let sub = Policy { statements: applicable };
        let ask = |ctx: &Context| {
            evaluate(
                &[&sub],
                &Request {
                    caller,
                    action,
                    resource: None,
                    context: ctx,
                },
            )
        };
        let probe = |ctx: &Context, decision: Decision| Probe {
            caller: caller.clone(),
            action,
            external_id: ctx.get(EXTERNAL_ID).and_then(|v| v.first().cloned()),
            decision,
        };
        let combos = free.iter().try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()));
        if combos.is_none_or(|n| n > MAX_COMBINATIONS) {
            // Too many to try: an Allow that fits but for its conditions counts as matching.
            let mut d = ask(&ctx);
            d.allowed_by = sub
                .statements
                .iter()
                .filter(|s| s.effect == Effect::Allow)
                .map(|s| s.label.clone())
                .collect();
            d.allowed = Tri::Unknown;
            d.unsupported.push(format!(
                "conditions on {} caller-chosen keys (more combinations than {MAX_COMBINATIONS})",
                free.len()
            ));
            return Some(probe(&ctx, d));
        }
        let mut index = vec![0usize; free.len()];
        loop {
            for (i, (key, values)) in free.iter().enumerate() {
                match &values[index[i]] {
                    Some(v) => ctx.set(key, vec![v.clone()]),
                    None => ctx.remove(key),
                }
            }
            let d = ask(&ctx);
            if d.allowed.possible() {
                return Some(probe(&ctx, d));
            }
            // Next combination, like an odometer.
            let mut i = 0;
            loop {
                if i == free.len() {
                    return None;
                }
                index[i] += 1;
                if index[i] < free[i].1.len() {
                    break;
                }
                index[i] = 0;
                i += 1;
            }
        }
    }
}

/// Per key a condition names, the values a caller could send that make a difference.
fn candidates(policy: &Policy) -> Vec<(String, Vec<Option<String>>)> {
    let mut keys: Vec<(String, BTreeSet<String>)> = Vec::new();
    for clause in policy.statements.iter().flat_map(|s| s.condition.clauses.iter()) {
        let key = clause.key.to_ascii_lowercase();
        let slot = match keys.iter().position(|(k, _)| *k == key) {
            Some(i) => &mut keys[i].1,
            None => {
                keys.push((key, BTreeSet::new()));
                &mut keys.last_mut().expect("just pushed").1
            }
        };
        slot.insert(UNLISTED.to_owned());
        let Operator::Known { base, .. } = clause.operator else {
            continue;
        };
        for v in &clause.values {
            slot.insert(v.clone());
            if base.is_like() {
                slot.insert(witness(v));
            }
            if let Ok(n) = v.parse::<f64>() {
                slot.extend([(n - 1.0).to_string(), (n + 1.0).to_string()]);
            }
            if let Some(ns) = date(v) {
                let s = ns / 1_000_000_000;
                slot.extend([(s - 1).to_string(), (s + 1).to_string()]);
            }
            if let Some(c) = Cidr::parse(v) {
                slot.extend(c.probes());
            }
            if base == Base::Bool || base == Base::Null {
                slot.extend(["true".to_owned(), "false".to_owned()]);
            }
        }
    }
    // Two patterns on one key may both have to match: a string for each pair.
    for (key, vals) in keys.iter_mut() {
        let patterns: Vec<&str> = policy
            .statements
            .iter()
            .flat_map(|s| s.condition.clauses.iter())
            .filter(|c| {
                c.key.eq_ignore_ascii_case(key) && matches!(c.operator, Operator::Known { base, .. } if base.is_like())
            })
            .flat_map(|c| c.values.iter().map(String::as_str))
            .collect();
        if patterns.len() <= MAX_PATTERN_PAIRS_OF {
            for (i, a) in patterns.iter().enumerate() {
                for b in &patterns[i + 1..] {
                    vals.extend(common_witness(a, b, Case::Sensitive));
                }
            }
        }
    }
    keys.into_iter()
        .map(|(k, vals)| {
            let mut v: Vec<Option<String>> = vec![None];
            v.extend(vals.into_iter().map(Some));
            (k, v)
        })
        .collect()
}
