//! Lambda entry point of the event dispatcher: the table's stream hands it
//! new outbox items, which it puts on the EventBridge bus (see
//! `account_connect::events`).

use account_connect::app;
use account_connect::events::{lambda, Dispatcher};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let services = app::build(app::config_from_env()?)?;
    let dispatcher = Dispatcher::for_services(&services)
        .await
        .ok_or("ACCOUNT_CONNECT_EVENT_BUS is not set")?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let dispatcher = dispatcher.clone();
        async move {
            let delivered = lambda::handle(&dispatcher, event.payload).await?;
            tracing::info!(delivered, "outbox records delivered");
            Ok::<_, lambda_runtime::Error>(serde_json::json!({ "delivered": delivered }))
        }
    }))
    .await
}
