use super::error::ApiError;
use super::extract::Json;
use crate::domain::Partition;
use crate::policy::{render, Permissions, Rendered, Selection};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRequest {
    partition: Partition,
    permissions: Permissions,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResponse {
    partition: Partition,
    permissions: Permissions,
    /// Every bundle the policies grant, the core bundle first.
    bundles: Vec<&'static str>,
    #[serde(flatten)]
    rendered: Rendered,
}

pub async fn post_policies(Json(req): Json<PolicyRequest>) -> Result<Json<PolicyResponse>, ApiError> {
    let selection = Selection::resolve(req.partition, &req.permissions)?;
    let rendered = render(&selection)?;
    Ok(Json(PolicyResponse {
        partition: req.partition,
        permissions: selection.permissions(),
        bundles: selection.bundle_ids(),
        rendered,
    }))
}
