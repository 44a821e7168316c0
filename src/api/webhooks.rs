//! The webhook routes: a partner registers an https endpoint, gets its
//! signing secret once, rotates it, sends itself a test event and reads
//! what was delivered. Signing and delivery are the webhooks service's.

use super::error::ApiError;
use super::extract::{Json, Path, Query};
use super::AppState;
use crate::domain::{Delivery, DeliveryState, Webhook, WebhookId, WebhookState, WebhookUrl};
use crate::tenancy::Tenant;
use crate::views::iso;
use crate::webhooks::{NewWebhook, WebhookError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CreateWebhook)]
pub struct CreateBody {
    /// https, reaching a public address (checked now and at each delivery).
    url: WebhookUrl,
    /// The event types to receive; left out: all of them.
    #[schema(min_items = 1, max_items = 9)] // domain::EVENT_TYPES.len()
    #[schema(value_type = Option<Vec<crate::domain::ChangeType>>)]
    events: Option<Vec<String>>,
    #[schema(max_length = 256)] // domain::MAX_DESCRIPTION_LEN
    description: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Webhook)]
pub struct WebhookView {
    id: WebhookId,
    url: WebhookUrl,
    /// The event types it receives; null: all of them.
    #[schema(value_type = Option<Vec<crate::domain::ChangeType>>)]
    events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    state: WebhookState,
    /// The signing secret (`whsec_…`): only in the answers to its creation
    /// and to a rotation. Keep it; it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Until when the secret before the last rotation still signs too.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    previous_secret_expires_at: Option<String>,
    /// Every replaced secret still signing, oldest first: until when each
    /// does (24 hours after its rotation; at most 5 are kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>, format = DateTime)]
    previous_secrets_expire_at: Vec<String>,
    /// Since when every attempt has failed; absent while it succeeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    failing_since: Option<String>,
    consecutive_failures: u32,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

pub(super) fn hook_view(h: Webhook, show_secret: bool, now: i64) -> WebhookView {
    WebhookView {
        secret: show_secret.then(|| h.secret.expose().to_owned()),
        previous_secret_expires_at: h.old_secret_expiries(now).last().copied().map(iso),
        previous_secrets_expire_at: h.old_secret_expiries(now).into_iter().map(iso).collect(),
        failing_since: h.failing_since.map(iso),
        consecutive_failures: h.consecutive_failures,
        created_at: iso(h.created_at),
        updated_at: iso(h.updated_at),
        id: h.id,
        url: h.url,
        events: h.events,
        description: h.description,
        state: h.state,
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Webhooks)]
pub struct WebhooksView {
    items: Vec<WebhookView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    /// The `webhook-id` header: the same on every attempt.
    message_id: String,
    /// The event type (`webhook.test`, `webhook.disabled` included).
    event_type: String,
    state: DeliveryState,
    /// Attempts made so far.
    attempts: u32,
    /// The last attempt's HTTP status; absent when it got none.
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    last_attempt_at: Option<String>,
    /// When the next attempt is due, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

pub(super) fn delivery_view(d: Delivery) -> DeliveryView {
    let last = d.last.as_ref();
    DeliveryView {
        status_code: last.and_then(|a| a.status),
        latency_ms: last.filter(|a| a.status.is_some()).map(|a| a.latency_ms),
        error: last.and_then(|a| a.error.clone()),
        last_attempt_at: last.filter(|_| d.attempts > 0).map(|a| iso(a.at)),
        next_attempt_at: d.next_attempt_at.filter(|_| d.state == DeliveryState::Pending).map(iso),
        created_at: iso(d.created_at),
        message_id: d.message_id,
        event_type: d.event_type,
        state: d.state,
        attempts: d.attempts,
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookDeliveries)]
pub struct DeliveriesView {
    items: Vec<DeliveryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// nextCursor of the previous page.
    cursor: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 100)] // store::MAX_PAGE
    limit: Option<usize>,
}

/// A malformed id reads like an unknown one.
pub(super) fn parse_hook(raw: &str) -> Result<WebhookId, ApiError> {
    raw.parse().map_err(|_| WebhookError::NotFound.into())
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", operation_id = "createWebhook",
    summary = "Register an https endpoint for the organization's events; the answer carries the signing secret, once",
    request_body = CreateBody,
    responses(
        (status = 201, body = WebhookView, description = "Registered; `secret` verifies the `webhook-signature` header (Standard Webhooks)"),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 409, description = "The organization has 20 webhooks already (too_many_webhooks)"),
        (status = 422, description = "The URL is not https, does not resolve, or reaches a loopback, private, link-local or metadata address; or an unknown event type"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let req = NewWebhook {
        url: body.url,
        events: body.events,
        description: body.description,
    };
    let hook = state.webhooks.create(&tenant, req).await?;
    let now = state.webhooks.now();
    Ok((StatusCode::CREATED, Json(hook_view(hook, true, now))).into_response())
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", operation_id = "listWebhooks",
    summary = "The organization's webhooks (at most 20)",
    responses(
        (status = 200, body = WebhooksView),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn list(State(state): State<AppState>, tenant: Tenant) -> Result<Json<WebhooksView>, ApiError> {
    let now = state.webhooks.now();
    let items = state.webhooks.list(&tenant).await?;
    Ok(Json(WebhooksView {
        items: items.into_iter().map(|h| hook_view(h, false, now)).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "getWebhook",
    summary = "One webhook (without its secret)",
    params(("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = WebhookView),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let hook = state.webhooks.get(&tenant, &parse_hook(&id)?).await?;
    Ok(Json(hook_view(hook, false, state.webhooks.now())))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "deleteWebhook",
    summary = "Stop sending to this endpoint; deliveries not yet made are dropped",
    params(("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.webhooks.delete(&tenant, &parse_hook(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/secret", tag = "webhooks", operation_id = "rotateWebhookSecret",
    summary = "A new signing secret, shown once; each replaced secret goes on signing for 24 hours beside it",
    params(("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = WebhookView, description = "`secret` is the new one"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token"),
        (status = 503, description = "The database cannot be reached, or too many requests changed it at once; retry after Retry-After"),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let hook = state.webhooks.rotate_secret(&tenant, &parse_hook(&id)?).await?;
    Ok(Json(hook_view(hook, true, state.webhooks.now())))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", operation_id = "testWebhook",
    summary = "Send a webhook.test event to the endpoint (as any other: signed, retried); at most 5 a minute per webhook",
    params(("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)")),
    responses(
        (status = 202, body = DeliveryView, description = "Queued; follow it in the deliveries"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token"),
        (status = 409, description = "The webhook was disabled (webhook_disabled)"),
        (status = 429, description = "5 test events this minute already (test_rate_limited); retry after Retry-After (seconds to the next minute)"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn test(State(state): State<AppState>, tenant: Tenant, Path(id): Path<String>) -> Result<Response, ApiError> {
    let d = state.webhooks.test(&tenant, &parse_hook(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(d))).into_response())
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "listWebhookDeliveries",
    summary = "What was sent to the endpoint, newest first: event, attempts, last status and latency, next attempt",
    params(("id" = WebhookId, Path, description = "The webhook (a malformed id reads as unknown: 404)"), PageParams),
    responses(
        (status = 200, body = DeliveriesView),
        (status = 400, description = "A query parameter or the cursor is not valid"),
        (status = 403, description = "The token is limited to some Spot accounts (webhooks_need_full_access)"),
        (status = 404, description = "No such webhook for this token"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<Json<DeliveriesView>, ApiError> {
    super::connections::check_limit(p.limit)?;
    let page = state
        .webhooks
        .deliveries(&tenant, &parse_hook(&id)?, p.cursor.as_deref(), p.limit)
        .await?;
    Ok(Json(DeliveriesView {
        items: page.items.into_iter().map(delivery_view).collect(),
        next_cursor: page.next_cursor,
    }))
}
