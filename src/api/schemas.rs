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
        "RoleRequest": {
            "type": "object", "required": ["roleArn"], "additionalProperties": false,
            "properties": {"roleArn": {"type": "string", "examples": ["arn:aws:iam::123456789012:role/Spot-Role"]}}
        },
        "SpotSetCredentials": {
            "type": "object", "required": ["credentials"],
            "properties": {"credentials": {"type": "object", "required": ["iamRole"], "properties": {"iamRole": {"type": "string"}}}}
        },
        "SpotCredentials": {
            "type": "object", "required": ["request", "response"],
            "properties": {"request": {"type": "object"}, "response": {"type": "object"}}
        },
        "CloudFormationTemplate": {
            "type": "object", "required": ["AWSTemplateFormatVersion", "Resources"],
            "properties": {"AWSTemplateFormatVersion": {"const": "2010-09-09"}, "Parameters": {"type": "object"},
                "Resources": {"type": "object"}, "Outputs": {"type": "object"}}
        },
        "SpotAccountId": {"type": "string", "pattern": "^act-[A-Za-z0-9]+$", "maxLength": 64},
        "Status": {"type": "string", "enum": ["pending", "connected", "disconnected", "expired"]},
        "CreateConnection": {
            "type": "object",
            "required": ["accountId", "partition", "permissions"],
            "additionalProperties": false,
            "properties": {
                "accountId": r("SpotAccountId"),
                "partition": r("Partition"),
                "permissions": r("Permissions"),
                "awsAccountId": {"type": "string", "pattern": "^[0-9]{12}$"},
                "method": {"type": "string", "enum": ["manual", "automatic"]}
            },
            // The callback token of an automatic connection is bound to its AWS account.
            "if": {"required": ["method"], "properties": {"method": {"const": "automatic"}}},
            "then": {"required": ["awsAccountId"]}
        },
        "Connection": {
            "type": "object",
            "required": ["id", "accountId", "partition", "method", "status", "externalId", "expiresAt",
                         "principal", "trustPolicy", "permissions", "policies", "createdAt", "createdBy", "updatedAt", "version"],
            "properties": {
                "id": {"type": "string"}, "accountId": {"type": "string"}, "partition": r("Partition"),
                "method": {"type": "string", "enum": ["manual", "automatic"]}, "status": r("Status"),
                "health": {"type": "string", "enum": ["healthy", "degraded", "broken"]},
                "externalId": {"type": "string"}, "pendingExternalId": {"type": "string"},
                "expiresAt": {"type": "string", "format": "date-time"},
                "principal": {"type": ["string", "null"]}, "trustPolicy": {"type": ["object", "null"]},
                "permissions": r("Permissions"),
                "policies": {"type": "array", "items": r("RenderedPolicy")},
                "awsAccountId": {"type": "string"}, "roleArn": {"type": "string"},
                "verifiedAt": {"type": "string", "format": "date-time"}, "report": {"type": "object"},
                "cloudFormation": {"type": "object"},
                "stack": {"type": "object", "required": ["stackId", "accountId"],
                    "properties": {"stackId": {"type": "string"}, "accountId": {"type": "string"}}},
                "createdAt": {"type": "string", "format": "date-time"}, "createdBy": {"type": "string"},
                "updatedAt": {"type": "string", "format": "date-time"}, "version": {"type": "integer"}
            }
        },
        "ConnectionList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": r("Connection")}, "nextCursor": {"type": "string"}}
        },
        "EventList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": {
                "type": "object",
                "required": ["kind", "at", "actor", "outcome"],
                "properties": {"kind": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string"}, "outcome": {"type": "string"}, "detail": {}}
            }}, "nextCursor": {"type": "string"}}
        },
        "SpotExternalId": {
            "type": "object",
            "required": ["request", "response"],
            "properties": {"request": {"type": "object"}, "response": {
                "type": "object",
                "required": ["status", "items", "count"],
                "properties": {"status": {"type": "object"}, "kind": {"type": "string"}, "count": {"type": "integer"},
                    "items": {"type": "array", "items": {"type": "object", "required": ["externalId", "maxValidUntil"],
                        "properties": {"externalId": {"type": "string"}, "maxValidUntil": {"type": "string", "format": "date-time"}}}}}
            }}
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
