//! Lambda entry point: the scheduled re-check of connected connections.

use account_connect::app;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use std::time::{Duration, Instant};

/// Stop starting new checks this long before the function's deadline.
const SAFETY_MARGIN: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let state = app::build(app::config_from_env()?)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<EventBridgeEvent>| {
        let state = state.clone();
        async move {
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let deadline = Instant::now() + left.saturating_sub(SAFETY_MARGIN);
            let summary = account_connect::recheck::run(&state, deadline).await;
            tracing::info!(?summary, "re-check done");
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(summary)?)
        }
    }))
    .await
}
