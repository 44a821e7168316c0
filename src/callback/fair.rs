//! Fair shares of the callback's capacity (docs/design.md, "Fair shares").
//! A Create or Update, of an automatic connection or of an AWS Organization
//! member's link, may wait for IAM up to the propagation budget; an organization
//! runs at most `callback_tenant_share` of those at once, across instances
//! (leases in the store). One over its share is not run: its message goes
//! to the callback queue, delayed, grouped by organization (an SQS fair
//! queue), and the invocation ends, so the slot is free for other tenants.
//! The callback function drains the queue (at most the event source's
//! MaximumConcurrency at once) and tries the message again from the start;
//! CloudFormation's ResponseURL stays valid for an hour, so the answer can
//! come later. A message deferred for MAX_DEFER_SECS is answered FAILED.

use super::{Responder, RetryLater};
use crate::connections::ShareLease;
use crate::services::Services;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// CloudFormation waits an hour for the answer; a Create still deferred
/// after this long is answered FAILED while there is time to do so.
pub(crate) const MAX_DEFER_SECS: i64 = 45 * 60;

tokio::task_local! {
    /// When the message being handled was first deferred (handle_deferred).
    static SINCE: i64;
}

/// A deferred message on the callback queue.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deferred {
    /// When it was first deferred (Unix seconds).
    since: i64,
    /// The custom resource request, as it came.
    message: String,
}

/// Whether a verification runs now.
pub(crate) enum Admission {
    /// Within the organization's share (or nothing can be deferred: no queue).
    Run(Option<ShareLease>),
    /// Over the share: the message goes to the queue.
    Defer,
    /// Deferred too long: answered FAILED with this reason.
    Refuse(String),
}

pub(crate) async fn admit(state: &Services, org: &str, budget: Duration) -> Result<Admission, RetryLater> {
    match state.connections.take_share(org, budget).await {
        Ok(Some(lease)) => Ok(Admission::Run(Some(lease))),
        Ok(None) if state.config.callback_queue_url.is_none() => {
            tracing::warn!(
                org,
                "an organization is over its callback share, and no queue is configured to defer to; run now"
            );
            Ok(Admission::Run(None))
        }
        Ok(None) => {
            let now = state.connections.now();
            let since = SINCE.try_with(|s| *s).unwrap_or(now);
            if now - since >= MAX_DEFER_SECS {
                return Ok(Admission::Refuse(format!(
                    "Spot is setting up too many of your organization's connections at once and could not start this one within {} minutes. Delete this stack and create it again when the others are done.",
                    MAX_DEFER_SECS / 60
                )));
            }
            Ok(Admission::Defer)
        }
        Err(e) => Err(RetryLater(format!("cannot read the organization's share: {e}"))),
    }
}

/// Frees the lease a run held.
pub(crate) async fn release(state: &Services, lease: Option<ShareLease>) {
    if let Some(lease) = lease {
        state.connections.release_share(lease).await;
    }
}

/// Puts `message` on the callback queue, delayed, in `org`'s group; kept
/// deferred since the first time. A failed send is worth a retry.
pub(crate) async fn defer(state: &Services, org: &str, message: &str) -> Result<(), RetryLater> {
    let Some(url) = state.config.callback_queue_url.as_deref() else {
        return Err(RetryLater("no callback queue to defer to".into()));
    };
    let now = state.connections.now();
    let since = SINCE.try_with(|s| *s).unwrap_or(now);
    let body = serde_json::to_string(&Deferred {
        since,
        message: message.to_owned(),
    })
    .expect("deferred messages serialize");
    let client = aws_sdk_sqs::Client::new(state.aws.own().await);
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id(org)
        .delay_seconds(state.config.callback_defer_secs as i32)
        .send()
        .await
        .map_err(|e| {
            RetryLater(format!(
                "cannot defer to the callback queue: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            ))
        })?;
    tracing::info!(
        org,
        deferred_for = now - since,
        "an organization is over its callback share; the request is deferred"
    );
    crate::metrics::count("CallbackDeferred", 1);
    Ok(())
}

/// A batch from the callback queue: each message handled as from the
/// topic, again over the same checks; one worth a retry is reported so SQS
/// redelivers only it.
pub async fn handle_deferred(state: &Services, responder: &Responder, event: SqsEvent) -> SqsBatchResponse {
    let runs = event.records.iter().map(|r| async move {
        let body = r.body.as_deref().unwrap_or_default();
        let Ok(d) = serde_json::from_str::<Deferred>(body) else {
            tracing::warn!("an unreadable message on the callback queue; dropped");
            return None;
        };
        match SINCE
            .scope(d.since, super::handle_message(state, responder, &d.message))
            .await
        {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, "a deferred callback request failed; SQS retries it");
                Some(r.message_id.clone().unwrap_or_default())
            }
        }
    });
    let mut answer = SqsBatchResponse::default();
    for id in futures::future::join_all(runs).await.into_iter().flatten() {
        answer.add_failure(id);
    }
    answer
}
