//! Verifying a role: parse its ARN, assume it with the external ID (waiting
//! out IAM propagation), then check identity, trust policy and permissions
//! concurrently. At most four sequential round trips after AssumeRole's wait.

mod aws;
pub mod evaluate;
pub mod report;
pub mod trust;
mod trust_probe;

pub use report::{Check, CheckId, CheckStatus, Outcome, Report};

use crate::catalog::{BundleRef, Catalog, StatementTemplate};
use crate::connections::Connection;
use crate::domain::RoleArn;
use crate::policy::Selection;
use aws::CallError;
use aws_config::SdkConfig;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// AssumeRole's retry delays grow to this.
const MAX_BACKOFF: Duration = Duration::from_secs(4);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

pub struct Verifier {
    base: OnceCell<SdkConfig>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Verifier { base: OnceCell::new() }
    }

    /// The service's own AWS configuration, loaded on first use.
    async fn base(&self) -> &SdkConfig {
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

    /// Runs every check; `budget` bounds the wait for IAM propagation.
    pub async fn verify(&self, conn: &Connection, principal: &str, role_arn: &str, budget: Duration) -> Report {
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

        let base = self.base().await;
        let sts = aws::sts_client(base, role.partition());
        let session = format!("spot-verify-{}", conn.id.as_str());
        let (assumed, check, used) = assume_with_wait(&sts, base, conn, &role, &session, budget).await;
        checks.push(check);
        let Some(assumed) = assumed else {
            skip_rest(&mut checks, CheckId::AssumeRole);
            return finish(checks, None, false);
        };

        let (identity, trust, perms) = tokio::join!(
            aws::caller_account(&assumed),
            aws::trust_policy(&assumed, &role),
            aws::role_policies(&assumed, &role)
        );
        checks.push(identity_check(identity, &role));
        let (trust_check, promote) = trust_check(trust, conn, principal, &role);
        checks.push(trust_check);
        checks.push(permissions_check(perms, conn));
        finish(checks, Some(used), promote)
    }
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
/// propagate) within the budget. With a rotation pending, the new ID is
/// tried first: verifying with it is what promotes it.
async fn assume_with_wait(
    sts: &aws_sdk_sts::Client,
    base: &SdkConfig,
    conn: &Connection,
    role: &RoleArn,
    session: &str,
    budget: Duration,
) -> (Option<aws::Assumed>, Check, String) {
    let started = Instant::now();
    let mut attempts = 0u32;
    if let Some(pending) = &conn.pending_external_id {
        attempts += 1;
        if let Ok(a) = aws::assume(sts, base, role, pending.as_str(), session).await {
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
    loop {
        attempts += 1;
        let err = match aws::assume(sts, base, role, ext, session).await {
            Ok(a) => {
                let msg = if waited.is_zero() {
                    "Assumed the role with the external ID.".to_owned()
                } else {
                    format!(
                        "Assumed the role with the external ID after waiting {:.1} s for IAM to propagate it.",
                        waited.as_secs_f64()
                    )
                };
                let mut c = Check::passed(CheckId::AssumeRole, msg);
                c.attempts = Some(attempts);
                c.waited_ms = Some(waited.as_millis() as u64);
                return (Some(a), c, ext.to_owned());
            }
            Err(e) => e,
        };
        let retryable = matches!(
            err,
            CallError::AccessDenied(_) | CallError::Throttled(_) | CallError::Timeout
        );
        if retryable && started.elapsed() + delay < budget {
            tokio::time::sleep(delay).await;
            waited += delay;
            delay = (delay * 2).min(MAX_BACKOFF);
            continue;
        }
        let mut c = assume_failure(err, role, waited);
        c.attempts = Some(attempts);
        c.waited_ms = Some(waited.as_millis() as u64);
        return (None, c, ext.to_owned());
    }
}

fn assume_failure(err: CallError, role: &RoleArn, waited: Duration) -> Check {
    let secs = waited.as_secs_f64();
    match err {
        CallError::AccessDenied(_) => Check::failed(
            CheckId::AssumeRole,
            format!("AWS refused to let us assume {} (AccessDenied), also after waiting {secs:.0} s for IAM to propagate a new role.", role.name()),
            "Check that the role exists with exactly this ARN, that its trust relationship names the vendor account with \"Require external ID\" set to this connection's external ID, then press Connect again.",
        ),
        CallError::RegionDisabled(_) => Check::failed(
            CheckId::AssumeRole,
            format!("STS is not active in {} for your account (RegionDisabled).", role.partition().sts_region()),
            "In the IAM console, under Account settings, activate STS for that region, then try again.",
        ),
        CallError::Throttled(_) => Check::failed(
            CheckId::AssumeRole,
            "AWS throttled our AssumeRole calls.",
            "Nothing is wrong with your role as far as we know; try again in a minute.",
        ),
        CallError::Timeout | CallError::Network(_) => Check::failed(
            CheckId::AssumeRole,
            "We could not reach AWS STS in time.",
            "This is on our side or AWS's; try again in a minute.",
        ),
        CallError::NotFound(m) | CallError::Other(m) => {
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
                    "The role may not read its own trust policy (iam:ListRoles is missing), so we cannot make sure it requires the external ID.",
                    "Attach the policy this connection gives you: it includes iam:ListRoles in its core statement.",
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

/// Each bundle of the connection's selection and the statements it needs.
fn required(conn: &Connection) -> Vec<(String, Vec<&'static StatementTemplate>)> {
    let Ok(sel) = Selection::resolve(conn.partition, &conn.permissions) else {
        return Vec::new();
    };
    let c = Catalog::get();
    sel.bundle_ids()
        .into_iter()
        .map(|id| {
            let sts: Vec<&StatementTemplate> = if id == c.core.id {
                c.core.statements.iter().collect()
            } else if let Some(b) = c.shared(id) {
                b.statements.iter().collect()
            } else {
                match c.find(id) {
                    Some(BundleRef::Product(p)) => p.statements.iter().collect(),
                    Some(BundleRef::Integration(_, i)) => i.statements.iter().collect(),
                    None => Vec::new(),
                }
            };
            (id.to_owned(), sts)
        })
        .collect()
}

fn permissions_check(r: Result<Vec<serde_json::Value>, CallError>, conn: &Connection) -> Check {
    let docs = match r {
        Ok(d) => d,
        Err(CallError::AccessDenied(_)) => {
            return Check::skipped(
                CheckId::Permissions,
                "The role may not read its own policies (iam:ListAttachedRolePolicies, iam:GetPolicyVersion …), so we cannot tell which permissions it has. Attach the policy this connection gives you: its core statement grants those reads.",
            )
        }
        Err(e) => return Check::skipped(CheckId::Permissions, format!("Could not read the role's policies: {e:?}")),
    };
    let eval = evaluate::Evaluator::new(&docs);
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut conditional: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut total = 0;
    for (bundle, statements) in required(conn) {
        for s in statements {
            for r in s.resources_for(conn.partition) {
                for a in &s.actions {
                    total += 1;
                    match eval.verdict(a, &r) {
                        evaluate::Verdict::Allowed => {}
                        evaluate::Verdict::Conditional => {
                            conditional.entry(bundle.clone()).or_default().push(a.clone())
                        }
                        evaluate::Verdict::Missing => missing.entry(bundle.clone()).or_default().push(a.clone()),
                    }
                }
            }
        }
    }
    for v in missing.values_mut().chain(conditional.values_mut()) {
        v.sort();
        v.dedup();
    }
    if missing.is_empty() && conditional.is_empty() {
        return Check::passed(
            CheckId::Permissions,
            format!("The role grants all {total} permissions of the selected products and integrations."),
        );
    }
    let count: usize = missing.values().map(Vec::len).sum();
    let bundles: Vec<&str> = missing.keys().chain(conditional.keys()).map(String::as_str).collect();
    let mut c = Check::warning(
        CheckId::Permissions,
        format!(
            "The role lacks {count} permission(s){} for: {}.",
            if conditional.is_empty() { String::new() } else { " and grants some only under conditions".to_owned() },
            bundles.join(", ")
        ),
        "Replace the role's policy with the one this connection gives you (View JSON), or add the listed actions; the account stays connected meanwhile.",
    );
    c.missing = missing;
    c.conditional = conditional;
    c
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
        let c = permissions_check(Err(CallError::AccessDenied("no".into())), &conn);
        assert_eq!(c.status, CheckStatus::Skipped);
        assert!(c.message.contains("cannot tell"));
        // Skipped permissions mean degraded, never connected-and-healthy.
        assert_eq!(Report::outcome_of(&[c]), Outcome::Degraded);
    }

    #[test]
    fn assume_role_errors_are_told_apart() {
        let waited = Duration::from_secs(20);
        let denied = assume_failure(CallError::AccessDenied(String::new()), &role(), waited);
        assert!(denied.message.contains("AccessDenied") && denied.message.contains("20 s"));
        assert!(
            assume_failure(CallError::RegionDisabled(String::new()), &role(), waited)
                .message
                .contains("RegionDisabled")
        );
        assert!(assume_failure(CallError::Throttled(String::new()), &role(), waited)
            .message
            .contains("throttled"));
        assert!(assume_failure(CallError::Timeout, &role(), waited)
            .message
            .contains("in time"));
    }
}
