//! The verifier and its AWS clients: per partition, what it signs with and
//! where it calls, built once (`partitions`).

use super::{metrics, partitions, Report};
use crate::config::Config;
use crate::domain::Connection;
use std::time::Duration;

pub struct Verifier {
    pub(super) partitions: partitions::Partitions,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// With each partition's credential source and endpoint settings.
    pub fn from_config(config: &Config) -> Self {
        Verifier {
            partitions: partitions::Partitions::from_config(config),
        }
    }

    /// The same on the service's clock (a test's adjustable one).
    pub fn with_clock(self, clock: crate::clock::Clock) -> Self {
        Verifier {
            partitions: self.partitions.with_clock(clock),
        }
    }

    /// Runs every check; `budget` bounds the wait for IAM propagation. Every
    /// completed verification counts in the metrics, whoever asked for it.
    pub async fn verify(&self, conn: &Connection, principal: &str, role_arn: &str, budget: Duration) -> Report {
        let report = self.run(conn, principal, role_arn, budget).await;
        metrics::verification(&report);
        report
    }
}
