//! Delivering the outbox: each state change the store wrote with the change
//! (`domain::OutboxItem`) becomes an event in the Standard Webhooks shape,
//! is put on the EventBridge bus (when one is configured) and fanned out to
//! the tenant's webhooks (one stored delivery each), then marked delivered.
//! At least once: an item is marked only after both, so a process that dies
//! between them sends it again (consumers de-duplicate by connection and
//! sequence, webhook receivers by `webhook-id`). Locally `serve` polls the
//! outbox and the due webhook deliveries (`Dispatcher::run`); in AWS a
//! DynamoDB stream hands the new outbox items and webhook deliveries to the
//! dispatcher function (`lambda`), which queues each delivery's attempts on
//! a delayed SQS queue and makes them (`attempts`).
//!
//! The payload's `data` is the view the API answers (`crate::views`, which
//! both entry points use), rendered at dispatch time (`payload`) from the
//! connection as the change left it (stored in the outbox item).

pub mod attempts;
mod eventbridge;
pub mod lambda;
mod payload;

pub use attempts::AttemptQueue;
pub use eventbridge::{EventBridge, PublishError};
use payload::Rendered;
pub use payload::{MemberPayload, Payload};

use crate::clock::Clock;
use crate::config::Config;
use crate::connections::ConnectionService;
use crate::domain::OutboxItem;
use crate::services::Services;
use crate::store::StoreError;
use crate::webhooks::WebhookService;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("cannot queue a webhook attempt: {0}")]
    Queue(String),
}

/// Reads the outbox, publishes, fans out to webhooks, marks delivered; and
/// makes the webhook attempts.
#[derive(Clone)]
pub struct Dispatcher {
    connections: ConnectionService,
    webhooks: WebhookService,
    config: Arc<Config>,
    /// None without `ACCOUNT_CONNECT_EVENT_BUS`: events go to webhooks only.
    bus: Option<Arc<EventBridge>>,
    /// In AWS, the delayed queue that carries each webhook attempt; None
    /// locally, where `run` finds the due ones in the store.
    queue: Option<Arc<AttemptQueue>>,
    clock: Clock,
}

impl Dispatcher {
    /// The dispatcher of these services, with the bus and the attempt
    /// queue the configuration names.
    pub async fn for_services(services: &Services) -> Dispatcher {
        let config = &services.config;
        let bus = match config.event_bus.clone() {
            Some(bus) => Some(Arc::new(
                EventBridge::on(&services.aws, bus, config.event_source.clone()).await,
            )),
            None => None,
        };
        let queue = match config.webhook_queue_url.clone() {
            Some(url) => Some(Arc::new(AttemptQueue::on(&services.aws, url).await)),
            None => None,
        };
        Dispatcher {
            connections: services.connections.clone(),
            webhooks: services.webhooks.clone(),
            config: services.config.clone(),
            bus,
            queue,
            clock: services.connections.clock(),
        }
    }

    /// Whether the bus takes each payload (all of them without a bus).
    async fn publish(&self, payloads: &[(&'static str, String)]) -> Result<Vec<bool>, PublishError> {
        match &self.bus {
            Some(bus) => bus.put(payloads).await,
            None => Ok(vec![true; payloads.len()]),
        }
    }

    /// Publishes `items`' events (in batches of up to ten), fans each item
    /// whose events the bus took out to the webhooks and marks it
    /// delivered; an item the bus refused after the retries stays
    /// undelivered and fails the call. An item already marked delivered
    /// (a replayed batch) is skipped; answers how many it delivered.
    pub async fn deliver(&self, items: &[OutboxItem]) -> Result<usize, DispatchError> {
        let items = self.undelivered_of(items).await?;
        let items = items.as_slice();
        let mut delivered = 0;
        let mut refused = None;
        // An item is one event, or two (a member's change beside its
        // connection's): five items never make more than ten entries.
        for batch in items.chunks(eventbridge::MAX_BATCH / 2) {
            let events: Vec<(usize, Rendered)> = batch
                .iter()
                .enumerate()
                .flat_map(|(i, item)| payload::render(item, &self.config).into_iter().map(move |e| (i, e)))
                .collect();
            let entries: Vec<(&'static str, String)> =
                events.iter().map(|(_, e)| (e.kind.as_str(), e.body.clone())).collect();
            let taken = match self.publish(&entries).await {
                Ok(taken) => taken,
                Err(e) => {
                    refused.get_or_insert(e);
                    continue;
                }
            };
            for (i, item) in batch.iter().enumerate() {
                let mine = events.iter().zip(&taken).filter(|((j, _), _)| *j == i);
                if mine.clone().any(|(_, ok)| !ok) {
                    refused.get_or_insert(PublishError::Refused(item.kind.as_str().to_owned()));
                    continue;
                }
                for ((_, e), _) in mine {
                    let org = &item.connection.org;
                    self.webhooks
                        .fan_out(org, e.kind.as_str(), &e.message_id, &e.body)
                        .await?;
                }
                self.connections.outbox_delivered(item, self.clock.now()).await?;
                delivered += 1;
            }
        }
        match refused {
            Some(e) => Err(e.into()),
            None => Ok(delivered),
        }
    }

    /// The items whose stored record is not marked delivered: Lambda
    /// retries a stream batch whole (and a batch may be handed over again
    /// after a timeout), and an index page may lag behind the marks; an
    /// item delivered already is published and fanned out no more.
    async fn undelivered_of(&self, items: &[OutboxItem]) -> Result<Vec<OutboxItem>, DispatchError> {
        let checks = items.iter().map(|i| self.connections.outbox_is_delivered(i));
        let marks = futures::future::join_all(checks).await;
        let mut out = Vec::with_capacity(items.len());
        for (item, delivered) in items.iter().zip(marks) {
            if !delivered? {
                out.push(item.clone());
            }
        }
        Ok(out)
    }

    /// Delivers the undelivered items, page by page; answers how many. Each
    /// item at most once per call: a page that holds only items this call
    /// delivered already (an index that has not caught up with the marks,
    /// or a mark that did not take) ends it, and the next call tries again.
    pub async fn dispatch_pending(&self) -> Result<usize, DispatchError> {
        let mut done = std::collections::HashSet::new();
        loop {
            let items: Vec<OutboxItem> = self
                .connections
                .outbox_page(crate::store::MAX_PAGE)
                .await?
                .into_iter()
                .filter(|i| !done.contains(&(i.connection_id.clone(), i.sequence)))
                .collect();
            if items.is_empty() {
                return Ok(done.len());
            }
            self.deliver(&items).await?;
            done.extend(items.into_iter().map(|i| (i.connection_id, i.sequence)));
        }
    }

    /// Polls the outbox and the due webhook deliveries every `every`,
    /// forever (the local server's task). Each attempt runs as its own
    /// task, so a slow endpoint holds up no other.
    pub async fn run(self, every: Duration) {
        loop {
            match self.dispatch_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(delivered = n, "events delivered"),
                Err(e) => tracing::warn!(error = %e, "event delivery failed; retrying"),
            }
            match self.webhooks.due(crate::store::MAX_PAGE).await {
                Ok(due) => {
                    for d in due {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.attempt(d).await {
                                tracing::warn!(error = %e, "webhook attempt not recorded; retrying");
                            }
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read due webhook deliveries; retrying"),
            }
            tokio::time::sleep(every).await;
        }
    }
}
