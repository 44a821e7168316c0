//! The routes: each handler is served and documented from the same
//! `routes!` entry, so the router and the OpenAPI document cannot drift.

use super::{catalog, connections, openapi, organizations, partitions, policies, relay, spot, AppState};
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi::health))
        .routes(routes!(openapi::openapi))
        .routes(routes!(catalog::get_catalog))
        .routes(routes!(partitions::list))
        .routes(routes!(policies::post_policies))
        .routes(routes!(connections::create, connections::list))
        .routes(routes!(connections::get_one, connections::disconnect))
        .routes(routes!(connections::rotate))
        .routes(routes!(connections::events))
        .routes(routes!(connections::connect_role))
        .routes(routes!(connections::checks))
        .routes(routes!(connections::template))
        .routes(routes!(organizations::assign_account))
        .routes(routes!(organizations::create))
        .routes(routes!(organizations::get_one, organizations::offboard))
        .routes(routes!(organizations::sync))
        .routes(routes!(organizations::get_template))
        .routes(routes!(relay::relay))
        .routes(routes!(spot::set_credentials, spot::get_credentials))
        .routes(routes!(spot::create_external_id))
        .routes(routes!(spot::read_external_id))
}

/// The whole document, as `GET /openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes().split_for_parts();
    openapi::add_error_responses(&mut doc);
    doc
}

/// One documented operation, for tests that walk every route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    /// Schema of the JSON body, if the operation takes one.
    pub body: Option<&'static str>,
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(document);

/// Every operation the router serves, read from the document.
pub fn route_table() -> Vec<RouteDoc> {
    let mut table = Vec::new();
    for (path, item) in &DOCUMENT.paths.paths {
        let ops = [
            ("get", &item.get),
            ("post", &item.post),
            ("delete", &item.delete),
            ("put", &item.put),
            ("patch", &item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            table.push(RouteDoc {
                method,
                path,
                operation_id: op.operation_id.as_deref().unwrap_or_default(),
                body: op.request_body.as_ref().map(|_| "application/json"),
            });
        }
    }
    table
}
