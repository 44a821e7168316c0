//! Shared test helpers: the app on a random port, the Lambda entry point,
//! and the Python tools from the test virtualenv.
#![allow(dead_code)]

pub mod api;
pub mod callback;
pub mod organization;
pub mod receiver;
pub mod s3;
pub mod schemas;
pub mod server;

use account_connect::app::{self, router};
use account_connect::clock::Clock;
use account_connect::config::Config;
use account_connect::services::Services;
use account_connect::store::DynStore;
pub use account_connect::tenancy::AccountsClaim;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tower::{Service, ServiceExt};

/// The app on a port; its methods per route are in `api.rs`.
#[derive(Clone)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The app's clock: `app.clock.advance(secs)` instead of sleeping.
    pub clock: Clock,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET `path`, with a bearer token if given; the body as JSON.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> serde_json::Value {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().json().await.unwrap()
    }
}

/// No Rust debug output reaches a person: every API answer and every
/// CloudFormation answer of the suite passes through here (reports, error
/// messages, Reasons). `Other(": ")` in JSON text reads `Other(\": \")`.
pub fn assert_no_debug_text(what: &str, json_text: &str) {
    for needle in ["(\\\"", "Some(", "None)"] {
        assert!(
            !json_text.contains(needle),
            "{what} carries Rust debug output ({needle}): {json_text}"
        );
    }
}

pub const TEST_SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// Defaults, an in-memory SQLite store and the test JWT secret.
pub fn test_config() -> Config {
    Config {
        store_url: "sqlite::memory:".into(),
        jwt_secret: Some(TEST_SECRET.to_vec().into()),
        ..Config::default()
    }
}

/// A bearer token for `org`, limited to some Spot accounts or (None) for
/// every account, said explicitly (`"accounts": "*"`).
pub fn token(org: &str, accounts: Option<&[&str]>) -> String {
    let accounts = match accounts {
        Some(a) => AccountsClaim::only(a.iter().copied()),
        None => AccountsClaim::every(),
    };
    token_for(org, &format!("user-of-{org}"), Some(accounts))
}

/// A bearer token for a user of `org` with exactly this `accounts` claim
/// (None: no claim at all).
pub fn token_for(org: &str, sub: &str, accounts: Option<AccountsClaim>) -> String {
    let claims = account_connect::tenancy::Claims {
        sub: sub.to_owned(),
        org: org.to_owned(),
        accounts,
        exp: Some(time::OffsetDateTime::now_utc().unix_timestamp() + 3600),
        iat: None,
    };
    account_connect::tenancy::mint(TEST_SECRET, &claims)
}

/// The commercial moto's URL (scripts/test starts it). The SDK reaches it
/// through the default profile's `endpoint_url`; `AWS_ENDPOINT_URL` serves
/// where the tests run with it (a hand-started moto).
pub fn moto_endpoint() -> String {
    std::env::var("ACCOUNT_CONNECT_TEST_MOTO_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .expect("ACCOUNT_CONNECT_TEST_MOTO_URL is not set: run the tests with scripts/test, which starts moto")
}

/// A fresh DynamoDB table on moto; returns its store URL.
pub async fn dynamo_store_url() -> String {
    moto_endpoint();
    let table = format!("test-{}", account_connect::ids::random_token(6));
    account_connect::store::create_table(&table, &app::aws_configs())
        .await
        .expect("table on moto");
    format!("dynamodb://{table}")
}

/// A KMS key on moto for the DynamoDB stores' webhook secrets, made once
/// per test process (as the template makes one per deployment).
pub async fn kms_key() -> String {
    static KEY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    KEY.get_or_init(|| async {
        moto_endpoint();
        let kms = aws_sdk_kms::Client::new(app::aws_configs().own().await);
        let made = kms
            .create_key()
            .description("account-connect tests: webhook secrets")
            .send()
            .await
            .expect("a KMS key on moto");
        made.key_metadata().expect("key metadata").key_id().to_owned()
    })
    .await
    .clone()
}

/// The store a URL names, as the app opens it: a DynamoDB table's webhook
/// secrets sealed under `kms_key`, an SQLite database's under its key file.
pub async fn open_store(url: &str) -> DynStore {
    let mut config = Config {
        store_url: url.to_owned(),
        ..Config::default()
    };
    with_kms_key(&mut config).await;
    app::open_store(&config, &app::aws_configs()).expect("store opens")
}

/// `config` with `kms_key` for a DynamoDB store that names no key.
pub async fn with_kms_key(config: &mut Config) {
    if config.store_url.starts_with("dynamodb://") && config.secrets_kms_key.is_none() {
        config.secrets_kms_key = Some(kms_key().await);
    }
}

/// A fresh store of each kind: in-memory SQLite and a new DynamoDB table in
/// moto, for the suites both stores are held to.
pub async fn both_stores() -> Vec<(&'static str, DynStore)> {
    vec![
        ("sqlite", open_store("sqlite::memory:").await),
        ("dynamodb", open_store(&dynamo_store_url().await).await),
    ]
}

/// The production Router on 127.0.0.1 with an OS-chosen port.
pub async fn spawn_app(config: Config) -> TestApp {
    spawn_with_state(config).await.0
}

/// The app and its state, for tests that also drive another entry point
/// (the callback, the re-check) on the same store.
pub async fn spawn_with_state(config: Config) -> (TestApp, Services) {
    let (app, state, _) = spawn_with_store(config).await;
    (app, state)
}

/// `spawn_with_state`, and the store the test opened for it: the services
/// keep theirs privately, so a test that reads or shapes records keeps its
/// own handle.
pub async fn spawn_with_store(mut config: Config) -> (TestApp, Services, DynStore) {
    with_kms_key(&mut config).await;
    let store = app::open_store(&config, &app::aws_configs()).expect("store opens");
    let state = app::build_on(config, store.clone(), Clock::adjustable());
    (serve(state.clone()).await, state, store)
}

/// Serves a state the test built itself (its own store or clock).
pub async fn serve(state: Services) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let clock = state.connections.clock();
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        clock,
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// An API Gateway event through lambda_http's own conversion and the same
/// Router, the response as API Gateway receives it.
pub async fn invoke_lambda(config: Config, event_json: &str) -> serde_json::Value {
    let request: lambda_http::request::LambdaRequest = serde_json::from_str(event_json).expect("event parses");
    let mut adapter = lambda_http::Adapter::from(router(app::build(config).expect("store opens")));
    let event = lambda_runtime::LambdaEvent::new(request, lambda_runtime::Context::default());
    let response = adapter
        .ready()
        .await
        .unwrap()
        .call(event)
        .await
        .expect("lambda handler");
    serde_json::to_value(&response).unwrap()
}

pub fn read_event(name: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("events/{name}"))).unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

/// The test virtualenv made by scripts/test; the tools tests need live there.
pub fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var("ACCOUNT_CONNECT_TEST_VENV")
        .expect("ACCOUNT_CONNECT_TEST_VENV is not set: run the tests with scripts/test, which makes the virtualenv");
    let path = PathBuf::from(venv).join("bin").join(tool);
    assert!(path.exists(), "{} is missing: run scripts/test", path.display());
    path
}

/// Runs a Python script from the venv with `stdin`; returns (success, output).
pub fn run_python(script: &str, args: &[&str], stdin: &str) -> (bool, String) {
    run_python_with(script, args, stdin, &[])
}

/// `run_python` with these environment variables set for the script.
pub fn run_python_with(script: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(venv_bin("python"))
        .envs(env.iter().copied())
        .arg(repo_path(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Spot's public default policy, from ../shared/data.
pub fn spot_default_policy() -> serde_json::Value {
    let path = repo_path("../shared/data/spot-default-policy-aws.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Creates a managed policy from `doc` and attaches it to `role`, as a
/// customer does in the IAM console; the policy's ARN.
pub async fn attach_managed_policy(
    iam: &aws_sdk_iam::Client,
    role: &str,
    policy_name: &str,
    doc: &serde_json::Value,
) -> String {
    let p = iam
        .create_policy()
        .policy_name(policy_name)
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
    let arn = p.policy.unwrap().arn.unwrap();
    iam.attach_role_policy()
        .role_name(role)
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    arn
}

/// Creates the role `name` with `trust` as its trust policy; its ARN.
pub async fn create_role(iam: &aws_sdk_iam::Client, name: &str, trust: impl Into<String>) -> String {
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn
}

/// The role a connection asks for, as the customer creates it: a fresh name,
/// the connection's trust policy, and each of its policies attached as a
/// managed policy. The role's ARN and the policies' ARNs.
pub async fn connection_role(iam: &aws_sdk_iam::Client, c: &serde_json::Value) -> (String, Vec<String>) {
    let name = format!("Spot-Role-{}", account_connect::ids::random_token(5));
    let arn = create_role(iam, &name, c["trustPolicy"].to_string()).await;
    let mut policies = Vec::new();
    for (i, p) in c["policies"].as_array().unwrap().iter().enumerate() {
        policies.push(attach_managed_policy(iam, &name, &format!("{name}-p{i}"), &p["document"]).await);
    }
    (arn, policies)
}

/// The check `id` of a verification report.
pub fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report}"))
}

/// cfn-lint on a template file, offline, as scripts/test's lint step runs
/// it; `regions` for a template meant for other partitions.
pub fn cfn_lint(path: &std::path::Path, regions: &[&str]) {
    let mut cmd = std::process::Command::new(venv_bin("cfn-lint"));
    if !regions.is_empty() {
        cmd.arg("--regions").args(regions).arg("--");
    }
    let out = cmd
        .arg(path)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cfn-lint {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// cfn-lint on a template the service rendered (its JSON).
pub fn cfn_lint_json(t: &serde_json::Value) {
    let path = std::env::temp_dir().join(format!("tpl-{}.json", account_connect::ids::random_token(4)));
    std::fs::write(&path, serde_json::to_string_pretty(t).unwrap()).unwrap();
    cfn_lint(&path, &[]);
    let _ = std::fs::remove_file(&path);
}

/// The default version id and document of a managed policy.
pub async fn policy_document(iam: &aws_sdk_iam::Client, policy: &str) -> (String, serde_json::Value) {
    let p = iam
        .get_policy()
        .policy_arn(policy)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    let version = p.default_version_id.unwrap();
    let raw = iam
        .get_policy_version()
        .policy_arn(policy)
        .version_id(&version)
        .send()
        .await
        .unwrap()
        .policy_version
        .unwrap()
        .document
        .unwrap();
    let text = percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .unwrap()
        .to_string();
    (version, serde_json::from_str(&text).unwrap())
}

/// A new default version of `policy` made of `doc`.
pub async fn new_policy_version(iam: &aws_sdk_iam::Client, policy: &str, doc: &serde_json::Value) {
    iam.create_policy_version()
        .policy_arn(policy)
        .policy_document(doc.to_string())
        .set_as_default(true)
        .send()
        .await
        .unwrap();
}

/// `doc` without the named action `action` in any statement.
pub fn without_action(doc: &serde_json::Value, action: &str) -> serde_json::Value {
    let mut doc = doc.clone();
    let mut dropped = false;
    for s in doc["Statement"].as_array_mut().unwrap() {
        if let Some(actions) = s["Action"].as_array_mut() {
            let before = actions.len();
            actions.retain(|a| a != action);
            dropped |= actions.len() < before;
        }
    }
    assert!(dropped, "{action} is not in the policy");
    doc
}

/// A default version of `policy` without `action`; answers the old version id.
pub async fn drop_action(iam: &aws_sdk_iam::Client, policy: &str, action: &str) -> String {
    let (old, doc) = policy_document(iam, policy).await;
    new_policy_version(iam, policy, &without_action(&doc, action)).await;
    old
}

/// An action a statement of the connection's first policy lists by name,
/// with no other statement granting it by wildcard.
pub fn some_action(c: &serde_json::Value) -> String {
    use serde_json::Value;
    let doc = &c["policies"][0]["document"];
    let named: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Action"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .filter(|a| !a.contains('*') && !a.starts_with("iam:") && !a.starts_with("sts:"))
        .collect();
    named
        .iter()
        .find(|a| {
            let service = a.split(':').next().unwrap();
            !doc.to_string().contains(&format!("\"{service}:*"))
        })
        .expect("a named action")
        .to_string()
}
