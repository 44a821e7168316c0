//! account-connect: connects customers' AWS accounts through a cross-account
//! IAM role. One axum Router serves both Lambda and the local server.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod ids;
pub mod policy;
pub mod telemetry;
