//! Connections: an external ID issued to a tenant for one Spot account, and
//! what becomes of it (verified, rotated, disconnected, expired).

mod connect;
mod create;
pub mod cursor;
mod error;
mod lifecycle;
mod listing;
mod service;

pub use create::CreateRequest;
pub use error::ServiceError;
pub use listing::{ClientPage, DEFAULT_PAGE};
pub use service::{ConnectionService, ListQuery, MAX_EVENT_DETAIL_BYTES};
