//! `account-connect org-callback`: plays an organization member's stack
//! instance (enroll or link) against the local store, for scripts/local-org.

use crate::app;
use crate::config::Config;
use crate::organizations::template::{ENROLL_ID, ENROLL_TYPE, LINK_ID, LINK_TYPE};
use crate::organizations::OrganizationId;

pub struct Args {
    pub organization: String,
    pub resource: String,
    pub stack_id: String,
    pub role_arn: Option<String>,
    pub request_type: String,
    pub physical_id: Option<String>,
}

pub fn run(a: Args) -> Result<(), String> {
    crate::telemetry::init(false);
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    let key = config
        .callback_key
        .clone()
        .ok_or("set ACCOUNT_CONNECT_CALLBACK_KEY (the server's) first")?;
    let id: OrganizationId = a
        .organization
        .parse()
        .map_err(|e: crate::domain::ParseError| e.message)?;
    let (logical, kind) = match a.resource.as_str() {
        "enroll" => (ENROLL_ID, ENROLL_TYPE),
        "link" => (LINK_ID, LINK_TYPE),
        other => return Err(format!("--resource is enroll or link, not {other:?}")),
    };
    config.callback_response_hosts = Some(vec!["127.0.0.1".into()]);
    let responder = app::responder(&config);
    let state = app::build(config).map_err(|e| e.to_string())?;
    super::runtime()?.block_on(async move {
        let o = state
            .connections
            .store
            .get_organization(&id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no organization {} in ACCOUNT_CONNECT_STORE", a.organization))?;
        // What the member template carries.
        let token = crate::organizations::token::issue(
            secrecy::ExposeSecret::expose_secret(&key),
            o.id.as_str(),
            o.management_account_id.as_str(),
        );
        let mut props = serde_json::json!({"OrganizationId": o.id.as_str(), "CallbackToken": token});
        if let Some(r) = &a.role_arn {
            props["RoleArn"] = serde_json::json!(r);
        }
        let mut message = serde_json::json!({
            "RequestType": a.request_type,
            "StackId": a.stack_id,
            "RequestId": crate::ids::random_token(8),
            "LogicalResourceId": logical,
            "ResourceType": kind,
            "ResourceProperties": props,
        });
        if let Some(p) = &a.physical_id {
            message["PhysicalResourceId"] = serde_json::json!(p);
        }
        super::deliver(&state, &responder, message).await
    })
}
