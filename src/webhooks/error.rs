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
    #[error("this webhook is disabled (every attempt failed for 5 days, or its endpoint answered 410 Gone); create it again to receive events")]
    Disabled,
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
