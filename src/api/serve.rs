//! The local server (`serve`): the Router on hyper's HTTP/1 connections
//! with the timeouts `axum::serve` does not set, so a client that opens a
//! connection and never finishes a request does not hold it. In Lambda, API
//! Gateway holds the connections and none of this runs.

use axum::body::{Body, Bytes};
use axum::Router;
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take over each part of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the moment the server waits for a request (a new connection, or
    /// one kept alive after an answer) to the end of its headers: hyper
    /// starts this clock when it waits, so it is also the idle keep-alive
    /// limit.
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
        .map_request(move |req: http::Request<hyper::body::Incoming>| with_deadline(req, body_limit))
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
        let hyper_service = TowerToHyperService::new(service.clone());
        let mut stopping = stopped.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(timeouts.header);
            let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(stopped);
    let _ = stop.send(());
    // Every connection task holds a receiver until it ends.
    stop.closed().await;
    Ok(())
}

/// The request with its body cut off at `limit` from now.
fn with_deadline(req: http::Request<hyper::body::Incoming>, limit: Duration) -> http::Request<Body> {
    let deadline = tokio::time::Instant::now() + limit;
    req.map(|body| {
        if hyper::body::Body::is_end_stream(&body) {
            return Body::new(body);
        }
        let frames = Body::new(body).into_data_stream();
        let timed = futures::stream::unfold(Some(frames), move |frames| async move {
            let mut frames = frames?;
            match tokio::time::timeout_at(deadline, frames.next()).await {
                Ok(Some(Ok(bytes))) => Some((Ok::<Bytes, axum::BoxError>(bytes), Some(frames))),
                Ok(Some(Err(e))) => Some((Err(e.into()), None)),
                Ok(None) => None,
                Err(_) => Some((Err(BodyTimedOut(limit.as_secs()).into()), None)),
            }
        });
        Body::from_stream(timed)
    })
}
