//! The verifier and its AWS clients: the service's own configuration,
//! loaded once, and the STS and IAM endpoints per partition.

use super::{aws, metrics, Report};
use crate::config::Config;
use crate::domain::{Connection, Partition};
use aws_config::SdkConfig;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::OnceCell;

pub struct Verifier {
    base: OnceCell<SdkConfig>,
    sts_endpoints: BTreeMap<Partition, String>,
    iam_endpoints: BTreeMap<Partition, String>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Verifier {
            base: OnceCell::new(),
            sts_endpoints: BTreeMap::new(),
            iam_endpoints: BTreeMap::new(),
        }
    }

    /// With the configured endpoint overrides.
    pub fn from_config(config: &Config) -> Self {
        Verifier {
            sts_endpoints: config.sts_endpoints.clone(),
            iam_endpoints: config.iam_endpoints.clone(),
            ..Self::new()
        }
    }

    pub(super) fn endpoints(&self, partition: Partition) -> aws::Endpoints {
        aws::Endpoints {
            sts: self.sts_endpoints.get(&partition).cloned(),
            iam: self.iam_endpoints.get(&partition).cloned(),
        }
    }

    /// The service's own AWS configuration, loaded on first use.
    pub(super) async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .operation_timeout(aws::CALL_TIMEOUT)
                            .build(),
                    )
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
                    .load()
                    .await
            })
            .await
    }

    /// Runs every check; `budget` bounds the wait for IAM propagation. Every
    /// completed verification counts in the metrics, whoever asked for it.
    pub async fn verify(&self, conn: &Connection, principal: &str, role_arn: &str, budget: Duration) -> Report {
        let report = self.run(conn, principal, role_arn, budget).await;
        metrics::verification(&report);
        report
    }
}
