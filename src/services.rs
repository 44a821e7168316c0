//! What the entry points share: the configuration, the connection service
//! (store, verifier, templates, cursors and clock inside), the organization
//! service over it, and the relay intake. `app` builds it
//! once; the HTTP layer takes it as its axum state, the callback and the
//! re-check as an argument. Nothing here knows HTTP.

use crate::automatic::RelayIntake;
use crate::clock::Clock;
use crate::config::Config;
use crate::connections::ConnectionService;
use std::sync::Arc;

#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub connections: ConnectionService,
    pub organizations: crate::organizations::OrganizationService,
    /// The partition relays' keys, what they sent (each signed request is
    /// acted on once) and the responder their requests answer with.
    pub relay: Arc<RelayIntake>,
}

impl Services {
    /// The same services on another clock: tests move theirs instead of sleeping.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.relay = Arc::new(self.relay.with_clock(clock.clone()));
        self.connections = self.connections.with_clock(clock);
        self.organizations = self.organizations.with_connections(self.connections.clone());
        self
    }
}
