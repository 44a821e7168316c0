//! The webhook half of the store contract, on SQLite and DynamoDB (moto):
//! webhooks per tenant, a delivery written once per message, updates
//! conditional on the version, due deliveries across tenants, and the
//! deliveries log newest first in pages.

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
