//! Events against the event catalogue as published: the committed OpenAPI
//! document's `webhooks` section (tests/snapshots/openapi.json, which the
//! snapshot test holds equal to the generated one), checked by the
//! `jsonschema` package in the test virtualenv (tests/tools/validate_events.py).

use serde_json::{json, Value};

/// What is wrong with each payload that is not its type's documented event:
/// `{"index", "type", "errors"}` per such payload.
pub fn documentation_errors(payloads: &[Value]) -> Vec<Value> {
    let document = super::repo_path("tests/snapshots/openapi.json");
    let input = json!({"document": document, "payloads": payloads}).to_string();
    let (ok, out) = super::run_python("tests/tools/validate_events.py", &[], &input);
    assert!(ok, "validate_events.py: {out}");
    serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Every payload is valid against its type's schema and has no field the
/// schema does not document.
pub fn assert_documented(payloads: &[Value]) {
    assert!(!payloads.is_empty(), "no payload to check");
    let errors = documentation_errors(payloads);
    assert!(
        errors.is_empty(),
        "payloads not as documented:\n{}",
        errors
            .iter()
            .map(|e| format!("{e}\n  payload: {}", payloads[e["index"].as_u64().unwrap() as usize]))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
