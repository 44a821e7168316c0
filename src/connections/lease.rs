//! At most one verification in flight per connection, across every
//! instance: a lease in the store (`verify#<connection>`), taken before any
//! AWS call and released at the end. It expires on its own after the
//! verification's budget and a margin, so a process that died holding it
//! blocks the connection no longer than a verification could have run.

use super::service::ConnectionService;
use super::ServiceError;
use crate::domain::ConnectionId;
use crate::store::DynStore;
use std::time::Duration;

/// Beyond the propagation budget: the checks after the wait (reads, the
/// policy simulation) and the write.
const LEASE_MARGIN_SECS: i64 = 60;
/// How often a waiter (the CloudFormation callback) looks at the lease again.
const WAIT_POLL: Duration = Duration::from_millis(500);
/// What a refused API client is told to wait (Retry-After) before it looks again.
pub const IN_PROGRESS_RETRY_SECS: u32 = 5;

/// A taken lease; `release` lets go of it. One dropped unreleased (the
/// request was cancelled) is let go by a spawned task, or expires.
pub(super) struct VerifyLease {
    store: DynStore,
    key: String,
    holder: String,
    released: bool,
}

/// Whether the lease was free at once, or after waiting for another holder.
pub(super) enum Taken {
    AtOnce(VerifyLease),
    AfterWaiting(VerifyLease),
}

impl VerifyLease {
    pub(super) async fn release(mut self) {
        self.released = true;
        if let Err(e) = self.store.release_lease(&self.key, &self.holder).await {
            // It expires on its own.
            tracing::warn!(error = %e, key = %self.key, "could not release a verification lease");
        }
    }
}

impl Drop for VerifyLease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, key, holder) = (self.store.clone(), self.key.clone(), self.holder.clone());
            rt.spawn(async move {
                let _ = store.release_lease(&key, &holder).await;
            });
        }
    }
}

impl ConnectionService {
    /// The connection's verification lease for `budget` and the margin.
    /// `wait`: while another holds it, wait for it (until it is released or
    /// expires); otherwise `VerificationInProgress` at once.
    pub(super) async fn verify_lease(
        &self,
        id: &ConnectionId,
        budget: Duration,
        wait: bool,
    ) -> Result<Taken, ServiceError> {
        let key = format!("verify#{}", id.as_str());
        let holder = crate::ids::random_token(12);
        let ttl = budget.as_secs() as i64 + LEASE_MARGIN_SECS;
        let mut waited = false;
        // A lease lives at most `ttl`: a waiter gets it by then at the latest.
        let give_up = self.now() + 2 * ttl;
        loop {
            let now = self.now();
            if self.store.take_lease(&key, &holder, now + ttl, now).await? {
                let lease = VerifyLease {
                    store: self.store.clone(),
                    key,
                    holder,
                    released: false,
                };
                return Ok(if waited {
                    Taken::AfterWaiting(lease)
                } else {
                    Taken::AtOnce(lease)
                });
            }
            if !wait || now > give_up {
                return Err(ServiceError::VerificationInProgress);
            }
            waited = true;
            tokio::time::sleep(WAIT_POLL).await;
        }
    }
}
