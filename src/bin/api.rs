//! Lambda entry point of the HTTP API (ApiFunction, and RelayIntakeFunction
//! behind its function URL): API Gateway events through lambda_http to the
//! router `serve` runs locally. DynamoDB only: neither the SQLite store nor
//! the operator commands are linked, which keeps the package small
//! (docs/benchmarks.md).

use account_connect::app;
use std::sync::OnceLock;
use tower::ServiceExt;

fn main() -> std::process::ExitCode {
    app::exit_status(run())
}

fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    account_connect::telemetry::init(true);
    let config = app::config_from_env()?;
    if config.cursor_key.is_none() {
        tracing::warn!("ACCOUNT_CONNECT_CURSOR_KEY is not set: a cursor from one instance is refused by another");
    }
    // Settings and store are checked here, so a bad one fails the init; the
    // router (its 34 routes, a third of the init's instructions) is made by
    // the first event, which needs it, not before the first /next.
    let services = app::build_dynamodb(config)?;
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    let handler = lambda_http::service_fn(move |req: lambda_http::Request| {
        ROUTER
            .get_or_init(|| app::router(services.clone()))
            .clone()
            .oneshot(req)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(lambda_http::run(handler))
}
