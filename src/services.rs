//! What the entry points share: the configuration, the connection service,
//! the organization service and the relay intake, each holding its own
//! dependencies privately. `app` builds it once (on the clock it is given); the HTTP layer takes it as its axum state, the callback and the
//! re-check as an argument. Nothing here knows HTTP.

use crate::automatic::RelayIntake;
use crate::config::Config;
use crate::connections::ConnectionService;
use std::sync::Arc;

#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub connections: ConnectionService,
    pub organizations: crate::organizations::OrganizationService,
    /// Partners' webhooks and their deliveries.
    pub webhooks: crate::webhooks::WebhookService,
    /// The partition relays' keys, what they sent (each signed request is
    /// acted on once) and the responder their requests answer with.
    pub relay: Arc<RelayIntake>,
    /// The AWS SDK's configuration `app` loads (once per partition), for
    /// the clients an entry point builds itself (the events' bus).
    pub aws: crate::sdk::AwsConfigs,
}
