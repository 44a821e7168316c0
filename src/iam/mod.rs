//! The policy-evaluation core shared by the trust audit and the permission
//! check: IAM's grammar parsed once, requests evaluated by IAM's rules
//! (explicit Deny, then Allow, else implicit deny), wildcards in linear
//! time. Pure: no AWS calls, nothing above it imported.

pub mod condition;
pub mod context;
pub mod eval;
pub mod guardrails;
#[cfg(test)]
mod guardrails_props;
pub mod policy;
pub mod tri;
pub mod values;
pub mod wildcard;

pub use context::Context;
pub use eval::{evaluate, Caller, Decision, Request};
pub use policy::{Effect, ParseError, Patterns, Policy, PrincipalKind, Principals, Statement};
pub use tri::Tri;
