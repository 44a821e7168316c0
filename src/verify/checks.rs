//! The checks pipeline: the role's ARN, AssumeRole (see `assume`), then
//! identity, trust policy and permissions from the reads of `reads`, under
//! one deadline.

use super::assume::{assume_as_vendor, assume_with_wait, no_vendor_credentials};
use super::aws::CallError;
use super::verifier::Verifier;
use super::{permissions, reads, trust, Check, CheckId, Report, CHECKS_BUDGET};
use crate::domain::{Connection, RoleArn};
use std::time::{Duration, Instant};

impl Verifier {
    pub(super) async fn run(&self, conn: &Connection, principal: &str, role_arn: &str, budget: Duration) -> Report {
        let started = Instant::now();
        // The service's clock: a test moves it instead of waiting.
        let now = self.clock.now();
        let mut checks = Vec::new();
        let finish = |checks: Vec<Check>, role: Option<&RoleArn>, used: Option<String>, promote: bool, read| Report {
            outcome: Report::outcome_of(&checks),
            role: role.cloned(),
            checked_at: crate::clock::iso(now),
            read,
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
                checks.push(*check);
                skip_rest(&mut checks, CheckId::RoleArn);
                return finish(checks, None, None, false, None);
            }
        };

        let access = match self.partitions.get(role.partition()).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(partition = %role.partition(), error = ?e, "no vendor credentials for this partition");
                checks.push(no_vendor_credentials(e, &role));
                skip_rest(&mut checks, CheckId::AssumeRole);
                return finish(checks, Some(&role), None, false, None);
            }
        };
        let session = format!("spot-verify-{}", conn.id.as_str());
        let call = |ext: String| {
            let (access, role, session) = (&access, &role, &session);
            async move {
                self.pools.get(role.partition()).sts_slot().await;
                assume_as_vendor(access, role, &ext, session).await
            }
        };
        // What the selection requires, worked out while AssumeRole is on its way.
        let question = async {
            let reqs = permissions::required(conn);
            let actions = reads::actions_digest(&reqs);
            (reqs, actions)
        };
        let ((assumed, check, used), (reqs, actions)) =
            tokio::join!(assume_with_wait(call, conn, &role, budget), question);
        checks.push(check);
        let Some(assumed) = assumed else {
            skip_rest(&mut checks, CheckId::AssumeRole);
            return finish(checks, Some(&role), None, false, None);
        };

        // One deadline for every read after AssumeRole.
        let deadline = tokio::time::Instant::now() + CHECKS_BUDGET;
        // On the heap: its levels of calls side by side make a large future,
        // and the callback's nests this one deeply.
        let got = Box::pin(reads::read(&assumed, &role, conn, (&reqs, &actions), now, deadline)).await;
        checks.push(identity_check(assumed.account.as_deref(), &role));
        let (trust_check, promote) = trust_check(got.trust, conn, principal, &role, now);
        checks.push(trust_check);
        checks.push(got.permissions);
        finish(checks, Some(&role), Some(used), promote, got.read)
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

fn check_arn(conn: &Connection, raw: &str) -> Result<(RoleArn, Check), Box<Check>> {
    let fix_copy = "In the IAM console, open the role and copy the ARN from its Summary page, e.g. arn:aws:iam::123456789012:role/Spot-Role.";
    let role: RoleArn = raw
        .parse()
        .map_err(|e: crate::domain::ParseError| Box::new(Check::failed(CheckId::RoleArn, e.message, fix_copy)))?;
    if role.partition() != conn.partition {
        return Err(Box::new(Check::failed(
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
        )));
    }
    if let Some(declared) = &conn.aws_account_id {
        if declared != role.account() {
            return Err(Box::new(Check::failed(
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
            )));
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

/// The account AssumeRole's AssumedRoleUser names, against the ARN's.
fn identity_check(account: Option<&str>, role: &RoleArn) -> Check {
    match account {
        Some(account) if account == role.account().as_str() => Check::passed(
            CheckId::Identity,
            format!("The assumed role acts in account {account}."),
        ),
        Some(account) => Check::failed(
            CheckId::Identity,
            format!(
                "The assumed role acts in account {account}, not {} as its ARN says.",
                role.account()
            ),
            "Paste the ARN of the role exactly as the IAM console shows it.",
        ),
        None => Check::failed(
            CheckId::Identity,
            "AssumeRole did not say which account the session acts in, so we could not confirm the role's account.",
            "This is on our side or AWS's; try again in a minute.",
        )
        // AWS's answer was short, not the role at fault.
        .transient(),
    }
}

fn trust_check(
    r: Result<String, CallError>,
    conn: &Connection,
    principal: &str,
    role: &RoleArn,
    now: i64,
) -> (Check, bool) {
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
                )
                .transient(),
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
            let c = Check::failed(CheckId::TrustPolicy, format!("Could not read the role's trust policy: {e}."), "Try again in a minute.");
            return (if e.is_transient() { c.transient() } else { c }, false);
        }
    };
    let doc = match trust::decode_policy(&raw) {
        Ok(d) => d,
        Err(m) => {
            return (
                Check::failed(
                    CheckId::TrustPolicy,
                    m.to_string(),
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
    let audit = trust::audit_at(&doc, principal, role.account().as_str(), &ids, now);
    (audit.check, audit.pending_found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{CheckStatus, Outcome};

    fn role() -> RoleArn {
        "arn:aws:iam::123456789012:role/Spot-Role".parse().unwrap()
    }

    #[test]
    fn identity_fails_when_the_caller_is_in_another_account() {
        assert_eq!(
            identity_check(Some("123456789012"), &role()).status,
            CheckStatus::Passed
        );
        let c = identity_check(Some("999999999999"), &role());
        assert_eq!(c.status, CheckStatus::Failed);
        assert!(c.message.contains("999999999999"));
        // Another account is the role's fault; a short answer is AWS's.
        assert!(!c.transient);
        assert!(identity_check(None, &role()).transient);
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
}
