//! AssumeRole within the propagation budget: AccessDenied retried while a
//! new role propagates, throttling backed off, each failure told apart.

use super::aws::{self, CallError};
use super::partitions::PartitionAccess;
use super::{metrics, Check, CheckId};
use crate::domain::{Connection, RoleArn};
use std::time::{Duration, Instant};

/// AssumeRole's retry delays grow to this.
const MAX_BACKOFF: Duration = Duration::from_secs(4);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Throttling is backed off for at least this long, even where no wait for
/// propagation is allowed (the re-check): it says nothing about the role.
const THROTTLE_PATIENCE: Duration = Duration::from_secs(4);
/// A retry after the first attempt gets the rest of the budget, but at least
/// this, so the wait ends at most this long after its budget.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

/// AssumeRole signed with the partition's vendor identity. A refused vendor
/// key is read again once (a rotation); refused again, the check fails as
/// ours, never as the customer's role, and the partition's metric counts it.
pub(super) async fn assume_as_vendor(
    access: &PartitionAccess,
    role: &RoleArn,
    external_id: &str,
    session: &str,
) -> Result<aws::Assumed, CallError> {
    let attempt = || async {
        access.ready().await?;
        aws::assume(&access.sts, &access.sdk, &access.endpoints, role, external_id, session).await
    };
    let mut result = attempt().await;
    if matches!(result, Err(CallError::VendorCredentials(_))) && access.refresh().await {
        result = attempt().await;
    }
    if let Err(CallError::VendorCredentials(m)) = &result {
        tracing::error!(partition = %access.partition, error = %m, "AWS refused this partition's vendor credentials");
        metrics::partition_credentials_rejected(access.partition);
    }
    result
}

/// The AssumeRole check when the partition has no vendor identity at all.
pub(super) fn no_vendor_credentials(e: CallError, role: &RoleArn) -> Check {
    let mut c = assume_failure(e, role, Duration::ZERO, 0);
    c.transient = true;
    c
}

/// AssumeRole, retrying AccessDenied (a new role takes seconds to
/// propagate) within the budget and backing off throttling. With a rotation
/// pending, the new ID is tried first: verifying with it is what promotes it.
pub(super) async fn assume_with_wait<F, Fut>(
    call: F,
    conn: &Connection,
    role: &RoleArn,
    budget: Duration,
) -> (Option<aws::Assumed>, Check, String)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<aws::Assumed, CallError>>,
{
    let started = Instant::now();
    let mut attempts = 0u32;
    // An attempt after a backoff ends by the budget (or MIN_ATTEMPT after);
    // one before any gets the whole call timeout.
    let attempt = |ext: String, first: bool| {
        let left = budget.saturating_sub(started.elapsed());
        let limit = if first {
            aws::CALL_TIMEOUT
        } else {
            left.clamp(MIN_ATTEMPT, aws::CALL_TIMEOUT)
        };
        let fut = call(ext);
        async move {
            tokio::time::timeout(limit, fut)
                .await
                .unwrap_or(Err(CallError::Timeout))
        }
    };
    if let Some(pending) = &conn.pending_external_id {
        attempts += 1;
        if let Ok(a) = attempt(pending.as_str().to_owned(), true).await {
            let mut c = Check::passed(
                CheckId::AssumeRole,
                "Assumed the role with the new (rotated) external ID.",
            );
            c.attempts = Some(attempts);
            c.waited_ms = Some(0);
            return (Some(a), c, pending.as_str().to_owned());
        }
    }
    let ext = conn.external_id.as_str();
    let mut delay = FIRST_BACKOFF;
    let mut waited = Duration::ZERO;
    let mut throttled = 0u32;
    loop {
        attempts += 1;
        let err = match attempt(ext.to_owned(), waited.is_zero()).await {
            Ok(a) => {
                let mut msg = if waited.is_zero() {
                    "Assumed the role with the external ID.".to_owned()
                } else if throttled == attempts - 1 {
                    format!(
                        "Assumed the role with the external ID on attempt {attempts}, after backing off {:.1} s because AWS throttled our calls.",
                        waited.as_secs_f64()
                    )
                } else {
                    format!(
                        "Assumed the role with the external ID on attempt {attempts}, after waiting {:.1} s for IAM to propagate it.",
                        waited.as_secs_f64()
                    )
                };
                if throttled > 0 && throttled < attempts - 1 {
                    msg.push_str(&format!(" AWS throttled {throttled} of those calls."));
                }
                let mut c = Check::passed(CheckId::AssumeRole, msg);
                c.attempts = Some(attempts);
                c.waited_ms = Some(waited.as_millis() as u64);
                return (Some(a), c, ext.to_owned());
            }
            Err(e) => e,
        };
        let patience = match err {
            CallError::Throttled(_) => {
                throttled += 1;
                budget.max(THROTTLE_PATIENCE)
            }
            // STS's own trouble, or an answer that is not STS's: backed
            // off as throttling, never the role's fault.
            CallError::ServerError(_) | CallError::NotAws(_) => budget.max(THROTTLE_PATIENCE),
            CallError::AccessDenied(_) | CallError::Timeout => budget,
            _ => Duration::ZERO,
        };
        if started.elapsed() + delay < patience {
            tokio::time::sleep(delay).await;
            waited += delay;
            delay = (delay * 2).min(MAX_BACKOFF);
            continue;
        }
        let transient = err.is_transient();
        let mut c = assume_failure(err, role, waited, attempts);
        c.transient = transient;
        c.attempts = Some(attempts);
        c.waited_ms = Some(waited.as_millis() as u64);
        return (None, c, ext.to_owned());
    }
}

fn assume_failure(err: CallError, role: &RoleArn, waited: Duration, attempts: u32) -> Check {
    let secs = waited.as_secs_f64();
    match err {
        CallError::AccessDenied(_) => Check::failed(
            CheckId::AssumeRole,
            format!("AWS refused to let us assume {} (AccessDenied) on each of {attempts} attempt(s), over {secs:.0} s of waiting for IAM to propagate a new role.", role.name()),
            "A role created or changed a moment ago can take up to a minute to propagate in IAM: if that is the case, wait a minute and press Connect again. Otherwise check that the role exists with exactly this ARN and that its trust relationship names the vendor account with \"Require external ID\" set to this connection's external ID.",
        ),
        CallError::RegionDisabled(_) => Check::failed(
            CheckId::AssumeRole,
            format!("STS is not active in {} for your account (RegionDisabled).", role.partition().sts_region()),
            "In the IAM console, under Account settings, activate STS for that region, then try again.",
        ),
        CallError::Throttled(_) => Check::failed(
            CheckId::AssumeRole,
            format!("AWS throttled our AssumeRole calls ({attempts} attempt(s) over {secs:.0} s of backing off)."),
            "Nothing is wrong with your role as far as we know; try again in a minute.",
        ),
        CallError::ServerError(_) => Check::failed(
            CheckId::AssumeRole,
            format!("AWS STS answered our AssumeRole calls with server errors ({attempts} attempt(s) over {secs:.0} s of backing off)."),
            "Nothing is wrong with your role as far as we know; try again in a minute.",
        ),
        CallError::NotAws(m) => Check::failed(
            CheckId::AssumeRole,
            format!("AWS STS itself did not answer our AssumeRole calls: something on the way answered instead ({m}; {attempts} attempt(s) over {secs:.0} s of backing off)."),
            "Nothing is wrong with your role as far as we know: AWS could not be reached. Try again in a minute.",
        ),
        CallError::Timeout | CallError::Network(_) | CallError::Deadline => Check::failed(
            CheckId::AssumeRole,
            "We could not reach AWS STS in time.",
            "This is on our side or AWS's; try again in a minute.",
        ),
        // What went wrong is in the log: it names our secret or settings.
        CallError::VendorCredentials(_) => Check::failed(
            CheckId::AssumeRole,
            format!(
                "AWS STS refused Spot's own credentials for {}, or they could not be read, so your role was not tried.",
                role.partition().display_name()
            ),
            "Nothing is wrong with your role as far as we know: this is on our side, and our operators are alerted. Try again later.",
        ),
        CallError::NotFound(m) | CallError::PageCap(m) | CallError::Other(m) => {
            Check::failed(CheckId::AssumeRole, format!("AssumeRole failed: {m}"), "Check the role ARN and its trust relationship, then try again.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RoleArn;

    fn role() -> RoleArn {
        "arn:aws:iam::123456789012:role/Spot-Role".parse().unwrap()
    }

    #[test]
    fn assume_role_errors_are_told_apart() {
        let waited = Duration::from_secs(20);
        let denied = assume_failure(CallError::AccessDenied(String::new()), &role(), waited, 6);
        assert!(denied.message.contains("AccessDenied") && denied.message.contains("20 s"));
        assert!(denied.remediation.unwrap().contains("propagate"));
        assert!(
            assume_failure(CallError::RegionDisabled(String::new()), &role(), waited, 1)
                .message
                .contains("RegionDisabled")
        );
        assert!(assume_failure(CallError::Throttled(String::new()), &role(), waited, 3)
            .message
            .contains("throttled"));
        assert!(assume_failure(CallError::Timeout, &role(), waited, 1)
            .message
            .contains("in time"));
    }
}
