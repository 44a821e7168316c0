//! The HTTP API: one axum `Router`, served by Lambda and by the local server.

mod catalog;
mod connections;
pub mod error;
mod extract;
mod middleware;
mod openapi;
mod organizations;
mod partitions;
mod policies;
mod relay;
mod routes;
pub mod serve;
mod spot;
mod web;
mod webhook_recovery;
mod webhooks;

pub use error::ApiError;
// The view events carry as their `data` (rendered by `events`, above the API).
pub use crate::views::ConnectionView;
pub use routes::{document, route_table, RouteDoc};

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::Router;
use std::sync::Arc;

/// Largest request body accepted; the biggest real one (a custom selection)
/// is a few hundred bytes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The handlers' axum state: the services, built below this layer (`app`
/// composes them).
pub type AppState = Arc<crate::services::Services>;

/// Every route, the error shape for unknown routes and methods, request ids
/// and logs, the body limit, and a JSON 500 if a handler panics.
pub fn router(services: crate::services::Services) -> Router {
    routes::router()
        .route("/", axum::routing::get(web::index))
        .route("/assets/{name}", axum::routing::get(web::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // One stack, outermost first: each `Router::layer` call would box
        // every route once more.
        .layer(
            tower::ServiceBuilder::new()
                .layer(middleware::RequestContextLayer)
                .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                    middleware::panic_response,
                ))
                .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES)),
        )
        // One pointer per request to clone, not each service's handles.
        .with_state(Arc::new(services))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        "route_not_found",
        format!(
            "there is no route {method} {}; GET /openapi.json lists them",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not accept {method}; GET /openapi.json lists the methods",
            uri.path()
        ),
    )
}
