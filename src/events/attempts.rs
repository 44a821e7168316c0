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

/// What a queue message names: a delivery's key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptMessage {
    pub webhook_id: WebhookId,
    pub position: String,
}

pub struct AttemptQueue {
    client: crate::sdk::OwnClient<aws_sdk_sqs::Client>,
    url: String,
}

impl AttemptQueue {
    /// The client is made at the first message, not at the function's init.
    pub async fn on(aws: &crate::sdk::AwsConfigs, url: String) -> Self {
        AttemptQueue {
            client: crate::sdk::OwnClient::new(aws, aws_sdk_sqs::Client::new),
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
            let body = serde_json::to_string(&AttemptMessage {
                webhook_id: d.webhook_id.clone(),
                position: d.position(),
            })
            .expect("messages serialize");
            self.client
                .get()
                .await
                .send_message()
                .queue_url(&self.url)
                .message_body(body)
                .delay_seconds((at - now).clamp(0, MAX_DELAY_SECS) as i32)
                .send()
                .await
                .map_err(|e| format!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
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
    /// on the bus (`webhook.disabled`).
    pub async fn attempt(&self, d: Delivery) -> Result<Option<Delivery>, DispatchError> {
        let outcome = self.webhooks.attempt(d).await?;
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
        Ok(outcome.delivery)
    }

    /// One queue message: the delivery it names is attempted if due, and
    /// queued again while it stays pending.
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
            Some(at) if d.state == DeliveryState::Pending && at <= now => self.attempt(d).await?,
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
