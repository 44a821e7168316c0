//! An AWS Organization connected through its management account: the record,
//! its members' place in it, and what the last reconciliation saw.

use super::{AccountId, ConnectionId, Partition, Permissions, SpotAccountId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// `awsorg-` and 96 random bits, hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganizationId(String);

impl OrganizationId {
    pub fn generate() -> Self {
        OrganizationId(super::random_id("awsorg-"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A short part for names (stacks, roles, StackSets).
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }
}

impl FromStr for OrganizationId {
    type Err = super::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if super::is_id(s, "awsorg-") {
            Ok(OrganizationId(s.to_owned()))
        } else {
            Err(super::ParseError::new(
                "organizationId",
                format!("{s:?} is not an organization id (awsorg- and 24 hex digits)"),
            ))
        }
    }
}

super::string_newtype_serde!(OrganizationId);
super::string_newtype_schema!(
    OrganizationId,
    serde_json::json!({"type": "string", "pattern": "^awsorg-[0-9a-f]{24}$", "examples": ["awsorg-0123456789abcdef01234567"]})
);

/// An organizational unit (`ou-…`) or the organization's root (`r-…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(String);

impl TargetId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_root(&self) -> bool {
        self.0.starts_with("r-")
    }
}

impl FromStr for TargetId {
    type Err = super::ParseError;
    /// AWS's patterns: `^r-[0-9a-z]{4,32}$` and `^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alnum = |p: &str, min: usize| {
            (min..=32).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        };
        let ok = match (s.strip_prefix("r-"), s.strip_prefix("ou-")) {
            (Some(r), _) => alnum(r, 4),
            (_, Some(ou)) => ou.split_once('-').is_some_and(|(a, b)| alnum(a, 4) && alnum(b, 8)),
            _ => false,
        };
        if ok {
            Ok(TargetId(s.to_owned()))
        } else {
            Err(super::ParseError::new(
                "organizationalUnitIds",
                format!("{s:?} is neither an organizational unit id (ou-…) nor a root id (r-…)"),
            ))
        }
    }
}

super::string_newtype_serde!(TargetId);
super::string_newtype_schema!(
    TargetId,
    serde_json::json!({"type": "string", "pattern": "^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$", "examples": ["ou-ab12-cd34ef56"]})
);

/// A connection's place in an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub organization_id: OrganizationId,
    /// The management account's own connection (made by the management stack).
    pub management: bool,
    /// False until the platform assigns the member a Spot account.
    pub spot_account_assigned: bool,
    /// Why the member is not connected, when the callback knows (a role
    /// that did not verify, its stack deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = OrganizationState)]
pub enum OrgState {
    Active,
    Offboarded,
}

/// An account as Organizations listed it at the last reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeenAccount {
    pub aws_account_id: AccountId,
    /// Organizations' status: ACTIVE, SUSPENDED, PENDING_CLOSURE.
    pub status: String,
    /// Its parent (root or OU), when it is under a targeted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Under an organizational unit the StackSet targets (at any depth).
    pub targeted: bool,
}

/// What the last reconciliation saw, or why it could not look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    pub at: i64,
    pub accounts: Vec<SeenAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The organization as stored. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: OrganizationId,
    /// The tenant (Spot organization) it belongs to.
    pub org: String,
    /// The management account's Spot account; scopes who may see the members.
    pub account_id: SpotAccountId,
    pub partition: Partition,
    pub permissions: Permissions,
    pub management_account_id: AccountId,
    /// Empty: the whole organization (the stack asks for the root id).
    pub organizational_unit_ids: Vec<TargetId>,
    pub management_connection_id: ConnectionId,
    pub state: OrgState,
    #[serde(default)]
    pub last_reconciliation: Option<Reconciliation>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub version: u64,
}
