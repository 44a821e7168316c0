//! The template bucket's two S3 calls, PutObject and DeleteObject, signed by
//! `sdk::signed` (why not `aws-sdk-s3`: see there). Path-style addresses, as
//! before: bucket names with dots, and the local stand-in, work alike.

use crate::sdk::signed::{Signer, Signing};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::time::Duration;

/// One attempt's budget, connect included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at a call S3 may answer later (5xx, throttling, no answer), as
/// the SDK's standard retry mode.
const ATTEMPTS: u32 = 3;
/// S3's answers go to the log, cut to this.
const MAX_DETAIL: usize = 300;

/// What a key's path segments escape (RFC 3986 path characters stay).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'+')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

pub struct Bucket {
    signer: Signer,
    /// `https://s3.<region>.<domain>`, or the endpoint override.
    base: String,
}

impl Bucket {
    /// `domain`: S3's host suffix in the partition.
    pub fn new(signer: Signer, domain: &str) -> Self {
        let base = signer
            .endpoint_override()
            .unwrap_or_else(|| format!("https://s3.{}.{domain}", signer.region()));
        Bucket { signer, base }
    }

    /// The region the objects go to: the identity's (AWS_REGION in Lambda;
    /// the partition's home region for GovCloud and China).
    pub fn region(&self) -> String {
        self.signer.region()
    }

    fn url(&self, bucket: &str, key: &str) -> String {
        let key: Vec<String> = key
            .split('/')
            .map(|s| utf8_percent_encode(s, PATH_SEGMENT).to_string())
            .collect();
        format!("{}/{bucket}/{}", self.base, key.join("/"))
    }

    pub async fn put(&self, bucket: &str, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), String> {
        let headers = [("content-type", content_type)];
        self.call("PUT", bucket, key, &headers, body).await
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), String> {
        self.call("DELETE", bucket, key, &[], Vec::new()).await
    }

    async fn call(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(), String> {
        let url = self.url(bucket, key);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .signer
                .send(method, &url, "s3", Signing::S3, headers, body.clone(), ATTEMPT_TIMEOUT)
                .await;
            let (retry, why) = match sent {
                Ok(a) if (200..300).contains(&a.status) => return Ok(()),
                Ok(a) => (
                    a.status >= 500 || a.status == 429,
                    format!("S3 answered {method} {url} with {}: {}", a.status, detail(&a.body)),
                ),
                Err(e) => (true, e),
            };
            if !retry || attempt >= ATTEMPTS {
                return Err(why);
            }
            // 100 ms, then 400 ms: S3's 503 SlowDown asks for a pause.
            tokio::time::sleep(Duration::from_millis(100 * 4u64.pow(attempt - 1))).await;
        }
    }
}

/// S3's error `Code` and `Message`, else the start of the body.
fn detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&close)?;
        Some(text[start..start + len].to_owned())
    };
    let found = match (element("Code"), element("Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => text.trim().to_owned(),
    };
    found.chars().take(MAX_DETAIL).collect()
}

#[cfg(test)]
mod tests {
    use super::detail;

    #[test]
    fn s3s_error_code_and_message_are_kept_for_the_log() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>X</RequestId></Error>"#;
        assert_eq!(detail(body), "AccessDenied: Access Denied");
        assert_eq!(detail(b"  plain  "), "plain");
        assert_eq!(detail(&[b'x'; 1000]).len(), 300);
    }
}
