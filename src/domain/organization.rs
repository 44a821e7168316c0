//! An AWS Organization connected through its management account: the record,
//! its members' place in it, and what the last reconciliation saw.

use super::{AccountId, ConnectionId, Partition, Permissions, SpotAccountId};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// `awsorg-` and 96 random bits, hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganizationId(String);

impl OrganizationId {
    pub fn generate() -> Self {
        OrganizationId(super::random_id("awsorg-"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A short part for names (stacks, roles, StackSets).
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }
}

impl FromStr for OrganizationId {
    type Err = super::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if super::is_id(s, "awsorg-") {
            Ok(OrganizationId(s.to_owned()))
        } else {
            Err(super::ParseError::new(
                "organizationId",
                format!("{s:?} is not an organization id (awsorg- and 24 hex digits)"),
            ))
        }
    }
}

super::string_newtype_serde!(OrganizationId);
super::string_newtype_schema!(
    OrganizationId,
    serde_json::json!({"type": "string", "pattern": "^awsorg-[0-9a-f]{24}$", "examples": ["awsorg-0123456789abcdef01234567"]})
);

/// An organizational unit (`ou-…`) or the organization's root (`r-…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(String);

impl TargetId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_root(&self) -> bool {
        self.0.starts_with("r-")
    }
}

impl FromStr for TargetId {
    type Err = super::ParseError;
    /// AWS's patterns: `^r-[0-9a-z]{4,32}$` and `^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alnum = |p: &str, min: usize| {
            (min..=32).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        };
        let ok = match (s.strip_prefix("r-"), s.strip_prefix("ou-")) {
            (Some(r), _) => alnum(r, 4),
            (_, Some(ou)) => ou.split_once('-').is_some_and(|(a, b)| alnum(a, 4) && alnum(b, 8)),
            _ => false,
        };
        if ok {
            Ok(TargetId(s.to_owned()))
        } else {
            Err(super::ParseError::new(
                "organizationalUnitIds",
                format!("{s:?} is neither an organizational unit id (ou-…) nor a root id (r-…)"),
            ))
        }
    }
}

super::string_newtype_serde!(TargetId);
super::string_newtype_schema!(
    TargetId,
    serde_json::json!({"type": "string", "pattern": "^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$", "examples": ["ou-ab12-cd34ef56"]})
);

/// A connection's place in an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub organization_id: OrganizationId,
    /// The management account's own connection (made by the management stack).
    pub management: bool,
    /// False until the platform assigns the member a Spot account.
    pub spot_account_assigned: bool,
    /// Why the member is not connected, when the callback knows (a role
    /// that did not verify, its stack deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `active`; `managementStackDeleted` (its management stack, and with it
/// the management role, was deleted: nothing is read through it until the
/// stack is created again); `offboarded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrganizationState)]
pub enum OrgState {
    Active,
    /// Never stored: decided from the management connection
    /// (`Organization::state_with`), so the connection's change and this
    /// one are one write.
    ManagementStackDeleted,
    Offboarded,
}

impl OrgState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgState::Active => "active",
            OrgState::ManagementStackDeleted => "managementStackDeleted",
            OrgState::Offboarded => "offboarded",
        }
    }
}

/// An organization's state as it changed with its management connection
/// (its stack deleted, or created again), carried by that connection's
/// outbox item (`organization.state_changed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationChange {
    pub organization_id: OrganizationId,
    pub previous_state: OrgState,
    pub state: OrgState,
    /// What it means, and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl OrganizationChange {
    /// The change of `o`'s state from its management connection `before`
    /// to `after`, if any.
    pub fn between(o: &Organization, before: &super::Connection, after: &super::Connection) -> Option<Self> {
        let management = after.organization.as_ref().filter(|m| m.management)?;
        if management.organization_id != o.id {
            return None;
        }
        let (old, new) = (o.state_with(before), o.state_with(after));
        (old != new).then(|| OrganizationChange {
            organization_id: o.id.clone(),
            previous_state: old,
            state: new,
            reason: o.state_reason(new),
        })
    }
}

/// An account as Organizations listed it at the last reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeenAccount {
    pub aws_account_id: AccountId,
    /// Organizations' status: ACTIVE, SUSPENDED, PENDING_CLOSURE.
    pub status: String,
    /// Its parent (root or OU), when it is under a targeted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Under an organizational unit the StackSet targets (at any depth).
    pub targeted: bool,
    /// Its guardrails' verdicts, when they block or may block something:
    /// an index into the listing's `guardrails` (accounts under the same
    /// policies share one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub guardrails: Option<u32>,
}

/// What Organizations listed, complete: every read of one reconciliation
/// answered. Member states are computed from this and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub at: i64,
    pub accounts: Vec<SeenAccount>,
    /// The distinct verdicts of the organization's SCPs and RCPs on the
    /// targeted accounts, where they block or may block (see `SeenAccount::guardrails`).
    pub guardrails: Vec<super::guardrails::AccountGuardrails>,
    /// Why the guardrails could not be read (the listing stands without them).
    pub guardrails_error: Option<String>,
}

impl Listing {
    pub fn new(at: i64, accounts: Vec<SeenAccount>) -> Listing {
        Listing {
            at,
            accounts,
            guardrails: Vec::new(),
            guardrails_error: None,
        }
    }

    /// The guardrails' verdicts on an account, when they block or may.
    pub fn guardrails_of(&self, a: &SeenAccount) -> Option<&super::guardrails::AccountGuardrails> {
        a.guardrails.and_then(|i| self.guardrails.get(i as usize))
    }

    /// When this listing could not read the guardrails: the verdicts of
    /// `prior` stand for the accounts both list (the guardrails are
    /// unknown, not gone), so a failed read neither clears nor announces a
    /// member blocked by them. The error stays.
    pub fn keep_guardrails_of(&mut self, prior: &Listing) {
        let Some(error) = self.guardrails_error.clone() else {
            return;
        };
        let before: std::collections::BTreeMap<String, super::guardrails::AccountGuardrails> = prior
            .accounts
            .iter()
            .filter_map(|a| Some((a.aws_account_id.as_str().to_owned(), prior.guardrails_of(a)?.clone())))
            .collect();
        self.set_guardrails(Ok(before));
        self.guardrails_error = Some(error);
    }

    /// Records the verdicts, sharing one per distinct verdict.
    pub fn set_guardrails(
        &mut self,
        verdicts: Result<std::collections::BTreeMap<String, super::guardrails::AccountGuardrails>, String>,
    ) {
        self.guardrails.clear();
        self.guardrails_error = None;
        for a in &mut self.accounts {
            a.guardrails = None;
        }
        match verdicts {
            Err(e) => self.guardrails_error = Some(e),
            Ok(v) => {
                for a in &mut self.accounts {
                    let Some(g) = v.get(a.aws_account_id.as_str()).filter(|g| !g.clear()) else {
                        continue;
                    };
                    let i = match self.guardrails.iter().position(|x| x == g) {
                        Some(i) => i,
                        None => {
                            self.guardrails.push(g.clone());
                            self.guardrails.len() - 1
                        }
                    };
                    a.guardrails = Some(i as u32);
                }
            }
        }
    }
}

/// The last reconciliation: it listed the organization, or a read failed
/// and the listing before it (if any) stands. A failed one is never read as
/// an empty or partial listing: an outage changes no member's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredReconciliation", into = "StoredReconciliation")]
pub enum Reconciliation {
    Listed(Listing),
    Failed {
        at: i64,
        /// Why Organizations could not be read, for a person.
        error: String,
        /// The last complete listing, from before.
        last: Option<Listing>,
    },
}

impl Reconciliation {
    /// When it ran.
    pub fn at(&self) -> i64 {
        match self {
            Reconciliation::Listed(l) => l.at,
            Reconciliation::Failed { at, .. } => *at,
        }
    }

    /// Why it failed; None for a complete listing.
    pub fn error(&self) -> Option<&str> {
        match self {
            Reconciliation::Listed(_) => None,
            Reconciliation::Failed { error, .. } => Some(error),
        }
    }

    /// The last complete listing (this one's, or the one a failure kept).
    pub fn listing(&self) -> Option<&Listing> {
        match self {
            Reconciliation::Listed(l) => Some(l),
            Reconciliation::Failed { last, .. } => last.as_ref(),
        }
    }

    pub fn listing_mut(&mut self) -> Option<&mut Listing> {
        match self {
            Reconciliation::Listed(l) => Some(l),
            Reconciliation::Failed { last, .. } => last.as_mut(),
        }
    }

    /// A reconciliation at `at` that could not read Organizations: the
    /// listing of `prior` stands.
    pub fn failed(prior: Option<&Reconciliation>, at: i64, error: String) -> Reconciliation {
        Reconciliation::Failed {
            at,
            error,
            last: prior.and_then(Reconciliation::listing).cloned(),
        }
    }
}

/// A reconciliation as stored: the accounts of the last complete listing,
/// with `listedAt` when a later one failed. A record written before
/// `listedAt` existed carried the last listing's accounts beside its error
/// (none when nothing was listed before): read as that listing.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredReconciliation {
    at: i64,
    #[serde(default)]
    accounts: Vec<SeenAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    listed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    guardrails: Vec<super::guardrails::AccountGuardrails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guardrails_error: Option<String>,
}

impl From<StoredReconciliation> for Reconciliation {
    fn from(s: StoredReconciliation) -> Self {
        match s.error {
            None => Reconciliation::Listed(Listing {
                at: s.at,
                accounts: s.accounts,
                guardrails: s.guardrails,
                guardrails_error: s.guardrails_error,
            }),
            Some(error) => {
                let empty = s.accounts.is_empty();
                let listing = |at| Listing {
                    at,
                    accounts: s.accounts,
                    guardrails: s.guardrails,
                    guardrails_error: s.guardrails_error,
                };
                let last = match s.listed_at {
                    Some(at) => Some(listing(at)),
                    None if empty => None,
                    None => Some(listing(s.at)),
                };
                Reconciliation::Failed { at: s.at, error, last }
            }
        }
    }
}

impl From<Reconciliation> for StoredReconciliation {
    fn from(r: Reconciliation) -> Self {
        match r {
            Reconciliation::Listed(l) => StoredReconciliation {
                at: l.at,
                accounts: l.accounts,
                error: None,
                listed_at: None,
                guardrails: l.guardrails,
                guardrails_error: l.guardrails_error,
            },
            Reconciliation::Failed { at, error, last } => {
                let listed_at = last.as_ref().map(|l| l.at);
                let l = last.unwrap_or_else(|| Listing::new(at, Vec::new()));
                StoredReconciliation {
                    at,
                    listed_at,
                    accounts: l.accounts,
                    error: Some(error),
                    guardrails: l.guardrails,
                    guardrails_error: l.guardrails_error,
                }
            }
        }
    }
}

/// The organization as stored. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: OrganizationId,
    /// The tenant (Spot organization) it belongs to.
    pub org: String,
    /// The management account's Spot account; scopes who may see the members.
    pub account_id: SpotAccountId,
    pub partition: Partition,
    pub permissions: Permissions,
    pub management_account_id: AccountId,
    /// Empty: the whole organization (the stack asks for the root id).
    pub organizational_unit_ids: Vec<TargetId>,
    pub management_connection_id: ConnectionId,
    pub state: OrgState,
    #[serde(default)]
    pub last_reconciliation: Option<Reconciliation>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub version: u64,
}

impl Organization {
    /// Its state, given its management connection: an active one whose
    /// management stack was deleted (the connection pending again, with
    /// why) is `managementStackDeleted` until the stack reports again.
    pub fn state_with(&self, management: &super::Connection) -> OrgState {
        let deleted = management.state == super::Status::Pending
            && management
                .organization
                .as_ref()
                .is_some_and(|m| m.management && m.organization_id == self.id && m.note.is_some());
        match self.state {
            OrgState::Active if deleted => OrgState::ManagementStackDeleted,
            s => s,
        }
    }

    /// What `state` means for this organization and what to do, when it
    /// is not simply active.
    pub fn state_reason(&self, state: OrgState) -> Option<String> {
        let id = self.id.as_str();
        match state {
            OrgState::Active => None,
            OrgState::ManagementStackDeleted => Some(format!(
                "The management stack in AWS account {} was deleted, and its role with it: Spot can no longer read the organization, so nothing is reconciled and no account joins; the member accounts stay connected through their own roles, and the Spot account stays held. Create the management stack again from the management connection's quick-create link (GET /v1/organizations/{id}: managementConnection.cloudFormation.quickCreateUrl, or the template at GET /v1/organizations/{id}/template) in account {}, or offboard the organization (DELETE /v1/organizations/{id}).",
                self.management_account_id, self.management_account_id
            )),
            OrgState::Offboarded => Some(
                "Offboarded: every member was disconnected; start again with POST /v1/organizations.".to_owned(),
            ),
        }
    }

    /// The last complete listing of Organizations, whatever happened since.
    pub fn listing(&self) -> Option<&Listing> {
        self.last_reconciliation.as_ref().and_then(Reconciliation::listing)
    }
}

#[cfg(test)]
mod tests {
    use super::{Listing, Reconciliation, SeenAccount};
    use serde_json::json;

    fn seen(id: &str) -> SeenAccount {
        SeenAccount {
            aws_account_id: id.parse().unwrap(),
            status: "ACTIVE".into(),
            parent_id: None,
            targeted: true,
            guardrails: None,
        }
    }

    fn round_trip(r: &Reconciliation) -> Reconciliation {
        serde_json::from_value(serde_json::to_value(r).unwrap()).unwrap()
    }

    #[test]
    fn a_failed_reconciliation_keeps_the_listing_before_it_and_says_why() {
        let listed = Reconciliation::Listed(Listing::new(10, vec![seen("111111111111")]));
        assert_eq!(round_trip(&listed), listed);
        let failed = Reconciliation::failed(Some(&listed), 20, "HTTP 503".into());
        assert_eq!(failed.at(), 20);
        assert_eq!(failed.error(), Some("HTTP 503"));
        assert_eq!(failed.listing().map(|l| l.at), Some(10));
        assert_eq!(round_trip(&failed), failed);
        // Failing again keeps the same listing, not the failure's time.
        let again = Reconciliation::failed(Some(&failed), 30, "HTTP 404".into());
        assert_eq!(again.listing(), listed.listing());
        // Never listed: failing lists nothing, not an empty organization.
        let first = Reconciliation::failed(None, 5, "not connected yet".into());
        assert_eq!(first.listing(), None);
        assert_eq!(round_trip(&first), first);
    }

    #[test]
    fn records_written_before_listed_at_read_as_they_meant() {
        // A failure kept the accounts listed before it beside its error.
        let r: Reconciliation = serde_json::from_value(json!({
            "at": 20, "error": "HTTP 503",
            "accounts": [{"awsAccountId": "111111111111", "status": "ACTIVE", "targeted": true}]
        }))
        .unwrap();
        assert_eq!(r.error(), Some("HTTP 503"));
        assert_eq!(r.listing().map(|l| l.accounts.len()), Some(1));
        // A failure before any listing: no listing.
        let r: Reconciliation = serde_json::from_value(json!({"at": 20, "error": "x", "accounts": []})).unwrap();
        assert_eq!(r.listing(), None);
        let r: Reconciliation = serde_json::from_value(json!({"at": 20, "accounts": []})).unwrap();
        assert_eq!(r.listing().map(|l| l.accounts.len()), Some(0));
    }
}
