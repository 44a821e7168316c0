use super::error::ApiError;
use super::extract::Json;
use crate::domain::Partition;
use crate::policy::{render_shared, Permissions, Rendered, Selection};
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use utoipa::ToSchema;

/// Partitions other than aws take the default permissions only (422).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRequest {
    partition: Partition,
    permissions: Permissions,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResponse<'a> {
    partition: Partition,
    permissions: Permissions,
    /// Every bundle the policies grant, the core bundle first.
    bundles: Vec<&'static str>,
    #[serde(flatten)]
    #[schema(value_type = Rendered)]
    rendered: &'a Rendered,
}

/// Answers by selection, serialized: a selection's answer never changes.
static ANSWERS: LazyLock<quick_cache::sync::Cache<Selection, Bytes>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(MAX_CACHED_ANSWERS));
const MAX_CACHED_ANSWERS: usize = 512;

#[utoipa::path(post, path = "/v1/policies", tag = "policies", operation_id = "renderPolicies",
    summary = "Render the IAM managed policies for a selection",
    security(()),
    request_body = PolicyRequest,
    responses(
        (status = 200, body = PolicyResponse),
        (status = 400, description = "Malformed JSON"),
        (status = 422, description = "The selection is not acceptable; see the error code"),
    ))]
pub async fn post_policies(Json(req): Json<PolicyRequest>) -> Result<Response, ApiError> {
    let selection = Selection::resolve(req.partition, &req.permissions)?;
    let body = ANSWERS.get_or_insert_with(&selection, || {
        let rendered = render_shared(&selection)?;
        let answer = PolicyResponse {
            partition: req.partition,
            permissions: selection.permissions(),
            bundles: selection.bundle_ids(),
            rendered: &rendered,
        };
        Ok::<_, ApiError>(Bytes::from(serde_json::to_vec(&answer).expect("answers serialize")))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
