//! Per-tenant rate limits on the expensive operations (a verification, a
//! re-check, an organization sync, a webhook test), held in the store so
//! that every instance and process counts against the same minute.
//!
//! A limit of N a minute is N slots per minute, each a key the store
//! remembers once until the minute ends (`remember_once`: a conditional
//! put, which every store and every function's role can do). A request
//! tries a slot only after it saw the one before it taken, so the taken
//! slots are always a prefix: a binary search by reads finds the first free
//! one (about log2 N consistent reads), then one write takes it; a racer
//! that loses the write moves on to the next slot. Nothing here knows HTTP.

pub use crate::config::RateLimits;
use crate::store::{DynStore, StoreError};

/// Test events a webhook takes a minute (`POST /v1/webhooks/{id}/test`).
pub const WEBHOOK_TESTS_PER_MINUTE: u32 = 5;

/// What is limited; the name is in the key and in the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `POST /v1/connections/{id}/role` and Spot's `POST /setup/credentials/aws`.
    Verifications,
    /// `POST /v1/connections/{id}/checks`.
    Rechecks,
    /// `POST /v1/organizations/{id}/sync`.
    Syncs,
    /// `POST /v1/webhooks/{id}/test`, per webhook.
    WebhookTests,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Verifications => "verifications",
            Limit::Rechecks => "rechecks",
            Limit::Syncs => "syncs",
            Limit::WebhookTests => "webhook_tests",
        }
    }

    /// For a person: what was counted.
    fn described(self) -> &'static str {
        match self {
            Limit::Verifications => "role verifications (POST /v1/connections/{id}/role, or Spot's credentials)",
            Limit::Rechecks => "re-checks (POST /v1/connections/{id}/checks)",
            Limit::Syncs => "organization syncs (POST /v1/organizations/{id}/sync)",
            Limit::WebhookTests => "test events for this webhook",
        }
    }
}

/// The limit was reached this minute: nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "rate limit: at most {per_minute} {} a minute for your organization, and this minute's are used; nothing was done, try again in {retry_after_secs} s",
    limit.described()
)]
pub struct Throttled {
    pub limit: Limit,
    pub per_minute: u32,
    /// Seconds to the next minute.
    pub retry_after_secs: u32,
}

/// Takes slots of the tenants' limits from the store.
#[derive(Clone)]
pub struct RateLimiter {
    store: DynStore,
}

impl RateLimiter {
    pub fn new(store: DynStore) -> Self {
        RateLimiter { store }
    }

    /// One of this minute's `per_minute` slots of `limit` for `scope` (an
    /// organization, or a webhook), or `Throttled` until the minute ends.
    pub async fn take(
        &self,
        limit: Limit,
        scope: &str,
        per_minute: u32,
        now: i64,
    ) -> Result<Result<(), Throttled>, StoreError> {
        let minute = now.div_euclid(60);
        let until = (minute + 1) * 60;
        // The scope is hashed: a `#` in an organization name cannot make
        // two scopes' keys collide.
        let scope = {
            use sha2::{Digest, Sha256};
            hex::encode(&Sha256::digest(scope.as_bytes())[..16])
        };
        let key = |slot: u32| format!("limit#{}#{scope}#{minute}#{slot}", limit.as_str());
        // The first slot not taken (taken slots are a prefix, see above).
        let (mut lo, mut hi) = (0, per_minute);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.store.is_remembered(&key(mid), now).await? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for slot in lo..per_minute {
            if self.store.remember_once(&key(slot), until, now).await? {
                return Ok(Ok(()));
            }
        }
        Ok(Err(Throttled {
            limit,
            per_minute,
            retry_after_secs: (until - now).clamp(1, 60) as u32,
        }))
    }
}
