use super::error::ApiError;
use super::extract::{Json, Query};
use super::view::ConnectionView;
use super::AppState;
use crate::auth::Tenant;
use crate::connections::{ConnectionId, CreateRequest, Event, ListQuery, Method};
use crate::domain::{AccountId, Partition, SpotAccountId};
use crate::policy::Permissions;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Longest Idempotency-Key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    account_id: SpotAccountId,
    partition: Partition,
    permissions: Permissions,
    aws_account_id: Option<AccountId>,
    #[serde(default = "manual")]
    method: Method,
}

fn manual() -> Method {
    Method::Manual
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
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

pub fn view(state: &AppState, c: crate::connections::Connection) -> ConnectionView {
    let principal = state.connections.principal(c.partition).ok();
    ConnectionView::new(c, principal, crate::connections::now())
}

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
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut res = (status, Json(view(&state, conn))).into_response();
    if !created {
        res.headers_mut()
            .insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok(res)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    account_id: Option<SpotAccountId>,
    status: Option<crate::connections::Status>,
    health: Option<crate::connections::Health>,
    checked_before: Option<String>,
    cursor: Option<String>,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListView {
    items: Vec<ConnectionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

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
    let page = state.connections.list(&tenant, &q).await?;
    Ok(Json(ListView {
        items: page.items.into_iter().map(|c| view(&state, c)).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn check_limit(limit: Option<usize>) -> Result<(), ApiError> {
    if limit.is_some_and(|l| l == 0 || l > crate::store::MAX_PAGE) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is 1 to {}", crate::store::MAX_PAGE),
        ));
    }
    Ok(())
}

pub async fn get_one(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let c = state.connections.get(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

pub async fn disconnect(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let c = state.connections.disconnect(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

pub async fn rotate(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let c = state.connections.rotate(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    kind: crate::connections::EventKind,
    at: String,
    actor: String,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsView {
    items: Vec<EventView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    cursor: Option<String>,
    limit: Option<usize>,
}

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
            at: super::view::iso(e.at),
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleBody {
    /// Parsed by the role_arn check, so a bad ARN gets a full report.
    role_arn: String,
}

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

pub async fn checks(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let (c, _report) = state.connections.recheck(&tenant, &parse_id(&id)?).await?;
    Ok(Json(view(&state, c)))
}

/// The connection's CloudFormation template, ready for the console.
pub async fn template(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = state.connections.get(&tenant, &parse_id(&id)?).await?;
    Ok(Json(state.connections.template_for(&c)?))
}
