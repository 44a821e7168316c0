//! Counts as CloudWatch Embedded Metric Format: one JSON log line a metric,
//! which CloudWatch turns into metrics with no API call. Written to stdout in
//! Lambda, or where `ACCOUNT_CONNECT_METRICS=emf` asks (a container whose
//! logs reach CloudWatch); elsewhere they would be noise. The configuration
//! decides (`enable`, called by the composition root).

use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};

pub const NAMESPACE: &str = "AccountConnect";

/// One EMF line for `name` = `value`, with dimensions.
pub fn line(name: &str, value: u64, dims: &[(&str, &str)], timestamp_ms: u128) -> String {
    let mut root = Map::new();
    let dim_names: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dim_names],
                "Metrics": [{"Name": name, "Unit": "Count"}]
            }]
        }),
    );
    for (k, v) in dims {
        root.insert((*k).into(), Value::String((*v).into()));
    }
    root.insert(name.into(), json!(value));
    Value::Object(root).to_string()
}

/// Whether metric lines are written; off until the composition root says
/// otherwise.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns metric lines on or off for the process, as the configuration says
/// (`Config::metrics`: `ACCOUNT_CONNECT_METRICS`, else only in Lambda); the
/// composition root calls it when it builds the services.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Counts one `name`, if metrics are on; for the modules above that have
/// counts of their own (the verifier's).
pub fn emit(name: &str, dims: &[(&str, &str)]) {
    emit_value(name, 1, dims);
}

fn emit_value(name: &str, value: u64, dims: &[(&str, &str)]) {
    if !enabled() {
        return;
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    println!("{}", line(name, value, dims, ms));
}

/// A count without dimensions: the re-check's StaleConnections (per
/// enumeration, summed by the alarm), RecheckTimedOut.
pub fn count(name: &str, value: u64) {
    emit_value(name, value, &[]);
}

/// What the callback answered CloudFormation.
pub fn callback(status: &str, request_type: &str) {
    let name = if status == "SUCCESS" {
        "CallbackSucceeded"
    } else {
        "CallbackFailed"
    };
    emit(name, &[("RequestType", request_type)]);
}

/// A callback message refused (`Reason`: region, response_url, unreadable,
/// too_large, token, partition, account, stack; relayed requests also
/// relay_signature, relay_timestamp, relay_replay), also counted without the
/// dimension for the alarm.
pub fn callback_rejected(reason: &str) {
    emit("CallbackRejected", &[]);
    emit("CallbackRejected", &[("Reason", reason)]);
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_emf() {
        let l: serde_json::Value =
            serde_json::from_str(&super::line("FailedCheck", 1, &[("Check", "trust_policy")], 5)).unwrap();
        assert_eq!(l["_aws"]["CloudWatchMetrics"][0]["Namespace"], "AccountConnect");
        assert_eq!(l["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Check");
        assert_eq!(l["Check"], "trust_policy");
        assert_eq!(l["FailedCheck"], 1);
    }
}
