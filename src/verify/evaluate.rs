//! A local evaluator of what a role's policies allow: Allow, explicit Deny,
//! wildcards, NotAction and NotResource. IAM's SimulatePrincipalPolicy is the
//! authority (it also sees permissions boundaries and SCPs), but moto lacks it
//! and the default policy alone cannot call it on every partition.

use super::trust::glob;
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

fn list(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether two patterns can name a common value.
fn overlaps(a: &str, b: &str) -> bool {
    glob(a, b) || glob(b, a)
}

struct Stmt<'a> {
    allow: bool,
    actions: Vec<&'a str>,
    not_actions: Vec<&'a str>,
    resources: Vec<&'a str>,
    not_resources: Vec<&'a str>,
    conditional: bool,
}

impl Stmt<'_> {
    /// Covers every action `action` names (a wildcard requirement must be
    /// covered whole).
    fn covers_action(&self, action: &str) -> bool {
        if !self.not_actions.is_empty() {
            return !self.not_actions.iter().any(|p| overlaps(p, action));
        }
        self.actions.iter().any(|p| glob(p, action))
    }
    fn touches_action(&self, action: &str) -> bool {
        if !self.not_actions.is_empty() {
            return !self.not_actions.iter().any(|p| glob(p, action));
        }
        self.actions.iter().any(|p| overlaps(p, action))
    }
    fn covers_resource(&self, resource: &str) -> bool {
        if !self.not_resources.is_empty() {
            return false; // Some resources are excluded: never the whole requirement.
        }
        self.resources.iter().any(|p| glob(p, resource))
    }
    fn touches_resource(&self, resource: &str) -> bool {
        if !self.not_resources.is_empty() {
            return !self.not_resources.iter().any(|p| glob(p, resource));
        }
        self.resources.iter().any(|p| overlaps(p, resource))
    }
}

pub struct Evaluator<'a> {
    statements: Vec<Stmt<'a>>,
}

impl<'a> Evaluator<'a> {
    pub fn new(documents: &'a [Value]) -> Self {
        let mut statements = Vec::new();
        for d in documents {
            let sts: Vec<&Value> = match &d["Statement"] {
                Value::Array(a) => a.iter().collect(),
                v @ Value::Object(_) => vec![v],
                _ => Vec::new(),
            };
            for s in sts {
                statements.push(Stmt {
                    allow: s["Effect"] == "Allow",
                    actions: list(&s["Action"]),
                    not_actions: list(&s["NotAction"]),
                    resources: list(&s["Resource"]),
                    not_resources: list(&s["NotResource"]),
                    conditional: s
                        .get("Condition")
                        .is_some_and(|c| c.as_object().is_some_and(|o| !o.is_empty())),
                });
            }
        }
        Evaluator { statements }
    }

    pub fn verdict(&self, action: &str, resource: &str) -> Verdict {
        let mut conditional = false;
        for d in self.statements.iter().filter(|s| !s.allow) {
            if d.touches_action(action) && d.touches_resource(resource) {
                if d.conditional {
                    conditional = true;
                } else {
                    return Verdict::Missing;
                }
            }
        }
        let allows: Vec<&Stmt> = self
            .statements
            .iter()
            .filter(|s| s.allow && s.covers_action(action) && s.covers_resource(resource))
            .collect();
        match (allows.iter().any(|s| !s.conditional), allows.is_empty()) {
            (true, _) if !conditional => Verdict::Allowed,
            (_, false) => Verdict::Conditional,
            _ => Verdict::Missing,
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
    }

    #[test]
    fn not_action_not_resource_and_conditions() {
        let d = json!([{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}]);
        assert_eq!(eval(d.clone(), "ec2:RunInstances", "*"), Verdict::Allowed);
        assert_eq!(eval(d, "iam:PassRole", "*"), Verdict::Missing);
        let d = json!([{"Statement": [{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::secret"}]}]);
        assert_eq!(eval(d, "ec2:RunInstances", "*"), Verdict::Missing);
        let d = json!([{"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}]}]);
        assert_eq!(eval(d, "ec2:RunInstances", "*"), Verdict::Conditional);
    }
}
