//! `account-connect org-callback`: plays an organization member's stack
//! instance (enroll or link) against the local store, for scripts/local-org.

use super::CliError;
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

pub fn run(mut config: Config, a: Args) -> Result<(), CliError> {
    crate::telemetry::init(false);
    let key = config.callback_key.clone().ok_or(CliError::NoCallbackKey)?;
    let id: OrganizationId = a.organization.parse()?;
    let (logical, kind) = match a.resource.as_str() {
        "enroll" => (ENROLL_ID, ENROLL_TYPE),
        "link" => (LINK_ID, LINK_TYPE),
        other => return Err(CliError::UnknownResource(other.to_owned())),
    };
    config.callback_response_hosts = Some(vec!["127.0.0.1".into()]);
    let responder = app::responder(&config);
    let state = app::build(config)?;
    super::runtime()?.block_on(async move {
        let o = state
            .organizations
            .get_for_token(&id)
            .await?
            .ok_or(CliError::NoOrganization(id))?;
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
