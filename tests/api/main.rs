//! The integration tests, one module per feature, in one crate: the library
//! and its SDK-heavy dependencies are linked once, not once per file.
//!
//! `cargo test --test api <filter>` runs some of them; module paths make the
//! filter (`cargo test connections::`).
#![recursion_limit = "256"] // The callback future nests verification (per-partition access), store and HTTP futures deeply.

#[path = "../aws_standin/mod.rs"]
mod aws_standin;
#[path = "../common/mod.rs"]
mod common;

mod automatic;
mod callback_attacks;
mod callback_fair;
mod callback_lambda;
mod callback_once;
mod catalog;
mod connections;
mod deploy_probe;
mod event_catalog;
mod event_replay;
mod event_sizes;
mod events;
mod fixtures;
mod hostile_inputs;
mod http_api;
mod index_shards;
mod lambda_entry;
mod layering;
mod lifecycle_edges;
mod metrics_emf;
mod openapi_fuzz;
mod organization_holds;
mod organization_management;
mod organization_paging;
mod organization_partitions;
mod organization_store;
mod organizations;
mod outage;
mod partitions;
mod policy_render;
mod rate_limits;
mod recheck_fleet;
mod recheck_reads;
mod regions;
mod relay;
mod secrets;
mod serve_timeouts;
mod spot_compat;
mod spot_report;
mod store_conformance;
mod store_unavailable;
mod store_versions;
mod sweeper;
mod template_routes;
mod template_upload;
mod vendor_accounts;
mod verdict_race;
mod verification;
mod verification_aws;
mod webhook_endpoints;
mod webhook_recovery;
mod webhook_secrets;
mod webhook_share;
mod webhook_store;
mod webhooks;
mod webhooks_aws;
mod webhooks_restart;
