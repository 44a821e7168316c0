//! The local server (`serve`): the Router on hyper's HTTP/1 connections
//! with the timeouts `axum::serve` does not set, so a client that opens a
//! connection and never finishes a request does not hold it. In Lambda, API
//! Gateway holds the connections and none of this runs.

use axum::body::{Body, Bytes};
use axum::Router;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How long a client may take over each part of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the moment the server waits for a request (a new connection, or
    /// one kept alive after an answer is handed over) to the end of its
    /// headers: also the idle keep-alive limit, and how long a client may
    /// take to read an answer (`connection`'s watchdog).
    pub header: Duration,
    /// From the end of the headers to the end of the body.
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
        }
    }
}

/// The body ended at its deadline: the extractor that reads it answers 400
/// and hyper closes the connection (the body was not read to its end).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s")]
struct BodyTimedOut(u64);

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// open connections finish their request and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let body_limit = timeouts.body;
    let service = tower::ServiceBuilder::new()
        .map_request(move |req: http::Request<Incoming>| with_deadline(req, body_limit))
        .service(router);
    let (stop, stopped) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before it
                // was taken: keep serving the others.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let idle = Idle::new();
        let watched = tower::ServiceBuilder::new()
            .map_request({
                let idle = idle.clone();
                move |req| {
                    idle.busy();
                    req
                }
            })
            .map_response({
                let idle = idle.clone();
                move |res| {
                    idle.waiting();
                    res
                }
            })
            .service(service.clone());
        let stopping = stopped.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(watched));
            connection(conn, idle, timeouts.header, stopping).await;
        });
    }
    drop(stopped);
    let _ = stop.send(());
    // Every connection task holds a receiver until it ends.
    stop.closed().await;
    Ok(())
}

/// Drives one connection until it ends, or the server stops (the request
/// in progress is finished first), or it has spent `header_limit` without a
/// request in progress: waiting for a request's headers (a new connection
/// or one kept alive), or for the client to read an answer handed over.
///
/// One timer per connection, moved on when it fires, instead of hyper's
/// header timeout, which arms and cancels a timer for every request.
async fn connection<C>(conn: C, idle: Idle, header_limit: Duration, mut stopping: tokio::sync::watch::Receiver<()>)
where
    C: Future + GracefulShutdown,
{
    let mut conn = std::pin::pin!(conn);
    let watchdog = tokio::time::sleep(header_limit);
    let mut watchdog = std::pin::pin!(watchdog);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stopping.changed() => {
                conn.as_mut().shutdown();
                let _ = conn.await;
                return;
            }
            () = watchdog.as_mut() => match idle.waiting_since() {
                // Dropped: the socket closes, as hyper's timeout closes it.
                Some(since) if since.elapsed() >= header_limit => return,
                Some(since) => watchdog.as_mut().reset((since + header_limit).into()),
                // A request is being served: its body has its own limit.
                None => watchdog.as_mut().reset(tokio::time::Instant::now() + header_limit),
            },
        }
    }
}

/// hyper's graceful shutdown, for a pinned connection of any service type.
trait GracefulShutdown {
    fn shutdown(self: Pin<&mut Self>);
}

impl<I, S> GracefulShutdown for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<axum::BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<axum::BoxError>,
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// When a connection started waiting for a request (accepted, or an answer
/// handed to hyper), or that a request is being served: two atomic stores
/// a request, read only when the watchdog fires.
#[derive(Clone)]
struct Idle(Arc<IdleState>);

struct IdleState {
    opened: Instant,
    /// Microseconds after `opened`, or `BUSY`.
    since: AtomicU64,
}

const BUSY: u64 = u64::MAX;

impl Idle {
    fn new() -> Self {
        Idle(Arc::new(IdleState {
            opened: Instant::now(),
            since: AtomicU64::new(0),
        }))
    }

    fn busy(&self) {
        self.0.since.store(BUSY, Ordering::Relaxed);
    }

    fn waiting(&self) {
        let micros = self.0.opened.elapsed().as_micros().min(u128::from(BUSY - 1)) as u64;
        self.0.since.store(micros, Ordering::Relaxed);
    }

    fn waiting_since(&self) -> Option<Instant> {
        match self.0.since.load(Ordering::Relaxed) {
            BUSY => None,
            micros => Some(self.0.opened + Duration::from_micros(micros)),
        }
    }
}

/// The request with its body cut off at `limit` from now.
fn with_deadline(req: http::Request<Incoming>, limit: Duration) -> http::Request<Body> {
    req.map(|body| {
        // No clock read for a request without a body.
        if body.is_end_stream() {
            return Body::new(body);
        }
        Body::new(Deadline {
            body,
            deadline: tokio::time::Instant::now() + limit,
            limit,
            timer: None,
            timed_out: false,
        })
    })
}

/// A request body that fails with `BodyTimedOut` at its deadline. The timer
/// is made only when a frame is not there when asked for: a small body that
/// came with its headers costs none.
struct Deadline {
    body: Incoming,
    deadline: tokio::time::Instant,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: bool,
}

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.timed_out = true;
            return Poll::Ready(Some(Err(BodyTimedOut(this.limit.as_secs()).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
