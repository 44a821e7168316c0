//! IAM's policy grammar, parsed once: Statement as object or list; Effect;
//! Principal / NotPrincipal; Action / NotAction; Resource / NotResource;
//! Condition. What the parser does not understand is kept as a note on the
//! statement, so evaluation can count it against the customer's role.

use super::condition::{Clause, Condition};
use super::values::strings;
pub use super::values::ParseError;
use serde_json::Value;

/// Bounds on untrusted documents (IAM's own are far smaller: 10,240
/// characters for a role's inline policies, 6,144 for a managed one).
pub const MAX_STATEMENTS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or everything but them (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Only(Vec<String>),
    AllBut(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PrincipalKind {
    Aws,
    Service,
    Federated,
    CanonicalUser,
}

impl PrincipalKind {
    fn parse(key: &str) -> Option<Self> {
        Some(match key {
            "AWS" => PrincipalKind::Aws,
            "Service" => PrincipalKind::Service,
            "Federated" => PrincipalKind::Federated,
            "CanonicalUser" => PrincipalKind::CanonicalUser,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Aws => "AWS",
            PrincipalKind::Service => "Service",
            PrincipalKind::Federated => "Federated",
            PrincipalKind::CanonicalUser => "CanonicalUser",
        }
    }
}

/// `"*"` is every principal of every kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    Everyone,
    Listed(Vec<(PrincipalKind, String)>),
}

#[derive(Debug, Clone)]
pub struct Statement {
    /// Sid, or the statement's position from 1.
    pub label: String,
    pub effect: Effect,
    pub principal: Option<Principals>,
    pub not_principal: Option<Principals>,
    pub actions: Patterns,
    pub resources: Option<Patterns>,
    pub condition: Condition,
    /// What this statement holds that the core cannot evaluate.
    pub unsupported: Vec<String>,
}

impl Statement {
    pub fn is_conditional(&self) -> bool {
        !self.condition.clauses.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

fn principals(v: &Value, what: &str) -> Result<Principals, ParseError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Everyone),
        Value::Object(o) => {
            let mut out = Vec::new();
            for (k, vals) in o {
                let kind = PrincipalKind::parse(k)
                    .ok_or_else(|| ParseError(format!("{what} has an unknown principal type {k:?}")))?;
                out.extend(strings(vals, what)?.into_iter().map(|p| (kind, p)));
            }
            Ok(Principals::Listed(out))
        }
        _ => Err(ParseError(format!(
            "{what} must be \"*\" or an object such as {{\"AWS\": …}}"
        ))),
    }
}

fn patterns(
    s: &serde_json::Map<String, Value>,
    yes: &str,
    no: &str,
    label: &str,
) -> Result<Option<Patterns>, ParseError> {
    match (s.get(yes), s.get(no)) {
        (Some(_), Some(_)) => Err(ParseError(format!("statement {label} has both {yes} and {no}"))),
        (Some(v), None) => Ok(Some(Patterns::Only(strings(v, yes)?))),
        (None, Some(v)) => Ok(Some(Patterns::AllBut(strings(v, no)?))),
        (None, None) => Ok(None),
    }
}

impl Policy {
    pub fn parse(doc: &Value) -> Result<Policy, ParseError> {
        let list: Vec<&Value> = match doc.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v @ Value::Object(_)) => vec![v],
            Some(_) => return Err(ParseError("Statement must be an object or a list of objects".into())),
            None => Vec::new(),
        };
        if list.len() > MAX_STATEMENTS {
            return Err(ParseError(format!(
                "the policy has more than {MAX_STATEMENTS} statements"
            )));
        }
        let statements = list
            .into_iter()
            .enumerate()
            .map(|(i, s)| Self::statement(i, s))
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    fn statement(index: usize, s: &Value) -> Result<Statement, ParseError> {
        let obj = s
            .as_object()
            .ok_or_else(|| ParseError(format!("statement {} is not an object", index + 1)))?;
        let label = match obj.get("Sid").and_then(Value::as_str) {
            Some(sid) if !sid.is_empty() => format!("\"{sid}\""),
            _ => format!("#{}", index + 1),
        };
        let effect = match obj.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => {
                return Err(ParseError(format!(
                    "statement {label} has Effect {other:?}; IAM accepts only \"Allow\" or \"Deny\""
                )))
            }
        };
        let principal = obj.get("Principal").map(|v| principals(v, "Principal")).transpose()?;
        let not_principal = obj
            .get("NotPrincipal")
            .map(|v| principals(v, "NotPrincipal"))
            .transpose()?;
        let actions = patterns(obj, "Action", "NotAction", &label)?
            .ok_or_else(|| ParseError(format!("statement {label} has neither Action nor NotAction")))?;
        let resources = patterns(obj, "Resource", "NotResource", &label)?;
        let mut unsupported = Vec::new();
        let condition = match obj.get("Condition") {
            None => Condition::default(),
            Some(c) => Condition::parse(c, &mut unsupported)?,
        };
        let with_vars = |p: &Patterns| match p {
            Patterns::Only(v) | Patterns::AllBut(v) => v.iter().any(|x| x.contains("${")),
        };
        if resources.as_ref().is_some_and(with_vars) {
            unsupported.push("a policy variable in Resource".to_owned());
        }
        Ok(Statement {
            label,
            effect,
            principal,
            not_principal,
            actions,
            resources,
            condition,
            unsupported,
        })
    }

    /// Every literal a condition of this policy compares `key` with.
    pub fn literals_for<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Clause> + 'a {
        self.statements
            .iter()
            .flat_map(|s| s.condition.clauses.iter())
            .filter(move |c| c.key.eq_ignore_ascii_case(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_shape() {
        let p = Policy::parse(&json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}}))
            .unwrap();
        assert_eq!(p.statements.len(), 1);
        assert_eq!(p.statements[0].principal, Some(Principals::Everyone));
        assert_eq!(p.statements[0].label, "#1");
        let p = Policy::parse(&json!({"Statement": [{"Sid": "Vendor", "Effect": "Deny",
            "Principal": {"AWS": ["1", "arn:aws:iam::2:root"], "Federated": "x"}, "NotAction": "iam:*", "NotResource": "arn:aws:s3:::b"}]}))
        .unwrap();
        let s = &p.statements[0];
        assert_eq!((s.label.as_str(), s.effect), ("\"Vendor\"", Effect::Deny));
        assert_eq!(s.actions, Patterns::AllBut(vec!["iam:*".into()]));
        let Some(Principals::Listed(l)) = &s.principal else {
            panic!()
        };
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn refuses_what_iam_refuses() {
        for bad in [
            json!({"Statement": [{"Effect": "Maybe", "Action": "*"}]}),
            json!({"Statement": [{"Effect": "Allow"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": [{"a": 1}]}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Principal": {"Alien": "x"}}]}),
            json!({"Statement": "nope"}),
        ] {
            assert!(Policy::parse(&bad).is_err(), "{bad}");
        }
    }
}
