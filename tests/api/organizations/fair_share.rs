//! An organization's member links take its tenant's callback share, as its
//! Creates do (docs/design.md, "Fair shares"): one organization flooding links for
//! member roles that never answer AssumeRole holds at most its share of the
//! callback's slots, its excess is deferred to the callback queue (moto's
//! SQS) and answered later, and another tenant's Create runs at once. The
//! callback's reserved concurrency is played by a semaphore around the real
//! entry point; STS refusals by the stand-in.

use super::World;
use crate::aws_standin::{Refusal, Script, StandIn};
use crate::common;
use crate::events::{sqs_records, take_messages};
use account_connect::callback::{self, Responder};
use account_connect::domain::Partition;
use aws_lambda_events::event::sqs::SqsEvent;
use common::callback::{config, create, invoke_in_slot, stack_in_moto, template, token_of, Message};
use common::organization::{play, OrgMessage, ENROLL, LINK};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The callback's slots in this test (its reserved concurrency).
const SLOTS: usize = 2;
/// How long a link for a member role STS refuses holds a slot.
const BUDGET_SECS: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organization_flooding_member_links_holds_only_its_share_and_another_tenant_is_not_held_up() {
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
    // Tenant "org-o": its organization, the management stack connected.
    let w = World::start_with(cfg, false, None).await;

    // As many of its members as the callback has slots enroll from their
    // own instances; STS refuses their roles for good.
    let mut links = Vec::new();
    for (i, (account, _)) in w.accounts.iter().take(SLOTS).enumerate() {
        let stack = w.genuine(account, "us-east-1", "");
        let url = w.rx.url();
        let e = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack)).await;
        assert_eq!(e["Status"], "SUCCESS", "{e}");
        let role = w.role_arn(account);
        standin
            .script
            .lock()
            .unwrap()
            .refuse_assume
            .insert(role.clone(), (Refusal::AccessDenied, u32::MAX));
        let url = format!("{}/a{i}", w.rx.base);
        let text = OrgMessage {
            role: Some(&role),
            ..w.msg("Create", LINK, &url, &stack)
        }
        .text();
        links.push((role, url, text));
    }
    // Another tenant: an automatic connection whose stack made its role.
    let tag = account_connect::ids::random_token(3);
    let tb = common::token(&format!("org-calm-{tag}"), None);
    let c = create(&w.app, &tb, "act-calm", json!({"mode": "default"})).await;
    let b_id = c["id"].as_str().unwrap().to_owned();
    let b_tpl = template(&w.app, &tb, &b_id).await;
    let (b_stack, b_role) = stack_in_moto(&b_tpl, &format!("spotinst-iam-stack-calm-{tag}"));
    let b_url = format!("{}/b", w.rx.base);

    let slots = Arc::new(Semaphore::new(SLOTS));
    let mut a_runs = Vec::new();
    for (_, _, text) in &links {
        let (state, slots, text) = (w.state.clone(), slots.clone(), text.clone());
        a_runs.push(tokio::spawn(async move { invoke_in_slot(&state, &slots, text).await }));
    }
    // B is sent once one of A's links waits on STS.
    let waiting = Instant::now() + Duration::from_secs(BUDGET_SECS / 2);
    loop {
        let assumed = {
            let s = standin.script.lock().unwrap();
            s.log
                .iter()
                .any(|c| c.action == "AssumeRole" && links.iter().any(|(role, ..)| c.role_arn.as_deref() == Some(role)))
        };
        assert!(Instant::now() < waiting, "A's links never reached STS");
        if assumed {
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
        token: &token_of(&b_tpl),
    }
    .text();
    let started = Instant::now();
    invoke_in_slot(&w.state, &slots, b_text).await;
    let b_took = started.elapsed();

    // B is connected, answered while A's link still waits: nothing of A's
    // has been answered yet.
    let hits = w.rx.take();
    let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["/b"], "B waited behind A's links ({b_took:?})");
    assert_eq!(hits[0].json()["Status"], "SUCCESS", "{}", hits[0].json());

    // Within its share A ran one link; the other was deferred, its
    // invocation ended at once, and the queue's worker answers it later.
    for run in a_runs {
        run.await.unwrap();
    }
    let answered = w.rx.take();
    assert_eq!(
        answered.len(),
        1,
        "{:?}",
        answered.iter().map(|h| &h.path).collect::<Vec<_>>()
    );
    assert_eq!(answered[0].json()["Status"], "FAILED", "{}", answered[0].json());
    let mut later = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while later.is_empty() && Instant::now() < deadline {
        let batch: SqsEvent =
            serde_json::from_value(sqs_records(&take_messages(&sqs, &queue).await, "callback")).unwrap();
        if !batch.records.is_empty() {
            let failures = callback::handle_deferred(&w.state, &Responder::new(&w.state.config), batch).await;
            assert!(failures.batch_item_failures.is_empty());
        }
        later = w.rx.take();
    }
    assert_eq!(later.len(), 1, "the deferred link was not answered");
    assert_ne!(later[0].path, answered[0].path, "each link answered once");
    assert_eq!(later[0].json()["Status"], "FAILED", "{}", later[0].json());
}
