//! Connections: an external ID issued to a tenant for one Spot account, and
//! what becomes of it (verified, rotated, disconnected, expired).

mod model;
mod service;
mod trust;

pub use model::{
    CloudFormationLinks, ConnectedStack, Connection, ConnectionId, Event, EventKind, Health, Method, Status,
};
pub use service::{now, ConnectionService, CreateRequest, ListQuery, ServiceError};
pub use trust::trust_policy;
