//! Verification where moto alone cannot show it: the propagation wait,
//! throttling, IAM's policy simulator, GetRole refused, endless ListRoles and
//! a slow account, through a stand-in in front of moto (tests/aws_standin);
//! and the permissions boundary, against moto itself.

use crate::aws_standin;
use crate::common;
use common::check;

use account_connect::domain::Partition;
use aws_standin::{Refusal, SimAnswer, Simulator, StandIn};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

const ACCOUNT: &str = "123456789012"; // moto's account

struct Env {
    app: common::TestApp,
    iam: aws_sdk_iam::Client,
    token: String,
    /// None where the test runs against moto alone.
    standin: Option<StandIn>,
}

/// The app with its STS and IAM endpoints at a fresh stand-in.
async fn env(script: aws_standin::Script, budget_secs: u64) -> Env {
    let moto = common::moto_endpoint();
    let standin = StandIn::start(&moto, script).await;
    let mut config = common::test_config();
    config.propagation_budget_secs = budget_secs;
    config.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    config.iam_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    Env {
        app: common::spawn_app(config).await,
        iam: aws_sdk_iam::Client::new(&conf),
        token: common::token("org-aws", None),
        standin: Some(standin),
    }
}

impl Env {
    async fn connection(&self, account: &str, permissions: Value) -> Value {
        let body =
            json!({"accountId": account, "partition": "aws", "permissions": permissions, "awsAccountId": ACCOUNT});
        let (status, c) = self.app.create_connection(&self.token, &body).await;
        assert_eq!(status, 201, "{c}");
        c
    }

    /// A role trusting this connection, with its policies and `extra` as
    /// managed policies.
    async fn role(&self, c: &Value, boundary: Option<&Value>, extra: &[Value]) -> String {
        let name = format!("Spot-Role-{}", account_connect::ids::random_token(4));
        let mut create = self
            .iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(c["trustPolicy"].to_string());
        if let Some(doc) = boundary {
            let p = self
                .iam
                .create_policy()
                .policy_name(format!("{name}-boundary"))
                .policy_document(doc.to_string())
                .send()
                .await
                .unwrap();
            create = create.permissions_boundary(p.policy.unwrap().arn.unwrap());
        }
        let arn = create.send().await.unwrap().role.unwrap().arn;
        let docs = c["policies"].as_array().unwrap().iter().map(|p| &p["document"]);
        for (i, doc) in docs.chain(extra).enumerate() {
            common::attach_managed_policy(&self.iam, &name, &format!("{name}-p{i}"), doc).await;
        }
        arn
    }

    async fn connect(&self, c: &Value, arn: &str) -> (u16, Value) {
        self.app.connect_role(&self.token, c["id"].as_str().unwrap(), arn).await
    }

    fn standin(&self) -> &StandIn {
        self.standin.as_ref().expect("this test runs through the stand-in")
    }

    fn calls(&self, action: &str) -> u32 {
        self.standin().with(|s| s.calls.get(action).copied().unwrap_or(0))
    }
}

/// The report of a 422, or of a connection.
fn report_of(status: u16, body: &Value) -> &Value {
    if status == 422 {
        &body["error"]["details"]["report"]
    } else {
        &body["report"]
    }
}

/// What the role needs beyond Spot's default policy to show its boundary.
fn may_get_role() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]})
}

fn script() -> aws_standin::Script {
    aws_standin::Script::default()
}

#[tokio::test]
async fn a_role_that_propagates_late_connects_and_the_report_says_how_long() {
    let e = env(script(), 10).await;
    let c = e.connection("act-a1", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[]).await;
    e.standin()
        .with(|s| s.refuse_assume.insert(arn.clone(), (Refusal::AccessDenied, 3)));
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!(status, 200, "{done}");
    let assume = check(&done["report"], "assume_role");
    assert_eq!(assume["status"], "passed");
    // Refused three times, through on the fourth; backoff 0.5 + 1 + 2 s.
    assert_eq!(assume["attempts"], 4, "{assume}");
    assert_eq!(e.standin().with(|s| s.assume_calls[&arn]), 4);
    assert_eq!(assume["waitedMs"], 3500, "{assume}");
    let msg = assume["message"].as_str().unwrap();
    assert!(
        msg.contains("attempt 4") && msg.contains("3.5 s") && msg.contains("propagate"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_role_that_never_propagates_fails_within_the_budget_with_the_remedy() {
    let e = env(script(), 3).await;
    let c = e.connection("act-a2", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[]).await;
    e.standin()
        .with(|s| s.refuse_assume.insert(arn.clone(), (Refusal::AccessDenied, u32::MAX)));
    let (status, err) = e.connect(&c, &arn).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("verification_failed")),
        "{err}"
    );
    let report = report_of(status, &err);
    let assume = check(report, "assume_role");
    assert_eq!(assume["status"], "failed");
    let calls = e.standin().with(|s| s.assume_calls[&arn]);
    assert_eq!(assume["attempts"], calls);
    assert!(calls >= 3, "retried within the budget: {assume}");
    // Within the 3 s budget: the waits (0.5 + 1 s) and each attempt.
    assert!(assume["waitedMs"].as_u64().unwrap() < 3000, "{assume}");
    assert!(report["durationMs"].as_u64().unwrap() < 3000 + 1000 + 1000, "{report}");
    assert!(
        assume["remediation"].as_str().unwrap().contains("propagate"),
        "{assume}"
    );
    for id in ["identity", "trust_policy", "permissions"] {
        assert_eq!(check(report, id)["status"], "skipped");
    }
}

#[tokio::test]
async fn throttling_is_backed_off_not_reported_as_a_broken_role() {
    let e = env(script(), 10).await;
    let c = e.connection("act-a3", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let arn = e.role(&c, None, &[]).await;
    assert_eq!(e.connect(&c, &arn).await.0, 200);
    // The re-check allows no wait for propagation, yet backs off throttling.
    e.standin()
        .with(|s| s.refuse_assume.insert(arn.clone(), (Refusal::Throttling, 2)));
    let (status, again) = e.app.recheck(&e.token, id).await;
    assert_eq!((status, again["health"].as_str()), (200, Some("healthy")), "{again}");
    let assume = check(&again["report"], "assume_role");
    assert_eq!(assume["status"], "passed");
    assert_eq!(assume["attempts"], 3, "{assume}");
    assert!(assume["message"].as_str().unwrap().contains("throttled"), "{assume}");
    // Throttled past the backoff: inconclusive, so health and report stand.
    e.standin()
        .with(|s| s.refuse_assume.insert(arn.clone(), (Refusal::Throttling, 1000)));
    let (status, later) = e.app.recheck(&e.token, id).await;
    assert_eq!((status, later["health"].as_str()), (200, Some("healthy")), "{later}");
    assert_eq!(
        check(&later["report"], "assume_role")["attempts"],
        3,
        "the last conclusive report: {later}"
    );
    let (_, events) = e.app.events(&e.token, id, "").await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["outcome"].as_str()),
        (Some("checked"), Some("inconclusive")),
        "{last}"
    );
    assert!(
        last["detail"]["failed"][0]["message"]
            .as_str()
            .unwrap()
            .contains("throttled"),
        "{last}"
    );
}

/// The policy's named actions, and its `prefix*` patterns.
fn policy_actions(c: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut out = BTreeSet::new();
    for p in c["policies"].as_array().unwrap() {
        for s in p["document"]["Statement"].as_array().unwrap() {
            let actions = match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                v => v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            };
            out.extend(actions);
        }
    }
    let (patterns, named) = out.into_iter().partition(|a| a.contains('*'));
    (named, patterns)
}

#[tokio::test]
async fn iam_simulation_decides_and_sees_what_the_role_policies_do_not() {
    // An SCP denies TerminateInstances: the role's own policies allow it.
    let answers = HashMap::from([("ec2:terminateinstances".to_owned(), SimAnswer::DENIED_BY_SCP)]);
    let e = env(
        aws_standin::Script {
            simulator: Simulator::Answers(answers),
            ..script()
        },
        10,
    )
    .await;
    let c = e.connection("act-a4", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!((status, done["health"].as_str()), (200, Some("degraded")), "{done}");
    let perm = check(&done["report"], "permissions");
    assert_eq!(perm["decidedBy"], "iam_simulation_and_local", "{perm}");
    let missing: Vec<&str> = perm["missing"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(missing, vec!["ec2:TerminateInstances"], "{perm}");
    let msg = perm["message"].as_str().unwrap();
    assert!(
        msg.contains("service control policies, not by the role's own policies: ec2:TerminateInstances"),
        "{msg}"
    );
    assert_eq!(
        perm["deniedByOrganization"],
        json!(["ec2:TerminateInstances"]),
        "{perm}"
    );

    // What IAM was asked: the role itself, signed as the role, every named
    // action of the policy once per call group, no pattern, within the batch size.
    let calls = e.standin().with(|s| s.simulate_calls.clone());
    assert!(!calls.is_empty());
    let mut asked = BTreeSet::new();
    for call in &calls {
        assert_eq!(call.policy_source_arn, arn);
        assert!(call.actions.len() <= 50, "{} actions in one call", call.actions.len());
        assert!(
            call.actions.iter().all(|a| !a.contains(['*', '?'])),
            "{:?}",
            call.actions
        );
        assert_ne!(
            call.access_key, "testing",
            "signed with the service's own key, not the role's"
        );
        asked.extend(call.actions.iter().cloned());
    }
    let (named, patterns) = policy_actions(&c);
    assert!(named.is_subset(&asked), "{:?}", named.difference(&asked));
    // Beyond those, only catalog actions the renderer folded into a wildcard.
    for a in asked.difference(&named) {
        assert!(
            patterns.iter().any(|p| a.starts_with(p.trim_end_matches('*'))),
            "{a} was simulated but is not in the policy"
        );
    }
    // The stand-in pages at 20 results: the verifier followed the markers.
    assert!(calls.len() > asked.len().div_ceil(50), "{} calls", calls.len());
}

#[tokio::test]
async fn without_simulation_rights_the_local_evaluator_decides_and_says_so() {
    let e = env(
        aws_standin::Script {
            simulator: Simulator::AccessDenied,
            ..script()
        },
        10,
    )
    .await;
    let c = e.connection("act-a5", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!((status, done["health"].as_str()), (200, Some("healthy")), "{done}");
    let perm = check(&done["report"], "permissions");
    assert_eq!(perm["decidedBy"], "local", "{perm}");
    assert!(
        perm["message"]
            .as_str()
            .unwrap()
            .contains("may not call iam:SimulatePrincipalPolicy"),
        "{perm}"
    );
}

#[tokio::test]
async fn get_role_where_aws_allows_it_and_list_roles_otherwise() {
    // Spot's default policy has no iam:GetRole: AWS refuses the one GetRole
    // the first verification tries beside the policy reads, and ListRoles
    // reads the trust policy instead; later checks remember the refusal
    // and leave no other refused call in the customer's CloudTrail.
    let e = env(
        aws_standin::Script {
            deny_get_role: true,
            ..script()
        },
        10,
    )
    .await;
    let c = e.connection("act-a6", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!((status, done["health"].as_str()), (200, Some("healthy")), "{done}");
    assert_eq!((e.calls("GetRole"), e.calls("ListRoles")), (1, 1));
    assert_eq!(check(&done["report"], "trust_policy")["status"], "passed");
    // The boundary cannot be seen without GetRole, and the report says so.
    assert!(check(&done["report"], "permissions")["message"]
        .as_str()
        .unwrap()
        .contains("iam:GetRole"));
    let id = c["id"].as_str().unwrap();
    for _ in 0..2 {
        let (status, again) = e.app.recheck(&e.token, id).await;
        assert_eq!((status, again["health"].as_str()), (200, Some("healthy")), "{again}");
    }
    assert_eq!(
        (e.calls("GetRole"), e.calls("ListRoles")),
        (1, 3),
        "GetRole is not tried again"
    );

    // Allowed: GetRole alone, every time.
    let e = env(script(), 10).await;
    let c = e.connection("act-a7", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[may_get_role()]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!((e.calls("GetRole"), e.calls("ListRoles")), (1, 0));
    let (status, _) = e.app.recheck(&e.token, c["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!((e.calls("GetRole"), e.calls("ListRoles")), (2, 0));
}

#[tokio::test]
async fn list_roles_paging_stops_at_its_cap() {
    let e = env(
        aws_standin::Script {
            deny_get_role: true,
            endless_list_roles: true,
            ..script()
        },
        10,
    )
    .await;
    let c = e.connection("act-a11", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[]).await;
    let (status, err) = e.connect(&c, &arn).await;
    assert_eq!(status, 422, "{err}");
    let trust = check(report_of(status, &err), "trust_policy");
    assert_eq!(trust["status"], "failed");
    assert!(trust["message"].as_str().unwrap().contains("5 pages"), "{trust}");
    assert!(
        trust["remediation"].as_str().unwrap().contains("iam:GetRole"),
        "{trust}"
    );
    assert_eq!(e.calls("ListRoles"), 5);
}

#[tokio::test]
async fn a_slow_account_gets_failed_and_skipped_checks_inside_the_deadline() {
    let slow = Duration::from_secs(40);
    let delays = [
        "GetRole",
        "ListRoles",
        "ListAttachedRolePolicies",
        "ListRolePolicies",
        "SimulatePrincipalPolicy",
    ]
    .into_iter()
    .map(|a| (a.to_owned(), slow))
    .collect();
    let e = env(
        aws_standin::Script {
            simulator: Simulator::Answers(HashMap::new()),
            delays,
            ..script()
        },
        10,
    )
    .await;
    let c = e.connection("act-a9", json!({"mode": "default"})).await;
    let arn = e.role(&c, None, &[]).await;
    let (status, err) = e.connect(&c, &arn).await;
    // A clear refusal, not a 5xx or a gateway timeout.
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("verification_failed")),
        "{err}"
    );
    let report = report_of(status, &err);
    assert_eq!(check(report, "identity")["status"], "passed");
    let trust = check(report, "trust_policy");
    assert_eq!(trust["status"], "failed");
    assert!(
        trust["message"]
            .as_str()
            .unwrap()
            .contains("did not finish in time (the checks share 6 s)"),
        "{trust}"
    );
    let perm = check(report, "permissions");
    assert_eq!(perm["status"], "skipped", "{perm}");
    assert!(perm["message"].as_str().unwrap().contains("did not finish"), "{perm}");
    // The checks' 6 s deadline, well inside API Gateway's 30 s.
    assert!(report["durationMs"].as_u64().unwrap() < 6000 + 2000, "{report}");
}

#[tokio::test]
async fn a_permissions_boundary_takes_away_what_the_policies_grant() {
    // Against moto alone: GetRole shows the boundary, and moto has no
    // SimulatePrincipalPolicy, so the local evaluator decides.
    common::moto_endpoint();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let e = Env {
        app: common::spawn_app(common::test_config()).await,
        iam: aws_sdk_iam::Client::new(&conf),
        token: common::token("org-aws-b", None),
        standin: None,
    };
    let c = e.connection("act-a10", json!({"mode": "default"})).await;
    let boundary = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": "route53:*", "Resource": "*"}]});
    let arn = e.role(&c, Some(&boundary), &[may_get_role()]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!((status, done["health"].as_str()), (200, Some("degraded")), "{done}");
    let perm = check(&done["report"], "permissions");
    assert_eq!(perm["decidedBy"], "local", "{perm}");
    let missing = perm["missing"].as_object().unwrap();
    assert!(
        missing
            .values()
            .flat_map(|v| v.as_array().unwrap())
            .all(|a| a.as_str().unwrap().starts_with("route53:")),
        "{perm}"
    );
    assert!(
        perm["missing"].to_string().contains("route53:ChangeResourceRecordSets"),
        "{perm}"
    );
    let msg = perm["message"].as_str().unwrap();
    assert!(msg.contains("permissions boundary"), "{msg}");
    assert!(perm["remediation"].as_str().unwrap().contains("boundary"));
}
