//! An outage is never a member's state change: a reconciliation during
//! which any read failed (STS for the management role, or Organizations:
//! every call, or only ListChildren after ListAccounts answered) changes no
//! member and sends nothing, whether AWS answers 503 or something that is
//! not AWS answers (an empty 404, a proxy's HTML 403 or 503); the view
//! says the sync failed and why, and keeps the last listing's states. A
//! member's link while STS does not answer leaves it pending, not missing.
//! Through the stand-in in front of moto (tests/aws_standin).

use super::World;
use crate::aws_standin::{Fault, Refusal, Script, StandIn};
use crate::common;
use account_connect::domain::{ConnectionId, Partition};
use account_connect::store::DynStore;
use common::callback::config;
use common::organization::{row, stand_in};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Organizations' reads of a reconciliation.
const ORGANIZATIONS: [&str; 5] = [
    "ListAccounts",
    "ListRoots",
    "ListChildren",
    "DescribeAccount",
    "ListParents",
];

/// Where the outage is.
#[derive(Debug, Clone, Copy)]
enum Reach {
    /// Every call: AssumeRole of the management role fails first.
    Everything,
    /// Every Organizations call; STS answers.
    Organizations,
    /// ListChildren only: ListAccounts answered, the listing is partial.
    ListChildren,
}

fn start_outage(standin: &StandIn, fault: Fault, reach: Reach) {
    standin.with(|s| {
        let failing: &[&str] = match reach {
            Reach::Everything => {
                s.outage = Some(fault);
                return;
            }
            Reach::Organizations => &ORGANIZATIONS,
            Reach::ListChildren => &["ListChildren"],
        };
        s.errors = failing.iter().map(|a| (a.to_string(), (fault, u32::MAX))).collect();
    });
}

fn end_outage(standin: &StandIn) {
    standin.with(|s| {
        s.outage = None;
        s.errors.clear();
    });
}

/// Every outbox item written so far (no dispatcher runs): its connection,
/// sequence and type, and the member change it carries.
async fn outbox(store: &DynStore) -> BTreeSet<(String, u64, &'static str, Option<(String, String)>)> {
    let items = store.undelivered(10_000).await.unwrap();
    items
        .into_iter()
        .map(|i| {
            let member = i
                .member
                .map(|m| (m.previous_state.as_str().to_owned(), m.state.as_str().to_owned()));
            (i.connection_id.as_str().to_owned(), i.sequence, i.kind.as_str(), member)
        })
        .collect()
}

/// Each member connection's version, by id.
async fn versions(store: &DynStore, o: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in o["members"].as_array().unwrap() {
        if let Some(id) = r["connectionId"].as_str() {
            let id: ConnectionId = id.parse().unwrap();
            let c = store.get_any(&id).await.unwrap().unwrap();
            out.insert(id.as_str().to_owned(), c.version);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sync_during_an_outage_changes_no_member_and_sends_nothing() {
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let db = std::env::temp_dir().join(format!("outage-{}.db", account_connect::ids::random_token(6)));
    let mut settings = config(None);
    settings.store_url = format!("sqlite://{}", db.display());
    settings.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    settings.organizations_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let w = World::start_with(settings.clone(), true, None).await;
    // The test's own handle on the service's database, to read the outbox.
    let store = account_connect::store::open(&settings.store_url, &account_connect::app::aws_configs()).unwrap();

    // One member leaves, one is suspended, an account has no instance.
    let missing = stand_in(&["add-account", &w.mgmt, &w.ous[1], "no-instance"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let left = w.accounts[0].0.clone();
    stand_in(&["remove-account", &w.mgmt, &left]);
    let closed = w.accounts[2].0.clone();
    stand_in(&["close-account", &w.mgmt, &closed]);
    let (status, listed) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{listed}");
    let states = |o: &Value| -> Vec<(String, String)> {
        let mut v: Vec<_> = o["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap().to_owned();
                (s("awsAccountId"), s("state"))
            })
            .collect();
        v.sort();
        v
    };
    let mut want = vec![
        (missing.clone(), "missing".to_owned()),
        (left.clone(), "left".to_owned()),
        (closed.clone(), "suspended".to_owned()),
        (w.accounts[1].0.clone(), "connected".to_owned()),
        (w.accounts[3].0.clone(), "connected".to_owned()),
    ];
    want.sort();
    assert_eq!(states(&listed), want, "{listed}");
    assert!(listed["lastReconciliation"].get("error").is_none(), "{listed}");
    assert_eq!(
        listed["lastReconciliation"]["listedAt"], listed["lastReconciliation"]["at"],
        "{listed}"
    );
    // The reconciliation announced what it found: the outbox shows events.
    let before = outbox(&store).await;
    let announced: BTreeSet<_> = before.iter().filter_map(|(_, _, _, m)| m.clone()).collect();
    for change in [("connected", "left"), ("connected", "suspended")] {
        assert!(
            announced.contains(&(change.0.to_owned(), change.1.to_owned())),
            "{change:?} in {before:?}"
        );
    }
    let member_versions = versions(&store, &listed).await;

    for fault in Fault::OUTAGES {
        for reach in [Reach::Everything, Reach::Organizations, Reach::ListChildren] {
            let what = format!("{fault:?} to {reach:?}");
            start_outage(&standin, fault, reach);
            w.app.clock.advance(60);
            let (status, o) = w.app.sync_organization(&w.token, &w.id).await;
            end_outage(&standin);
            assert_eq!(status, 200, "{what}: {o}");
            assert_eq!(
                o["members"], listed["members"],
                "{what}: the last listing's states stand"
            );
            assert_eq!(o["counts"], listed["counts"], "{what}");
            assert_eq!(w.view().await["members"], listed["members"], "{what}");
            assert_eq!(outbox(&store).await, before, "{what}: no event");
            assert_eq!(versions(&store, &o).await, member_versions, "{what}: no member written");
            let rec = &o["lastReconciliation"];
            let error = rec["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: says it failed: {o}"));
            assert!(
                error.contains("Organizations") || error.contains("management role"),
                "{what}: says why: {error}"
            );
            assert_ne!(rec["at"], listed["lastReconciliation"]["at"], "{what}: {rec}");
            assert_eq!(rec["listedAt"], listed["lastReconciliation"]["at"], "{what}: {rec}");
            assert_eq!(
                rec["accounts"], listed["lastReconciliation"]["accounts"],
                "{what}: {rec}"
            );
        }
    }

    // The scheduled re-check reconciles too: with Organizations down, the
    // management connection's check passes and its reconciliation changes nothing.
    start_outage(&standin, Fault::EMPTY_404, Reach::Organizations);
    w.app.clock.advance(60);
    let worker = account_connect::recheck::Worker::for_services(&w.state);
    let options = account_connect::recheck::EnumerateOptions::from_config(&w.state.config);
    let summary = account_connect::recheck::local::run(&worker, &options, 4).await;
    end_outage(&standin);
    assert!(summary.checked >= 1 && summary.broken == 0, "{summary:?}");
    let o = w.view().await;
    assert!(o["lastReconciliation"]["error"].is_string(), "{o}");
    assert_eq!(o["members"], listed["members"]);
    assert_eq!(
        outbox(&store).await,
        before,
        "no event from the re-check's reconciliation"
    );

    // AWS answers again: the same states, nothing announced.
    let (status, again) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{again}");
    assert!(again["lastReconciliation"].get("error").is_none(), "{again}");
    assert_eq!(states(&again), want, "{again}");
    assert_eq!(outbox(&store).await, before, "nothing changed");

    // A member's stack instance links while STS answers its role's
    // AssumeRole with an empty 404: the instance fails with "try again",
    // the member stays pending (not missing), and nothing is announced.
    let late = stand_in(&["add-account", &w.mgmt, &w.ous[0], "late"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its instance (moto has no automatic deployment) makes its role.
    stand_in(&["instances", &w.mgmt, &w.stack_set, &w.ous[0], "us-east-1"]);
    let (_, o) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(
        row(&o, &late)["state"],
        "missing",
        "listed, no instance reported yet: {o}"
    );
    let role = w.role_arn(&late);
    standin.with(|s| {
        s.refuse_assume
            .insert(role.clone(), (Refusal::Answer(Fault::EMPTY_404), u32::MAX))
    });
    let (enroll, link, _) = w.connect(&late, "us-east-1").await;
    standin.with(|s| s.refuse_assume.clear());
    assert_eq!(enroll["Status"], "SUCCESS", "{enroll}");
    assert_eq!(link["Status"], "FAILED", "{link}");
    let reason = link["Reason"].as_str().unwrap();
    assert!(reason.contains("AWS could not be reached"), "{reason}");
    assert!(!reason.to_lowercase().contains("trust relationship"), "{reason}");
    let o = w.view().await;
    assert_eq!(row(&o, &late)["state"], "pending", "{o}");
    let member = row(&o, &late)["connectionId"].as_str().unwrap().to_owned();
    let missed: Vec<_> = outbox(&store)
        .await
        .into_iter()
        .filter(|(id, _, _, m)| *id == member && m.as_ref().is_some_and(|(_, to)| to == "missing"))
        .collect();
    assert_eq!(missed, vec![], "the outage announced no member missing");
    // Re-run, AWS answering: it connects.
    let (_, link, _) = w.connect(&late, "us-east-1").await;
    assert_eq!(link["Status"], "SUCCESS", "{link}");
    assert_eq!(row(&w.view().await, &late)["state"], "connected");
    let _ = std::fs::remove_file(&db);
}
