//! The HTTP surface: routes, the OpenAPI document, and 4xx for every bad input.

use crate::common;

use serde_json::{json, Value};

async fn app() -> common::TestApp {
    common::spawn_app(common::test_config()).await
}

fn error_of((status, body): (u16, Value)) -> (u16, Value) {
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    (status, body)
}

#[tokio::test]
async fn health_answers_ok_with_a_request_id() {
    let app = app().await;
    let res = app.request("GET", "/health", None).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn catalog_lists_products_integrations_and_actions() {
    let app = app().await;
    let (_, body) = app.catalog("partition=aws").await;
    assert_eq!(body["customizable"], true);
    let products = body["products"].as_array().unwrap();
    let eg = products.iter().find(|p| p["id"] == "elastigroup").unwrap();
    assert!(eg["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == "elastigroup-route53"));
    assert!(eg["actions"].as_array().unwrap().iter().any(|a| a == "autoscaling:*"));

    let (_, gov) = app.catalog("partition=aws-us-gov").await;
    assert_eq!(gov["customizable"], false);
    assert!(gov["note"].as_str().unwrap().contains("not be able to customize"));
    assert!(!gov.to_string().contains("arn:aws:"));
}

#[tokio::test]
async fn policies_render_default_and_custom() {
    let app = app().await;
    let (status, body) = app
        .render_policies(&json!({"partition": "aws", "permissions": {"mode": "default"}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["policies"].as_array().unwrap().len(), 1);
    assert_eq!(body["policies"][0]["name"], "Spot-Policy");
    assert_eq!(body["sizeLimit"], 6144);
    assert_eq!(body["bundles"][0], "core");

    let (_, custom) = app
        .render_policies(&json!({"partition": "aws", "permissions": {"mode": "custom", "products": ["ocean"], "integrations": ["ocean-eks"]}}))
        .await;
    assert_eq!(custom["permissions"]["products"], json!(["ocean"]));
    assert!(!custom.to_string().contains("route53:"));
}

#[tokio::test]
async fn every_bad_input_is_a_4xx_with_a_stable_code() {
    let app = app().await;
    let post = |body: String, ctype: &'static str| {
        app.answer(
            app.request("POST", "/v1/policies", None)
                .header("content-type", ctype)
                .body(body),
        )
    };
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("{\"partition\":".into(), "application/json", 400, "malformed_json"),
        ("{\"partition\":\"aws\",\"permissions\":{\"mode\":\"default\"},\"x\":1}".into(), "application/json", 422, "invalid_body"),
        ("{\"partition\":\"aws\",\"permissions\":{\"mode\":\"default\",\"products\":[]}}".into(), "application/json", 422, "invalid_body"),
        ("{\"partition\":7,\"permissions\":{\"mode\":\"default\"}}".into(), "application/json", 422, "invalid_body"),
        ("{\"partition\":\"aws-iso\",\"permissions\":{\"mode\":\"default\"}}".into(), "application/json", 422, "invalid_body"),
        ("{\"partition\":\"aws\",\"permissions\":{\"mode\":\"everything\"}}".into(), "application/json", 422, "invalid_body"),
        ("{\"partition\":\"aws\"}".into(), "application/json", 422, "invalid_body"),
        ("{\"partition\":\"aws\",\"permissions\":{\"mode\":\"default\"}}".into(), "text/plain", 415, "unsupported_media_type"),
        (format!("{{\"partition\":\"aws\",\"pad\":\"{}\"}}", "x".repeat(70_000)), "application/json", 413, "body_too_large"),
        (
            "{\"partition\":\"aws-cn\",\"permissions\":{\"mode\":\"custom\",\"products\":[\"ocean\"]}}".into(),
            "application/json",
            422,
            "custom_permissions_not_allowed",
        ),
        (
            "{\"partition\":\"aws\",\"permissions\":{\"mode\":\"custom\",\"products\":[\"ocean\"],\"integrations\":[\"elastigroup-emr\"]}}".into(),
            "application/json",
            422,
            "integration_without_product",
        ),
    ];
    for (body, ctype, status, code) in cases {
        let (got, err) = error_of(post(body.clone(), ctype).await);
        assert_eq!(
            (got, err["error"]["code"].as_str().unwrap()),
            (status, code),
            "{}",
            &body[..body.len().min(120)]
        );
        if ctype == "application/json" {
            // A plain JSON body takes the extractor's fast path; with a
            // charset it goes through axum's own: the same refusal, word
            // for word.
            let slow = error_of(post(body.clone(), "application/json; charset=utf-8").await);
            assert_eq!(slow, (got, err), "{}", &body[..body.len().min(120)]);
        }
    }
    let ok = "{\"partition\":\"aws\",\"permissions\":{\"mode\":\"default\"}}".to_owned();
    let (fast, slow) = (
        post(ok.clone(), "application/json").await,
        post(ok, "application/json; charset=utf-8").await,
    );
    assert_eq!(fast.0, 200, "{}", fast.1);
    assert_eq!(fast, slow);
    let (status, err) = error_of(
        post(
            "{\"partition\":\"aws\",\"permissions\":{\"mode\":\"custom\",\"products\":[\"ocean\",\"ocean\"]}}".into(),
            "application/json",
        )
        .await,
    );
    assert_eq!((status, &err["error"]["details"]["id"]), (422, &json!("ocean")));

    let (status, err) = error_of(app.catalog("partition=mars").await);
    assert_eq!((status, err["error"]["code"].as_str().unwrap()), (400, "invalid_query"));
    let (status, err) = error_of(app.call("GET", "/nowhere", None, None).await);
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap()),
        (404, "route_not_found")
    );
    let (status, err) = error_of(app.call("DELETE", "/v1/policies", None, None).await);
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap()),
        (405, "method_not_allowed")
    );
}

#[tokio::test]
async fn openapi_documents_exactly_the_routes_served() {
    let app = app().await;
    let (_, doc) = app.openapi().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
            // Each documented operation is routed: never the router's 404/405.
            let concrete = path
                .replace("{id}", "con-doesnotexist")
                .replace("{accountId}", "act-00000000");
            let res = app
                .request(&method.to_uppercase(), &concrete, None)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            assert!(
                !text.contains("route_not_found") && !text.contains("method_not_allowed"),
                "{method} {path}: {status} {text}"
            );
            // Every ref resolves.
        }
    }
    let served: Vec<(String, String)> = account_connect::api::route_table()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    documented.sort();
    let mut served_sorted = served.clone();
    served_sorted.sort();
    assert_eq!(documented, served_sorted);
    let text = doc.to_string();
    for cap in text.split("#/components/schemas/").skip(1) {
        let name: String = cap
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            doc["components"]["schemas"].get(&name).is_some(),
            "dangling $ref {name}"
        );
    }
}
