//! PutEvents to the configured bus: requests of at most ten entries and
//! under 256 KB, sized as EventBridge sizes them; the entries EventBridge
//! reports failed sent again.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use std::ops::Range;
use std::time::Duration;

/// Entries per PutEvents.
pub const MAX_ENTRIES: usize = 10;
/// A PutEvents request's entries together, and so each entry alone, must
/// be under this many bytes (as `entry_size` counts them).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Attempts for the entries of a batch EventBridge did not take.
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("EventBridge could not be reached or refused the request: {0}")]
    Unavailable(String),
    #[error("EventBridge refused a {0} event after retries")]
    Refused(String),
}

/// An entry's size as EventBridge counts it
/// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html):
/// 14 bytes for `Time` if set, the UTF-8 bytes of `Source`, `DetailType`,
/// `Detail` and of each of `Resources`. The bus name is not counted.
pub fn entry_size(e: &PutEventsRequestEntry) -> usize {
    let time = if e.time().is_some() { 14 } else { 0 };
    let resources: usize = e.resources().iter().map(String::len).sum();
    // `str::len` is the UTF-8 byte length.
    time + e.source().map_or(0, str::len)
        + e.detail_type().map_or(0, str::len)
        + e.detail().map_or(0, str::len)
        + resources
}

/// Consecutive runs of entries (by their sizes) that each fit one request:
/// at most `MAX_ENTRIES`, together under `MAX_REQUEST_BYTES`. An entry too
/// large for any request goes alone (the bus refuses it; the caller sends
/// such an event thin instead, so it never has one).
pub fn batches(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        let full = i - start == MAX_ENTRIES || bytes + size >= MAX_REQUEST_BYTES;
        if i > start && full {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// What a put answered: per entry whether the bus took it, and why the
/// rest were not sent, if a request failed outright.
#[derive(Debug)]
pub struct Put {
    pub taken: Vec<bool>,
    pub error: Option<PublishError>,
}

pub struct EventBridge {
    client: crate::sdk::OwnClient<aws_sdk_eventbridge::Client>,
    bus: String,
    source: String,
}

impl EventBridge {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String, source: String) -> Self {
        EventBridge {
            client: crate::sdk::OwnClient::ready(client),
            bus,
            source,
        }
    }

    /// On the service's own AWS configuration, which `app` loaded.
    pub async fn on(aws: &crate::sdk::AwsConfigs, bus: String, source: String) -> Self {
        // Made at the first put, not at the function's init.
        EventBridge {
            client: crate::sdk::OwnClient::new(aws, aws_sdk_eventbridge::Client::new),
            bus,
            source,
        }
    }

    /// The entry of one event, as it is put.
    pub fn entry(&self, detail_type: &str, detail: &str) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(detail_type)
            .detail(detail)
            .build()
    }

    /// Whether the entry is under EventBridge's limit for one event.
    pub fn fits(&self, detail_type: &str, detail: &str) -> bool {
        entry_size(&self.entry(detail_type, detail)) < MAX_REQUEST_BYTES
    }

    /// Puts `(detail type, detail)` pairs on the bus, in as few requests as
    /// fit (`batches`); answers, per pair, whether the bus took it. A
    /// request that fails outright ends the put: its entries and the later
    /// ones are not taken, and the error says why.
    pub async fn put(&self, events: &[(&str, &str)]) -> Put {
        let entries: Vec<PutEventsRequestEntry> = events.iter().map(|(t, d)| self.entry(t, d)).collect();
        let sizes: Vec<usize> = entries.iter().map(entry_size).collect();
        let mut taken = vec![false; events.len()];
        for range in batches(&sizes) {
            match self.put_batch(&entries[range.clone()]).await {
                Ok(ok) => taken[range].copy_from_slice(&ok),
                Err(e) => return Put { taken, error: Some(e) },
            }
        }
        Put { taken, error: None }
    }

    /// One request's entries; those reported failed are sent again, with a
    /// short backoff, up to `ATTEMPTS` times.
    async fn put_batch(&self, entries: &[PutEventsRequestEntry]) -> Result<Vec<bool>, PublishError> {
        let mut taken = vec![false; entries.len()];
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let out = self
                .client
                .get()
                .await
                .put_events()
                .set_entries(Some(pending.iter().map(|&i| entries[i].clone()).collect()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_sized_as_eventbridge_sizes_it() {
        let e = PutEventsRequestEntry::builder()
            .event_bus_name("a-bus-name-not-counted")
            .source("account-connect")
            .detail_type("connection.connected")
            .detail(r#"{"é":1}"#);
        // 15 + 20 + 8 (é is two bytes in UTF-8).
        assert_eq!(entry_size(&e.clone().build()), 43);
        let with_time_and_resources = e
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(0))
            .resources("arn")
            .resources("arn2")
            .build();
        assert_eq!(entry_size(&with_time_and_resources), 43 + 14 + 3 + 4);
    }

    #[test]
    fn small_entries_go_ten_to_a_request() {
        let b = batches(&[100; 23]);
        assert_eq!(b, vec![0..10, 10..20, 20..23]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn large_entries_go_in_requests_under_256_kb() {
        let kb = 1024;
        // 100 KB each: two fit (200 KB), a third would reach 300 KB.
        assert_eq!(batches(&[100 * kb; 5]), vec![0..2, 2..4, 4..5]);
        // Exactly 256 KB together is over the limit ("under 256 KB").
        assert_eq!(batches(&[128 * kb, 128 * kb]), vec![0..1, 1..2]);
        assert_eq!(batches(&[128 * kb, 128 * kb - 1]), vec![0..2]);
        // A mix: small ones fill up beside large ones, ten at most.
        let sizes = [200 * kb, 10, 10, 60 * kb, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        let b = batches(&sizes);
        assert_eq!(b, vec![0..3, 3..13]);
        for r in &b {
            assert!(r.len() <= MAX_ENTRIES);
            assert!(sizes[r.clone()].iter().sum::<usize>() < MAX_REQUEST_BYTES);
        }
    }

    #[test]
    fn an_entry_too_large_for_any_request_goes_alone() {
        let kb = 1024;
        assert_eq!(batches(&[10, 300 * kb, 10]), vec![0..1, 1..2, 2..3]);
    }
}
