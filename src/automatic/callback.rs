//! The CloudFormation custom resource's provider: requests arrive through the
//! vendor's SNS topic; every path answers CloudFormation, so no stack hangs.

use super::token;
use crate::api::AppState;
use crate::auth::Tenant;
use crate::connections::{ConnectionId, ServiceError, Status};
use crate::domain::RoleArn;
use crate::store::StoreError;
use aws_lambda_events::event::sns::SnsEvent;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// CloudFormation takes at most 4,096 bytes of response; the Reason is the
/// part a customer reads.
const MAX_REASON: usize = 1500;
const INVALID_PHYSICAL_ID: &str = "account-connect-invalid-request";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    request_type: String,
    #[serde(rename = "ResponseURL")]
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    #[serde(default)]
    physical_resource_id: Option<String>,
    #[serde(default)]
    resource_properties: Properties,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Properties {
    connection_id: Option<String>,
    role_arn: Option<String>,
    callback_token: Option<String>,
}

/// What is PUT to the ResponseURL.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: String,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub data: Value,
}

/// A failure worth a Lambda retry (the store is down): CloudFormation has not
/// been answered yet.
#[derive(Debug)]
pub struct RetryLater(pub String);

impl std::fmt::Display for RetryLater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "retry later: {}", self.0)
    }
}
impl std::error::Error for RetryLater {}

pub async fn handle(state: &AppState, http: &reqwest::Client, event: SnsEvent) -> Result<(), RetryLater> {
    for record in event.records {
        handle_message(state, http, &record.sns.message).await?;
    }
    Ok(())
}

pub async fn handle_message(state: &AppState, http: &reqwest::Client, message: &str) -> Result<(), RetryLater> {
    let Ok(raw) = serde_json::from_str::<Value>(message) else {
        tracing::error!("a callback message is not JSON; nothing to answer");
        return Ok(());
    };
    let Some(url) = raw["ResponseURL"].as_str().map(str::to_owned) else {
        tracing::error!("a callback message has no ResponseURL; nothing to answer");
        return Ok(());
    };
    let req: Request = match serde_json::from_value(raw.clone()) {
        Ok(r) => r,
        Err(e) => {
            let echo = |k: &str| raw[k].as_str().unwrap_or_default().to_owned();
            let res = Response {
                status: "FAILED".into(),
                reason: format!(
                    "Spot could not read this custom resource request ({e}). Recreate the stack from a fresh template."
                ),
                physical_resource_id: raw["PhysicalResourceId"]
                    .as_str()
                    .unwrap_or(INVALID_PHYSICAL_ID)
                    .to_owned(),
                stack_id: echo("StackId"),
                request_id: echo("RequestId"),
                logical_resource_id: echo("LogicalResourceId"),
                data: json!({}),
            };
            return put(http, &url, &res).await;
        }
    };
    let (status, reason, data, physical) = decide(state, &req).await?;
    let res = Response {
        status: status.into(),
        reason: truncate(reason),
        physical_resource_id: physical,
        stack_id: req.stack_id.clone(),
        request_id: req.request_id.clone(),
        logical_resource_id: req.logical_resource_id.clone(),
        data,
    };
    crate::metrics::callback(&res.status, &req.request_type);
    put(http, &req.response_url, &res).await
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

type Decision = (&'static str, String, Value, String);

async fn decide(state: &AppState, req: &Request) -> Result<Decision, RetryLater> {
    let p = &req.resource_properties;
    let physical = req
        .physical_resource_id
        .clone()
        .or_else(|| p.connection_id.clone())
        .unwrap_or_else(|| INVALID_PHYSICAL_ID.into());
    let fail = |reason: String| Ok(("FAILED", reason, json!({}), physical.clone()));
    let conn_id: Option<ConnectionId> = p.connection_id.as_deref().and_then(|s| s.parse().ok());
    let token_ok = match (&state.config.callback_key, &conn_id, &p.callback_token) {
        (Some(key), Some(id), Some(t)) => token::verify(key, id.as_str(), t),
        _ => false,
    };

    if req.request_type == "Delete" {
        // Always SUCCESS, so a stack can always be deleted; act only on a genuine token.
        if let (true, Some(id)) = (token_ok, &conn_id) {
            match state.connections.store.get_any(id).await {
                Ok(Some(c)) if c.state != Status::Disconnected => {
                    let tenant = system_tenant(&c.org, &req.stack_id);
                    match state.connections.disconnect(&tenant, id).await {
                        Ok(_) | Err(ServiceError::NotFound) => {}
                        Err(ServiceError::Store(StoreError::Unavailable(m))) => return Err(RetryLater(m)),
                        Err(e) => tracing::warn!(error = ?e, "could not disconnect on stack deletion"),
                    }
                }
                Ok(_) => {}
                Err(StoreError::Unavailable(m)) => return Err(RetryLater(m)),
                Err(e) => tracing::warn!(error = ?e, "could not read the connection on stack deletion"),
            }
        }
        return Ok(("SUCCESS", "Spot no longer uses this role.".into(), json!({}), physical));
    }
    if req.request_type != "Create" && req.request_type != "Update" {
        return fail(format!("Unknown RequestType {:?}.", req.request_type));
    }
    let Some(id) = conn_id else {
        return fail(
            "The template has no valid ConnectionId. Start again from the Spot console to get a fresh template.".into(),
        );
    };
    if state.config.callback_key.is_none() {
        return fail("Spot's callback is not configured to accept stacks; connect this account manually.".into());
    }
    if !token_ok {
        return fail("The CallbackToken does not match this connection: the template was not issued by Spot for it. Use the template the Spot console gives you, unmodified.".into());
    }
    let Some(role_raw) = p.role_arn.as_deref() else {
        return fail("The request has no RoleArn; use the template the Spot console gives you, unmodified.".into());
    };
    let stack_account = req.stack_id.split(':').nth(4).unwrap_or_default();
    match role_raw.parse::<RoleArn>() {
        Ok(role) if role.account().as_str() != stack_account => {
            return fail(format!(
                "The stack runs in account {stack_account} but the role is in account {}; create the stack in the account you connect.",
                role.account()
            ))
        }
        Ok(_) => {}
        Err(e) => return fail(format!("The RoleArn is not valid: {}", e.message)),
    }
    let conn = match state.connections.store.get_any(&id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return fail(
                "Spot does not know this connection; start again from the Spot console to get a fresh template.".into(),
            )
        }
        Err(StoreError::Unavailable(m)) => return Err(RetryLater(m)),
        Err(e) => return fail(format!("Spot could not read the connection: {e}")),
    };
    let tenant = system_tenant(&conn.org, &req.stack_id);
    let budget = Duration::from_secs(state.config.callback_propagation_secs);
    match state.connections.connect_role(&tenant, &id, role_raw, budget).await {
        Ok((c, report)) => {
            let role = c.role_arn.as_ref().map(|r| r.as_str().to_owned()).unwrap_or_default();
            let reason = match report.outcome {
                crate::verify::Outcome::Degraded => {
                    "Connected to Spot; some permissions are missing, see the Spot console.".to_owned()
                }
                _ => "Connected to Spot.".to_owned(),
            };
            Ok((
                "SUCCESS",
                reason,
                json!({"RoleArn": role, "ConnectionId": id.as_str()}),
                id.as_str().to_owned(),
            ))
        }
        Err(ServiceError::VerificationFailed { report, .. }) => {
            fail(format!("Spot could not connect the role. {}", report.summary()))
        }
        Err(ServiceError::Store(StoreError::Unavailable(m))) => Err(RetryLater(m)),
        Err(ServiceError::WrongStatus { status, .. }) => fail(format!(
            "This connection is {}; start again from the Spot console to get a fresh template.",
            status.as_str()
        )),
        Err(ServiceError::RoleHeld) => fail(
            "Another Spot connection already uses this role; give the role another name (RoleName parameter).".into(),
        ),
        Err(e) => fail(format!(
            "Spot could not connect the role: {}",
            crate::api::ApiError::from(e).message
        )),
    }
}

fn system_tenant(org: &str, stack_id: &str) -> Tenant {
    let stack = stack_id.split('/').nth(1).unwrap_or("stack");
    Tenant {
        org: org.to_owned(),
        sub: format!("cloudformation:{stack}"),
        accounts: None,
    }
}

/// PUTs the answer; the pre-signed URL wants no content type.
async fn put(http: &reqwest::Client, url: &str, res: &Response) -> Result<(), RetryLater> {
    let body = serde_json::to_vec(res).expect("responses serialize");
    let sent = http
        .put(url)
        .header("content-type", "")
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(status = %res.status, "answered CloudFormation");
            Ok(())
        }
        Ok(r) => Err(RetryLater(format!("the ResponseURL answered {}", r.status()))),
        Err(e) => Err(RetryLater(format!("cannot reach the ResponseURL: {e}"))),
    }
}
