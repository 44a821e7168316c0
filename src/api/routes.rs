//! The route table: each route's path, method and handler beside what the
//! OpenAPI document says of it, so the two cannot drift apart.

use super::AppState;
use axum::routing::{delete, get, post, MethodRouter};

#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// False for the few routes anyone may call.
    pub auth: bool,
    /// Query parameters: (name, required, schema name or "string", description).
    pub query: &'static [(&'static str, bool, &'static str, &'static str)],
    /// Schema of the JSON body, if the route takes one.
    pub body: Option<&'static str>,
    /// Success status and its schema.
    pub ok: (u16, &'static str),
    /// Error statuses the route can answer, besides 4xx for bad input.
    pub errors: &'static [u16],
}

const fn doc(method: &'static str, path: &'static str, operation_id: &'static str, summary: &'static str) -> RouteDoc {
    RouteDoc {
        method,
        path,
        operation_id,
        summary,
        tag: "connect",
        auth: true,
        query: &[],
        body: None,
        ok: (200, "Empty"),
        errors: &[],
    }
}

pub fn route_table() -> Vec<RouteDoc> {
    routes().into_iter().map(|(d, _)| d).collect()
}

pub(super) fn routes() -> Vec<(RouteDoc, MethodRouter<AppState>)> {
    vec![
        (
            RouteDoc {
                auth: false,
                tag: "service",
                ok: (200, "Health"),
                ..doc("get", "/health", "getHealth", "Liveness of the service")
            },
            get(super::openapi::health),
        ),
        (
            RouteDoc {
                auth: false,
                tag: "service",
                ok: (200, "OpenApi"),
                ..doc("get", "/openapi.json", "getOpenApi", "This OpenAPI document")
            },
            get(super::openapi::openapi),
        ),
        (
            RouteDoc {
                tag: "policies",
                query: &[("partition", false, "Partition", "The AWS partition; default aws")],
                ok: (200, "Catalog"),
                ..doc(
                    "get",
                    "/v1/catalog",
                    "getCatalog",
                    "Products, integrations and their actions",
                )
            },
            get(super::catalog::get_catalog),
        ),
        (
            RouteDoc {
                tag: "policies",
                body: Some("PolicyRequest"),
                ok: (200, "PolicyResponse"),
                ..doc(
                    "post",
                    "/v1/policies",
                    "renderPolicies",
                    "Render the IAM managed policies for a selection",
                )
            },
            post(super::policies::post_policies),
        ),
        (
            RouteDoc {
                body: Some("CreateConnection"),
                ok: (201, "Connection"),
                errors: &[403, 409, 503],
                ..doc(
                    "post",
                    "/v1/connections",
                    "createConnection",
                    "Issue an external ID and start connecting an AWS account (honours Idempotency-Key)",
                )
            },
            post(super::connections::create),
        ),
        (
            RouteDoc {
                query: &[
                    ("accountId", false, "SpotAccountId", "Only this Spot account's connections"),
                    ("status", false, "Status", "Only connections in this status"),
                    ("health", false, "Health", "Only connections of this health (healthy, degraded, broken)"),
                    (
                        "checkedBefore",
                        false,
                        "string",
                        "Only connections last checked before this RFC 3339 time, e.g. 2026-01-31T00:00:00Z",
                    ),
                    ("cursor", false, "string", "nextCursor of the previous page"),
                    ("limit", false, "string", "Page size, 1 to 100 (default 50)"),
                ],
                ok: (200, "ConnectionList"),
                errors: &[503],
                ..doc(
                    "get",
                    "/v1/connections",
                    "listConnections",
                    "Page through the tenant's connections",
                )
            },
            get(super::connections::list),
        ),
        (
            RouteDoc {
                ok: (200, "Connection"),
                errors: &[404, 503],
                ..doc("get", "/v1/connections/{id}", "getConnection", "One connection")
            },
            get(super::connections::get_one),
        ),
        (
            RouteDoc {
                ok: (200, "Connection"),
                errors: &[404, 409, 503],
                ..doc(
                    "delete",
                    "/v1/connections/{id}",
                    "disconnect",
                    "Disconnect; the external ID is retired and never reissued",
                )
            },
            delete(super::connections::disconnect),
        ),
        (
            RouteDoc {
                ok: (200, "Connection"),
                errors: &[404, 409, 503],
                ..doc(
                    "post",
                    "/v1/connections/{id}/external-id",
                    "rotateExternalId",
                    "Issue a new external ID beside the current one (409 rotation_pending while one is pending)",
                )
            },
            post(super::connections::rotate),
        ),
        (
            RouteDoc {
                query: &[
                    ("cursor", false, "string", "nextCursor of the previous page"),
                    ("limit", false, "string", "Page size, 1 to 100 (default 50)"),
                ],
                ok: (200, "EventList"),
                errors: &[404, 503],
                ..doc(
                    "get",
                    "/v1/connections/{id}/events",
                    "listEvents",
                    "The connection's audit trail",
                )
            },
            get(super::connections::events),
        ),
        (
            RouteDoc {
                body: Some("RoleRequest"),
                ok: (200, "Connection"),
                errors: &[404, 409, 503],
                ..doc("post", "/v1/connections/{id}/role", "connectRole", "Verify a role (AssumeRole with the external ID, trust policy, permissions) and connect it; 422 carries the report")
            },
            post(super::connections::connect_role),
        ),
        (
            RouteDoc {
                ok: (200, "Connection"),
                errors: &[404, 409, 503],
                ..doc("post", "/v1/connections/{id}/checks", "recheckConnection", "Re-run the checks on a connected role and record its health")
            },
            post(super::connections::checks),
        ),
        (
            RouteDoc {
                ok: (200, "CloudFormationTemplate"),
                errors: &[404, 503],
                ..doc("get", "/v1/connections/{id}/template", "getTemplate", "The connection's CloudFormation template (role, policies, callback)")
            },
            get(super::connections::template),
        ),
        (
            RouteDoc {
                tag: "spot-compatible",
                query: &[("accountId", true, "SpotAccountId", "The Spot account (act-…)")],
                body: Some("SpotSetCredentials"),
                ok: (200, "SpotCredentials"),
                errors: &[403, 404, 503],
                ..doc("post", "/setup/credentials/aws", "spotSetCredentials", "Spot API: connect the account's external ID to a role")
            },
            post(super::spot::set_credentials),
        ),
        (
            RouteDoc {
                tag: "spot-compatible",
                query: &[("accountId", true, "SpotAccountId", "The Spot account (act-…)")],
                ok: (200, "SpotCredentials"),
                errors: &[403, 404, 503],
                ..doc("get", "/setup/credentials/aws", "spotGetCredentials", "Spot API: the role the account is connected with")
            },
            get(super::spot::get_credentials),
        ),
        (
            RouteDoc {
                tag: "spot-compatible",
                query: &[("accountId", true, "SpotAccountId", "The Spot account (act-…)")],
                ok: (200, "SpotExternalId"),
                errors: &[403, 503],
                ..doc(
                    "post",
                    "/setup/credentials/aws/externalId",
                    "spotCreateExternalId",
                    "Spot API: the account's external ID, created if it has none",
                )
            },
            post(super::spot::create_external_id),
        ),
        (
            RouteDoc {
                tag: "spot-compatible",
                ok: (200, "SpotExternalId"),
                errors: &[403, 404, 503],
                ..doc(
                    "get",
                    "/setup/credentials/aws/externalId/{accountId}",
                    "spotReadExternalId",
                    "Spot API: read the account's external ID",
                )
            },
            get(super::spot::read_external_id),
        ),
    ]
}
