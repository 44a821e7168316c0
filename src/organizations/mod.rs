//! Connecting every account of an AWS Organization: one management stack
//! (its own role, read-only Organizations access, a service-managed StackSet
//! for the members), member connections enrolled and linked over the
//! automatic flow's callback, and reconciliation against Organizations.

mod aws;
mod guardrails;
mod management;
mod members;
mod memo;
mod preflight;
mod rendering;
mod service;
pub mod template;
pub mod token;

pub use crate::domain::{members, Counts, MemberRow, MemberState};
pub use crate::domain::{
    Listing, Membership, OrgState, Organization, OrganizationId, Reconciliation, SeenAccount, TargetId,
};
pub use guardrails::ACCOUNTS_AT_ONCE as GUARDRAIL_ACCOUNTS_AT_ONCE;
pub use members::{Linked, Refusal};
pub use preflight::{Preflight, PreflightAccount};
pub use service::{CreateOrganization, OrganizationError, OrganizationService, OrganizationSnapshot, MAX_TARGETS};
