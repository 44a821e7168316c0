//! A connection as stored and its audit trail: the model every layer above
//! the domain shares (the store persists it, the services change it).

use super::{AccountId, ExternalId, Partition, Permissions, RoleArn, SpotAccountId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// `con-` and 96 random bits, hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn generate() -> Self {
        ConnectionId(super::random_id("con-"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ConnectionId {
    type Err = super::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if super::is_id(s, "con-") {
            Ok(ConnectionId(s.to_owned()))
        } else {
            Err(super::ParseError::new(
                "id",
                format!("{s:?} is not a connection id (con- and 24 hex digits)"),
            ))
        }
    }
}

impl Serialize for ConnectionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
super::string_newtype_schema!(
    ConnectionId,
    serde_json::json!({"type": "string", "pattern": "^con-[0-9a-f]{24}$", "examples": ["con-0123456789abcdef01234567"]})
);

impl<'de> Deserialize<'de> for ConnectionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(|e: super::ParseError| serde::de::Error::custom(e.message))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Manual,
    Automatic,
}

/// Stored states; `expired` is derived on read from `expires_at`, so it
/// holds before any TTL deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Connected,
    Disconnected,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Connected => "connected",
            Status::Disconnected => "disconnected",
            Status::Expired => "expired",
        }
    }
}

impl FromStr for Status {
    type Err = super::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Status::Pending,
            Status::Connected,
            Status::Disconnected,
            Status::Expired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| super::ParseError::new("status", "status is one of pending, connected, disconnected, expired"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ConnectionHealth)]
pub enum Health {
    Healthy,
    Degraded,
    Broken,
}

/// A connection as stored. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: ConnectionId,
    pub org: String,
    pub account_id: SpotAccountId,
    pub partition: Partition,
    pub method: Method,
    pub permissions: Permissions,
    pub aws_account_id: Option<AccountId>,
    pub external_id: ExternalId,
    pub pending_external_id: Option<ExternalId>,
    /// IDs this connection used before a rotation; retired, never reissued.
    #[serde(default)]
    pub previous_external_ids: Vec<String>,
    /// Stored state: pending, connected or disconnected.
    pub state: Status,
    pub health: Option<Health>,
    pub role_arn: Option<RoleArn>,
    /// The last verification report.
    pub report: Option<serde_json::Value>,
    /// Where the automatic flow's template lives (automatic connections).
    #[serde(default)]
    pub cloud_formation: Option<CloudFormationLinks>,
    /// The stack whose custom resource connected it: the only stack whose
    /// Update and Delete the callback acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<ConnectedStack>,
    /// The AWS Organization it belongs to, as its management account or a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<super::Membership>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    /// Until when an unused (pending) external ID is valid.
    pub expires_at: i64,
    pub verified_at: Option<i64>,
    /// When a check last ended conclusively (a verification or a re-check
    /// that was not throttled or cut short); staleness is measured from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<i64>,
    /// What the last check found missing and how to close it (degraded only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// What the last conclusive check read from the role, so the next one
    /// fetches again only what moved. Records written before it load without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read: Option<LastRead>,
    /// Optimistic concurrency: every change is conditional on it.
    pub version: u64,
}

/// What a new connection is made of; everything else starts empty (pending,
/// no role, no report, never checked).
pub struct NewConnection {
    pub id: ConnectionId,
    pub org: String,
    pub account_id: SpotAccountId,
    pub partition: Partition,
    pub method: Method,
    pub permissions: Permissions,
    pub aws_account_id: Option<AccountId>,
    pub external_id: ExternalId,
    pub organization: Option<super::Membership>,
    pub created_by: String,
    pub at: i64,
    pub expires_at: i64,
}

impl Connection {
    pub fn new_pending(n: NewConnection) -> Connection {
        Connection {
            id: n.id,
            org: n.org,
            account_id: n.account_id,
            partition: n.partition,
            method: n.method,
            permissions: n.permissions,
            aws_account_id: n.aws_account_id,
            external_id: n.external_id,
            pending_external_id: None,
            previous_external_ids: Vec::new(),
            state: Status::Pending,
            health: None,
            role_arn: None,
            report: None,
            cloud_formation: None,
            stack: None,
            organization: n.organization,
            created_at: n.at,
            created_by: n.created_by,
            updated_at: n.at,
            expires_at: n.expires_at,
            verified_at: None,
            checked_at: None,
            drift: None,
            last_read: None,
            version: 1,
        }
    }

    pub fn status(&self, now: i64) -> Status {
        match self.state {
            Status::Pending if now >= self.expires_at => Status::Expired,
            s => s,
        }
    }

    /// Holds the Spot account: pending and unexpired, or connected.
    pub fn is_active(&self, now: i64) -> bool {
        matches!(self.status(now), Status::Pending | Status::Connected)
    }

    /// Its Spot account, if it has one: an organization member has none
    /// until the platform assigns one (`account_id` then only scopes access).
    pub fn spot_account(&self) -> Option<&SpotAccountId> {
        match &self.organization {
            Some(m) if !m.spot_account_assigned => None,
            _ => Some(&self.account_id),
        }
    }
}

/// What a conclusive check read from the role: the managed policies'
/// default versions, the inline policies, the trust policy and the boundary
/// (as digests), and what IAM's policy simulator was asked and answered.
/// The next check of the same role compares what it reads cheaply (the
/// policy lists, each policy's default version, the role's record) with
/// this, and reads the documents and asks the simulator again only when
/// something moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRead {
    /// The role it was read from: another role starts afresh.
    pub role_arn: String,
    /// The attached managed policies, in the order IAM listed them.
    #[serde(default)]
    pub managed: Vec<PolicyRead>,
    /// The inline policies, in the order IAM listed them.
    #[serde(default)]
    pub inline: Vec<InlineRead>,
    /// The role may read its own record with iam:GetRole (which shows the
    /// permissions boundary); false: AWS refused it, so ListRoles serves
    /// until the role's policies change.
    pub get_role: bool,
    /// The permissions boundary GetRole showed; None without one, or when
    /// the record was read through ListRoles (which does not show it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<PolicyRead>,
    /// Digest of the trust policy.
    pub trust_digest: String,
    /// Digest of the actions (and their resources) the selection required.
    pub actions_digest: String,
    /// Digest of the role's policies and boundary as read (the
    /// versions and digests above, and how the record was read).
    pub policies_digest: String,
    /// What IAM's simulator answered; None when it did not answer (an
    /// error that says nothing, or it was never asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<SimulationRead>,
    /// Digest of the permissions check these reads gave, as the
    /// connection's report holds it: the next check reuses that check only
    /// while nothing it rests on moved.
    pub permissions_digest: String,
}

/// A managed policy (or a boundary) as GetPolicy and GetPolicyVersion read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRead {
    pub arn: String,
    /// IAM's id of the policy: a policy deleted and created again under the
    /// same name has another (and may reuse version ids).
    pub policy_id: String,
    pub default_version: String,
    /// Digest of that version's document (versions never change in IAM).
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineRead {
    pub name: String,
    /// Digest of its document: inline policies have no versions, so they
    /// are read on every check and compared.
    pub digest: String,
}

/// One conclusive answer of IAM's policy simulator (or its refusal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationRead {
    /// When it was asked (unix seconds, the service's clock).
    pub at: i64,
    /// The role may not call iam:SimulatePrincipalPolicy: not asked again
    /// until its policies or boundary change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Digest of the role's policies and boundary it was asked about.
    pub policies: String,
    /// Digest of the actions it was asked about.
    pub actions: String,
}

/// A connected role that lacks actions its bundles need, and the fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// Per bundle, the actions the role does not grant.
    pub missing: std::collections::BTreeMap<String, Vec<String>>,
    pub fix: DriftFix,
    pub found_at: i64,
}

/// How the customer closes the drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum DriftFix {
    /// Update the stack that connected it with the current template.
    #[serde(rename_all = "camelCase")]
    UpdateStack {
        stack_id: String,
        update_url: String,
        template_url: String,
    },
    /// Paste the current policy documents (the connection's `policies`).
    #[serde(rename_all = "camelCase")]
    EditPolicy { steps: String },
    /// An organization member: update the organization's StackSet, in its
    /// management account, with the current member template.
    #[serde(rename_all = "camelCase")]
    UpdateStackSet {
        stack_set_name: String,
        management_account_id: AccountId,
        region: String,
        console_url: String,
        template_url: String,
        steps: String,
    },
}

impl DriftFix {
    pub fn kind(&self) -> &'static str {
        match self {
            DriftFix::UpdateStack { .. } => "updateStack",
            DriftFix::EditPolicy { .. } => "editPolicy",
            DriftFix::UpdateStackSet { .. } => "updateStackSet",
        }
    }
}

/// The automatic flow's stack and links; absent links carry the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudFormationLinks {
    pub stack_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_create_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
}

/// A CloudFormation stack, by its StackId ARN and the account in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedStack {
    pub stack_id: String,
    pub account_id: AccountId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    Created,
    Rotated,
    Verified,
    Failed,
    Checked,
    Disconnected,
    /// An organization's reconciliation changed the member's state.
    Reconciled,
}

/// One line of a connection's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub connection_id: ConnectionId,
    pub kind: EventKind,
    pub at: i64,
    pub actor: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// Largest `detail` an event keeps: a bigger one is replaced by its size, so
/// no caller can grow the audit trail without bound.
pub const MAX_EVENT_DETAIL_BYTES: usize = 4096;

impl Event {
    /// The one writer of audit events, for every service.
    pub fn new(
        at: i64,
        c: &Connection,
        kind: EventKind,
        actor: &str,
        outcome: &str,
        detail: Option<serde_json::Value>,
    ) -> Event {
        let detail = detail.map(|d| {
            let size = serde_json::to_vec(&d).map(|v| v.len()).unwrap_or(usize::MAX);
            if size <= MAX_EVENT_DETAIL_BYTES {
                d
            } else {
                serde_json::json!({"truncated": true, "bytes": size})
            }
        });
        Event {
            connection_id: c.id.clone(),
            kind,
            at,
            actor: actor.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        }
    }
}
