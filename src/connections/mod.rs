//! Connections: an external ID issued to a tenant for one Spot account, and
//! what becomes of it (verified, rotated, disconnected, expired).

pub mod cursor;
mod listing;
mod service;

pub use listing::{ClientPage, DEFAULT_PAGE};
pub use service::{ConnectionService, CreateRequest, ListQuery, ServiceError, MAX_EVENT_DETAIL_BYTES};
