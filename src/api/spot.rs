//! Spot's public API for this job, so existing clients (spotinst-sdk2, the
//! Terraform module) work unchanged: Spot's envelope, HTTP 200 on success.

use super::error::ApiError;
use super::middleware::RequestId;
use super::AppState;
use crate::auth::{tenant_of, Tenant};
use crate::connections::Connection;
use crate::domain::SpotAccountId;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

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
            .map(|r| r.0.clone())
            .unwrap_or_default();
        Ok(Envelope {
            id,
            method: parts.method.clone(),
            url: parts.uri.to_string(),
        })
    }
}

impl Envelope {
    fn request(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "method": self.method.as_str(),
            "timestamp": super::view::iso(crate::clock::now()),
        })
    }

    pub fn ok(&self, kind: &str, items: Vec<Value>) -> Response {
        let body = json!({
            "request": self.request(),
            "response": {"status": {"code": 200, "message": "OK"}, "kind": kind, "items": items, "count": items.len()}
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }

    /// One item in Spot's envelope, or the error in it.
    pub fn reply(&self, kind: &str, result: Result<Value, ApiError>) -> Response {
        match result {
            Ok(item) => self.ok(kind, vec![item]),
            Err(e) => self.error(e),
        }
    }

    pub fn error(&self, e: ApiError) -> Response {
        let mut errors = vec![
            json!({"code": e.code, "message": e.message, "field": e.details.as_ref().and_then(|d| d.get("field")).cloned()}),
        ];
        if let Some(checks) = e.details.as_ref().and_then(|d| d["report"]["checks"].as_array()) {
            errors.extend(checks.iter().filter(|c| c["status"] == "failed").map(|c| {
                json!({"code": c["id"], "message": format!("{} {}", c["message"].as_str().unwrap_or(""), c["remediation"].as_str().unwrap_or("")).trim()})
            }));
        }
        let body = json!({
            "request": self.request(),
            "response": {
                "status": {"code": e.status.as_u16(), "message": e.status.canonical_reason().unwrap_or("Error")},
                "errors": errors
            }
        });
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
                Err(env.error(e))
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

fn external_id_item(c: &Connection) -> Value {
    json!({"externalId": c.external_id.as_str(), "maxValidUntil": super::view::iso(c.expires_at)})
}

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

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetCredentialsBody {
    credentials: SpotCredentials,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpotCredentials {
    iam_role: String,
}

fn role_item(c: &Connection, now: i64) -> Value {
    json!({
        "accountId": c.account_id.as_str(),
        "iamRole": c.role_arn.as_ref().map(|r| r.as_str()),
        "externalId": c.external_id.as_str(),
        "status": c.status(now),
        "health": c.health,
    })
}

/// Spot's set-credentials: connects the account's live connection to the role.
pub async fn set_credentials(
    State(state): State<AppState>,
    env: Envelope,
    tenant: SpotTenant,
    RawQuery(q): RawQuery,
    body: Result<axum::Json<SetCredentialsBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let result = async {
        let account = account_param(q.as_deref())?;
        let axum::Json(body) = body.map_err(ApiError::from)?;
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
