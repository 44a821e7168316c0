//! No index key is every tenant's (DynamoDB on moto; SQLite has no
//! partitions): connections, outbox items and deliveries of different
//! owners land under different `gsi2` shard keys, the index holds keys
//! only, and each reader finds items in every shard, merged in order.

use crate::common;
use account_connect::app;
use account_connect::domain::Webhook;
use account_connect::domain::{Connection, ConnectionId, Delivery, DeliveryState, Event, EventKind, Status};
use account_connect::domain::{ExternalId, ExternalIdPrefix, Health, Method, NewConnection, OutboxItem, Partition};
use account_connect::policy::Permissions;
use account_connect::store::{self, Guard};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};

const NOW: i64 = 1_800_000_000;
/// The store's shard count and hash (src/store/dynamo/shards.rs), written
/// out again: a key function that stops spreading fails here.
const SHARDS: u32 = 16;

fn shard_of(owner: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(SHARDS)) as u32
}

/// Made until every shard has one, that one per shard, in shard order.
fn one_per_shard<T>(mut make: impl FnMut() -> T, owner: impl Fn(&T) -> String) -> Vec<T> {
    let mut by_shard = BTreeMap::new();
    while by_shard.len() < SHARDS as usize {
        let t = make();
        by_shard.entry(shard_of(&owner(&t))).or_insert(t);
    }
    by_shard.into_values().collect()
}

fn conn() -> Connection {
    Connection::new_pending(NewConnection {
        id: ConnectionId::generate(),
        org: format!("org-{}", account_connect::ids::random_token(4)),
        account_id: "act-1".parse().unwrap(),
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

/// The `gsi2` entries under one key, straight from the index.
async fn entries(ddb: &aws_sdk_dynamodb::Client, table: &str, key: &str) -> Vec<HashMap<String, AttributeValue>> {
    ddb.query()
        .table_name(table)
        .index_name("gsi2")
        .key_condition_expression("gsi2pk = :k")
        .expression_attribute_values(":k", AttributeValue::S(key.into()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

/// Exactly one entry under each shard of `kind`, keys only.
async fn one_entry_per_shard(ddb: &aws_sdk_dynamodb::Client, table: &str, kind: &str) {
    for n in 0..SHARDS {
        let e = entries(ddb, table, &format!("{kind}#{n}")).await;
        assert_eq!(e.len(), 1, "{kind}#{n}: {e:?}");
        let mut attrs: Vec<&str> = e[0].keys().map(String::as_str).collect();
        attrs.sort();
        assert_eq!(attrs, ["gsi2pk", "gsi2sk", "pk", "sk"], "{kind}#{n}: keys only");
    }
    assert!(
        entries(ddb, table, kind).await.is_empty(),
        "nothing under the unsharded {kind}"
    );
}

#[tokio::test]
async fn connections_outbox_items_and_deliveries_spread_over_every_shard_and_are_all_read() {
    let url = common::dynamo_store_url().await;
    let table = url.strip_prefix("dynamodb://").unwrap().to_owned();
    let s = store::open(&url, &app::aws_configs()).unwrap();
    common::moto_endpoint();
    let ddb = aws_sdk_dynamodb::Client::new(&aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await);

    // One tenant's connection per shard, connected with its outbox item;
    // the later the shard, the older its change.
    let conns = one_per_shard(conn, |c| c.id.as_str().to_owned());
    for (i, c) in conns.iter().enumerate() {
        s.create(c, &ev(c, EventKind::Created, NOW), None, NOW).await.unwrap();
        let mut v2 = c.clone();
        v2.version = 2;
        v2.state = Status::Connected;
        v2.health = Some(Health::Healthy);
        let at = NOW + 100 - i as i64;
        let change = OutboxItem::between(c, &v2, at).unwrap();
        s.update(
            &v2,
            &ev(&v2, EventKind::Verified, at),
            &[Guard::Publish(Box::new(change))],
            at,
        )
        .await
        .unwrap();
    }
    one_entry_per_shard(&ddb, &table, "CONNECTED").await;
    one_entry_per_shard(&ddb, &table, "OUTBOX").await;

    // The fleet enumerator's pages: every shard's, in id order, five at a time.
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = s.list_connected(cursor.as_deref(), 5).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|c| c.id.as_str().to_owned()));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let mut ids: Vec<String> = conns.iter().map(|c| c.id.as_str().to_owned()).collect();
    ids.sort();
    assert_eq!((seen, pages), (ids, 4));

    // The outbox oldest first across shards, and its limit.
    let at = |items: Vec<OutboxItem>| items.iter().map(|o| o.at - NOW).collect::<Vec<_>>();
    assert_eq!(at(s.undelivered(100).await.unwrap()), (85..=100).collect::<Vec<_>>());
    assert_eq!(at(s.undelivered(3).await.unwrap()), [85, 86, 87]);
    s.mark_delivered(&conns[15].id, 2, NOW + 200).await.unwrap();
    assert_eq!(
        at(s.undelivered(2).await.unwrap()),
        [86, 87],
        "delivered: out of every read"
    );

    // One webhook's deliveries fall on every shard (by message), due the
    // sooner the later their shard.
    let hook = Webhook::new(
        "org-a",
        "tester",
        "https://partner.example.com/hook".parse().unwrap(),
        None,
        None,
        NOW,
    );
    let message = || {
        let id = format!("msg_{}", account_connect::ids::random_token(6));
        Delivery::new(&hook, id, "connection.connected", "{}".into(), NOW)
    };
    let mut ds = one_per_shard(message, |d| format!("{}#{}", d.webhook_id.as_str(), d.message_id));
    for (i, d) in ds.iter_mut().enumerate() {
        d.next_attempt_at = Some(NOW + 100 - i as i64);
        assert!(s.enqueue_delivery(d).await.unwrap());
    }
    one_entry_per_shard(&ddb, &table, "DUE").await;
    let due = |items: Vec<Delivery>| {
        items
            .iter()
            .map(|d| d.next_attempt_at.unwrap() - NOW)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        due(s.due_deliveries(NOW + 100, 100).await.unwrap()),
        (85..=100).collect::<Vec<_>>()
    );
    assert_eq!(
        due(s.due_deliveries(NOW + 90, 100).await.unwrap()),
        (85..=90).collect::<Vec<_>>()
    );
    assert_eq!(due(s.due_deliveries(NOW + 100, 4).await.unwrap()), [85, 86, 87, 88]);
    // Sent: out of the index.
    let mut sent = ds[15].clone();
    sent.version += 1;
    sent.state = DeliveryState::Succeeded;
    sent.next_attempt_at = None;
    s.update_delivery(&sent).await.unwrap();
    assert_eq!(due(s.due_deliveries(NOW + 100, 2).await.unwrap()), [86, 87]);
}
