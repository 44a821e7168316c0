//! Why a webhook request was refused or failed; each message says what to do.

use super::UrlRefused;
use crate::connections::cursor::CursorError;
use crate::domain::ParseError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook with this id; list yours with GET /v1/webhooks")]
    NotFound,
    #[error("webhooks receive every Spot account's events, so managing them needs a token for all of the organization's accounts; this one is limited to some")]
    NeedsFullAccess,
    #[error("{}", .0.message)]
    Invalid(ParseError),
    #[error("the description is longer than {} characters", crate::domain::MAX_DESCRIPTION_LEN)]
    DescriptionTooLong,
    #[error("{0}; webhooks must reach a public https endpoint")]
    UrlRefused(#[from] UrlRefused),
    #[error(
        "this organization has {} webhooks, the most it may have; delete one first",
        super::MAX_WEBHOOKS
    )]
    TooMany,
    #[error("this webhook is disabled (every attempt failed for 5 days, or its endpoint answered 410 Gone); enable it with POST /v1/webhooks/{{id}}/enable, then send what it missed with POST /v1/webhooks/{{id}}/recover")]
    Disabled,
    #[error(
        "this webhook had {} test events this minute, the most it takes; try again in {retry_after_secs} s",
        super::TESTS_PER_MINUTE
    )]
    TestRateLimited { retry_after_secs: u32 },
    #[error("this webhook has no delivery of this message; its deliveries are listed by GET /v1/webhooks/{{id}}/deliveries (kept 30 days)")]
    DeliveryNotFound,
    #[error(
        "this delivery is being attempted, or its next attempt is due within a minute (see its nextAttemptAt); retry it after that if it fails"
    )]
    DeliveryPending,
    #[error("this line records the webhook's disabling; it is not sent to the endpoint")]
    NotResendable,
    #[error("{0}")]
    InvalidCursor(#[from] CursorError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<ParseError> for WebhookError {
    fn from(e: ParseError) -> Self {
        WebhookError::Invalid(e)
    }
}
