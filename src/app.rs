//! The composition root: reads the configuration, loads the AWS SDK's
//! configuration (here only, once per partition, on first use) and builds
//! the store, the verifier, the AWS clients and the services once. Every
//! entry point is made from what it builds: the HTTP router (Lambda and
//! `serve`), the callback (src/bin/callback.rs), the re-check
//! (src/bin/recheck.rs), the partition relay (src/bin/relay.rs) and the CLI.

use crate::automatic::Templates;
use crate::callback::Responder;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, RelayConfig};
use crate::connections::cursor::Cursors;
use crate::connections::{ConnectionService, Deps};
use crate::organizations::OrganizationService;
use crate::sdk::{AwsConfigs, Loader};
use crate::services::Services;
use crate::store::DynStore;
use crate::verify::Verifier;
use secrecy::ExposeSecret;
use std::sync::Arc;

/// Why the service cannot start; each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::OpenError),
}

/// The configuration from the environment.
pub fn config_from_env() -> Result<Config, AppError> {
    Ok(Config::from_env()?)
}

/// The partition relay's settings from the environment (src/bin/relay.rs).
pub fn relay_config_from_env() -> Result<RelayConfig, AppError> {
    Ok(RelayConfig::from_env()?)
}

/// The only loader of the AWS SDK's configuration: the environment
/// (`AWS_*`) and the AWS config files, as the SDK reads them.
struct Environment;

#[async_trait::async_trait]
impl Loader for Environment {
    async fn own(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
    }

    async fn profile(&self, name: &str) -> aws_config::SdkConfig {
        // The profile's keys, role_arn/source_profile or credential_process,
        // never AWS_ACCESS_KEY_ID: the environment holds the service's own
        // identity.
        let creds = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(name)
            .build();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .profile_name(name)
            .credentials_provider(creds)
            .load()
            .await
    }
}

/// The AWS SDK's configuration for one process: nothing is loaded until a
/// client needs it, then each partition's once, shared by every client.
pub fn aws_configs() -> AwsConfigs {
    AwsConfigs::new(Environment)
}

/// Opens the configured store and builds the services on it; AWS clients
/// are made on first use.
pub fn build(config: Config) -> Result<Services, AppError> {
    build_with_aws(config, aws_configs())
}

/// The same with AWS configuration the caller shares with clients of its
/// own (the re-check's queue).
pub fn build_with_aws(config: Config, aws: AwsConfigs) -> Result<Services, AppError> {
    let store = open_store(&config, &aws)?;
    Ok(compose(config, store, aws, Clock::system()))
}

/// The configured store, webhook secrets sealed under the configured key
/// (KMS, a key file, or the one beside an SQLite database by default).
pub fn open_store(config: &Config, aws: &AwsConfigs) -> Result<DynStore, crate::store::OpenError> {
    use crate::store::SecretsKey;
    let key = match (&config.secrets_kms_key, &config.secrets_key_file) {
        (Some(kms), _) => SecretsKey::Kms(kms.clone()),
        (None, Some(file)) => SecretsKey::File(file.clone()),
        (None, None) => SecretsKey::default_for(&config.store_url),
    };
    crate::store::open_with(&config.store_url, key, aws)
}

/// The services on a store the caller opened (tests, a second entry point
/// sharing one store).
pub fn build_with_store(config: Config, store: DynStore) -> Services {
    build_on(config, store, Clock::system())
}

/// The services on a store and a clock the caller chose: every service,
/// the verifier and the relay intake are stamped by that one clock (tests
/// move an adjustable one instead of sleeping).
pub fn build_on(config: Config, store: DynStore, clock: Clock) -> Services {
    compose(config, store, aws_configs(), clock)
}

fn compose(config: Config, store: DynStore, aws: AwsConfigs, clock: Clock) -> Services {
    crate::metrics::enable(config.metrics);
    let config = Arc::new(config);
    let cursors = match &config.cursor_key {
        Some(key) => Cursors::new(key.expose_secret()),
        None => Cursors::random(),
    };
    let deps = Deps {
        verifier: Arc::new(Verifier::from_config(&config, aws.clone()).with_clock(clock.clone())),
        store,
        config: config.clone(),
        templates: Arc::new(Templates::new(aws.clone())),
        cursors: Arc::new(cursors),
        clock,
        aws,
    };
    // An organization's connections are fixed with the organization's
    // templates, which the organization service renders (the one handed
    // in has no renderer of its own: no cycle).
    let connections = ConnectionService::new(&deps);
    let organizations = OrganizationService::new(&deps, connections.clone());
    let connections = connections.with_organization_templates(Arc::new(organizations.clone()));
    let relay = Arc::new(crate::automatic::RelayIntake::new(
        &config,
        deps.store.clone(),
        deps.clock.clone(),
        deps.aws.clone(),
    ));
    Services {
        organizations: organizations.with_connections(connections.clone()),
        webhooks: crate::webhooks::WebhookService::new(&deps),
        config,
        connections,
        relay,
        aws: deps.aws,
    }
}

/// The HTTP API over the services, for Lambda and the local server alike.
pub fn router(services: Services) -> axum::Router {
    crate::api::router(services)
}

/// The callback's client for answering CloudFormation, with its allow-list.
pub fn responder(config: &Config) -> Responder {
    Responder::new(config)
}

/// The re-check's SQS queue, on the configuration the services share (its
/// client made at the first message).
pub fn recheck_queue(aws: &AwsConfigs, url: String) -> crate::recheck::SqsQueue {
    crate::recheck::SqsQueue::on(aws, url)
}

/// The partition relay's client for its key's secret: the relay runs in
/// its partition, on its own role, and reads the key per invocation (the
/// client made at the first).
pub fn relay_key_client() -> crate::sdk::OwnClient<aws_sdk_secretsmanager::Client> {
    crate::sdk::OwnClient::new(&aws_configs(), aws_sdk_secretsmanager::Client::new)
}

/// A Lambda binary's end: an error that kept it from starting (or ended
/// its runtime) goes to stderr in words, as the API's (`account-connect`)
/// does, with exit status 2; never Rust's debug text of the error.
pub fn exit_status(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                let said = cause.to_string();
                if !message.contains(&said) {
                    message = format!("{message}: {said}");
                }
                source = cause.source();
            }
            eprintln!("{message}");
            std::process::ExitCode::from(2)
        }
    }
}
