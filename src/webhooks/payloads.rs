//! The two events the webhooks make themselves, typed so that what is
//! sent and the schema the OpenAPI document's `webhooks` section shows for
//! it come from the same fields.

use crate::clock::iso;
use crate::domain::{Disabling, Webhook, WebhookId, WebhookUrl, TEST_EVENT};
use serde::Serialize;

/// Put on the bus when an endpoint is disabled.
pub const DISABLED_EVENT: &str = "webhook.disabled";

/// `webhook.test`: what `POST /v1/webhooks/{id}/test` sends.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookTestEvent)]
pub struct TestPayload {
    /// `webhook.test`
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: TestData,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookTestEventData)]
pub struct TestData {
    /// The webhook it was sent to.
    pub webhook_id: WebhookId,
}

/// `webhook.disabled`: an endpoint disabled after failing too long (on
/// the bus, for the platform, and in the webhook's deliveries log).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDisabledEvent)]
pub struct DisabledPayload {
    /// `webhook.disabled`
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: DisabledData,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookDisabledEventData)]
pub struct DisabledData {
    pub webhook_id: WebhookId,
    /// The tenant it belongs to.
    pub org: String,
    pub url: WebhookUrl,
    pub reason: DisabledReason,
    /// Failed attempts in a row.
    pub consecutive_failures: u32,
    /// Since when every attempt failed.
    #[schema(required, format = DateTime)]
    pub failing_since: Option<String>,
}

/// Why an endpoint was disabled.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = WebhookDisabledReason)]
pub enum DisabledReason {
    /// Every attempt failed for five days.
    Failing,
    /// The endpoint answered 410 Gone.
    Gone,
}

impl From<Disabling> for DisabledReason {
    fn from(d: Disabling) -> Self {
        match d {
            Disabling::Failing { .. } => DisabledReason::Failing,
            Disabling::Gone => DisabledReason::Gone,
        }
    }
}

/// The `webhook.test` event's body for `hook`.
pub fn test_payload(hook: &Webhook, now: i64) -> String {
    let p = TestPayload {
        kind: TEST_EVENT,
        timestamp: iso(now),
        data: TestData {
            webhook_id: hook.id.clone(),
        },
    };
    serde_json::to_string(&p).expect("payloads serialize")
}

/// The `webhook.disabled` event's body for `hook`, as it was disabled.
pub fn disabled_payload(hook: &Webhook, why: Disabling, now: i64) -> String {
    let p = DisabledPayload {
        kind: DISABLED_EVENT,
        timestamp: iso(now),
        data: DisabledData {
            webhook_id: hook.id.clone(),
            org: hook.org.clone(),
            url: hook.url.clone(),
            reason: why.into(),
            consecutive_failures: hook.consecutive_failures,
            failing_since: hook.failing_since.map(iso),
        },
    };
    serde_json::to_string(&p).expect("payloads serialize")
}
