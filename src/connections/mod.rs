//! Connections: an external ID issued to a tenant for one Spot account, and
//! what becomes of it (verified, rotated, disconnected, expired).

mod connect;
mod create;
pub mod cursor;
mod drift;
mod error;
mod lease;
mod lifecycle;
mod listing;
mod organization;
mod service;
mod share;

pub use crate::domain::MAX_EVENT_DETAIL_BYTES;
pub use connect::Rechecked;
pub use create::CreateRequest;
pub use error::ServiceError;
pub use lease::IN_PROGRESS_RETRY_SECS;
pub use listing::{last_checked, ClientPage, DEFAULT_PAGE};
pub use organization::{OrganizationTemplates, TemplateError};
pub use service::{ConnectionService, Deps, ListQuery};
pub use share::ShareLease;
