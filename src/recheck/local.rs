//! The whole pipeline in one process: the enumerator feeds a bounded
//! channel, N workers drain it. `account-connect recheck`, the tests and
//! the benchmark run this.

use super::worker::timed;
use super::{enumerate, ChannelQueue, EnumerateOptions, Message, Summary, Worker};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

/// Enumerates every connected connection and checks each with at most
/// `concurrency` checks at once.
pub async fn run(worker: &Worker, opts: &EnumerateOptions, concurrency: usize) -> Summary {
    let started = Instant::now();
    let concurrency = concurrency.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel::<Message>(concurrency * 4);
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (worker, rx) = (worker.clone(), rx.clone());
        workers.spawn(async move {
            let mut summary = Summary::default();
            loop {
                // The lock is held only to take one message.
                let Some(m) = rx.lock().await.recv().await else {
                    return summary;
                };
                match m {
                    Message::Check { org, id, queued_at } => {
                        let (outcome, took) = timed(worker.check(&org, &id, Some(queued_at))).await;
                        summary.record(&id, &outcome, took);
                    }
                    // Only an enumerator with a deadline queues these; this run's has none.
                    Message::Enumerate { .. } => summary.errors += 1,
                }
            }
        });
    }
    let queue = ChannelQueue::new(tx);
    let mut total = Summary::default();
    match enumerate(&worker.service, &queue, opts, None, worker.service.now(), None).await {
        Ok(e) => {
            total.queued = e.queued;
            total.stale = e.stale;
            crate::metrics::count("StaleConnections", e.stale as u64);
        }
        Err(e) => {
            tracing::error!(error = %e, "re-check enumeration failed");
            total.errors += 1;
        }
    }
    // Closes the channel: the workers stop once it is drained.
    drop(queue);
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(s) => total.merge(s),
            Err(e) => {
                tracing::error!(error = %e, "a re-check worker panicked");
                total.errors += 1;
            }
        }
    }
    total.elapsed_ms = started.elapsed().as_millis() as u64;
    total
}
