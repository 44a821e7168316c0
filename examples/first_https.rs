//! One HTTPS GET from a fresh process, on the client stack the service uses
//! (hyper-util's client, hyper-rustls, rustls on aws-lc, the system's roots
//! as `automatic::responder` loads them), then exit. scripts/bench-tls-start
//! times whole runs of it against a local TLS server, built with and without
//! `AWS_LC_SYS_NO_JITTER_ENTROPY`:
//!
//!   SSL_CERT_FILE=ca.pem cargo run --release --example first_https -- https://localhost:PORT/
//!
//! Prints the status and the time from `main` to the answer's head.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Instant;

fn main() -> std::process::ExitCode {
    let start = Instant::now();
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: first_https https://HOST:PORT/");
        return std::process::ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .expect("CA certificates (SSL_CERT_FILE)")
            .https_only()
            .enable_http1()
            .build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        match client.get(url.parse().expect("a URL")).await {
            Ok(answer) => {
                println!("{} in {:.2} ms", answer.status(), start.elapsed().as_secs_f64() * 1e3);
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("first_https: {e:?}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
