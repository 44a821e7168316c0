//! The fleet re-check against moto: connections in every health state, a
//! role deleted and a policy edited between checks, a selection that grew
//! (what a catalog release does to a stored connection), drift closed by
//! the stack update link or the pasted policy, the SQS worker's batch item
//! failures, and the enumerator paging into a real queue in moto.

use crate::common::{self, drop_action, some_action, TestApp};
use account_connect::domain::{ConnectedStack, Connection, ConnectionId, Event, EventKind};
use account_connect::policy::Permissions;
use account_connect::recheck::lambda::Fleet;
use account_connect::recheck::{enumerate, local, EnumerateOptions, Message, SqsQueue, Summary, Worker};
use account_connect::tenancy::Tenant;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const ACCOUNT: &str = "123456789012"; // moto's account

async fn sdk() -> aws_config::SdkConfig {
    common::moto_endpoint();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

struct Env {
    app: TestApp,
    state: account_connect::services::Services,
    store: account_connect::store::DynStore,
    iam: aws_sdk_iam::Client,
    token: String,
    org: String,
}

async fn env(mut config: account_connect::config::Config, dynamo: bool) -> Env {
    if dynamo {
        config.store_url = common::dynamo_store_url().await;
    }
    let (app, state, store) = common::spawn_with_store(config).await;
    let org = format!("org-{}", account_connect::ids::random_token(4));
    Env {
        app,
        state,
        store,
        iam: aws_sdk_iam::Client::new(&sdk().await),
        token: common::token(&org, None),
        org,
    }
}

fn id_of(c: &Value) -> &str {
    c["id"].as_str().unwrap()
}

impl Env {
    /// The service's clock, which the tests move instead of sleeping.
    fn now(&self) -> i64 {
        self.state.connections.now()
    }

    async fn create(&self, permissions: Value, method: &str) -> Value {
        let account = format!("act-{}", account_connect::ids::random_token(4));
        let body = json!({"accountId": account, "partition": "aws", "permissions": permissions,
            "awsAccountId": ACCOUNT, "method": method});
        let (status, c) = self.app.create_connection(&self.token, &body).await;
        assert_eq!(status, 201, "{c}");
        c
    }

    /// A role trusting the connection, with its policies as managed ones
    /// (their ARNs returned beside the role's).
    async fn role(&self, c: &Value) -> (String, Vec<String>) {
        common::connection_role(&self.iam, c).await
    }

    /// A connection connected to a fresh role; its role and policy ARNs.
    async fn connected(&self, permissions: Value) -> (Value, String, Vec<String>) {
        let c = self.create(permissions, "manual").await;
        let (role, policies) = self.role(&c).await;
        let (status, body) = self.app.connect_role(&self.token, id_of(&c), &role).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["health"], "healthy", "{body}");
        (body, role, policies)
    }

    async fn get(&self, c: &Value) -> Value {
        self.app.get_connection(&self.token, id_of(c)).await.1
    }

    fn worker(&self) -> Worker {
        Worker::new(self.state.connections.clone())
    }

    async fn recheck(&self) -> Summary {
        let opts = EnumerateOptions::from_config(&self.state.config);
        local::run(&self.worker(), &opts, 4).await
    }

    fn tenant(&self) -> Tenant {
        Tenant {
            org: self.org.clone(),
            sub: "test".into(),
            accounts: None,
        }
    }

    /// Writes the connection back changed, as another writer would.
    async fn rewrite(&self, id: &str, f: impl FnOnce(&mut Connection)) {
        let id: ConnectionId = id.parse().unwrap();
        let store = &self.store;
        let mut c = store.get(&self.org, &id).await.unwrap().unwrap();
        f(&mut c);
        c.version += 1;
        let ev = Event {
            connection_id: id,
            kind: EventKind::Checked,
            at: self.now(),
            actor: "test".into(),
            outcome: "ok".into(),
            detail: None,
        };
        store.update(&c, &ev, &[], self.now()).await.unwrap();
    }

    async fn list_ids(&self, query: &str) -> BTreeSet<String> {
        let (status, body) = self.app.list_connections(&self.token, query).await;
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_health_state_then_the_recovery() {
    let e = env(common::test_config(), false).await;
    let custom = json!({"mode": "custom", "products": ["overview-dashboard"], "integrations": []});
    let (stays, _, _) = e.connected(json!({"mode": "default"})).await;
    let (deleted, deleted_role, deleted_policies) = e.connected(json!({"mode": "default"})).await;
    let (edited, _, edited_policies) = e.connected(json!({"mode": "default"})).await;
    let (grown, _, _) = e.connected(custom).await;
    let first = e.recheck().await;
    assert_eq!(
        (first.checked, first.healthy, first.changed, first.errors),
        (4, 4, 0, 0),
        "{first:?}"
    );

    // The customer deletes one role and edits another's policy; the
    // catalog's next release makes a bundle need actions the fourth role
    // lacks (the stored selection now resolves to more).
    for p in &deleted_policies {
        e.iam
            .detach_role_policy()
            .role_name(role_name(&deleted_role))
            .policy_arn(p)
            .send()
            .await
            .unwrap();
    }
    e.iam
        .delete_role()
        .role_name(role_name(&deleted_role))
        .send()
        .await
        .unwrap();
    let action = some_action(&edited);
    let old_version = drop_action(&e.iam, &edited_policies[0], &action).await;
    e.rewrite(grown["id"].as_str().unwrap(), |c| {
        c.permissions = Permissions::Custom {
            products: vec!["overview-dashboard".into(), "spot-storage".into()],
            integrations: vec![],
        }
    })
    .await;

    let second = e.recheck().await;
    assert_eq!(
        (
            second.checked,
            second.healthy,
            second.degraded,
            second.broken,
            second.changed,
            second.errors
        ),
        (4, 1, 2, 1, 3, 0),
        "{second:?}"
    );
    assert!(second.slowest.is_some());
    assert_eq!(e.get(&stays).await["health"], "healthy");
    assert_eq!(e.get(&deleted).await["health"], "broken");
    let now_edited = e.get(&edited).await;
    assert_eq!(now_edited["health"], "degraded", "{now_edited}");
    let drift = &now_edited["drift"];
    assert!(drift["missing"].to_string().contains(&action), "{drift}");
    // A manual connection: the documents to paste, with the action back in.
    assert_eq!(drift["fix"]["kind"], "editPolicy", "{drift}");
    assert!(drift["fix"]["policies"].to_string().contains(&action), "{drift}");
    let now_grown = e.get(&grown).await;
    assert_eq!(now_grown["health"], "degraded", "{now_grown}");
    assert!(now_grown["drift"]["missing"]["spot-storage"].is_array(), "{now_grown}");

    // The list filters.
    let id = |c: &Value| c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        e.list_ids("health=degraded").await,
        BTreeSet::from([id(&edited), id(&grown)])
    );
    assert_eq!(e.list_ids("health=broken").await, BTreeSet::from([id(&deleted)]));
    let later = account_connect::clock::iso(e.now() + 60);
    assert_eq!(e.list_ids(&format!("checkedBefore={later}")).await.len(), 4);
    assert!(e.list_ids("checkedBefore=2020-01-01T00:00:00Z").await.is_empty());
    assert_eq!(
        e.list_ids(&format!("health=healthy&checkedBefore={later}")).await,
        BTreeSet::from([id(&stays)])
    );
    let (status, body) = e.app.list_connections(&e.token, "checkedBefore=yesterday").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{body}"
    );
    let (status, body) = e.app.list_connections(&e.token, "health=sickly").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{body}"
    );

    // The customer pastes the policy back: the next check records the recovery.
    e.iam
        .set_default_policy_version()
        .policy_arn(&edited_policies[0])
        .version_id(old_version)
        .send()
        .await
        .unwrap();
    let third = e.recheck().await;
    assert_eq!((third.checked, third.healthy, third.changed), (4, 2, 1), "{third:?}");
    let recovered = e.get(&edited).await;
    assert_eq!(recovered["health"], "healthy", "{recovered}");
    assert!(recovered.get("drift").is_none(), "{recovered}");
    let (_, events) = e.app.events(&e.token, id_of(&edited), "").await;
    let outcomes: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["kind"] == "checked")
        .map(|ev| ev["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "degraded", "ok"], "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_degraded_stack_offers_its_update_link_with_the_current_template() {
    let conf = sdk().await;
    let s3 = common::s3::S3::new(&conf);
    let bucket = format!("templates-{}", account_connect::ids::random_token(4));
    s3.create_bucket(&bucket).await;
    let e = env(common::callback::config(Some(bucket.clone())), false).await;
    let c = e.create(json!({"mode": "default"}), "automatic").await;
    let (role, policies) = e.role(&c).await;
    let stack_id = format!(
        "arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/{}/0a1b2c3d-0000-4000-8000-000000000000",
        c["cloudFormation"]["stackName"].as_str().unwrap()
    );
    let stack = ConnectedStack {
        stack_id: stack_id.clone(),
        account_id: ACCOUNT.parse().unwrap(),
    };
    let id: ConnectionId = c["id"].as_str().unwrap().parse().unwrap();
    let (connected, _) = e
        .state
        .connections
        .connect_role_from(&e.tenant(), &id, &role, Duration::ZERO, Some(stack))
        .await
        .unwrap();
    assert_eq!(connected.health, Some(account_connect::domain::Health::Healthy));

    let action = some_action(&c);
    let old = drop_action(&e.iam, &policies[0], &action).await;
    let s = e.recheck().await;
    assert_eq!((s.checked, s.degraded, s.changed), (1, 1, 1), "{s:?}");
    let now = e.get(&c).await;
    let fix = &now["drift"]["fix"];
    assert_eq!(fix["kind"], "updateStack", "{now}");
    assert_eq!(fix["stackId"], stack_id.as_str());
    let url = fix["updateUrl"].as_str().unwrap();
    assert!(
        url.starts_with("https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/update/template?stackId=arn%3Aaws%3Acloudformation%3Aeu-west-1"),
        "{url}"
    );
    // The linked template is the current one: every action, this
    // connection's custom resource and its callback token.
    let template_url = fix["templateUrl"].as_str().unwrap();
    let key = template_url.split(".amazonaws.com/").nth(1).unwrap();
    let template = s3.json(&bucket, key).await;
    assert!(template.to_string().contains(&action));
    let props = &template["Resources"]["SpotConnection"]["Properties"];
    assert_eq!(props["ConnectionId"], c["id"]);
    assert!(props["CallbackToken"].as_str().is_some_and(|t| !t.is_empty()));

    // The stack update puts the policy back; the next check records it.
    e.iam
        .set_default_policy_version()
        .policy_arn(&policies[0])
        .version_id(old)
        .send()
        .await
        .unwrap();
    let s = e.recheck().await;
    assert_eq!((s.checked, s.healthy, s.changed), (1, 1, 1), "{s:?}");
    assert!(e.get(&c).await.get("drift").is_none());
}

fn sqs_event(bodies: &[Option<String>]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": b, "attributes": {},
                "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:recheck", "awsRegion": "us-east-1"})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

async fn queue() -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let url = sqs
        .create_queue()
        .queue_name(format!("recheck-{}", account_connect::ids::random_token(4)))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (sqs, url)
}

fn fleet(worker: Worker, sqs: &aws_sdk_sqs::Client, url: &str, page: usize) -> Fleet {
    Fleet {
        worker,
        queue: Arc::new(SqsQueue::new(sqs.clone(), url.to_owned())),
        options: EnumerateOptions {
            page,
            interval_secs: 86_400,
        },
        concurrency: 4,
    }
}

fn failures(r: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_hands_back_only_the_messages_worth_retrying() {
    let e = env(common::test_config(), true).await;
    let (c, _, _) = e.connected(json!({"mode": "default"})).await;
    let (sqs, url) = queue().await;
    let f = fleet(e.worker(), &sqs, &url, 10);
    let job = |id: &str, queued_at: i64| {
        Some(
            Message::Check {
                org: e.org.clone(),
                id: id.parse().unwrap(),
                queued_at,
            }
            .body(),
        )
    };
    let id = c["id"].as_str().unwrap();
    // Queued after the connection was verified; checked later (times are
    // whole seconds, so the clock moves two).
    let before = e.now();
    e.app.clock.advance(2);
    let event = sqs_event(&[
        job(id, before),
        Some("{\"kind\":\"check\",\"org\":".into()),
        None,
        job("con-0123456789abcdef01234567", before),
        Some(format!("{{\"kind\":\"check\",\"pad\":\"{}\"}}", "x".repeat(5000))),
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (response, summary) = f.on_batch(event, deadline).await;
    // The garbage comes back (and, past maxReceiveCount, lands in the DLQ);
    // the check and the unknown connection are done with.
    assert_eq!(failures(&response), ["m1", "m2", "m4"], "{response:?}");
    assert_eq!(
        (summary.checked, summary.skipped, summary.errors),
        (1, 1, 0),
        "{summary:?}"
    );
    let wire = serde_json::to_value(&response).unwrap();
    assert_eq!(wire["batchItemFailures"][0]["itemIdentifier"], "m1", "{wire}");

    // Delivered again: checked since it was queued, so skipped.
    let (response, summary) = f.on_batch(sqs_event(&[job(id, before)]), deadline).await;
    assert!(failures(&response).is_empty());
    assert_eq!((summary.checked, summary.skipped), (0, 1), "{summary:?}");

    // The store fails: the job comes back for a retry.
    let mut broken = common::test_config();
    broken.store_url = format!("dynamodb://missing-{}", account_connect::ids::random_token(4));
    let state = account_connect::app::build(broken).unwrap();
    let f = fleet(Worker::new(state.connections.clone()), &sqs, &url, 10);
    let (response, summary) = f.on_batch(sqs_event(&[job(id, before)]), deadline).await;
    assert_eq!(failures(&response), ["m0"], "{summary:?}");
    assert_eq!(summary.errors, 1);
}

/// Every message on the queue, deleted as read.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Message> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return out;
        }
        for m in got {
            out.push(Message::parse(m.body.as_deref().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn checks(ms: &[Message]) -> Vec<String> {
    ms.iter()
        .filter_map(|m| match m {
            Message::Check { id, .. } => Some(id.as_str().to_owned()),
            Message::Enumerate { .. } => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_enumerator_pages_the_connected_index_into_sqs() {
    let e = env(common::test_config(), true).await;
    let mut ids = BTreeSet::new();
    for _ in 0..7 {
        let (c, _, _) = e
            .connected(json!({"mode": "custom", "products": ["spot-storage"], "integrations": []}))
            .await;
        ids.insert(c["id"].as_str().unwrap().to_owned());
    }
    // A pending connection is not queued.
    e.create(json!({"mode": "default"}), "manual").await;
    // Two were last checked three days ago: stale.
    let now = e.now();
    for id in ids.iter().take(2) {
        e.rewrite(id, |c| c.checked_at = Some(now - 3 * 86_400)).await;
    }
    let (sqs, url) = queue().await;
    let f = fleet(e.worker(), &sqs, &url, 3);
    let done = enumerate(&e.state.connections, f.queue.as_ref(), &f.options, None, now, None)
        .await
        .unwrap();
    assert_eq!(
        (done.pages, done.queued, done.stale, done.continued),
        (3, 7, 2, false),
        "{done:?}"
    );
    let got = drain(&sqs, &url).await;
    assert_eq!(got.len(), 7);
    assert_eq!(checks(&got).into_iter().collect::<BTreeSet<_>>(), ids);

    // Out of time after the first page: the rest is a continuation on the
    // queue, which a worker picks up.
    let first = f.on_schedule(std::time::Instant::now()).await.unwrap();
    assert_eq!((first.pages, first.queued, first.continued), (1, 3, true), "{first:?}");
    let got = drain(&sqs, &url).await;
    let continuation: Vec<String> = got
        .iter()
        .filter(|m| matches!(m, Message::Enumerate { .. }))
        .map(Message::body)
        .collect();
    assert_eq!(continuation.len(), 1, "{got:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (response, summary) = f.on_batch(sqs_event(&[Some(continuation[0].clone())]), deadline).await;
    assert!(failures(&response).is_empty(), "{summary:?}");
    assert_eq!(summary.queued, 4);
    let mut all: Vec<String> = checks(&got);
    all.extend(checks(&drain(&sqs, &url).await));
    all.sort();
    assert_eq!(all, ids.iter().cloned().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_recheck_command_checks_the_configured_store_and_prints_its_summary() {
    let dir = std::env::temp_dir().join(format!("recheck-{}", account_connect::ids::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite://{}", dir.join("fleet.db").display());
    let mut config = common::test_config();
    config.store_url = store.clone();
    let e = env(config, false).await;
    let (stays, _, _) = e.connected(json!({"mode": "default"})).await;
    let (gone, role, policies) = e.connected(json!({"mode": "default"})).await;
    for p in &policies {
        e.iam
            .detach_role_policy()
            .role_name(role_name(&role))
            .policy_arn(p)
            .send()
            .await
            .unwrap();
    }
    e.iam.delete_role().role_name(role_name(&role)).send().await.unwrap();

    let bin = env!("CARGO_BIN_EXE_account-connect");
    let run = |args: &'static [&'static str]| {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .args(args)
                .env("ACCOUNT_CONNECT_STORE", store)
                .output()
                .unwrap()
        })
    };
    let out = run(&["recheck", "--concurrency", "2"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts: Vec<i64> = ["queued", "checked", "healthy", "broken", "changed", "errors"]
        .iter()
        .map(|k| summary[k].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [2, 2, 1, 1, 1, 0], "{summary}");
    assert_eq!(summary["concurrency"], 2);
    assert!(summary["slowest"]["ms"].as_u64().is_some(), "{summary}");
    // What the command recorded, the API serves.
    assert_eq!(e.get(&gone).await["health"], "broken");
    assert_eq!(e.get(&stays).await["health"], "healthy");

    let out = run(&["recheck", "--concurrency", "0"]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1..=1024"));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_hung_account_holds_only_its_own_slot_and_keeps_its_health() {
    use crate::aws_standin::{Script, StandIn};
    use account_connect::domain::Partition;
    use std::collections::BTreeMap;
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let mut config = common::test_config();
    config.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    config.iam_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let e = env(config, false).await;
    let (hung, hung_role, _) = e.connected(json!({"mode": "default"})).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(e.connected(json!({"mode": "default"})).await.0);
    }
    // Every IAM call of the hung role's sessions waits a minute; its
    // AssumeRole goes through, as in an account whose IAM stalls.
    standin.with(|s| s.hang_roles.insert(hung_role.clone(), Duration::from_secs(60)));
    e.app.clock.advance(2);

    // Two slots: while the hung check holds one, the other does the rest.
    let opts = EnumerateOptions::from_config(&e.state.config);
    let s = local::run(&e.worker(), &opts, 2).await;
    assert_eq!(
        (s.queued, s.checked, s.healthy, s.inconclusive, s.timed_out, s.changed),
        (4, 3, 3, 1, 0, 0),
        "{s:?}"
    );
    let slowest = s.slowest.clone().unwrap();
    assert_eq!(slowest.connection, id_of(&hung), "{s:?}");
    // It ended at the verifier's own limits (each call's 5 s, the reads'
    // 6 s deadline: its reads run side by side), not the minute.
    assert!((5_000..20_000).contains(&slowest.ms), "{s:?}");

    let after = e.get(&hung).await;
    assert_eq!(
        after["health"], "healthy",
        "a stalled account is not a broken role: {after}"
    );
    assert_eq!(
        after["checkedAt"], hung["checkedAt"],
        "not checked, so its checkedAt stays: {after}"
    );
    for c in &others {
        let now = e.get(c).await;
        assert_eq!(now["health"], "healthy");
        assert_ne!(now["checkedAt"], c["checkedAt"], "{now}");
    }
}
