//! Webhook attempts. One attempt is `Dispatcher::attempt`: the webhooks
//! service leases, sends and records it; an attempt that disables its
//! endpoint puts `webhook.disabled` on the bus. Locally `Dispatcher::run`
//! finds the due deliveries in the store; in AWS each delivery travels
//! through a delayed SQS queue: the table's stream queues a new delivery's
//! first attempt (`lambda`), and each attempt that leaves it pending queues
//! the next, delayed until it is due (SQS delays at most 15 minutes, so a
//! longer wait takes several hops, each sending nothing until the time).

use super::{DispatchError, Dispatcher};
use crate::domain::{Delivery, DeliveryState, WebhookId};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};

/// SQS's longest message delay.
const MAX_DELAY_SECS: i64 = 900;

/// An attempt over its organization's share goes back on the queue for
/// this long (seconds): a slot frees within one send timeout (10 s), so it
/// is looked at again about twice while the share is held, and each look
/// costs one short invocation.
pub const OVER_SHARE_DELAY_SECS: i32 = 5;

/// What a queue message names: a delivery's key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptMessage {
    pub webhook_id: WebhookId,
    pub position: String,
}

/// What became of an attempt.
enum Attempted {
    /// Made (or not due, or another sender holds it): the delivery as
    /// recorded, if it was.
    Done(Option<Delivery>),
    /// Over the organization's share: not made, nothing written.
    OverShare,
}

pub struct AttemptQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl AttemptQueue {
    pub async fn on(aws: &crate::sdk::AwsConfigs, url: String) -> Self {
        AttemptQueue {
            client: aws_sdk_sqs::Client::new(aws.own().await),
            url,
        }
    }

    /// A message per pending delivery, delayed until its next attempt (or
    /// the longest delay SQS allows).
    pub async fn schedule(&self, deliveries: &[Delivery], now: i64) -> Result<(), String> {
        for d in deliveries {
            let Some(at) = d.next_attempt_at.filter(|_| d.state == DeliveryState::Pending) else {
                continue;
            };
            self.send(d, (at - now).clamp(0, MAX_DELAY_SECS) as i32).await?;
        }
        Ok(())
    }

    /// A message for `d`, delayed `delay` seconds.
    async fn send(&self, d: &Delivery, delay: i32) -> Result<(), String> {
        let body = serde_json::to_string(&AttemptMessage {
            webhook_id: d.webhook_id.clone(),
            position: d.position(),
        })
        .expect("messages serialize");
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| format!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

impl Dispatcher {
    /// The queue of webhook attempts (the dispatcher function's setting).
    pub(super) fn attempt_queue(&self) -> Result<&AttemptQueue, DispatchError> {
        self.queue
            .as_deref()
            .ok_or_else(|| DispatchError::Queue("ACCOUNT_CONNECT_WEBHOOK_QUEUE_URL is not set".into()))
    }

    /// One attempt at a due delivery; an endpoint it disables is announced
    /// on the bus (`webhook.disabled`). An attempt over its organization's
    /// share is not made (None), and the delivery stays due: locally the
    /// next poll takes it up again.
    pub async fn attempt(&self, d: Delivery) -> Result<Option<Delivery>, DispatchError> {
        Ok(match self.attempt_in_share(d).await? {
            Attempted::Done(d) => d,
            Attempted::OverShare => None,
        })
    }

    async fn attempt_in_share(&self, d: Delivery) -> Result<Attempted, DispatchError> {
        let outcome = self.webhooks.attempt(d).await?;
        if outcome.over_share {
            return Ok(Attempted::OverShare);
        }
        if let (Some((hook, why)), Some(bus)) = (&outcome.disabled, &self.bus) {
            let payload = crate::webhooks::disabled_payload(hook, *why, self.webhooks.now());
            let put = bus.put(&[(crate::webhooks::DISABLED_EVENT, payload.as_str())]).await;
            if let Some(e) = put.error {
                return Err(e.into());
            }
            if put.taken.first() != Some(&true) {
                tracing::warn!(webhook = hook.id.as_str(), "the bus did not take webhook.disabled");
            }
        }
        Ok(Attempted::Done(outcome.delivery))
    }

    /// One queue message: the delivery it names is attempted if due, and
    /// queued again while it stays pending. One over its organization's
    /// share goes back on the queue, shortly, as a new message: a batch
    /// item failure would count a receive towards the queue's
    /// maxReceiveCount, and a tenant's long flood would then send another's
    /// nothing but its own attempts to the dead-letter queue; a new message
    /// needs no permission beyond the SendMessage every attempt uses.
    async fn attempt_message(&self, body: &str) -> Result<(), DispatchError> {
        let queue = self.attempt_queue()?;
        let Ok(m) = serde_json::from_str::<AttemptMessage>(body) else {
            tracing::warn!("dropped a webhook attempt message that does not parse");
            return Ok(());
        };
        let Some(d) = self.webhooks.load(&m.webhook_id, &m.position).await? else {
            return Ok(());
        };
        let now = self.webhooks.now();
        let d = match d.next_attempt_at {
            Some(at) if d.state == DeliveryState::Pending && at <= now => match self.attempt_in_share(d.clone()).await?
            {
                Attempted::Done(d) => d,
                Attempted::OverShare => {
                    tracing::info!(
                        org = d.org.as_str(),
                        webhook = d.webhook_id.as_str(),
                        "an organization has its share of webhook attempts in flight; this one is queued again"
                    );
                    crate::metrics::count("WebhookAttemptOverShare", 1);
                    return queue
                        .send(&d, OVER_SHARE_DELAY_SECS)
                        .await
                        .map_err(DispatchError::Queue);
                }
            },
            _ => Some(d),
        };
        if let Some(d) = d {
            queue
                .schedule(std::slice::from_ref(&d), self.webhooks.now())
                .await
                .map_err(DispatchError::Queue)?;
        }
        Ok(())
    }

    /// A batch from the attempt queue; the messages that failed are
    /// reported so SQS redelivers only those.
    pub async fn handle_attempts(&self, event: SqsEvent) -> SqsBatchResponse {
        let runs = event.records.iter().map(|r| async move {
            let body = r.body.as_deref().unwrap_or_default();
            match self.attempt_message(body).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook attempt failed; SQS retries it");
                    Some(r.message_id.clone().unwrap_or_default())
                }
            }
        });
        // Concurrently: one slow endpoint holds up no other message.
        let mut answer = SqsBatchResponse::default();
        for id in futures::future::join_all(runs).await.into_iter().flatten() {
            answer.add_failure(id);
        }
        answer
    }
}
