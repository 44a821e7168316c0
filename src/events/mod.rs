//! Delivering the outbox: each state change the store wrote with the change
//! (`domain::OutboxItem`) becomes an event in the Standard Webhooks shape,
//! is fanned out to the tenant's webhooks (one stored delivery each) and
//! put on the EventBridge bus (when one is configured), then marked
//! delivered. At least once: an item is marked only after both, so a
//! process that dies between them sends it again (consumers de-duplicate
//! by connection and sequence, webhook receivers by `webhook-id`). The
//! webhooks never wait on the bus: an item the bus refuses is fanned out
//! all the same and stays undelivered for the bus alone.
//!
//! Locally `serve` delivers the outbox as soon as the SQLite store signals
//! a commit that wrote to it, and polls it and the due webhook deliveries
//! every second besides (`Dispatcher::run`). In AWS a DynamoDB stream hands the new outbox items
//! and webhook deliveries to the dispatcher function (`lambda`), which
//! queues each delivery's attempts on a delayed SQS queue and makes them
//! (`attempts`); a schedule runs the sweeper (`sweep`), which delivers the
//! outbox items left undelivered and queues again the deliveries whose
//! queue message was lost.
//!
//! Sizes: a `PutEvents` request holds at most ten entries, under 256 KB
//! together (`eventbridge`); an event too large for the bus, or over 64 KB
//! for a webhook, goes thin (`payload::thin`: type, ids, sequence and the
//! API path of the full view).
//!
//! The payload's `data` is the view the API answers (`crate::views`, which
//! both entry points use), rendered at dispatch time (`payload`) from the
//! connection as the change left it (stored in the outbox item).

pub mod attempts;
mod eventbridge;
pub mod lambda;
mod payload;
mod sweep;

pub use attempts::AttemptQueue;
use eventbridge::Put;
pub use eventbridge::{EventBridge, PublishError};
use payload::Rendered;
pub use payload::{catalog, CatalogEntry, MemberPayload, OrganizationPayload, Payload, ThinData, ThinPayload};
pub use sweep::{Swept, SWEEP_LIMIT};

use crate::clock::Clock;
use crate::config::Config;
use crate::connections::ConnectionService;
use crate::domain::OutboxItem;
use crate::services::Services;
use crate::store::StoreError;
use crate::webhooks::WebhookService;
use std::borrow::Cow;
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

/// A webhook gets an event over this many bytes thin (`payload::thin`).
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// What `Dispatcher::deliver` did with some outbox items.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Fanned out, taken by the bus (or there is none), marked delivered.
    pub delivered: usize,
    /// Fanned out, but not all their events were taken by the bus: left
    /// undelivered, for the bus.
    pub held_for_bus: usize,
    /// Why the bus did not take them.
    pub bus_error: Option<PublishError>,
}

/// The body webhooks get of `e`, an event of `item`: the payload, thin
/// over `MAX_WEBHOOK_BYTES`.
fn for_webhooks<'a>(item: &OutboxItem, e: &'a Rendered) -> Cow<'a, str> {
    match e.body.len() > MAX_WEBHOOK_BYTES {
        true => Cow::Owned(payload::thin(item, e)),
        false => Cow::Borrowed(e.body.as_str()),
    }
}

/// Reads the outbox, fans out to webhooks, publishes, marks delivered;
/// makes the webhook attempts; sweeps what the stream and the queue
/// dropped (`sweep`).
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

    /// Puts the events on the bus (each too large for it thin); answers,
    /// per event, whether the bus took it (all without a bus).
    async fn publish(&self, items: &[OutboxItem], events: &[(usize, Rendered)]) -> Put {
        let Some(bus) = &self.bus else {
            return Put {
                taken: vec![true; events.len()],
                error: None,
            };
        };
        let details: Vec<Cow<str>> = events
            .iter()
            .map(|(i, e)| match bus.fits(e.kind.as_str(), &e.body) {
                true => Cow::Borrowed(e.body.as_str()),
                false => Cow::Owned(payload::thin(&items[*i], e)),
            })
            .collect();
        let entries: Vec<(&str, &str)> = events
            .iter()
            .zip(&details)
            .map(|((_, e), d)| (e.kind.as_str(), d.as_ref()))
            .collect();
        bus.put(&entries).await
    }

    /// Fans `items`' events out to the webhooks (each over
    /// `MAX_WEBHOOK_BYTES` thin), then puts them on the bus (in requests
    /// sized for it), and marks delivered each item whose events the bus
    /// took. The webhooks never wait on the bus: an item the bus did not
    /// take stays undelivered, for the bus, and is put again by the next
    /// dispatch (locally) or sweep (in AWS), which fans it out again too,
    /// writing nothing new (a delivery is one per webhook and message).
    /// An item already marked delivered (a replayed stream batch, an index
    /// page behind the marks) is skipped. Errors are the store's (the
    /// fan-out or a mark).
    pub async fn deliver(&self, items: &[OutboxItem]) -> Result<Delivered, DispatchError> {
        let items = self.undelivered_of(items).await?;
        let items = items.as_slice();
        let events: Vec<(usize, Rendered)> = items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| payload::render(item, &self.config).into_iter().map(move |e| (i, e)))
            .collect();
        for (i, e) in &events {
            let item = &items[*i];
            self.webhooks
                .fan_out(
                    &item.connection.org,
                    e.kind.as_str(),
                    &e.message_id,
                    &for_webhooks(item, e),
                )
                .await?;
        }
        let put = self.publish(items, &events).await;
        let mut out = Delivered::default();
        for (i, item) in items.iter().enumerate() {
            let mut mine = events.iter().zip(&put.taken).filter(|((j, _), _)| *j == i);
            if mine.all(|(_, taken)| *taken) {
                self.connections.outbox_delivered(item, self.clock.now()).await?;
                out.delivered += 1;
            } else {
                out.held_for_bus += 1;
                out.bus_error
                    .get_or_insert_with(|| PublishError::Refused(item.kind.as_str().to_owned()));
            }
        }
        if out.held_for_bus > 0 {
            // The request's own error, when one failed, says more.
            out.bus_error = put.error.or(out.bus_error);
        }
        Ok(out)
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

    /// Delivers the undelivered items, page by page; answers how many were
    /// marked delivered, or, when the bus did not take some (their webhooks
    /// got them all the same), why. Each item at most once per call: a page
    /// that holds only items this call handled already (the bus's, an index
    /// that has not caught up with the marks, or a mark that did not take)
    /// ends it, and the next call tries again.
    pub async fn dispatch_pending(&self) -> Result<usize, DispatchError> {
        let mut done = std::collections::HashSet::new();
        let mut delivered = 0;
        let mut refused = None;
        loop {
            let items: Vec<OutboxItem> = self
                .connections
                .outbox_page(crate::store::MAX_PAGE)
                .await?
                .into_iter()
                .filter(|i| !done.contains(&(i.connection_id.clone(), i.sequence)))
                .collect();
            if items.is_empty() {
                break;
            }
            let out = self.deliver(&items).await?;
            delivered += out.delivered;
            refused = refused.or(out.bus_error);
            done.extend(items.into_iter().map(|i| (i.connection_id, i.sequence)));
        }
        match refused {
            Some(e) => Err(e.into()),
            None => Ok(delivered),
        }
    }

    /// Starts the due deliveries' attempts, each organization's as one
    /// task under one lease of its share (as an invocation in AWS,
    /// `attempts`): an organization whose share is held has its attempts
    /// left due, for a later poll. Within a task the attempts run at once,
    /// so a slow endpoint holds up no other.
    async fn spawn_attempts(&self, due: Vec<crate::domain::Delivery>) {
        let mut by_org: std::collections::BTreeMap<String, Vec<_>> = Default::default();
        for d in due {
            by_org.entry(d.org.clone()).or_default().push(d);
        }
        for (org, group) in by_org {
            let now = self.clock.now();
            let until = now + crate::webhooks::ATTEMPT_TIMEOUT.as_secs() as i64 + crate::webhooks::LEASE_SECS;
            let lease = match self.webhooks.share().take(&org, until, now).await {
                Ok(Some(lease)) => lease,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read an organization's webhook share; retrying");
                    continue;
                }
            };
            let me = self.clone();
            tokio::spawn(async move {
                let runs = group.into_iter().map(|d| me.attempt(d));
                for r in futures::future::join_all(runs).await {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "webhook attempt not recorded; retrying");
                    }
                }
                me.webhooks.share().release(lease).await;
            });
        }
    }

    /// Delivers the outbox and makes the due webhook attempts, forever (the
    /// local server's task): at once when the store signals a write to the
    /// outbox, and every `every` besides (a retry coming due, a write the
    /// store could not signal). Each organization's attempts within its
    /// share (`spawn_attempts`).
    pub async fn run(self, every: Duration) {
        let written = self.connections.outbox_written();
        loop {
            match self.dispatch_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(delivered = n, "events delivered"),
                Err(e) => tracing::warn!(error = %e, "event delivery failed; retrying"),
            }
            match self.webhooks.due(crate::store::MAX_PAGE).await {
                Ok(due) => self.spawn_attempts(due).await,
                Err(e) => tracing::warn!(error = %e, "cannot read due webhook deliveries; retrying"),
            }
            // A write during this pass left its permit: the next wait ends at once.
            match &written {
                Some(w) => {
                    tokio::select! {
                        () = w.notified() => {}
                        () = tokio::time::sleep(every) => {}
                    }
                }
                None => tokio::time::sleep(every).await,
            }
        }
    }
}

#[cfg(test)]
mod tests;
