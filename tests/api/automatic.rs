//! The automatic flow: the template (cfn-lint clean, runs in moto), the
//! quick-create link, and every path of the CloudFormation callback.

use crate::common;

use account_connect::automatic::token;
use common::callback::{config, create, deliver, fixture, get, stack_in_moto, template, token_of, Receiver, KEY};
use serde_json::{json, Value};

use common::callback::bucket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_pass_cfn_lint_and_use_the_partition_variable() {
    let app = common::spawn_app(config(None)).await;
    let t = common::token("org-t", None);
    let c = create(&app, &t, "act-1", json!({"mode": "default"})).await;
    let tpl = template(&app, &t, c["id"].as_str().unwrap()).await;
    assert!(!tpl.to_string().contains("arn:aws:"), "literal partition in {tpl}");
    assert_eq!(
        tpl["Resources"]["SpotConnection"]["Properties"]["ServiceToken"]["Fn::Sub"],
        "arn:${AWS::Partition}:sns:us-east-1:922761411349:account-connect-callback"
    );
    let tok = token_of(&tpl);
    let binding = token::Binding {
        connection_id: c["id"].as_str().unwrap(),
        external_id: c["externalId"].as_str().unwrap(),
        aws_account_id: "123456789012",
    };
    assert!(token::verify(KEY, binding, &tok));
    assert!(
        tpl["Parameters"].get("CallbackToken").is_none(),
        "nothing secret travels as a parameter"
    );
    common::cfn_lint_json(&tpl);
    // Every bundle: several managed policies, all attached to the role.
    let all = json!({"mode": "custom", "products": ["overview-dashboard", "elastigroup", "ocean", "spot-storage", "eco"],
        "integrations": ["elastigroup-route53", "elastigroup-load-balancers", "eco-commitment-purchases", "ocean-ecs", "ocean-eks",
            "elastigroup-beanstalk", "elastigroup-emr", "elastigroup-stateful", "ocean-encrypted-volumes", "eco-cost-and-usage-report"]});
    let big = create(&app, &t, "act-2", all).await;
    let tpl = template(&app, &t, big["id"].as_str().unwrap()).await;
    let policies: Vec<&Value> = tpl["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::IAM::ManagedPolicy")
        .collect();
    assert!(policies.len() >= 2, "{}", policies.len());
    assert!(policies
        .iter()
        .all(|p| p["Properties"]["Roles"] == json!([{"Ref": "Role"}])));
    common::cfn_lint_json(&tpl);
    // Without a bucket there is no link, and the answer says why.
    assert!(c["cloudFormation"]["quickCreateUrl"].is_null());
    assert!(c["cloudFormation"]["unavailableReason"]
        .as_str()
        .unwrap()
        .contains("ACCOUNT_CONNECT_TEMPLATE_BUCKET"));
    assert!(c["cloudFormation"]["stackName"]
        .as_str()
        .unwrap()
        .starts_with("spotinst-iam-stack-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_bucket_the_template_is_uploaded_and_linked() {
    let bucket = bucket().await;
    let app = common::spawn_app(config(Some(bucket.clone()))).await;
    let t = common::token("org-t", None);
    let c = create(&app, &t, "act-3", json!({"mode": "default"})).await;
    let cf = &c["cloudFormation"];
    let url = cf["templateUrl"].as_str().unwrap();
    assert!(url.starts_with(&format!("https://{bucket}.s3.")), "{url}");
    let quick = cf["quickCreateUrl"].as_str().unwrap();
    assert!(quick.starts_with("https://us-east-1.console.aws.amazon.com/cloudformation/home?region=us-east-1#/stacks/quickcreate?templateURL=https%3A%2F%2F"), "{quick}");
    assert!(quick.contains(&format!("&stackName={}", cf["stackName"].as_str().unwrap())));
    assert!(quick.contains("&param_RoleName=Spot-Role-"));
    // The object in the bucket is the template the API serves.
    let s3 = common::callback::s3().await;
    let key = url.split(".amazonaws.com/").nth(1).unwrap();
    // Under the prefix whose lifecycle rule outlives the 48 h external ID.
    assert!(key.starts_with("templates/2d/con-"), "{key}");
    let stored = s3.json(&bucket, key).await;
    assert_eq!(stored, template(&app, &t, c["id"].as_str().unwrap()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_the_stack_reports_back_and_the_account_connects() {
    let (app, state) = common::spawn_with_state(config(None)).await;
    let rx = Receiver::start().await;
    let url = rx.url();
    let t = common::token("org-e", None);
    let c = create(&app, &t, "act-4", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let tpl = template(&app, &t, id).await;
    let (stack_id, role) = stack_in_moto(&tpl, c["cloudFormation"]["stackName"].as_str().unwrap());
    assert!(stack_id.contains(":123456789012:"));
    let tok = token_of(&tpl);
    deliver(&state, fixture("callback-create.json", &url, id, &role, &tok)).await;
    let answer = rx.answer();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["Data"]["RoleArn"], role.as_str());
    assert_eq!(answer["PhysicalResourceId"], id);
    let now = get(&app, &t, id).await;
    assert_eq!(
        (now["status"].as_str(), now["health"].as_str()),
        (Some("connected"), Some("healthy")),
        "{now}"
    );
    // The stack that connected is recorded (the fixtures' StackId).
    assert_eq!(now["stack"]["stackId"], common::callback::STACK_A, "{now}");
    assert_eq!(now["stack"]["accountId"], "123456789012");
    let (_, events) = app.events(&t, id, "").await;
    assert!(events["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["actor"].as_str().unwrap().starts_with("cloudformation:")));

    // Redelivered (the same RequestId): not acted on, and not answered
    // again (CloudFormation has its answer); still connected.
    deliver(&state, fixture("callback-create.json", &url, id, &role, &tok)).await;
    assert!(rx.take().is_empty(), "a redelivery is not answered again");
    assert_eq!(get(&app, &t, id).await["status"], "connected");
    // An update re-verifies.
    deliver(&state, fixture("callback-update.json", &url, id, &role, &tok)).await;
    assert_eq!(rx.answer()["Status"], "SUCCESS");
    assert_eq!(get(&app, &t, id).await["status"], "connected");
    // Deleting the stack disconnects, and answers SUCCESS; again for a gone connection.
    deliver(&state, fixture("callback-delete.json", &url, id, &role, &tok)).await;
    assert_eq!(rx.answer()["Status"], "SUCCESS");
    assert_eq!(get(&app, &t, id).await["status"], "disconnected");
    // Another Delete (another RequestId) for the gone connection: SUCCESS,
    // and for a connection that never was.
    let again = |conn: &str, tok: &str, n: u32| {
        let text = common::callback::fixture_text("callback-delete.json", &url, conn, &role, tok).replace(
            "d4e9a6c3-2b5f-4a7c-8ebd-3f4a5b6c7d8e",
            &format!("d4e9a6c3-2b5f-4a7c-8ebd-00000000000{n}"),
        );
        serde_json::from_str(&text).unwrap()
    };
    deliver(&state, again(id, &tok, 1)).await;
    assert_eq!(rx.answer()["Status"], "SUCCESS");
    deliver(&state, again("con-000000000000000000000000", "x", 2)).await;
    assert_eq!(rx.answer()["Status"], "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_is_answered_failed_with_a_reason() {
    let (app, state) = common::spawn_with_state(config(None)).await;
    let rx = Receiver::start().await;
    let url = rx.url();
    let t = common::token("org-f", None);
    let c = create(&app, &t, "act-5", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let role = "arn:aws:iam::123456789012:role/Whatever";
    let tok = token_of(&template(&app, &t, id).await);
    for (name, needle) in [
        ("callback-bad-token.json", "CallbackToken"),
        ("callback-account-mismatch.json", "999999999999"),
        ("callback-garbage-with-url.json", "could not read"),
    ] {
        deliver(&state, fixture(name, &url, id, role, &tok)).await;
        let answer = rx.answer();
        assert_eq!(answer["Status"], "FAILED", "{name}: {answer}");
        assert!(answer["Reason"].as_str().unwrap().contains(needle), "{name}: {answer}");
        assert!(!answer["StackId"].as_str().unwrap().is_empty());
    }
    // Not JSON at all: no ResponseURL to answer, and no error to retry.
    deliver(&state, fixture("callback-garbage.json", &url, id, role, &tok)).await;
    assert!(rx.take().is_empty());
    // A genuine request for a role that fails a check: FAILED with the check's words.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let name = format!("No-ExtId-{}", account_connect::ids::random_token(4));
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::922761411349:root"}, "Action": "sts:AssumeRole"}]});
    let bad_role = common::create_role(&iam, &name, trust.to_string()).await;
    deliver(&state, fixture("callback-create.json", &url, id, &bad_role, &tok)).await;
    let answer = rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap().contains("external ID"), "{answer}");
    assert_eq!(get(&app, &t, id).await["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_recheck_records_health_changes() {
    let (app, state) = common::spawn_with_state(config(None)).await;
    let t = common::token("org-r", None);
    let c = create(&app, &t, "act-6", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let (_, role) = stack_in_moto(
        &template(&app, &t, id).await,
        &format!("{}-r", c["cloudFormation"]["stackName"].as_str().unwrap()),
    );
    let (status, _) = app.connect_role(&t, id, &role).await;
    assert_eq!(status, 200);
    // The customer detaches the policy: the next scheduled run finds the drift.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let name = role.rsplit('/').next().unwrap();
    for p in iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .unwrap()
        .attached_policies
        .unwrap_or_default()
    {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(p.policy_arn.unwrap())
            .send()
            .await
            .unwrap();
    }
    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_str(&common::read_event("recheck-schedule.json")).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");
    let worker = account_connect::recheck::Worker::new(state.connections.clone());
    let options = account_connect::recheck::EnumerateOptions::from_config(&state.config);
    let summary = account_connect::recheck::local::run(&worker, &options, 4).await;
    assert!(summary.checked >= 1 && summary.changed >= 1, "{summary:?}");
    let now = get(&app, &t, id).await;
    assert_eq!(now["health"], "degraded", "{now}");
}
