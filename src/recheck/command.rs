//! `account-connect recheck [--concurrency N]`: the fleet re-check in one
//! process over the configured store, with an in-process queue; prints the
//! summary as JSON.

use super::{local, EnumerateOptions, Summary, Worker};
use crate::config::Config;
use crate::connections::ConnectionService;
use serde_json::json;
use std::sync::Arc;

/// Most checks one process runs at once.
pub const MAX_CONCURRENCY: usize = 1024;

/// `concurrency` overrides the configured one (the CLI checks its range).
pub fn main(concurrency: Option<usize>) -> Result<(), String> {
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    if let Some(n) = concurrency {
        config.recheck_concurrency = n.clamp(1, MAX_CONCURRENCY);
    }
    // Logs to stderr, so stdout is the summary alone.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
    let store = crate::store::open(&config.store_url)?;
    let concurrency = config.recheck_concurrency;
    let options = EnumerateOptions::from_config(&config);
    let worker = Worker::new(ConnectionService::new(store, Arc::new(config)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let summary = runtime.block_on(local::run(&worker, &options, concurrency));
    println!(
        "{}",
        serde_json::to_string_pretty(&report(&summary, concurrency)).expect("json")
    );
    if summary.errors > 0 {
        return Err(format!(
            "{} re-check(s) failed on the store or the queue",
            summary.errors
        ));
    }
    Ok(())
}

/// The summary with the figures derived from it.
pub fn report(s: &Summary, concurrency: usize) -> serde_json::Value {
    let attempted = s.attempted();
    let secs = s.elapsed_ms as f64 / 1000.0;
    let per_sec = if secs > 0.0 { attempted as f64 / secs } else { 0.0 };
    let mean_ms = if attempted > 0 {
        s.check_ms_total as f64 / attempted as f64
    } else {
        0.0
    };
    let mut v = serde_json::to_value(s).expect("summaries serialize");
    v["concurrency"] = json!(concurrency);
    v["checksPerSec"] = json!((per_sec * 10.0).round() / 10.0);
    v["meanCheckMs"] = json!(mean_ms.round());
    // Little's law: checks in flight on average.
    v["effectiveConcurrency"] = json!((per_sec * mean_ms / 1000.0 * 10.0).round() / 10.0);
    v
}
