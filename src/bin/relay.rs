//! Lambda entry point of a partition relay (infra/partition-relay.yaml):
//! custom resource requests from the partition's SNS topic, forwarded to
//! the main deployment signed with the key in the partition's Secrets
//! Manager (`ACCOUNT_CONNECT_RELAY_KEY_SECRET`), read per invocation so a
//! rotation applies at once.

use account_connect::app;
use account_connect::automatic::relay_forward::{Forwarded, Forwarder};
use account_connect::config::Secret;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use secrecy::ExposeSecret;

fn main() -> std::process::ExitCode {
    app::exit_status(run())
}

#[tokio::main]
async fn run() -> Result<(), lambda_runtime::Error> {
    account_connect::telemetry::init(true);
    let config = app::relay_config_from_env()?;
    let forwarder = Forwarder::new(&config.url)?;
    let sm = app::relay_key_client();
    let secret = config.key_secret;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SnsEvent>| {
        let (forwarder, sm, secret) = (forwarder.clone(), sm.clone(), secret.clone());
        async move {
            let key = sm
                .get()
                .await
                .get_secret_value()
                .secret_id(&secret)
                .send()
                .await
                .map_err(|e| format!("cannot read the relay key: {:?}", e.into_service_error()))?
                .secret_string
                .unwrap_or_default();
            let key = Secret::from(key.trim().as_bytes().to_vec());
            if key.expose_secret().len() < account_connect::automatic::relay::MIN_KEY_BYTES {
                return Err(lambda_runtime::Error::from(
                    "the relay key is shorter than 32 characters",
                ));
            }
            for record in event.payload.records {
                let now = account_connect::clock::now();
                match forwarder.forward(key.expose_secret(), &record.sns.message, now).await {
                    Forwarded::Handled => tracing::info!("relayed a custom resource request"),
                    // Lambda retries the event, then sends it to the dead-letter queue.
                    Forwarded::Retry(m) => return Err(lambda_runtime::Error::from(m)),
                    Forwarded::Dropped(m) => tracing::error!(reason = %m, "dropped a custom resource request"),
                }
            }
            Ok::<(), lambda_runtime::Error>(())
        }
    }))
    .await
}
