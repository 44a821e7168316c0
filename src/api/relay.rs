//! `POST /v1/relay/{partition}`: a GovCloud or China relay's forwarded
//! custom resource request. The signature is the authentication; once it
//! verifies, the request goes to the callback exactly as one from the
//! service's own topic, once: a replay of it is answered, not acted on.

use super::error::ApiError;
use super::extract::{Json, Path};
use super::AppState;
use crate::automatic::relay;
use crate::automatic::relay_intake::Admitted;
use crate::domain::Partition;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
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
    let (ts, sig) = (
        header(&headers, relay::TIMESTAMP_HEADER),
        header(&headers, relay::SIGNATURE_HEADER),
    );
    let handled = Json(RelayAnswer { status: "handled" });
    match state.relay.admit(&partition, ts, sig, &body).await? {
        Admitted::Replay => {
            // Acted on when it first came; answered alike, not acted on again.
            let mut res = handled.into_response();
            res.headers_mut()
                .insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
            Ok(res)
        }
        Admitted::Act(message) => {
            crate::callback::handle_message(&state, &state.relay.responder, message).await?;
            Ok(handled.into_response())
        }
    }
}
