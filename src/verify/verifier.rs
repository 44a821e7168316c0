//! The verifier and its AWS clients: per partition, what it signs with and
//! where it calls, built once (`partitions`).

use super::{metrics, partitions, Report};
use crate::config::Config;
use crate::domain::Connection;
use crate::sdk::AwsConfigs;
use std::time::Duration;

pub struct Verifier {
    pub(super) partitions: partitions::Partitions,
    /// Each partition's STS rate budget.
    pub(super) pools: super::pool::Pools,
    /// The service's clock: a report's `checkedAt`, the trust audit's
    /// `aws:CurrentTime`, the age of a simulation's answer.
    pub(super) clock: crate::clock::Clock,
}

impl Verifier {
    /// With each partition's credential source and endpoint settings, its
    /// clients built from `aws`.
    pub fn from_config(config: &Config, aws: AwsConfigs) -> Self {
        Verifier {
            partitions: partitions::Partitions::from_config(config, aws),
            pools: super::pool::Pools::new(config.sts_per_sec),
            clock: crate::clock::Clock::system(),
        }
    }

    /// The same on the service's clock (a test's adjustable one).
    pub fn with_clock(self, clock: crate::clock::Clock) -> Self {
        Verifier {
            partitions: self.partitions.with_clock(clock.clone()),
            pools: self.pools,
            clock,
        }
    }

    /// The partition's vendor identity for another service's clients (the
    /// Organizations reader, the partition's template bucket): its
    /// credentials, its home region, and the STS endpoint it resolves to.
    /// The error is for a person.
    pub async fn vendor(&self, p: crate::domain::Partition) -> Result<(aws_config::SdkConfig, Option<String>), String> {
        let access = self.partitions.get(p).await.map_err(|e| e.to_string())?;
        access.ready().await.map_err(|e| e.to_string())?;
        Ok((access.sdk.clone(), access.endpoints.sts.clone()))
    }

    /// Runs every check; `budget` bounds the wait for IAM propagation. Every
    /// completed verification counts in the metrics, whoever asked for it.
    pub async fn verify(&self, conn: &Connection, principal: &str, role_arn: &str, budget: Duration) -> Report {
        let report = self.run(conn, principal, role_arn, budget).await;
        metrics::verification(&report);
        report
    }
}
