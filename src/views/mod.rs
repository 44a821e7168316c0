//! How a connection looks to its readers: the API's answers and the
//! events' payloads (both entry points render the same view). No HTTP here.

mod drift;

use crate::domain::{trust_policy, Connection, Health, Method, Status};
use crate::domain::{AccountId, ExternalId, Partition, RoleArn, SpotAccountId};
use crate::policy::{render_shared, Permissions, RenderedPolicy, Selection};
use serde::Serialize;
use serde_json::Value;

pub use crate::clock::iso;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Connection)]
pub struct ConnectionView {
    #[schema(value_type = crate::domain::ConnectionId)]
    pub id: String,
    /// Absent for an organization member the platform has not assigned a
    /// Spot account yet (PUT /v1/connections/{id}/account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<SpotAccountId>,
    /// The AWS Organization it belongs to (its management account or a member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<crate::organizations::OrganizationId>,
    pub partition: Partition,
    pub method: Method,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    pub external_id: ExternalId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_external_id: Option<ExternalId>,
    /// Until when the unused external ID is valid (pending connections).
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The vendor principal to trust; null while none is configured for the partition.
    #[schema(required)]
    pub principal: Option<String>,
    /// The trust policy to give the role; null with the principal.
    #[schema(required, value_type = Option<Object>)]
    pub trust_policy: Option<Value>,
    pub permissions: Permissions,
    pub policies: Vec<RenderedPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_account_id: Option<AccountId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<RoleArn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub verified_at: Option<String>,
    /// When a check last ended conclusively.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub checked_at: Option<String>,
    /// What is missing and the one step that closes it (degraded only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<drift::DriftView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The last verification report.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_formation: Option<crate::domain::CloudFormationLinks>,
    /// The stack that connected it (automatic flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<crate::domain::ConnectedStack>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub version: u64,
}

impl ConnectionView {
    pub fn new(c: Connection, principal: Option<&str>, now: i64) -> Self {
        let policies = Selection::resolve(c.partition, &c.permissions)
            .ok()
            .and_then(|s| render_shared(&s).ok())
            .map(|r| r.policies.clone())
            .unwrap_or_default();
        let drift = c.drift.as_ref().map(|d| drift::DriftView::new(d, &policies));
        let checked_at = crate::connections::last_checked(&c);
        ConnectionView {
            id: c.id.as_str().to_owned(),
            status: c.status(now),
            trust_policy: principal.map(|p| trust_policy(p, &c.external_id, c.pending_external_id.as_ref())),
            principal: principal.map(str::to_owned),
            account_id: c.spot_account().cloned(),
            organization_id: c.organization.as_ref().map(|m| m.organization_id.clone()),
            partition: c.partition,
            method: c.method,
            health: c.health,
            external_id: c.external_id,
            pending_external_id: c.pending_external_id,
            expires_at: iso(c.expires_at),
            permissions: c.permissions,
            policies,
            aws_account_id: c.aws_account_id,
            role_arn: c.role_arn,
            verified_at: c.verified_at.map(iso),
            checked_at: checked_at.map(iso),
            drift,
            report: c.report,
            cloud_formation: c.cloud_formation,
            stack: c.stack,
            created_at: iso(c.created_at),
            created_by: c.created_by,
            updated_at: iso(c.updated_at),
            version: c.version,
        }
    }
}
