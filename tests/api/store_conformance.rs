//! One conformance suite, run against both stores: SQLite and DynamoDB (moto).

use crate::common;

use account_connect::app;
use account_connect::domain::{ChangeType, ConnectedStack, Connection, ConnectionId, Event, EventKind, Method, Status};
use account_connect::domain::{ExternalId, ExternalIdPrefix, NewConnection, Partition};
use account_connect::domain::{Health, OutboxItem};
use account_connect::policy::Permissions;
use account_connect::store::{self, Guard, Idempotency, StoreError};

const NOW: i64 = 1_800_000_000;

fn conn(org: &str, account: &str) -> Connection {
    Connection::new_pending(NewConnection {
        id: ConnectionId::generate(),
        org: org.into(),
        account_id: account.parse().unwrap(),
        partition: Partition::Aws,
        method: Method::Manual,
        permissions: Permissions::Default,
        aws_account_id: None,
        external_id: ExternalId::generate(&ExternalIdPrefix::default()),
        organization: None,
        created_by: "tester".into(),
        at: NOW,
        expires_at: NOW + 100,
    })
}

fn ev(c: &Connection, kind: EventKind, at: i64) -> Event {
    Event {
        connection_id: c.id.clone(),
        kind,
        at,
        actor: "tester".into(),
        outcome: "ok".into(),
        detail: None,
    }
}

#[tokio::test]
async fn create_then_read_only_within_the_tenant() {
    for (name, s) in common::both_stores().await {
        let c = conn("org-a", "act-1");
        s.create(&c, &ev(&c, EventKind::Created, NOW), None, NOW).await.unwrap();
        assert_eq!(s.get("org-a", &c.id).await.unwrap().as_ref(), Some(&c), "{name}");
        assert_eq!(
            s.get("org-b", &c.id).await.unwrap(),
            None,
            "{name}: another org must not see it"
        );
        assert_eq!(s.get("org-a", &ConnectionId::generate()).await.unwrap(), None, "{name}");
        let events = s.events(&c.id, None, 10).await.unwrap().items;
        assert_eq!(events.len(), 1, "{name}");
        assert_eq!(events[0].kind, EventKind::Created);
    }
}

#[tokio::test]
async fn an_external_id_is_never_issued_twice_and_a_failed_create_leaves_nothing() {
    for (name, s) in common::both_stores().await {
        let a = conn("org-a", "act-1");
        s.create(&a, &ev(&a, EventKind::Created, NOW), None, NOW).await.unwrap();
        let mut b = conn("org-b", "act-2");
        b.external_id = a.external_id.clone();
        let err = s
            .create(&b, &ev(&b, EventKind::Created, NOW), None, NOW)
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::ExternalIdTaken, "{name}");
        assert_eq!(
            s.get("org-b", &b.id).await.unwrap(),
            None,
            "{name}: half-written connection"
        );
        assert!(
            s.events(&b.id, None, 10).await.unwrap().items.is_empty(),
            "{name}: half-written event"
        );
        assert_eq!(
            s.account_holder("org-b", &b.account_id, NOW).await.unwrap(),
            None,
            "{name}: half-written hold"
        );
    }
}

#[tokio::test]
async fn a_spot_account_has_one_live_connection_until_it_expires() {
    for (name, s) in common::both_stores().await {
        let a = conn("org-a", "act-1");
        s.create(&a, &ev(&a, EventKind::Created, NOW), None, NOW).await.unwrap();
        let b = conn("org-a", "act-1");
        let err = s
            .create(&b, &ev(&b, EventKind::Created, NOW), None, NOW)
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::AccountHeld(a.id.clone()), "{name}");
        // Another org's account of the same name is another account.
        let other = conn("org-b", "act-1");
        s.create(&other, &ev(&other, EventKind::Created, NOW), None, NOW)
            .await
            .unwrap();
        // After a's expiry the account is free again.
        let later = a.expires_at + 1;
        assert_eq!(
            s.account_holder("org-a", &a.account_id, later).await.unwrap(),
            None,
            "{name}"
        );
        let mut c = conn("org-a", "act-1");
        c.expires_at = later + 100;
        s.create(&c, &ev(&c, EventKind::Created, later), None, later)
            .await
            .unwrap();
        assert_eq!(
            s.account_holder("org-a", &a.account_id, later).await.unwrap(),
            Some(c.id.clone()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_idempotency_key_answers_with_the_first_connection() {
    for (name, s) in common::both_stores().await {
        let idem = Idempotency {
            user: "user-1".into(),
            key: "key-1".into(),
            request_hash: "h1".into(),
        };
        let a = conn("org-a", "act-1");
        s.create(&a, &ev(&a, EventKind::Created, NOW), Some(&idem), NOW)
            .await
            .unwrap();
        let b = conn("org-a", "act-2");
        let err = s
            .create(&b, &ev(&b, EventKind::Created, NOW), Some(&idem), NOW)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::IdempotencyKeyUsed {
                request_hash: "h1".into(),
                connection_id: a.id.clone()
            },
            "{name}"
        );
        assert_eq!(s.get("org-a", &b.id).await.unwrap(), None, "{name}");
        // Keys are per tenant.
        let c = conn("org-b", "act-1");
        s.create(&c, &ev(&c, EventKind::Created, NOW), Some(&idem), NOW)
            .await
            .unwrap();
        // Expired keys are forgotten.
        let later = NOW + store::IDEMPOTENCY_TTL_SECS + 1;
        let mut d = conn("org-a", "act-3");
        d.expires_at = later + 100;
        s.create(&d, &ev(&d, EventKind::Created, later), Some(&idem), later)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn updates_are_conditional_on_the_version_and_atomic_with_their_guards() {
    for (name, s) in common::both_stores().await {
        let a = conn("org-a", "act-1");
        s.create(&a, &ev(&a, EventKind::Created, NOW), None, NOW).await.unwrap();
        let mut v2 = a.clone();
        v2.version = 2;
        v2.state = Status::Connected;
        s.update(
            &v2,
            &ev(&v2, EventKind::Verified, NOW + 1),
            &[Guard::HoldAccount { until: i64::MAX }],
            NOW + 1,
        )
        .await
        .unwrap();
        // A writer that read version 1 loses.
        let mut stale = a.clone();
        stale.version = 2;
        stale.state = Status::Disconnected;
        assert_eq!(
            s.update(&stale, &ev(&stale, EventKind::Disconnected, NOW + 2), &[], NOW + 2)
                .await,
            Err(StoreError::Conflict),
            "{name}"
        );
        // A guard that fails undoes the whole change.
        let other = conn("org-b", "act-9");
        s.create(&other, &ev(&other, EventKind::Created, NOW), None, NOW)
            .await
            .unwrap();
        let mut v3 = v2.clone();
        v3.version = 3;
        v3.pending_external_id = Some(other.external_id.clone());
        let err = s
            .update(
                &v3,
                &ev(&v3, EventKind::Rotated, NOW + 3),
                &[Guard::ClaimExternalId(other.external_id.clone())],
                NOW + 3,
            )
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::ExternalIdTaken, "{name}");
        let stored = s.get("org-a", &a.id).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.pending_external_id), (2, None), "{name}");
        assert_eq!(
            s.events(&a.id, None, 10).await.unwrap().items.len(),
            2,
            "{name}: the failed change left an event"
        );
        // Connected holds the account past the pending expiry.
        assert_eq!(
            s.account_holder("org-a", &a.account_id, a.expires_at + 10)
                .await
                .unwrap(),
            Some(a.id.clone()),
            "{name}"
        );
        // Releasing it frees the account.
        let mut v3 = v2.clone();
        v3.version = 3;
        v3.state = Status::Disconnected;
        s.update(
            &v3,
            &ev(&v3, EventKind::Disconnected, NOW + 4),
            &[Guard::ReleaseAccount],
            NOW + 4,
        )
        .await
        .unwrap();
        assert_eq!(
            s.account_holder("org-a", &a.account_id, NOW + 4).await.unwrap(),
            None,
            "{name}"
        );
    }
}

#[tokio::test]
async fn lists_page_through_one_tenant_only() {
    for (name, s) in common::both_stores().await {
        let mut ids = Vec::new();
        for i in 0..5 {
            let c = conn("org-a", &format!("act-{i}"));
            s.create(&c, &ev(&c, EventKind::Created, NOW), None, NOW).await.unwrap();
            ids.push(c.id);
        }
        let noise = conn("org-b", "act-0");
        s.create(&noise, &ev(&noise, EventKind::Created, NOW), None, NOW)
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = s.list("org-a", None, cursor.as_deref(), 2).await.unwrap();
            assert!(page.items.len() <= 2, "{name}");
            seen.extend(page.items.iter().map(|c| c.id.clone()));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        seen.sort();
        ids.sort();
        assert_eq!(seen, ids, "{name}");
        let only = s
            .list("org-a", Some(&"act-3".parse().unwrap()), None, 10)
            .await
            .unwrap();
        assert_eq!(only.items.len(), 1, "{name}");
        assert_eq!(only.items[0].account_id.as_str(), "act-3");
        assert_eq!(s.list("org-c", None, None, 10).await.unwrap().items.len(), 0, "{name}");
    }
}

#[tokio::test]
async fn idempotency_keys_are_scoped_by_user_too() {
    for (name, s) in common::both_stores().await {
        let by = |user: &str, hash: &str| Idempotency {
            user: user.into(),
            key: "shared-key".into(),
            request_hash: hash.into(),
        };
        let a = conn("org-a", "act-1");
        s.create(&a, &ev(&a, EventKind::Created, NOW), Some(&by("alice", "h1")), NOW)
            .await
            .unwrap();
        // Bob's key of the same spelling is his own: neither A's connection nor a refusal.
        let b = conn("org-a", "act-2");
        s.create(&b, &ev(&b, EventKind::Created, NOW), Some(&by("bob", "h2")), NOW)
            .await
            .unwrap_or_else(|e| panic!("{name}: bob's key collided with alice's: {e}"));
        // A user named like a scope separator is still another user.
        let c = conn("org-a", "act-3");
        s.create(
            &c,
            &ev(&c, EventKind::Created, NOW),
            Some(&by("alice#shared-key", "h3")),
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = conn("org-a", "act-4");
        let err = s
            .create(
                &again,
                &ev(&again, EventKind::Created, NOW),
                Some(&by("alice", "h1")),
                NOW,
            )
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::IdempotencyKeyUsed {
                request_hash: "h1".into(),
                connection_id: a.id.clone()
            },
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_disconnect_releases_only_the_hold_the_connection_still_has() {
    for (name, s) in common::both_stores().await {
        // A expires unused; B takes over the Spot account.
        let a = conn("org-a", "act-1");
        s.create(&a, &ev(&a, EventKind::Created, NOW), None, NOW).await.unwrap();
        let later = a.expires_at + 1;
        let mut b = conn("org-a", "act-1");
        b.expires_at = later + 100;
        s.create(&b, &ev(&b, EventKind::Created, later), None, later)
            .await
            .unwrap();
        // Disconnecting A succeeds and leaves B's hold alone.
        let mut gone = a.clone();
        gone.version = 2;
        gone.state = Status::Disconnected;
        s.update(
            &gone,
            &ev(&gone, EventKind::Disconnected, later),
            &[Guard::ReleaseAccount],
            later,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: disconnecting an expired, replaced connection: {e}"));
        assert_eq!(
            s.get("org-a", &a.id).await.unwrap().unwrap().state,
            Status::Disconnected,
            "{name}"
        );
        assert_eq!(
            s.account_holder("org-a", &b.account_id, later).await.unwrap(),
            Some(b.id.clone()),
            "{name}: B's hold must survive A's disconnect"
        );
        // And B's own disconnect frees the account.
        let mut b2 = b.clone();
        b2.version = 2;
        b2.state = Status::Disconnected;
        s.update(
            &b2,
            &ev(&b2, EventKind::Disconnected, later),
            &[Guard::ReleaseAccount],
            later,
        )
        .await
        .unwrap();
        assert_eq!(
            s.account_holder("org-a", &b.account_id, later).await.unwrap(),
            None,
            "{name}"
        );
    }
}

#[tokio::test]
async fn pages_are_exact_and_the_last_one_says_so() {
    for (name, s) in common::both_stores().await {
        for i in 0..4 {
            let c = conn("org-p", &format!("act-{i}"));
            s.create(&c, &ev(&c, EventKind::Created, NOW), None, NOW).await.unwrap();
        }
        let first = s.list("org-p", None, None, 2).await.unwrap();
        assert_eq!(first.items.len(), 2, "{name}");
        let second = s.list("org-p", None, first.next.as_deref(), 2).await.unwrap();
        assert_eq!(
            (second.items.len(), second.next),
            (2, None),
            "{name}: a full last page has no next"
        );
        // An account's own prefix is its start.
        let one: account_connect::domain::SpotAccountId = "act-2".parse().unwrap();
        let from_prefix = s.list("org-p", Some(&one), Some("ACCT#act-2#"), 10).await.unwrap();
        assert_eq!(from_prefix.items.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn a_list_position_outside_the_query_never_reaches_the_database() {
    for (name, s) in common::both_stores().await {
        let a1 = conn("org-a", "act-1");
        let a2 = conn("org-a", "act-2");
        for c in [&a1, &a2] {
            s.create(c, &ev(c, EventKind::Created, NOW), None, NOW).await.unwrap();
        }
        let act1: account_connect::domain::SpotAccountId = "act-1".parse().unwrap();
        let of_a2 = format!("ACCT#act-2#{:012}#{}", a2.created_at, a2.id.as_str());
        for bad in [
            of_a2.as_str(),
            "ACCT#act-1#garbage",
            "ACCT#act-1#",
            "ACCT#act-10#000000000001#con-000000000000000000000000",
            "",
        ] {
            let r = s.list("org-a", Some(&act1), Some(bad), 10).await;
            if bad == "ACCT#act-1#" {
                assert_eq!(r.unwrap().items.len(), 1, "{name}: the prefix is the start");
            } else {
                assert_eq!(r.unwrap_err(), StoreError::OutsideQuery, "{name}: {bad:?}");
            }
        }
        assert_eq!(
            s.list("org-a", None, Some("ACCT#act-1#"), 10).await.unwrap_err(),
            StoreError::OutsideQuery,
            "{name}"
        );
        for bad in ["0", "-1", "x", "EVENT#../../", "CONN"] {
            assert_eq!(
                s.events(&a1.id, Some(bad), 10).await.unwrap_err(),
                StoreError::OutsideQuery,
                "{name}: event position {bad:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_audit_trail_pages_oldest_first() {
    for (name, s) in common::both_stores().await {
        let c = conn("org-a", "act-1");
        s.create(&c, &ev(&c, EventKind::Created, NOW), None, NOW).await.unwrap();
        for i in 1..5 {
            s.append_event(&ev(&c, EventKind::Failed, NOW + i)).await.unwrap();
        }
        let mut sizes = Vec::new();
        let mut times = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = s.events(&c.id, after.as_deref(), 2).await.unwrap();
            sizes.push(page.items.len());
            times.extend(page.items.iter().map(|e| e.at));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(sizes, vec![2, 2, 1], "{name}");
        assert_eq!(times, (0..5).map(|i| NOW + i).collect::<Vec<_>>(), "{name}");
        assert!(s.events(&c.id, None, 1000).await.unwrap().items.len() == 5, "{name}");
    }
}

#[tokio::test]
async fn the_connecting_stack_is_kept_with_the_connection() {
    for (name, s) in common::both_stores().await {
        let c = conn("org-s", "act-1");
        s.create(&c, &ev(&c, EventKind::Created, NOW), None, NOW).await.unwrap();
        let mut connected = c.clone();
        connected.state = Status::Connected;
        connected.stack = Some(ConnectedStack {
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1-2".into(),
            account_id: "123456789012".parse().unwrap(),
        });
        connected.version += 1;
        s.update(&connected, &ev(&connected, EventKind::Verified, NOW + 1), &[], NOW + 1)
            .await
            .unwrap();
        assert_eq!(s.get("org-s", &c.id).await.unwrap(), Some(connected.clone()), "{name}");
        assert_eq!(s.get_any(&c.id).await.unwrap(), Some(connected), "{name}");
    }
}

#[tokio::test]
async fn a_key_is_remembered_once_until_it_expires_by_every_handle_on_the_store() {
    let file = std::env::temp_dir().join(format!("once-{}.db", account_connect::ids::random_token(4)));
    let sqlite = format!("sqlite://{}", file.display());
    let dynamo = common::dynamo_store_url().await;
    // Two handles on each store: two processes (Lambda instances) sharing it.
    let pairs = [
        (
            "sqlite",
            store::open(&sqlite, &app::aws_configs()).unwrap(),
            store::open(&sqlite, &app::aws_configs()).unwrap(),
        ),
        (
            "dynamodb",
            store::open(&dynamo, &app::aws_configs()).unwrap(),
            store::open(&dynamo, &app::aws_configs()).unwrap(),
        ),
    ];
    for (name, a, b) in pairs {
        let key = format!("relay#aws-us-gov#{}", account_connect::ids::random_token(8));
        let until = NOW + 301;
        assert!(a.remember_once(&key, until, NOW).await.unwrap(), "{name}: first time");
        assert!(!a.remember_once(&key, until, NOW).await.unwrap(), "{name}: again");
        assert!(
            !b.remember_once(&key, until, NOW + 300).await.unwrap(),
            "{name}: another handle, before it expires"
        );
        // A later call does not move the first one's expiry.
        assert!(!b.remember_once(&key, until + 1000, NOW + 300).await.unwrap(), "{name}");
        let other = format!("{key}-other");
        assert!(
            b.remember_once(&other, until, NOW).await.unwrap(),
            "{name}: another key"
        );
        // Expired at `until`: remembered anew, then once again.
        assert!(
            b.remember_once(&key, until + 301, until).await.unwrap(),
            "{name}: expired"
        );
        assert!(!a.remember_once(&key, until + 301, until).await.unwrap(), "{name}");
        // A lease (a slot of a tenant's share): forgotten by its holder,
        // it is free at once; a stale holder's forget (an earlier `until`)
        // leaves the new holder's lease alone.
        let lease = format!("share#org-{}#0", account_connect::ids::random_token(6));
        assert!(a.remember_once(&lease, NOW + 100, NOW).await.unwrap(), "{name}");
        a.forget(&lease, NOW + 100).await.unwrap();
        assert!(b.remember_once(&lease, NOW + 200, NOW).await.unwrap(), "{name}: freed");
        a.forget(&lease, NOW + 100).await.unwrap();
        assert!(
            !a.remember_once(&lease, NOW + 300, NOW).await.unwrap(),
            "{name}: still held"
        );
        b.forget(&lease, NOW + 200).await.unwrap();
        b.forget(&lease, NOW + 200).await.unwrap();
        assert!(
            a.remember_once(&lease, NOW + 300, NOW).await.unwrap(),
            "{name}: freed again"
        );
    }
    remove_sqlite(&file);
}

#[tokio::test]
async fn racing_handles_remember_a_key_for_one_of_them_only() {
    let dynamo = common::dynamo_store_url().await;
    let file = std::env::temp_dir().join(format!("once-{}.db", account_connect::ids::random_token(4)));
    let sqlite = format!("sqlite://{}", file.display());
    for (name, url) in [("sqlite", sqlite.as_str()), ("dynamodb", dynamo.as_str())] {
        let key = format!("relay#aws-cn#{}", account_connect::ids::random_token(8));
        let handles: Vec<_> = (0..8).map(|_| store::open(url, &app::aws_configs()).unwrap()).collect();
        let firsts = futures::future::join_all(handles.iter().map(|s| s.remember_once(&key, NOW + 301, NOW))).await;
        let won = firsts.into_iter().map(Result::unwrap).filter(|first| *first).count();
        assert_eq!(won, 1, "{name}");
    }
    remove_sqlite(&file);
}

#[tokio::test]
async fn leases_and_remembered_keys_behave_the_same_on_both_stores() {
    let file = std::env::temp_dir().join(format!("lease-{}.db", account_connect::ids::random_token(4)));
    let sqlite = format!("sqlite://{}", file.display());
    let dynamo = common::dynamo_store_url().await;
    for (name, url) in [("sqlite", sqlite.as_str()), ("dynamodb", dynamo.as_str())] {
        let (a, b) = (
            store::open(url, &app::aws_configs()).unwrap(),
            store::open(url, &app::aws_configs()).unwrap(),
        );
        // is_remembered reads what remember_once wrote, until it expires.
        let key = format!("limit#x#{}", account_connect::ids::random_token(8));
        assert!(!b.is_remembered(&key, NOW).await.unwrap(), "{name}: never written");
        assert!(a.remember_once(&key, NOW + 60, NOW).await.unwrap());
        assert!(
            b.is_remembered(&key, NOW + 59).await.unwrap(),
            "{name}: another handle sees it"
        );
        assert!(!b.is_remembered(&key, NOW + 60).await.unwrap(), "{name}: expired");

        let lease = format!("verify#{}", account_connect::ids::random_token(8));
        assert!(
            a.take_lease(&lease, "one", NOW + 100, NOW).await.unwrap(),
            "{name}: free"
        );
        assert!(
            !b.take_lease(&lease, "two", NOW + 100, NOW + 1).await.unwrap(),
            "{name}: held"
        );
        assert!(
            a.take_lease(&lease, "one", NOW + 120, NOW + 2).await.unwrap(),
            "{name}: its holder renews"
        );
        // Another holder's release lets go of nothing.
        b.release_lease(&lease, "two").await.unwrap();
        assert!(
            !b.take_lease(&lease, "two", NOW + 100, NOW + 3).await.unwrap(),
            "{name}: still held"
        );
        a.release_lease(&lease, "one").await.unwrap();
        assert!(
            b.take_lease(&lease, "two", NOW + 100, NOW + 4).await.unwrap(),
            "{name}: released"
        );
        // Expired: taken by another; the old holder's late release leaves it.
        assert!(
            a.take_lease(&lease, "three", NOW + 300, NOW + 100).await.unwrap(),
            "{name}: expired"
        );
        b.release_lease(&lease, "two").await.unwrap();
        assert!(
            !b.take_lease(&lease, "four", NOW + 300, NOW + 101).await.unwrap(),
            "{name}: three's"
        );
        // Racing handles: one takes it.
        let race = format!("verify#{}", account_connect::ids::random_token(8));
        let handles: Vec<_> = (0..6).map(|_| store::open(url, &app::aws_configs()).unwrap()).collect();
        let holders: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
        let took = futures::future::join_all(
            handles
                .iter()
                .zip(&holders)
                .map(|(s, h)| s.take_lease(&race, h, NOW + 100, NOW)),
        )
        .await;
        assert_eq!(took.into_iter().filter(|r| *r.as_ref().unwrap()).count(), 1, "{name}");
    }
    remove_sqlite(&file);
}

/// An SQLite file and its write-ahead log.
fn remove_sqlite(file: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

/// The outbox item a service would write for the change from `old` to `new`.
fn publish(old: &Connection, new: &Connection, at: i64) -> Guard {
    Guard::Publish(Box::new(OutboxItem::between(old, new, at).expect("a state change")))
}

#[tokio::test]
async fn outbox_items_are_written_with_the_change_or_not_at_all_and_delivered_once_marked() {
    for (name, s) in common::both_stores().await {
        let a = conn("org-a", "act-1");
        s.create(&a, &ev(&a, EventKind::Created, NOW), None, NOW).await.unwrap();
        assert!(
            s.undelivered(10).await.unwrap().is_empty(),
            "{name}: a create is no state change"
        );
        let mut v2 = a.clone();
        v2.version = 2;
        v2.state = Status::Connected;
        v2.health = Some(Health::Healthy);
        s.update(
            &v2,
            &ev(&v2, EventKind::Verified, NOW + 1),
            &[publish(&a, &v2, NOW + 1)],
            NOW + 1,
        )
        .await
        .unwrap();
        // A stale writer's change, and its event, are refused together.
        let mut stale = a.clone();
        stale.version = 2;
        stale.state = Status::Disconnected;
        let refused = s
            .update(
                &stale,
                &ev(&stale, EventKind::Disconnected, NOW + 2),
                &[publish(&a, &stale, NOW + 2)],
                NOW + 2,
            )
            .await;
        assert_eq!(refused, Err(StoreError::Conflict), "{name}");
        // A guard that fails undoes the event too.
        let other = conn("org-b", "act-9");
        s.create(&other, &ev(&other, EventKind::Created, NOW), None, NOW)
            .await
            .unwrap();
        let mut v3 = v2.clone();
        v3.version = 3;
        v3.health = Some(Health::Degraded);
        let refused = s
            .update(
                &v3,
                &ev(&v3, EventKind::Checked, NOW + 3),
                &[
                    Guard::ClaimExternalId(other.external_id.clone()),
                    publish(&v2, &v3, NOW + 3),
                ],
                NOW + 3,
            )
            .await;
        assert_eq!(refused, Err(StoreError::ExternalIdTaken), "{name}");
        let pending = s.undelivered(10).await.unwrap();
        assert_eq!(pending.len(), 1, "{name}: {pending:?}");
        assert_eq!(
            (pending[0].kind, pending[0].sequence),
            (ChangeType::Connected, 2),
            "{name}"
        );
        assert_eq!(
            pending[0].connection, v2,
            "{name}: the connection as the change left it"
        );
        // The next change's item comes after it, with the old health.
        s.update(
            &v3,
            &ev(&v3, EventKind::Checked, NOW + 4),
            &[publish(&v2, &v3, NOW + 4)],
            NOW + 4,
        )
        .await
        .unwrap();
        let pending = s.undelivered(10).await.unwrap();
        let seen: Vec<_> = pending
            .iter()
            .map(|i| (i.kind, i.sequence, i.previous_health))
            .collect();
        assert_eq!(
            seen,
            [
                (ChangeType::Connected, 2, None),
                (ChangeType::HealthChanged, 3, Some(Health::Healthy))
            ],
            "{name}"
        );
        assert_eq!(s.undelivered(1).await.unwrap().len(), 1, "{name}: the limit");
        // Marked delivered, an item is no longer answered; marking again is no error.
        s.mark_delivered(&a.id, 2, NOW + 5).await.unwrap();
        s.mark_delivered(&a.id, 2, NOW + 6).await.unwrap();
        s.mark_delivered(&ConnectionId::generate(), 7, NOW + 6).await.unwrap();
        let left: Vec<u64> = s.undelivered(10).await.unwrap().iter().map(|i| i.sequence).collect();
        assert_eq!(left, [3], "{name}");
        s.mark_delivered(&a.id, 3, NOW + 7).await.unwrap();
        assert!(s.undelivered(10).await.unwrap().is_empty(), "{name}");
        // The audit trail and the re-check's index are not disturbed by the outbox.
        assert_eq!(s.events(&a.id, None, 10).await.unwrap().items.len(), 3, "{name}");
        let connected = s.list_connected(None, 10).await.unwrap().items;
        assert_eq!(connected.iter().map(|c| &c.id).collect::<Vec<_>>(), [&a.id], "{name}");
    }
}
