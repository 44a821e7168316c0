//! What the store keeps for AWS Organizations: the organization record, and
//! one member connection per (organization, AWS account), enforced by the
//! store so concurrent or repeated enrollments get the same connection.

use super::{Idempotency, Page, StoreError};
use crate::domain::{Connection, Event, OutboxItem};
use crate::domain::{Organization, OrganizationId};

#[async_trait::async_trait]
pub trait OrganizationStore: Send + Sync {
    /// Writes a new organization record (its id is new) and its management
    /// connection as `Store::create` writes a connection (external-ID claim,
    /// account hold, idempotency record, event), all or nothing: a refused
    /// create leaves neither.
    async fn create_organization(
        &self,
        o: &Organization,
        management: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Replaces the record if its stored version is `o.version - 1`.
    async fn update_organization(&self, o: &Organization) -> Result<(), StoreError>;

    /// The record by id, whatever its tenant: the service checks the tenant,
    /// the callback the organization's token.
    async fn get_organization(&self, id: &OrganizationId) -> Result<Option<Organization>, StoreError>;

    /// The member connection of `member`'s organization and AWS account: the
    /// stored one if there is one, else `member` itself, written now with its
    /// external-ID claim, `event` and the outbox item `announce` (the
    /// member's state change), all or nothing.
    async fn enroll_member(
        &self,
        member: &Connection,
        event: &Event,
        announce: Option<&OutboxItem>,
    ) -> Result<Connection, StoreError>;

    /// The organization's members by AWS account, after the AWS account `after`.
    async fn list_members(&self, id: &OrganizationId, after: Option<&str>, limit: usize) -> Result<Page, StoreError>;
}

/// The organization and AWS account a member connection is keyed by.
pub(crate) fn member_key(c: &Connection) -> Result<(&OrganizationId, &str), StoreError> {
    match (&c.organization, &c.aws_account_id) {
        (Some(m), Some(a)) if !m.management => Ok((&m.organization_id, a.as_str())),
        _ => Err(StoreError::Corrupt(format!(
            "{} is not an organization member with an AWS account",
            c.id.as_str()
        ))),
    }
}

/// A list position is an AWS account id, nothing else.
pub(crate) fn member_after(after: Option<&str>) -> Result<String, StoreError> {
    match after {
        None => Ok(String::new()),
        Some(a) if a.parse::<crate::domain::AccountId>().is_ok() => Ok(a.to_owned()),
        Some(_) => Err(StoreError::OutsideQuery),
    }
}
