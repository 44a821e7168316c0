//! The outbox: a state change of a connection, written in the same store
//! transaction as the change, and delivered from there at least once.

use super::{Connection, ConnectionId, Health, MemberChange, OrganizationChange, RoleArn, Status};
use serde::{Deserialize, Serialize};

/// The event types of the catalogue (docs/events.md), as a webhook
/// subscribes to them (`EVENT_TYPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = EventType)]
pub enum ChangeType {
    #[serde(rename = "connection.connected")]
    Connected,
    #[serde(rename = "connection.health_changed")]
    HealthChanged,
    #[serde(rename = "connection.external_id_rotated")]
    ExternalIdRotated,
    #[serde(rename = "connection.disconnected")]
    Disconnected,
    /// A connected connection verified and switched to another role.
    #[serde(rename = "connection.role_changed")]
    RoleChanged,
    /// A connected member's stack instance was deleted: its role released,
    /// the connection pending again with its external ID.
    #[serde(rename = "connection.unlinked")]
    Unlinked,
    /// The platform assigned an organization member its Spot account.
    #[serde(rename = "connection.account_assigned")]
    AccountAssigned,
    /// An organization member's state alone changed (a member whose
    /// connection event also changes it carries the change beside).
    #[serde(rename = "organization.member_changed")]
    MemberChanged,
    /// An organization's state changed with its management connection
    /// (its management stack deleted, or created again).
    #[serde(rename = "organization.state_changed")]
    OrganizationStateChanged,
}

impl ChangeType {
    /// Every type, in the catalogue's order.
    pub const ALL: [ChangeType; 9] = [
        ChangeType::Connected,
        ChangeType::HealthChanged,
        ChangeType::ExternalIdRotated,
        ChangeType::Disconnected,
        ChangeType::RoleChanged,
        ChangeType::Unlinked,
        ChangeType::AccountAssigned,
        ChangeType::MemberChanged,
        ChangeType::OrganizationStateChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Connected => "connection.connected",
            ChangeType::HealthChanged => "connection.health_changed",
            ChangeType::ExternalIdRotated => "connection.external_id_rotated",
            ChangeType::Disconnected => "connection.disconnected",
            ChangeType::RoleChanged => "connection.role_changed",
            ChangeType::Unlinked => "connection.unlinked",
            ChangeType::AccountAssigned => "connection.account_assigned",
            ChangeType::MemberChanged => "organization.member_changed",
            ChangeType::OrganizationStateChanged => "organization.state_changed",
        }
    }
}

/// One undelivered (or delivered) state change: its type, when, the
/// connection as the change left it (the payload's view is rendered from
/// it) and the health before, for a health change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    #[serde(rename = "type")]
    pub kind: ChangeType,
    pub connection_id: ConnectionId,
    /// Per connection, strictly increasing: the connection's version after
    /// the change (so gaps are normal). Orders and de-duplicates.
    pub sequence: u64,
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_health: Option<Health>,
    /// The role before a `connection.role_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_role_arn: Option<RoleArn>,
    pub connection: Connection,
    /// The member's state change this change made, for an organization
    /// member: delivered as `organization.member_changed` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberChange>,
    /// The organization's state change this change of its management
    /// connection made: delivered as `organization.state_changed` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationChange>,
}

impl OutboxItem {
    /// The state change from `old` to `new` (`new` as it will be stored,
    /// version already advanced), if the change is one of the catalogue's.
    /// One change is one event, the first of: disconnected; connected
    /// (which sets the health too); unlinked (a connected member back to
    /// pending); another role verified while connected (`role_changed`,
    /// also when it completes a rotation or changes the health, which the
    /// view then shows); a rotation completed (`external_id_rotated`, when
    /// the new ID takes over, also when the verification that completes it
    /// changes the health); a Spot account assigned; the health changed.
    pub fn between(old: &Connection, new: &Connection, at: i64) -> Option<OutboxItem> {
        let connected = old.state == Status::Connected && new.state == Status::Connected;
        let kind = if old.state != Status::Disconnected && new.state == Status::Disconnected {
            ChangeType::Disconnected
        } else if old.state != Status::Connected && new.state == Status::Connected {
            ChangeType::Connected
        } else if old.state == Status::Connected && new.state == Status::Pending {
            ChangeType::Unlinked
        } else if connected && old.role_arn != new.role_arn {
            ChangeType::RoleChanged
        } else if old.external_id != new.external_id {
            ChangeType::ExternalIdRotated
        } else if old.spot_account().is_none() && new.spot_account().is_some() {
            ChangeType::AccountAssigned
        } else if new.state == Status::Connected && old.health != new.health {
            ChangeType::HealthChanged
        } else {
            return None;
        };
        Some(OutboxItem {
            kind,
            connection_id: new.id.clone(),
            sequence: new.version,
            at,
            previous_health: if kind == ChangeType::HealthChanged {
                old.health
            } else {
                None
            },
            previous_role_arn: if kind == ChangeType::RoleChanged {
                old.role_arn.clone()
            } else {
                None
            },
            connection: new.clone(),
            member: None,
            organization: None,
        })
    }

    /// An organization member's state change alone, on its connection as
    /// it is stored with it (a reconciliation's finding, an enrollment).
    pub fn member_changed(c: &Connection, change: MemberChange, at: i64) -> OutboxItem {
        OutboxItem {
            kind: ChangeType::MemberChanged,
            connection_id: c.id.clone(),
            sequence: c.version,
            at,
            previous_health: None,
            previous_role_arn: None,
            connection: c.clone(),
            member: Some(change),
            organization: None,
        }
    }

    /// The outbox item of a change: the connection's event (if any) with
    /// the member's and the organization's state changes beside it, or the
    /// member's change alone, or the organization's alone.
    pub fn of_change(
        old: &Connection,
        new: &Connection,
        member: Option<MemberChange>,
        organization: Option<OrganizationChange>,
        at: i64,
    ) -> Option<OutboxItem> {
        let item = match (OutboxItem::between(old, new, at), member) {
            (Some(item), member) => Some(OutboxItem { member, ..item }),
            (None, Some(m)) => Some(OutboxItem::member_changed(new, m, at)),
            (None, None) => None,
        };
        match (item, organization) {
            (Some(item), organization) => Some(OutboxItem { organization, ..item }),
            (None, Some(o)) => Some(OutboxItem {
                kind: ChangeType::OrganizationStateChanged,
                connection_id: new.id.clone(),
                sequence: new.version,
                at,
                previous_health: None,
                previous_role_arn: None,
                connection: new.clone(),
                member: None,
                organization: Some(o),
            }),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExternalId, ExternalIdPrefix, Method, NewConnection, Partition, Permissions};

    fn pending() -> Connection {
        Connection::new_pending(NewConnection {
            id: ConnectionId::generate(),
            org: "org-a".into(),
            account_id: "act-1".parse().unwrap(),
            partition: Partition::Aws,
            method: Method::Manual,
            permissions: Permissions::Default,
            aws_account_id: None,
            external_id: ExternalId::generate(&ExternalIdPrefix::default()),
            organization: None,
            created_by: "tester".into(),
            at: 100,
            expires_at: 200,
        })
    }

    /// `old` changed by `f`, version advanced as a service writes it.
    fn changed(old: &Connection, f: impl FnOnce(&mut Connection)) -> Connection {
        let mut new = old.clone();
        f(&mut new);
        new.version += 1;
        new
    }

    fn kind(old: &Connection, new: &Connection) -> Option<(ChangeType, Option<Health>)> {
        OutboxItem::between(old, new, 7).map(|i| {
            assert_eq!((i.sequence, i.at, &i.connection), (new.version, 7, new));
            (i.kind, i.previous_health)
        })
    }

    #[test]
    fn each_state_change_is_one_event_and_other_changes_none() {
        let p = pending();
        let connected = changed(&p, |c| {
            c.state = Status::Connected;
            c.health = Some(Health::Healthy);
        });
        assert_eq!(kind(&p, &connected), Some((ChangeType::Connected, None)));
        let degraded = changed(&connected, |c| c.health = Some(Health::Degraded));
        assert_eq!(
            kind(&connected, &degraded),
            Some((ChangeType::HealthChanged, Some(Health::Healthy)))
        );
        let checked_again = changed(&degraded, |c| c.checked_at = Some(300));
        assert_eq!(kind(&degraded, &checked_again), None, "a check that changes no state");
        let rotating = changed(&degraded, |c| {
            c.pending_external_id = Some(ExternalId::generate(&ExternalIdPrefix::default()))
        });
        assert_eq!(kind(&degraded, &rotating), None, "a rotation completes later");
        let rotated = changed(&rotating, |c| {
            c.external_id = c.pending_external_id.take().unwrap();
            c.health = Some(Health::Healthy);
        });
        assert_eq!(kind(&rotating, &rotated), Some((ChangeType::ExternalIdRotated, None)));
        let gone = changed(&rotated, |c| {
            c.state = Status::Disconnected;
            c.health = None;
        });
        assert_eq!(kind(&rotated, &gone), Some((ChangeType::Disconnected, None)));
        let pending_gone = changed(&p, |c| c.state = Status::Disconnected);
        assert_eq!(kind(&p, &pending_gone), Some((ChangeType::Disconnected, None)));
        let pending_rotated = changed(&p, |c| c.expires_at = 400);
        assert_eq!(kind(&p, &pending_rotated), None);
    }

    fn role(name: &str) -> RoleArn {
        format!("arn:aws:iam::123456789012:role/{name}").parse().unwrap()
    }

    #[test]
    fn a_role_switch_an_unlink_and_an_assignment_are_events_too() {
        let connected = changed(&pending(), |c| {
            c.state = Status::Connected;
            c.health = Some(Health::Healthy);
            c.role_arn = Some(role("First"));
        });
        // Another role verified while connected, even one that changes the
        // health or completes a rotation: one role_changed, with the role before.
        let switched = changed(&connected, |c| {
            c.role_arn = Some(role("Second"));
            c.health = Some(Health::Degraded);
            c.external_id = ExternalId::generate(&ExternalIdPrefix::default());
        });
        let item = OutboxItem::between(&connected, &switched, 9).unwrap();
        assert_eq!(
            (item.kind, item.previous_role_arn, item.previous_health),
            (ChangeType::RoleChanged, Some(role("First")), None)
        );
        let same_role = changed(&connected, |c| c.checked_at = Some(300));
        assert_eq!(kind(&connected, &same_role), None, "the same role verified again");

        // A member connected by its stack instance, the instance deleted.
        let mut member = connected.clone();
        member.organization = Some(crate::domain::Membership {
            organization_id: crate::domain::OrganizationId::generate(),
            management: false,
            spot_account_assigned: false,
            note: None,
        });
        let unlinked = changed(&member, |c| {
            c.state = Status::Pending;
            c.health = None;
            c.role_arn = None;
        });
        assert_eq!(kind(&member, &unlinked), Some((ChangeType::Unlinked, None)));
        let assigned = changed(&member, |c| {
            c.account_id = "act-2".parse().unwrap();
            c.organization.as_mut().unwrap().spot_account_assigned = true;
        });
        assert_eq!(kind(&member, &assigned), Some((ChangeType::AccountAssigned, None)));
        let pending_assigned = changed(&unlinked, |c| {
            c.organization.as_mut().unwrap().spot_account_assigned = true
        });
        assert_eq!(
            kind(&unlinked, &pending_assigned),
            Some((ChangeType::AccountAssigned, None)),
            "a pending member too"
        );
    }

    #[test]
    fn every_type_is_subscribable_and_serializes_as_its_name() {
        let names: Vec<&str> = ChangeType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, crate::domain::EVENT_TYPES);
        for t in ChangeType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
