//! The verification's counts, written by the EMF writer in `crate::metrics`
//! (which knows nothing of reports).

use super::report::{CheckStatus, Outcome, Report};

/// Connected, Degraded or VerificationFailed, and a FailedCheck per failed
/// check; once per completed verification (the verifier calls it).
pub(crate) fn verification(report: &Report) {
    let name = match report.outcome {
        Outcome::Passed => "Connected",
        Outcome::Degraded => "Degraded",
        Outcome::Failed => "VerificationFailed",
    };
    crate::metrics::emit(name, &[]);
    for c in report.checks.iter().filter(|c| c.status == CheckStatus::Failed) {
        crate::metrics::emit("FailedCheck", &[("Check", c.id.as_str())]);
    }
}

/// PartitionCredentialsRejected per partition: STS refused the vendor's own
/// key there (expired, deleted, rotated away); template.yaml alarms on it.
pub(crate) fn partition_credentials_rejected(p: crate::domain::Partition) {
    crate::metrics::emit("PartitionCredentialsRejected", &[("Partition", p.as_str())]);
}
