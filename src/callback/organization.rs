//! The organization's custom resources, arriving over the automatic flow's
//! SNS callback (the parent checks size, ResponseURL and shape first, and
//! answers). Enroll answers the member's own external ID; link
//! verifies and connects its role. Nothing changes before the organization's
//! token verifies and the management role confirms the account is a member
//! and the StackId its own instance of the organization's StackSet (the
//! token is in every member's template: it proves the organization, not the
//! account). A Delete acts only for the stack that connected; one naming a
//! connected member from a stack that is not its instance is FAILED.

use super::{Decision, Request, RetryLater};
use crate::automatic::stack_arn::StackArn;
use crate::connections::ServiceError;
use crate::domain::{ConnectedStack, Connection, ConnectionId, OrgState, OrganizationId, RoleArn};
use crate::organizations::template::{ENROLL_TYPE, LINK_TYPE};
use crate::organizations::{Linked, OrganizationError, OrganizationService, Refusal};
use crate::services::Services;
use serde_json::json;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Enroll,
    Link,
}

/// A refused member request: FAILED with nothing of the member in it, or a
/// retry while CloudFormation is still making the instance.
fn refused(physical: &str, r: Refusal) -> Result<Decision, RetryLater> {
    let d = Decision::failed(physical, r.message()).genuine();
    match r {
        Refusal::NotYet(m) => Err(RetryLater(m)),
        // Not a rejection: AWS did not answer, nothing is known against the stack.
        Refusal::Unreadable(_) => Ok(d),
        Refusal::NotTheInstance(_) => Ok(d.rejected("stack")),
        Refusal::Refused(_) => Ok(d.rejected("account")),
    }
}

fn retry(e: OrganizationError) -> Result<String, RetryLater> {
    match e {
        e if e.unavailable().is_some() => Err(RetryLater(e.unavailable().unwrap_or_default().to_owned())),
        OrganizationError::Offboarded => {
            Ok("This organization was offboarded in Spot; its accounts no longer connect.".into())
        }
        e => Ok(format!("Spot could not record this account: {e}")),
    }
}

pub(crate) async fn decide(
    state: &Services,
    key: &[u8],
    req: &Request,
    stack: &StackArn,
    physical: &str,
) -> Result<Decision, RetryLater> {
    let orgs: &OrganizationService = &state.organizations;
    let is_delete = req.request_type == "Delete";
    let refuse = |reason: String| {
        if is_delete {
            Decision::success(physical, "Nothing to do: Spot did not connect this resource.")
        } else {
            Decision::failed(physical, reason)
        }
    };
    let kind = match req.resource_type.as_deref() {
        Some(ENROLL_TYPE) => Kind::Enroll,
        Some(LINK_TYPE) => Kind::Link,
        _ => {
            return Ok(refuse(format!(
                "Unknown organization resource type {:.60?}; use the template Spot gave you, unmodified.",
                req.resource_type.as_deref().unwrap_or_default()
            ))
            .rejected("unreadable"))
        }
    };
    let p = &req.resource_properties;
    let Some(id) = p
        .organization_id
        .as_deref()
        .and_then(|s| s.parse::<OrganizationId>().ok())
    else {
        return Ok(refuse(
            "The template has no valid OrganizationId; use the template Spot gave you, unmodified.".into(),
        )
        .rejected("unreadable"));
    };
    let o = match orgs.get_for_token(&id).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Ok(
                refuse("Spot does not know this organization; start again from the Spot console.".into())
                    .rejected("token"),
            )
        }
        Err(e) => match e.unavailable() {
            Some(m) => return Err(RetryLater(m.to_owned())),
            None => return Ok(refuse(format!("Spot could not read the organization: {e}"))),
        },
    };
    let tok = p.callback_token.as_deref().unwrap_or_default();
    if !crate::organizations::token::verify(key, o.id.as_str(), o.management_account_id.as_str(), tok) {
        tracing::warn!(organization = id.as_str(), stack_id = %req.stack_id, "an organization callback token does not verify");
        return Ok(refuse(
            "The CallbackToken does not match this organization and its management account: the template was not issued by Spot for it. Use the management stack's StackSet, unmodified.".into(),
        )
        .rejected("token"));
    }
    if stack.partition != o.partition {
        return Ok(refuse(format!(
            "This stack runs in {} but the organization was connected for {}.",
            stack.partition.display_name(),
            o.partition.display_name()
        ))
        .rejected("partition"));
    }
    let actor = format!("cloudformation:{}", stack.name);
    let account = &stack.account;
    if is_delete {
        if kind == Kind::Enroll {
            // The external ID stays this account's, for when it comes back.
            return Ok(Decision::success(
                physical,
                "Nothing to remove: Spot keeps this account's external ID for the organization.",
            )
            .genuine());
        }
        let Some(member_id) = req
            .physical_resource_id
            .as_deref()
            .and_then(|s| s.parse::<ConnectionId>().ok())
        else {
            return Ok(
                Decision::success(physical, "Nothing to do: this resource never connected an account.").genuine(),
            );
        };
        let member = match orgs.member_for_token(&member_id).await {
            Ok(m) => m,
            Err(e) => match e.unavailable() {
                Some(m) => return Err(RetryLater(m.to_owned())),
                None => None,
            },
        };
        let Some(member) = member.filter(|m| {
            m.organization
                .as_ref()
                .is_some_and(|x| x.organization_id == o.id && !x.management)
                && m.aws_account_id.as_ref() == Some(account)
        }) else {
            return Ok(
                Decision::success(physical, "Nothing to do: Spot does not know this account (any more).").genuine(),
            );
        };
        if member.state != crate::domain::Status::Connected {
            return Ok(Decision::success(physical, "Nothing to do: this account is not connected.").genuine());
        }
        // Without the management role nothing can confirm the stack is the
        // account's instance: nothing changes, and the stack may go.
        match orgs.state_of(&o).await {
            Ok(OrgState::ManagementStackDeleted) => {
                return Ok(Decision::success(
                    physical,
                    "Nothing changed: the organization's management stack was deleted, so Spot cannot confirm this stack is the account's instance. The account stays connected until the organization is offboarded or its management stack created again.",
                )
                .genuine())
            }
            Ok(_) => {}
            Err(e) => retry(e).map(|_| ())?,
        }
        // A connected member lets go only for its own instance's stack.
        if let Err(r) = Box::pin(orgs.confirm_instance(&o, account, &req.stack_id)).await {
            tracing::warn!(organization = id.as_str(), account = account.as_str(), stack_id = %req.stack_id, reason = r.message(), "refused a member's Delete");
            return refused(physical, r);
        }
        return match orgs.unlink(&member, &req.stack_id, &actor).await {
            Ok(true) => Ok(Decision::success(physical, "Spot no longer uses this account's role.").genuine()),
            Ok(false) => Ok(Decision::success(
                physical,
                "Nothing to do: another stack connected this account, or none did.",
            )
            .genuine()),
            Err(e) => {
                retry(e)?;
                Ok(Decision::success(physical, "Nothing to do.").genuine())
            }
        };
    }
    if o.state != OrgState::Active {
        return Ok(Decision::failed(
            physical,
            "This organization was offboarded in Spot; its accounts no longer connect.",
        )
        .genuine());
    }
    if let Err(r) = Box::pin(orgs.confirm_member(&o, account, &req.stack_id)).await {
        tracing::warn!(organization = id.as_str(), account = account.as_str(), stack_id = %req.stack_id, reason = r.message(), "refused an organization member");
        return refused(physical, r);
    }
    let member = match orgs.enroll(&o, account, &actor).await {
        Ok(m) => m,
        Err(e) => return Ok(Decision::failed(physical, retry(e)?).genuine()),
    };
    if kind == Kind::Enroll {
        return Ok(Decision::success(member.id.as_str(), "Enrolled with Spot.")
            .with_data(json!({"ExternalId": member.external_id.as_str(), "ConnectionId": member.id.as_str()}))
            .genuine());
    }
    let Some(role_raw) = p.role_arn.as_deref() else {
        return Ok(Decision::failed(
            physical,
            "The request has no RoleArn; use the template Spot gave you, unmodified.",
        )
        .genuine());
    };
    match role_raw.parse::<RoleArn>() {
        Ok(r) if r.account() != account => {
            return Ok(Decision::failed(
                physical,
                format!(
                    "The stack runs in account {account} but the role is in account {}.",
                    r.account()
                ),
            )
            .rejected("account")
            .genuine())
        }
        Ok(_) => {}
        Err(e) => return Ok(Decision::failed(physical, format!("The RoleArn is not valid: {}", e.message)).genuine()),
    }
    let record = ConnectedStack {
        stack_id: req.stack_id.clone(),
        account_id: account.clone(),
    };
    let data = |c: &Connection| json!({"RoleArn": c.role_arn.as_ref().map(|r| r.as_str()).unwrap_or(role_raw), "ConnectionId": c.id.as_str()});
    // A link may wait for IAM the whole budget: it takes a slot of the
    // organization's tenant's callback share, as its Creates do (`fair`).
    let budget = Duration::from_secs(state.config.callback_propagation_secs);
    let lease = match super::fair::admit(state, &o.org, budget).await? {
        super::fair::Admission::Run(lease) => lease,
        super::fair::Admission::Defer => {
            return Ok(Decision {
                deferred_for: Some(o.org.clone()),
                ..Decision::failed(physical, "")
            })
        }
        super::fair::Admission::Refuse(why) => return Ok(Decision::failed(physical, why).genuine()),
    };
    let linked = orgs.link(&member, role_raw, record, &actor).await;
    super::fair::release(state, lease).await;
    match linked {
        Ok(Linked::Connected(c, outcome)) => Ok(Decision::success(
            c.id.as_str(),
            match outcome {
                crate::verify::Outcome::Degraded => {
                    "Connected to Spot; some permissions are missing, see the Spot console."
                }
                _ => "Connected to Spot.",
            },
        )
        .with_data(data(&c))
        .genuine()),
        Ok(Linked::AlreadyBy(c, other)) => Ok(Decision::success(
            c.id.as_str(),
            format!(
                "Already connected by the stack {} (another region's instance): nothing changed.",
                other.stack_id
            ),
        )
        .with_data(data(&c))
        .genuine()),
        Ok(Linked::Failed(reason)) => Ok(Decision::failed(physical, reason).genuine()),
        Err(OrganizationError::Connection(ServiceError::RoleHeld)) => Ok(Decision::failed(
            physical,
            "Another Spot connection already uses this role; give the members' role another name (MemberRoleName).",
        )
        .genuine()),
        Err(e) => Ok(Decision::failed(physical, retry(e)?).genuine()),
    }
}
