//! What the verifications of one partition share: one HTTP client, so its
//! pooled connections and TLS sessions serve the vendor's STS client and
//! every assumed role's STS and IAM calls (`partitions` puts it in the
//! partition's SdkConfig), and one STS rate budget.

use crate::domain::Partition;
use aws_sdk_sts::config::SharedHttpClient;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex};

/// The partition's HTTP client (rustls with aws-lc, the SDK's default),
/// built once per process.
pub fn http_client(p: Partition) -> SharedHttpClient {
    static CLIENTS: LazyLock<Mutex<BTreeMap<Partition, SharedHttpClient>>> = LazyLock::new(Default::default);
    CLIENTS
        .lock()
        .expect("client lock")
        .entry(p)
        .or_insert_with(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build_https()
        })
        .clone()
}

pub struct PartitionPool {
    sts_budget: DefaultDirectRateLimiter,
}

impl PartitionPool {
    /// Waits for a slot in the partition's STS budget.
    pub async fn sts_slot(&self) {
        self.sts_budget.until_ready().await;
    }
}

pub struct Pools {
    sts_per_sec: NonZeroU32,
    by_partition: Mutex<BTreeMap<Partition, Arc<PartitionPool>>>,
}

impl Pools {
    pub fn new(sts_per_sec: u32) -> Self {
        Pools {
            sts_per_sec: NonZeroU32::new(sts_per_sec).unwrap_or(NonZeroU32::MIN),
            by_partition: Mutex::new(BTreeMap::new()),
        }
    }

    /// The partition's pool, made once.
    pub fn get(&self, partition: Partition) -> Arc<PartitionPool> {
        let mut map = self.by_partition.lock().expect("pool lock");
        map.entry(partition)
            .or_insert_with(|| {
                Arc::new(PartitionPool {
                    // A burst of one second's budget, then the steady rate.
                    sts_budget: RateLimiter::direct(Quota::per_second(self.sts_per_sec)),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pool_per_partition() {
        let pools = Pools::new(10);
        assert!(Arc::ptr_eq(&pools.get(Partition::Aws), &pools.get(Partition::Aws)));
        assert!(!Arc::ptr_eq(&pools.get(Partition::Aws), &pools.get(Partition::AwsCn)));
    }

    #[tokio::test]
    async fn the_sts_budget_spreads_calls_over_time() {
        let pools = Pools::new(5);
        let pool = pools.get(Partition::Aws);
        let started = std::time::Instant::now();
        // Five pass at once (the burst); five more wait about a second.
        for _ in 0..10 {
            pool.sts_slot().await;
        }
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    }
}
