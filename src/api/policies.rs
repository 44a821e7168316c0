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

/// Answers by request, serialized: the answer to a request never changes
/// (the catalog is built in), so a repeated request is neither resolved nor
/// rendered again. Refusals are not kept.
///
/// Bounded by bytes, not entries: a caller sending many distinct selections
/// (each up to about 60 KB answered) cannot grow the process past it.
static ANSWERS: LazyLock<quick_cache::sync::Cache<(Partition, Permissions), Bytes, ByLength>> =
    LazyLock::new(|| quick_cache::sync::Cache::with_weighter(256, MAX_CACHED_ANSWER_BYTES, ByLength));
const MAX_CACHED_ANSWER_BYTES: u64 = 4 << 20;

#[derive(Clone)]
struct ByLength;

impl quick_cache::Weighter<(Partition, Permissions), Bytes> for ByLength {
    fn weight(&self, _: &(Partition, Permissions), answer: &Bytes) -> u64 {
        answer.len() as u64
    }
}

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
    let key = (req.partition, req.permissions);
    let body = ANSWERS.get_or_insert_with(&key, || {
        let selection = Selection::resolve(key.0, &key.1)?;
        let rendered = render_shared(&selection)?;
        let answer = PolicyResponse {
            partition: key.0,
            permissions: selection.permissions(),
            bundles: selection.bundle_ids(),
            rendered: &rendered,
        };
        Ok::<_, ApiError>(Bytes::from(serde_json::to_vec(&answer).expect("answers serialize")))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
