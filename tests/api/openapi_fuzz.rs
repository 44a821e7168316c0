//! Schemathesis fuzzes every route of the OpenAPI document: no input a
//! client can send may produce a 5xx, and every answer has a documented
//! content type and matches the documented schema of its status.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generated_request_gets_a_server_error() {
    common::moto_endpoint(); // Verification routes reach moto's STS and IAM.
    let app = common::spawn_app(account_connect::config::Config {
        propagation_budget_secs: 0,
        ..common::test_config()
    })
    .await;
    let token = common::token("org-fuzz", None);
    let schema = app.url("/openapi.json");
    let out = tokio::task::spawn_blocking(move || {
        // Through a guard for a CPython 3.11 bug hypothesis trips (see the script).
        std::process::Command::new(common::venv_bin("python"))
            .arg(common::repo_path("tests/tools/fuzz_api.py"))
            .args([
                "run",
                &schema,
                "--checks",
                "not_a_server_error,response_schema_conformance,content_type_conformance",
                "--max-examples",
                "25",
                "--workers",
                "2",
            ])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found server errors:\n{text}");
    assert!(text.contains("passed") || text.contains("PASSED"), "{text}");
}
