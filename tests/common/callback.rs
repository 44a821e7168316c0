//! Helpers for the automatic flow's tests: a stand-in for CloudFormation's
//! pre-signed ResponseURL, stacks in moto, and custom-resource requests.

use super::TestApp;
use account_connect::callback::{self, Responder};
use account_connect::config::Config;
use account_connect::domain::Partition;
use account_connect::services::Services;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const TOPIC: &str = "arn:aws:sns:us-east-1:922761411349:account-connect-callback";
pub const KEY: &[u8] = b"callback-key-callback-key-callback-key!!";
/// moto's account: stacks and roles made there are in it.
pub const ACCOUNT: &str = "123456789012";
pub const STACK_A: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/spotinst-iam-stack-con-0123/3f1c6a20-c3a4-11f0-9d2e-0affd41e6b35";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub body: Vec<u8>,
}

impl Hit {
    pub fn json(&self) -> Value {
        super::assert_no_debug_text("a CloudFormation answer", &String::from_utf8_lossy(&self.body));
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Records every request on any path: `/response` answers 200, `/redirect`
/// a 307 to `/response`, `/broken` a 500.
pub struct Receiver {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let target = format!("{base}/response");
        let app = axum::Router::new()
            .fallback(
                move |State(hits): State<Arc<Mutex<Vec<Hit>>>>, uri: axum::http::Uri, body: axum::body::Bytes| {
                    let target = target.clone();
                    async move {
                        let path = uri.path().to_owned();
                        hits.lock().unwrap().push(Hit {
                            path: path.clone(),
                            body: body.to_vec(),
                        });
                        match path.as_str() {
                            "/redirect" => {
                                (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", target)], "").into_response()
                            }
                            "/broken" => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                            _ => "".into_response(),
                        }
                    }
                },
            )
            .with_state(hits.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, hits }
    }

    pub fn url(&self) -> String {
        format!("{}/response", self.base)
    }

    /// Takes the requests received so far.
    pub fn take(&self) -> Vec<Hit> {
        std::mem::take(&mut *self.hits.lock().unwrap())
    }

    /// The one answer received since the last call; every answer fits
    /// CloudFormation's 4,096 bytes.
    pub fn answer(&self) -> Value {
        let hits = self.take();
        assert_eq!(hits.len(), 1, "expected one answer, got {hits:?}");
        assert!(hits[0].body.len() <= 4096, "{} bytes", hits[0].body.len());
        hits[0].json()
    }
}

/// S3 on moto, path-style as the service's.
pub async fn s3() -> super::s3::S3 {
    super::moto_endpoint();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    super::s3::S3::new(&conf)
}

/// A new template bucket on moto; its name.
pub async fn bucket() -> String {
    let name = format!("templates-{}", account_connect::ids::random_token(4));
    s3().await.create_bucket(&name).await;
    name
}

/// The keys of every object in the bucket.
pub async fn objects(bucket: &str) -> Vec<String> {
    s3().await.keys(bucket).await
}

/// One SNS message through the callback entry point, in one of `slots`
/// (the function's reserved concurrency).
pub async fn invoke_in_slot(state: &Services, slots: &tokio::sync::Semaphore, message: String) {
    let _slot = slots.acquire().await.unwrap();
    callback::handle_message(state, &Responder::new(&state.config), &message)
        .await
        .expect("not retried");
}

/// The test config, answering the receiver on 127.0.0.1.
pub fn config(bucket: Option<String>) -> Config {
    let mut c = super::test_config();
    c.template_bucket = bucket;
    c.topics.insert(Partition::Aws, TOPIC.into());
    c.callback_key = Some(KEY.to_vec().into());
    c.callback_propagation_secs = 2;
    c.callback_response_hosts = Some(vec!["127.0.0.1".into()]);
    c
}

/// An automatic connection for moto's account.
pub async fn create(app: &TestApp, token: &str, account: &str, permissions: Value) -> Value {
    let body = json!({"accountId": account, "partition": "aws", "permissions": permissions,
        "method": "automatic", "awsAccountId": ACCOUNT});
    let (status, c) = app.create_connection(token, &body).await;
    assert_eq!(status, 201);
    c
}

pub async fn template(app: &TestApp, token: &str, id: &str) -> Value {
    app.template(token, id).await.1
}

/// The CallbackToken a template carries.
pub fn token_of(template: &Value) -> String {
    template["Resources"]["SpotConnection"]["Properties"]["CallbackToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn get(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_connection(token, id).await.1
}

pub async fn events(app: &TestApp, token: &str, id: &str) -> usize {
    app.events(token, id, "").await.1["items"].as_array().unwrap().len()
}

/// Creates the stack in moto from the template without its custom resource
/// (moto cannot run an SNS-backed one); returns (stack id, role ARN).
pub fn stack_in_moto(t: &Value, name: &str) -> (String, String) {
    let mut t = t.clone();
    t["Resources"].as_object_mut().unwrap().remove("SpotConnection");
    let path = std::env::temp_dir().join(format!("{name}.json"));
    std::fs::write(&path, t.to_string()).unwrap();
    let (ok, out) = super::run_python("tests/tools/create_stack.py", &[path.to_str().unwrap(), name], "");
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["status"], "CREATE_COMPLETE", "{v}");
    (
        v["stackId"].as_str().unwrap().to_owned(),
        v["outputs"]["RoleArn"].as_str().unwrap().to_owned(),
    )
}

/// A fixture from events/ with its placeholders filled in, as text.
pub fn fixture_text(name: &str, url: &str, conn: &str, role: &str, tok: &str) -> String {
    super::read_event(name)
        .replace("${RESPONSE_URL}", url)
        .replace("${CONNECTION_ID}", conn)
        .replace("${ROLE_ARN}", role)
        .replace("${CALLBACK_TOKEN}", tok)
}

/// The same, as an SNS event.
pub fn fixture(name: &str, url: &str, conn: &str, role: &str, tok: &str) -> aws_lambda_events::event::sns::SnsEvent {
    serde_json::from_str(&fixture_text(name, url, conn, role, tok)).unwrap()
}

/// A custom-resource request as CloudFormation sends it.
pub struct Message<'a> {
    pub request_type: &'a str,
    pub url: &'a str,
    pub stack_id: &'a str,
    pub request_id: &'a str,
    pub physical: Option<&'a str>,
    pub connection: &'a str,
    pub role: &'a str,
    pub token: &'a str,
}

impl Message<'_> {
    pub fn text(&self) -> String {
        let mut m = json!({
            "RequestType": self.request_type,
            "ServiceToken": TOPIC,
            "ResponseURL": self.url,
            "StackId": self.stack_id,
            "RequestId": self.request_id,
            "LogicalResourceId": "SpotConnection",
            "ResourceType": "Custom::SpotConnection",
            "ResourceProperties": {"ServiceToken": TOPIC, "ConnectionId": self.connection,
                "RoleArn": self.role, "CallbackToken": self.token}
        });
        if let Some(p) = self.physical {
            m["PhysicalResourceId"] = json!(p);
        }
        m.to_string()
    }
}

pub async fn deliver(state: &Services, event: aws_lambda_events::event::sns::SnsEvent) {
    callback::handle(state, &Responder::new(&state.config), event)
        .await
        .expect("answered");
}

/// One message through the callback entry point; it must not ask for a retry.
pub async fn send(state: &Services, m: &Message<'_>) {
    callback::handle_message(state, &Responder::new(&state.config), &m.text())
        .await
        .expect("not retried");
}
