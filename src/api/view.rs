//! How a connection looks to API clients, and service errors as API errors.

use super::error::ApiError;
use crate::connections::{trust_policy, Connection, Health, Method, ServiceError, Status};
use crate::domain::{AccountId, ExternalId, Partition, RoleArn, SpotAccountId};
use crate::policy::{render_shared, Permissions, RenderedPolicy, Selection};
use crate::store::StoreError;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

pub use crate::clock::iso;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Connection)]
pub struct ConnectionView {
    #[schema(value_type = crate::connections::ConnectionId)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The last verification report.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_formation: Option<crate::connections::CloudFormationLinks>,
    /// The stack that connected it (automatic flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<crate::connections::ConnectedStack>,
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

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::not_found(
                "connection_not_found",
                "no connection with this id; list yours with GET /v1/connections",
            ),
            ServiceError::AccountNotAllowed(a) => ApiError::new(
                StatusCode::FORBIDDEN,
                "account_not_allowed",
                format!("your token does not allow acting on the Spot account {a}"),
            ),
            ServiceError::PartitionNotConfigured(p) => ApiError::unprocessable(
                "partition_not_configured",
                format!(
                    "{} accounts cannot be connected here yet: no vendor principal is configured for {p}",
                    p.display_name()
                ),
            ),
            ServiceError::Selection(e) => e.into(),
            ServiceError::Render(e) => e.into(),
            ServiceError::AccountBusy(id) => ApiError::conflict(
                "account_has_connection",
                format!(
                    "this Spot account already has a live connection ({}); use it, or disconnect it first",
                    id.as_str()
                ),
            )
            .with_details(json!({"connectionId": id.as_str()})),
            ServiceError::IdempotencyMismatch => ApiError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key for a new request",
            ),
            ServiceError::WrongStatus { status, action } => ApiError::conflict(
                "invalid_status",
                format!("cannot {action} a connection that is {}", status.as_str()),
            )
            .with_details(json!({"status": status})),
            ServiceError::VerificationFailed { report, .. } => {
                let failed: Vec<&str> = report.failed_checks().map(|c| c.title.as_str()).collect();
                ApiError::unprocessable(
                    "verification_failed",
                    format!("The role is not connected: {} failed. The report says what to change.", failed.join(", ")),
                )
                .with_details(json!({ "report": report }))
            }
            ServiceError::RoleHeld => ApiError::conflict(
                "role_already_connected",
                "another connection is already connected to this role; create a separate role for this account or disconnect the other connection",
            ),
            ServiceError::RotationPending(pending) => ApiError::conflict(
                "rotation_pending",
                format!(
                    "a rotation is already pending with the external ID {}: put it in the role's trust policy and \
                     verify the role (POST /v1/connections/{{id}}/role) to finish it before rotating again",
                    pending.as_str()
                ),
            )
            .with_details(json!({"pendingExternalId": pending.as_str()})),
            ServiceError::InvalidCursor(crate::connections::cursor::CursorError::Expired) => ApiError::bad_request(
                "invalid_cursor",
                "the cursor has expired; start again without it",
            ),
            ServiceError::InvalidCursor(_) | ServiceError::Store(StoreError::OutsideQuery) => ApiError::bad_request(
                "invalid_cursor",
                "the cursor is not one this API gave out for this query and token; start again without it",
            ),
            ServiceError::AwsAccountRequired => ApiError::unprocessable(
                "aws_account_id_required",
                "an automatic connection needs awsAccountId: the 12-digit id of the AWS account the stack will run in (the account you are logged in to)",
            )
            .with_details(json!({"field": "awsAccountId"})),
            ServiceError::OtherStack(s) => ApiError::conflict(
                "connected_by_another_stack",
                format!("this connection is connected by the CloudFormation stack {}; change or delete that stack", s.stack_id),
            ),
            ServiceError::Store(StoreError::Unavailable(m)) => {
                tracing::warn!(reason = %m, "store unavailable");
                ApiError::unavailable(
                    "the service cannot reach its database right now; nothing was saved, try again in a moment",
                )
            }
            ServiceError::Store(StoreError::Conflict) => ApiError::conflict(
                "concurrent_change",
                "the connection changed while we were updating it; read it again and retry",
            ),
            ServiceError::Store(other) => ApiError::internal(format!("storage error: {other}")),
        }
    }
}
