use super::error::ApiError;
use super::extract::Json;
use crate::domain::Partition;
use crate::policy::{render, Permissions, Rendered, Selection};
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

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

/// Answers by selection: the catalog is fixed at build time, so a selection's
/// answer never changes. Bounded; cleared when full.
static ANSWERS: LazyLock<Mutex<HashMap<Selection, Bytes>>> = LazyLock::new(Default::default);
const MAX_CACHED_ANSWERS: usize = 512;

pub async fn post_policies(Json(req): Json<PolicyRequest>) -> Result<Response, ApiError> {
    let selection = Selection::resolve(req.partition, &req.permissions)?;
    let cached = ANSWERS.lock().expect("cache lock").get(&selection).cloned();
    let body = match cached {
        Some(b) => b,
        None => {
            let answer = PolicyResponse {
                partition: req.partition,
                permissions: selection.permissions(),
                bundles: selection.bundle_ids(),
                rendered: render(&selection)?,
            };
            let bytes = Bytes::from(serde_json::to_vec(&answer).expect("answers serialize"));
            let mut cache = ANSWERS.lock().expect("cache lock");
            if cache.len() >= MAX_CACHED_ANSWERS {
                cache.clear();
            }
            cache.insert(selection, bytes.clone());
            bytes
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
