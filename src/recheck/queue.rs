//! Where jobs go: SQS in AWS, a bounded channel in one process.

use super::Message;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum QueueError {
    /// The queue refused or could not be reached; the messages may be retried.
    Unavailable(String),
    /// The in-process consumers are gone.
    Closed,
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Unavailable(m) => write!(f, "the re-check queue is unavailable: {m}"),
            QueueError::Closed => f.write_str("the re-check workers stopped"),
        }
    }
}

#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, messages: Vec<Message>) -> Result<(), QueueError>;
}

/// SendMessageBatch's limit.
pub const SQS_BATCH: usize = 10;
/// Attempts for the entries of a batch SQS did not take.
const SQS_ATTEMPTS: u32 = 4;

pub struct SqsQueue {
    client: crate::sdk::OwnClient<aws_sdk_sqs::Client>,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        SqsQueue {
            client: crate::sdk::OwnClient::ready(client),
            url,
        }
    }

    /// On the service's own configuration; the client is made at the first
    /// message, not at the function's init.
    pub fn on(aws: &crate::sdk::AwsConfigs, url: String) -> Self {
        SqsQueue {
            client: crate::sdk::OwnClient::new(aws, aws_sdk_sqs::Client::new),
            url,
        }
    }

    /// One SendMessageBatch of at most ten, resending the entries it reports
    /// failed (a throttled or internal error on some of them).
    async fn send_batch(&self, batch: &[Message]) -> Result<(), QueueError> {
        let mut pending: Vec<(String, String)> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), m.body()))
            .collect();
        for attempt in 0..SQS_ATTEMPTS {
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body)
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            let out = self
                .client
                .get()
                .await
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Unavailable(format!("{:?}", e.into_service_error())))?;
            let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
            if failed.is_empty() {
                return Ok(());
            }
            let sender_fault = out.failed.iter().find(|f| f.sender_fault);
            if let Some(f) = sender_fault {
                // Our message is wrong: resending it will not help.
                return Err(QueueError::Unavailable(format!(
                    "SQS refused a message: {} {}",
                    f.code,
                    f.message.as_deref().unwrap_or("")
                )));
            }
            pending.retain(|(id, _)| failed.contains(&id.as_str()));
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(QueueError::Unavailable(format!(
            "SQS did not take {} message(s) after {SQS_ATTEMPTS} attempts",
            pending.len()
        )))
    }
}

#[async_trait::async_trait]
impl Queue for SqsQueue {
    /// In batches of ten, sent side by side.
    async fn send(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        let sends = messages.chunks(SQS_BATCH).map(|b| self.send_batch(b));
        futures::future::join_all(sends).await.into_iter().collect()
    }
}

/// The in-process queue: bounded, so the enumerator waits for the workers.
pub struct ChannelQueue {
    tx: tokio::sync::mpsc::Sender<Message>,
}

impl ChannelQueue {
    pub fn new(tx: tokio::sync::mpsc::Sender<Message>) -> Self {
        ChannelQueue { tx }
    }
}

#[async_trait::async_trait]
impl Queue for ChannelQueue {
    async fn send(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        for m in messages {
            self.tx.send(m).await.map_err(|_| QueueError::Closed)?;
        }
        Ok(())
    }
}
