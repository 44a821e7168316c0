//! Each account's state in the organization, from its member connection and
//! what the last reconciliation saw in Organizations. Pure: the service reads,
//! this decides.

use crate::domain::Organization;
use crate::domain::{AccountId, Connection, ConnectionId, Health, RoleArn, SpotAccountId, Status};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Its role is verified and Spot uses it.
    Connected,
    /// Its stack instance enrolled it; its role is not connected (yet).
    Pending,
    /// In a targeted unit, but no stack instance has reported.
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

/// Every known account, by AWS account id, and the counts.
pub fn members(o: &Organization, conns: &[Connection], now: i64) -> (Vec<MemberRow>, Counts) {
    let seen: BTreeMap<&str, &super::SeenAccount> = o
        .last_reconciliation
        .iter()
        .filter(|r| r.error.is_none())
        .flat_map(|r| r.accounts.iter())
        .map(|a| (a.aws_account_id.as_str(), a))
        .collect();
    let listed = o.last_reconciliation.as_ref().is_some_and(|r| r.error.is_none());
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
            (_, _) => (
                MemberState::Pending,
                Some(note.unwrap_or_else(|| "Its stack instance asked for its external ID; Spot is waiting for the instance to report its role.".to_owned())),
            ),
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
                health: c.health,
                spot_account_id: c.spot_account().cloned(),
            },
        );
    }
    for a in seen.values().filter(|a| a.targeted) {
        if rows.contains_key(a.aws_account_id.as_str()) {
            continue;
        }
        let (state, reason) = if a.status != "ACTIVE" {
            (
                MemberState::Suspended,
                format!(
                    "Organizations reports this account as {}: no stack instance can run in it.",
                    a.status
                ),
            )
        } else {
            (MemberState::Missing, MISSING.to_owned())
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
            },
        );
    }
    let mut counts = Counts::default();
    for r in rows.values() {
        counts.add(r.state);
    }
    (rows.into_values().collect(), counts)
}
