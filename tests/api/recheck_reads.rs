//! What a verification and a re-check read from the customer's account,
//! through the stand-in in front of moto (tests/aws_standin), which logs
//! every call with its session and when it arrived and was answered: a
//! first verification in three levels of calls where the policy is at v1
//! and four where it is not (or v1 may not be read), a re-check of an
//! unchanged role in three with five calls; every change to a policy, inline policy,
//! trust policy or boundary seen by the next check; IAM's simulator asked
//! again only when what it was asked about moved or a week passed, also
//! for a role that refused it; and new TCP
//! connections at the pool's warm-up while AWS answers 4xx and 5xx.

use crate::aws_standin::{sequential_levels, Call, Fault, Script, Simulator, StandIn};
use crate::common::{self, check};
use account_connect::domain::{ConnectionId, Event, EventKind, Partition, Permissions};
use account_connect::recheck::{local, EnumerateOptions, Worker};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const ACCOUNT: &str = "123456789012"; // moto's account
const DAY: i64 = 86_400;

struct Env {
    app: common::TestApp,
    state: account_connect::services::Services,
    store: account_connect::store::DynStore,
    iam: aws_sdk_iam::Client,
    token: String,
    org: String,
    standin: StandIn,
}

/// Every call waits this long at the stand-in, so calls made side by side
/// overlap there and calls made one after another do not.
const CALL_DELAY: Duration = Duration::from_millis(100);

/// The app with its STS and IAM endpoints at a fresh stand-in whose
/// simulator answers whole pages, as IAM does.
async fn env(script: Script) -> Env {
    let standin = StandIn::start(
        &common::moto_endpoint(),
        Script {
            simulate_page: Some(1000),
            ..script
        },
    )
    .await;
    let mut config = common::test_config();
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
        org,
        standin,
    }
}

/// AWS refuses iam:GetRole to Spot's default policy, which lacks it.
fn default_policy_script() -> Script {
    Script {
        deny_get_role: true,
        simulator: Simulator::Answers(HashMap::new()),
        delay_all: Some(CALL_DELAY),
        ..Script::default()
    }
}

fn id_of(c: &Value) -> &str {
    c["id"].as_str().unwrap()
}

fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

/// Calls per action.
fn actions(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.action.clone()).or_default() += 1;
    }
    out
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

impl Env {
    async fn create(&self, permissions: Value) -> Value {
        let account = format!("act-{}", account_connect::ids::random_token(4));
        let body =
            json!({"accountId": account, "partition": "aws", "permissions": permissions, "awsAccountId": ACCOUNT});
        let (status, c) = self.app.create_connection(&self.token, &body).await;
        assert_eq!(status, 201, "{c}");
        c
    }

    /// A connection connected to a fresh role with its policies (and
    /// `extra` ones) attached as managed policies; the connection as
    /// connected, the role's ARN, the policies' ARNs.
    async fn connected(&self, permissions: Value, extra: &[Value]) -> (Value, String, Vec<String>) {
        let c = self.create(permissions).await;
        let (arn, mut policies) = common::connection_role(&self.iam, &c).await;
        for (i, doc) in extra.iter().enumerate() {
            let name = format!("{}-extra{i}", role_name(&arn));
            policies.push(common::attach_managed_policy(&self.iam, role_name(&arn), &name, doc).await);
        }
        let (status, body) = self.app.connect_role(&self.token, id_of(&c), &arn).await;
        assert_eq!(status, 200, "{body}");
        (body, arn, policies)
    }

    /// Re-checks through the API; the connection as recorded.
    async fn recheck(&self, c: &Value) -> Value {
        let (status, body) = self.app.recheck(&self.token, id_of(c)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    fn calls(&self, action: &str) -> u32 {
        self.standin.with(|s| s.calls.get(action).copied().unwrap_or(0))
    }

    /// Writes the connection back with other permissions, as a catalog
    /// release or another writer would.
    async fn set_permissions(&self, c: &Value, permissions: Permissions) {
        let id: ConnectionId = id_of(c).parse().unwrap();
        let store = &self.store;
        let mut conn = store.get(&self.org, &id).await.unwrap().unwrap();
        conn.permissions = permissions;
        conn.version += 1;
        let now = self.state.connections.now();
        let ev = Event::new(now, &conn, EventKind::Checked, "test", "ok", None);
        store.update(&conn, &ev, &[], now).await.unwrap();
    }
}

fn allow_get_role() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]})
}

fn deny(action: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": action, "Resource": "*"}]})
}

#[tokio::test]
async fn a_verification_reads_in_three_levels_and_an_unchanged_recheck_in_three_with_five_calls() {
    let e = env(default_policy_script()).await;
    let (c, arn, policies) = e.connected(json!({"mode": "default"}), &[]).await;
    assert_eq!(policies.len(), 1, "Spot's default policy is one managed policy");
    assert_eq!(c["health"], "healthy", "{c}");

    // AssumeRole; the policy lists, GetRole (refused: the default policy
    // lacks it) and the simulation side by side; GetPolicy, v1's document
    // (the new policy's default) and ListRoles side by side.
    let first = e.standin.last_session(&arn);
    let first_actions = actions(&first);
    assert_eq!(sequential_levels(&first), 3, "{first_actions:?}\n{first:#?}");
    for (action, n) in [
        ("AssumeRole", 1),
        ("ListAttachedRolePolicies", 1),
        ("ListRolePolicies", 1),
        ("GetRole", 1),
        ("ListRoles", 1),
        ("GetPolicy", 1),
        ("GetPolicyVersion", 1),
    ] {
        assert_eq!(first_actions.get(action), Some(&n), "{action}: {first_actions:?}");
    }
    assert!(first_actions["SimulatePrincipalPolicy"] >= 1, "{first_actions:?}");
    let decided = check(&c["report"], "permissions").clone();
    assert_eq!(decided["decidedBy"], "iam_simulation_and_local", "{decided}");

    // Nothing moved: the lists, the trust policy through ListRoles (GetRole
    // is not tried again), each policy's default version. No document, no
    // simulation.
    e.app.clock.advance(2);
    let again = e.recheck(&c).await;
    assert_eq!(again["health"], "healthy", "{again}");
    let second = e.standin.last_session(&arn);
    assert_eq!(
        actions(&second),
        counts(&[
            ("AssumeRole", 1),
            ("GetPolicy", 1),
            ("ListAttachedRolePolicies", 1),
            ("ListRolePolicies", 1),
            ("ListRoles", 1),
        ]),
        "{second:#?}"
    );
    assert_eq!(sequential_levels(&second), 3, "{second:#?}");
    // The verdict stands as IAM's simulator and the documents gave it.
    assert_eq!(check(&again["report"], "permissions"), &decided);
    assert_ne!(again["checkedAt"], c["checkedAt"], "{again}");

    // And stays so.
    let third = e.recheck(&c).await;
    assert_eq!(
        actions(&e.standin.last_session(&arn)).values().sum::<usize>(),
        5,
        "{third}"
    );
}

/// The role may not call the simulator, so the documents decide: reading
/// another version than the default would show in the verdict.
fn documents_decide_script() -> Script {
    Script {
        deny_get_role: true,
        simulator: Simulator::AccessDenied,
        delay_all: Some(CALL_DELAY),
        ..Script::default()
    }
}

/// A role with Spot's default policy whose v1 lacks an action the
/// selection needs and whose v2 and v3 hold it all, v3 the default (v1
/// deleted where `delete_v1`), first verified: its session's calls and the
/// connection as connected.
async fn first_check_of_a_v3_policy(e: &Env, delete_v1: bool) -> (Vec<Call>, Value) {
    let c = e.create(json!({"mode": "default"})).await;
    let name = format!("Spot-Role-{}", account_connect::ids::random_token(5));
    let arn = common::create_role(&e.iam, &name, c["trustPolicy"].to_string()).await;
    let whole = &c["policies"][0]["document"];
    let lacking = common::without_action(whole, &common::some_action(&c));
    let policy = common::attach_managed_policy(&e.iam, &name, &format!("{name}-p0"), &lacking).await;
    common::new_policy_version(&e.iam, &policy, whole).await;
    common::new_policy_version(&e.iam, &policy, whole).await;
    if delete_v1 {
        e.iam
            .delete_policy_version()
            .policy_arn(&policy)
            .version_id("v1")
            .send()
            .await
            .unwrap();
    }
    let (status, body) = e.app.connect_role(&e.token, id_of(&c), &arn).await;
    assert_eq!(status, 200, "{body}");
    (e.standin.last_session(&arn), body)
}

#[tokio::test]
async fn a_first_verification_of_a_policy_at_v3_takes_a_fourth_level_and_reads_v3() {
    for delete_v1 in [false, true] {
        let e = env(documents_decide_script()).await;
        let (calls, c) = first_check_of_a_v3_policy(&e, delete_v1).await;
        // v1's document (or NoSuchEntity) came beside GetPolicy; the
        // default, v3, is read after it.
        assert_eq!(
            c["health"], "healthy",
            "delete_v1 {delete_v1}: v3 holds every action: {c}"
        );
        assert_eq!(sequential_levels(&calls), 4, "delete_v1 {delete_v1}: {calls:#?}");
        assert_eq!(actions(&calls)["GetPolicyVersion"], 2, "{:?}", actions(&calls));
        assert_eq!(check(&c["report"], "permissions")["status"], "passed", "{c}");
    }
}

#[tokio::test]
async fn a_refused_guess_of_v1_falls_back_to_the_fourth_level_with_the_same_verdict() {
    let mut script = documents_decide_script();
    // The guess is the session's first GetPolicyVersion: AWS refuses it once.
    script
        .errors
        .insert("GetPolicyVersion".to_owned(), (Fault::ACCESS_DENIED, 1));
    let e = env(script).await;
    let (c, arn, _) = e.connected(json!({"mode": "default"}), &[]).await;
    let calls = e.standin.last_session(&arn);
    assert_eq!(c["health"], "healthy", "{c}");
    assert_eq!(sequential_levels(&calls), 4, "{calls:#?}");
    assert_eq!(actions(&calls)["GetPolicyVersion"], 2, "{:?}", actions(&calls));

    // Without the refusal, the same role's policy is read in three levels.
    let e = env(documents_decide_script()).await;
    let (again, arn, _) = e.connected(json!({"mode": "default"}), &[]).await;
    let calls = e.standin.last_session(&arn);
    assert_eq!(sequential_levels(&calls), 3, "{calls:#?}");
    assert_eq!(
        check(&again["report"], "permissions"),
        check(&c["report"], "permissions"),
        "the guess changes no verdict"
    );
}

#[tokio::test]
async fn every_change_to_the_role_is_seen_by_the_next_check() {
    // The role may not call the simulator: our evaluator decides from the
    // documents, and the boundary (GetRole allowed) counts.
    let e = env(Script {
        simulator: Simulator::AccessDenied,
        simulate_page: Some(1000),
        ..Script::default()
    })
    .await;
    let (c, arn, policies) = e
        .connected(json!({"mode": "default"}), &[allow_get_role(), deny("iam:CreateUser")])
        .await;
    assert_eq!(c["health"], "healthy", "{c}");
    let (main, guard) = (&policies[0], &policies[2]);
    let name = role_name(&arn);
    let action = common::some_action(&c);
    let steady = |e: &Env| {
        let a = actions(&e.standin.last_session(&arn));
        assert!(
            !a.contains_key("GetPolicyVersion") && !a.contains_key("SimulatePrincipalPolicy"),
            "nothing moved, nothing read again: {a:?}"
        );
    };
    let missing = |conn: &Value| check(&conn["report"], "permissions")["missing"].to_string();
    assert_eq!(e.recheck(&c).await["health"], "healthy");
    steady(&e);

    // 1. A managed policy's new default version, and back.
    let (v1, doc) = common::policy_document(&e.iam, main).await;
    common::new_policy_version(&e.iam, main, &common::without_action(&doc, &action)).await;
    let now = e.recheck(&c).await;
    assert_eq!(now["health"], "degraded", "{now}");
    assert!(missing(&now).contains(&action), "{now}");
    e.iam
        .set_default_policy_version()
        .policy_arn(main)
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(e.recheck(&c).await["health"], "healthy");
    assert_eq!(e.recheck(&c).await["health"], "healthy");
    steady(&e);

    // 2. An inline policy added, then its document edited under the same name.
    let put_inline = |doc: Value| {
        e.iam
            .put_role_policy()
            .role_name(name)
            .policy_name("customer-inline")
            .policy_document(doc.to_string())
            .send()
    };
    put_inline(deny(&action)).await.unwrap();
    let now = e.recheck(&c).await;
    assert_eq!(now["health"], "degraded", "{now}");
    assert!(missing(&now).contains(&action), "{now}");
    put_inline(deny("iam:CreateUser")).await.unwrap();
    assert_eq!(e.recheck(&c).await["health"], "healthy");
    put_inline(deny(&action)).await.unwrap();
    assert_eq!(e.recheck(&c).await["health"], "degraded", "an edited inline document");
    e.iam
        .delete_role_policy()
        .role_name(name)
        .policy_name("customer-inline")
        .send()
        .await
        .unwrap();
    assert_eq!(e.recheck(&c).await["health"], "healthy");

    // 3. The trust policy loses the external ID, and gets it back.
    let trust = c["trustPolicy"].clone();
    let mut open = trust.clone();
    open["Statement"][0].as_object_mut().unwrap().remove("Condition");
    let set_trust = |doc: &Value| {
        e.iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(doc.to_string())
            .send()
    };
    set_trust(&open).await.unwrap();
    let now = e.recheck(&c).await;
    assert_eq!(now["health"], "broken", "{now}");
    assert_eq!(check(&now["report"], "trust_policy")["status"], "failed", "{now}");
    set_trust(&trust).await.unwrap();
    assert_eq!(e.recheck(&c).await["health"], "healthy");

    // 4. A permissions boundary set, then its policy edited.
    let boundary = e
        .iam
        .create_policy()
        .policy_name(format!("{name}-boundary"))
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": action, "Resource": "*"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap();
    e.iam
        .put_role_permissions_boundary()
        .role_name(name)
        .permissions_boundary(&boundary)
        .send()
        .await
        .unwrap();
    let now = e.recheck(&c).await;
    assert_eq!(now["health"], "degraded", "{now}");
    assert!(missing(&now).contains(&action), "{now}");
    assert!(
        check(&now["report"], "permissions")["message"]
            .as_str()
            .unwrap()
            .contains("boundary"),
        "{now}"
    );
    let everything =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    common::new_policy_version(&e.iam, &boundary, &everything).await;
    assert_eq!(e.recheck(&c).await["health"], "healthy", "the boundary's new version");
    e.iam
        .delete_role_permissions_boundary()
        .role_name(name)
        .send()
        .await
        .unwrap();
    assert_eq!(e.recheck(&c).await["health"], "healthy");

    // 5. A policy deleted and created again under the same name: the same
    // ARN and version id (v1), another policy.
    let guard_name = guard.rsplit('/').next().unwrap();
    e.iam
        .detach_role_policy()
        .role_name(name)
        .policy_arn(guard)
        .send()
        .await
        .unwrap();
    e.iam.delete_policy().policy_arn(guard).send().await.unwrap();
    let again = common::attach_managed_policy(&e.iam, name, guard_name, &deny(&action)).await;
    assert_eq!(&again, guard);
    let now = e.recheck(&c).await;
    assert_eq!(now["health"], "degraded", "{now}");
    assert!(missing(&now).contains(&action), "{now}");
}

#[tokio::test]
async fn the_simulator_is_asked_again_only_when_its_question_moved_or_a_week_passed() {
    let e = env(default_policy_script()).await;
    let products = |p: &[&str]| Permissions::Custom {
        products: p.iter().map(|s| s.to_string()).collect(),
        integrations: vec![],
    };
    let (c, _, _) = e
        .connected(
            json!({"mode": "custom", "products": ["overview-dashboard"], "integrations": []}),
            &[],
        )
        .await;
    let asked = |e: &Env| e.calls("SimulatePrincipalPolicy");
    let at_connect = asked(&e);
    assert!(at_connect >= 1);

    e.recheck(&c).await;
    assert_eq!(asked(&e), at_connect, "nothing moved");
    e.app.clock.advance(6 * DAY);
    e.recheck(&c).await;
    assert_eq!(asked(&e), at_connect, "six days on, the answer stands");
    e.app.clock.advance(2 * DAY);
    let now = e.recheck(&c).await;
    let after_a_week = asked(&e);
    assert!(after_a_week > at_connect, "a week on, asked again: {now}");
    e.recheck(&c).await;
    assert_eq!(asked(&e), after_a_week);

    // The selection requires other actions: asked about them.
    e.set_permissions(&c, products(&["overview-dashboard", "spot-storage"]))
        .await;
    e.recheck(&c).await;
    let after_actions = asked(&e);
    assert!(after_actions > after_a_week);
    e.recheck(&c).await;
    assert_eq!(asked(&e), after_actions);
}

#[tokio::test]
async fn a_role_that_refused_the_simulator_is_asked_again_when_its_policies_change_or_a_week_on() {
    let e = env(Script {
        simulator: Simulator::AccessDenied,
        deny_get_role: true,
        ..Script::default()
    })
    .await;
    let (c, _, policies) = e.connected(json!({"mode": "default"}), &[]).await;
    assert_eq!(check(&c["report"], "permissions")["decidedBy"], "local", "{c}");
    let asked = |e: &Env| e.calls("SimulatePrincipalPolicy");
    let at_connect = asked(&e);
    assert!(at_connect >= 1);

    e.recheck(&c).await;
    e.app.clock.advance(6 * DAY);
    let now = e.recheck(&c).await;
    assert_eq!(
        asked(&e),
        at_connect,
        "refused, the policies are the same, six days on: {now}"
    );
    assert_eq!(check(&now["report"], "permissions")["decidedBy"], "local", "{now}");
    // Guardrails change without a version the role shows: a week on, asked again.
    e.app.clock.advance(2 * DAY);
    e.recheck(&c).await;
    let after_a_week = asked(&e);
    assert!(after_a_week > at_connect, "a week after the refusal: asked again");
    e.recheck(&c).await;
    assert_eq!(asked(&e), after_a_week, "refused again: the next week waits");
    let at_connect = after_a_week;

    let (_, doc) = common::policy_document(&e.iam, &policies[0]).await;
    common::new_policy_version(&e.iam, &policies[0], &doc).await;
    let now = e.recheck(&c).await;
    assert!(asked(&e) > at_connect, "the policy changed: asked again: {now}");
    assert_eq!(now["health"], "healthy", "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_connections_stay_at_the_pools_warm_up_while_aws_answers_errors() {
    let e = env(Script {
        delay_all: Some(Duration::from_millis(20)),
        ..default_policy_script()
    })
    .await;
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(e.connected(json!({"mode": "default"}), &[]).await.0);
    }
    let worker = Worker::new(e.state.connections.clone());
    let opts = EnumerateOptions::from_config(&e.state.config);
    for round in 0..3 {
        // A week on in every other round: the documents are read and the
        // simulation is due again.
        let full = round % 2 == 1;
        e.app.clock.advance(if full { 8 * DAY } else { 2 });
        // 5xx (retried by the SDK, or backed off), throttling, refusals (GetRole).
        e.standin.with(|s| {
            s.errors = HashMap::from([
                ("AssumeRole".to_owned(), (Fault::UNAVAILABLE, 2)),
                ("ListAttachedRolePolicies".to_owned(), (Fault::INTERNAL, 3)),
                ("ListRolePolicies".to_owned(), (Fault::UNAVAILABLE, 3)),
                ("GetPolicy".to_owned(), (Fault::INTERNAL, 3)),
                ("ListRoles".to_owned(), (Fault::INTERNAL, 2)),
            ]);
            if full {
                s.errors.insert("GetPolicyVersion".to_owned(), (Fault::UNAVAILABLE, 2));
                s.errors
                    .insert("SimulatePrincipalPolicy".to_owned(), (Fault::THROTTLING, 2));
            }
        });
        let s = local::run(&worker, &opts, 2).await;
        assert_eq!(
            s.broken + s.errors + s.timed_out,
            0,
            "AWS's errors break no role: {s:?}"
        );
        assert!(s.checked + s.inconclusive == 4, "{s:?}");
        let left: Vec<(String, u32)> = e.standin.with(|s| {
            s.errors
                .iter()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(a, (_, n))| (a.clone(), *n))
                .collect()
        });
        assert!(left.is_empty(), "every error was answered in round {round}: {left:?}");
    }
    let (connections, peak) = (e.standin.connections(), e.standin.peak_in_flight());
    assert!(
        connections * 2 <= peak * 3,
        "{connections} TCP connections for at most {peak} calls in flight"
    );
}

#[tokio::test]
async fn a_server_error_says_nothing_about_the_role() {
    let e = env(default_policy_script()).await;
    let (c, _, _) = e.connected(json!({"mode": "default"}), &[]).await;
    // Both attempts the SDK makes at GetPolicy: AWS's trouble, not the role's.
    e.standin
        .with(|s| s.errors.insert("GetPolicy".to_owned(), (Fault::INTERNAL, 2)));
    e.app.clock.advance(2);
    let now = e.recheck(&c).await;
    assert_eq!(now["health"], "healthy", "{now}");
    assert_eq!(now["checkedAt"], c["checkedAt"], "inconclusive: {now}");
    let (_, events) = e.app.events(&e.token, id_of(&c), "").await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"], "inconclusive", "{last}");
    // The next check reads everything it could not then.
    e.app.clock.advance(2);
    let now = e.recheck(&c).await;
    assert_eq!(now["health"], "healthy", "{now}");
    assert_ne!(now["checkedAt"], c["checkedAt"], "{now}");
}
