//! Lambda entry point: CloudFormation custom-resource requests from SNS,
//! and the ones deferred to the callback queue (an organization over its
//! share, docs/design.md "Fair shares") from SQS.
#![recursion_limit = "256"] // The callback future nests verification, store and HTTP futures deeply.

use account_connect::app;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

/// An SQS batch names its source in each record; an SNS one does not use
/// this key (`EventSource`, capitalized).
fn from_sqs(event: &Value) -> bool {
    event["Records"][0]["eventSource"] == "aws:sqs"
}

fn main() -> std::process::ExitCode {
    app::exit_status(run())
}

#[tokio::main]
async fn run() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let config = app::config_from_env()?;
    let responder = app::responder(&config);
    let services = app::build(config)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (services, responder) = (services.clone(), responder.clone());
        async move {
            if from_sqs(&event.payload) {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                let answer = account_connect::callback::handle_deferred(&services, &responder, batch).await;
                return Ok::<Value, lambda_runtime::Error>(serde_json::to_value(answer)?);
            }
            let sns: SnsEvent = serde_json::from_value(event.payload)?;
            account_connect::callback::handle(&services, &responder, sns).await?;
            Ok(Value::Null)
        }
    }))
    .await
}
