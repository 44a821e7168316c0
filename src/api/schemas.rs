//! JSON Schemas of the API's bodies, for the OpenAPI document.

use serde_json::{json, Value};

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

pub fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable, machine-readable"},
                    "message": {"type": "string", "description": "What is wrong and what to do"},
                    "details": {}
                }
            }}
        },
        "Empty": {"type": "object"},
        "OpenApi": {"type": "object"},
        "Health": {
            "type": "object",
            "required": ["status", "version"],
            "properties": {"status": {"const": "ok"}, "version": {"type": "string"}}
        },
        "Partition": {"type": "string", "enum": ["aws", "aws-us-gov", "aws-cn"]},
        "Permissions": {
            "oneOf": [
                {"type": "object", "required": ["mode"], "additionalProperties": false,
                 "properties": {"mode": {"const": "default"}}},
                {"type": "object", "required": ["mode"], "additionalProperties": false,
                 "properties": {"mode": {"const": "custom"}, "products": strings(), "integrations": strings()}}
            ]
        },
        "Bundle": {
            "type": "object",
            "required": ["id", "name", "description", "default", "actions", "resources"],
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
                "default": {"type": "boolean"}, "actions": strings(), "resources": strings()
            }
        },
        "Product": {
            "allOf": [r("Bundle"), {"type": "object", "required": ["integrations"],
                "properties": {"integrations": {"type": "array", "items": r("Bundle")}}}]
        },
        "Catalog": {
            "type": "object",
            "required": ["partition", "customizable", "defaultPermissions", "core", "products"],
            "properties": {
                "partition": r("Partition"), "customizable": {"type": "boolean"}, "note": {"type": "string"},
                "defaultPermissions": r("Permissions"), "core": r("Bundle"),
                "products": {"type": "array", "items": r("Product")}
            }
        },
        "PolicyRequest": {
            "type": "object",
            "required": ["partition", "permissions"],
            "additionalProperties": false,
            "properties": {"partition": r("Partition"), "permissions": r("Permissions")}
        },
        "PolicyDocument": {
            "type": "object",
            "required": ["Version", "Statement"],
            "properties": {
                "Version": {"const": "2012-10-17"},
                "Statement": {"type": "array", "items": {
                    "type": "object",
                    "required": ["Sid", "Effect", "Action", "Resource"],
                    "properties": {"Sid": {"type": "string"}, "Effect": {"const": "Allow"},
                        "Action": strings(), "Resource": strings(), "Condition": {"type": "object"}}
                }}
            }
        },
        "RenderedPolicy": {
            "type": "object",
            "required": ["name", "document", "size"],
            "properties": {"name": {"type": "string"}, "document": r("PolicyDocument"),
                "size": {"type": "integer", "description": "Characters as IAM counts them"}}
        },
        "PolicyResponse": {
            "type": "object",
            "required": ["partition", "permissions", "bundles", "policies", "totalSize", "sizeLimit"],
            "properties": {
                "partition": r("Partition"), "permissions": r("Permissions"), "bundles": strings(),
                "policies": {"type": "array", "items": r("RenderedPolicy"), "minItems": 1, "maxItems": 10},
                "totalSize": {"type": "integer"}, "sizeLimit": {"type": "integer"}
            }
        }
    })
}
