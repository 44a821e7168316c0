//! The organization part of the store, against both stores: one member
//! connection per (organization, AWS account), whoever asks how often.

use crate::common;

use account_connect::domain::Permissions;
use account_connect::domain::{Connection, ConnectionId, Event, EventKind, Method};
use account_connect::domain::{ExternalId, ExternalIdPrefix, NewConnection, Partition};
use account_connect::domain::{Membership, OrgState, Organization, OrganizationId};
use account_connect::store::{DynStore, Guard, StoreError};

const NOW: i64 = 1_800_000_000;

fn organization() -> Organization {
    Organization {
        id: OrganizationId::generate(),
        org: "org-s".into(),
        account_id: format!("act-s{}", account_connect::ids::random_token(4))
            .parse()
            .unwrap(),
        partition: Partition::Aws,
        permissions: Permissions::Default,
        management_account_id: "111122223333".parse().unwrap(),
        organizational_unit_ids: vec!["ou-ab12-cd34ef56".parse().unwrap()],
        management_connection_id: ConnectionId::generate(),
        state: OrgState::Active,
        last_reconciliation: None,
        created_at: NOW,
        created_by: "tester".into(),
        updated_at: NOW,
        version: 1,
    }
}

fn member(o: &Organization, account: &str) -> Connection {
    Connection::new_pending(NewConnection {
        id: ConnectionId::generate(),
        org: o.org.clone(),
        account_id: o.account_id.clone(),
        partition: Partition::Aws,
        method: Method::Automatic,
        permissions: Permissions::Default,
        aws_account_id: Some(account.parse().unwrap()),
        external_id: ExternalId::generate(&ExternalIdPrefix::default()),
        organization: Some(Membership {
            organization_id: o.id.clone(),
            management: false,
            spot_account_assigned: false,
            note: None,
        }),
        created_by: "tester".into(),
        at: NOW,
        expires_at: 253_402_300_799,
    })
}

/// The organization's management connection, holding its Spot account.
fn management(o: &Organization) -> Connection {
    let mut c = member(o, o.management_account_id.as_str());
    c.id = o.management_connection_id.clone();
    c.expires_at = NOW + 3600;
    c.organization = Some(Membership {
        organization_id: o.id.clone(),
        management: true,
        spot_account_assigned: true,
        note: None,
    });
    c
}

async fn create_org(s: &DynStore, o: &Organization) -> Result<(), StoreError> {
    let m = management(o);
    s.create_organization(o, &m, &created(&m), None, NOW).await
}

fn created(c: &Connection) -> Event {
    Event {
        connection_id: c.id.clone(),
        kind: EventKind::Created,
        at: NOW,
        actor: "tester".into(),
        outcome: "ok".into(),
        detail: None,
    }
}

#[tokio::test]
async fn one_member_per_organization_and_account_even_when_enrolled_at_once() {
    for (name, s) in common::both_stores().await {
        let o = organization();
        create_org(&s, &o).await.unwrap();
        assert_eq!(s.get_organization(&o.id).await.unwrap().as_ref(), Some(&o), "{name}");
        let first = member(&o, "444455556666");
        assert_eq!(
            s.enroll_member(&first, &created(&first), None).await.unwrap(),
            first,
            "{name}"
        );
        // A second enrollment of the same account answers the first member.
        let second = member(&o, "444455556666");
        assert_eq!(
            s.enroll_member(&second, &created(&second), None).await.unwrap(),
            first,
            "{name}"
        );
        assert_eq!(
            s.get_any(&second.id).await.unwrap(),
            None,
            "{name}: nothing else written"
        );
        // Concurrent enrollments of another account: one member.
        let racers: Vec<Connection> = (0..4).map(|_| member(&o, "777788889999")).collect();
        let events: Vec<Event> = racers.iter().map(created).collect();
        let results =
            futures::future::join_all(racers.iter().zip(&events).map(|(m, e)| s.enroll_member(m, e, None))).await;
        let ids: std::collections::BTreeSet<String> = results
            .into_iter()
            .filter_map(|r| match r {
                Ok(c) => Some(c.id.as_str().to_owned()),
                Err(StoreError::Conflict) => None,
                Err(e) => panic!("{name}: {e}"),
            })
            .collect();
        assert_eq!(ids.len(), 1, "{name}: {ids:?}");
        // The same account in another organization is another member.
        let o2 = organization();
        create_org(&s, &o2).await.unwrap();
        let elsewhere = member(&o2, "444455556666");
        assert_eq!(
            s.enroll_member(&elsewhere, &created(&elsewhere), None).await.unwrap(),
            elsewhere,
            "{name}"
        );
        // Members page by AWS account; the tenant listing does not see them.
        let page = s.list_members(&o.id, None, 1).await.unwrap();
        assert_eq!(page.items, vec![first.clone()], "{name}");
        assert_eq!(page.next.as_deref(), Some("444455556666"), "{name}");
        let rest = s.list_members(&o.id, page.next.as_deref(), 10).await.unwrap();
        assert_eq!(rest.items.len(), 1, "{name}");
        assert_eq!(rest.next, None, "{name}");
        assert_eq!(
            s.list_members(&o.id, Some("ACCT#"), 10).await.unwrap_err(),
            StoreError::OutsideQuery,
            "{name}"
        );
        let listed = s.list("org-s", None, None, 10).await.unwrap().items;
        assert!(
            listed
                .iter()
                .all(|c| c.organization.as_ref().is_some_and(|m| m.management)),
            "{name}: only management connections, no member: {listed:?}"
        );
        // A member's external ID is claimed like any other.
        let mut copy = member(&o, "121212121212");
        copy.external_id = first.external_id.clone();
        assert_eq!(
            s.enroll_member(&copy, &created(&copy), None).await.unwrap_err(),
            StoreError::ExternalIdTaken,
            "{name}"
        );
    }
}

/// A first enrollment's announcement (the member's state change) is
/// written with the member connection, or not at all: a repeat, or an
/// enrollment whose external ID was taken, writes none.
#[tokio::test]
async fn an_enrollment_is_announced_in_the_same_write_as_the_member() {
    use account_connect::domain::{ChangeType, MemberChange, OutboxItem};
    for (name, s) in common::both_stores().await {
        let o = organization();
        create_org(&s, &o).await.unwrap();
        let undelivered = || async { s.undelivered(100).await.unwrap() };
        let announced = |m: &Connection| {
            let change = MemberChange::enrolled(&o, m, NOW).expect("missing to pending");
            OutboxItem::member_changed(m, change, NOW)
        };
        let first = member(&o, "454545454545");
        let item = announced(&first);
        s.enroll_member(&first, &created(&first), Some(&item)).await.unwrap();
        let stored: Vec<OutboxItem> = undelivered()
            .await
            .into_iter()
            .filter(|i| i.connection_id == first.id)
            .collect();
        assert_eq!(stored, vec![item.clone()], "{name}");
        assert_eq!(
            (stored[0].kind, stored[0].sequence),
            (ChangeType::MemberChanged, 1),
            "{name}"
        );
        // Enrolled again: the first member, nothing more announced.
        let again = member(&o, "454545454545");
        let repeat = s
            .enroll_member(&again, &created(&again), Some(&announced(&again)))
            .await
            .unwrap();
        assert_eq!(repeat, first, "{name}");
        // Refused (its external ID taken): neither member nor announcement.
        let mut copy = member(&o, "565656565656");
        copy.external_id = first.external_id.clone();
        let refused = s.enroll_member(&copy, &created(&copy), Some(&announced(&copy))).await;
        assert_eq!(refused.unwrap_err(), StoreError::ExternalIdTaken, "{name}");
        let all = undelivered().await;
        assert_eq!(all.len(), 1, "{name}: {all:?}");
    }
}

#[tokio::test]
async fn an_organization_changes_only_from_the_version_it_was_read_at() {
    for (name, s) in common::both_stores().await {
        let mut o = organization();
        create_org(&s, &o).await.unwrap();
        assert!(
            create_org(&s, &o).await.is_err(),
            "{name}: a second record with the same id"
        );
        o.version = 2;
        o.state = OrgState::Offboarded;
        s.update_organization(&o).await.unwrap();
        assert_eq!(
            s.update_organization(&o).await.unwrap_err(),
            StoreError::Conflict,
            "{name}: stale"
        );
        assert_eq!(
            s.get_organization(&o.id).await.unwrap().unwrap().state,
            OrgState::Offboarded,
            "{name}"
        );
        assert_eq!(
            s.get_organization(&OrganizationId::generate()).await.unwrap(),
            None,
            "{name}"
        );
    }
}

/// A refused organization create writes neither the record nor the
/// management connection; an unassigned member never holds the Spot account.
#[tokio::test]
async fn a_refused_organization_writes_nothing_and_unassigned_members_hold_nothing() {
    for (name, s) in common::both_stores().await {
        let o = organization();
        create_org(&s, &o).await.unwrap();
        assert_eq!(
            s.account_holder(&o.org, &o.account_id, NOW).await.unwrap(),
            Some(o.management_connection_id.clone()),
            "{name}"
        );
        // Another organization for the same Spot account: refused, nothing written.
        let mut again = organization();
        again.account_id = o.account_id.clone();
        assert_eq!(
            create_org(&s, &again).await.unwrap_err(),
            StoreError::AccountHeld(o.management_connection_id.clone()),
            "{name}"
        );
        assert_eq!(s.get_organization(&again.id).await.unwrap(), None, "{name}");
        assert_eq!(
            s.get_any(&again.management_connection_id).await.unwrap(),
            None,
            "{name}"
        );
        // A member without a Spot account asks for a hold (as a careless
        // caller would): the store writes none, so the management
        // connection keeps its hold and nothing names the member.
        let m = member(&o, "232323232323");
        let m = s.enroll_member(&m, &created(&m), None).await.unwrap();
        let mut connected = m.clone();
        connected.version += 1;
        connected.state = account_connect::domain::Status::Connected;
        s.update(
            &connected,
            &created(&connected),
            &[Guard::HoldAccount { until: i64::MAX }],
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(
            s.account_holder(&o.org, &o.account_id, NOW).await.unwrap(),
            Some(o.management_connection_id.clone()),
            "{name}: the member holds nothing"
        );
    }
}
