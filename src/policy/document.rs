use serde::{Deserialize, Serialize};

pub const POLICY_VERSION: &str = "2012-10-17";

/// An IAM policy document as IAM reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: String,
    #[serde(rename = "Action")]
    pub action: Vec<String>,
    #[serde(rename = "Resource")]
    pub resource: Vec<String>,
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> Self {
        PolicyDocument {
            version: POLICY_VERSION.to_owned(),
            statement,
        }
    }

    /// The document's size as IAM counts it.
    pub fn iam_size(&self) -> usize {
        iam_size(&serde_json::to_string(self).expect("policy documents serialize"))
    }
}

/// IAM does not count whitespace toward a policy's size (aws-rules.md).
pub fn iam_size(json: &str) -> usize {
    json.chars().filter(|c| !c.is_whitespace()).count()
}
