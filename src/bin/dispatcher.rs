//! Lambda entry point of the event dispatcher: the table's stream hands it
//! new outbox items, which it fans out to webhooks and puts on the
//! EventBridge bus; the webhook attempt queue hands it the attempts; and,
//! as the sweeper function, a schedule hands it its event, on which it
//! sweeps what the stream and the queue dropped (see
//! `account_connect::events`). One binary, told apart by the event's shape;
//! a pre-traffic hook's probe is answered after one read of the table.
//! With `ACCOUNT_CONNECT_PRE_TRAFFIC_API_VERSION` set it is CodeDeploy's
//! pre-traffic hook instead (`account_connect::deploy`): no new binary to
//! build and ship for it.
#![recursion_limit = "256"] // The sweep nests fan-out, bus and queue futures in the handler's.

use account_connect::app;
use account_connect::deploy::probe;
use account_connect::events::{lambda, Dispatcher};
use lambda_runtime::{service_fn, LambdaEvent};

fn main() -> std::process::ExitCode {
    app::exit_status(run())
}

#[tokio::main]
async fn run() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    if let Some(hook) = app::pre_traffic_config_from_env()? {
        let hook = app::pre_traffic_hook(hook).await;
        return lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
            let hook = hook.clone();
            async move { Ok::<_, lambda_runtime::Error>(hook.handle(event.payload).await?) }
        }))
        .await;
    }
    let services = app::build(app::config_from_env()?)?;
    let dispatcher = Dispatcher::for_services(&services).await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (dispatcher, services) = (dispatcher.clone(), services.clone());
        async move {
            if probe::is_probe(&event.payload) {
                return Ok(probe::answer(&services).await?);
            }
            lambda::handle_any(&dispatcher, event.payload).await
        }
    }))
    .await
}
