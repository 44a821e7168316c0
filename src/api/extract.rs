//! Extractors whose rejections use the API's error shape, and the caller
//! (`Tenant`) read from API Gateway's authorizer or the bearer token.

use super::error::ApiError;
use super::AppState;
use crate::tenancy::{verify, Claims, LocalIssuer, TenancyError, Tenant};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

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
