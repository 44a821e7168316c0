//! Verifying a role: parse its ARN, assume it with the external ID (waiting
//! out IAM propagation), then check identity, trust policy and permissions
//! from reads made side by side, under one deadline: at most three levels
//! of calls after AssumeRole, two where nothing moved since the last
//! conclusive check (`reads`). `verifier` holds the clients, `checks` the
//! pipeline, `assume` the wait.

mod assume;
mod aws;
mod checks;
pub mod evaluate;
mod metrics;
pub mod partitions;
mod permissions;
pub mod pool;
pub mod reads;
pub mod report;
mod secret_source;
mod simulate;
pub mod trust;
mod trust_probe;
mod verifier;

pub use aws::classify_message;
pub use permissions::required_for;
pub use report::{Check, CheckId, CheckStatus, DecidedBy, Outcome, Report};
pub use verifier::Verifier;

use std::time::Duration;

/// What the identity, trust and permission reads share after AssumeRole.
/// The API's worst case is budget + MIN_ATTEMPT + this (at least two call
/// timeouts before it with a rotation pending): with the largest budget
/// template.yaml allows (20 s), 27 s, inside the function's 29 s and API
/// Gateway's 30 s, with room for the store's writes.
pub const CHECKS_BUDGET: Duration = Duration::from_secs(6);
