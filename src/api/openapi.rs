//! `/health` and the OpenAPI 3.1 document, generated from the route table.

use super::routes::route_table;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

pub async fn health() -> impl IntoResponse {
    super::extract::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_string());

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

fn schema_ref(name: &str) -> Value {
    if name == "string" {
        json!({"type": "string"})
    } else {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema_ref("Error")}}})
}

/// The whole document; every path and method comes from the route table.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in route_table() {
        let mut responses = Map::new();
        responses.insert(
            r.ok.0.to_string(),
            json!({"description": "Success", "content": {"application/json": {"schema": schema_ref(r.ok.1)}}}),
        );
        if r.body.is_some() || !r.query.is_empty() || r.path.contains('{') {
            responses.insert("400".into(), error_response("Malformed request"));
            responses.insert("422".into(), error_response("A value in the request is not acceptable"));
        }
        if r.body.is_some() {
            responses.insert("413".into(), error_response("Body over the size limit"));
            responses.insert("415".into(), error_response("Body is not JSON"));
        }
        if r.auth {
            responses.insert("401".into(), error_response("Missing or invalid bearer token"));
        }
        for status in r.errors {
            responses.insert(status.to_string(), error_response("See the error code"));
        }
        let mut parameters: Vec<Value> = r
            .query
            .iter()
            .map(|(name, required, schema, description)| {
                json!({"name": name, "in": "query", "required": required, "description": description, "schema": schema_ref(schema)})
            })
            .collect();
        for seg in r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            parameters.push(json!({"name": seg, "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        let mut op = json!({
            "operationId": r.operation_id,
            "summary": r.summary,
            "tags": [r.tag],
            "responses": responses,
        });
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = r.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema_ref(body)}}});
        }
        if !r.auth {
            op["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "account-connect",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Connects a customer's AWS account through a cross-account IAM role: the permission catalog, policy rendering, external IDs, role verification and CloudFormation."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": super::schemas::schemas()
        }
    })
}
