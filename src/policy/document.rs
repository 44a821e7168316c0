use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const POLICY_VERSION: &str = "2012-10-17";

/// An IAM policy document as IAM reads it. Text from the catalog is
/// borrowed, not copied: renders are on the hot path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: Cow<'static, str>,
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: Cow<'static, str>,
    #[serde(rename = "Effect")]
    pub effect: Cow<'static, str>,
    #[serde(rename = "Action")]
    pub action: Vec<Cow<'static, str>>,
    #[serde(rename = "Resource")]
    pub resource: Vec<String>,
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

// Every statement the renderer writes allows; Condition is IAM's own grammar.
crate::domain::string_newtype_schema!(
    PolicyDocument,
    serde_json::json!({
        "type": "object",
        "required": ["Version", "Statement"],
        "properties": {
            "Version": {"type": "string", "enum": [POLICY_VERSION]},
            "Statement": {"type": "array", "items": {
                "type": "object",
                "required": ["Sid", "Effect", "Action", "Resource"],
                "properties": {
                    "Sid": {"type": "string"},
                    "Effect": {"type": "string", "enum": ["Allow"]},
                    "Action": {"type": "array", "items": {"type": "string"}},
                    "Resource": {"type": "array", "items": {"type": "string"}},
                    "Condition": {"type": "object"}
                }
            }}
        }
    })
);

/// `{"Version":"2012-10-17","Statement":[]}`
pub const EMPTY_DOCUMENT_SIZE: usize = 39;

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> Self {
        PolicyDocument {
            version: Cow::Borrowed(POLICY_VERSION),
            statement,
        }
    }

    /// The document's size as IAM counts it, without serializing it.
    pub fn iam_size(&self) -> usize {
        let n = self.statement.len();
        EMPTY_DOCUMENT_SIZE + self.statement.iter().map(Statement::iam_size).sum::<usize>() + n.saturating_sub(1)
    }
}

impl Statement {
    /// `{"Sid":…,"Effect":…,"Action":[…],"Resource":[…]}` and the Condition.
    pub fn iam_size(&self) -> usize {
        self.size_without_actions() + list_size(self.action.iter().map(|a| a.as_ref()))
    }

    /// Everything but the action strings and their commas.
    pub fn size_without_actions(&self) -> usize {
        let fixed = r#"{"Sid":,"Effect":,"Action":[],"Resource":[]}"#.len();
        let condition = self
            .condition
            .as_ref()
            .map_or(0, |c| r#","Condition":"#.len() + iam_size(&c.to_string()));
        fixed
            + string_size(&self.sid)
            + string_size(&self.effect)
            + list_size(self.resource.iter().map(String::as_str))
            + condition
    }
}

/// A JSON string's size: quotes, and escapes where needed.
pub fn string_size(s: &str) -> usize {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        iam_size(&serde_json::to_string(s).expect("strings serialize"))
    } else {
        iam_size(s) + 2
    }
}

/// Strings and the commas between them.
pub fn list_size<'a>(items: impl Iterator<Item = &'a str>) -> usize {
    let (mut total, mut n) = (0usize, 0usize);
    for s in items {
        total += string_size(s);
        n += 1;
    }
    total + n.saturating_sub(1)
}

/// IAM does not count whitespace toward a policy's size (aws-rules.md).
pub fn iam_size(json: &str) -> usize {
    if json.is_ascii() {
        json.bytes().filter(|b| !b.is_ascii_whitespace()).count()
    } else {
        json.chars().filter(|c| !c.is_whitespace()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_sizes_match_serialized_ones() {
        let doc = PolicyDocument::new(vec![
            Statement {
                sid: "A".into(),
                effect: "Allow".into(),
                action: vec!["ec2:Describe*".into(), "s3:GetObject".into()],
                resource: vec!["*".into()],
                condition: None,
            },
            Statement {
                sid: "B".into(),
                effect: "Allow".into(),
                action: vec!["kms:CreateGrant".into()],
                resource: vec!["arn:aws:kms:*:*:key/*".into(), "x\"y".into()],
                condition: Some(serde_json::json!({"Bool": {"kms:GrantIsForAWSResource": "true"}})),
            },
        ]);
        assert_eq!(doc.iam_size(), serde_json::to_string(&doc).unwrap().len());
        assert_eq!(
            PolicyDocument::new(Vec::new()).iam_size(),
            serde_json::to_string(&PolicyDocument::new(Vec::new())).unwrap().len()
        );
    }
}
