//! account-connect: connects customers' AWS accounts through a cross-account
//! IAM role. One axum Router serves both Lambda and the local server.

pub mod api;
pub mod app;
pub mod automatic;
pub mod callback;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod deploy;
pub mod domain;
pub mod events;
pub mod iam;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod organizations;
pub mod policy;
pub mod recheck;
pub mod sdk;
pub mod services;
pub mod shares;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod verify;
pub mod views;
pub mod webhooks;
