//! The check report: what was checked, what passed, and what to change.

use crate::domain::RoleArn;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    RoleArn,
    AssumeRole,
    Identity,
    TrustPolicy,
    Permissions,
}

impl CheckId {
    pub fn title(self) -> &'static str {
        match self {
            CheckId::RoleArn => "Role ARN",
            CheckId::AssumeRole => "Assume the role with the external ID",
            CheckId::Identity => "Role belongs to the declared account",
            CheckId::TrustPolicy => "Trust policy requires this external ID",
            CheckId::Permissions => "Role has the selected permissions",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::RoleArn => "role_arn",
            CheckId::AssumeRole => "assume_role",
            CheckId::Identity => "identity",
            CheckId::TrustPolicy => "trust_policy",
            CheckId::Permissions => "permissions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passed,
    Failed,
    Warning,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub id: CheckId,
    pub title: String,
    pub status: CheckStatus,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// How long AssumeRole waited for IAM to propagate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Per bundle, the actions the role does not grant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub missing: BTreeMap<String, Vec<String>>,
    /// Per bundle, actions granted only under conditions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conditional: BTreeMap<String, Vec<String>>,
    /// Required actions IAM's simulator says the organization's SCPs deny
    /// (`AllowedByOrganizations` false), whatever the role's own policies grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_by_organization: Vec<String>,
    /// Who evaluated the permissions: IAM's policy simulator, or ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// The failure is AWS's or ours (throttling, a timeout), not the role's:
    /// a re-check learns nothing from it about the role.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transient: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// iam:SimulatePrincipalPolicy, for every required action.
    IamSimulation,
    /// The simulator for named actions, our evaluator for wildcard ones.
    IamSimulationAndLocal,
    /// Our evaluator of the role's policies (and boundary, when readable).
    Local,
}

impl Check {
    /// Marks a failure as AWS's or ours, not the role's.
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    pub fn new(id: CheckId, status: CheckStatus, message: impl Into<String>) -> Self {
        Check {
            id,
            title: id.title().to_owned(),
            status,
            message: message.into(),
            remediation: None,
            waited_ms: None,
            attempts: None,
            missing: BTreeMap::new(),
            conditional: BTreeMap::new(),
            denied_by_organization: Vec::new(),
            decided_by: None,
            transient: false,
        }
    }
    pub fn passed(id: CheckId, message: impl Into<String>) -> Self {
        Self::new(id, CheckStatus::Passed, message)
    }
    pub fn failed(id: CheckId, message: impl Into<String>, remediation: impl Into<String>) -> Self {
        Check {
            remediation: Some(remediation.into()),
            ..Self::new(id, CheckStatus::Failed, message)
        }
    }
    pub fn warning(id: CheckId, message: impl Into<String>, remediation: impl Into<String>) -> Self {
        Check {
            remediation: Some(remediation.into()),
            ..Self::new(id, CheckStatus::Warning, message)
        }
    }
    pub fn skipped(id: CheckId, message: impl Into<String>) -> Self {
        Self::new(id, CheckStatus::Skipped, message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every check passed (warnings allowed).
    Passed,
    /// Connected, but permissions are missing or could not be read.
    Degraded,
    /// A check failed: not connected.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub outcome: Outcome,
    pub checked_at: String,
    pub duration_ms: u64,
    pub role_arn: String,
    /// `role_arn` as parsed once by the ARN check; None when it did not parse.
    #[serde(skip)]
    pub role: Option<RoleArn>,
    pub checks: Vec<Check>,
    /// The external ID the role was assumed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_used: Option<String>,
    /// Whether the pending rotated ID was found and should become current.
    #[serde(default)]
    pub promote_pending: bool,
    /// What the checks read, for the connection to remember (the next
    /// check of the role reads again only what moved); None when something
    /// could not be read. Not part of the report anyone is shown.
    #[serde(skip)]
    pub read: Option<crate::domain::LastRead>,
}

impl Report {
    pub fn outcome_of(checks: &[Check]) -> Outcome {
        if checks.iter().any(|c| c.status == CheckStatus::Failed) {
            Outcome::Failed
        } else if checks
            .iter()
            .any(|c| c.id == CheckId::Permissions && c.status != CheckStatus::Passed)
        {
            Outcome::Degraded
        } else {
            Outcome::Passed
        }
    }

    /// Failed only for a reason on AWS's or our side: says nothing of the role.
    /// Not passed only for AWS's or our reasons: every failed check is
    /// transient, and some check failed or was skipped for such a reason
    /// (the role's policies not read in time).
    pub fn inconclusive(&self) -> bool {
        let mut transient = false;
        for c in &self.checks {
            match c.status {
                CheckStatus::Failed if !c.transient => return false,
                CheckStatus::Failed | CheckStatus::Skipped if c.transient => transient = true,
                _ => {}
            }
        }
        transient && self.outcome != Outcome::Passed
    }

    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Failed)
    }

    /// One sentence per failed check, for a CloudFormation Reason or Spot error.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .failed_checks()
            .map(|c| {
                format!("{}: {} {}", c.title, c.message, c.remediation.as_deref().unwrap_or(""))
                    .trim()
                    .to_owned()
            })
            .collect();
        if parts.is_empty() {
            "All checks passed.".to_owned()
        } else {
            parts.join(" | ")
        }
    }
}
