//! The webhook recovery routes: enable a disabled webhook, send again what
//! failed or was dropped since a time, or one delivery by its message id.
//! The rules are the webhooks service's (`webhooks::recovery`).

use super::error::ApiError;
use super::extract::{Json, Path};
use super::webhooks::{delivery_view, hook_view, parse_hook, DeliveryView, WebhookView};
use super::AppState;
use crate::domain::{ParseError, WebhookId};
use crate::tenancy::Tenant;
use crate::webhooks::WebhookError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = RecoverWebhook)]
pub struct RecoverBody {
    /// Send again what was created from this RFC 3339 time on (at most 30
    /// days ago, the deliveries' retention), e.g. 2026-01-31T09:00:00Z.
    #[schema(format = DateTime)]
    since: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookRecovery)]
pub struct RecoveryView {
    /// Deliveries made pending again, each due now with a fresh schedule.
    queued: usize,
    /// False when the call stopped at 10,000: call it again with the same
    /// `since` for the rest.
    complete: bool,
}

/// `since` as unix seconds.
fn parse_since(raw: &str) -> Result<i64, WebhookError> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            ParseError::new(
                "since",
                "is not an RFC 3339 time with a zone, e.g. 2026-01-31T09:00:00Z",
            )
            .into()
        })
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks", operation_id = "enableWebhook",
    summary = "Make a disabled webhook active again (its failure run forgotten); an active one is answered as it is. Send what it missed with recover",
    params(("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = WebhookView, description = "Active"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token"),
        (status = 503, description = "The database cannot be reached, or too many requests changed it at once; retry after Retry-After"),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let hook = state.webhooks.enable(&tenant, &parse_hook(&id)?).await?;
    Ok(Json(hook_view(hook, false, state.webhooks.now())))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", tag = "webhooks", operation_id = "recoverWebhook",
    summary = "Send again every delivery created since a time that failed, was dropped, or waits for a retry (same webhook-id, fresh attempts, due now)",
    params(("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)")),
    request_body = RecoverBody,
    responses(
        (status = 202, body = RecoveryView, description = "Queued; follow them in the deliveries"),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token"),
        (status = 409, description = "The webhook is disabled: enable it first (webhook_disabled)"),
        (status = 422, description = "since is not an RFC 3339 time, is more than 30 days ago or in the future (invalid_field), or the body has another shape (invalid_body)"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn recover(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    Json(body): Json<RecoverBody>,
) -> Result<Response, ApiError> {
    let id: WebhookId = parse_hook(&id)?;
    let since = parse_since(&body.since)?;
    let done = state.webhooks.recover(&tenant, &id, since).await?;
    let view = RecoveryView {
        queued: done.queued,
        complete: done.complete,
    };
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{messageId}/retry", tag = "webhooks",
    operation_id = "retryWebhookDelivery",
    summary = "Send one delivery again (failed, succeeded but lost by the receiver, or waiting for a retry): same webhook-id, fresh attempts, due now",
    params(
        ("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)"),
        ("messageId" = String, Path, description = "The delivery's messageId, as the deliveries log shows it (the webhook-id header)"),
    ),
    responses(
        (status = 202, body = DeliveryView, description = "Queued, due now"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token (webhook_not_found), or no delivery of this message to it (delivery_not_found)"),
        (status = 409, description = "The webhook is disabled (webhook_disabled), the delivery is being attempted or due within a minute (delivery_pending), or it is the log's webhook.disabled line (delivery_not_resendable)"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    tenant: Tenant,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let d = state.webhooks.retry(&tenant, &parse_hook(&id)?, &message_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(d))).into_response())
}
