//! The sweeper, in AWS: the table's stream and the attempt queue drive the
//! work, and a schedule runs this to catch what they dropped. An outbox
//! item still undelivered `sweep_after_secs` after its change (its stream
//! batch went to the dead-letter queue, or the bus refused it) is delivered
//! again: fanned out (writing nothing new for a webhook that has it) and
//! put on the bus. A pending delivery due more than `sweep_after_secs` ago
//! (its queue message was lost: a batch dead-lettered, a purged queue, a
//! first attempt never queued) is queued again. Each run takes at most
//! `SWEEP_LIMIT` of each, the oldest first; the next run takes the rest.
//!
//! A delivery whose message was only late, not lost, then has two messages
//! on the queue: harmless (an attempt leases the delivery first, so it is
//! sent once; the spare message finds it not due and follows it until it
//! ends).

use super::{DispatchError, Dispatcher};
use crate::domain::OutboxItem;
use serde::Serialize;

/// Outbox items, and deliveries, one sweep takes at most (one store page).
pub const SWEEP_LIMIT: usize = crate::store::MAX_PAGE;

/// What one sweep did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    /// Late outbox items found, and of those, delivered (bus and webhooks).
    pub late: usize,
    pub delivered: usize,
    /// Late items the bus still did not take (their webhooks have them).
    pub held_for_bus: usize,
    /// Overdue deliveries queued again.
    pub requeued: usize,
}

impl Dispatcher {
    /// One sweep (the schedule's event). Both halves run; an error of
    /// either, or the bus refusing a late item, fails the run (the
    /// function's `Errors`, alarmed) after both.
    pub async fn sweep(&self) -> Result<Swept, DispatchError> {
        let now = self.clock.now();
        let before = now - self.config.sweep_after_secs as i64;
        let mut swept = Swept::default();
        let outbox = self.deliver_late(before, &mut swept).await;
        let queued = self.requeue_overdue(before, now, &mut swept).await;
        tracing::info!(
            late = swept.late,
            delivered = swept.delivered,
            held_for_bus = swept.held_for_bus,
            requeued = swept.requeued,
            "sweep"
        );
        outbox.and(queued).map(|()| swept)
    }

    async fn deliver_late(&self, before: i64, swept: &mut Swept) -> Result<(), DispatchError> {
        let late: Vec<OutboxItem> = self
            .connections
            .outbox_page(SWEEP_LIMIT)
            .await?
            .into_iter()
            .filter(|i| i.at <= before)
            .collect();
        swept.late = late.len();
        let out = self.deliver(&late).await?;
        swept.delivered = out.delivered;
        swept.held_for_bus = out.held_for_bus;
        match out.bus_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn requeue_overdue(&self, before: i64, now: i64, swept: &mut Swept) -> Result<(), DispatchError> {
        let queue = self.attempt_queue()?;
        let overdue = self.webhooks.due_at(before, SWEEP_LIMIT).await?;
        queue.schedule(&overdue, now).await.map_err(DispatchError::Queue)?;
        swept.requeued = overdue.len();
        Ok(())
    }
}
