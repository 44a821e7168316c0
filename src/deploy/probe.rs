//! The probe a pre-traffic hook sends to the new version of an event-driven
//! function (the callback, the dispatcher), which has no HTTP route to ask:
//! the version answers only after one read against its table, with its
//! own code and its own role, so a version that cannot read the store (a
//! bad setting, a lost grant, a record it cannot parse) fails the hook
//! before any event reaches it.

use crate::domain::ConnectionId;
use crate::services::Services;
use serde_json::{json, Value};

/// The event's one key; no AWS service sends an event with it.
pub const PROBE_KEY: &str = "accountConnectProbe";
/// The tenant the hook's API requests claim: no connection is ever stored for it.
pub const PROBE_ORG: &str = "pre-traffic-probe";

/// An event the hook sent, not one of an event source's.
pub fn is_probe(event: &Value) -> bool {
    event.get(PROBE_KEY).is_some()
}

/// The event the hook sends.
pub fn event() -> Value {
    json!({ PROBE_KEY: "pre-traffic" })
}

/// One read of a connection no one has (found missing is the answer the
/// table gives when it works); a store failure is the invocation's error.
pub async fn answer(services: &Services) -> Result<Value, crate::connections::ServiceError> {
    // A fresh random id: no connection has it.
    let found = services.connections.get_for_token(&ConnectionId::generate()).await?;
    Ok(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "read": if found.is_some() { "found" } else { "missing" },
    }))
}
