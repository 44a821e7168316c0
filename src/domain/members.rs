//! Each account's state in the organization, from its member connection and
//! what the last reconciliation saw in Organizations. Pure: the service reads,
//! this decides.

use super::{
    AccountId, Connection, ConnectionId, Health, Listing, Organization, OrganizationId, RoleArn, SpotAccountId, Status,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Its role is verified and Spot uses it.
    Connected,
    /// Its stack instance enrolled it and is on its way: the role is not
    /// connected yet, and nothing has gone wrong.
    Pending,
    /// In a targeted unit, and no stack instance is on its way: none
    /// reported, its role did not verify, or its instance was deleted.
    Missing,
    /// Suspended or closing in Organizations.
    Suspended,
    /// Still in the organization, outside the targeted units.
    Moved,
    /// No longer in the organization.
    Left,
    /// Offboarded or disconnected in Spot.
    Disconnected,
}

/// One account of the organization, as the wizard and the platform see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberRow {
    pub aws_account_id: AccountId,
    pub state: MemberState,
    /// Why it is not connected, and what to do; absent when connected and healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<RoleArn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Absent until the platform assigns one (PUT /v1/connections/{id}/account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_account_id: Option<SpotAccountId>,
    /// Organizations' status at the last reconciliation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations_status: Option<String>,
    /// What the organization's SCPs and RCPs block for this account, at the
    /// last reconciliation; absent when they block nothing Spot needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<super::guardrails::AccountGuardrails>,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Connected => "connected",
            MemberState::Pending => "pending",
            MemberState::Missing => "missing",
            MemberState::Suspended => "suspended",
            MemberState::Moved => "moved",
            MemberState::Left => "left",
            MemberState::Disconnected => "disconnected",
        }
    }
}

/// How many accounts are in each state.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub connected: usize,
    pub pending: usize,
    pub missing: usize,
    pub suspended: usize,
    pub moved: usize,
    pub left: usize,
    pub disconnected: usize,
}

impl Counts {
    fn add(&mut self, s: MemberState) {
        let slot = match s {
            MemberState::Connected => &mut self.connected,
            MemberState::Pending => &mut self.pending,
            MemberState::Missing => &mut self.missing,
            MemberState::Suspended => &mut self.suspended,
            MemberState::Moved => &mut self.moved,
            MemberState::Left => &mut self.left,
            MemberState::Disconnected => &mut self.disconnected,
        };
        *slot += 1;
    }
}

const MISSING: &str = "No stack instance has connected this account: its instance failed or is still running, a service control policy blocked it, or its stack was deleted. Look at the StackSet's instance for this account in the management account, then re-run it (or sync here once it succeeded).";

/// Every known account, by AWS account id, and the counts: from the member
/// connections and the last complete listing of Organizations (None: never
/// listed). A failed reconciliation is not a listing: it cannot be passed.
pub fn members(listing: Option<&Listing>, conns: &[Connection], now: i64) -> (Vec<MemberRow>, Counts) {
    let seen: BTreeMap<&str, &super::SeenAccount> = listing
        .iter()
        .flat_map(|l| l.accounts.iter())
        .map(|a| (a.aws_account_id.as_str(), a))
        .collect();
    let listed = listing.is_some();
    let mut rows: BTreeMap<String, MemberRow> = BTreeMap::new();
    for c in conns {
        let Some(account) = c.aws_account_id.clone() else {
            continue;
        };
        let a = seen.get(account.as_str()).copied();
        let note = c.organization.as_ref().and_then(|m| m.note.clone());
        let (state, reason) = match (c.status(now), a) {
            (Status::Disconnected | Status::Expired, _) => (
                MemberState::Disconnected,
                Some("Disconnected in Spot: the organization was offboarded or the connection disconnected.".to_owned()),
            ),
            (_, None) if listed => (
                MemberState::Left,
                Some("The account is no longer in the organization; Spot no longer uses it once its stack is deleted.".to_owned()),
            ),
            (_, Some(a)) if a.status != "ACTIVE" => (
                MemberState::Suspended,
                Some(format!("Organizations reports this account as {}: Spot cannot use it, and its stack instance stays INOPERABLE until it is removed from the StackSet.", a.status)),
            ),
            (_, Some(a)) if !a.targeted => (
                MemberState::Moved,
                Some("The account moved out of the organizational units the StackSet targets; its stack instance is removed, and with it the connection.".to_owned()),
            ),
            (Status::Connected, _) => (
                MemberState::Connected,
                (c.health == Some(Health::Degraded))
                    .then(|| "Connected; some permissions are missing (see the connection's report).".to_owned()),
            ),
            // The callback's note: the instance's role did not verify, or
            // the instance that connected it was deleted.
            (_, _) if note.is_some() => (
                MemberState::Missing,
                note.map(|n| format!("{n} Re-run this account's stack instance from the StackSet in the management account; it connects again with the same external ID.")),
            ),
            (_, _) => (
                MemberState::Pending,
                Some("Its stack instance asked for its external ID; Spot is waiting for the instance to report its role.".to_owned()),
            ),
        };
        let guardrails = guarded(listing, a, state);
        let (reason, health) = match guardrails.as_ref().and_then(|g| Some((g, g.reason()?))) {
            // The guardrails deny what it needs: degraded, whatever its own policies say.
            Some((g, why)) if state == MemberState::Connected && g.blocks() => {
                (Some(format!("Connected; {why}")), Some(Health::Degraded))
            }
            Some((_, why)) if state != MemberState::Connected => (Some(why), c.health),
            _ => (reason, c.health),
        };
        rows.insert(
            account.as_str().to_owned(),
            MemberRow {
                organizations_status: a.map(|a| a.status.clone()),
                aws_account_id: account,
                state,
                reason,
                connection_id: Some(c.id.clone()),
                role_arn: c.role_arn.clone(),
                health,
                spot_account_id: c.spot_account().cloned(),
                guardrails,
            },
        );
    }
    for a in seen.values().filter(|a| a.targeted) {
        if rows.contains_key(a.aws_account_id.as_str()) {
            continue;
        }
        let guardrails = guarded(listing, Some(a), MemberState::Missing);
        let (state, reason) = if a.status != "ACTIVE" {
            (
                MemberState::Suspended,
                format!(
                    "Organizations reports this account as {}: no stack instance can run in it.",
                    a.status
                ),
            )
        } else {
            let why = guardrails.as_ref().and_then(|g| g.reason());
            (MemberState::Missing, why.unwrap_or_else(|| MISSING.to_owned()))
        };
        rows.insert(
            a.aws_account_id.as_str().to_owned(),
            MemberRow {
                aws_account_id: a.aws_account_id.clone(),
                state,
                reason: Some(reason),
                connection_id: None,
                role_arn: None,
                health: None,
                spot_account_id: None,
                organizations_status: Some(a.status.clone()),
                guardrails,
            },
        );
    }
    let mut counts = Counts::default();
    for r in rows.values() {
        counts.add(r.state);
    }
    (rows.into_values().collect(), counts)
}

/// The guardrails' verdicts on a listed account, for the states where they
/// matter (a member that is or would be connected).
fn guarded(
    listing: Option<&Listing>,
    a: Option<&super::SeenAccount>,
    state: MemberState,
) -> Option<super::guardrails::AccountGuardrails> {
    let relevant = matches!(
        state,
        MemberState::Connected | MemberState::Pending | MemberState::Missing
    );
    relevant.then(|| listing?.guardrails_of(a?).cloned()).flatten()
}

/// A member's state as it changed, carried by its connection's outbox item
/// (`organization.member_changed`): its state, or whether the guardrails
/// leave a connected member `degraded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    pub organization_id: OrganizationId,
    pub aws_account_id: AccountId,
    pub previous_state: MemberState,
    pub state: MemberState,
    pub reason: Option<String>,
    /// The member's health as the organization view shows it, before and
    /// after (items stored before these were kept read without them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_health: Option<Health>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// A connected member the guardrails block (its own role may be healthy).
fn blocked_by_guardrails(r: &MemberRow) -> bool {
    r.state == MemberState::Connected && r.guardrails.as_ref().is_some_and(|g| g.blocks())
}

impl MemberChange {
    /// From `old` to `new`, when the member's state or its being blocked by
    /// the guardrails changed; a change of its own health alone is its
    /// connection's event (`connection.health_changed`).
    fn of_rows(
        organization_id: &OrganizationId,
        old: Option<&MemberRow>,
        old_state: MemberState,
        new: MemberRow,
    ) -> Option<MemberChange> {
        let blocked_before = old.is_some_and(blocked_by_guardrails);
        let changed = old_state != new.state || blocked_before != blocked_by_guardrails(&new);
        changed.then(|| MemberChange {
            organization_id: organization_id.clone(),
            previous_state: old_state,
            state: new.state,
            previous_health: old.and_then(|r| r.health),
            health: new.health,
            reason: new.reason,
            aws_account_id: new.aws_account_id,
        })
    }
}

/// The member row of `c` in `o` (None for a connection that is not one of
/// its members with an AWS account).
fn row_of(o: &Organization, c: &Connection, now: i64) -> Option<MemberRow> {
    let account = c.aws_account_id.as_ref()?;
    members(o.listing(), std::slice::from_ref(c), now)
        .0
        .into_iter()
        .find(|r| r.aws_account_id == *account)
}

impl MemberChange {
    /// The change of `c`'s member state from `(o_before, before)` to
    /// `(o_after, after)`, if its state changed: a change of the member
    /// connection, or a reconciliation that saw its account otherwise.
    pub fn between(
        o_before: &Organization,
        before: &Connection,
        o_after: &Organization,
        after: &Connection,
        now: i64,
    ) -> Option<MemberChange> {
        let member = after.organization.as_ref().filter(|m| !m.management)?;
        if member.organization_id != o_after.id {
            return None;
        }
        let (old, new) = (row_of(o_before, before, now)?, row_of(o_after, after, now)?);
        MemberChange::of_rows(&o_after.id, Some(&old), old.state, new)
    }

    /// The change a first enrollment makes: from the account's state
    /// without a member connection (`missing`: a targeted account no stack
    /// instance reported, whether or not a reconciliation listed it yet; or
    /// what the last reconciliation saw) to its state with `c`.
    pub fn enrolled(o: &Organization, c: &Connection, now: i64) -> Option<MemberChange> {
        let account = c.aws_account_id.as_ref()?;
        let before = members(o.listing(), &[], now)
            .0
            .into_iter()
            .find(|r| r.aws_account_id == *account);
        let state = before.as_ref().map_or(MemberState::Missing, |r| r.state);
        let new = row_of(o, c, now)?;
        MemberChange::of_rows(&o.id, before.as_ref(), state, new)
    }
}

#[cfg(test)]
mod tests {
    //! The member state machine, step by step: each transition the table of
    //! docs/organizations.md names, from what Spot recorded and what Organizations listed.
    use super::{members, MemberState};
    use crate::domain::{Connection, Health};
    use crate::domain::{
        ConnectionId, ExternalId, ExternalIdPrefix, Listing, Membership, Method, NewConnection, OrgState, Organization,
        OrganizationId, Partition, Permissions, Reconciliation, SeenAccount, Status,
    };

    const ACCOUNT: &str = "444455556666";

    fn org(seen: Option<Vec<SeenAccount>>) -> Organization {
        Organization {
            id: OrganizationId::generate(),
            org: "o".into(),
            account_id: "act-1".parse().unwrap(),
            partition: Partition::Aws,
            permissions: Permissions::Default,
            management_account_id: "111122223333".parse().unwrap(),
            organizational_unit_ids: vec!["ou-ab12-cd34ef56".parse().unwrap()],
            management_connection_id: ConnectionId::generate(),
            state: OrgState::Active,
            last_reconciliation: seen.map(|accounts| Reconciliation::Listed(Listing::new(1, accounts))),
            created_at: 0,
            created_by: "t".into(),
            updated_at: 0,
            version: 1,
        }
    }

    fn seen(status: &str, targeted: bool) -> Option<Vec<SeenAccount>> {
        Some(vec![SeenAccount {
            aws_account_id: ACCOUNT.parse().unwrap(),
            status: status.into(),
            parent_id: targeted.then(|| "ou-ab12-cd34ef56".into()),
            targeted,
            guardrails: None,
        }])
    }

    fn member(state: Status, note: Option<&str>) -> Connection {
        let mut c = Connection::new_pending(NewConnection {
            id: ConnectionId::generate(),
            org: "o".into(),
            account_id: "act-1".parse().unwrap(),
            partition: Partition::Aws,
            method: Method::Automatic,
            permissions: Permissions::Default,
            aws_account_id: Some(ACCOUNT.parse().unwrap()),
            external_id: ExternalId::generate(&ExternalIdPrefix::default()),
            organization: Some(Membership {
                organization_id: OrganizationId::generate(),
                management: false,
                spot_account_assigned: false,
                note: note.map(str::to_owned),
            }),
            created_by: "t".into(),
            at: 0,
            expires_at: i64::MAX,
        });
        c.state = state;
        if state == Status::Connected {
            c.health = Some(Health::Healthy);
        }
        c
    }

    fn state_of(o: &Organization, c: Option<Connection>) -> (Option<MemberState>, Option<String>) {
        let conns: Vec<Connection> = c.into_iter().collect();
        let (rows, counts) = members(o.listing(), &conns, 10);
        assert!(rows.len() <= 1);
        let total = counts.connected
            + counts.pending
            + counts.missing
            + counts.suspended
            + counts.moved
            + counts.left
            + counts.disconnected;
        assert_eq!(total, rows.len(), "every row is counted once");
        rows.first().map_or((None, None), |r| (Some(r.state), r.reason.clone()))
    }

    #[test]
    fn each_transition_of_the_member_state_machine() {
        use MemberState::*;
        let deleted = "The stack instance that connected it was deleted (arn:x).";
        let failed = "Its role did not verify: the trust policy lacks the external ID.";
        let active = || org(seen("ACTIVE", true));
        // (step, organization as last listed, member as recorded, expected state)
        let steps: Vec<(&str, Organization, Option<Connection>, Option<MemberState>)> = vec![
            (
                "a targeted account, no instance reported",
                active(),
                None,
                Some(Missing),
            ),
            (
                "an account outside the targets is not a member",
                org(seen("ACTIVE", false)),
                None,
                None,
            ),
            (
                "enroll: an instance is on its way",
                active(),
                Some(member(Status::Pending, None)),
                Some(Pending),
            ),
            (
                "enrolled, never listed yet",
                org(None),
                Some(member(Status::Pending, None)),
                Some(Pending),
            ),
            (
                "link failed: no instance on its way",
                active(),
                Some(member(Status::Pending, Some(failed))),
                Some(Missing),
            ),
            (
                "re-run: enrolled again (note cleared)",
                active(),
                Some(member(Status::Pending, None)),
                Some(Pending),
            ),
            (
                "link: connected",
                active(),
                Some(member(Status::Connected, None)),
                Some(Connected),
            ),
            (
                "instance deleted, still targeted",
                active(),
                Some(member(Status::Pending, Some(deleted))),
                Some(Missing),
            ),
            (
                "instance deleted, before any listing",
                org(None),
                Some(member(Status::Pending, Some(deleted))),
                Some(Missing),
            ),
            (
                "re-linked",
                active(),
                Some(member(Status::Connected, None)),
                Some(Connected),
            ),
            (
                "suspended in Organizations",
                org(seen("SUSPENDED", true)),
                Some(member(Status::Connected, None)),
                Some(Suspended),
            ),
            (
                "suspended, never enrolled",
                org(seen("PENDING_CLOSURE", true)),
                None,
                Some(Suspended),
            ),
            (
                "active again",
                active(),
                Some(member(Status::Connected, None)),
                Some(Connected),
            ),
            (
                "moved out of the targets",
                org(seen("ACTIVE", false)),
                Some(member(Status::Connected, None)),
                Some(Moved),
            ),
            (
                "moved out while missing",
                org(seen("ACTIVE", false)),
                Some(member(Status::Pending, Some(deleted))),
                Some(Moved),
            ),
            (
                "moved back",
                active(),
                Some(member(Status::Connected, None)),
                Some(Connected),
            ),
            (
                "left the organization",
                org(Some(vec![])),
                Some(member(Status::Connected, None)),
                Some(Left),
            ),
            (
                "left while pending",
                org(Some(vec![])),
                Some(member(Status::Pending, None)),
                Some(Left),
            ),
            (
                "re-added",
                active(),
                Some(member(Status::Connected, None)),
                Some(Connected),
            ),
            (
                "disconnected in Spot",
                active(),
                Some(member(Status::Disconnected, None)),
                Some(Disconnected),
            ),
            (
                "disconnected, then left",
                org(Some(vec![])),
                Some(member(Status::Disconnected, None)),
                Some(Disconnected),
            ),
        ];
        for (step, o, c, want) in steps {
            let (got, reason) = state_of(&o, c);
            assert_eq!(got, want, "{step}");
            if let Some(s) = got {
                assert_eq!(
                    reason.is_none(),
                    s == Connected,
                    "{step}: a reason unless connected and healthy"
                );
            }
            if got == Some(Missing) {
                let r = reason.unwrap();
                assert!(r.contains("stack instance") || r.contains("StackSet"), "{step}: {r}");
            }
        }
    }

    #[test]
    fn a_failed_reconciliation_changes_no_members_state() {
        use super::MemberChange;
        let failing = |o: &Organization| {
            let mut f = o.clone();
            f.last_reconciliation = Some(Reconciliation::failed(
                o.last_reconciliation.as_ref(),
                2,
                "HTTP 503".into(),
            ));
            f
        };
        let listings = [
            ("suspended", org(seen("SUSPENDED", true)), MemberState::Suspended),
            ("left", org(Some(vec![])), MemberState::Left),
            ("moved", org(seen("ACTIVE", false)), MemberState::Moved),
            ("never listed", org(None), MemberState::Connected),
        ];
        for (step, listed, want) in listings {
            let mut c = member(Status::Connected, None);
            c.organization.as_mut().unwrap().organization_id = listed.id.clone();
            let failed = failing(&listed);
            assert_eq!(failed.last_reconciliation.as_ref().unwrap().error(), Some("HTTP 503"));
            assert_eq!(state_of(&failed, Some(c.clone())).0, Some(want), "{step}");
            assert_eq!(MemberChange::between(&listed, &c, &failed, &c, 10), None, "{step}");
        }
        // An account listed without a member stays listed.
        let listed = org(seen("ACTIVE", true));
        assert_eq!(state_of(&failing(&listed), None).0, Some(MemberState::Missing));
        // The next complete listing changes states again.
        let mut c = member(Status::Connected, None);
        let failed = failing(&org(seen("SUSPENDED", true)));
        c.organization.as_mut().unwrap().organization_id = failed.id.clone();
        let mut back = failed.clone();
        back.last_reconciliation = Some(Reconciliation::Listed(Listing::new(3, seen("ACTIVE", true).unwrap())));
        let change = MemberChange::between(&failed, &c, &back, &c, 10).expect("suspended -> connected");
        assert_eq!(
            (change.previous_state, change.state),
            (MemberState::Suspended, MemberState::Connected)
        );
    }

    #[test]
    fn a_connected_member_the_guardrails_start_blocking_is_one_change_and_a_failed_read_none() {
        use super::MemberChange;
        use crate::domain::guardrails::AccountGuardrails;
        let blocked: AccountGuardrails = serde_json::from_value(serde_json::json!({
            "assumeRole": "allowed",
            "denied": [{"policyId": "p-deny", "policyName": "DenyEC2", "policyType": "SERVICE_CONTROL_POLICY",
                "targetId": "ou-ab12-cd34ef56", "targetType": "ORGANIZATIONAL_UNIT", "kind": "deny",
                "actions": ["ec2:DescribeInstances"]}]
        }))
        .unwrap();
        let clear = org(seen("ACTIVE", true));
        let with = |verdicts: Result<std::collections::BTreeMap<String, AccountGuardrails>, String>| {
            let mut o = clear.clone();
            let l = o.last_reconciliation.as_mut().unwrap().listing_mut().unwrap();
            l.set_guardrails(verdicts);
            o
        };
        let guarded = with(Ok([(ACCOUNT.to_owned(), blocked)].into()));
        let mut c = member(Status::Connected, None);
        c.organization.as_mut().unwrap().organization_id = clear.id.clone();
        let change = MemberChange::between(&clear, &c, &guarded, &c, 10).expect("blocked: a change");
        assert_eq!(
            (change.previous_state, change.state),
            (MemberState::Connected, MemberState::Connected)
        );
        assert_eq!(
            (change.previous_health, change.health),
            (Some(Health::Healthy), Some(Health::Degraded))
        );
        assert!(
            change.reason.as_deref().unwrap_or_default().contains("DenyEC2"),
            "{change:?}"
        );
        assert_eq!(
            MemberChange::between(&guarded, &c, &guarded, &c, 10),
            None,
            "the same verdicts"
        );
        let lifted = MemberChange::between(&guarded, &c, &clear, &c, 10).expect("lifted: a change");
        assert_eq!(
            (lifted.previous_health, lifted.health),
            (Some(Health::Degraded), Some(Health::Healthy))
        );
        // A reconciliation whose guardrail reads failed keeps the verdicts before it.
        let mut unread = with(Err("ListPoliciesForTarget failed".into()));
        let l = unread.last_reconciliation.as_mut().unwrap().listing_mut().unwrap();
        l.keep_guardrails_of(guarded.listing().unwrap());
        assert_eq!(l.guardrails_error.as_deref(), Some("ListPoliciesForTarget failed"));
        assert_eq!(
            MemberChange::between(&guarded, &c, &unread, &c, 10),
            None,
            "a failed read"
        );
        // A member not connected is not degraded by them: no change of its own.
        let pending = member(Status::Pending, None);
        let mut p = pending.clone();
        p.organization.as_mut().unwrap().organization_id = clear.id.clone();
        assert_eq!(MemberChange::between(&clear, &p, &guarded, &p, 10), None);
    }

    #[test]
    fn a_first_enrollment_takes_a_missing_account_to_pending() {
        use super::MemberChange;
        for o in [org(seen("ACTIVE", true)), org(None)] {
            let mut c = member(Status::Pending, None);
            c.organization.as_mut().unwrap().organization_id = o.id.clone();
            let change = MemberChange::enrolled(&o, &c, 10).expect("a change");
            assert_eq!(
                (change.previous_state, change.state, &change.organization_id),
                (MemberState::Missing, MemberState::Pending, &o.id)
            );
            assert_eq!(change.aws_account_id.as_str(), ACCOUNT);
        }
    }

    #[test]
    fn a_missing_members_reason_says_why_and_what_to_do() {
        let o = org(seen("ACTIVE", true));
        let note = "The stack instance that connected it was deleted (arn:x).";
        let (state, reason) = state_of(&o, Some(member(Status::Pending, Some(note))));
        assert_eq!(state, Some(MemberState::Missing));
        let reason = reason.unwrap();
        assert!(reason.starts_with(note), "{reason}");
        assert!(reason.contains("Re-run"), "{reason}");
    }
}
