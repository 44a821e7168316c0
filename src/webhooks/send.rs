//! Sending one delivery: the Standard Webhooks headers and signatures (the
//! `standardwebhooks` crate), over a client that reaches public addresses
//! only (checked after DNS resolution, on the address it then connects
//! to), follows no redirect, reads no response body and gives up after
//! `ATTEMPT_TIMEOUT`. Hosts the configuration allows skip the address rule
//! and may use http (tests, local runs).

use super::address;
use crate::domain::{Attempt, AttemptResult, Delivery, Webhook, WebhookUrl};
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
            // Wrapped whole, so the attempt's error can say which.
            let host = name.as_str();
            let addrs = resolve(host)
                .await
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e))?;
            only_public(host, &addrs).map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?;
            Ok(addrs.into_iter())
        })
    }
}

/// The name's addresses (at least one).
async fn resolve(host: &str) -> Result<Vec<SocketAddr>, UrlRefused> {
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0)))
        .await
        .map_err(|_| UrlRefused(format!("{host} did not resolve within {} s", RESOLVE_TIMEOUT.as_secs())))?
        .map_err(|_| UrlRefused(format!("{host} does not resolve")))?;
    let addrs: Vec<SocketAddr> = found.collect();
    if addrs.is_empty() {
        return Err(UrlRefused(format!("{host} has no addresses")));
    }
    Ok(addrs)
}

/// All of them must be public (not any: a name that also points inside is
/// refused outright). A refusal names the host and the kind of address,
/// never the address: where an inside name leads is no partner's business.
fn only_public(host: &str, addrs: &[SocketAddr]) -> Result<(), UrlRefused> {
    match addrs.iter().find_map(|a| address::refused(a.ip())) {
        Some(why) => Err(UrlRefused(format!("{host} resolves to {why}"))),
        None => Ok(()),
    }
}

/// The outcome of one send.
pub struct Sent {
    pub attempt: Attempt,
    pub result: AttemptResult,
    /// When a 429 or 503 asked to be retried (`Retry-After`), uncapped.
    pub retry_after: Option<i64>,
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
                crate::sdk::tls_builder()
                    .https_only()
                    .enable_http1()
                    .wrap_connector(tcp(PublicResolver)),
            ),
            open: Client::builder(TokioExecutor::new()).build(
                crate::sdk::tls_builder()
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
            only_public(name, &resolve(name).await?)?;
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
            result: AttemptResult::Failed,
            retry_after: None,
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
        // The status and the Retry-After header are all that is read: the
        // body is dropped unread.
        let answer = match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return fail(None, unreachable_reason(&e)),
            Err(_) => {
                return fail(
                    None,
                    format!(
                        "timed out: the endpoint did not answer within {} s",
                        ATTEMPT_TIMEOUT.as_secs()
                    ),
                )
            }
        };
        let status = answer.status();
        if status.is_success() {
            return Sent {
                attempt: Attempt {
                    at: now,
                    status: Some(status.as_u16()),
                    latency_ms: started.elapsed().as_millis() as u64,
                    error: None,
                },
                result: AttemptResult::Succeeded,
                retry_after: None,
            };
        }
        let mut sent = fail(Some(status.as_u16()), format!("the endpoint answered {status}"));
        if status == hyper::StatusCode::GONE {
            sent.result = AttemptResult::Gone;
        } else if matches!(status.as_u16(), 429 | 503) {
            sent.retry_after = answer
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, now));
            if let (Some(at), Some(error)) = (sent.retry_after, sent.attempt.error.as_mut()) {
                error.push_str(&format!(" and asked for a retry after {} s", (at - now).max(0)));
            }
        }
        sent
    }
}

/// A `Retry-After` value as a time: delay seconds, or an HTTP date in its
/// preferred form (`Sun, 06 Nov 1994 08:49:37 GMT`); anything else is
/// ignored, and the schedule decides alone.
fn retry_after(value: &str, now: i64) -> Option<i64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u32>() {
        return Some(now + i64::from(secs));
    }
    let imf_fixdate = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, &imf_fixdate)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Why a request got no answer, in a short phrase that stays the same from
/// one system to the next (the operating system's text names addresses and
/// changes with the platform): a refusal of the address rule names the
/// host; otherwise refused, timed out, reset, TLS, or unreachable.
fn unreachable_reason(e: &(dyn std::error::Error + 'static)) -> String {
    use std::io::ErrorKind as K;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(refused) = io.get_ref().and_then(|i| i.downcast_ref::<UrlRefused>()) {
                return match io.kind() {
                    K::PermissionDenied => format!("refused: {refused}"),
                    _ => refused.to_string(),
                };
            }
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return format!("the TLS handshake with the endpoint failed ({tls})");
            }
            match io.kind() {
                K::ConnectionRefused => return "the endpoint refused the connection".into(),
                K::TimedOut => {
                    return format!(
                        "timed out: no connection to the endpoint within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )
                }
                K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
                    return "the endpoint closed the connection".into()
                }
                K::HostUnreachable | K::NetworkUnreachable => return "the endpoint's network is unreachable".into(),
                _ => {}
            }
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return "the endpoint closed the connection before answering".into();
            }
            if h.is_parse() {
                return "the endpoint's answer is not HTTP/1.1".into();
            }
        }
        cause = c.source();
    }
    "the endpoint cannot be reached".into()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after("120", 1000), Some(1120));
        assert_eq!(retry_after(" 0 ", 1000), Some(1000));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example).
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 0), Some(784_111_777));
        for ignored in ["-5", "1.5", "soon", "", "Sunday, 06-Nov-94 08:49:37 GMT", "99999999999"] {
            assert_eq!(retry_after(ignored, 0), None, "{ignored:?}");
        }
    }

    /// An error the way the client reports it: its own error on top of
    /// the connector's, on top of the socket's or the resolver's.
    #[derive(Debug)]
    struct Layer(&'static str, Box<dyn std::error::Error + Send + Sync>);
    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.1)
        }
    }
    fn wrapped(io: Error) -> Layer {
        Layer(
            "client error (Connect)",
            Box::new(Layer("tcp connect error", Box::new(io))),
        )
    }

    #[test]
    fn an_unreachable_endpoint_is_named_in_a_stable_phrase_never_the_systems() {
        let os = |kind| Error::new(kind, "Connection refused (os error 111) to 10.0.0.7:443");
        for (error, want) in [
            (os(ErrorKind::ConnectionRefused), "the endpoint refused the connection"),
            (
                os(ErrorKind::TimedOut),
                "timed out: no connection to the endpoint within 5 s",
            ),
            (os(ErrorKind::ConnectionReset), "the endpoint closed the connection"),
            (os(ErrorKind::HostUnreachable), "the endpoint's network is unreachable"),
            (os(ErrorKind::Other), "the endpoint cannot be reached"),
            (
                Error::new(
                    ErrorKind::PermissionDenied,
                    UrlRefused("runsc resolves to a loopback address".into()),
                ),
                "refused: runsc resolves to a loopback address",
            ),
            (
                Error::new(ErrorKind::NotFound, UrlRefused("runsc does not resolve".into())),
                "runsc does not resolve",
            ),
            (
                Error::new(ErrorKind::InvalidData, rustls::Error::General("bad".into())),
                "the TLS handshake with the endpoint failed (unexpected error: bad)",
            ),
        ] {
            let said = unreachable_reason(&wrapped(error));
            assert_eq!(said, want);
            assert!(!said.contains("os error") && !said.contains("10.0.0.7"), "{said}");
        }
    }

    #[tokio::test]
    async fn a_name_is_refused_by_the_kind_of_address_never_the_address() {
        let sender = Sender::new(Vec::new());
        let url: WebhookUrl = "https://localhost/hook".parse().unwrap();
        let refused = sender.admit(&url).await.unwrap_err().0;
        assert_eq!(refused, "localhost resolves to a loopback address");
        let url: WebhookUrl = "https://[2002:7f00:1::1]/hook".parse().unwrap();
        let refused = sender.admit(&url).await.unwrap_err().0;
        assert!(refused.contains("6to4"), "{refused}");
    }
}
