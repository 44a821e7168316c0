//! The enumerator: pages the connected index, queues a job per connection,
//! and counts the connections not checked for two schedules.

use super::{Message, Queue, QueueError};
use crate::connections::last_checked;
use crate::connections::ConnectionService;
use crate::store::StoreError;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct EnumerateOptions {
    /// Connections read per page.
    pub page: usize,
    /// The schedule's period; stale means not checked for two of them.
    pub interval_secs: u64,
}

impl EnumerateOptions {
    pub fn from_config(c: &crate::config::Config) -> Self {
        EnumerateOptions {
            page: c.recheck_batch,
            interval_secs: c.recheck_interval_secs,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enumerated {
    pub pages: usize,
    pub queued: usize,
    /// Connected connections whose last conclusive check is older than two
    /// schedules (or that have none).
    pub stale: usize,
    /// The deadline came first: the rest is queued as a continuation.
    pub continued: bool,
}

#[derive(Debug)]
pub enum EnumerateError {
    Store(StoreError),
    Queue(QueueError),
}

impl std::fmt::Display for EnumerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnumerateError::Store(e) => write!(f, "cannot list connected connections: {e}"),
            EnumerateError::Queue(e) => write!(f, "{e}"),
        }
    }
}

/// Pages from `cursor` (None: the start) until done, or until `deadline`
/// (then queues a continuation). `now` is the run's start, which the
/// staleness and each job's `queuedAt` are measured from.
pub async fn enumerate(
    connections: &ConnectionService,
    queue: &dyn Queue,
    opts: &EnumerateOptions,
    mut cursor: Option<String>,
    now: i64,
    deadline: Option<Instant>,
) -> Result<Enumerated, EnumerateError> {
    let mut out = Enumerated::default();
    let stale_before = now - 2 * opts.interval_secs as i64;
    loop {
        let page = connections
            .connected_page(cursor.as_deref(), opts.page)
            .await
            .map_err(EnumerateError::Store)?;
        out.pages += 1;
        out.stale += page
            .items
            .iter()
            .filter(|c| last_checked(c).is_none_or(|at| at < stale_before))
            .count();
        let jobs: Vec<Message> = page
            .items
            .iter()
            .map(|c| Message::Check {
                org: c.org.clone(),
                id: c.id.clone(),
                queued_at: now,
            })
            .collect();
        out.queued += jobs.len();
        queue.send(jobs).await.map_err(EnumerateError::Queue)?;
        match page.next {
            None => return Ok(out),
            Some(next) if deadline.is_some_and(|d| Instant::now() >= d) => {
                queue
                    .send(vec![Message::Enumerate {
                        cursor: next,
                        started_at: now,
                    }])
                    .await
                    .map_err(EnumerateError::Queue)?;
                out.continued = true;
                return Ok(out);
            }
            Some(next) => cursor = Some(next),
        }
    }
}
