//! Extractors whose rejections use the API's error shape, and the caller
//! (`Tenant`) read from API Gateway's authorizer or the bearer token.

use super::error::ApiError;
use super::AppState;
use crate::tenancy::{verify, Claims, LocalIssuer, TenancyError, Tenant};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;

/// axum's `Json`, with its rejections in the API's error shape. A body sent
/// as plain `application/json` that parses is read straight with serde_json;
/// everything else goes through axum's own extractor (its content-type
/// rules and its error path, `serde_path_to_error`), so every refusal is
/// exactly axum's. The fast path skips the path tracking and the MIME parse:
/// about 2,600 of the 44,000 instructions `POST /v1/policies` took (callgrind).
///
/// Every body of this API is an object, and serde reads a struct from an
/// array of its fields too: a body that is an array is refused here.
pub struct Json<T>(pub T);

/// A top-level JSON array (leading whitespace skipped).
fn is_array(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let plain = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == b"application/json");
        if !plain {
            // axum's content-type rule and syntax errors, then the same
            // array check and data errors as the fast path.
            let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
            if value.is_array() {
                return Err(ApiError::not_an_object());
            }
            let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
            let axum::Json(v) = axum::Json::<T>::from_bytes(&bytes)?;
            return Ok(Json(v));
        }
        // Within the router's DefaultBodyLimit, as axum's would be.
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::from(axum::extract::rejection::JsonRejection::from(e)))?;
        if is_array(&body) {
            return Err(ApiError::not_an_object());
        }
        match serde_json::from_slice(&body) {
            Ok(v) => Ok(Json(v)),
            Err(_) => Err(axum::Json::<T>::from_bytes(&body)
                .err()
                .map(ApiError::from)
                .unwrap_or_else(|| ApiError::bad_request("malformed_json", "the request body is not valid JSON"))),
        }
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// axum's `Path`, with its rejections (a segment that is not UTF-8 once
/// percent-decoded) in the API's error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// The claims of the request, from API Gateway's authorizer or the bearer token.
pub fn claims_of(parts: &Parts, state: &AppState) -> Result<Claims, TenancyError> {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
        parts.extensions.get::<lambda_http::request::RequestContext>()
    {
        return match ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()) {
            Some(jwt) => Ok(Claims::from_gateway(&jwt.claims)),
            None => Err(TenancyError::NoAuthorizer),
        };
    }
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(TenancyError::NoCredentials)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(TenancyError::NotBearer)?;
    let by = LocalIssuer::of(&state.config).ok_or(TenancyError::NoSecret)?;
    verify(by, token.trim())
}

/// The caller of the request, under the deployment's accounts-claim rule.
pub fn tenant_of(parts: &Parts, state: &AppState) -> Result<Tenant, TenancyError> {
    claims_of(parts, state)?.into_tenant(state.config.require_accounts_claim)
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(tenant_of(parts, state)?)
    }
}
