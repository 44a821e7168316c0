//! Answering CloudFormation: the PUT to a checked ResponseURL, with no
//! redirects, a short timeout and a body within CloudFormation's limit.
//! The client is hyper with rustls on aws-lc, the stack the AWS SDK already
//! links, so the binaries carry one HTTP and one TLS implementation.

use super::response_url::{ResponseHosts, UrlRefused};
use super::stack_arn::StackArn;
use crate::config::Config;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use url::Url;

/// CloudFormation rejects a response body over 4,096 bytes.
pub const MAX_BODY: usize = 4096;
/// A pre-signed S3 PUT answers in well under a second; a slow one is not S3.
const PUT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What is PUT to the ResponseURL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: String,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub data: Value,
}

/// Why a PUT did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// Not sent: the body cannot fit CloudFormation's limit.
    #[error("the answer does not fit CloudFormation's {MAX_BODY}-byte limit")]
    TooLarge,
    /// Worth another try (network, timeout, a 5xx).
    #[error("{0}")]
    Transient(String),
    /// Will not change on a retry (a 3xx not followed, a 4xx).
    #[error("{0}")]
    Refused(String),
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The HTTP client and the allow-list, built once per process. hyper's
/// client follows no redirect: a 3xx is an answer like any other.
#[derive(Clone)]
pub struct Responder {
    /// Made on the first PUT: reading the system's CA certificates costs
    /// milliseconds that a cold start of the API should not pay.
    http: Arc<OnceLock<HttpClient>>,
    hosts: ResponseHosts,
}

impl Responder {
    pub fn new(config: &Config) -> Self {
        let hosts = ResponseHosts::from_setting(config.callback_response_hosts.as_deref());
        Responder {
            http: Arc::default(),
            hosts,
        }
    }

    fn http(&self) -> &HttpClient {
        self.http.get_or_init(|| {
            let mut tcp = HttpConnector::new();
            tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
            tcp.enforce_http(false);
            let tls = crate::sdk::tls_builder();
            // In AWS only https goes out; listed hosts (local runs) may be http.
            let tls = if matches!(self.hosts, ResponseHosts::CloudFormation) {
                tls.https_only()
            } else {
                tls.https_or_http()
            };
            Client::builder(TokioExecutor::new()).build(tls.enable_http1().wrap_connector(tcp))
        })
    }

    pub fn check(&self, raw: Option<&str>, stack: Option<&StackArn>) -> Result<Url, UrlRefused> {
        self.hosts.check(raw, stack)
    }

    /// PUTs the answer; the pre-signed URL wants no content type.
    pub async fn put(&self, url: &Url, res: &Response) -> Result<(), PutError> {
        let body = fit(res).ok_or(PutError::TooLarge)?;
        let request = hyper::Request::put(url.as_str())
            .header(hyper::header::CONTENT_TYPE, "")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PutError::Refused(format!("the ResponseURL is not a request target: {e}")))?;
        // The whole exchange, connect included; the answer's body is never read.
        let sent = tokio::time::timeout(PUT_TIMEOUT, self.http().request(request)).await;
        match sent {
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) if r.status().is_server_error() => {
                Err(PutError::Transient(format!("the ResponseURL answered {}", r.status())))
            }
            Ok(Ok(r)) => Err(PutError::Refused(format!("the ResponseURL answered {}", r.status()))),
            Ok(Err(e)) => Err(PutError::Transient(format!("cannot reach the ResponseURL: {e}"))),
            Err(_) => Err(PutError::Transient(format!(
                "the ResponseURL did not answer within {} s",
                PUT_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The body, its Reason shortened until it fits; None when even an empty
/// Reason does not (the echoed ids are too long: not CloudFormation's).
pub fn fit(res: &Response) -> Option<Vec<u8>> {
    let body = serde_json::to_vec(res).expect("responses serialize");
    if body.len() <= MAX_BODY {
        return Some(body);
    }
    // The longest prefix of the Reason that fits, by bisection (escapes
    // make a char cost 1 to 6 bytes).
    let with = |keep: usize| {
        let mut short = res.clone();
        short.reason = res.reason.chars().take(keep).chain(std::iter::once('…')).collect();
        serde_json::to_vec(&short).expect("responses serialize")
    };
    let (mut lo, mut hi) = (0, res.reason.chars().count());
    if with(0).len() > MAX_BODY {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if with(mid).len() <= MAX_BODY {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(with(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(reason: String, stack_id: String) -> Response {
        Response {
            status: "FAILED".into(),
            reason,
            physical_resource_id: "p".into(),
            stack_id,
            request_id: "r".into(),
            logical_resource_id: "l".into(),
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn bodies_fit_cloudformations_limit() {
        let small = res("short".into(), "s".into());
        assert_eq!(fit(&small).unwrap(), serde_json::to_vec(&small).unwrap());
        for reason in ["x".repeat(10_000), "\"".repeat(5_000), "é\u{1}".repeat(3_000)] {
            let body = fit(&res(reason, "s".into())).unwrap();
            assert!(body.len() <= MAX_BODY, "{}", body.len());
            let back: Response = serde_json::from_slice(&body).unwrap();
            assert!(
                back.reason.ends_with('…') && back.reason.len() > 1000,
                "{}",
                back.reason.len()
            );
        }
        assert!(fit(&res("r".into(), "s".repeat(MAX_BODY))).is_none());
    }
}
