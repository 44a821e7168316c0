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
    let body = answer(&(req.partition, req.permissions))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The answer's bytes, kept. Keyed by the request as sent rather than by
/// the resolved selection: a repeated request then skips the resolving
/// too; two spellings of one selection keep two copies of the same bytes.
/// The answer has no per-request part (no external ID, no time), so all
/// of it is kept.
fn answer(key: &(Partition, Permissions)) -> Result<Bytes, ApiError> {
    ANSWERS.get_or_insert_with(key, || fresh(key))
}

/// The answer made afresh: resolved, rendered (shared with views and
/// templates, see `render_shared`) and serialized.
fn fresh(key: &(Partition, Permissions)) -> Result<Bytes, ApiError> {
    let selection = Selection::resolve(key.0, &key.1)?;
    let rendered = render_shared(&selection)?;
    let answer = PolicyResponse {
        partition: key.0,
        permissions: selection.permissions(),
        bundles: selection.bundle_ids(),
        rendered: &rendered,
    };
    Ok(Bytes::from(serde_json::to_vec(&answer).expect("answers serialize")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::policy::render;

    /// The answer with nothing kept: rendered without `render_shared` either.
    fn uncached(key: &(Partition, Permissions)) -> Vec<u8> {
        let selection = Selection::resolve(key.0, &key.1).unwrap();
        let rendered = render(&selection).unwrap();
        serde_json::to_vec(&PolicyResponse {
            partition: key.0,
            permissions: selection.permissions(),
            bundles: selection.bundle_ids(),
            rendered: &rendered,
        })
        .unwrap()
    }

    fn selections() -> Vec<(Partition, Permissions)> {
        let c = Catalog::get();
        let product = |i: usize| c.products[i % c.products.len()].id.clone();
        let with_integration = c.products.iter().find(|p| !p.integrations.is_empty()).unwrap();
        vec![
            (Partition::Aws, Permissions::Default),
            (Partition::AwsUsGov, Permissions::Default),
            (Partition::AwsCn, Permissions::Default),
            (Partition::Aws, Permissions::everything()),
            (
                Partition::Aws,
                Permissions::Custom {
                    products: vec![product(0)],
                    integrations: vec![],
                },
            ),
            (
                Partition::Aws,
                Permissions::Custom {
                    products: vec![product(1), product(0)],
                    integrations: vec![],
                },
            ),
            (
                Partition::Aws,
                Permissions::Custom {
                    products: vec![with_integration.id.clone()],
                    integrations: vec![with_integration.integrations[0].id.clone()],
                },
            ),
        ]
    }

    #[test]
    fn kept_answers_are_the_bytes_of_a_fresh_render() {
        for key in selections() {
            let first = answer(&key).unwrap();
            let kept = answer(&key).unwrap();
            let made = uncached(&key);
            assert_eq!(first, made, "{key:?}: first answer");
            assert_eq!(kept, made, "{key:?}: kept answer");
            // The very bytes kept, not made again.
            assert_eq!(kept.as_ptr(), first.as_ptr(), "{key:?}");
        }
    }

    #[test]
    fn refusals_are_not_kept_and_answer_the_same_each_time() {
        let key = (Partition::AwsCn, Permissions::everything());
        for _ in 0..2 {
            assert!(answer(&key).is_err());
        }
        assert!(ANSWERS.get(&key).is_none());
    }
}
