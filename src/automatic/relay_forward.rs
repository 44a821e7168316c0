//! The relay function's half (src/bin/relay.rs): each custom resource
//! request its partition's topic delivers goes to the main deployment's
//! `POST /v1/relay/{partition}` verbatim, signed (relay.rs).

use super::relay;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The main side may wait minutes for the role to propagate (the callback's
/// budget); the relay function's timeout is above this (partition-relay.yaml).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(280);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What became of a forwarded request.
#[derive(Debug, PartialEq, Eq)]
pub enum Forwarded {
    Handled,
    /// Worth the function's retry: the main side is down, busy, or did not
    /// take the signature (a key rotation half done).
    Retry(String),
    /// Will not change on a retry (no relay there for this partition, a
    /// stack of another partition); the log says why.
    Dropped(String),
}

#[derive(Clone)]
pub struct Forwarder {
    /// Made at the first forward: loading the system's roots for TLS is
    /// not the function's init's to pay.
    http: std::sync::Arc<std::sync::OnceLock<HttpClient>>,
    local: bool,
    url: String,
}

impl Forwarder {
    /// `url`: the main deployment's relay route, https (http only to this
    /// machine, for tests).
    pub fn new(url: &str) -> Result<Self, String> {
        let local = ["http://127.0.0.1:", "http://localhost:"]
            .iter()
            .any(|p| url.starts_with(p));
        if !url.starts_with("https://") && !local {
            return Err("ACCOUNT_CONNECT_RELAY_URL must be an https:// URL".into());
        }
        Ok(Forwarder {
            http: std::sync::Arc::default(),
            local,
            url: url.to_owned(),
        })
    }

    fn http(&self) -> &HttpClient {
        self.http.get_or_init(|| {
            let mut tcp = HttpConnector::new();
            tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
            tcp.enforce_http(false);
            let tls = crate::sdk::tls_builder();
            let tls = if self.local {
                tls.https_or_http()
            } else {
                tls.https_only()
            };
            Client::builder(TokioExecutor::new()).build(tls.enable_http1().wrap_connector(tcp))
        })
    }

    /// POSTs `message` signed with `key` at `now` (Unix seconds).
    pub async fn forward(&self, key: &[u8], message: &str, now: i64) -> Forwarded {
        if message.len() > relay::MAX_BODY {
            return Forwarded::Dropped("the message is over 64 KB".into());
        }
        let request = hyper::Request::post(self.url.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(relay::TIMESTAMP_HEADER, now.to_string())
            .header(relay::SIGNATURE_HEADER, relay::sign(key, now, message.as_bytes()))
            .body(Full::new(Bytes::from(message.to_owned())));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Forwarded::Dropped(format!("ACCOUNT_CONNECT_RELAY_URL is not a request target: {e}")),
        };
        match tokio::time::timeout(FORWARD_TIMEOUT, self.http().request(request)).await {
            Ok(Ok(r)) if r.status().is_success() => Forwarded::Handled,
            Ok(Ok(r)) if r.status().is_server_error() || r.status() == hyper::StatusCode::UNAUTHORIZED => {
                Forwarded::Retry(format!("the main deployment answered {}", r.status()))
            }
            Ok(Ok(r)) => Forwarded::Dropped(format!("the main deployment answered {}", r.status())),
            Ok(Err(e)) => Forwarded::Retry(format!("cannot reach the main deployment: {e}")),
            Err(_) => Forwarded::Retry(format!(
                "the main deployment did not answer within {} s",
                FORWARD_TIMEOUT.as_secs()
            )),
        }
    }
}
