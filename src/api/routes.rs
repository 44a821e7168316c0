//! The routes: each handler is served and documented from the same entry
//! of one list, so the router and the OpenAPI document cannot drift.

use super::{
    catalog, connections, openapi, organizations, partitions, policies, relay, spot, webhook_recovery, webhooks,
    AppState,
};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// One list makes both: `routes()` serves and documents each group (the
/// document is built from it), `router()` only serves it. Building the
/// document derives every schema, which a cold start should not pay for.
macro_rules! route_table {
    ($([$($($seg:ident)::+),+ $(,)?]),+ $(,)?) => {
        pub(super) fn routes() -> OpenApiRouter<AppState> {
            OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
                $(.routes(routes!($($($seg)::+),+)))+
        }

        /// The same routes, without their documentation.
        pub(super) fn router() -> axum::Router<AppState> {
            use utoipa_axum::PathItemExt;
            let router = axum::Router::new();
            $(
                let mut path: Option<String> = None;
                let mut methods = axum::routing::MethodRouter::new();
                $(
                    // `path()` and `methods()` read the handler's
                    // `#[utoipa::path]`; neither derives a schema.
                    let this: String = routes!(@path [path()] of $($seg)::+);
                    assert!(path.as_ref().is_none_or(|p| *p == this), "one group, one path: {this}");
                    path = Some(this);
                    for method in routes!(@path [methods()] of $($seg)::+) {
                        methods = methods.on(method.to_method_filter(), $($seg)::+);
                    }
                )+
                let router = router.route(&path.expect("a group has a handler"), methods);
            )+
            router
        }
    };
}

route_table!(
    [openapi::health],
    [serve_document],
    [catalog::get_catalog],
    [partitions::list],
    [policies::post_policies],
    [connections::create, connections::list],
    [connections::get_one, connections::disconnect],
    [connections::rotate],
    [connections::events],
    [connections::connect_role],
    [connections::checks],
    [connections::template],
    [organizations::assign_account],
    [organizations::create],
    [organizations::get_one, organizations::offboard],
    [organizations::sync],
    [organizations::preflight],
    [organizations::get_template],
    [relay::relay],
    [spot::set_credentials, spot::get_credentials],
    [spot::create_external_id],
    [spot::read_external_id],
    [webhooks::create, webhooks::list],
    [webhooks::get_one, webhooks::delete],
    [webhooks::rotate_secret],
    [webhooks::test],
    [webhooks::deliveries],
    [webhook_recovery::enable],
    [webhook_recovery::recover],
    [webhook_recovery::retry],
);

/// The whole document, as `GET /openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes().split_for_parts();
    openapi::add_error_responses(&mut doc);
    openapi::add_webhooks(&mut doc);
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

/// Built on first request, not at start-up: a cold start does not pay for it.
static SERVED: LazyLock<String> = LazyLock::new(|| serde_json::to_string(&*DOCUMENT).expect("the document serializes"));

#[utoipa::path(get, path = "/openapi.json", tag = "service", operation_id = "getOpenApi",
    summary = "This OpenAPI document", security(()),
    responses((status = 200, body = Object, description = "OpenAPI 3.1")))]
pub async fn serve_document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], SERVED.as_str())
}

#[cfg(test)]
mod tests {
    /// The committed document, so that review shows every change to the
    /// contract; `UPDATE_SNAPSHOTS=1 cargo test openapi` rewrites it.
    const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

    #[test]
    fn document_matches_the_snapshot() {
        let doc = super::document();
        let text = format!("{}\n", serde_json::to_string_pretty(&doc).unwrap());
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(SNAPSHOT, &text).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
        if committed != text {
            let first = committed
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(committed.lines().count().min(text.lines().count()));
            panic!(
                "the OpenAPI document differs from tests/snapshots/openapi.json from line {}:\n  committed: {}\n  generated: {}\n\
                 if the change is intended, run UPDATE_SNAPSHOTS=1 cargo test document_matches_the_snapshot and commit the file",
                first + 1,
                committed.lines().nth(first).unwrap_or("<end>"),
                text.lines().nth(first).unwrap_or("<end>")
            );
        }
    }

    /// The `webhooks` section lists every event a partner can get, each
    /// with a payload schema the document defines.
    #[test]
    fn the_webhooks_section_is_the_catalogue() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let hooks = doc["webhooks"].as_object().expect("a webhooks section");
        let mut want: Vec<&str> = crate::domain::EVENT_TYPES.to_vec();
        want.extend([crate::domain::TEST_EVENT, crate::webhooks::DISABLED_EVENT]);
        want.sort();
        let got: Vec<&str> = hooks.keys().map(String::as_str).collect();
        assert_eq!(got, want);
        for (kind, item) in hooks {
            let schema = &item["post"]["requestBody"]["content"]["application/json"]["schema"]["allOf"];
            // One payload schema, or (a state change's) it or the thin form.
            let refs: Vec<&serde_json::Value> = match schema[0]["oneOf"].as_array() {
                Some(alternatives) => alternatives.iter().collect(),
                None => vec![&schema[0]],
            };
            for r in refs {
                let name = r["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                assert!(doc["components"]["schemas"][name].is_object(), "{kind}: {name}");
            }
            assert_eq!(schema[1]["properties"]["type"]["enum"][0], kind.as_str());
        }
    }
}
