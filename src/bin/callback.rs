//! Lambda entry point: CloudFormation custom-resource requests from SNS.
#![recursion_limit = "256"] // The callback future nests verification, store and HTTP futures deeply.

use account_connect::app;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let config = app::config_from_env()?;
    let responder = app::responder(&config);
    let services = app::build(config)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SnsEvent>| {
        let (services, responder) = (services.clone(), responder.clone());
        async move {
            account_connect::callback::handle(&services, &responder, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
