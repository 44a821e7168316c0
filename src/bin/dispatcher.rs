//! Lambda entry point of the event dispatcher: the table's stream hands it
//! new outbox items, which it fans out to webhooks and puts on the
//! EventBridge bus; the webhook attempt queue hands it the attempts; and,
//! as the sweeper function, a schedule hands it its event, on which it
//! sweeps what the stream and the queue dropped (see
//! `account_connect::events`). One binary, told apart by the event's shape.
#![recursion_limit = "256"] // The sweep nests fan-out, bus and queue futures in the handler's.

use account_connect::app;
use account_connect::events::{lambda, Dispatcher};
use lambda_runtime::{service_fn, LambdaEvent};

fn main() -> std::process::ExitCode {
    app::exit_status(run())
}

#[tokio::main]
async fn run() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let services = app::build(app::config_from_env()?)?;
    let dispatcher = Dispatcher::for_services(&services).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let dispatcher = dispatcher.clone();
        async move { lambda::handle_any(&dispatcher, event.payload).await }
    }))
    .await
}
