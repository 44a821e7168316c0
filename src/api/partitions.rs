//! `GET /v1/partitions`: which partitions this deployment can connect, and
//! which take the automatic flow, so the wizard says it before the
//! customer starts.

use super::extract::Json;
use super::AppState;
use crate::domain::Partition;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PartitionInfo)]
pub struct PartitionView {
    partition: Partition,
    name: &'static str,
    /// Connections can be created: a vendor principal and credentials are configured.
    available: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable_reason: Option<String>,
    /// Templates carry the custom resource that connects the stack itself.
    automatic: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    automatic_note: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PartitionList)]
pub struct PartitionList {
    items: Vec<PartitionView>,
}

#[utoipa::path(get, path = "/v1/partitions", tag = "policies", operation_id = "listPartitions",
    summary = "The AWS partitions this service connects, and whether their stacks report back",
    security(()),
    responses((status = 200, body = PartitionList)))]
pub async fn list(State(state): State<AppState>) -> Json<PartitionList> {
    let c = &state.config;
    let items = Partition::ALL
        .into_iter()
        .map(|p| {
            let reason = if !c.principals.contains_key(&p) {
                Some(format!(
                    "{} accounts cannot be connected here yet (no vendor principal: ACCOUNT_CONNECT_PRINCIPAL_{}).",
                    p.display_name(),
                    p.env_suffix()
                ))
            } else if !c.has_credentials(p) {
                Some(format!(
                    "{} accounts cannot be connected here yet (no vendor credentials: {}).",
                    p.display_name(),
                    crate::config::Config::credential_settings(p)[0]
                ))
            } else {
                None
            };
            let automatic = c.topics.contains_key(&p) && c.callback_key.is_some();
            PartitionView {
                partition: p,
                name: p.display_name(),
                available: reason.is_none(),
                unavailable_reason: reason,
                automatic,
                automatic_note: (!automatic).then(|| {
                    format!(
                        "Stacks in {} cannot report back to Spot here: the template only creates the role, and you paste its ARN.",
                        p.display_name()
                    )
                }),
            }
        })
        .collect();
    Json(PartitionList { items })
}
