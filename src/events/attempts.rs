//! Webhook attempts. One attempt is `Dispatcher::attempt`: the webhooks
//! service leases, sends and records it; an attempt that disables its
//! endpoint puts `webhook.disabled` on the bus. Locally `Dispatcher::run`
//! finds the due deliveries in the store; in AWS each delivery travels
//! through a delayed SQS queue: the table's stream queues a new delivery's
//! first attempt (`lambda`), and each attempt that leaves it pending queues
//! the next, delayed until it is due (SQS delays at most 15 minutes, so a
//! longer wait takes several hops, each sending nothing until the time).
//!
//! Fair shares (docs/design.md, "Fair shares"): an attempt may hold its
//! invocation for the send timeout, and the queue drives at most
//! `WebhookAttemptMaxConcurrency` invocations, so one tenant's hanging
//! endpoints could take every slot. An organization's attempts in one
//! invocation run under one lease of its share (`webhook_tenant_share`,
//! across instances, `crate::shares`): one tenant holds at most that many
//! invocations. Those over the share are not sent: they go back on the
//! queue shortly, as new messages. Not a batch item failure: that counts a
//! receive towards the queue's maxReceiveCount, and a long flood would send
//! a tenant's deferred attempts to the dead-letter queue; a new message
//! needs no permission beyond the SendMessage every attempt uses, and no
//! attempt is recorded, so the endpoint counts no failure.

use super::{DispatchError, Dispatcher};
use crate::domain::{Delivery, DeliveryState, WebhookId};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// SQS's longest message delay.
const MAX_DELAY_SECS: i64 = 900;

/// An attempt over its organization's share goes back on the queue for
/// this long (seconds): a slot frees within one send timeout (10 s), so it
/// is looked at about twice while the share is held, each look a short
/// invocation.
pub const OVER_SHARE_DELAY_SECS: i32 = 5;

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
            .get()
            .await
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

    /// One queue message's delivery, attempted if due (within its
    /// organization's share, held by the caller), and queued again while it
    /// stays pending.
    async fn attempt_loaded(&self, d: Delivery) -> Result<(), DispatchError> {
        let queue = self.attempt_queue()?;
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
    /// reported so SQS redelivers only those. Each organization's attempts
    /// run under one lease of its share, or, with none free, go back on the
    /// queue (see the module's comment).
    pub async fn handle_attempts(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut answer = SqsBatchResponse::default();
        let loads = event.records.iter().map(|r| async move {
            let id = r.message_id.clone().unwrap_or_default();
            let body = r.body.as_deref().unwrap_or_default();
            let Ok(m) = serde_json::from_str::<AttemptMessage>(body) else {
                tracing::warn!("dropped a webhook attempt message that does not parse");
                return (id, Ok(None));
            };
            (id, self.webhooks.load(&m.webhook_id, &m.position).await)
        });
        let mut by_org: BTreeMap<String, Vec<(String, Delivery)>> = BTreeMap::new();
        for (id, loaded) in futures::future::join_all(loads).await {
            match loaded {
                Ok(Some(d)) => by_org.entry(d.org.clone()).or_default().push((id, d)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a webhook delivery; SQS retries it");
                    answer.add_failure(id);
                }
            }
        }
        // Concurrently: one slow endpoint holds up no other message.
        let runs = by_org.into_iter().map(|(org, group)| self.org_attempts(org, group));
        for id in futures::future::join_all(runs).await.into_iter().flatten() {
            answer.add_failure(id);
        }
        answer
    }

    /// One organization's messages of a batch, under one lease of its
    /// share (or queued again); answers the ids of those that failed.
    async fn org_attempts(&self, org: String, group: Vec<(String, Delivery)>) -> Vec<String> {
        let now = self.webhooks.now();
        let until = now + crate::webhooks::ATTEMPT_TIMEOUT.as_secs() as i64 + crate::webhooks::LEASE_SECS;
        let lease = match self.webhooks.share().take(&org, until, now).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return self.over_share(&org, group).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the organization's webhook share; SQS retries");
                return group.into_iter().map(|(id, _)| id).collect();
            }
        };
        let runs = group.into_iter().map(|(id, d)| async move {
            match self.attempt_loaded(d).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook attempt failed; SQS retries it");
                    Some(id)
                }
            }
        });
        let failed = futures::future::join_all(runs).await.into_iter().flatten().collect();
        self.webhooks.share().release(lease).await;
        failed
    }

    /// An organization's messages over its share: each queued again,
    /// shortly; nothing attempted, nothing recorded.
    async fn over_share(&self, org: &str, group: Vec<(String, Delivery)>) -> Vec<String> {
        tracing::info!(
            org,
            attempts = group.len(),
            "an organization has its share of webhook attempts in flight; queued again"
        );
        crate::metrics::count("WebhookAttemptsOverShare", group.len() as u64);
        let mut failed = Vec::new();
        for (id, d) in group {
            let sent = match self.attempt_queue() {
                Ok(queue) => queue.send(&d, OVER_SHARE_DELAY_SECS).await,
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "cannot queue a webhook attempt again; SQS retries it");
                failed.push(id);
            }
        }
        failed
    }
}
