//! `GET /v1/connections` filters mean the same with and without
//! `organizationId`: one table of filters and of bad values, asked of a
//! tenant's connections and of an organization's members shaped alike, and
//! cursors bound to every filter on both paths.

use crate::common;
use account_connect::domain::{AccountId, Connection, ConnectionId, Event, EventKind, Health, Status};
use account_connect::services::Services;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const ORG: &str = "org-filters";
const HOUR: i64 = 3600;

/// The shapes each side has one record of: status, health, last check (hours ago).
const SHAPES: [(&str, Status, Option<Health>, Option<i64>); 5] = [
    ("healthy", Status::Connected, Some(Health::Healthy), Some(2)),
    ("degraded", Status::Connected, Some(Health::Degraded), Some(0)),
    ("broken", Status::Connected, Some(Health::Broken), Some(2)),
    ("pending", Status::Pending, None, None),
    ("disconnected", Status::Disconnected, None, Some(2)),
];

/// Writes the record back in a shape, as the checks would have left it.
async fn shape(
    state: &Services,
    store: &account_connect::store::DynStore,
    id: &ConnectionId,
    s: &(&str, Status, Option<Health>, Option<i64>),
) {
    let now = state.connections.now();
    let mut c: Connection = store.get(ORG, id).await.unwrap().unwrap();
    c.state = s.1;
    c.health = s.2;
    c.checked_at = s.3.map(|h| now - h * HOUR);
    c.verified_at = c.checked_at;
    c.version += 1;
    let ev = Event {
        connection_id: id.clone(),
        kind: EventKind::Checked,
        at: now,
        actor: "test".into(),
        outcome: "ok".into(),
        detail: None,
    };
    store.update(&c, &ev, &[], now).await.unwrap();
}

/// The query parts joined, the empty ones left out.
fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("&")
}

/// Every page of `query` (pages of two), as the shapes' names; `skip` is
/// the organization's management connection, which the plain list holds too.
async fn names(
    app: &common::TestApp,
    token: &str,
    query: &str,
    label: &BTreeMap<String, &'static str>,
    skip: &str,
) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app.list_connections(token, &join(&[query, "limit=2", &cursor])).await;
        assert_eq!(status, 200, "{query}: {page}");
        for c in page["items"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            if id != skip {
                out.insert(*label.get(id).unwrap_or_else(|| panic!("{query}: {c}")));
            }
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_checked_before_filter_connections_and_members_alike() {
    let (app, state, store) = common::spawn_with_store(common::callback::config(None)).await;
    let token = common::token(ORG, None);
    let body = json!({"accountId": "act-forg", "partition": "aws", "permissions": {"mode": "default"},
        "managementAccountId": "111122223333"});
    let (status, o) = app.create_organization(&token, &body).await;
    assert_eq!(status, 201, "{o}");
    let org_id = o["id"].as_str().unwrap().to_owned();
    let management = o["managementConnection"]["id"].as_str().unwrap().to_owned();
    let organization = store.get_organization(&org_id.parse().unwrap()).await.unwrap().unwrap();
    // One plain connection and one member of each shape.
    let mut plain = BTreeMap::new();
    let mut members = BTreeMap::new();
    for (i, s) in SHAPES.iter().enumerate() {
        let body =
            json!({"accountId": format!("act-f{}", s.0), "partition": "aws", "permissions": {"mode": "default"}});
        let (status, c) = app.create_connection(&token, &body).await;
        assert_eq!(status, 201, "{c}");
        let id: ConnectionId = c["id"].as_str().unwrap().parse().unwrap();
        shape(&state, &store, &id, s).await;
        plain.insert(id.as_str().to_owned(), s.0);
        let aws: AccountId = format!("2000000000{i:02}").parse().unwrap();
        let m = state.organizations.enroll(&organization, &aws, "test").await.unwrap();
        shape(&state, &store, &m.id, s).await;
        members.insert(m.id.as_str().to_owned(), s.0);
    }
    let org_query = format!("organizationId={org_id}");
    let by_org = |q: &str| join(&[&org_query, q]);

    let at = |hours: i64| account_connect::clock::iso(state.connections.now() - hours * HOUR);
    let table: Vec<(String, Vec<&str>)> = vec![
        (
            "".into(),
            vec!["healthy", "degraded", "broken", "pending", "disconnected"],
        ),
        ("status=connected".into(), vec!["healthy", "degraded", "broken"]),
        ("status=pending".into(), vec!["pending"]),
        ("status=disconnected".into(), vec!["disconnected"]),
        ("status=expired".into(), vec![]),
        ("health=healthy".into(), vec!["healthy"]),
        ("health=degraded".into(), vec!["degraded"]),
        ("health=broken".into(), vec!["broken"]),
        (
            format!("checkedBefore={}", at(1)),
            vec!["healthy", "broken", "disconnected"],
        ),
        (
            format!("checkedBefore={}", at(-1)),
            vec!["healthy", "degraded", "broken", "disconnected"],
        ),
        ("checkedBefore=2020-01-01T00:00:00Z".into(), vec![]),
        (format!("health=healthy&checkedBefore={}", at(1)), vec!["healthy"]),
        (
            format!("status=connected&checkedBefore={}", at(1)),
            vec!["healthy", "broken"],
        ),
        ("status=disconnected&health=healthy".into(), vec![]),
    ];
    for (q, expected) in &table {
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        let listed = names(&app, &token, q, &plain, &management).await;
        assert_eq!(listed, expected, "connections: {q}");
        let listed = names(&app, &token, &by_org(q), &members, &management).await;
        assert_eq!(listed, expected, "members: {q}");
    }

    // A bad value is a 400 invalid_query on both paths.
    for bad in [
        "health=sickly",
        "health=",
        "status=bogus",
        "checkedBefore=yesterday",
        "checkedBefore=2026-01-31T00:00:00",
        "checkedBefore=",
        "limit=0",
        "limit=101",
    ] {
        let (status, e) = app.list_connections(&token, bad).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (400, Some("invalid_query")),
            "connections: {bad}: {e}"
        );
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
        let (status, e) = app.list_connections(&token, &by_org(bad)).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (400, Some("invalid_query")),
            "members: {bad}: {e}"
        );
    }

    // A cursor is bound to every filter: issued for one value, refused for another or none.
    let pairs = [
        ("status=connected", "status=pending"),
        ("health=healthy", "health=broken"),
        ("health=healthy", ""),
        ("", "health=healthy"),
        (
            &*format!("checkedBefore={}", at(1)),
            &*format!("checkedBefore={}", at(-1)),
        ),
        (&*format!("checkedBefore={}", at(1)), ""),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    for (issued, used) in &pairs {
        for (path, query) in [("connections", issued.clone()), ("members", by_org(issued))] {
            let (status, page) = app.list_connections(&token, &join(&[&query, "limit=1"])).await;
            assert_eq!(status, 200, "{path}: {query}: {page}");
            let cursor = page["nextCursor"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {query}: {page}"));
            let again = if path == "members" { by_org(used) } else { used.clone() };
            let at_cursor = format!("cursor={cursor}");
            let (status, e) = app
                .list_connections(&token, &join(&[&again, "limit=1", &at_cursor]))
                .await;
            assert_eq!(
                (status, e["error"]["code"].as_str()),
                (400, Some("invalid_cursor")),
                "{path}: a cursor of {issued} used with {used}: {e}"
            );
            let (status, page) = app
                .list_connections(&token, &join(&[&query, "limit=1", &at_cursor]))
                .await;
            assert_eq!(status, 200, "{path}: the same query takes its cursor: {page}");
        }
    }
}
