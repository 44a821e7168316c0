//! The fleet re-check. The schedule starts an enumerator that pages the
//! connected index and queues one job per connection; workers take jobs
//! with bounded concurrency and check each under its own deadline, so a slow
//! account costs one slot for a bounded time. Progress lives in the queue:
//! an enumerator near its deadline queues its own continuation. A job
//! delivered twice is harmless: a connection checked after its job was
//! queued is skipped, and a check only ever records what it found.
//!
//! In AWS the queue is SQS (`sqs`, `lambda`); locally and in tests it is an
//! in-process channel (`local`). Nothing here knows the HTTP layer: the
//! entry points build the `ConnectionService`.

pub mod command;
mod enumerate;
pub mod lambda;
pub mod local;
mod queue;
mod worker;

pub use enumerate::{enumerate, EnumerateOptions, Enumerated};
pub use queue::{ChannelQueue, Queue, QueueError, SqsQueue};
pub use worker::{JobOutcome, Slowest, Summary, Worker};

use crate::domain::ConnectionId;
use serde::{Deserialize, Serialize};

/// One queue message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Message {
    /// Re-check one connection.
    #[serde(rename_all = "camelCase")]
    Check {
        org: String,
        id: ConnectionId,
        /// Unix seconds; a conclusive check after it makes the job moot.
        queued_at: i64,
    },
    /// Go on paging the connected index after `cursor` (an enumerator
    /// that ran out of time).
    #[serde(rename_all = "camelCase")]
    Enumerate { cursor: String, started_at: i64 },
}

/// Largest message body read from the queue: a real one is under 200 bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;

impl Message {
    pub fn parse(body: &str) -> Result<Message, String> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(format!("a message of {} bytes is not a re-check job", body.len()));
        }
        serde_json::from_str(body).map_err(|e| format!("not a re-check job: {e}"))
    }

    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let m = Message::Check {
            org: "o".into(),
            id: "con-0123456789abcdef01234567".parse().unwrap(),
            queued_at: 5,
        };
        assert_eq!(Message::parse(&m.body()).unwrap(), m);
        assert!(m.body().contains(r#""kind":"check""#));
        assert!(Message::parse("{}").is_err());
        assert!(Message::parse(r#"{"kind":"check","org":"o","id":"con-x","queuedAt":1}"#).is_err());
        assert!(Message::parse(&"x".repeat(5000)).is_err());
    }
}
