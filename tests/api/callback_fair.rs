//! Fair shares of the callback (docs/design.md, "Fair shares"): one organization
//! flooding Creates for roles that never answer AssumeRole holds at most its
//! share of the callback's slots; its excess is deferred to the callback
//! queue (moto's SQS) and answered later, and another organization's Create
//! runs at once. The callback's reserved concurrency is played by a
//! semaphore around the real entry point; STS refusals by the stand-in.

use crate::aws_standin::{Refusal, Script, StandIn};
use crate::common;
use crate::events::{sqs_records, take_messages};
use account_connect::callback::{self, Responder};
use account_connect::domain::Partition;
use aws_lambda_events::event::sqs::SqsEvent;
use common::callback::{config, create, invoke_in_slot, stack_in_moto, template, token_of, Message, Receiver};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The callback's slots in this test (its reserved concurrency).
const SLOTS: usize = 2;
/// The propagation budget: how long a Create for a missing role holds a slot.
const BUDGET_SECS: u64 = 10;

/// A connection of `org` and its callback token.
async fn connection(app: &common::TestApp, t: &str, account: &str) -> (String, Value) {
    let c = create(app, t, account, json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let tpl = template(app, t, &id).await;
    (id, tpl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_flooding_creates_for_missing_roles_holds_only_its_share_and_another_tenant_is_not_held_up() {
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let queue = sqs
        .create_queue()
        .queue_name(format!("callback-{}", account_connect::ids::random_token(6)))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut cfg = config(None);
    cfg.callback_propagation_secs = BUDGET_SECS;
    cfg.callback_tenant_share = 1;
    cfg.callback_queue_url = Some(queue.clone());
    cfg.callback_defer_secs = 0;
    cfg.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    cfg.iam_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let (app, state) = common::spawn_with_state(cfg).await;
    let rx = Receiver::start().await;
    let tag = account_connect::ids::random_token(3);

    // Tenant A: as many Creates as the callback has slots, each for a role
    // STS refuses for good (it does not exist).
    let ta = common::token(&format!("org-flood-{tag}"), None);
    let mut flood = Vec::new();
    for i in 0..SLOTS {
        let (id, tpl) = connection(&app, &ta, &format!("act-fa{i}")).await;
        let role = format!("arn:aws:iam::123456789012:role/Missing-{tag}-{i}");
        standin
            .script
            .lock()
            .unwrap()
            .refuse_assume
            .insert(role.clone(), (Refusal::AccessDenied, u32::MAX));
        let stack = format!(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/spotinst-iam-stack-fa{i}/3f1c6a20-c3a4-11f0-9d2e-0affd41e6b3{i}"
        );
        flood.push((id, role, token_of(&tpl), stack, format!("{}/a{i}", rx.base)));
    }
    // Tenant B: a stack that made its role.
    let tb = common::token(&format!("org-calm-{tag}"), None);
    let (b_id, b_tpl) = connection(&app, &tb, "act-calm").await;
    let (b_stack, b_role) = stack_in_moto(&b_tpl, &format!("spotinst-iam-stack-calm-{tag}"));
    let b_url = format!("{}/b", rx.base);
    let b_token = token_of(&b_tpl);

    let slots = Arc::new(Semaphore::new(SLOTS));
    let started = Instant::now();
    let mut a_runs = Vec::new();
    for (id, role, tok, stack, url) in &flood {
        let text = Message {
            request_type: "Create",
            url,
            stack_id: stack,
            request_id: &format!("req-{id}"),
            physical: None,
            connection: id,
            role,
            token: tok,
        }
        .text();
        let (state, slots) = (state.clone(), slots.clone());
        a_runs.push(tokio::spawn(async move { invoke_in_slot(&state, &slots, text).await }));
    }
    // A's messages reach the slots first: B is sent once A's verification
    // is waiting on STS (a fixed pause was not enough with the whole suite
    // running beside this test).
    let waiting = Instant::now() + Duration::from_secs(BUDGET_SECS / 2);
    loop {
        let a_assumed = {
            let s = standin.script.lock().unwrap();
            s.log.iter().any(|c| {
                c.action == "AssumeRole" && flood.iter().any(|(_, role, ..)| c.role_arn.as_deref() == Some(role))
            })
        };
        assert!(Instant::now() < waiting, "A's Creates never reached STS");
        if a_assumed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_text = Message {
        request_type: "Create",
        url: &b_url,
        stack_id: &b_stack,
        request_id: "req-calm",
        physical: None,
        connection: &b_id,
        role: &b_role,
        token: &b_token,
    }
    .text();
    invoke_in_slot(&state, &slots, b_text).await;
    let b_took = started.elapsed();

    // B is connected, and answered while A's verification still runs:
    // nothing of A's has been answered yet.
    let hits = rx.take();
    let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["/b"], "B waited behind A ({b_took:?})");
    assert_eq!(hits[0].json()["Status"], "SUCCESS", "{}", hits[0].json());
    // (Whether B's STS calls also overlapped A's in time is not asserted:
    // with the whole suite on one moto, B's store calls alone can outlast
    // A's budget. That nothing of A's was answered before B is the point.)

    // Within its share A ran one Create; the other was deferred, and its
    // invocation ended at once.
    for run in a_runs {
        run.await.unwrap();
    }
    let answered = rx.take();
    assert_eq!(
        answered.len(),
        1,
        "{:?}",
        answered.iter().map(|h| &h.path).collect::<Vec<_>>()
    );
    assert_eq!(answered[0].json()["Status"], "FAILED");
    let ran = answered[0].path.clone();
    let (_, deferred_role, ..) = flood
        .iter()
        .find(|f| !f.4.ends_with(&ran))
        .expect("one of A's was deferred");
    let (_, ran_role, ..) = flood.iter().find(|f| f.4.ends_with(&ran)).unwrap();
    let log = standin.script.lock().unwrap().log.clone();
    let ran_end = log
        .iter()
        .filter(|c| c.role_arn.as_deref() == Some(ran_role.as_str()))
        .map(|c| c.answered)
        .max()
        .unwrap();

    // The queue's worker answers the deferred Create later, after its own
    // verification: never two of A's at once.
    let mut deferred_answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while deferred_answers.is_empty() && Instant::now() < deadline {
        let batch: SqsEvent =
            serde_json::from_value(sqs_records(&take_messages(&sqs, &queue).await, "callback")).unwrap();
        if !batch.records.is_empty() {
            let failures = callback::handle_deferred(&state, &Responder::new(&state.config), batch).await;
            assert!(failures.batch_item_failures.is_empty());
        }
        deferred_answers = rx.take();
    }
    assert_eq!(deferred_answers.len(), 1, "the deferred Create was not answered");
    let answer = deferred_answers[0].json();
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert!(
        answer["Reason"].as_str().unwrap().contains("could not connect"),
        "{answer}"
    );
    let log = standin.script.lock().unwrap().log.clone();
    let deferred_calls: Vec<_> = log
        .iter()
        .filter(|c| c.action == "AssumeRole" && c.role_arn.as_deref() == Some(deferred_role.as_str()))
        .collect();
    assert!(!deferred_calls.is_empty());
    assert!(
        deferred_calls.iter().all(|c| c.arrived >= ran_end),
        "A's deferred Create ran beside its first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_create_over_its_organizations_share_is_deferred_and_connects_later() {
    use crate::relay::{config as relay_config, gov_connection, relay_post, stack_role, RELAY_KEY, STACK};
    use account_connect::automatic::relay::sign;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let queue = sqs
        .create_queue()
        .queue_name(format!("callback-{}", account_connect::ids::random_token(6)))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut cfg = relay_config(true).await;
    cfg.callback_tenant_share = 1;
    cfg.callback_queue_url = Some(queue.clone());
    cfg.callback_defer_secs = 0;
    let (app, state) = common::spawn_with_state(cfg).await;
    let rx = Receiver::start().await;
    let org = format!("org-relay-flood-{}", account_connect::ids::random_token(3));
    let t = common::token(&org, None);
    let c = gov_connection(&app, &t, "act-relayfair").await;
    let id = c["id"].as_str().unwrap();
    let tpl = template(&app, &t, id).await;
    let role = stack_role(&c).await;
    let url = rx.url();
    let msg = Message {
        request_type: "Create",
        url: &url,
        stack_id: STACK,
        request_id: "req-relay-fair",
        physical: None,
        connection: id,
        role: &role,
        token: &token_of(&tpl),
    }
    .text();

    // The organization's one slot is held (its Create in flight on another
    // instance): the relayed Create is handled without a verification,
    // answered to the relay at once and not yet to CloudFormation.
    let held = state
        .connections
        .take_share(&org, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a free slot");
    let now = app.clock.now();
    let sig = sign(RELAY_KEY.as_bytes(), now, msg.as_bytes());
    let (status, _, body) = relay_post(&app, &now.to_string(), &sig, &msg).await;
    assert_eq!((status, &body["status"]), (200, &json!("handled")), "{body}");
    assert!(rx.take().is_empty(), "answered while over its share");
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "pending");

    // Its slot freed, the queue's worker connects it.
    state.connections.release_share(held).await;
    let batch: SqsEvent = serde_json::from_value(sqs_records(&take_messages(&sqs, &queue).await, "callback")).unwrap();
    assert_eq!(batch.records.len(), 1, "the deferred Create is on the queue");
    let failures = callback::handle_deferred(&state, &Responder::new(&state.config), batch).await;
    assert!(failures.batch_item_failures.is_empty());
    let answer = rx.answer();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "connected");
}

#[test]
fn the_callback_drains_its_queue_at_a_bounded_concurrency_and_only_it_may_send_to_it() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let r = &t["Resources"];
    let f = &r["CallbackFunction"]["Properties"];
    let source = &f["Events"]["DeferredRequests"]["Properties"];
    assert_eq!(source["Queue"], json!({"Fn::GetAtt": ["CallbackQueue", "Arn"]}));
    assert_eq!(
        source["ScalingConfig"]["MaximumConcurrency"],
        json!({"Ref": "CallbackQueueMaxConcurrency"})
    );
    assert_eq!(source["BatchSize"], 1);
    let p = &t["Parameters"];
    assert!(
        p["CallbackQueueMaxConcurrency"]["Default"].as_u64() < p["CallbackReservedConcurrency"]["Default"].as_u64(),
        "the queue's worker leaves slots to new stacks"
    );
    assert!(
        p["CallbackTenantShare"]["Default"].as_u64() < p["RelayReservedConcurrency"]["Default"].as_u64(),
        "one tenant leaves slots to others"
    );
    // Both entries that run Creates take the share and may defer; only they
    // may send to the queue.
    for name in ["CallbackFunction", "RelayIntakeFunction"] {
        let props = &r[name]["Properties"];
        let env = &props["Environment"]["Variables"];
        assert_eq!(
            env["ACCOUNT_CONNECT_CALLBACK_QUEUE_URL"],
            json!({"Ref": "CallbackQueue"}),
            "{name}"
        );
        assert_eq!(
            env["ACCOUNT_CONNECT_CALLBACK_TENANT_SHARE"],
            json!({"Ref": "CallbackTenantShare"}),
            "{name}"
        );
    }
    let senders: Vec<&str> = r
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, res)| {
            res["Properties"]["Policies"].to_string().contains("sqs:SendMessage")
                && res["Properties"]["Policies"].to_string().contains("CallbackQueue")
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(senders, ["CallbackFunction", "RelayIntakeFunction"]);
}
