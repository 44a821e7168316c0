use super::error::ApiError;
use super::extract::{Json, Path, Query};
use super::AppState;
use crate::connections::{CreateRequest, ListQuery};
use crate::domain::{AccountId, Partition, RoleArn, SpotAccountId};
use crate::domain::{ConnectionId, Event, Method};
use crate::policy::Permissions;
use crate::tenancy::Tenant;
use crate::views::ConnectionView;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Longest Idempotency-Key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An automatic connection needs awsAccountId: its callback is bound to the account.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CreateConnection)]
pub struct CreateBody {
    account_id: SpotAccountId,
    partition: Partition,
    permissions: Permissions,
    aws_account_id: Option<AccountId>,
    #[serde(default = "manual")]
    #[schema(default = "manual")]
    method: Method,
}

fn manual() -> Method {
    Method::Manual
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| (1..=MAX_IDEMPOTENCY_KEY).contains(&k.len()) && k.bytes().all(|b| (0x21..0x7f).contains(&b)));
    key.map(|k| Some(k.to_owned())).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )
    })
}

/// A malformed id reads like an unknown one.
pub fn parse_id(raw: &str) -> Result<ConnectionId, ApiError> {
    raw.parse()
        .map_err(|_| crate::connections::ServiceError::NotFound.into())
}

pub fn view(state: &AppState, c: crate::domain::Connection) -> ConnectionView {
    let principal = state.connections.principal(c.partition).ok();
    ConnectionView::new(c, principal, state.connections.now())
}

#[utoipa::path(post, path = "/v1/connections", tag = "connect", operation_id = "createConnection",
    summary = "Issue an external ID and start connecting an AWS account (honours Idempotency-Key)",
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]+$", max_length = 255,
        description = "Replays the first answer to a repeated request with the same key")),
    request_body = CreateBody,
    responses(
        (status = 201, body = ConnectionView, description = "Created"),
        (status = 200, body = ConnectionView, description = "The answer to an earlier request with this Idempotency-Key"),
        (status = 400, description = "Malformed JSON or Idempotency-Key"),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 409, description = "The account has a live connection, or the Idempotency-Key was used for another request"),
        (status = 422, description = "A value is not acceptable; see the error code"),
        (status = 503, description = "The database cannot be reached (store_unavailable), too many requests changed the same record at once (too_many_concurrent_writes), or the automatic flow's template cannot be stored (template_upload_failed); retry after Retry-After"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let req = CreateRequest {
        account_id: body.account_id,
        partition: body.partition,
        permissions: body.permissions,
        aws_account_id: body.aws_account_id,
        method: body.method,
    };
    let (conn, created) = state.connections.create(&tenant, req, key).await?;
    Ok(created_or_replayed(created, view(&state, conn)))
}

/// 201 for a new record; 200 with `Idempotent-Replayed: true` for the
/// answer to an earlier request with the same Idempotency-Key.
pub(super) fn created_or_replayed(created: bool, body: impl serde::Serialize) -> Response {
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut res = (status, Json(body)).into_response();
    if !created {
        res.headers_mut()
            .insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    res
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this Spot account's connections.
    account_id: Option<SpotAccountId>,
    /// Only this AWS Organization's members, by AWS account (not with
    /// accountId); the other filters apply to them alike.
    organization_id: Option<crate::organizations::OrganizationId>,
    /// Only connections in this status.
    status: Option<crate::domain::Status>,
    /// Only connections of this health.
    health: Option<crate::domain::Health>,
    /// Only connections last checked (conclusively) before this RFC 3339
    /// time, e.g. 2026-01-31T00:00:00Z.
    #[param(value_type = Option<String>, format = DateTime)]
    checked_before: Option<String>,
    /// nextCursor of the previous page.
    cursor: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 100)] // store::MAX_PAGE
    limit: Option<usize>,
}

/// `checkedBefore` as unix seconds.
fn checked_before(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| Some(t.unix_timestamp()))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                "checkedBefore is an RFC 3339 time with a zone, e.g. 2026-01-31T00:00:00Z",
            )
        })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ConnectionList)]
pub struct ListView {
    items: Vec<ConnectionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/connections", tag = "connect", operation_id = "listConnections",
    summary = "Page through the tenant's connections",
    params(ListParams),
    responses(
        (status = 200, body = ListView),
        (status = 400, description = "A query parameter or the cursor is not valid"),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    Query(p): Query<ListParams>,
) -> Result<Json<ListView>, ApiError> {
    check_limit(p.limit)?;
    let q = ListQuery {
        account_id: p.account_id,
        status: p.status,
        health: p.health,
        checked_before: checked_before(p.checked_before.as_deref())?,
        cursor: p.cursor,
        limit: p.limit,
    };
    let page = match &p.organization_id {
        Some(_) if q.account_id.is_some() => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "organizationId and accountId do not combine: members have no Spot account until one is assigned",
            ))
        }
        Some(org) => state.organizations.member_page(&tenant, org, &q).await?,
        None => state.connections.list(&tenant, &q).await?,
    };
    Ok(Json(ListView {
        items: page.items.into_iter().map(|c| view(&state, c)).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub(super) fn check_limit(limit: Option<usize>) -> Result<(), ApiError> {
    if limit.is_some_and(|l| l == 0 || l > crate::store::MAX_PAGE) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is 1 to {}", crate::store::MAX_PAGE),
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connect", operation_id = "getConnection",
    summary = "One connection",
    params(("id" = ConnectionId, Path, description = "The connection (a malformed id reads as unknown: 404)")),
    responses((status = 200, body = ConnectionView), (status = 404, description = "No such connection for this token"), (status = 503, description = "The database cannot be reached; retry after Retry-After")))]
pub async fn get_one(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let c = state.connections.get(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connect", operation_id = "disconnect",
    summary = "Disconnect; the external ID is retired and never reissued",
    params(("id" = ConnectionId, Path, description = "The connection (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = ConnectionView),
        (status = 404, description = "No such connection for this token"),
        (status = 409, description = "The connection cannot be disconnected in its status, or it is an organization's management connection (managed_by_organization: offboard the organization instead)"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn disconnect(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let c = state.connections.disconnect_by_client(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

#[utoipa::path(post, path = "/v1/connections/{id}/external-id", tag = "connect", operation_id = "rotateExternalId",
    summary = "Issue a new external ID beside the current one (409 rotation_pending while one is pending)",
    params(("id" = ConnectionId, Path, description = "The connection (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = ConnectionView),
        (status = 404, description = "No such connection for this token"),
        (status = 409, description = "A rotation is pending, or the status does not allow one, or it is an organization's management connection (managed_by_organization: the management stack holds its external ID)"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let c = state.connections.rotate(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Event)]
pub struct EventView {
    kind: crate::domain::EventKind,
    #[schema(format = DateTime)]
    at: String,
    actor: String,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EventList)]
pub struct EventsView {
    items: Vec<EventView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// nextCursor of the previous page.
    cursor: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 100)] // store::MAX_PAGE
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/connections/{id}/events", tag = "connect", operation_id = "listEvents",
    summary = "The connection's audit trail",
    params(("id" = ConnectionId, Path, description = "The connection (a malformed id reads as unknown: 404)"), EventParams),
    responses(
        (status = 200, body = EventsView),
        (status = 400, description = "A query parameter or the cursor is not valid"),
        (status = 404, description = "No such connection for this token"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn events(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    Query(p): Query<EventParams>,
) -> Result<Json<EventsView>, ApiError> {
    check_limit(p.limit)?;
    let id = parse_id(&id)?;
    let page = state
        .connections
        .events(&tenant, &id, p.cursor.as_deref(), p.limit)
        .await?;
    let items = page
        .items
        .into_iter()
        .map(|e: Event| EventView {
            kind: e.kind,
            at: crate::views::iso(e.at),
            actor: e.actor,
            outcome: e.outcome,
            detail: e.detail,
        })
        .collect();
    Ok(Json(EventsView {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = RoleRequest)]
pub struct RoleBody {
    /// Parsed by the role_arn check, so a bad ARN gets a full report.
    #[schema(value_type = RoleArn)]
    role_arn: String,
}

/// What `GET /v1/connections/{id}/template` answers: a CloudFormation template.
pub(super) struct CloudFormationTemplate;

crate::domain::string_newtype_schema!(
    CloudFormationTemplate,
    serde_json::json!({
        "type": "object",
        "required": ["AWSTemplateFormatVersion", "Resources"],
        "properties": {
            "AWSTemplateFormatVersion": {"type": "string", "enum": ["2010-09-09"]},
            "Description": {"type": "string"},
            "Parameters": {"type": "object"},
            "Resources": {"type": "object"},
            "Outputs": {"type": "object"}
        }
    })
);

#[utoipa::path(post, path = "/v1/connections/{id}/role", tag = "connect", operation_id = "connectRole",
    summary = "Verify a role (AssumeRole with the external ID, trust policy, permissions) and connect it; 422 carries the report",
    params(("id" = ConnectionId, Path, description = "The connection (a malformed id reads as unknown: 404)")),
    request_body = RoleBody,
    responses(
        (status = 200, body = ConnectionView),
        (status = 400, description = "Malformed JSON"),
        (status = 404, description = "No such connection for this token"),
        (status = 409, description = "The status does not allow it, or another connection holds the role, or another verification of this connection is running (verification_in_progress; retry after Retry-After), or it is an organization's management connection (managed_by_organization: its role is the management stack's)"),
        (status = 422, description = "The role failed verification (details.report says what to change), or a value is not acceptable"),
        (status = 429, description = "The organization's verifications this minute are used up (rate_limited, details.limit = verifications; 60 a minute by default); nothing was done, retry after Retry-After"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn connect_role(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    Json(body): Json<RoleBody>,
) -> Result<Json<ConnectionView>, ApiError> {
    let budget = std::time::Duration::from_secs(state.config.propagation_budget_secs);
    let (c, _report) = state
        .connections
        .connect_role(&tenant, &parse_id(&id)?, body.role_arn.trim(), budget)
        .await?;
    Ok(Json(view(&state, c)))
}

#[utoipa::path(post, path = "/v1/connections/{id}/checks", tag = "connect", operation_id = "recheckConnection",
    summary = "Re-run the checks on a connected role and record its health",
    params(("id" = ConnectionId, Path, description = "The connection (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = ConnectionView),
        (status = 404, description = "No such connection for this token"),
        (status = 409, description = "The connection is not connected"),
        (status = 429, description = "The organization's re-checks this minute are used up (rate_limited, details.limit = rechecks; 60 a minute by default); nothing was done, retry after Retry-After"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn checks(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let (c, _report) = state.connections.recheck(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

#[utoipa::path(get, path = "/v1/connections/{id}/template", tag = "connect", operation_id = "getTemplate",
    summary = "The connection's CloudFormation template (role, policies, callback); an organization's management or member template for its connections",
    params(("id" = ConnectionId, Path, description = "The connection (a malformed id reads as unknown: 404)")),
    responses((status = 200, body = CloudFormationTemplate), (status = 404, description = "No such connection for this token"), (status = 503, description = "The database cannot be reached; retry after Retry-After")))]
/// The connection's CloudFormation template, ready for the console.
pub async fn template(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = state.connections.get(&tenant, &parse_id(&id)?).await?;
    // An organization's management connection runs the organization's stack.
    if let Some(m) = c.organization.as_ref().filter(|m| m.management) {
        return Ok(Json(state.organizations.template(&tenant, &m.organization_id).await?));
    }
    // A member runs the StackSet's member template, never a stack of its own.
    if let Some(m) = c.organization.as_ref().filter(|m| !m.management) {
        return Ok(Json(
            state.organizations.member_template(&tenant, &m.organization_id).await?,
        ));
    }
    Ok(Json(state.connections.template_for(&c)?))
}
