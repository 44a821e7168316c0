//! The outbox: a state change of a connection, written in the same store
//! transaction as the change, and delivered from there at least once.

use super::{Connection, ConnectionId, Health, MemberChange, Status};
use serde::{Deserialize, Serialize};

/// The event types of the catalogue (the README's "Events").
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
    /// An organization member's state alone changed (a member whose
    /// connection event also changes it carries the change beside).
    #[serde(rename = "organization.member_changed")]
    MemberChanged,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Connected => "connection.connected",
            ChangeType::HealthChanged => "connection.health_changed",
            ChangeType::ExternalIdRotated => "connection.external_id_rotated",
            ChangeType::Disconnected => "connection.disconnected",
            ChangeType::MemberChanged => "organization.member_changed",
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
    pub connection: Connection,
    /// The member's state change this change made, for an organization
    /// member: delivered as `organization.member_changed` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberChange>,
}

impl OutboxItem {
    /// The state change from `old` to `new` (`new` as it will be stored,
    /// version already advanced), if the change is one of the catalogue's.
    /// One change is one event: connecting (which sets the health too) is
    /// `connected`; a rotation completes (`external_id_rotated`) when the
    /// new ID takes over, also when the verification that completes it
    /// changes the health, which the view then shows.
    pub fn between(old: &Connection, new: &Connection, at: i64) -> Option<OutboxItem> {
        let kind = if old.state != Status::Disconnected && new.state == Status::Disconnected {
            ChangeType::Disconnected
        } else if old.state != Status::Connected && new.state == Status::Connected {
            ChangeType::Connected
        } else if old.external_id != new.external_id {
            ChangeType::ExternalIdRotated
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
            connection: new.clone(),
            member: None,
        })
    }

    /// The outbox item of a change: the connection's event (if any) with
    /// the member's state change beside it, or the member's change alone.
    pub fn of_change(old: &Connection, new: &Connection, member: Option<MemberChange>, at: i64) -> Option<OutboxItem> {
        match (OutboxItem::between(old, new, at), member) {
            (Some(item), member) => Some(OutboxItem { member, ..item }),
            (None, Some(m)) => Some(OutboxItem {
                kind: ChangeType::MemberChanged,
                connection_id: new.id.clone(),
                sequence: new.version,
                at,
                previous_health: None,
                connection: new.clone(),
                member: Some(m),
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
}
