//! Lambda entry point of the fleet re-check: the schedule's EventBridge
//! event enumerates connected connections into the queue; the queue's SQS
//! batches are the checks (see `account_connect::recheck`).

// The SQS batch handler nests a check's futures deeper than the default 128.
#![recursion_limit = "256"]

use account_connect::app;
use account_connect::recheck::lambda::Fleet;
use account_connect::recheck::{EnumerateOptions, Worker};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stop starting new work this long before the function's deadline.
const SAFETY_MARGIN: Duration = Duration::from_secs(30);

fn main() -> std::process::ExitCode {
    app::exit_status(run())
}

#[tokio::main]
async fn run() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let config = app::config_from_env()?;
    let url = config
        .recheck_queue_url
        .clone()
        .ok_or("ACCOUNT_CONNECT_RECHECK_QUEUE_URL is not set")?;
    let options = EnumerateOptions::from_config(&config);
    let concurrency = config.recheck_concurrency;
    let aws = app::aws_configs();
    let services = app::build_with_aws(config, aws.clone())?;
    let fleet = Fleet {
        options,
        concurrency,
        queue: Arc::new(app::recheck_queue(&aws, url)),
        worker: Worker::for_services(&services),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let fleet = fleet.clone();
        async move {
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let deadline = Instant::now() + left.saturating_sub(SAFETY_MARGIN);
            if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                let (response, summary) = fleet.on_batch(batch, deadline).await;
                tracing::info!(
                    ?summary,
                    failures = response.batch_item_failures.len(),
                    "re-check batch done"
                );
                return Ok::<_, lambda_runtime::Error>(serde_json::to_value(response)?);
            }
            // The schedule (EventBridge "Scheduled Event").
            let queued = fleet.on_schedule(deadline).await?;
            Ok(serde_json::to_value(queued)?)
        }
    }))
    .await
}
