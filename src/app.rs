//! The composition root: reads the configuration and builds the store, the
//! verifier, the AWS clients and the services once. Every entry point is made
//! from what it builds: the HTTP router (Lambda and `serve`), the callback
//! (src/bin/callback.rs), the re-check (src/bin/recheck.rs) and the CLI.

use crate::automatic::Templates;
use crate::callback::Responder;
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::connections::cursor::Cursors;
use crate::connections::{ConnectionService, Deps};
use crate::organizations::OrganizationService;
use crate::services::Services;
use crate::store::DynStore;
use crate::verify::Verifier;
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

/// Opens the configured store and builds the services on it; AWS clients
/// are made on first use.
pub fn build(config: Config) -> Result<Services, AppError> {
    let store = crate::store::open(&config.store_url)?;
    Ok(build_with_store(config, store))
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
    let config = Arc::new(config);
    let cursors = match &config.cursor_key {
        Some(key) => Cursors::new(key),
        None => Cursors::random(),
    };
    let deps = Deps {
        verifier: Arc::new(Verifier::from_config(&config).with_clock(clock.clone())),
        store,
        config: config.clone(),
        templates: Arc::new(Templates::default()),
        cursors: Arc::new(cursors),
        clock,
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
    ));
    Services {
        organizations: organizations.with_connections(connections.clone()),
        config,
        connections,
        relay,
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
