//! Request id and one log line per request.

use crate::telemetry::REQUEST_ID;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::task::futures::TaskLocalFuture;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Parsed once: a `&str` key is parsed again on every lookup.
static REQUEST_ID_NAME: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// API Gateway's request id in Lambda, the caller's `x-request-id` when it
/// is sane, else a fresh one; as a header value, built once and shared.
fn request_id(req: &Request) -> HeaderValue {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
        req.extensions().get::<lambda_http::request::RequestContext>()
    {
        if let Some(id) = ctx.request_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
            return id;
        }
    }
    if let Some(id) = req.headers().get(&REQUEST_ID_NAME) {
        let b = id.as_bytes();
        if (1..=128).contains(&b.len()) && b.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
            return id.clone();
        }
    }
    fresh_request_id()
}

/// A random per-process prefix and a counter: unique, and no system call
/// or allocation of random bytes on every request.
fn fresh_request_id() -> HeaderValue {
    static PREFIX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| crate::ids::random_token(6));
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!(
        "{}-{:x}",
        *PREFIX,
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    HeaderValue::from_maybe_shared(Bytes::from(id)).expect("a token and hex digits are a header value")
}

/// The request's id, for handlers that echo it (Spot's envelope does).
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ASCII ids are kept (above).
        self.0.to_str().unwrap_or_default()
    }
}

/// The request id (on the answer and on each line logged while the request
/// is served) and the log line of a failed request, as a tower layer:
/// `axum::middleware::from_fn` boxes the inner service on every request.
#[derive(Clone, Copy)]
pub struct RequestContextLayer;

impl<S> tower::Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;
    fn layer(&self, inner: S) -> RequestContext<S> {
        RequestContext(inner)
    }
}

#[derive(Clone)]
pub struct RequestContext<S>(S);

impl<S, B> tower::Service<Request> for RequestContext<S>
where
    S: tower::Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Served<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let id = RequestId(request_id(&req));
        // Clones of shared bytes, no copies: needed only if it fails.
        let (method, uri) = (req.method().clone(), req.uri().clone());
        req.extensions_mut().insert(id.clone());
        // Lines logged while the request is served carry its id.
        let inner = REQUEST_ID.sync_scope(id.0.clone(), || self.0.call(req));
        Served {
            inner: REQUEST_ID.scope(id.0.clone(), inner),
            started,
            id: Some(id.0),
            method,
            uri,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer with the request id added and the log
    /// line written; a named future rather than a boxed one, so no
    /// allocation a request.
    pub struct Served<F> {
        #[pin]
        inner: TaskLocalFuture<HeaderValue, F>,
        started: Instant,
        id: Option<HeaderValue>,
        method: Method,
        uri: Uri,
    }
}

impl<F, B, E> Future for Served<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut res = std::task::ready!(this.inner.as_mut().poll(cx))?;
        let id = this.id.take().expect("a Served is not polled after it is ready");
        let (status, micros) = (res.status().as_u16(), this.started.elapsed().as_micros() as u64);
        // Successes are API Gateway's access log's job in AWS; a line
        // each here costs a fifth of the local server's throughput.
        if status >= 400 || tracing::enabled!(tracing::Level::DEBUG) {
            REQUEST_ID.sync_scope(id.clone(), || {
                if status < 400 {
                    tracing::debug!(status, micros, method = %this.method, path = %this.uri.path(), "served");
                } else {
                    tracing::info!(status, micros, method = %this.method, path = %this.uri.path(), "served");
                }
            });
        }
        res.headers_mut().insert(REQUEST_ID_NAME.clone(), id);
        Poll::Ready(Ok(res))
    }
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("handler panicked");
    let err = super::ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "something went wrong on our side; try again, and tell us the x-request-id if it persists",
    );
    err.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tower::{Layer as _, ServiceExt as _};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// The request id each logged event saw, if any.
    struct Seen(Arc<Mutex<Vec<Option<String>>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let id = REQUEST_ID
                .try_with(|id| id.to_str().unwrap_or_default().to_owned())
                .ok();
            self.0.lock().unwrap().push(id);
        }
    }

    #[test]
    fn lines_logged_while_a_request_is_served_carry_the_id_its_answer_gives() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Seen(seen.clone()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before");
            let service = RequestContextLayer.layer(tower::service_fn(|_: Request| async {
                // A later poll than the first: the id is the future's, not the call's.
                tokio::task::yield_now().await;
                tracing::warn!("from the handler");
                Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
            }));
            let answer = runtime.block_on(service.oneshot(Request::new(Body::empty()))).unwrap();
            tracing::info!("after");
            answer
        });
        let id = answer.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
        let seen = seen.lock().unwrap().clone();
        // Before, the handler's line, the "served" line (debug is on here), after.
        assert_eq!(seen, vec![None, Some(id.clone()), Some(id), None]);
    }
}
