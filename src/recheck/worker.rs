//! The worker: one job, one check, under the check's own deadline.

use crate::connections::{ConnectionService, ServiceError};
use crate::domain::{ConnectionId, Health};
use crate::organizations::OrganizationService;
use crate::services::Services;
use crate::tenancy::Tenant;
use serde::Serialize;
use std::time::{Duration, Instant};

/// The actor the audit trail names for scheduled checks.
pub const ACTOR: &str = "scheduled-recheck";

#[derive(Clone)]
pub struct Worker {
    pub service: ConnectionService,
    /// Each check's deadline, store reads and writes included.
    pub timeout: Duration,
    /// Reconciles an organization's members after its management connection
    /// is checked; none where the caller has no organizations.
    pub organizations: Option<OrganizationService>,
}

/// What became of one job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Checked conclusively; the health before and after.
    Checked {
        before: Option<Health>,
        after: Option<Health>,
    },
    /// Throttled or unreachable past the backoff: health kept.
    Inconclusive,
    /// Gone, no longer connected, or checked since the job was queued.
    Skipped,
    /// The check's own deadline passed; the next schedule tries again.
    TimedOut,
    /// The store failed; worth a retry (in SQS, the message comes back).
    Failed(String),
}

impl Worker {
    pub fn new(service: ConnectionService) -> Self {
        let timeout = Duration::from_secs(service.config().recheck_check_timeout_secs);
        Worker {
            service,
            timeout,
            organizations: None,
        }
    }

    /// The worker the entry points run: checks, and organizations reconciled.
    pub fn for_services(services: &Services) -> Self {
        Worker {
            organizations: Some(services.organizations.clone()),
            ..Worker::new(services.connections.clone())
        }
    }

    pub async fn check(&self, org: &str, id: &ConnectionId, queued_at: Option<i64>) -> JobOutcome {
        let tenant = Tenant {
            org: org.to_owned(),
            sub: ACTOR.into(),
            accounts: None,
        };
        let run = self.service.recheck_due(&tenant, id, queued_at);
        match tokio::time::timeout(self.timeout, run).await {
            Err(_) => {
                tracing::warn!(
                    connection = id.as_str(),
                    secs = self.timeout.as_secs(),
                    "re-check hit its deadline"
                );
                crate::metrics::count("RecheckTimedOut", 1);
                JobOutcome::TimedOut
            }
            Ok(Ok(None)) => JobOutcome::Skipped,
            Ok(Ok(Some(r))) if r.report.inconclusive() => JobOutcome::Inconclusive,
            Ok(Ok(Some(r))) => {
                if r.connection.health != r.before {
                    tracing::info!(connection = id.as_str(), health = ?r.connection.health, before = ?r.before, "health changed");
                }
                if let Some(orgs) = &self.organizations {
                    // Only an organization's management connection has members to reconcile.
                    if let Err(e) = orgs.reconcile_for(&r.connection).await {
                        tracing::warn!(connection = id.as_str(), error = %e, "organization reconciliation failed");
                    }
                }
                JobOutcome::Checked {
                    before: r.before,
                    after: r.connection.health,
                }
            }
            // Disconnected, expired or deleted since it was queued.
            Ok(Err(ServiceError::NotFound | ServiceError::WrongStatus { .. })) => JobOutcome::Skipped,
            Ok(Err(e)) => {
                tracing::warn!(connection = id.as_str(), error = ?e, "re-check failed");
                JobOutcome::Failed(format!("{e:?}"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slowest {
    pub connection: String,
    pub ms: u64,
}

/// What a run did, for the log line and the command's output.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub queued: usize,
    pub stale: usize,
    /// Checks that ended conclusively.
    pub checked: usize,
    pub healthy: usize,
    pub degraded: usize,
    pub broken: usize,
    /// Health different from before.
    pub changed: usize,
    pub inconclusive: usize,
    pub skipped: usize,
    pub timed_out: usize,
    /// Store or queue failures.
    pub errors: usize,
    pub slowest: Option<Slowest>,
    /// Sum of the checks' durations (skipped ones excluded).
    pub check_ms_total: u64,
    pub elapsed_ms: u64,
}

impl Summary {
    pub fn record(&mut self, id: &ConnectionId, outcome: &JobOutcome, took: Duration) {
        let ms = took.as_millis() as u64;
        match outcome {
            JobOutcome::Checked { before, after } => {
                self.checked += 1;
                match after {
                    Some(Health::Healthy) => self.healthy += 1,
                    Some(Health::Degraded) => self.degraded += 1,
                    Some(Health::Broken) => self.broken += 1,
                    None => {}
                }
                if before != after {
                    self.changed += 1;
                }
            }
            JobOutcome::Inconclusive => self.inconclusive += 1,
            JobOutcome::Skipped => {
                self.skipped += 1;
                return;
            }
            JobOutcome::TimedOut => self.timed_out += 1,
            JobOutcome::Failed(_) => self.errors += 1,
        }
        self.check_ms_total += ms;
        if self.slowest.as_ref().is_none_or(|s| ms > s.ms) {
            self.slowest = Some(Slowest {
                connection: id.as_str().to_owned(),
                ms,
            });
        }
    }

    pub fn merge(&mut self, o: Summary) {
        self.queued += o.queued;
        self.stale += o.stale;
        self.checked += o.checked;
        self.healthy += o.healthy;
        self.degraded += o.degraded;
        self.broken += o.broken;
        self.changed += o.changed;
        self.inconclusive += o.inconclusive;
        self.skipped += o.skipped;
        self.timed_out += o.timed_out;
        self.errors += o.errors;
        self.check_ms_total += o.check_ms_total;
        if let Some(s) = o.slowest {
            if self.slowest.as_ref().is_none_or(|m| s.ms > m.ms) {
                self.slowest = Some(s);
            }
        }
    }

    /// Checks that ran (conclusive or not), for the mean latency.
    pub fn attempted(&self) -> usize {
        self.checked + self.inconclusive + self.timed_out + self.errors
    }
}

/// Times one job.
pub async fn timed<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed())
}
