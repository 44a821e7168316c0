//! What `account-connect recheck [--concurrency N]` prints (the CLI builds
//! the services and runs `local::run`): the summary with the figures
//! derived from it.

use super::Summary;
use serde_json::json;

/// Most checks one process runs at once.
pub const MAX_CONCURRENCY: usize = 1024;

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
