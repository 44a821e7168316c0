//! An organization's share of the callback's long verifications: at most
//! `callback_tenant_share` of them at once, across every Lambda instance
//! (`crate::shares`, keys `share#<org>#<n>`).

use super::service::ConnectionService;
pub use crate::shares::ShareLease;
use crate::shares::TenantShare;
use crate::store::StoreError;
use std::time::Duration;

/// A lease outlives its verification by this much (seconds): the checks
/// after the propagation wait and the answer's PUT.
const MARGIN_SECS: i64 = 90;

impl ConnectionService {
    fn callback_share(&self) -> TenantShare {
        TenantShare::new(self.store.clone(), "share", self.config.callback_tenant_share)
    }

    /// A free slot of `org`'s share for a verification of up to `budget`,
    /// or None when all are held. With a share of 0 every call gets one
    /// that holds nothing.
    pub async fn take_share(&self, org: &str, budget: Duration) -> Result<Option<ShareLease>, StoreError> {
        let now = self.clock.now();
        let until = now + budget.as_secs() as i64 + MARGIN_SECS;
        self.callback_share().take(org, until, now).await
    }

    /// Frees the slot (a lost release expires on its own).
    pub async fn release_share(&self, lease: ShareLease) {
        self.callback_share().release(lease).await
    }
}
