//! A partner's webhook endpoint on 127.0.0.1: records every request it gets
//! (headers and body) and answers as told.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
pub enum Behaviour {
    /// 204 to everything.
    Accept,
    /// 500 to the first `n` requests, then 204.
    FailFirst(usize),
    /// Never answers (holds the request a minute).
    Hang,
    /// `status`, with `Retry-After` when given, to the first `n` requests,
    /// then 204.
    AnswerFirst {
        n: usize,
        status: u16,
        retry_after: Option<&'static str>,
    },
    /// 503 while down (it starts down; `Receiver::set_down`), then 204.
    Outage,
}

#[derive(Debug, Clone)]
pub struct Got {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
    pub fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`
    pub url: String,
    /// `127.0.0.1:<port>`, as ACCOUNT_CONNECT_WEBHOOK_ALLOW_HOSTS names it.
    pub authority: String,
    pub port: u16,
    got: Arc<Mutex<Vec<Got>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let seen = got.clone();
        let down = Arc::new(AtomicBool::new(matches!(behaviour, Behaviour::Outage)));
        let is_down = down.clone();
        let handler = move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            let is_down = is_down.clone();
            async move {
                let n = {
                    let mut list = seen.lock().unwrap();
                    list.push(Got {
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                            .collect(),
                        body,
                    });
                    list.len()
                };
                use axum::http::StatusCode;
                use axum::response::IntoResponse;
                match behaviour {
                    Behaviour::FailFirst(k) if n <= k => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    Behaviour::Outage if is_down.load(Ordering::SeqCst) => {
                        StatusCode::SERVICE_UNAVAILABLE.into_response()
                    }
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        StatusCode::NO_CONTENT.into_response()
                    }
                    Behaviour::AnswerFirst {
                        n: k,
                        status,
                        retry_after,
                    } if n <= k => {
                        let status = StatusCode::from_u16(status).unwrap();
                        match retry_after {
                            Some(v) => (status, [("retry-after", v)]).into_response(),
                            None => status.into_response(),
                        }
                    }
                    _ => StatusCode::NO_CONTENT.into_response(),
                }
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            authority: format!("127.0.0.1:{port}"),
            port,
            got,
            down,
        }
    }

    /// An `Outage` receiver's state: down answers 503.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// What it got once it has `n` requests, or after `wait`.
    pub async fn wait_for(&self, n: usize, wait: Duration) -> Vec<Got> {
        let end = Instant::now() + wait;
        while self.got().len() < n && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.got()
    }
}

/// Verifies deliveries with the `standardwebhooks` package from PyPI: per
/// delivery, true or the error's text.
pub fn verify_independently(secret: &str, got: &[Got]) -> Vec<serde_json::Value> {
    let deliveries: Vec<serde_json::Value> = got
        .iter()
        .map(|g| serde_json::json!({"body": g.body, "headers": g.headers}))
        .collect();
    let input = serde_json::json!({"secret": secret, "deliveries": deliveries}).to_string();
    let (ok, out) = super::run_python("tests/tools/verify_webhook.py", &[], &input);
    assert!(ok, "verify_webhook.py: {out}");
    serde_json::from_str(&out).expect("a JSON list")
}
