//! An outage is never a state change: STS and IAM answering 503, an empty
//! 404 or a proxy's HTML 403 (an answer without AWS's error code is not
//! AWS's word on anything) break no connection on the fleet re-check and
//! send no `connection.health_changed`, and a first verification asks
//! nothing of the customer. Through the stand-in in front of moto
//! (tests/aws_standin), the production SDK clients pointed at it.
//! The organization's side is `organizations::outage`.

use crate::aws_standin::{Fault, Refusal, Script, StandIn};
use crate::common::{self, check};
use account_connect::domain::{ChangeType, Partition};
use account_connect::recheck::{local, EnumerateOptions, Worker};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACCOUNT: &str = "123456789012"; // moto's account

/// IAM's reads of a verification: an outage of IAM alone fails these
/// while AssumeRole answers.
const IAM_READS: [&str; 8] = [
    "GetRole",
    "ListRoles",
    "ListAttachedRolePolicies",
    "ListRolePolicies",
    "GetPolicy",
    "GetPolicyVersion",
    "GetRolePolicy",
    "SimulatePrincipalPolicy",
];

/// Where the outage is.
#[derive(Debug, Clone, Copy)]
enum Reach {
    /// Every call, AssumeRole first.
    Everything,
    /// IAM's reads; AssumeRole answers.
    Iam,
}

struct Env {
    app: common::TestApp,
    state: account_connect::services::Services,
    store: account_connect::store::DynStore,
    iam: aws_sdk_iam::Client,
    token: String,
    standin: StandIn,
}

async fn env() -> Env {
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let mut config = common::test_config();
    // A first verification backs off an answer that is not STS's as long
    // as throttling (4 s at least), not the whole default budget.
    config.propagation_budget_secs = 2;
    config.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    config.iam_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let (app, state, store) = common::spawn_with_store(config).await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let org = format!("org-{}", account_connect::ids::random_token(4));
    Env {
        app,
        state,
        store,
        iam: aws_sdk_iam::Client::new(&conf),
        token: common::token(&org, None),
        standin,
    }
}

fn id_of(c: &Value) -> &str {
    c["id"].as_str().unwrap()
}

impl Env {
    /// A connection and a role trusting it, not connected yet.
    async fn pending(&self) -> (Value, String) {
        let account = format!("act-{}", account_connect::ids::random_token(4));
        let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"},
            "awsAccountId": ACCOUNT});
        let (status, c) = self.app.create_connection(&self.token, &body).await;
        assert_eq!(status, 201, "{c}");
        let (arn, _) = common::connection_role(&self.iam, &c).await;
        (c, arn)
    }

    /// A connection connected, healthy; its role's ARN.
    async fn connected(&self) -> (Value, String) {
        let (c, arn) = self.pending().await;
        let (status, c) = self.app.connect_role(&self.token, id_of(&c), &arn).await;
        assert_eq!((status, c["health"].as_str()), (200, Some("healthy")), "{c}");
        (c, arn)
    }

    fn start_outage(&self, fault: Fault, reach: Reach) {
        self.standin.with(|s| match reach {
            Reach::Everything => s.outage = Some(fault),
            Reach::Iam => s.errors = IAM_READS.iter().map(|a| (a.to_string(), (fault, u32::MAX))).collect(),
        });
    }

    fn end_outage(&self) {
        self.standin.with(|s| {
            s.outage = None;
            s.errors.clear();
        });
    }

    /// Every outbox item written so far (none is delivered: no dispatcher
    /// runs): its connection, sequence and type.
    async fn outbox(&self) -> BTreeSet<(String, u64, &'static str)> {
        let items = self.store.undelivered(10_000).await.unwrap();
        items
            .into_iter()
            .map(|i| (i.connection_id.as_str().to_owned(), i.sequence, i.kind.as_str()))
            .collect()
    }
}

/// Every failed check of a report: said to be AWS's or ours (transient),
/// and none tells the customer to change the role or its trust policy.
fn blames_nobody(report: &Value, what: &str) {
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "{what}: something failed: {report}");
    for c in failed {
        assert_eq!(c["transient"], true, "{what}: not the role's fault: {c}");
        let text = format!("{} {}", c["message"], c["remediation"]).to_lowercase();
        for blame in ["trust relationship", "check the role", "attach the policy", "re-save"] {
            assert!(
                !text.contains(blame),
                "{what}: asks the customer for a fix ({blame}): {c}"
            );
        }
        assert!(
            c["remediation"]
                .as_str()
                .is_some_and(|r| r.to_lowercase().contains("try again")),
            "{what}: says to try again: {c}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_recheck_during_an_outage_breaks_no_connection_and_sends_nothing() {
    let e = env().await;
    let mut conns = Vec::new();
    for _ in 0..6 {
        conns.push(e.connected().await);
    }
    let worker = Worker::new(e.state.connections.clone());
    let opts = EnumerateOptions::from_config(&e.state.config);
    let outbox = e.outbox().await;
    for fault in Fault::OUTAGES {
        for reach in [Reach::Everything, Reach::Iam] {
            let what = format!("{fault:?} to {reach:?}");
            e.start_outage(fault, reach);
            e.app.clock.advance(2);
            let s = local::run(&worker, &opts, 6).await;
            e.end_outage();
            assert_eq!(
                (s.inconclusive, s.checked, s.broken, s.changed, s.errors, s.timed_out),
                (6, 0, 0, 0, 0, 0),
                "{what}: every check inconclusive: {s:?}"
            );
            for (c, _) in &conns {
                let (_, now) = e.app.get_connection(&e.token, id_of(c)).await;
                assert_eq!(now["health"], "healthy", "{what}: {now}");
                assert_eq!(now["checkedAt"], c["checkedAt"], "{what}: not a check: {now}");
                assert_eq!(now["report"], c["report"], "{what}: the last conclusive report stands");
                let (_, events) = e.app.events(&e.token, id_of(c), "").await;
                let last = events["items"].as_array().unwrap().last().unwrap().clone();
                assert_eq!(
                    (last["kind"].as_str(), last["outcome"].as_str()),
                    (Some("checked"), Some("inconclusive")),
                    "{what}: the attempt is on record: {last}"
                );
            }
            assert_eq!(e.outbox().await, outbox, "{what}: no event");
        }
    }

    // AWS answers again: every check conclusive, every role healthy.
    e.app.clock.advance(2);
    let s = local::run(&worker, &opts, 6).await;
    assert_eq!((s.checked, s.healthy, s.changed), (6, 6, 0), "{s:?}");
    assert_eq!(e.outbox().await, outbox, "nothing changed");
    // AWS's own refusal, with its error document, does break a role, and
    // says so: what the outages above did not do.
    let (refused, arn) = &conns[0];
    e.standin
        .with(|s| s.refuse_assume.insert(arn.clone(), (Refusal::AccessDenied, u32::MAX)));
    e.app.clock.advance(2);
    let s = local::run(&worker, &opts, 6).await;
    assert_eq!((s.broken, s.changed), (1, 1), "{s:?}");
    let health: Vec<_> = e
        .outbox()
        .await
        .difference(&outbox)
        .map(|(id, _, kind)| (id.clone(), *kind))
        .collect();
    assert_eq!(
        health,
        vec![(id_of(refused).to_owned(), ChangeType::HealthChanged.as_str())],
        "one event, for the refused role"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_verification_during_an_outage_blames_nothing_on_the_customer() {
    let e = env().await;
    let mut seen_trust = false;
    for fault in Fault::OUTAGES {
        for reach in [Reach::Everything, Reach::Iam] {
            let what = format!("{fault:?} to {reach:?}");
            let (c, arn) = e.pending().await;
            e.start_outage(fault, reach);
            let (status, err) = e.app.connect_role(&e.token, id_of(&c), &arn).await;
            e.end_outage();
            assert_eq!(
                (status, err["error"]["code"].as_str()),
                (422, Some("verification_failed")),
                "{what}: {err}"
            );
            let message = err["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("AWS could not be reached") && message.contains("nothing changed"),
                "{what}: {message}"
            );
            let report = &err["error"]["details"]["report"];
            blames_nobody(report, &what);
            let assume = check(report, "assume_role");
            match reach {
                Reach::Everything => {
                    assert_eq!(assume["status"], "failed", "{what}: {assume}");
                    // What answered instead of AWS, in the report.
                    let said = match fault {
                        Fault::EMPTY_404 => "HTTP 404 with an empty body and no AWS error code",
                        Fault::PROXY_403 => "HTTP 403 with a text/html body and no AWS error code",
                        _ => "server error",
                    };
                    assert!(assume["message"].as_str().unwrap().contains(said), "{what}: {assume}");
                }
                Reach::Iam => {
                    assert_eq!(assume["status"], "passed", "{what}: {assume}");
                    let trust = check(report, "trust_policy");
                    assert_eq!(trust["status"], "failed", "{what}: {trust}");
                    seen_trust = true;
                }
            }
            let (_, now) = e.app.get_connection(&e.token, id_of(&c)).await;
            assert_eq!(now["status"], "pending", "{what}: {now}");
            assert!(now.get("roleArn").is_none_or(Value::is_null), "{what}: {now}");
            // AWS answering again, the same role connects: nothing was wrong with it.
            let (status, done) = e.app.connect_role(&e.token, id_of(&c), &arn).await;
            assert_eq!(
                (status, done["health"].as_str()),
                (200, Some("healthy")),
                "{what}: {done}"
            );
        }
    }
    assert!(seen_trust);
}
