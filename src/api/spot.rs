//! Spot's public API for this job, so existing clients (spotinst-sdk2, the
//! Terraform module) work unchanged: Spot's envelope, HTTP 200 on success.

use super::error::ApiError;
use super::middleware::RequestId;
use super::AppState;
use crate::auth::{claims_of, Tenant};
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
            "timestamp": super::view::iso(crate::connections::now()),
        })
    }

    pub fn ok(&self, kind: &str, items: Vec<Value>) -> Response {
        let body = json!({
            "request": self.request(),
            "response": {"status": {"code": 200, "message": "OK"}, "kind": kind, "items": items, "count": items.len()}
        });
        (StatusCode::OK, axum::Json(body)).into_response()
    }

    pub fn error(&self, e: ApiError) -> Response {
        let body = json!({
            "request": self.request(),
            "response": {
                "status": {"code": e.status.as_u16(), "message": e.status.canonical_reason().unwrap_or("Error")},
                "errors": [{"code": e.code, "message": e.message, "field": e.details.as_ref().and_then(|d| d.get("field")).cloned()}]
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
        match claims_of(parts, state).and_then(|c| Tenant::try_from(c)) {
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
    match result {
        Ok(c) => env.ok("spotinst:setup:credentials:aws:externalId", vec![external_id_item(&c)]),
        Err(e) => env.error(e),
    }
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
    match result {
        Ok(c) => env.ok("spotinst:setup:credentials:aws:externalId", vec![external_id_item(&c)]),
        Err(e) => env.error(e),
    }
}
