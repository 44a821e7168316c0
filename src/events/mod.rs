//! Delivering the outbox: each state change the store wrote with the change
//! (`domain::OutboxItem`) becomes an event in the Standard Webhooks shape and
//! is put on the EventBridge bus, then marked delivered. At least once: an
//! item is marked only after the bus took it, so a process that dies between
//! the two sends it again (consumers de-duplicate by connection and
//! sequence). Locally `serve` polls the outbox (`Dispatcher::run`); in AWS a
//! DynamoDB stream hands the new items to the dispatcher function
//! (`lambda`), which delivers them the same way.
//!
//! The payload's `data` is the view the API answers (`crate::views`, which
//! both entry points use), rendered here at dispatch time from the
//! connection as the change left it (stored in the outbox item).

mod eventbridge;
pub mod lambda;

pub use eventbridge::{EventBridge, PublishError};

use crate::clock::{iso, Clock};
use crate::config::Config;
use crate::connections::ConnectionService;
use crate::domain::{Health, OutboxItem};
use crate::services::Services;
use crate::store::StoreError;
use crate::views::ConnectionView;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// An event as consumers receive it (EventBridge's `Detail`).
#[derive(Serialize)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the change was stored, RFC 3339.
    pub timestamp: String,
    pub data: PayloadData,
}

/// The connection as the API shows it, with the event's own fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadData {
    #[serde(flatten)]
    pub connection: ConnectionView,
    /// Per connection, strictly increasing (not contiguous): order by it and
    /// drop one already seen.
    pub sequence: u64,
    /// The health before a `connection.health_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_health: Option<Health>,
}

impl Payload {
    pub fn new(item: &OutboxItem, config: &Config) -> Payload {
        let c = item.connection.clone();
        let principal = config.principals.get(&c.partition).map(String::as_str);
        Payload {
            kind: item.kind.as_str(),
            timestamp: iso(item.at),
            data: PayloadData {
                connection: ConnectionView::new(c, principal, item.at),
                sequence: item.sequence,
                previous_health: item.previous_health,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Reads the outbox, publishes, marks delivered.
#[derive(Clone)]
pub struct Dispatcher {
    connections: ConnectionService,
    config: Arc<Config>,
    bus: Arc<EventBridge>,
    clock: Clock,
}

impl Dispatcher {
    /// The dispatcher of these services, when `ACCOUNT_CONNECT_EVENT_BUS` is
    /// set; without a bus there is nowhere to deliver and the outbox keeps
    /// its items.
    pub async fn for_services(services: &Services) -> Option<Dispatcher> {
        let bus = services.config.event_bus.clone()?;
        let bus = EventBridge::on(&services.aws, bus, services.config.event_source.clone()).await;
        Some(Dispatcher {
            connections: services.connections.clone(),
            config: services.config.clone(),
            bus: Arc::new(bus),
            clock: services.connections.clock(),
        })
    }

    /// Publishes `items` (in batches of up to ten) and marks each one the
    /// bus took as delivered; an item the bus refused after the retries
    /// stays undelivered and fails the call.
    pub async fn deliver(&self, items: &[OutboxItem]) -> Result<usize, DispatchError> {
        let mut delivered = 0;
        let mut refused = None;
        for batch in items.chunks(eventbridge::MAX_BATCH) {
            let payloads: Vec<(&'static str, String)> = batch
                .iter()
                .map(|i| {
                    let p = Payload::new(i, &self.config);
                    (p.kind, serde_json::to_string(&p).expect("payloads serialize"))
                })
                .collect();
            let taken = match self.bus.put(&payloads).await {
                Ok(taken) => taken,
                Err(e) => {
                    refused.get_or_insert(e);
                    continue;
                }
            };
            for (item, ok) in batch.iter().zip(taken) {
                if ok {
                    self.connections.outbox_delivered(item, self.clock.now()).await?;
                    delivered += 1;
                } else {
                    refused.get_or_insert(PublishError::Refused(item.kind.as_str().to_owned()));
                }
            }
        }
        match refused {
            Some(e) => Err(e.into()),
            None => Ok(delivered),
        }
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

    /// Polls the outbox every `every`, forever (the local server's task).
    pub async fn run(self, every: Duration) {
        loop {
            match self.dispatch_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(delivered = n, "events delivered"),
                Err(e) => tracing::warn!(error = %e, "event delivery failed; retrying"),
            }
            tokio::time::sleep(every).await;
        }
    }
}
