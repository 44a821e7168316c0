//! An organization's share of the callback's long verifications: at most
//! `callback_tenant_share` of them at once, across every Lambda instance,
//! held as leases in the store (one key per slot, taken with a conditional
//! write, expiring on its own if the holder dies).

use super::service::ConnectionService;
use crate::store::StoreError;
use std::time::Duration;

/// A lease outlives its verification by this much (seconds): the checks
/// after the propagation wait and the answer's PUT.
const MARGIN_SECS: i64 = 90;

/// One slot of an organization's share, held until released.
#[derive(Debug)]
#[must_use = "a lease is held until released"]
pub struct ShareLease {
    key: String,
    until: i64,
}

impl ConnectionService {
    /// A free slot of `org`'s share for a verification of up to `budget`,
    /// or None when all are held. With a share of 0 every call gets one
    /// that holds nothing.
    pub async fn take_share(&self, org: &str, budget: Duration) -> Result<Option<ShareLease>, StoreError> {
        let share = self.config.callback_tenant_share;
        let now = self.clock.now();
        let until = now + budget.as_secs() as i64 + MARGIN_SECS;
        if share == 0 {
            return Ok(Some(ShareLease {
                key: String::new(),
                until,
            }));
        }
        for slot in 0..share {
            let key = format!("share#{org}#{slot}");
            if self.store.remember_once(&key, until, now).await? {
                return Ok(Some(ShareLease { key, until }));
            }
        }
        Ok(None)
    }

    /// Frees the slot (a lost release expires on its own).
    pub async fn release_share(&self, lease: ShareLease) {
        if lease.key.is_empty() {
            return;
        }
        if let Err(e) = self.store.forget(&lease.key, lease.until).await {
            tracing::warn!(error = ?e, key = %lease.key, "could not release a share lease; it expires on its own");
        }
    }
}
