//! `/health` and the OpenAPI 3.1 document. The document is derived: paths
//! from the handlers' `#[utoipa::path]`, schemas from the bodies' types;
//! this file adds what every operation shares (bearer auth, error bodies).

use super::error::ErrorBody;
use super::spot::SpotErrorReply;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "account-connect",
        description = "Connects a customer's AWS account through a cross-account IAM role: the permission catalog, policy rendering, external IDs, role verification and CloudFormation."
    ),
    security(("bearer" = [])),
    components(schemas(
        ErrorBody,
        SpotErrorReply,
        crate::events::Payload,
        crate::events::MemberPayload,
        crate::events::OrganizationPayload,
        crate::events::ThinPayload,
        crate::webhooks::TestPayload,
        crate::webhooks::DisabledPayload
    )),
    modifiers(&Shared)
)]
pub(super) struct ApiDoc;

/// The parts every operation shares; run after the paths are merged in.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Fills in the error responses: the 401 of every operation that takes a
/// token, 413/415 of every one with a body, and each error's body, in
/// Spot's envelope on the Spot-compatible routes.
pub(super) fn add_error_responses(doc: &mut Document) {
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.delete,
            &mut item.put,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_errors(op);
        }
    }
}

fn add_errors(op: &mut Operation) {
    let spot = op.tags.iter().flatten().any(|t| t == "spot-compatible");
    let open = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == Default::default()));
    let responses = &mut op.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
    };
    if !open {
        add("401", "Missing or invalid bearer token");
    }
    if op.request_body.is_some() {
        add("413", "Body over the size limit");
        add("415", "Body is not JSON");
    }
    let schema = if spot {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(SpotErrorReply::name()))
    } else {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(ErrorBody::name()))
    };
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(Response { content, .. })) = (status.as_str() >= "400", response) {
            if content.is_empty() {
                content.insert(
                    "application/json".into(),
                    RefOr::T(ContentBuilder::new().schema(Some(schema.clone())).build()),
                );
            }
        }
    }
}

/// The event catalogue as OpenAPI 3.1's `webhooks`: per event type, the
/// `POST` a receiver gets, its Standard Webhooks headers and its payload's
/// schema (the component derived from the payload's Rust type, its `type`
/// narrowed to this one).
pub(super) fn add_webhooks(doc: &mut Document) {
    use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Type};
    use utoipa::openapi::{HttpMethod, PathItem, PathsBuilder, Ref, Required};
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let mut hooks = PathsBuilder::new();
    for e in crate::events::catalog() {
        let this_type = ObjectBuilder::new().property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([e.kind])),
        );
        // A state change's event may come thin (too large to send whole).
        let payload: utoipa::openapi::RefOr<utoipa::openapi::Schema> = match e.may_be_thin {
            true => OneOfBuilder::new()
                .item(Ref::from_schema_name(e.schema.as_str()))
                .item(Ref::from_schema_name("ThinPayload"))
                .into(),
            false => Ref::from_schema_name(e.schema.as_str()).into(),
        };
        let schema = AllOfBuilder::new().item(payload).item(this_type);
        let body = RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
            .build();
        let op = OperationBuilder::new()
            .operation_id(Some(e.kind))
            .tag("events")
            .summary(Some(e.kind))
            .description(Some(e.when))
            .parameter(header(
                "webhook-id",
                "The message id: the same on every attempt and on the bus; drop one already seen.",
            ))
            .parameter(header("webhook-timestamp", "Unix seconds of this attempt."))
            .parameter(header(
                "webhook-signature",
                "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under the secret (two, space-separated, for a day after a rotation).",
            ))
            .request_body(Some(body))
            .response(
                "2XX",
                ResponseBuilder::new().description("Received; any other answer, or none within 10 s, is retried"),
            );
        hooks = hooks.path(e.kind, PathItem::new(HttpMethod::Post, op));
    }
    doc.webhooks = Some(hooks.build());
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(schema_with = ok)]
    status: &'static str,
    /// The release: the package version.
    version: &'static str,
    /// The commit it was built from: 12 hex digits, or unknown for a build outside git.
    commit: &'static str,
}

fn ok() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["ok"]))
        .build()
}

#[utoipa::path(get, path = "/health", tag = "service", operation_id = "getHealth",
    summary = "Liveness of the service", security(()),
    responses((status = 200, body = Health)))]
pub async fn health() -> impl IntoResponse {
    super::extract::Json(Health {
        status: "ok",
        version: crate::telemetry::VERSION,
        commit: crate::telemetry::COMMIT,
    })
}
