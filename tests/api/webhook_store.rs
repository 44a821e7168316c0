//! The webhook half of the store contract, on SQLite and DynamoDB (moto):
//! webhooks per tenant (at most 20, among concurrent creations too), a
//! delivery written once per webhook and message however late it comes
//! again, found by its message id and resent, updates conditional on the
//! version, due deliveries across tenants, and the deliveries log newest
//! first in pages. And what each store adds: DynamoDB counts a tenant whose
//! webhooks predate the count; SQLite opens a file of the last release (its
//! deliveries claim their messages) and keeps 10,000 finished deliveries
//! per webhook.

use crate::common;
use account_connect::domain::{Attempt, AttemptResult, Delivery, Webhook, WebhookId};
use account_connect::store::StoreError;

const NOW: i64 = 1_800_000_000;

fn hook(org: &str, at: i64) -> Webhook {
    Webhook::new(
        org,
        "tester",
        "https://partner.example.com/hook".parse().unwrap(),
        None,
        None,
        at,
    )
}

#[tokio::test]
async fn webhooks_belong_to_their_tenant_and_change_by_version() {
    for (name, s) in common::both_stores().await {
        let (a1, a2, b) = (hook("org-a", NOW), hook("org-a", NOW + 1), hook("org-b", NOW));
        for h in [&a1, &a2, &b] {
            s.create_webhook(h).await.unwrap();
        }
        assert_eq!(
            s.create_webhook(&a1).await,
            Err(StoreError::Conflict),
            "{name}: an id is new"
        );
        let listed: Vec<WebhookId> = s
            .list_webhooks("org-a", 20)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(listed, vec![a1.id.clone(), a2.id.clone()], "{name}");
        assert_eq!(s.get_webhook("org-b", &a1.id).await.unwrap(), None, "{name}");

        let mut changed = a1.clone();
        changed.version += 1;
        changed.consecutive_failures = 3;
        s.update_webhook(&changed).await.unwrap();
        assert_eq!(
            s.update_webhook(&changed).await,
            Err(StoreError::Conflict),
            "{name}: stale version"
        );
        assert_eq!(s.get_webhook("org-a", &a1.id).await.unwrap(), Some(changed), "{name}");

        assert!(!s.delete_webhook("org-b", &a1.id).await.unwrap(), "{name}: not b's");
        assert!(s.delete_webhook("org-a", &a1.id).await.unwrap(), "{name}");
        assert!(!s.delete_webhook("org-a", &a1.id).await.unwrap(), "{name}: gone");
    }
}

#[tokio::test]
async fn deliveries_are_written_once_found_when_due_and_paged_newest_first() {
    for (name, s) in common::both_stores().await {
        let (a, b) = (hook("org-a", NOW), hook("org-b", NOW));
        let d =
            |h: &Webhook, n: i64| Delivery::new(h, format!("msg_{n}"), "connection.connected", "{}".into(), NOW + n);
        assert!(s.enqueue_delivery(&d(&a, 1)).await.unwrap(), "{name}");
        assert!(
            !s.enqueue_delivery(&d(&a, 1)).await.unwrap(),
            "{name}: the same message again"
        );
        for n in 2..=5 {
            s.enqueue_delivery(&d(&a, n)).await.unwrap();
        }
        s.enqueue_delivery(&d(&b, 3)).await.unwrap();

        // Due at NOW + 3: a's first three and b's, soonest first.
        let due: Vec<(String, String)> = s
            .due_deliveries(NOW + 3, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.org, d.message_id))
            .collect();
        assert_eq!(due.len(), 4, "{name}: {due:?}");
        assert_eq!(due[0], ("org-a".into(), "msg_1".into()), "{name}");

        // Leased ahead, then done: no longer due.
        let mut first = s.get_delivery(&a.id, &d(&a, 1).position()).await.unwrap().unwrap();
        first.version += 1;
        first.next_attempt_at = Some(NOW + 100);
        s.update_delivery(&first).await.unwrap();
        assert_eq!(
            s.update_delivery(&first).await,
            Err(StoreError::Conflict),
            "{name}: stale version"
        );
        let attempt = Attempt {
            at: NOW + 3,
            status: Some(204),
            latency_ms: 12,
            error: None,
        };
        first.record(attempt, AttemptResult::Succeeded, None, 1.0);
        s.update_delivery(&first).await.unwrap();
        let due = s.due_deliveries(NOW + 3, 100).await.unwrap();
        assert!(due.iter().all(|x| x.message_id != "msg_1"), "{name}: {due:?}");

        // Newest first, two at a time, a's only.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s.deliveries(&a.id, after.as_deref(), 2).await.unwrap();
            seen.extend(page.items.into_iter().map(|d| d.message_id));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, ["msg_5", "msg_4", "msg_3", "msg_2", "msg_1"], "{name}");
        assert_eq!(
            s.deliveries(&a.id, Some("not-a-position"), 2).await.err(),
            Some(StoreError::OutsideQuery),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_message_has_one_delivery_per_webhook_however_late_it_is_fanned_out_again() {
    for (name, s) in common::both_stores().await {
        let (a, b) = (hook("org-a", NOW), hook("org-a", NOW));
        let d = |h: &Webhook, at: i64| Delivery::new(h, "msg_x_7".into(), "connection.connected", "{}".into(), at);
        assert!(s.enqueue_delivery(&d(&a, NOW)).await.unwrap(), "{name}");
        // The same outbox item fanned out again an hour and a day later
        // (a crash before its mark, a replayed stream batch): nothing new.
        for later in [NOW + 3600, NOW + 86_400] {
            assert!(
                !s.enqueue_delivery(&d(&a, later)).await.unwrap(),
                "{name}: fanned out again at {later}"
            );
        }
        assert!(
            s.enqueue_delivery(&d(&b, NOW + 5)).await.unwrap(),
            "{name}: another webhook"
        );
        let log = s.deliveries(&a.id, None, 10).await.unwrap().items;
        assert_eq!(log.len(), 1, "{name}: {log:?}");
        assert_eq!(log[0].created_at, NOW, "{name}: the first one stays");

        // Found by its message id (what the retry route names).
        let found = s.delivery_by_message(&a.id, "msg_x_7").await.unwrap().unwrap();
        assert_eq!(found, log[0], "{name}");
        assert_eq!(s.delivery_by_message(&a.id, "msg_other").await.unwrap(), None, "{name}");
        assert_eq!(
            s.delivery_by_message(&b.id, "msg_x_7")
                .await
                .unwrap()
                .unwrap()
                .webhook_id,
            b.id,
            "{name}"
        );

        // Failed, then sent again: pending and due at once, conditional on the version.
        let mut failed = found.clone();
        failed.abandon("the webhook is disabled", NOW + 10);
        s.update_delivery(&failed).await.unwrap();
        let mut resent = failed.clone();
        resent.resend(NOW + 20);
        s.resend_delivery(&resent).await.unwrap();
        assert_eq!(
            s.resend_delivery(&resent).await,
            Err(StoreError::Conflict),
            "{name}: stale version"
        );
        let due = s.due_deliveries(NOW + 20, 10).await.unwrap();
        assert!(
            due.iter()
                .any(|x| x.webhook_id == a.id && x.message_id == "msg_x_7" && x.attempts == 0),
            "{name}: {due:?}"
        );
        assert_eq!(
            s.get_delivery(&a.id, &resent.position()).await.unwrap(),
            Some(resent),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_holds_a_tenant_to_twenty_webhooks_under_concurrent_creations() {
    use account_connect::store::MAX_WEBHOOKS;
    for (name, s) in common::both_stores().await {
        let hooks: Vec<Webhook> = (0..30).map(|i| hook("org-a", NOW + i)).collect();
        let created = futures::future::join_all(hooks.iter().map(|h| s.create_webhook(h))).await;
        let taken = created.iter().filter(|r| *r == &Ok(true)).count();
        let refused = created.iter().filter(|r| *r == &Ok(false)).count();
        assert_eq!(
            (taken, refused),
            (MAX_WEBHOOKS, 30 - MAX_WEBHOOKS),
            "{name}: {created:?}"
        );
        let listed = s.list_webhooks("org-a", 100).await.unwrap();
        assert_eq!(listed.len(), MAX_WEBHOOKS, "{name}");

        // A deletion frees a place, once; other tenants count their own.
        assert!(s.delete_webhook("org-a", &listed[0].id).await.unwrap(), "{name}");
        assert!(!s.delete_webhook("org-a", &listed[0].id).await.unwrap(), "{name}: gone");
        assert_eq!(s.create_webhook(&hook("org-a", NOW)).await, Ok(true), "{name}");
        assert_eq!(s.create_webhook(&hook("org-a", NOW)).await, Ok(false), "{name}");
        assert_eq!(s.create_webhook(&hook("org-b", NOW)).await, Ok(true), "{name}");
        assert_eq!(
            s.list_webhooks("org-a", 100).await.unwrap().len(),
            MAX_WEBHOOKS,
            "{name}"
        );
    }
}

#[tokio::test]
async fn dynamodb_counts_a_tenant_whose_webhooks_predate_the_count() {
    let url = common::dynamo_store_url().await;
    let table = url.strip_prefix("dynamodb://").unwrap().to_owned();
    let s = common::open_store(&url).await;
    for i in 0..3 {
        assert_eq!(s.create_webhook(&hook("org-old", NOW + i)).await, Ok(true));
    }
    // As the last release left it: webhooks, no count.
    let ddb = aws_sdk_dynamodb::Client::new(&crate::events::sdk().await);
    let key = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    ddb.delete_item()
        .table_name(&table)
        .key("pk", key("HOOKS#org-old"))
        .key("sk", key("COUNT"))
        .send()
        .await
        .unwrap();
    let mut taken = 0;
    for i in 0..30 {
        if s.create_webhook(&hook("org-old", NOW + 10 + i)).await.unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 17, "counted from the three it had");
    assert_eq!(s.list_webhooks("org-old", 100).await.unwrap().len(), 20);
}

/// The webhook tables as the last release created them.
const LAST_RELEASE_SCHEMA: &str = "
CREATE TABLE webhooks (
    org TEXT NOT NULL, id TEXT NOT NULL, created_at INTEGER NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (org, id));
CREATE TABLE webhook_deliveries (
    webhook_id TEXT NOT NULL, position TEXT NOT NULL, due INTEGER, created_at INTEGER NOT NULL,
    version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (webhook_id, position));
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due) WHERE due IS NOT NULL;
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at);
";

fn insert_raw(db: &rusqlite::Connection, d: &Delivery) {
    let due = (d.state == account_connect::domain::DeliveryState::Pending)
        .then_some(d.next_attempt_at)
        .flatten();
    db.execute(
        "INSERT INTO webhook_deliveries (webhook_id, position, due, created_at, version, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![
            d.webhook_id.as_str(),
            d.position(),
            due,
            d.created_at,
            d.version as i64,
            serde_json::to_string(d).unwrap()
        ],
    )
    .unwrap();
}

#[tokio::test]
async fn an_sqlite_file_of_the_last_release_opens_with_its_deliveries_claimed() {
    let path = std::env::temp_dir().join(format!("old-{}.db", account_connect::ids::random_token(6)));
    let a = hook("org-a", NOW);
    let old = Delivery::new(&a, "msg_old_1".into(), "connection.connected", "{}".into(), NOW);
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(LAST_RELEASE_SCHEMA).unwrap();
        insert_raw(&db, &old);
    }
    let url = format!("sqlite://{}", path.display());
    let aws = account_connect::app::aws_configs();
    for _ in 0..2 {
        // Opened twice: the claims are made once.
        let s = account_connect::store::open(&url, &aws).unwrap();
        let again = Delivery::new(&a, "msg_old_1".into(), "connection.connected", "{}".into(), NOW + 600);
        assert!(
            !s.enqueue_delivery(&again).await.unwrap(),
            "the stored delivery claims its message"
        );
        assert_eq!(
            s.delivery_by_message(&a.id, "msg_old_1").await.unwrap(),
            Some(old.clone())
        );
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn sqlite_keeps_the_newest_ten_thousand_finished_deliveries_of_a_webhook() {
    use account_connect::store::MAX_DELIVERIES_PER_WEBHOOK as MAX;
    let path = std::env::temp_dir().join(format!("cap-{}.db", account_connect::ids::random_token(6)));
    let url = format!("sqlite://{}", path.display());
    let aws = account_connect::app::aws_configs();
    let s = account_connect::store::open(&url, &aws).unwrap();
    let (a, b) = (hook("org-a", NOW), hook("org-a", NOW));
    let finished = |h: &Webhook, n: i64| {
        let mut d = Delivery::new(h, format!("msg_{n}"), "connection.connected", "{}".into(), NOW + n);
        d.abandon("done", NOW + n);
        d
    };
    {
        // The oldest still pending, then MAX finished: written directly, fast.
        let db = rusqlite::Connection::open(&path).unwrap();
        let tx = db.unchecked_transaction().unwrap();
        insert_raw(
            &tx,
            &Delivery::new(&a, "msg_pending".into(), "connection.connected", "{}".into(), NOW),
        );
        for n in 1..=MAX as i64 {
            insert_raw(&tx, &finished(&a, n));
        }
        insert_raw(&tx, &finished(&b, 1));
        tx.commit().unwrap();
    }
    assert!(s.enqueue_delivery(&finished(&a, MAX as i64 + 1)).await.unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    let wa = a.id.as_str();
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '{wa}' AND due IS NULL"
        )),
        MAX as i64,
        "the newest finished ones"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '{wa}' AND position LIKE '%#msg_1'"
        )),
        0,
        "the oldest finished one went"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '{wa}' AND due IS NOT NULL"
        )),
        1,
        "a pending one stays until it is finished"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = '{}'",
            b.id.as_str()
        )),
        1,
        "another webhook's are its own"
    );
    let _ = std::fs::remove_file(&path);
}
