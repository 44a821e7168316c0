//! What a role's own policies grant, on the shared core (`crate::iam`).
//! A requirement may itself be a wildcard (`ec2:Describe*`): an Allow must
//! cover all of it, and a Deny that touches any of it takes it away. IAM's
//! SimulatePrincipalPolicy is the authority where the role may call it (it
//! also sees permissions boundaries and SCPs).

use crate::iam::wildcard::{covers, overlaps, Case};
use crate::iam::{Effect, Patterns, Policy, Statement};
use serde_json::Value;

/// What the role's statements say of one (action, resource) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Allowed only under conditions, or a conditional Deny may apply.
    Conditional,
    /// Not allowed, or explicitly denied.
    Missing,
}

/// Whether the statement's patterns cover every value `want` names.
fn covers_all(p: &Patterns, want: &str, case: Case) -> bool {
    match p {
        Patterns::Only(l) => l.iter().any(|x| !x.contains("${") && covers(x, want, case)),
        Patterns::AllBut(l) => !l.iter().any(|x| overlaps(x, want, case)),
    }
}

/// Whether the statement's patterns name some value `want` names.
fn touches(p: &Patterns, want: &str, case: Case) -> bool {
    match p {
        Patterns::Only(l) => l.iter().any(|x| x.contains("${") || overlaps(x, want, case)),
        Patterns::AllBut(l) => !l.iter().any(|x| covers(x, want, case)),
    }
}

fn guarded(s: &Statement) -> bool {
    s.is_conditional() || !s.unsupported.is_empty()
}

pub struct Evaluator {
    statements: Vec<Statement>,
    notes: Vec<String>,
}

impl Evaluator {
    pub fn new(documents: &[Value]) -> Self {
        let mut statements = Vec::new();
        let mut notes = Vec::new();
        for d in documents {
            match Policy::parse(d) {
                Ok(p) => statements.extend(p.statements),
                Err(e) => notes.push(format!(
                    "a policy we cannot read ({e}) was left out, so its grants do not count"
                )),
            }
        }
        for s in &statements {
            notes.extend(
                s.unsupported
                    .iter()
                    .map(|u| format!("statement {} holds {u}, so it counts only as conditional", s.label)),
            );
        }
        Evaluator { statements, notes }
    }

    /// What the core could not evaluate, for the report.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn verdict(&self, action: &str, resource: &str) -> Verdict {
        let resource_ok = |s: &Statement, f: fn(&Patterns, &str, Case) -> bool| {
            s.resources.as_ref().is_none_or(|r| f(r, resource, Case::Sensitive))
        };
        let mut conditional = false;
        for d in self.statements.iter().filter(|s| s.effect == Effect::Deny) {
            if touches(&d.actions, action, Case::Insensitive) && resource_ok(d, touches) {
                if guarded(d) {
                    conditional = true;
                } else {
                    return Verdict::Missing;
                }
            }
        }
        let mut allowed = None;
        for a in self.statements.iter().filter(|s| s.effect == Effect::Allow) {
            // A resource with a policy variable grants some resources: conditional at best.
            let with_variable = matches!(&a.resources, Some(Patterns::Only(l)) if l.iter().any(|x| x.contains("${")));
            if covers_all(&a.actions, action, Case::Insensitive) && (with_variable || resource_ok(a, covers_all)) {
                let plain = !guarded(a);
                allowed = Some(allowed.unwrap_or(false) || plain);
            }
        }
        match allowed {
            Some(true) if !conditional => Verdict::Allowed,
            Some(_) => Verdict::Conditional,
            None => Verdict::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(docs: Value, action: &str, resource: &str) -> Verdict {
        let docs: Vec<Value> = docs.as_array().unwrap().clone();
        Evaluator::new(&docs).verdict(action, resource)
    }

    #[test]
    fn allow_wildcards_and_resources() {
        let d = json!([{"Statement": [{"Effect": "Allow", "Action": ["ec2:*", "s3:List*"], "Resource": "*"}]}]);
        assert_eq!(eval(d.clone(), "ec2:RunInstances", "*"), Verdict::Allowed);
        assert_eq!(eval(d.clone(), "ec2:Describe*", "*"), Verdict::Allowed);
        assert_eq!(eval(d.clone(), "s3:ListBuckets", "*"), Verdict::Allowed);
        assert_eq!(
            eval(d.clone(), "s3:*", "*"),
            Verdict::Missing,
            "s3:List* does not cover s3:*"
        );
        let narrow = json!([{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b*"}]}]);
        assert_eq!(eval(narrow.clone(), "s3:GetObject", "*"), Verdict::Missing);
        assert_eq!(eval(narrow, "s3:GetObject", "arn:aws:s3:::bucket"), Verdict::Allowed);
    }

    #[test]
    fn explicit_deny_wins() {
        let d = json!([
            {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]},
            {"Statement": {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"}}
        ]);
        assert_eq!(eval(d.clone(), "ec2:TerminateInstances", "*"), Verdict::Missing);
        assert_eq!(eval(d.clone(), "ec2:RunInstances", "*"), Verdict::Allowed);
        assert_eq!(
            eval(d, "ec2:*", "*"),
            Verdict::Missing,
            "a deny inside a wildcard requirement"
        );
        // A Deny on a pattern that shares actions with a wildcard requirement.
        let d = json!([
            {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]},
            {"Statement": {"Effect": "Deny", "Action": "ec2:*Instances", "Resource": "*"}}
        ]);
        assert_eq!(eval(d.clone(), "ec2:Describe*", "*"), Verdict::Missing);
        assert_eq!(eval(d, "ec2:DescribeVolumes", "*"), Verdict::Allowed);
    }

    #[test]
    fn not_action_not_resource_and_conditions() {
        let d = json!([{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}]);
        assert_eq!(eval(d.clone(), "ec2:RunInstances", "*"), Verdict::Allowed);
        assert_eq!(eval(d, "iam:PassRole", "*"), Verdict::Missing);
        let d = json!([{"Statement": [{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::secret"}]}]);
        assert_eq!(eval(d.clone(), "ec2:RunInstances", "*"), Verdict::Missing);
        assert_eq!(eval(d, "s3:GetObject", "arn:aws:s3:::public"), Verdict::Allowed);
        let d = json!([{"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}]}]);
        assert_eq!(eval(d, "ec2:RunInstances", "*"), Verdict::Conditional);
        let d = json!([{"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "arn:aws:ec2:*:*:instance/${aws:username}"}]}]);
        let docs = d.as_array().unwrap().clone();
        let e = Evaluator::new(&docs);
        assert_eq!(e.verdict("ec2:RunInstances", "*"), Verdict::Conditional);
        assert!(e.notes()[0].contains("policy variable"));
    }

    #[test]
    fn a_hostile_pattern_is_judged_at_once() {
        let d = json!([{"Statement": [
            {"Effect": "Allow", "Action": format!("ec2:{}Z", "*".repeat(40)), "Resource": "*"},
            {"Effect": "Deny", "Action": format!("ec2:{}Q", "*?".repeat(40)), "Resource": "*"}
        ]}]);
        assert_eq!(eval(d.clone(), "ec2:DescribeInstances", "*"), Verdict::Missing);
        assert_eq!(eval(d, "ec2:Describe*", "*"), Verdict::Missing);
    }
}
