//! PutEvents to the configured bus: batches of up to ten, the entries
//! EventBridge reports failed sent again.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use std::time::Duration;

/// Entries per PutEvents.
pub const MAX_BATCH: usize = 10;
/// Attempts for the entries of a batch EventBridge did not take.
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("EventBridge could not be reached or refused the request: {0}")]
    Unavailable(String),
    #[error("EventBridge refused a {0} event after retries")]
    Refused(String),
}

pub struct EventBridge {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    source: String,
}

impl EventBridge {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String, source: String) -> Self {
        EventBridge { client, bus, source }
    }

    /// On the service's own AWS configuration, which `app` loaded.
    pub async fn on(aws: &crate::sdk::AwsConfigs, bus: String, source: String) -> Self {
        Self::new(aws_sdk_eventbridge::Client::new(aws.own().await), bus, source)
    }

    /// Puts `(detail type, detail)` pairs (at most ten) on the bus; answers,
    /// per pair, whether the bus took it. Entries reported failed are sent
    /// again, with a short backoff, up to `ATTEMPTS` times.
    pub async fn put(&self, events: &[(&'static str, String)]) -> Result<Vec<bool>, PublishError> {
        assert!(events.len() <= MAX_BATCH, "at most {MAX_BATCH} entries per PutEvents");
        let mut taken = vec![false; events.len()];
        let mut pending: Vec<usize> = (0..events.len()).collect();
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|&i| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(&self.source)
                        .detail_type(events[i].0)
                        .detail(&events[i].1)
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    PublishError::Unavailable(format!("{}", aws_sdk_eventbridge::error::DisplayErrorContext(e)))
                })?;
            // Result entries are in request order; a failed one has an error code.
            let results = out.entries();
            let mut again = Vec::new();
            for (k, &i) in pending.iter().enumerate() {
                match results.get(k) {
                    Some(r) if r.error_code().is_none() && r.event_id().is_some() => taken[i] = true,
                    _ => again.push(i),
                }
            }
            pending = again;
        }
        Ok(taken)
    }
}
