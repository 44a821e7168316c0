//! Lambda entry point: CloudFormation custom-resource requests from SNS.
#![recursion_limit = "256"] // The callback future nests verification, store and HTTP futures deeply.

use account_connect::api::AppState;
use account_connect::automatic::callback::Responder;
use account_connect::config::Config;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let config = Config::from_env()?;
    let responder = Responder::new(&config);
    let state = AppState::new(config)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SnsEvent>| {
        let (state, responder) = (state.clone(), responder.clone());
        async move {
            account_connect::automatic::callback::handle(&state, &responder, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
