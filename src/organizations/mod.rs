//! Connecting every account of an AWS Organization: one management stack
//! (its own role, read-only Organizations access, a service-managed StackSet
//! for the members), member connections enrolled and linked over the
//! automatic flow's callback, and reconciliation against Organizations.

mod aws;
mod guardrails;
mod members;
mod preflight;
mod rendering;
mod service;
pub mod template;
pub mod token;

pub use crate::domain::{members, Counts, MemberRow, MemberState};
pub use crate::domain::{
    Listing, Membership, OrgState, Organization, OrganizationId, Reconciliation, SeenAccount, TargetId,
};
pub use members::{Linked, Refusal};
pub use preflight::{Preflight, PreflightAccount};
pub use service::{CreateOrganization, OrganizationError, OrganizationService, OrganizationSnapshot, MAX_TARGETS};
