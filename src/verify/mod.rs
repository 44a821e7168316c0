//! Verifying a role: parse its ARN, assume it with the external ID (waiting
//! out IAM propagation), then check identity, trust policy and permissions
//! concurrently, under one deadline. At most six sequential round trips
//! after AssumeRole's wait (the role's policies, then its record and boundary).

mod aws;
pub mod evaluate;
pub mod partitions;
mod permissions;
pub mod report;
mod secret_source;
mod simulate;
pub mod trust;
mod trust_probe;

pub use report::{Check, CheckId, CheckStatus, DecidedBy, Outcome, Report};

use crate::config::Config;
use crate::connections::Connection;
use crate::domain::RoleArn;
use aws::CallError;
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
/// What the identity, trust and permission reads share after AssumeRole.
/// The API's worst case is budget + MIN_ATTEMPT + this (at least two call
/// timeouts before it with a rotation pending): with the largest budget
/// template.yaml allows (20 s), 27 s, inside the function's 29 s and API
/// Gateway's 30 s, with room for the store's writes.
pub const CHECKS_BUDGET: Duration = Duration::from_secs(6);

pub struct Verifier {
    partitions: partitions::Partitions,
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
        crate::metrics::verification(&report);
        report
    }

    async fn run(&self, conn: &Connection, principal: &str, role_arn: &str, budget: Duration) -> Report {
        let started = Instant::now();
        let mut checks = Vec::new();
        let finish = |checks: Vec<Check>, used: Option<String>, promote: bool| Report {
            outcome: Report::outcome_of(&checks),
            checked_at: crate::clock::iso_now(),
            duration_ms: started.elapsed().as_millis() as u64,
            role_arn: role_arn.to_owned(),
            checks,
            external_id_used: used,
            promote_pending: promote,
        };
        let role = match check_arn(conn, role_arn) {
            Ok((role, check)) => {
                checks.push(check);
                role
            }
            Err(check) => {
                checks.push(check);
                skip_rest(&mut checks, CheckId::RoleArn);
                return finish(checks, None, false);
            }
        };

        let access = match self.partitions.get(role.partition()).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(partition = %role.partition(), error = ?e, "no vendor credentials for this partition");
                let mut c = assume_failure(e, &role, Duration::ZERO, 0);
                c.transient = true;
                checks.push(c);
                skip_rest(&mut checks, CheckId::AssumeRole);
                return finish(checks, None, false);
            }
        };
        let session = format!("spot-verify-{}", conn.id.as_str());
        let call = |ext: String| {
            let (access, role, session) = (&access, &role, &session);
            async move { assume_as_vendor(access, role, &ext, session).await }
        };
        let (assumed, check, used) = assume_with_wait(call, conn, &role, budget).await;
        checks.push(check);
        let Some(assumed) = assumed else {
            skip_rest(&mut checks, CheckId::AssumeRole);
            return finish(checks, None, false);
        };

        // One deadline for every read after AssumeRole.
        let deadline = tokio::time::Instant::now() + CHECKS_BUDGET;
        let reqs = permissions::required(conn);
        let reads = async {
            let policies = within(deadline, aws::role_policies(&assumed, &role)).await;
            // GetRole only where the role's policies allow it: a refused call
            // is an AccessDenied in the customer's CloudTrail.
            let get_role = match &policies {
                Ok(docs) => {
                    evaluate::Evaluator::new(docs).verdict("iam:GetRole", role.as_str()) != evaluate::Verdict::Missing
                }
                Err(_) => true,
            };
            let record = within(deadline, aws::read_role(&assumed, &role, get_role)).await;
            (policies, record)
        };
        let (identity, (policies, record), simulation) = tokio::join!(
            within(deadline, aws::caller_account(&assumed)),
            reads,
            within(deadline, permissions::simulate_all(&assumed.iam, role.as_str(), &reqs)),
        );
        checks.push(identity_check(identity, &role));
        let (trust_check, promote) = trust_check(
            record.as_ref().map(|r| r.trust.clone()).map_err(Clone::clone),
            conn,
            principal,
            &role,
        );
        checks.push(trust_check);
        checks.push(permissions::check(&reqs, &policies, &record, &simulation));
        finish(checks, Some(used), promote)
    }
}

/// AssumeRole signed with the partition's vendor identity. A refused vendor
/// key is read again once (a rotation); refused again, the check fails as
/// ours, never as the customer's role, and the partition's metric counts it.
async fn assume_as_vendor(
    access: &partitions::PartitionAccess,
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
        crate::metrics::partition_credentials_rejected(access.partition);
    }
    result
}

/// The call's result, or Deadline once `deadline` passes.
async fn within<T>(
    deadline: tokio::time::Instant,
    call: impl std::future::Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or(Err(CallError::Deadline))
}

fn skip_rest(checks: &mut Vec<Check>, after: CheckId) {
    let order = [
        CheckId::RoleArn,
        CheckId::AssumeRole,
        CheckId::Identity,
        CheckId::TrustPolicy,
        CheckId::Permissions,
    ];
    let pos = order.iter().position(|c| *c == after).unwrap_or(0);
    for id in &order[pos + 1..] {
        checks.push(Check::skipped(
            *id,
            format!("Not checked: the {} check failed first.", after.title().to_lowercase()),
        ));
    }
}

fn check_arn(conn: &Connection, raw: &str) -> Result<(RoleArn, Check), Check> {
    let fix_copy = "In the IAM console, open the role and copy the ARN from its Summary page, e.g. arn:aws:iam::123456789012:role/Spot-Role.";
    let role: RoleArn = raw
        .parse()
        .map_err(|e: crate::domain::ParseError| Check::failed(CheckId::RoleArn, e.message, fix_copy))?;
    if role.partition() != conn.partition {
        return Err(Check::failed(
            CheckId::RoleArn,
            format!(
                "The role is in the {} partition ({}) but this connection is for {} ({}).",
                role.partition().display_name(),
                role.partition(),
                conn.partition.display_name(),
                conn.partition
            ),
            format!(
                "Create the role in your {} account, or start a connection for {}.",
                conn.partition.display_name(),
                role.partition().display_name()
            ),
        ));
    }
    if let Some(declared) = &conn.aws_account_id {
        if declared != role.account() {
            return Err(Check::failed(
                CheckId::RoleArn,
                format!(
                    "The role is in AWS account {}, but this connection was started for account {}.",
                    role.account(),
                    declared
                ),
                format!(
                    "Create the role in account {declared}, or start a new connection for account {}.",
                    role.account()
                ),
            ));
        }
    }
    Ok((
        role.clone(),
        Check::passed(
            CheckId::RoleArn,
            format!("{} is a role in account {}.", role.name(), role.account()),
        ),
    ))
}

/// AssumeRole, retrying AccessDenied (a new role takes seconds to
/// propagate) within the budget and backing off throttling. With a rotation
/// pending, the new ID is tried first: verifying with it is what promotes it.
async fn assume_with_wait<F, Fut>(
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
            CallError::AccessDenied(_) | CallError::Timeout => budget,
            _ => Duration::ZERO,
        };
        if started.elapsed() + delay < patience {
            tokio::time::sleep(delay).await;
            waited += delay;
            delay = (delay * 2).min(MAX_BACKOFF);
            continue;
        }
        let transient = matches!(
            err,
            CallError::Throttled(_)
                | CallError::Timeout
                | CallError::Network(_)
                | CallError::Deadline
                | CallError::VendorCredentials(_)
        );
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

fn identity_check(r: Result<String, CallError>, role: &RoleArn) -> Check {
    match r {
        Ok(account) if account == role.account().as_str() => Check::passed(
            CheckId::Identity,
            format!("The assumed role acts in account {account}."),
        ),
        Ok(account) => Check::failed(
            CheckId::Identity,
            format!(
                "The assumed role acts in account {account}, not {} as its ARN says.",
                role.account()
            ),
            "Paste the ARN of the role exactly as the IAM console shows it.",
        ),
        Err(CallError::Deadline | CallError::Timeout) => Check::failed(
            CheckId::Identity,
            format!(
                "GetCallerIdentity did not answer in time (the checks share {} s), so we could not confirm the role's account.",
                CHECKS_BUDGET.as_secs()
            ),
            "This is on our side or AWS's; try again in a minute.",
        ),
        Err(e) => Check::failed(
            CheckId::Identity,
            format!("GetCallerIdentity failed: {e:?}"),
            "Try again in a minute.",
        ),
    }
}

fn trust_check(r: Result<String, CallError>, conn: &Connection, principal: &str, role: &RoleArn) -> (Check, bool) {
    let raw = match r {
        Ok(raw) => raw,
        Err(CallError::AccessDenied(_)) => {
            return (
                Check::failed(
                    CheckId::TrustPolicy,
                    "The role may not read its own trust policy (neither iam:GetRole nor iam:ListRoles is allowed), so we cannot make sure it requires the external ID.",
                    "Attach the policy this connection gives you: it includes iam:ListRoles in its core statement.",
                ),
                false,
            )
        }
        Err(CallError::PageCap(m)) => {
            return (
                Check::failed(
                    CheckId::TrustPolicy,
                    format!("We could not find the role among the account's roles: {m}."),
                    format!("Allow the role iam:GetRole on itself ({}), so we can read it directly, then try again.", role.as_str()),
                ),
                false,
            )
        }
        Err(CallError::Deadline | CallError::Timeout) => {
            return (
                Check::failed(
                    CheckId::TrustPolicy,
                    format!(
                        "Reading the role's trust policy did not finish in time (the checks share {} s), so we cannot make sure it requires the external ID.",
                        CHECKS_BUDGET.as_secs()
                    ),
                    "This is on our side or AWS's; try again in a minute.",
                ),
                false,
            )
        }
        Err(CallError::NotFound(_)) => {
            return (
                Check::failed(
                    CheckId::TrustPolicy,
                    format!("There is no role named {} (path {}) in account {}.", role.name(), role.path(), role.account()),
                    "Check the role name in the ARN, or create the role, then try again.",
                ),
                false,
            )
        }
        Err(e) => {
            return (
                Check::failed(CheckId::TrustPolicy, format!("Could not read the role's trust policy: {e:?}"), "Try again in a minute."),
                false,
            )
        }
    };
    let doc = match trust::decode_policy(&raw) {
        Ok(d) => d,
        Err(m) => {
            return (
                Check::failed(
                    CheckId::TrustPolicy,
                    m,
                    "Re-save the role's trust relationship as valid JSON.",
                ),
                false,
            )
        }
    };
    let ids = trust::OurIds {
        current: conn.external_id.as_str(),
        pending: conn.pending_external_id.as_ref().map(|e| e.as_str()),
        previous: &conn.previous_external_ids,
    };
    let audit = trust::audit(&doc, principal, role.account().as_str(), &ids);
    (audit.check, audit.pending_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> RoleArn {
        "arn:aws:iam::123456789012:role/Spot-Role".parse().unwrap()
    }

    #[test]
    fn identity_fails_when_the_caller_is_in_another_account() {
        assert_eq!(
            identity_check(Ok("123456789012".into()), &role()).status,
            CheckStatus::Passed
        );
        let c = identity_check(Ok("999999999999".into()), &role());
        assert_eq!(c.status, CheckStatus::Failed);
        assert!(c.message.contains("999999999999"));
    }

    #[test]
    fn unreadable_policies_are_skipped_not_guessed() {
        let conn_json = serde_json::json!({
            "id": "con-000000000000000000000000", "org": "o", "accountId": "act-1", "partition": "aws", "method": "manual",
            "permissions": {"mode": "default"}, "awsAccountId": null, "externalId": "ext-1", "pendingExternalId": null,
            "state": "pending", "health": null, "roleArn": null, "report": null, "createdAt": 0, "createdBy": "t",
            "updatedAt": 0, "expiresAt": 1, "verifiedAt": null, "version": 1
        });
        let conn: Connection = serde_json::from_value(conn_json).unwrap();
        let reqs = permissions::required(&conn);
        assert!(reqs.len() > 100, "the default selection needs Spot's actions");
        let denied = CallError::AccessDenied("no".into());
        let c = permissions::check(&reqs, &Err(denied.clone()), &Err(denied.clone()), &Err(denied));
        assert_eq!(c.status, CheckStatus::Skipped);
        assert!(c.message.contains("cannot tell"));
        // Skipped permissions mean degraded, never connected-and-healthy.
        assert_eq!(Report::outcome_of(&[c]), Outcome::Degraded);
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
