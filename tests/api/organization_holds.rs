//! The Spot-account hold as an invariant: random sequences of create,
//! connect, assign, rotate, disconnect, offboard, sync, enrollment and time
//! passing, over both stores, and after every step no hold names a
//! connection that is not live (or not of that account), and every Spot
//! account without a live connection is free. A fixed seed keeps CI's runs
//! the same; a failure prints the shrunk sequence.

use crate::common;

use account_connect::domain::{AccountId, ConnectionId, OrganizationId, SpotAccountId};
use account_connect::services::Services;
use account_connect::store::DynStore;
use common::callback::config;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

/// moto's default account: plain connections' roles live there.
const DEFAULT_ACCOUNT: &str = "123456789012";
const CASES: u32 = 10;
const MAX_STEPS: usize = 10;

#[derive(Debug, Clone)]
enum Op {
    /// A plain connection for the pool's Spot account n.
    Create(u8),
    /// Verify and connect the role of the n-th connection (any kind).
    Connect(u8),
    /// The same for the n-th member.
    ConnectMember(u8),
    /// Assign the n-th member the pool's Spot account m.
    Assign(u8, u8),
    Rotate(u8),
    Disconnect(u8),
    DisconnectManagement,
    /// A new member (its instance's enroll).
    Enroll,
    Offboard,
    Sync,
    /// 49 hours: unused external IDs expire.
    Pass,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..3).prop_map(Op::Create),
        2 => any::<u8>().prop_map(Op::Connect),
        3 => any::<u8>().prop_map(Op::ConnectMember),
        2 => (any::<u8>(), 0u8..3).prop_map(|(a, b)| Op::Assign(a, b)),
        1 => any::<u8>().prop_map(Op::Rotate),
        2 => any::<u8>().prop_map(Op::Disconnect),
        1 => Just(Op::DisconnectManagement),
        2 => Just(Op::Enroll),
        1 => Just(Op::Offboard),
        1 => Just(Op::Sync),
        1 => Just(Op::Pass),
    ]
}

/// One case's world: a tenant of its own, an organization for the pool's
/// first account, and every connection the sequence made.
struct Case<'a> {
    app: &'a common::TestApp,
    state: &'a Services,
    store: &'a DynStore,
    iam: &'a aws_sdk_iam::Client,
    tenant: String,
    token: String,
    pool: Vec<String>,
    organization: OrganizationId,
    connections: Vec<String>,
    members: Vec<String>,
}

fn fresh_account() -> String {
    common::organization::fresh_account()
}

/// Creates a role in `account` of moto (the `x-moto-account-id` header) with
/// the connection's trust policy and policies inline; its ARN.
async fn role_for(iam: &aws_sdk_iam::Client, account: &str, c: &Value) -> String {
    let name = format!("Spot-Hold-{}", account_connect::ids::random_token(5));
    let a = account.to_owned();
    let out = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(c["trustPolicy"].to_string())
        .customize()
        .mutate_request(move |req| {
            req.headers_mut().insert("x-moto-account-id", a.clone());
        })
        .send()
        .await
        .unwrap();
    for (i, p) in c["policies"].as_array().unwrap().iter().enumerate() {
        iam.put_role_policy()
            .role_name(&name)
            .policy_name(format!("p{i}"))
            .policy_document(p["document"].to_string())
            .customize()
            .mutate_request({
                let a = account.to_owned();
                move |req| {
                    req.headers_mut().insert("x-moto-account-id", a.clone());
                }
            })
            .send()
            .await
            .unwrap();
    }
    out.role.unwrap().arn
}

impl Case<'_> {
    fn pick(list: &[String], n: u8) -> Option<&String> {
        (!list.is_empty()).then(|| &list[n as usize % list.len()])
    }

    async fn apply(&mut self, op: &Op) {
        let (app, t) = (self.app, self.token.clone());
        match op {
            Op::Create(n) => {
                let body = json!({"accountId": self.pool[*n as usize], "partition": "aws", "permissions": {"mode": "default"}});
                let (status, c) = app.create_connection(&t, &body).await;
                if status == 201 {
                    self.connections.push(c["id"].as_str().unwrap().to_owned());
                }
            }
            Op::Connect(n) | Op::ConnectMember(n) => {
                let list = if matches!(op, Op::Connect(_)) {
                    &self.connections
                } else {
                    &self.members
                };
                let Some(id) = Self::pick(list, *n).cloned() else {
                    return;
                };
                let (_, c) = app.get_connection(&t, &id).await;
                if c["status"] != "pending" && c["status"] != "connected" {
                    return;
                }
                let account = c["awsAccountId"].as_str().unwrap_or(DEFAULT_ACCOUNT).to_owned();
                let arn = role_for(self.iam, &account, &c).await;
                app.connect_role(&t, &id, &arn).await;
            }
            Op::Assign(n, m) => {
                let Some(id) = Self::pick(&self.members, *n).cloned() else {
                    return;
                };
                app.assign_spot_account(&t, &id, &self.pool[*m as usize]).await;
            }
            Op::Rotate(n) => {
                let Some(id) = Self::pick(&self.connections, *n).cloned() else {
                    return;
                };
                app.rotate_external_id(&t, &id).await;
            }
            Op::Disconnect(n) => {
                let Some(id) = Self::pick(&self.connections, *n).cloned() else {
                    return;
                };
                app.disconnect(&t, &id).await;
            }
            Op::DisconnectManagement => {
                let id = self.connections[0].clone();
                app.disconnect(&t, &id).await;
            }
            Op::Enroll => {
                let o = self.store.get_organization(&self.organization).await.unwrap().unwrap();
                let account: AccountId = fresh_account().parse().unwrap();
                if let Ok(m) = self.state.organizations.enroll(&o, &account, "proptest").await {
                    self.connections.push(m.id.as_str().to_owned());
                    self.members.push(m.id.as_str().to_owned());
                }
            }
            Op::Offboard => {
                app.offboard_organization(&t, self.organization.as_str()).await;
            }
            Op::Sync => {
                app.sync_organization(&t, self.organization.as_str()).await;
            }
            Op::Pass => app.clock.advance(49 * 3600),
        }
    }

    /// The invariant, read from the store after a step.
    async fn check(&self, step: &str) -> Result<(), TestCaseError> {
        let store = self.store;
        let now = self.state.connections.now();
        for account in &self.pool {
            let acct: SpotAccountId = account.parse().unwrap();
            let mut live = Vec::new();
            for id in &self.connections {
                let c = store
                    .get_any(&id.parse::<ConnectionId>().unwrap())
                    .await
                    .unwrap()
                    .unwrap();
                if c.is_active(now) && c.spot_account() == Some(&acct) {
                    live.push(c.id.clone());
                }
            }
            let holder = store.account_holder(&self.tenant, &acct, now).await.unwrap();
            if let Some(h) = &holder {
                let c = store.get_any(h).await.unwrap();
                prop_assert!(
                    c.as_ref()
                        .is_some_and(|c| c.is_active(now) && c.spot_account() == Some(&acct)),
                    "after {step}: {account} is held by {h:?}, which is not its live connection: {c:?}"
                );
            }
            prop_assert!(
                live.is_empty() || holder.as_ref().is_some_and(|h| live.contains(h)),
                "after {step}: {account} has live connections {live:?} but the hold names {holder:?}"
            );
            prop_assert!(
                !live.is_empty() || holder.is_none(),
                "after {step}: {account} has no live connection but is held by {holder:?}"
            );
        }
        Ok(())
    }

    /// Every account without a live connection accepts a new one.
    async fn free_accounts_accept(&self) -> Result<(), TestCaseError> {
        let store = self.store;
        let now = self.state.connections.now();
        for account in &self.pool {
            let acct: SpotAccountId = account.parse().unwrap();
            if store.account_holder(&self.tenant, &acct, now).await.unwrap().is_some() {
                continue;
            }
            let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}});
            let (status, c) = self.app.create_connection(&self.token, &body).await;
            prop_assert_eq!(status, 201, "{} is free but refused: {}", account, c);
        }
        Ok(())
    }
}

async fn run_case(
    app: &common::TestApp,
    state: &Services,
    store: &DynStore,
    iam: &aws_sdk_iam::Client,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let tenant = format!("org-h{}", account_connect::ids::random_token(4));
    let token = common::token(&tenant, None);
    let pool: Vec<String> = (0..3)
        .map(|i| format!("act-h{i}{}", account_connect::ids::random_token(3)))
        .collect();
    let body = json!({"accountId": pool[0], "partition": "aws", "permissions": {"mode": "default"},
        "managementAccountId": fresh_account()});
    let (status, o) = app.create_organization(&token, &body).await;
    prop_assert_eq!(status, 201, "{}", o);
    let mut case = Case {
        app,
        state,
        store,
        iam,
        tenant,
        token,
        pool,
        organization: o["id"].as_str().unwrap().parse().unwrap(),
        // The management connection first (DisconnectManagement).
        connections: vec![o["managementConnection"]["id"].as_str().unwrap().to_owned()],
        members: Vec::new(),
    };
    case.check("creating the organization").await?;
    for (i, op) in ops.iter().enumerate() {
        case.apply(op).await;
        case.check(&format!("step {i}: {op:?} of {ops:?}")).await?;
    }
    case.free_accounts_accept().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hold_outlives_its_connection_on_either_store() {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    for kind in ["sqlite", "dynamodb"] {
        let mut c = config(None);
        if kind == "dynamodb" {
            c.store_url = common::dynamo_store_url().await;
        }
        let (app, state, store) = common::spawn_with_store(c).await;
        let runner_config = RunnerConfig {
            cases: CASES,
            failure_persistence: None,
            max_shrink_iters: 64,
            ..RunnerConfig::default()
        };
        let mut runner = TestRunner::new_with_rng(runner_config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::block_in_place(|| {
            runner.run(&proptest::collection::vec(op(), 1..=MAX_STEPS), |ops| {
                handle.block_on(run_case(&app, &state, &store, &iam, &ops))
            })
        });
        if let Err(e) = result {
            panic!("{kind}: {e}");
        }
    }
}
