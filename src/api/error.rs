//! One error shape for every route: `{"error": {"code", "message", "details"}}`,
//! and the one place where the layers' typed errors get an HTTP status and a
//! stable code (their messages are their own).

use crate::connections::ServiceError;
use crate::store::StoreError;
use crate::tenancy::TenancyError;
use crate::verify::Report;
use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable; clients switch on it.
    pub code: &'static str,
    /// For a person: what is wrong and what to do.
    pub message: String,
    pub details: Option<Value>,
    pub retry_after_secs: Option<u32>,
    /// The failed verification's report, typed, for the Spot envelope's
    /// one-error-per-failed-check (`details` carries it as JSON).
    pub report: Option<Box<Report>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
            report: None,
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", message);
        e.retry_after_secs = Some(2);
        e
    }
    /// A body that is a JSON array where the API takes an object.
    pub fn not_an_object() -> Self {
        Self::unprocessable(
            "invalid_body",
            "the request body does not match the expected shape: send a JSON object, not an array",
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
        }
    }
}

/// The body of every error outside the Spot-compatible routes.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, machine-readable; clients switch on it.
    code: &'static str,
    /// What is wrong and what to do.
    message: &'a str,
    /// Facts about the refusal, such as the offending field or id, or the
    /// verification report.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<&'a Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        } else {
            tracing::info!(code = self.code, status = self.status.as_u16(), "request refused");
        }
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        res
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match &r {
            JsonRejection::JsonDataError(e) => ApiError::unprocessable(
                "invalid_body",
                format!(
                    "the request body does not match the expected shape: {}",
                    without_type_names(
                        &std::error::Error::source(e)
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| e.body_text())
                    )
                ),
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
                "malformed_json",
                format!(
                    "the request body is not valid JSON: {}",
                    std::error::Error::source(e)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| e.body_text())
                ),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with the header Content-Type: application/json",
            ),
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over the {} byte limit", super::BODY_LIMIT_BYTES),
            ),
            _ => ApiError::bad_request("unreadable_body", r.body_text()),
        }
    }
}

/// serde's "expected struct CreateBody" names a Rust type: a person reads
/// "expected an object" (or "a value", for an enum) instead.
fn without_type_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("expected ") {
        let (before, after) = rest.split_at(at + "expected ".len());
        out.push_str(before);
        let (said, tail) = if let Some(t) = after.strip_prefix("struct ") {
            ("an object", t)
        } else if let Some(t) = after.strip_prefix("tuple struct ") {
            ("an array", t)
        } else if let Some(t) = after.strip_prefix("enum ") {
            ("one of the documented values", t)
        } else {
            rest = after;
            continue;
        };
        out.push_str(said);
        rest = tail.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
    }
    out.push_str(rest);
    out
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        match &r {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                PathErrorKind::InvalidUtf8InPathParam { key } => ApiError::bad_request(
                    "invalid_path",
                    format!("the path's {key} is not valid UTF-8 once percent-decoded"),
                ),
                _ => ApiError::bad_request("invalid_path", "the path does not name a resource of this API"),
            },
            // A route whose handler reads a parameter its path lacks: ours.
            _ => ApiError::internal(format!("the route's path parameters: {}", r.body_text())),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        let detail = match &r {
            QueryRejection::FailedToDeserializeQueryString(e) => std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.body_text()),
            _ => r.body_text(),
        };
        ApiError::bad_request("invalid_query", format!("the query string is not valid: {detail}"))
    }
}

impl From<crate::policy::SelectionError> for ApiError {
    fn from(e: crate::policy::SelectionError) -> Self {
        let mut err = ApiError::unprocessable(e.code(), e.to_string());
        if let Some(id) = e.offending_id() {
            err = err.with_details(json!({ "id": id }));
        }
        err
    }
}

impl From<crate::policy::RenderError> for ApiError {
    fn from(e: crate::policy::RenderError) -> Self {
        ApiError::unprocessable("policy_too_large", e.to_string())
    }
}

impl From<crate::domain::ParseError> for ApiError {
    fn from(e: crate::domain::ParseError) -> Self {
        ApiError::unprocessable("invalid_field", e.message.clone()).with_details(json!({ "field": e.field }))
    }
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        use TenancyError::*;
        let (status, code) = match &e {
            AccountsClaimMissing => (StatusCode::FORBIDDEN, "accounts_claim_missing"),
            AccountsNotEvery | TooManyAccounts | EveryInList | NotSpotAccounts => {
                (StatusCode::FORBIDDEN, "invalid_accounts_claim")
            }
            NoAuthorizer
            | NoCredentials
            | NotBearer
            | NoSecret
            | EmptySecret
            | Expired
            | NotYetValid
            | WrongAlgorithm
            | WrongIssuer { .. }
            | WrongAudience { .. }
            | MissingClaim(_)
            | InvalidToken
            | InvalidIdentity => (StatusCode::UNAUTHORIZED, "unauthorized"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::NotFound => ApiError::not_found("connection_not_found", message),
            ServiceError::AccountNotAllowed(_) => ApiError::new(StatusCode::FORBIDDEN, "account_not_allowed", message),
            ServiceError::PartitionNotConfigured(p) => {
                ApiError::unprocessable("partition_not_configured", message).with_details(json!({"partition": p}))
            }
            ServiceError::PartitionCredentialsMissing(p) => {
                ApiError::unprocessable("partition_not_configured", message)
                    .with_details(json!({"partition": p, "setting": crate::config::Config::credential_settings(p)[0]}))
            }
            ServiceError::Selection(e) => e.into(),
            ServiceError::Render(e) => e.into(),
            ServiceError::AccountBusy(id) => {
                ApiError::conflict("account_has_connection", message).with_details(json!({"connectionId": id.as_str()}))
            }
            ServiceError::IdempotencyMismatch => ApiError::conflict("idempotency_key_reused", message),
            ServiceError::WrongStatus { status, .. } => {
                ApiError::conflict("invalid_status", message).with_details(json!({"status": status}))
            }
            ServiceError::VerificationFailed { report, .. } => {
                let mut err =
                    ApiError::unprocessable("verification_failed", message).with_details(json!({ "report": report }));
                err.report = Some(report);
                err
            }
            ServiceError::RoleHeld => ApiError::conflict("role_already_connected", message),
            ServiceError::ManagedByOrganization(o) => ApiError::conflict("managed_by_organization", message)
                .with_details(json!({"organizationId": o.as_str()})),
            ServiceError::RotationPending(pending) => ApiError::conflict("rotation_pending", message)
                .with_details(json!({"pendingExternalId": pending.as_str()})),
            ServiceError::InvalidCursor(_) | ServiceError::Store(StoreError::OutsideQuery) => {
                ApiError::bad_request("invalid_cursor", message)
            }
            ServiceError::RateLimited(t) => {
                let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
                    .with_details(json!({"limit": t.limit.as_str(), "perMinute": t.per_minute}));
                err.retry_after_secs = Some(t.retry_after_secs);
                err
            }
            ServiceError::VerificationInProgress => {
                let mut err = ApiError::conflict("verification_in_progress", message);
                err.retry_after_secs = Some(crate::connections::IN_PROGRESS_RETRY_SECS);
                err
            }
            ServiceError::VendorAccount(_) => ApiError::unprocessable("vendor_account_refused", message),
            ServiceError::AwsAccountRequired => ApiError::unprocessable("aws_account_id_required", message)
                .with_details(json!({"field": "awsAccountId"})),
            ServiceError::OtherStack(_) => ApiError::conflict("connected_by_another_stack", message),
            ServiceError::Store(StoreError::Unavailable(m)) => {
                tracing::warn!(reason = %m, "store unavailable");
                ApiError::unavailable(message)
            }
            // Lost every race with other writers: retryable, and not the
            // store being down.
            ServiceError::TooManyConcurrentWrites => {
                let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_concurrent_writes", message);
                err.retry_after_secs = Some(1);
                err
            }
            ServiceError::TemplateUpload(e) => {
                tracing::warn!(bucket = %e.bucket, reason = %e.detail, "template upload failed");
                let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "template_upload_failed", message);
                err.retry_after_secs = Some(2);
                err
            }
            ServiceError::Store(StoreError::Conflict) => ApiError::conflict("concurrent_change", message),
            ServiceError::Store(_) => ApiError::internal(message),
        }
    }
}

impl From<crate::organizations::OrganizationError> for ApiError {
    fn from(e: crate::organizations::OrganizationError) -> Self {
        use crate::organizations::OrganizationError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("organization_not_found", message),
            E::Offboarded => ApiError::conflict("organization_offboarded", message),
            E::CallbackUnavailable(_) => ApiError::unprocessable("organization_flow_unavailable", message),
            E::TooManyTargets(_) => ApiError::unprocessable("too_many_organizational_units", message)
                .with_details(json!({"field": "organizationalUnitIds"})),
            E::MemberTemplateTooLarge(_) => ApiError::unprocessable("member_template_too_large", message)
                .with_details(json!({"field": "permissions"})),
            E::NotAMember => ApiError::not_found("member_not_found", message),
            E::SpotAccountAssigned(a) => {
                ApiError::conflict("spot_account_assigned", message).with_details(json!({"accountId": a.as_str()}))
            }
            E::MembersNotAllowed(accounts) => ApiError::new(StatusCode::FORBIDDEN, "members_not_allowed", message)
                .with_details(json!({"accountIds": accounts.iter().map(|a| a.as_str()).collect::<Vec<_>>()})),
            E::ManagementNotConnected(_) => ApiError::conflict("management_not_connected", message),
            E::OrganizationUnreadable(_) => ApiError::new(StatusCode::BAD_GATEWAY, "organization_unreadable", message),
            E::ManagementStackDeleted { id, .. } => ApiError::conflict("management_stack_deleted", message)
                .with_details(json!({"organizationId": id.as_str(), "state": "managementStackDeleted"})),
            E::Connection(e) => e.into(),
        }
    }
}

impl From<crate::webhooks::WebhookError> for ApiError {
    fn from(e: crate::webhooks::WebhookError) -> Self {
        use crate::webhooks::WebhookError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("webhook_not_found", message),
            E::NeedsFullAccess => ApiError::new(StatusCode::FORBIDDEN, "webhooks_need_full_access", message),
            E::Invalid(p) => ApiError::unprocessable("invalid_field", message).with_details(json!({"field": p.field})),
            E::DescriptionTooLong => {
                ApiError::unprocessable("invalid_field", message).with_details(json!({"field": "description"}))
            }
            E::UrlRefused(_) => {
                ApiError::unprocessable("webhook_url_refused", message).with_details(json!({"field": "url"}))
            }
            E::TooMany => ApiError::conflict("too_many_webhooks", message),
            E::Disabled => ApiError::conflict("webhook_disabled", message),
            E::TestRateLimited { retry_after_secs } => {
                let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "test_rate_limited", message);
                err.retry_after_secs = Some(retry_after_secs);
                err
            }
            E::DeliveryNotFound => ApiError::not_found("delivery_not_found", message),
            E::DeliveryPending => ApiError::conflict("delivery_pending", message),
            E::NotResendable => ApiError::conflict("delivery_not_resendable", message),
            E::InvalidCursor(_) | E::Store(StoreError::OutsideQuery) => {
                ApiError::bad_request("invalid_cursor", message)
            }
            E::Store(StoreError::Unavailable(m)) => {
                tracing::warn!(reason = %m, "store unavailable");
                ApiError::unavailable("the database cannot be reached; retry shortly")
            }
            E::Store(StoreError::Conflict) => {
                let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_concurrent_writes", message);
                err.retry_after_secs = Some(1);
                err
            }
            E::Store(_) => ApiError::internal(message),
        }
    }
}

impl From<crate::automatic::relay_intake::IntakeError> for ApiError {
    fn from(e: crate::automatic::relay_intake::IntakeError) -> Self {
        use crate::automatic::relay_intake::IntakeError as E;
        let message = e.to_string();
        match e {
            E::NotConfigured(_) => ApiError::not_found("relay_not_configured", message),
            E::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message),
            E::Refused(_) => ApiError::new(StatusCode::UNAUTHORIZED, "relay_signature_invalid", message),
            E::KeyUnavailable { detail } => {
                tracing::error!(error = %detail, "cannot read a relay key");
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "relay_key_unavailable", message);
                e.retry_after_secs = Some(5);
                e
            }
            E::NotUtf8 => ApiError::bad_request("invalid_body", message),
            E::PartitionMismatch { .. } => ApiError::unprocessable("relay_partition_mismatch", message),
            E::Store(StoreError::Unavailable(m)) => {
                tracing::warn!(reason = %m, "store unavailable");
                let mut e = ApiError::unavailable(message);
                e.retry_after_secs = Some(5);
                e
            }
            E::Store(_) => ApiError::internal(message),
        }
    }
}

/// The callback could not finish a relayed request (the store is down, or
/// CloudFormation's answer did not get through): the relay retries.
impl From<crate::callback::RetryLater> for ApiError {
    fn from(e: crate::callback::RetryLater) -> Self {
        let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string());
        err.retry_after_secs = Some(5);
        err
    }
}
