//! The baseline for scripts/bench: the least an axum server on the crate's
//! axum and tokio can do to answer `POST /v1/policies` and `GET /health`.
//! Fixed bytes, no middleware, no logging, no parsing.
//!
//!   cargo run --release --example bare_axum -- BODY_FILE [ADDR]
//!
//! BODY_FILE holds the exact body account-connect answers for
//! `{"partition":"aws","permissions":{"mode":"default"}}`; ADDR defaults to
//! 127.0.0.1:3001. Prints `listening on http://ADDR` as `serve` does.

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

/// What account-connect's /health answers.
const HEALTH: &[u8] = concat!(r#"{"status":"ok","version":""#, env!("CARGO_PKG_VERSION"), r#""}"#).as_bytes();

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: bare_axum BODY_FILE [ADDR]");
        std::process::exit(2);
    };
    let addr = args.get(1).map(String::as_str).unwrap_or("127.0.0.1:3001");
    let body = Bytes::from(std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("cannot read {file}: {e}");
        std::process::exit(2);
    }));

    let app = Router::new()
        .route(
            "/v1/policies",
            // Takes the body as ours does, so keep-alive behaves the same.
            post(move |_req: Bytes| {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
            }),
        )
        .route(
            "/health",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], HEALTH).into_response() }),
        );

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| {
        eprintln!("cannot listen on {addr}: {e}");
        std::process::exit(2);
    });
    let local = listener.local_addr().expect("bound");
    println!("bare_axum listening on http://{local}");
    axum::serve(listener, app).await.expect("serve");
}
