//! The connect wizard: a page at `/` and its assets, compiled into the binary
//! so the Lambda serves them too.

use super::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../web/index.html");
const JS: &str = "text/javascript; charset=utf-8";
/// Every file of web/assets; tests/browser/serving.test.js fails on one missing here.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "account-connect-wizard.js",
        JS,
        include_bytes!("../../web/assets/account-connect-wizard.js"),
    ),
    ("api.js", JS, include_bytes!("../../web/assets/api.js")),
    (
        "automatic-step.js",
        JS,
        include_bytes!("../../web/assets/automatic-step.js"),
    ),
    (
        "connections-list.js",
        JS,
        include_bytes!("../../web/assets/connections-list.js"),
    ),
    ("dom.js", JS, include_bytes!("../../web/assets/dom.js")),
    ("first-steps.js", JS, include_bytes!("../../web/assets/first-steps.js")),
    (
        "manual-steps.js",
        JS,
        include_bytes!("../../web/assets/manual-steps.js"),
    ),
    (
        "organization-steps.js",
        JS,
        include_bytes!("../../web/assets/organization-steps.js"),
    ),
    ("page.js", JS, include_bytes!("../../web/assets/page.js")),
    (
        "permissions-step.js",
        JS,
        include_bytes!("../../web/assets/permissions-step.js"),
    ),
    ("permissions.js", JS, include_bytes!("../../web/assets/permissions.js")),
    ("report.js", JS, include_bytes!("../../web/assets/report.js")),
    (
        "wizard.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/assets/wizard.css"),
    ),
];
/// Only this origin's scripts, styles and API; never framed by others.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

pub async fn index() -> Response {
    let res = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    );
    secure(res.into_response())
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, bytes)) => {
            let res = (
                [(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "no-cache")],
                *bytes,
            );
            secure(res.into_response())
        }
        None => super::ApiError::not_found("asset_not_found", format!("there is no asset {name:?}")).into_response(),
    }
    .into_response()
}
