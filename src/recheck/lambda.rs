//! The re-check in Lambda: the schedule's event enumerates into SQS; SQS
//! batches are checked with bounded concurrency, and the messages that
//! should come back (unreadable, or the store failed) are reported as
//! batch item failures. SQS moves a message that keeps failing to the
//! dead-letter queue (the queue's RedrivePolicy).

use super::worker::timed;
use super::{enumerate, EnumerateOptions, Enumerated, JobOutcome, Message, Queue, Summary, Worker};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
pub struct Fleet {
    pub worker: Worker,
    pub queue: Arc<dyn Queue>,
    pub options: EnumerateOptions,
    /// Checks run at once within one batch.
    pub concurrency: usize,
}

impl Fleet {
    /// The schedule: enumerate until done or `deadline`, then a continuation.
    pub async fn on_schedule(&self, deadline: Instant) -> Result<Enumerated, String> {
        let now = self.worker.service.now();
        self.enumerate_from(None, now, deadline).await
    }

    async fn enumerate_from(
        &self,
        cursor: Option<String>,
        started_at: i64,
        deadline: Instant,
    ) -> Result<Enumerated, String> {
        let e = enumerate(
            &self.worker.service,
            self.queue.as_ref(),
            &self.options,
            cursor,
            started_at,
            Some(deadline),
        )
        .await
        .map_err(|e| e.to_string())?;
        crate::metrics::count("StaleConnections", e.stale as u64);
        tracing::info!(?e, "re-check jobs queued");
        Ok(e)
    }

    /// One SQS batch. A continuation of the enumeration runs until `deadline`.
    pub async fn on_batch(&self, event: SqsEvent, deadline: Instant) -> (SqsBatchResponse, Summary) {
        let mut response = SqsBatchResponse::default();
        let mut summary = Summary::default();
        let permits = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut ids = std::collections::HashMap::new();
        for record in event.records {
            let message_id = record.message_id.unwrap_or_default();
            let message = match record.body.as_deref().map(Message::parse) {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    // Back to the queue; after maxReceiveCount, the DLQ.
                    tracing::error!(message_id, error = %e, "unreadable re-check message");
                    response.add_failure(message_id);
                    continue;
                }
                None => {
                    tracing::error!(message_id, "re-check message without a body");
                    response.add_failure(message_id);
                    continue;
                }
            };
            let (fleet, permits) = (self.clone(), permits.clone());
            let task_message = message_id.clone();
            let handle = tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("never closed");
                match message {
                    Message::Check { org, id, queued_at } => {
                        let (outcome, took) = timed(fleet.worker.check(&org, &id, Some(queued_at))).await;
                        (message_id, Some((id, outcome, took)), None)
                    }
                    Message::Enumerate { cursor, started_at } => {
                        let r = fleet.enumerate_from(Some(cursor), started_at, deadline).await;
                        (message_id, None, Some(r))
                    }
                }
            });
            ids.insert(handle.id(), task_message);
        }
        while let Some(done) = tasks.join_next().await {
            let (message_id, check, enumerated) = match done {
                Ok(done) => done,
                Err(e) => {
                    // A panicked check: its message comes back.
                    tracing::error!(error = %e, "a re-check task failed");
                    summary.errors += 1;
                    if let Some(m) = ids.get(&e.id()) {
                        response.add_failure(m.clone());
                    }
                    continue;
                }
            };
            if let Some((id, outcome, took)) = check {
                if matches!(outcome, JobOutcome::Failed(_)) {
                    response.add_failure(message_id.clone());
                }
                summary.record(&id, &outcome, took);
            }
            match enumerated {
                Some(Ok(e)) => {
                    summary.queued += e.queued;
                    summary.stale += e.stale;
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "re-check enumeration failed");
                    summary.errors += 1;
                    response.add_failure(message_id);
                }
                None => {}
            }
        }
        (response, summary)
    }
}
