//! Connections: an external ID issued to a tenant for one Spot account, and
//! what becomes of it (verified, rotated, disconnected, expired).

pub mod cursor;
mod drift;
mod listing;
mod model;
mod service;
mod trust;

pub use listing::{last_checked, ClientPage, DEFAULT_PAGE};
pub use model::{
    CloudFormationLinks, ConnectedStack, Connection, ConnectionId, Drift, DriftFix, Event, EventKind, Health, Method,
    Status,
};
pub use service::{ConnectionService, CreateRequest, ListQuery, Rechecked, ServiceError, MAX_EVENT_DETAIL_BYTES};
pub use trust::trust_policy;
