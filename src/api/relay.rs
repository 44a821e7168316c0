//! `POST /v1/relay/{partition}`: a GovCloud or China relay's forwarded
//! custom resource request. The signature is the authentication; once it
//! verifies, the request goes to the callback exactly as one from the
//! service's own topic, once: a replay of it is answered, not acted on.

use super::error::ApiError;
use super::extract::Json;
use super::AppState;
use crate::automatic::relay::{self, Refusal};
use crate::automatic::relay_intake::{Accepted, IntakeError};
use crate::automatic::stack_arn::StackArn;
use crate::domain::Partition;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelayAnswer {
    /// The request was handled as the callback handles its topic's: a
    /// stack's ResponseURL has its answer, or the message was ignored.
    #[schema(schema_with = handled)]
    status: &'static str,
}

fn handled() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["handled"]))
        .build()
}

/// A CloudFormation custom resource request, as SNS delivered it to the relay.
#[derive(ToSchema)]
#[schema(as = RelayedRequest)]
#[allow(dead_code)] // Documents the body; the route reads raw bytes to check the signature.
pub struct RelayedRequestDoc {
    #[schema(rename = "RequestType")]
    request_type: String,
    #[schema(rename = "ResponseURL")]
    response_url: String,
    #[schema(rename = "StackId")]
    stack_id: String,
    #[schema(rename = "RequestId")]
    request_id: String,
    #[schema(rename = "LogicalResourceId")]
    logical_resource_id: String,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[utoipa::path(post, path = "/v1/relay/{partition}", tag = "automatic", operation_id = "relayCallback",
    summary = "A partition relay's signed custom resource request, handled as the callback handles its own topic's",
    params(
        ("partition" = Partition, Path, description = "The relay's partition: aws-us-gov or aws-cn"),
        ("X-Spot-Relay-Timestamp" = String, Header, description = "Unix seconds when the relay signed the request"),
        ("X-Spot-Relay-Signature" = String, Header, description = "Hex HMAC-SHA256 of <timestamp>.<body> under the partition's relay key"),
    ),
    request_body(content = RelayedRequestDoc, content_type = "application/json"),
    security(()),
    responses(
        (status = 200, body = RelayAnswer, description = "Handled. The same signed request again within its 5 minutes is answered alike, with Idempotent-Replayed: true, and not acted on again"),
        (status = 401, description = "The signature or timestamp does not verify"),
        (status = 404, description = "No relay is configured for this partition"),
        (status = 422, description = "The stack is not in the relay's partition"),
        (status = 503, description = "The relay key or the database cannot be reached; the relay retries"),
    ))]
pub async fn relay(
    State(state): State<AppState>,
    Path(partition): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let not_configured = || {
        ApiError::not_found(
            "relay_not_configured",
            format!("no relay is configured for the partition {partition:.20?}; the operator sets ACCOUNT_CONNECT_RELAY_KEY_SECRET_AWS_US_GOV or _AWS_CN"),
        )
    };
    let p: Partition = partition.parse().map_err(|_| not_configured())?;
    if p == Partition::Aws || !state.relay.configured(p) {
        return Err(not_configured());
    }
    if body.len() > relay::MAX_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "a relayed request is at most 64 KB",
        ));
    }
    let ts = header(&headers, relay::TIMESTAMP_HEADER);
    let sig = header(&headers, relay::SIGNATURE_HEADER);
    let verified = match state.relay.verify(p, ts, sig, &body).await {
        Ok(v) => v,
        Err(IntakeError::Refused(why)) => {
            tracing::warn!(partition = %p, reason = ?why, "refused a relayed request");
            crate::metrics::callback_rejected(match why {
                Refusal::Stale | Refusal::Future => "relay_timestamp",
                Refusal::Malformed | Refusal::BadSignature => "relay_signature",
            });
            return Err(IntakeError::Refused(why).into());
        }
        Err(IntakeError::NotConfigured(_)) => return Err(not_configured()),
        Err(e) => return Err(e.into()),
    };
    let message = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_body", "a relayed request is UTF-8 JSON"))?;
    // A partition's key relays that partition's stacks only.
    let stack = serde_json::from_str::<serde_json::Value>(message)
        .ok()
        .and_then(|v| v["StackId"].as_str().and_then(|s| s.parse::<StackArn>().ok()));
    if let Some(stack) = stack.filter(|s| s.partition != p) {
        return Err(ApiError::unprocessable(
            "relay_partition_mismatch",
            format!(
                "the stack is in {} but this is the {} relay",
                stack.partition.display_name(),
                p.display_name()
            ),
        ));
    }
    if state.relay.once(&verified).await? == Accepted::Replay {
        // Acted on when it first came; answered alike, not acted on again.
        tracing::warn!(partition = %p, "a relayed request came again within its 5 minutes; not acted on again");
        crate::metrics::callback_rejected("relay_replay");
        let mut res = Json(RelayAnswer { status: "handled" }).into_response();
        res.headers_mut()
            .insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
        return Ok(res);
    }
    crate::callback::handle_message(&state, &state.relay.responder, message)
        .await
        .map_err(|e| {
            let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string());
            err.retry_after_secs = Some(5);
            err
        })?;
    Ok(Json(RelayAnswer { status: "handled" }).into_response())
}
