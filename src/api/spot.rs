//! Spot's public API for this job, so existing clients (spotinst-sdk2, the
//! Terraform module) work unchanged: Spot's envelope, HTTP 200 on success.

use super::error::ApiError;
use super::extract::{tenant_of, Json, Path};
use super::middleware::RequestId;
use super::AppState;
use crate::domain::{Connection, Health, Status};
use crate::domain::{ExternalId, RoleArn, SpotAccountId};
use crate::tenancy::Tenant;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Request facts the envelope echoes.
pub struct Envelope {
    id: String,
    method: Method,
    url: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Envelope {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        Ok(Envelope {
            id,
            method: parts.method.clone(),
            url: parts.uri.to_string(),
        })
    }
}

/// Spot's envelope around every answer of these routes.
#[derive(Serialize, ToSchema)]
pub struct SpotReply<T: ToSchema> {
    request: SpotRequest,
    response: SpotItems<T>,
}

/// The request, as Spot echoes it.
#[derive(Serialize, ToSchema)]
pub struct SpotRequest {
    id: String,
    url: String,
    method: String,
    #[schema(format = DateTime)]
    timestamp: String,
}

#[derive(Serialize, ToSchema)]
pub struct SpotStatus {
    /// The HTTP status, repeated.
    code: u16,
    message: String,
}

#[derive(Serialize, ToSchema)]
pub struct SpotItems<T: ToSchema> {
    status: SpotStatus,
    kind: String,
    items: Vec<T>,
    count: usize,
}

/// Spot's envelope around a refusal: the error first, then each failed check.
#[derive(Serialize, ToSchema)]
pub struct SpotErrorReply {
    request: SpotRequest,
    response: SpotErrors,
}

#[derive(Serialize, ToSchema)]
pub struct SpotErrors {
    status: SpotStatus,
    errors: Vec<SpotError>,
}

#[derive(Serialize, ToSchema)]
pub struct SpotError {
    code: String,
    message: String,
    /// The offending field of the first error, or null; absent on checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    field: Option<Option<String>>,
}

impl Envelope {
    fn request(&self) -> SpotRequest {
        SpotRequest {
            id: self.id.clone(),
            url: self.url.clone(),
            method: self.method.as_str().to_owned(),
            timestamp: crate::views::iso(crate::clock::now()),
        }
    }

    fn status(status: StatusCode) -> SpotStatus {
        SpotStatus {
            code: status.as_u16(),
            message: status.canonical_reason().unwrap_or("Error").to_owned(),
        }
    }

    pub fn ok<T: ToSchema + Serialize>(&self, kind: &str, items: Vec<T>) -> Response {
        let body = SpotReply {
            request: self.request(),
            response: SpotItems {
                status: SpotStatus {
                    code: 200,
                    message: "OK".into(),
                },
                kind: kind.to_owned(),
                count: items.len(),
                items,
            },
        };
        (StatusCode::OK, axum::Json(body)).into_response()
    }

    /// One item in Spot's envelope, or the error in it.
    pub fn reply<T: ToSchema + Serialize>(&self, kind: &str, result: Result<T, ApiError>) -> Response {
        match result {
            Ok(item) => self.ok(kind, vec![item]),
            Err(e) => self.error(e),
        }
    }

    pub fn error(&self, e: ApiError) -> Response {
        let field = e
            .details
            .as_ref()
            .and_then(|d| d.get("field"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut errors = vec![SpotError {
            code: e.code.to_owned(),
            message: e.message.clone(),
            field: Some(field),
        }];
        if let Some(report) = &e.report {
            errors.extend(report.failed_checks().map(|c| {
                SpotError {
                    code: c.id.as_str().to_owned(),
                    message: format!("{} {}", c.message, c.remediation.as_deref().unwrap_or(""))
                        .trim()
                        .to_owned(),
                    field: None,
                }
            }));
        }
        let body = SpotErrorReply {
            request: self.request(),
            response: SpotErrors {
                status: Self::status(e.status),
                errors,
            },
        };
        let mut res = (e.status, axum::Json(body)).into_response();
        if let Some(secs) = e.retry_after_secs {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

/// The tenant, with a Spot-shaped 401.
pub struct SpotTenant(pub Tenant);

impl FromRequestParts<AppState> for SpotTenant {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match tenant_of(parts, state) {
            Ok(t) => Ok(SpotTenant(t)),
            Err(e) => {
                let env = Envelope::from_request_parts(parts, state).await.expect("infallible");
                Err(env.error(e.into()))
            }
        }
    }
}

/// `accountId` from the query string, as Spot's API takes it.
pub fn account_param(query: Option<&str>) -> Result<SpotAccountId, ApiError> {
    let raw = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "accountId")
        .map(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_account_id",
                "add ?accountId=act-… (your Spot account id) to the URL",
            )
        })?;
    Ok(raw.parse()?)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpotExternalId {
    external_id: ExternalId,
    /// Until when an unused external ID is valid.
    #[schema(format = DateTime)]
    max_valid_until: String,
}

fn external_id_item(c: &Connection) -> SpotExternalId {
    SpotExternalId {
        external_id: c.external_id.clone(),
        max_valid_until: crate::views::iso(c.expires_at),
    }
}

#[utoipa::path(post, path = "/setup/credentials/aws/externalId", tag = "spot-compatible",
    operation_id = "spotCreateExternalId", summary = "Spot API: the account's external ID, created if it has none",
    params(("accountId" = SpotAccountId, Query, description = "The Spot account (act-…)")),
    responses(
        (status = 200, body = SpotReply<SpotExternalId>),
        (status = 400, description = "accountId is missing"),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 422, description = "accountId is not a Spot account id"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn create_external_id(
    State(state): State<AppState>,
    env: Envelope,
    tenant: SpotTenant,
    RawQuery(q): RawQuery,
) -> Response {
    let result = async {
        let account = account_param(q.as_deref())?;
        Ok::<_, ApiError>(state.connections.external_id_for_account(&tenant.0, &account).await?)
    }
    .await;
    env.reply(
        "spotinst:setup:credentials:aws:externalId",
        result.map(|c| external_id_item(&c)),
    )
}

#[utoipa::path(get, path = "/setup/credentials/aws/externalId/{accountId}", tag = "spot-compatible",
    operation_id = "spotReadExternalId", summary = "Spot API: read the account's external ID",
    params(("accountId" = SpotAccountId, Path, description = "The Spot account (act-…)")),
    responses(
        (status = 200, body = SpotReply<SpotExternalId>),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 404, description = "The account has no live external ID"),
        (status = 422, description = "accountId is not a Spot account id"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn read_external_id(
    State(state): State<AppState>,
    env: Envelope,
    tenant: SpotTenant,
    Path(account): Path<String>,
) -> Response {
    let result = async {
        let account: SpotAccountId = account.parse()?;
        state
            .connections
            .active_for_account(&tenant.0, &account)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(
                    "external_id_not_found",
                    "this Spot account has no live external ID; create one with POST /setup/credentials/aws/externalId",
                )
            })
    }
    .await;
    env.reply(
        "spotinst:setup:credentials:aws:externalId",
        result.map(|c| external_id_item(&c)),
    )
}

#[derive(serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCredentialsBody {
    credentials: SpotCredentials,
}

#[derive(serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpotCredentials {
    /// Checked like `roleArn` of `POST /v1/connections/{id}/role`.
    #[schema(value_type = RoleArn)]
    iam_role: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpotRole {
    account_id: SpotAccountId,
    iam_role: Option<RoleArn>,
    external_id: ExternalId,
    status: Status,
    health: Option<Health>,
}

fn role_item(c: &Connection, now: i64) -> SpotRole {
    SpotRole {
        account_id: c.account_id.clone(),
        iam_role: c.role_arn.clone(),
        external_id: c.external_id.clone(),
        status: c.status(now),
        health: c.health,
    }
}

#[utoipa::path(post, path = "/setup/credentials/aws", tag = "spot-compatible",
    operation_id = "spotSetCredentials", summary = "Spot API: connect the account's external ID to a role",
    params(("accountId" = SpotAccountId, Query, description = "The Spot account (act-…)")),
    request_body = SetCredentialsBody,
    responses(
        (status = 200, body = SpotReply<SpotRole>),
        (status = 400, description = "accountId is missing, or the body is not valid JSON"),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 404, description = "The account has no live external ID"),
        (status = 409, description = "The connection cannot take this role now (another verification of it is running: verification_in_progress, retry after Retry-After; or the account's connection is an organization's management connection: managed_by_organization); see the error code"),
        (status = 422, description = "A value is not acceptable, or the role failed verification (one error per failed check)"),
        (status = 429, description = "The organization's verifications this minute are used up (rate_limited; 60 a minute by default); nothing was done, retry after Retry-After"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
/// Spot's set-credentials: connects the account's live connection to the role.
pub async fn set_credentials(
    State(state): State<AppState>,
    env: Envelope,
    tenant: SpotTenant,
    RawQuery(q): RawQuery,
    body: Result<Json<SetCredentialsBody>, ApiError>,
) -> Response {
    let result = async {
        let account = account_param(q.as_deref())?;
        let Json(body) = body?;
        let conn = state.connections.active_for_account(&tenant.0, &account).await?.ok_or_else(|| {
            ApiError::not_found("external_id_not_found", "create an external ID first (POST /setup/credentials/aws/externalId), put it in the role's trust policy, then set the role")
        })?;
        let budget = std::time::Duration::from_secs(state.config.propagation_budget_secs);
        let (c, _) = state.connections.connect_role(&tenant.0, &conn.id, body.credentials.iam_role.trim(), budget).await?;
        Ok::<_, ApiError>(c)
    }
    .await;
    env.reply(
        "spotinst:setup:credentials:aws",
        result.map(|c| role_item(&c, state.connections.now())),
    )
}

#[utoipa::path(get, path = "/setup/credentials/aws", tag = "spot-compatible",
    operation_id = "spotGetCredentials", summary = "Spot API: the role the account is connected with",
    params(("accountId" = SpotAccountId, Query, description = "The Spot account (act-…)")),
    responses(
        (status = 200, body = SpotReply<SpotRole>),
        (status = 400, description = "accountId is missing"),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 404, description = "The account is not connected to a role"),
        (status = 422, description = "accountId is not a Spot account id"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
/// Spot's get-credentials: the role the account is connected with.
pub async fn get_credentials(
    State(state): State<AppState>,
    env: Envelope,
    tenant: SpotTenant,
    RawQuery(q): RawQuery,
) -> Response {
    let result = async {
        let account = account_param(q.as_deref())?;
        state
            .connections
            .active_for_account(&tenant.0, &account)
            .await?
            .filter(|c| c.role_arn.is_some())
            .ok_or_else(|| {
                ApiError::not_found(
                    "credentials_not_found",
                    "this Spot account is not connected to a role yet",
                )
            })
    }
    .await;
    env.reply(
        "spotinst:setup:credentials:aws",
        result.map(|c| role_item(&c, state.connections.now())),
    )
}
