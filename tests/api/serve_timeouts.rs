//! The local server's timeouts, on raw TCP: a request whose headers never
//! end, a connection kept alive with nothing sent, and a body that stops
//! half way are each closed within the limit (short limits here; `serve`
//! uses the defaults).

use crate::common;

use account_connect::api::serve::{serve, Timeouts};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: Timeouts = Timeouts {
    header: Duration::from_millis(400),
    body: Duration::from_millis(400),
};

/// The server with `LIMITS`, on a free port; its address.
async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let services = account_connect::app::build(common::test_config()).unwrap();
    let router = account_connect::api::router(services);
    tokio::spawn(serve(listener, router, LIMITS, std::future::pending()));
    addr
}

/// Everything the server sends until it closes the connection, and when
/// it closed; panics if it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within
            .checked_sub(start.elapsed())
            .unwrap_or_else(|| panic!("still open after {within:?}; got {:?}", String::from_utf8_lossy(&got)));
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), start.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after {within:?}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

#[tokio::test]
async fn unfinished_headers_are_closed_within_the_header_timeout() {
    let addr = start().await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (got, after) = read_until_closed(&mut stream, LIMITS.header * 2).await;
    assert!(after >= LIMITS.header / 2, "closed after {after:?}, before the limit");
    // hyper answers 408 or closes without a word; never a served request.
    assert!(!got.contains("200 OK"), "{got}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_within_the_header_timeout() {
    let addr = start().await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_until_closed(&mut stream, LIMITS.header * 2).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn a_body_that_stops_half_way_gets_a_json_400_within_the_body_timeout() {
    let addr = start().await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let token = common::token("org-slow", None);
    let head = format!(
        "POST /v1/connections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"accountId\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (got, after) = read_until_closed(&mut stream, LIMITS.body * 2).await;
    assert!(after >= LIMITS.body / 2, "closed after {after:?}, before the limit");
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert!(got.contains("application/json"), "{got}");
    let body = got.split("\r\n\r\n").nth(1).unwrap_or_default();
    common::assert_no_debug_text("body timeout", body);
}
