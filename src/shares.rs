//! Fair shares of a pool the tenants share (docs/design.md, "Fair shares"):
//! at most `share` holders of one organization at once, across every Lambda
//! instance and process, held as leases in the store (one key per slot,
//! taken with a conditional write, expiring on its own if the holder dies).
//! The callback's long verifications and the dispatcher's webhook attempts
//! each have one.

use crate::store::{DynStore, StoreError};

/// One slot of an organization's share, held until released.
#[derive(Debug)]
#[must_use = "a lease is held until released"]
pub struct ShareLease {
    key: String,
    until: i64,
}

/// The shares of one pool.
#[derive(Clone)]
pub struct TenantShare {
    store: DynStore,
    /// The keys' first part, one per pool (no `#` in it, so no pool's key
    /// can be another's, whatever an organization is named).
    pool: &'static str,
    /// Slots per organization; 0: no limit.
    share: u32,
}

impl TenantShare {
    pub fn new(store: DynStore, pool: &'static str, share: u32) -> Self {
        TenantShare { store, pool, share }
    }

    /// A free slot of `org`'s share, held until `until` at the latest, or
    /// None when all are held. With a share of 0 every call gets one that
    /// holds nothing.
    pub async fn take(&self, org: &str, until: i64, now: i64) -> Result<Option<ShareLease>, StoreError> {
        if self.share == 0 {
            return Ok(Some(ShareLease {
                key: String::new(),
                until,
            }));
        }
        for slot in 0..self.share {
            let key = format!("{}#{org}#{slot}", self.pool);
            if self.store.remember_once(&key, until, now).await? {
                return Ok(Some(ShareLease { key, until }));
            }
        }
        Ok(None)
    }

    /// Frees the slot (a lost release expires on its own).
    pub async fn release(&self, lease: ShareLease) {
        if lease.key.is_empty() {
            return;
        }
        if let Err(e) = self.store.forget(&lease.key, lease.until).await {
            tracing::warn!(error = ?e, key = %lease.key, "could not release a share lease; it expires on its own");
        }
    }
}
