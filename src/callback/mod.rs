//! The CloudFormation custom resource's provider: requests arrive through the
//! vendor's SNS topic, which anyone may publish to. Nothing is contacted
//! before the StackId's region is a real one of its partition and the
//! ResponseURL passes the allow-list; nothing changes before the
//! token verifies; Update and Delete act only for the stack that connected.
//! Every message that reaches a valid ResponseURL is answered, so no stack hangs.

mod fair;
mod organization;

pub use fair::handle_deferred;

use crate::automatic::responder::PutError;
pub use crate::automatic::responder::{Responder, Response};
use crate::automatic::stack_arn::{NotAStackId, StackArn};
use crate::automatic::token;
use crate::connections::ServiceError;
use crate::domain::RoleArn;
use crate::domain::{ConnectedStack, Connection, ConnectionId};
use crate::services::Services;
use crate::tenancy::Tenant;
use aws_lambda_events::event::sns::SnsEvent;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// The Reason is the part of the answer a customer reads; the body must
/// stay within 4,096 bytes.
const MAX_REASON: usize = 1500;
/// CloudFormation's requests are a few KB; SNS allows 256 KB.
const MAX_MESSAGE: usize = 64 * 1024;
const INVALID_PHYSICAL_ID: &str = "account-connect-invalid-request";
/// A failed Create's physical id: never the connection id, so the rollback's
/// Delete cannot be mistaken for the connected stack's.
const FAILED_PREFIX: &str = "account-connect-failed-";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Request {
    pub(crate) request_type: String,
    pub(crate) stack_id: String,
    pub(crate) request_id: String,
    /// Required: a request without it is not CloudFormation's (the answer echoes the raw value).
    #[allow(dead_code)]
    logical_resource_id: String,
    #[serde(default)]
    pub(crate) physical_resource_id: Option<String>,
    /// The custom resource's type: an organization's enroll or link.
    #[serde(default)]
    pub(crate) resource_type: Option<String>,
    #[serde(default)]
    pub(crate) resource_properties: Properties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Properties {
    connection_id: Option<String>,
    pub(crate) role_arn: Option<String>,
    pub(crate) callback_token: Option<String>,
    /// Set by an organization's member template (`organization` answers those).
    pub(crate) organization_id: Option<String>,
}

/// A failure worth a Lambda retry (the store is down, or the genuine answer
/// did not get through): CloudFormation has not been answered yet.
#[derive(Debug)]
pub struct RetryLater(pub String);

impl std::fmt::Display for RetryLater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "retry later: {}", self.0)
    }
}
impl std::error::Error for RetryLater {}

/// What to answer, and what the message turned out to be.
pub(crate) struct Decision {
    status: &'static str,
    reason: String,
    data: Value,
    physical: String,
    /// The token verified: a failed PUT is worth a retry.
    genuine: bool,
    /// Why a message was refused, for the CallbackRejected metric.
    rejected: Option<&'static str>,
    /// Not answered now: the organization is over its share (`fair`).
    deferred_for: Option<String>,
}

impl Decision {
    pub(crate) fn failed(physical: &str, reason: impl Into<String>) -> Self {
        Decision {
            status: "FAILED",
            reason: reason.into(),
            data: json!({}),
            physical: physical.to_owned(),
            genuine: false,
            rejected: None,
            deferred_for: None,
        }
    }
    pub(crate) fn success(physical: &str, reason: impl Into<String>) -> Self {
        Decision {
            status: "SUCCESS",
            ..Decision::failed(physical, reason)
        }
    }
    pub(crate) fn rejected(mut self, why: &'static str) -> Self {
        self.rejected = Some(why);
        self
    }
    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
    pub(crate) fn genuine(mut self) -> Self {
        self.genuine = true;
        self
    }
}

pub async fn handle(state: &Services, responder: &Responder, event: SnsEvent) -> Result<(), RetryLater> {
    for record in event.records {
        handle_message(state, responder, &record.sns.message).await?;
    }
    Ok(())
}

pub async fn handle_message(state: &Services, responder: &Responder, message: &str) -> Result<(), RetryLater> {
    if message.len() > MAX_MESSAGE {
        return ignore("too_large", "a callback message is over 64 KB; ignored");
    }
    let Ok(raw) = serde_json::from_str::<Value>(message) else {
        return ignore("unreadable", "a callback message is not JSON; nothing to answer");
    };
    // A StackId whose region its partition does not have names no bucket
    // and no console: dropped before any URL is derived from it.
    let stack = match raw["StackId"].as_str().map(str::parse::<StackArn>) {
        Some(Ok(stack)) => Some(stack),
        Some(Err(why @ NotAStackId::UnknownRegion { .. })) => {
            tracing::warn!(reason = %why, "ignored a callback message: its StackId's region is not one of its partition's");
            crate::metrics::callback_rejected("region");
            return Ok(());
        }
        Some(Err(NotAStackId::Malformed(_))) | None => None,
    };
    let url = match responder.check(raw["ResponseURL"].as_str(), stack.as_ref()) {
        Ok(u) => u,
        Err(why) => {
            tracing::warn!(reason = %why, "ignored a callback message: its ResponseURL is not CloudFormation's");
            crate::metrics::callback_rejected("response_url");
            return Ok(());
        }
    };
    let echo = |k: &str| raw[k].as_str().unwrap_or_default().to_owned();
    let mut claims = Vec::new();
    let (request_type, decision) = match serde_json::from_value::<Request>(raw.clone()) {
        Err(e) => (
            echo("RequestType"),
            Decision::failed(
                raw["PhysicalResourceId"].as_str().unwrap_or(INVALID_PHYSICAL_ID),
                format!(
                    "Spot could not read this custom resource request ({e}). Recreate the stack from a fresh template."
                ),
            )
            .rejected("unreadable"),
        ),
        Ok(req) => {
            // The same request delivered again (SNS delivers at least once;
            // Lambda retries) is acted on once: see `Claim`.
            let claim = match &stack {
                Some(_) => match Claim::take(state, &req).await? {
                    Some(claim) => Some(claim),
                    None => {
                        tracing::info!(stack_id = %req.stack_id, request_id = %req.request_id, "a request delivered again while or after it was handled; not acted on again");
                        crate::metrics::callback_rejected("duplicate");
                        return Ok(());
                    }
                },
                None => None,
            };
            let d = match &stack {
                // Boxed: the decision's future is large (debug builds overflowed a
                // test thread's 2 MiB stack with it inline).
                Some(stack) => match Box::pin(decide(state, &req, stack)).await {
                    Ok(d) => d,
                    Err(e) => {
                        if let Some(c) = claim {
                            c.release(state).await;
                        }
                        return Err(e);
                    }
                },
                None => Decision::failed(
                    &fallback_physical(&req),
                    "The request's StackId is not a CloudFormation stack ARN.",
                )
                .rejected("unreadable"),
            };
            if let Some(c) = claim {
                claims.push((c, d.genuine));
            }
            (req.request_type, d)
        }
    };
    if let Some(org) = &decision.deferred_for {
        // Deferred, not answered: the same request comes back from the
        // callback queue and must run then, so its claim goes.
        for (claim, _) in claims {
            claim.release(state).await;
        }
        return fair::defer(state, org, message).await;
    }
    let res = Response {
        status: decision.status.into(),
        reason: truncate(decision.reason),
        physical_resource_id: decision.physical,
        stack_id: echo("StackId"),
        request_id: echo("RequestId"),
        logical_resource_id: echo("LogicalResourceId"),
        data: decision.data,
    };
    let kind = known_type(&request_type);
    crate::metrics::callback(&res.status, kind);
    if let Some(why) = decision.rejected {
        crate::metrics::callback_rejected(why);
    }
    tracing::info!(status = %res.status, request_type = kind, stack_id = %res.stack_id, rejected = decision.rejected, reason = %res.reason, "answering CloudFormation");
    let out = match responder.put(&url, &res).await {
        Ok(()) => Ok(()),
        Err(PutError::Transient(m)) if decision.genuine => Err(RetryLater(m)),
        Err(e) => {
            tracing::warn!(error = ?e, "the answer to CloudFormation did not go through; not retried");
            Ok(())
        }
    };
    for (claim, genuine) in claims {
        match (&out, genuine) {
            // Answered: a later delivery of it is skipped.
            (Ok(()), true) => claim.keep(state).await,
            // A retry of this request must run again; a message whose token
            // did not verify changed nothing and may be answered again.
            _ => claim.release(state).await,
        }
    }
    out
}

/// One CloudFormation request (its StackId, RequestId and type) claimed
/// by one invocation: a lease in the store (`ConnectionService::lease`)
/// for as long as the request may take, so a second delivery while the
/// first runs is skipped, not run side by side; kept for `ANSWERED_SECS`
/// once answered, so a later delivery is skipped too (CloudFormation has
/// its answer: the skipped one answers nothing). Released when the
/// invocation asks Lambda for a retry, which must then run.
struct Claim {
    key: String,
    holder: String,
}

/// Longer than Lambda's retries (the event's maximum age is an hour) and
/// CloudFormation's wait for an answer (an hour).
const ANSWERED_SECS: i64 = 2 * 3600;
/// Beyond the propagation budget: the rest of the handling and the answer.
const HANDLING_MARGIN_SECS: i64 = 120;

impl Claim {
    /// The claim, or None when another invocation holds or held it.
    async fn take(state: &Services, req: &Request) -> Result<Option<Claim>, RetryLater> {
        use sha2::{Digest, Sha256};
        let id = format!("{}\n{}\n{}", req.stack_id, req.request_id, req.request_type);
        let key = format!("cfn-request#{}", hex::encode(&Sha256::digest(id.as_bytes())[..16]));
        let holder = crate::ids::random_token(12);
        let secs = state.config.callback_propagation_secs as i64 + HANDLING_MARGIN_SECS;
        match state.connections.lease(&key, &holder, secs).await {
            Ok(true) => Ok(Some(Claim { key, holder })),
            Ok(false) => Ok(None),
            Err(e) => Err(RetryLater(e.to_string())),
        }
    }

    async fn keep(self, state: &Services) {
        if let Err(e) = state.connections.lease(&self.key, &self.holder, ANSWERED_SECS).await {
            // The in-flight claim stands until it expires.
            tracing::warn!(error = %e, "could not keep a callback request's claim");
        }
    }

    async fn release(self, state: &Services) {
        if let Err(e) = state.connections.release(&self.key, &self.holder).await {
            tracing::warn!(error = %e, "could not release a callback request's claim");
        }
    }
}

fn ignore(why: &'static str, log: &str) -> Result<(), RetryLater> {
    tracing::warn!("{log}");
    crate::metrics::callback_rejected(why);
    Ok(())
}

/// Metric dimensions take only the three real request types.
fn known_type(t: &str) -> &'static str {
    match t {
        "Create" => "Create",
        "Update" => "Update",
        "Delete" => "Delete",
        _ => "Unknown",
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A Create that fails answers an id derived from its RequestId; Update
/// and Delete answer the id CloudFormation sent.
fn fallback_physical(req: &Request) -> String {
    match (&req.physical_resource_id, req.request_type.as_str()) {
        (Some(p), "Update" | "Delete") => p.clone(),
        _ => {
            let id: String = req
                .request_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(64)
                .collect();
            format!("{FAILED_PREFIX}{id}")
        }
    }
}

async fn decide(state: &Services, req: &Request, stack: &StackArn) -> Result<Decision, RetryLater> {
    let physical = fallback_physical(req);
    let is_delete = req.request_type == "Delete";
    // A Delete is always SUCCESS, so a stack can always be deleted; it acts
    // only when everything below holds.
    let refuse = |reason: String| {
        if is_delete {
            Decision::success(&physical, "Nothing to do: Spot did not connect this resource.")
        } else {
            Decision::failed(&physical, reason)
        }
    };
    if !matches!(req.request_type.as_str(), "Create" | "Update" | "Delete") {
        return Ok(
            Decision::failed(&physical, format!("Unknown RequestType {:.40?}.", req.request_type))
                .rejected("unreadable"),
        );
    }
    let p = &req.resource_properties;
    let Some(key) = state.config.expose_callback_key() else {
        return Ok(refuse(
            "Spot's callback is not configured to accept stacks; connect this account manually.".into(),
        ));
    };
    if p.organization_id.is_some() {
        return Box::pin(organization::decide(state, key, req, stack, &physical)).await;
    }
    let Some(id) = p.connection_id.as_deref().and_then(|s| s.parse::<ConnectionId>().ok()) else {
        return Ok(refuse(
            "The template has no valid ConnectionId. Start again from the Spot console to get a fresh template.".into(),
        )
        .rejected("unreadable"));
    };
    let conn = match state.connections.get_for_token(&id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Ok(refuse(
                "Spot does not know this connection; start again from the Spot console to get a fresh template.".into(),
            )
            .rejected("token"))
        }
        Err(e) => match e.unavailable() {
            Some(m) => return Err(RetryLater(m.to_owned())),
            None => return Ok(refuse(format!("Spot could not read the connection: {e}"))),
        },
    };
    let now = state.connections.now();
    if let Some(why) = token::refusal(key, &conn, p.callback_token.as_deref().unwrap_or_default(), now) {
        tracing::warn!(connection = id.as_str(), stack_id = %req.stack_id, "a callback token does not verify");
        return Ok(refuse(why).rejected("token"));
    }
    // A partition's stacks connect only that partition's connections (a
    // relay forwards its own partition's stacks; the topic, commercial ones).
    if stack.partition != conn.partition {
        tracing::warn!(connection = id.as_str(), stack_id = %req.stack_id, "a stack of another partition than the connection's");
        return Ok(refuse(format!(
            "This stack runs in {} but Spot connection {} is for {}. Create the stack in {}, or start a new connection in the Spot console for {}.",
            stack.partition.display_name(),
            id.as_str(),
            conn.partition.display_name(),
            conn.partition.display_name(),
            stack.partition.display_name()
        ))
        .rejected("partition"));
    }
    let tenant = system_tenant(&conn.org, stack);
    let ours = req.physical_resource_id.as_deref() == Some(id.as_str());
    let recorded = conn.stack.as_ref().map(|s| s.stack_id.as_str());
    match req.request_type.as_str() {
        "Delete" => Ok(delete(state, &tenant, &conn, req, ours, &physical).await?.genuine()),
        "Update" if !ours || recorded != Some(req.stack_id.as_str()) => {
            let who = recorded.map_or_else(
                || "no stack connected it".to_owned(),
                |s| format!("it was connected by the stack {s}"),
            );
            Ok(Decision::failed(
                &physical,
                format!("Spot ignores this update: this stack did not connect Spot connection {} ({who}). Delete this stack, or update the stack that connected it.", id.as_str()),
            )
            .rejected("stack")
            .genuine())
        }
        _ => Ok(connect(state, &tenant, &conn, req, stack, &physical).await?.genuine()),
    }
}

async fn delete(
    state: &Services,
    tenant: &Tenant,
    conn: &Connection,
    req: &Request,
    ours: bool,
    physical: &str,
) -> Result<Decision, RetryLater> {
    let nothing = Decision::success(
        physical,
        "Nothing to do: this stack did not connect the Spot connection.",
    );
    if !ours {
        // A failed Create's rollback, or a resource that never connected.
        return Ok(nothing);
    }
    if conn.organization.as_ref().is_some_and(|m| m.management) {
        return management_deleted(state, tenant, conn, req, physical).await;
    }
    match state
        .connections
        .disconnect_stack(tenant, &conn.id, &req.stack_id)
        .await
    {
        Ok(true) => Ok(Decision::success(
            physical,
            "Spot no longer uses this role: the connection is disconnected.",
        )),
        Ok(false) => Ok(nothing.rejected("stack")),
        Err(e) if e.unavailable().is_some() => Err(RetryLater(e.unavailable().unwrap_or_default().to_owned())),
        Err(e) => {
            tracing::warn!(error = ?e, "could not disconnect on stack deletion");
            Ok(nothing)
        }
    }
}

/// An organization's management stack deleted: the organization waits for
/// it again (or for offboarding), holding its Spot account; its members
/// stay as they are.
async fn management_deleted(
    state: &Services,
    tenant: &Tenant,
    conn: &Connection,
    req: &Request,
    physical: &str,
) -> Result<Decision, RetryLater> {
    match state
        .organizations
        .management_stack_deleted(conn, &req.stack_id, &tenant.sub)
        .await
    {
        Ok(true) => Ok(Decision::success(
            physical,
            "Spot no longer uses this role: the organization waits for its management stack again (create it from the quick-create link Spot shows), or for offboarding.",
        )),
        Ok(false) => Ok(Decision::success(physical, "Nothing to do: this stack did not connect the Spot connection.").rejected("stack")),
        Err(e) if e.unavailable().is_some() => Err(RetryLater(e.unavailable().unwrap_or_default().to_owned())),
        Err(e) => {
            tracing::warn!(error = ?e, "could not record the management stack's deletion");
            Ok(Decision::success(physical, "Nothing to do."))
        }
    }
}

async fn connect(
    state: &Services,
    tenant: &Tenant,
    conn: &Connection,
    req: &Request,
    stack: &StackArn,
    physical: &str,
) -> Result<Decision, RetryLater> {
    let fail = |reason: String| Ok(Decision::failed(physical, reason));
    let declared = conn
        .aws_account_id
        .as_ref()
        .expect("the token binds a declared account");
    if &stack.account != declared {
        return Ok(Decision::failed(
            physical,
            format!(
                "This stack runs in AWS account {} but Spot connection {} is for AWS account {declared}. Create the stack while logged in to account {declared}, or start a new connection in the Spot console for account {}.",
                stack.account,
                conn.id.as_str(),
                stack.account
            ),
        )
        .rejected("account"));
    }
    let Some(role_raw) = req.resource_properties.role_arn.as_deref() else {
        return fail("The request has no RoleArn; use the template the Spot console gives you, unmodified.".into());
    };
    match role_raw.parse::<RoleArn>() {
        Ok(role) if role.account() != &stack.account => {
            return fail(format!(
            "The stack runs in account {} but the role is in account {}; create the stack in the account you connect.",
            stack.account,
            role.account()
        ))
        }
        Ok(_) => {}
        Err(e) => return fail(format!("The RoleArn is not valid: {}", e.message)),
    }
    let record = ConnectedStack {
        stack_id: req.stack_id.clone(),
        account_id: stack.account.clone(),
    };
    let budget = Duration::from_secs(state.config.callback_propagation_secs);
    let id = &conn.id;
    let lease = match fair::admit(state, &conn.org, budget).await? {
        fair::Admission::Run(lease) => lease,
        fair::Admission::Defer => {
            return Ok(Decision {
                deferred_for: Some(conn.org.clone()),
                ..Decision::failed(physical, "")
            })
        }
        fair::Admission::Refuse(why) => return fail(why),
    };
    let connected = state
        .connections
        .connect_role_from(tenant, id, role_raw, budget, Some(record))
        .await;
    fair::release(state, lease).await;
    match connected {
        Ok((c, report)) => {
            let role = c.role_arn.as_ref().map(|r| r.as_str().to_owned()).unwrap_or_default();
            let reason = match report.outcome {
                crate::verify::Outcome::Degraded => "Connected to Spot; some permissions are missing, see the Spot console.",
                _ => "Connected to Spot.",
            };
            Ok(Decision {
                data: json!({"RoleArn": role, "ConnectionId": id.as_str()}),
                ..Decision::success(id.as_str(), reason)
            })
        }
        Err(ServiceError::VerificationFailed { report, .. }) => {
            fail(format!("Spot could not connect the role. {}", report.summary()))
        }
        Err(e) if e.unavailable().is_some() => Err(RetryLater(e.unavailable().unwrap_or_default().to_owned())),
        Err(ServiceError::WrongStatus { status, .. }) => fail(format!(
            "This connection is {}; start again from the Spot console to get a fresh template.",
            status.as_str()
        )),
        Err(ServiceError::OtherStack(s)) => Ok(Decision::failed(
            physical,
            format!(
                "Spot connection {} is already connected by the stack {}. Only that stack can change or disconnect it: delete this stack, or start a new connection in the Spot console.",
                id.as_str(),
                s.stack_id
            ),
        )
        .rejected("stack")),
        // The callback waits for another verification of the connection
        // (`connect_role_from`); this is one that outlived its lease twice.
        Err(ServiceError::VerificationInProgress) => fail(
            "Another request for this Spot connection is still being verified; retry the stack in a few minutes.".into(),
        ),
        Err(ServiceError::RoleHeld) => fail(
            "Another Spot connection already uses this role; give the role another name (RoleName parameter).".into(),
        ),
        Err(e) => fail(format!("Spot could not connect the role: {e}")),
    }
}

fn system_tenant(org: &str, stack: &StackArn) -> Tenant {
    Tenant {
        org: org.to_owned(),
        sub: format!("cloudformation:{}", stack.name),
        accounts: None,
    }
}
