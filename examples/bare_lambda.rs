//! The baseline for the rehearsal's init times (scripts/rehearse): the
//! least a function on the crate's `lambda_runtime` and tokio can be. No
//! configuration, no AWS SDK, no logging; it answers every event with
//! `{}`. The rehearsal starts it under its Lambda Runtime API emulator,
//! sends it one event and sets its init time beside the real functions'.

use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<serde_json::Value>| async {
        Ok::<_, lambda_runtime::Error>(serde_json::json!({}))
    }))
    .await
}
