//! Sending one delivery: the Standard Webhooks headers and signatures (the
//! `standardwebhooks` crate), over a client that reaches public addresses
//! only (checked after DNS resolution, on the address it then connects
//! to), follows no redirect, reads no response body and gives up after
//! `ATTEMPT_TIMEOUT`. Hosts the configuration allows skip the address rule
//! and may use http (tests, local runs).

use super::address;
use crate::domain::{Attempt, Delivery, Webhook, WebhookUrl};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A 2xx within this is success; anything else, or nothing, a failure.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

type HttpClient<R> = Client<hyper_rustls::HttpsConnector<HttpConnector<R>>, Full<Bytes>>;

/// Why a URL may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlRefused(pub String);

/// Resolves names to their public addresses only; a name with none fails.
#[derive(Clone, Default)]
pub struct PublicResolver;

impl tower::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move {
            let addrs = public_addresses(name.as_str())
                .await
                .map_err(|e| std::io::Error::other(e.0))?;
            Ok(addrs.into_iter())
        })
    }
}

/// The name's addresses, all of which must be public.
async fn public_addresses(host: &str) -> Result<Vec<SocketAddr>, UrlRefused> {
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0)))
        .await
        .map_err(|_| UrlRefused(format!("{host} did not resolve within {} s", RESOLVE_TIMEOUT.as_secs())))?
        .map_err(|e| UrlRefused(format!("{host} does not resolve: {e}")))?;
    let addrs: Vec<SocketAddr> = found.collect();
    // All, not any: a name that also points inside is refused outright.
    if let Some((a, why)) = addrs.iter().find_map(|a| address::refused(a.ip()).map(|w| (a, w))) {
        return Err(UrlRefused(format!("{host} resolves to {}, {why}", a.ip())));
    }
    if addrs.is_empty() {
        return Err(UrlRefused(format!("{host} has no addresses")));
    }
    Ok(addrs)
}

/// The outcome of one send.
pub struct Sent {
    pub attempt: Attempt,
    pub ok: bool,
}

#[derive(Clone)]
pub struct Sender {
    allowed_hosts: Vec<String>,
    /// Built on first send: loading the system's roots costs a cold start
    /// milliseconds that a process which never sends should not pay.
    clients: Arc<OnceLock<Clients>>,
}

struct Clients {
    guarded: HttpClient<PublicResolver>,
    open: HttpClient<GaiResolver>,
}

/// TCP with a connect timeout; the TLS and client layers are the callers'.
fn tcp<R>(resolver: R) -> HttpConnector<R> {
    let mut tcp = HttpConnector::new_with_resolver(resolver);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    tcp.enforce_http(false);
    tcp
}

impl Sender {
    pub fn new(allowed_hosts: Vec<String>) -> Self {
        Sender {
            allowed_hosts,
            clients: Arc::default(),
        }
    }

    fn clients(&self) -> &Clients {
        self.clients.get_or_init(|| Clients {
            guarded: Client::builder(TokioExecutor::new()).build(
                crate::automatic::responder::tls_builder()
                    .https_only()
                    .enable_http1()
                    .wrap_connector(tcp(PublicResolver)),
            ),
            open: Client::builder(TokioExecutor::new()).build(
                crate::automatic::responder::tls_builder()
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(tcp(GaiResolver::new())),
            ),
        })
    }

    fn allowed(&self, url: &WebhookUrl) -> bool {
        let (host, authority) = url.host_and_authority();
        self.allowed_hosts.iter().any(|a| *a == host || *a == authority)
    }

    /// The checks that need no lookup: https, and an address host public.
    fn check_static(&self, url: &WebhookUrl) -> Result<bool, UrlRefused> {
        if self.allowed(url) {
            return Ok(true);
        }
        if !url.is_https() {
            return Err(UrlRefused("the webhook URL must use https".into()));
        }
        // The URL parser has read an address host already.
        let ip: Option<std::net::IpAddr> = match url.url().host() {
            Some(url::Host::Ipv4(a)) => Some(a.into()),
            Some(url::Host::Ipv6(a)) => Some(a.into()),
            _ => None,
        };
        if let Some((ip, why)) = ip.and_then(|ip| address::refused(ip).map(|why| (ip, why))) {
            return Err(UrlRefused(format!("the webhook URL names {ip}, {why}")));
        }
        Ok(false)
    }

    /// Whether a URL may be registered: the static checks, and a name must
    /// resolve to public addresses only (checked again at every delivery).
    pub async fn admit(&self, url: &WebhookUrl) -> Result<(), UrlRefused> {
        if self.check_static(url)? {
            return Ok(());
        }
        if let Some(url::Host::Domain(name)) = url.url().host() {
            public_addresses(name).await?;
        }
        Ok(())
    }

    /// Sends the delivery to the webhook, signed with every secret that
    /// signs at `now`.
    pub async fn send(&self, hook: &Webhook, d: &Delivery, now: i64) -> Sent {
        let started = Instant::now();
        let fail = |status: Option<u16>, error: String| Sent {
            attempt: Attempt {
                at: now,
                status,
                latency_ms: started.elapsed().as_millis() as u64,
                error: Some(error),
            },
            ok: false,
        };
        let allowed = match self.check_static(&hook.url) {
            Ok(a) => a,
            Err(e) => return fail(None, e.0),
        };
        let signature = match sign(hook, d, now) {
            Ok(s) => s,
            Err(e) => return fail(None, e),
        };
        let request = hyper::Request::post(hook.url.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "account-connect-webhooks/1")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &d.message_id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, now.to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(Full::new(Bytes::from(d.body.clone())));
        let request = match request {
            Ok(r) => r,
            Err(e) => return fail(None, format!("the webhook URL is not a request target: {e}")),
        };
        let exchange = async {
            if allowed {
                self.clients().open.request(request).await
            } else {
                self.clients().guarded.request(request).await
            }
        };
        // The status is all that is read: the body is dropped unread.
        match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange).await {
            Ok(Ok(r)) if r.status().is_success() => Sent {
                attempt: Attempt {
                    at: now,
                    status: Some(r.status().as_u16()),
                    latency_ms: started.elapsed().as_millis() as u64,
                    error: None,
                },
                ok: true,
            },
            Ok(Ok(r)) => fail(
                Some(r.status().as_u16()),
                format!("the endpoint answered {}", r.status()),
            ),
            Ok(Err(e)) => fail(None, format!("cannot reach the endpoint: {}", error_chain(&e))),
            Err(_) => fail(
                None,
                format!("the endpoint did not answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
            ),
        }
    }
}

/// The error and its causes, joined: hyper's top error says only "client error".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// `v1,<sig>` for each secret that signs at `now`, space-separated (the
/// spec's form for a rotation).
pub fn sign(hook: &Webhook, d: &Delivery, now: i64) -> Result<String, String> {
    let mut out = Vec::new();
    for secret in hook.signing_secrets(now) {
        let signer = standardwebhooks::Webhook::new(secret.expose()).map_err(|e| format!("signing secret: {e}"))?;
        out.push(
            signer
                .sign(&d.message_id, now, d.body.as_bytes())
                .map_err(|e| format!("signing: {e}"))?,
        );
    }
    Ok(out.join(" "))
}
