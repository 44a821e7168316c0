//! A role refused by verification, in Spot's envelope: the refusal, then
//! one error per failed check, read from the typed report.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failed_check_is_one_spot_error() {
    let app = common::spawn_app(common::test_config()).await;
    let t = common::token("org-spot-report", None);
    let (status, _) = app.spot_create_external_id(&t, "act-12345678").await;
    assert_eq!(status, 200);
    // A role in another partition fails the ARN check before any AWS call;
    // the other checks are skipped, so the report has one failure.
    let (status, body) = app
        .spot_set_credentials(&t, "act-12345678", "arn:aws-cn:iam::123456789012:role/Spot-Role")
        .await;
    assert_eq!(status, 422, "{body}");
    let errors = body["response"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    assert_eq!(errors[0]["code"], "verification_failed");
    assert!(errors[0]["message"].as_str().unwrap().contains("Role ARN"), "{body}");
    assert_eq!(errors[1]["code"], "role_arn");
    let message = errors[1]["message"].as_str().unwrap();
    // The check's message, then its remediation.
    assert!(
        message.starts_with("The role is in the AWS China partition (aws-cn)"),
        "{message}"
    );
    assert!(message.ends_with("or start a connection for AWS China."), "{message}");
    assert!(errors[1]["field"].is_null());
}
