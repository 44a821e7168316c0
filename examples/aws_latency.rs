//! Latency of the routes that talk to AWS, against moto, each beside the
//! least the same work costs done by hand with the SDK. Run by scripts/bench
//! (which starts moto and sets AWS_ENDPOINT_URL and the test credentials, as
//! scripts/test does):
//!
//!   cargo run --release --example aws_latency -- [--creates 200] [--verifications 50] [--keep-items]
//!
//! (a) `POST /v1/connections` through the real Router over HTTP with a
//!     DynamoDB store, against one bare `PutItem` of a same-sized item and
//!     one bare `TransactWriteItems` of the same four items, interleaved;
//! (b) the same create with SQLite (memory and a file);
//! (c) `POST /v1/connections/{id}/role` with a correct role made through
//!     IAM, against its dependent chain of calls done by hand; the AWS calls
//!     of each are timed through the SDK's own tracing spans and the number of
//!     sequential rounds is counted from them;
//! (d) the same verification with a DynamoDB store (its store calls are
//!     round trips too).

use account_connect::app::{self, router};
use account_connect::config::Config;
use account_connect::domain::ConnectionId;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, Put, TransactWriteItem, WriteRequest};
use aws_sdk_iam::config::Credentials;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret";
const ORG: &str = "org-bench";
const AWS_ACCOUNT: &str = "123456789012"; // moto's account
const WARM_UP: usize = 10;

type Item = std::collections::HashMap<String, AttributeValue>;

// --- AWS calls, from the SDK's per-operation spans ------------------------

/// One SDK operation (retries included): first poll to last poll.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    start: Instant,
    end: Instant,
}

static CALLS: Mutex<Vec<Call>> = Mutex::new(Vec::new());

fn take_calls() -> Vec<Call> {
    std::mem::take(&mut *CALLS.lock().expect("calls lock"))
}

/// Records the operation spans every generated SDK client opens
/// (`STS.AssumeRole`, `IAM.ListRoles` …, field `rpc.method`); nothing else
/// is enabled, so the app's own logging costs nothing here.
struct AwsCalls;

struct Timing {
    start: Instant,
    end: Instant,
}

fn is_operation(m: &Metadata<'_>) -> bool {
    m.is_span() && m.target().starts_with("aws_sdk_") && m.fields().field("rpc.method").is_some()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for AwsCalls {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if is_operation(m) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, m: &Metadata<'_>, _: Context<'_, S>) -> bool {
        is_operation(m)
    }

    fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {}

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let now = Instant::now();
        let mut ext = span.extensions_mut();
        match ext.get_mut::<Timing>() {
            Some(t) => t.end = now,
            None => ext.insert(Timing { start: now, end: now }),
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions_mut().get_mut::<Timing>() {
                t.end = Instant::now();
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        if let Some(t) = ext.get::<Timing>() {
            CALLS.lock().expect("calls lock").push(Call {
                name: span.name().to_owned(),
                start: t.start,
                end: t.end,
            });
        }
    }
}

/// Calls grouped into sequential rounds: a call is one round after the
/// latest-round call that ended before it started.
fn rounds(calls: &[Call]) -> Vec<Vec<String>> {
    let mut calls = calls.to_vec();
    calls.sort_by_key(|c| c.start);
    let mut depth = vec![0usize; calls.len()];
    for i in 0..calls.len() {
        depth[i] = 1
            + (0..i)
                .filter(|&j| calls[j].end <= calls[i].start)
                .map(|j| depth[j])
                .max()
                .unwrap_or(0);
    }
    let mut out: Vec<Vec<String>> = vec![Vec::new(); depth.iter().copied().max().unwrap_or(0)];
    for (c, d) in calls.iter().zip(&depth) {
        out[d - 1].push(c.name.split('.').nth(1).unwrap_or(&c.name).to_owned());
    }
    for r in &mut out {
        r.sort();
    }
    out
}

fn describe(rounds: &[Vec<String>]) -> String {
    rounds
        .iter()
        .map(|r| {
            let mut names: Vec<String> = Vec::new();
            for n in r {
                let count = r.iter().filter(|m| *m == n).count();
                let label = if count > 1 { format!("{n}×{count}") } else { n.clone() };
                if !names.contains(&label) {
                    names.push(label);
                }
            }
            names.join(" + ")
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

// --- figures ----------------------------------------------------------------

struct Series {
    name: String,
    ms: Vec<f64>,
}

impl Series {
    fn new(name: impl Into<String>) -> Self {
        Series {
            name: name.into(),
            ms: Vec::new(),
        }
    }
    fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1e3);
    }
    fn pct(&self, p: usize) -> f64 {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[(v.len() * p / 100).min(v.len() - 1)]
    }
    fn median(&self) -> f64 {
        self.pct(50)
    }
}

fn row(s: &Series) {
    println!(
        "  {:<46} {:>5} {:>10.2} {:>10.2}",
        s.name,
        s.ms.len(),
        s.median(),
        s.pct(95)
    );
}

fn ratio(label: &str, ours: &Series, base: &Series, target: f64) {
    let r = ours.median() / base.median();
    println!(
        "  {:<46} {:>5} {:>10.2}x  (target <= {target}x: {})",
        label,
        "",
        r,
        if r <= target { "met" } else { "MISSED" }
    );
}

// --- the app ----------------------------------------------------------------

struct App {
    base: String,
    http: reqwest::Client,
    /// The store the services were built on, kept to read the sizes of what they wrote.
    store: account_connect::store::DynStore,
    token: String,
}

async fn spawn_app(store_url: &str) -> App {
    let config = Config {
        store_url: store_url.to_owned(),
        jwt_secret: Some(SECRET.to_vec().into()),
        ..Config::default()
    };
    let store = app::open_store(&config, &app::aws_configs()).expect("store opens");
    let state = app::build_with_store(config, store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let claims = account_connect::tenancy::Claims {
        sub: "bench".into(),
        org: ORG.into(),
        accounts: Some(account_connect::tenancy::AccountsClaim::every()),
        exp: Some(time::OffsetDateTime::now_utc().unix_timestamp() + 3 * 3600),
        iat: None,
    };
    App {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        store,
        token: account_connect::tenancy::mint(SECRET, &claims),
    }
}

impl App {
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("the app answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, account: &str) -> Value {
        let body = json!({"accountId": account, "partition": "aws",
            "permissions": {"mode": "default"}, "awsAccountId": AWS_ACCOUNT});
        let (status, c) = self.post("/v1/connections", &body).await;
        assert_eq!(status, 201, "create answered {c}");
        c
    }
}

/// Distinct Spot account ids across runs against one long-lived moto.
fn account(run: &str, i: usize) -> String {
    format!("act-{run}n{i}")
}

/// Times `n` creates (after a warm-up) on a fresh app over `store_url`.
async fn creates(store_url: &str, label: &str, run: &str, n: usize) -> Series {
    let app = spawn_app(store_url).await;
    let mut series = Series::new(label);
    for i in 0..WARM_UP + n {
        let t = Instant::now();
        app.create(&account(run, i)).await;
        if i >= WARM_UP {
            series.push(t.elapsed());
        }
    }
    series
}

/// The DynamoDB figures of (a), all on one table.
struct DynamoCreates {
    create: Series,
    create_calls: Series,
    put: Series,
    transact: Series,
    connection_bytes: usize,
}

fn put_of(table: &str, item: Item, condition: &str, values: &[(&str, AttributeValue)]) -> TransactWriteItem {
    let mut b = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    for (k, v) in values {
        b = match k.strip_prefix('#') {
            Some(name) => b.expression_attribute_names(*k, name),
            None => b.expression_attribute_values(*k, v.clone()),
        };
    }
    TransactWriteItem::builder().put(b.build().expect("put")).build()
}

/// Deletes every item of the table (small here), untimed.
async fn empty_table(ddb: &aws_sdk_dynamodb::Client, table: &str) {
    let items = ddb
        .scan()
        .table_name(table)
        .send()
        .await
        .expect("Scan")
        .items
        .unwrap_or_default();
    for chunk in items.chunks(25) {
        let requests = chunk
            .iter()
            .map(|i| {
                let key = DeleteRequest::builder()
                    .key("pk", i["pk"].clone())
                    .key("sk", i["sk"].clone())
                    .build()
                    .expect("key");
                WriteRequest::builder().delete_request(key).build()
            })
            .collect();
        ddb.batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .expect("BatchWriteItem");
    }
}

/// (a): each round, on the same table, one create through the app over
/// HTTP, one bare PutItem of an item shaped and sized like the stored
/// connection, and one bare TransactWriteItems of the four items a create
/// writes, with their conditions. Unless `keep` is set the table is emptied
/// after each round (untimed): moto deep-copies the whole table for every
/// item of a transaction, so a growing table would measure moto, not us.
async fn dynamo_creates(table: &str, run: &str, n: usize, keep: bool) -> DynamoCreates {
    let app = spawn_app(&format!("dynamodb://{table}")).await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let mut f = DynamoCreates {
        create: Series::new("POST /v1/connections, DynamoDB store"),
        create_calls: Series::new("  of which the store's DynamoDB calls"),
        put: Series::new("bare PutItem, same-sized connection item"),
        transact: Series::new("bare TransactWriteItems, the create's 4 items"),
        connection_bytes: 0,
    };
    // Sizes of what a create stores, from a first one.
    let first = app.create(&account(run, 999_999)).await;
    let id: ConnectionId = first["id"].as_str().expect("id").parse().expect("connection id");
    let store = &app.store;
    let conn = store.get(ORG, &id).await.expect("store").expect("stored");
    let conn_bytes = serde_json::to_string(&conn).expect("serializes").len();
    let event_bytes = serde_json::to_string(&store.events(&id, None, 1).await.expect("events").items[0])
        .expect("serializes")
        .len();
    f.connection_bytes = conn_bytes;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let s = |v: String| AttributeValue::S(v);
    for i in 0..WARM_UP + n {
        take_calls();
        let t = Instant::now();
        app.create(&account(run, i)).await;
        let create = t.elapsed();
        let calls: Duration = take_calls().iter().map(|c| c.end - c.start).sum();

        let pk = format!("BENCH#{run}#{i:06}");
        let conn_item = |pk: &str| -> Item {
            Item::from([
                ("pk".into(), s(pk.to_owned())),
                ("sk".into(), s("CONN".into())),
                ("gsi1pk".into(), s(format!("ORG#{ORG}"))),
                ("gsi1sk".into(), s(format!("ACCT#act-x{i}#{now:012}#{pk}"))),
                ("org".into(), s(ORG.into())),
                ("version".into(), AttributeValue::N("1".into())),
                ("ttl".into(), AttributeValue::N((now + 86_400).to_string())),
                ("data".into(), s("x".repeat(conn_bytes))),
            ])
        };
        let t = Instant::now();
        ddb.put_item()
            .table_name(table)
            .set_item(Some(conn_item(&pk)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .expect("PutItem");
        let put = t.elapsed();

        let tx_pk = format!("CONN#{run}x{i:06}");
        let items = vec![
            put_of(table, conn_item(&tx_pk), "attribute_not_exists(pk)", &[]),
            put_of(
                table,
                Item::from([
                    ("pk".into(), s(format!("EXTID#{run}x{i:06}"))),
                    ("sk".into(), s("EXTID".into())),
                    ("connection_id".into(), s(tx_pk.clone())),
                ]),
                "attribute_not_exists(pk)",
                &[],
            ),
            put_of(
                table,
                Item::from([
                    ("pk".into(), s(format!("HOLD#{ORG}#act-x{i}"))),
                    ("sk".into(), s("HOLD".into())),
                    ("connection_id".into(), s(tx_pk.clone())),
                    ("until".into(), AttributeValue::N((now + 86_400).to_string())),
                ]),
                "attribute_not_exists(pk) OR connection_id = :id OR #until <= :now",
                &[
                    (":id", s(tx_pk.clone())),
                    (":now", AttributeValue::N(now.to_string())),
                    ("#until", s(String::new())),
                ],
            ),
            put_of(
                table,
                Item::from([
                    ("pk".into(), s(tx_pk.clone())),
                    ("sk".into(), s(format!("EVENT#{i:020}"))),
                    ("data".into(), s("x".repeat(event_bytes))),
                ]),
                "attribute_not_exists(pk)",
                &[],
            ),
        ];
        let t = Instant::now();
        ddb.transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .expect("TransactWriteItems");
        let transact = t.elapsed();
        take_calls();
        if !keep {
            empty_table(&ddb, table).await;
            take_calls();
        }
        if i >= WARM_UP {
            f.create.push(create);
            f.create_calls.push(calls);
            f.put.push(put);
            f.transact.push(transact);
        }
    }
    f
}

// --- verification -----------------------------------------------------------

/// A role as a customer makes it from a connection: its trust policy and
/// the connection's managed policies, through the IAM API (as tests/api/verification.rs).
async fn make_role(iam: &aws_sdk_iam::Client, c: &Value) -> (String, Vec<String>) {
    let mut policies = Vec::new();
    let name = format!("Spot-Role-{}", account_connect::ids::random_token(5));
    let role = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(c["trustPolicy"].to_string())
        .send()
        .await
        .expect("CreateRole");
    for (i, p) in c["policies"].as_array().expect("policies").iter().enumerate() {
        let made = iam
            .create_policy()
            .policy_name(format!("{name}-p{i}"))
            .policy_document(p["document"].to_string())
            .send()
            .await
            .expect("CreatePolicy");
        let arn = made.policy.and_then(|p| p.arn).expect("policy arn");
        iam.attach_role_policy()
            .role_name(&name)
            .policy_arn(&arn)
            .send()
            .await
            .expect("AttachRolePolicy");
        policies.push(arn);
    }
    (role.role.expect("role").arn, policies)
}

/// Removes a role and its policies, so every verification lists the same
/// number of roles however many ran before.
async fn drop_role(iam: &aws_sdk_iam::Client, arn: &str, policies: &[String]) {
    let name = arn.rsplit('/').next().expect("role name");
    for p in policies {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(p)
            .send()
            .await
            .expect("DetachRolePolicy");
        iam.delete_policy().policy_arn(p).send().await.expect("DeletePolicy");
    }
    iam.delete_role().role_name(name).send().await.expect("DeleteRole");
}

async fn verify_via_app(app: &App, c: &Value, arn: &str) -> Duration {
    let path = format!("/v1/connections/{}/role", c["id"].as_str().expect("id"));
    let t = Instant::now();
    let (status, done) = app.post(&path, &json!({"roleArn": arn})).await;
    let d = t.elapsed();
    assert_eq!(status, 200, "verification answered {done}");
    assert_eq!(done["status"], "connected", "{done}");
    assert_eq!(done["health"], "healthy", "{done}");
    d
}

/// The verification's dependent chain by hand: AssumeRole (its
/// AssumedRoleUser names the account); then the trust policy and the policy
/// lists concurrently; then GetPolicy; then
/// GetPolicyVersion (each round's calls concurrent).
async fn verify_by_hand(base: &aws_config::SdkConfig, arn: &str, external_id: &str) -> Duration {
    let name = arn.rsplit('/').next().expect("role name");
    let sts = aws_sdk_sts::Client::new(base);
    let t = Instant::now();
    let out = sts
        .assume_role()
        .role_arn(arn)
        .role_session_name("spot-verify-bench")
        .external_id(external_id)
        .duration_seconds(900)
        .send()
        .await
        .expect("AssumeRole");
    let account = out.assumed_role_user.as_ref().and_then(|u| u.arn.split(':').nth(4));
    assert_eq!(account, Some(AWS_ACCOUNT));
    let c = out.credentials.expect("credentials");
    let creds = Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "assumed-role",
    );
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(base)
            .credentials_provider(creds)
            .build(),
    );
    // The trust policy: ListRoles under the role's path until it shows.
    let trust = async {
        let mut marker = None;
        loop {
            let out = iam
                .list_roles()
                .path_prefix("/")
                .set_marker(marker.take())
                .send()
                .await
                .expect("ListRoles");
            if let Some(r) = out.roles.iter().find(|r| r.role_name == name) {
                return r.assume_role_policy_document.clone();
            }
            marker = Some(out.marker.expect("ListRoles lists the role"));
        }
    };
    let (trust, attached, inline) = tokio::join!(
        trust,
        iam.list_attached_role_policies().role_name(name).send(),
        iam.list_role_policies().role_name(name).send(),
    );
    assert!(
        trust.is_some_and(|t| t.contains(external_id)),
        "the trust policy names the external ID"
    );
    assert!(inline.expect("ListRolePolicies").policy_names.is_empty());
    let arns: Vec<String> = attached
        .expect("ListAttachedRolePolicies")
        .attached_policies
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.policy_arn)
        .collect();
    let iam = &iam;
    let versions = futures::future::join_all(
        arns.iter()
            .map(|a| async move { iam.get_policy().policy_arn(a).send().await.expect("GetPolicy") }),
    )
    .await;
    let docs = futures::future::join_all(arns.iter().zip(&versions).map(|(a, v)| {
        let version = v
            .policy
            .as_ref()
            .and_then(|p| p.default_version_id.clone())
            .unwrap_or_else(|| "v1".into());
        async move {
            iam.get_policy_version()
                .policy_arn(a)
                .version_id(version)
                .send()
                .await
                .expect("GetPolicyVersion")
        }
    }))
    .await;
    let d = t.elapsed();
    assert!(docs
        .iter()
        .all(|d| d.policy_version.as_ref().is_some_and(|v| v.document.is_some())));
    d
}

struct Verifications {
    app: Series,
    hand: Series,
    app_rounds: Vec<Vec<String>>,
    hand_rounds: Vec<Vec<String>>,
    rounds_seen: Vec<usize>,
    /// The slowest run: its time and its AWS calls (name, ms from the request's start, ms taken).
    slowest: (Duration, Vec<(String, f64, f64)>),
    /// Request start to the first AWS call, and the last call's end to the answer.
    head: Series,
    tail: Series,
}

async fn verifications(store_url: &str, label: &str, run: &str, n: usize, hand: bool) -> Verifications {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let app = spawn_app(store_url).await;
    let mut v = Verifications {
        app: Series::new(label),
        hand: Series::new("  hand chain of SDK calls (same role)"),
        app_rounds: Vec::new(),
        hand_rounds: Vec::new(),
        rounds_seen: Vec::new(),
        slowest: (Duration::ZERO, Vec::new()),
        head: Series::new("  of which before the first AWS call"),
        tail: Series::new("  of which after the last AWS call"),
    };
    let warm = 3;
    for i in 0..warm + n {
        let c = app.create(&account(run, i)).await;
        let (arn, policies) = make_role(&iam, &c).await;
        take_calls();
        let t0 = Instant::now();
        let d = verify_via_app(&app, &c, &arn).await;
        let calls = take_calls();
        let app_rounds = rounds(&calls);
        let by_hand = if hand {
            let d = verify_by_hand(&conf, &arn, c["externalId"].as_str().expect("externalId")).await;
            Some((d, rounds(&take_calls())))
        } else {
            None
        };
        drop_role(&iam, &arn, &policies).await;
        if i < warm {
            continue;
        }
        v.app.push(d);
        if let (Some(first), Some(last)) = (calls.iter().map(|c| c.start).min(), calls.iter().map(|c| c.end).max()) {
            v.head.push(first.saturating_duration_since(t0));
            v.tail.push(d.saturating_sub(last.saturating_duration_since(t0)));
        }
        if d > v.slowest.0 {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let mut timed: Vec<_> = calls
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        ms(c.start.saturating_duration_since(t0)),
                        ms(c.end - c.start),
                    )
                })
                .collect();
            timed.sort_by(|a, b| a.1.total_cmp(&b.1));
            v.slowest = (d, timed);
        }
        v.rounds_seen.push(app_rounds.len());
        v.app_rounds = app_rounds;
        if let Some((d, r)) = by_hand {
            v.hand.push(d);
            v.hand_rounds = r;
        }
    }
    v
}

// --- main -------------------------------------------------------------------

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n_create = arg(&args, "--creates", 200).max(1);
    let n_verify = arg(&args, "--verifications", 50).max(1);
    let keep = args.iter().any(|a| a == "--keep-items");
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        eprintln!("AWS_ENDPOINT_URL is not set: run scripts/bench, which starts moto");
        std::process::exit(2);
    };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(AwsCalls)).expect("one subscriber");
    let run = account_connect::ids::random_token(3);
    println!("moto at {endpoint}; {n_create} creates and {n_verify} verifications per series, after a warm-up");

    // (a) create over DynamoDB against bare calls on the same table.
    let table = format!("bench-{run}");
    account_connect::store::create_table(&table, &account_connect::app::aws_configs())
        .await
        .expect("table on moto");
    let dynamo = dynamo_creates(&table, &run, n_create, keep).await;

    // (b) the same create on SQLite.
    let mem = creates("sqlite::memory:", "POST /v1/connections, SQLite memory", &run, n_create).await;
    let file = std::env::temp_dir().join(format!("account-connect-bench-{run}.db"));
    let disk = creates(
        &format!("sqlite://{}", file.display()),
        "POST /v1/connections, SQLite file",
        &run,
        n_create,
    )
    .await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }

    // (c) verification against the hand chain; (d) with a DynamoDB store.
    let sq = verifications(
        "sqlite::memory:",
        "POST /v1/connections/{id}/role, SQLite store",
        &format!("{run}v"),
        n_verify,
        true,
    )
    .await;
    let n_dynamo_verify = n_verify.min(20);
    let dv = verifications(
        &format!("dynamodb://{table}"),
        "POST /v1/connections/{id}/role, DynamoDB store",
        &format!("{run}d"),
        n_dynamo_verify,
        false,
    )
    .await;

    println!();
    println!(
        "  {:<46} {:>5} {:>10} {:>10}",
        "series (ms, client side)", "n", "median", "p95"
    );
    row(&dynamo.create);
    row(&dynamo.create_calls);
    row(&dynamo.put);
    row(&dynamo.transact);
    ratio("create (DynamoDB) / bare PutItem", &dynamo.create, &dynamo.put, 1.2);
    ratio(
        "create (DynamoDB) / bare TransactWriteItems",
        &dynamo.create,
        &dynamo.transact,
        1.2,
    );
    row(&mem);
    row(&disk);
    row(&sq.app);
    row(&sq.head);
    row(&sq.tail);
    row(&sq.hand);
    ratio("verification / hand chain", &sq.app, &sq.hand, 1.2);
    row(&dv.app);
    println!();
    println!(
        "  a create writes 4 items (connection, external-ID claim, account hold, event) in one \
         TransactWriteItems; stored connection JSON {} bytes; table {}",
        dynamo.connection_bytes,
        if keep {
            "kept growing (--keep-items)"
        } else {
            "emptied after each round (untimed)"
        }
    );
    let after = |r: &[Vec<String>]| r.len().saturating_sub(1);
    let (lo, hi) = (
        sq.rounds_seen.iter().min().copied().unwrap_or(0),
        sq.rounds_seen.iter().max().copied().unwrap_or(0),
    );
    println!(
        "  AWS rounds, verification (SQLite store): {} ({} after AssumeRole; {lo}..{hi} over the runs): {}",
        sq.app_rounds.len(),
        after(&sq.app_rounds),
        describe(&sq.app_rounds)
    );
    println!(
        "  AWS rounds, hand chain: {} ({} after AssumeRole): {}",
        sq.hand_rounds.len(),
        after(&sq.hand_rounds),
        describe(&sq.hand_rounds)
    );
    println!(
        "  AWS rounds, verification (DynamoDB store): {}: {}",
        dv.app_rounds.len(),
        describe(&dv.app_rounds)
    );
    for (label, v) in [("SQLite", &sq), ("DynamoDB", &dv)] {
        let calls: Vec<String> = v
            .slowest
            .1
            .iter()
            .map(|(name, at, took)| format!("{} @{at:.1}+{took:.1}", name.split('.').nth(1).unwrap_or(name)))
            .collect();
        println!(
            "  slowest verification ({label} store), {:.1} ms; its AWS calls (ms from start + ms taken): {}",
            v.slowest.0.as_secs_f64() * 1e3,
            calls.join(", ")
        );
    }
}
