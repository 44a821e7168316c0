//! Sizes: which events go thin to webhooks and to the bus, and the thin
//! form itself.

use super::eventbridge::{EventBridge, MAX_REQUEST_BYTES};
use super::payload::{render, thin};
use super::{for_webhooks, MAX_WEBHOOK_BYTES};
use crate::config::Config;
use crate::domain::{
    ChangeType, Connection, ConnectionId, ExternalId, ExternalIdPrefix, MemberChange, MemberState, Method,
    NewConnection, OrganizationId, OutboxItem, Partition, Permissions, Status,
};
use serde_json::{json, Value};

/// A connected connection's `connected` item whose last report carries
/// `padding` bytes.
fn item(padding: usize) -> OutboxItem {
    let mut c = Connection::new_pending(NewConnection {
        id: ConnectionId::generate(),
        org: "org-a".into(),
        account_id: "act-1".parse().unwrap(),
        partition: Partition::Aws,
        method: Method::Manual,
        permissions: Permissions::everything(),
        aws_account_id: Some("123456789012".parse().unwrap()),
        external_id: ExternalId::generate(&ExternalIdPrefix::default()),
        organization: None,
        created_by: "tester".into(),
        at: 1_800_000_000,
        expires_at: 1_800_100_000,
    });
    c.state = Status::Connected;
    c.report = Some(json!({ "padding": "x".repeat(padding) }));
    c.version = 7;
    OutboxItem {
        kind: ChangeType::Connected,
        connection_id: c.id.clone(),
        sequence: c.version,
        at: 1_800_000_060,
        previous_health: None,
        previous_role_arn: None,
        connection: c,
        member: None,
        organization: None,
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

#[test]
fn a_thin_connection_event_carries_its_type_ids_sequence_and_the_path_of_its_view() {
    let item = item(0);
    let events = render(&item, &Config::default());
    let t = parse(&thin(&item, &events[0]));
    let id = item.connection_id.as_str();
    assert_eq!(
        t,
        json!({"type": "connection.connected", "timestamp": "2027-01-15T08:01:00Z",
               "data": {"thin": true, "id": id, "sequence": 7, "url": format!("/v1/connections/{id}")}})
    );
}

#[test]
fn a_thin_member_event_names_its_organization_account_and_connection() {
    let mut item = item(0);
    let org = OrganizationId::generate();
    item.member = Some(MemberChange {
        organization_id: org.clone(),
        aws_account_id: "123456789012".parse().unwrap(),
        previous_state: MemberState::Pending,
        state: MemberState::Connected,
        reason: None,
        previous_health: None,
        health: None,
    });
    let events = render(&item, &Config::default());
    let member = events.iter().find(|e| e.kind == ChangeType::MemberChanged).unwrap();
    let t = parse(&thin(&item, member));
    assert_eq!(t["type"], "organization.member_changed");
    assert_eq!(
        t["data"],
        json!({"thin": true, "organizationId": org.as_str(), "awsAccountId": "123456789012",
               "connectionId": item.connection_id.as_str(), "sequence": 7,
               "url": format!("/v1/organizations/{}", org.as_str())})
    );
}

#[test]
fn a_webhook_gets_an_event_over_64_kb_thin_and_one_under_it_whole() {
    let small = item(1000);
    let e = &render(&small, &Config::default())[0];
    assert!(e.body.len() <= MAX_WEBHOOK_BYTES);
    assert_eq!(for_webhooks(&small, e), e.body.as_str(), "whole");

    let large = item(MAX_WEBHOOK_BYTES);
    let e = &render(&large, &Config::default())[0];
    assert!(e.body.len() > MAX_WEBHOOK_BYTES);
    let sent = for_webhooks(&large, e);
    assert_eq!(parse(&sent)["data"]["thin"], true, "thin");
    assert!(sent.len() < 1024, "{} bytes", sent.len());

    // The boundary: exactly 64 KB goes whole.
    let mut at = item(0);
    let base = render(&at, &Config::default())[0].body.len();
    at = item(MAX_WEBHOOK_BYTES - base);
    let e = &render(&at, &Config::default())[0];
    assert_eq!(e.body.len(), MAX_WEBHOOK_BYTES);
    assert_eq!(for_webhooks(&at, e), e.body.as_str());
}

#[test]
fn the_bus_takes_an_entry_under_256_kb_and_gets_a_larger_one_thin() {
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .build();
    let bus = EventBridge::new(
        aws_sdk_eventbridge::Client::from_conf(conf),
        "bus".into(),
        "account-connect".into(),
    );
    let kind = "connection.connected";
    // Source (15) + DetailType (20) + Detail must stay under 256 KB.
    let under = MAX_REQUEST_BYTES - 15 - 20 - 1;
    assert!(bus.fits(kind, &"x".repeat(under)));
    assert!(!bus.fits(kind, &"x".repeat(under + 1)));
    let large = item(MAX_REQUEST_BYTES);
    let e = &render(&large, &Config::default())[0];
    assert!(!bus.fits(kind, &e.body));
    assert!(bus.fits(kind, &thin(&large, e)));
}

#[test]
fn an_organization_event_goes_beside_its_connection_event_and_thin_names_the_organization() {
    use crate::domain::{OrgState, OrganizationChange};
    let mut item = item(0);
    item.kind = ChangeType::Unlinked;
    let org = OrganizationId::generate();
    item.organization = Some(OrganizationChange {
        organization_id: org.clone(),
        previous_state: OrgState::Active,
        state: OrgState::ManagementStackDeleted,
        reason: Some("create the management stack again".into()),
    });
    let events = render(&item, &Config::default());
    let kinds: Vec<ChangeType> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ChangeType::Unlinked, ChangeType::OrganizationStateChanged]);
    let o = &events[1];
    assert_eq!(
        o.message_id,
        format!("msg_{}_7_organization", item.connection_id.as_str())
    );
    let full = parse(&o.body);
    assert_eq!(
        (&full["data"]["previousState"], &full["data"]["state"]),
        (&json!("active"), &json!("managementStackDeleted"))
    );
    assert_eq!(full["data"]["managementConnection"]["id"], item.connection_id.as_str());
    let t = parse(&thin(&item, o));
    assert_eq!(
        t["data"],
        json!({"thin": true, "organizationId": org.as_str(), "connectionId": item.connection_id.as_str(),
               "sequence": 7, "url": format!("/v1/organizations/{}", org.as_str())})
    );
}
