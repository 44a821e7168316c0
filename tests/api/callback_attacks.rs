//! The CloudFormation callback as an attacker or a confused customer would
//! use it: anyone can publish to the topic, and the template (with its
//! token) is publicly readable. Each message goes through the callback entry
//! point; the connection's state is then read through the API.

use crate::common;

use account_connect::app;
use account_connect::services::Services;
use common::callback::{
    config, create, events, get, send, stack_in_moto, template, token_of, Message, Receiver, ACCOUNT,
};
use common::TestApp;
use serde_json::{json, Value};

const STACK_B: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/spotinst-iam-stack-again/9a8b7c6d-0000-11f0-9d2e-0affd41e6b35";
const STACK_OTHER_ACCOUNT: &str =
    "arn:aws:cloudformation:us-east-1:999999999999:stack/spotinst-iam-stack-x/1b2c3d4e-0000-11f0-9d2e-0affd41e6b35";

/// A pending automatic connection, its template's stack in moto, and a receiver.
struct Setup {
    app: TestApp,
    state: Services,
    store: account_connect::store::DynStore,
    rx: Receiver,
    t: String,
    id: String,
    tok: String,
    template: Value,
    stack: String,
    role: String,
}

async fn setup(org: &str, account: &str) -> Setup {
    setup_with(org, account, config(None)).await
}

async fn setup_with(org: &str, account: &str, cfg: account_connect::config::Config) -> Setup {
    let (app, state, store) = common::spawn_with_store(cfg).await;
    let rx = Receiver::start().await;
    let t = common::token(org, None);
    let c = create(&app, &t, account, json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let template = template(&app, &t, &id).await;
    let name = format!(
        "{}-{}",
        c["cloudFormation"]["stackName"].as_str().unwrap(),
        account_connect::ids::random_token(2)
    );
    let (stack, role) = stack_in_moto(&template, &name);
    Setup {
        tok: token_of(&template),
        app,
        state,
        store,
        rx,
        t,
        id,
        template,
        stack,
        role,
    }
}

/// A stack of `template` under other names: (stack id, role ARN).
fn another_stack(template: &Value) -> (String, String) {
    let mut t = template.clone();
    let tag = account_connect::ids::random_token(3);
    t["Parameters"]["RoleName"]["Default"] = json!(format!("Spot-Role-{tag}"));
    stack_in_moto(&t, &format!("spotinst-iam-stack-{tag}"))
}

impl Setup {
    fn msg<'a>(&'a self, request_type: &'a str, url: &'a str) -> Message<'a> {
        Message {
            request_type,
            url,
            stack_id: &self.stack,
            // Each message a new CloudFormation request, as each stack
            // operation is (the same RequestId again is acted on once:
            // callback_once.rs).
            request_id: Box::leak(
                format!("7c1f2e3d-4b5a-4c6d-8e9f-{}", account_connect::ids::random_token(6)).into_boxed_str(),
            ),
            physical: None,
            connection: &self.id,
            role: &self.role,
            token: &self.tok,
        }
    }

    async fn status(&self) -> Value {
        get(&self.app, &self.t, &self.id).await
    }

    /// Connects it as its own stack would.
    async fn connect(&self) {
        let url = self.rx.url();
        send(&self.state, &self.msg("Create", &url)).await;
        let answer = self.rx.answer();
        assert_eq!(answer["Status"], "SUCCESS", "{answer}");
        let now = self.status().await;
        assert_eq!(now["status"], "connected", "{now}");
        assert_eq!(now["stack"]["stackId"], self.stack.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_response_urls_get_no_request_and_change_nothing() {
    let s = setup("org-url", "act-u1").await;
    let port = s.rx.base.rsplit(':').next().unwrap().to_owned();
    let before = events(&s.app, &s.t, &s.id).await;

    // With the local allow-list (127.0.0.1): other names for loopback,
    // other schemes, hosts and credentials are never contacted, even with a
    // genuine token and a role that would connect.
    for url in [
        format!("http://localhost:{port}/response"),
        format!("http://[::1]:{port}/response"),
        format!("ftp://127.0.0.1:{port}/response"),
        format!("http://user:pw@127.0.0.1:{port}/response"),
        "https://example.com/response".to_owned(),
        "not a url".to_owned(),
    ] {
        send(&s.state, &s.msg("Create", &url)).await;
        assert!(s.rx.take().is_empty(), "{url} was contacted");
        assert_eq!(s.status().await["status"], "pending", "{url}");
    }
    // A redirect is not followed (here a forged message the token check
    // refuses): one request to the URL itself, none to where it points.
    let redirect = format!("{}/redirect", s.rx.base);
    send(
        &s.state,
        &Message {
            token: "forged",
            ..s.msg("Create", &redirect)
        },
    )
    .await;
    let hits = s.rx.take();
    assert_eq!(hits.iter().map(|h| h.path.as_str()).collect::<Vec<_>>(), ["/redirect"]);
    assert_eq!(hits[0].json()["Status"], "FAILED");

    // Without the setting, as in AWS: only https to CloudFormation's bucket
    // of the stack's region. A genuine Create to anything else changes nothing.
    let mut cfg = (*s.state.config).clone();
    cfg.callback_response_hosts = None;
    let aws = app::build_with_store(cfg, s.store.clone());
    for url in [
        s.rx.url(),
        format!("https://127.0.0.1:{port}/response"),
        "http://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x".to_owned(),
        "https://cloudformation-custom-resource-response-uswest2.s3.amazonaws.com/x".to_owned(),
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com.example.com/x".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        send(&aws, &s.msg("Create", &url)).await;
        assert!(s.rx.take().is_empty(), "{url} was contacted");
        assert_eq!(s.status().await["status"], "pending", "{url}");
    }
    assert_eq!(events(&s.app, &s.t, &s.id).await, before, "nothing recorded");
    // Not JSON, or too large: nothing to answer, nothing changed, no retry.
    for text in [
        "{not json".to_owned(),
        format!(
            "{{\"ResponseURL\":\"{}\",\"x\":\"{}\"}}",
            s.rx.url(),
            "a".repeat(70_000)
        ),
    ] {
        account_connect::callback::handle_message(
            &s.state,
            &account_connect::callback::Responder::new(&s.state.config),
            &text,
        )
        .await
        .expect("not retried");
        assert!(s.rx.take().is_empty());
    }

    // The same genuine message to an allowed URL connects: the checks above
    // refused the URL, not the request.
    s.connect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_connection_changes_nothing() {
    let s = setup("org-tok", "act-t1").await;
    let other = create(&s.app, &s.t, "act-t2", json!({"mode": "default"})).await;
    let other_id = other["id"].as_str().unwrap();
    let other_tok = token_of(&template(&s.app, &s.t, other_id).await);
    let url = s.rx.url();
    send(
        &s.state,
        &Message {
            token: &other_tok,
            ..s.msg("Create", &url)
        },
    )
    .await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap().contains("CallbackToken"), "{answer}");
    assert_ne!(answer["PhysicalResourceId"], s.id.as_str());
    assert_eq!(s.status().await["status"], "pending");
    // Nor can it delete, once connected.
    s.connect().await;
    send(
        &s.state,
        &Message {
            token: &other_tok,
            physical: Some(&s.id),
            ..s.msg("Delete", &url)
        },
    )
    .await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    assert_eq!(s.status().await["status"], "connected");
    assert_eq!(get(&s.app, &s.t, other_id).await["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_in_another_account_fails_naming_both_and_its_rollback_changes_nothing() {
    let s = setup("org-acct", "act-a1").await;
    let url = s.rx.url();
    let foreign_role = "arn:aws:iam::999999999999:role/Spot-Role-elsewhere";
    let create = Message {
        stack_id: STACK_OTHER_ACCOUNT,
        role: foreign_role,
        ..s.msg("Create", &url)
    };
    send(&s.state, &create).await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(reason.contains("999999999999") && reason.contains(ACCOUNT), "{reason}");
    let physical = answer["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(
        physical.starts_with("account-connect-failed-") && physical != s.id,
        "{physical}"
    );
    // CloudFormation rolls back with a Delete of that physical id.
    send(
        &s.state,
        &Message {
            request_type: "Delete",
            physical: Some(&physical),
            ..create
        },
    )
    .await;
    let answer = s.rx.answer();
    assert_eq!(
        (answer["Status"].as_str(), answer["PhysicalResourceId"].as_str()),
        (Some("SUCCESS"), Some(physical.as_str()))
    );
    assert_eq!(s.status().await["status"], "pending");
    // The customer runs it in the right account: it connects.
    s.connect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_creates_and_their_rollbacks_leave_the_connection_as_it_was() {
    let s = setup("org-fail", "act-f1").await;
    let url = s.rx.url();
    // A role the checks refuse (as after a propagation timeout): FAILED, and
    // the rollback's Delete leaves the connection pending.
    let create = Message {
        role: "arn:aws:iam::123456789012:role/Does-Not-Exist",
        ..s.msg("Create", &url)
    };
    send(&s.state, &create).await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let physical = answer["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_ne!(physical, s.id);
    send(
        &s.state,
        &Message {
            physical: Some(&physical),
            ..s.msg("Delete", &url)
        },
    )
    .await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    assert_eq!(s.status().await["status"], "pending");

    // Connected by its stack; the same template run again (a second stack)
    // fails, and its rollback does not disconnect the working connection.
    s.connect().await;
    let again = Message {
        stack_id: STACK_B,
        request_id: "0d9e8f7a-1111-4b2c-8d3e-4f5a6b7c8d9e",
        ..s.msg("Create", &url)
    };
    send(&s.state, &again).await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap().contains(&s.stack), "{answer}");
    let physical = answer["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_ne!(physical, s.id);
    send(
        &s.state,
        &Message {
            physical: Some(&physical),
            ..Message {
                request_type: "Delete",
                ..again
            }
        },
    )
    .await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    // The same in the wrong account.
    let wrong = Message {
        stack_id: STACK_OTHER_ACCOUNT,
        role: "arn:aws:iam::999999999999:role/R",
        ..s.msg("Create", &url)
    };
    send(&s.state, &wrong).await;
    let physical = s.rx.answer()["PhysicalResourceId"].as_str().unwrap().to_owned();
    send(
        &s.state,
        &Message {
            request_type: "Delete",
            physical: Some(&physical),
            ..wrong
        },
    )
    .await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    let now = s.status().await;
    assert_eq!(
        (now["status"].as_str(), now["health"].as_str()),
        (Some("connected"), Some("healthy")),
        "{now}"
    );
    assert_eq!(now["stack"]["stackId"], s.stack.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_stack_that_connected_updates_or_disconnects_and_replays_do_nothing() {
    let s = setup("org-stack", "act-s1").await;
    let url = s.rx.url();
    s.connect().await;
    // A second stack from the same template: its Delete (even naming the
    // connection as physical id) and its Update change nothing.
    let b = Message {
        stack_id: STACK_B,
        physical: Some(&s.id),
        ..s.msg("Delete", &url)
    };
    send(&s.state, &b).await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    assert_eq!(s.status().await["status"], "connected");
    send(
        &s.state,
        &Message {
            request_type: "Update",
            ..b
        },
    )
    .await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    assert!(
        answer["Reason"].as_str().unwrap().contains("did not connect"),
        "{answer}"
    );
    assert_eq!(s.status().await["status"], "connected");

    // The connecting stack's Update re-verifies, a changed role included.
    let (_, role2) = another_stack(&s.template);
    let update = Message {
        role: &role2,
        physical: Some(&s.id),
        ..s.msg("Update", &url)
    };
    send(&s.state, &update).await;
    let answer = s.rx.answer();
    assert_eq!(
        (answer["Status"].as_str(), answer["PhysicalResourceId"].as_str()),
        (Some("SUCCESS"), Some(s.id.as_str())),
        "{answer}"
    );
    assert_eq!(s.status().await["roleArn"], role2.as_str());

    // Its Delete disconnects.
    send(
        &s.state,
        &Message {
            physical: Some(&s.id),
            ..s.msg("Delete", &url)
        },
    )
    .await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    assert_eq!(s.status().await["status"], "disconnected");
    // A replay of the original Create (or Update) after that: FAILED, still disconnected.
    let before = events(&s.app, &s.t, &s.id).await;
    send(&s.state, &s.msg("Create", &url)).await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap().contains("disconnected"), "{answer}");
    // The Update itself delivered again (its RequestId): not acted on, not answered again.
    send(&s.state, &update).await;
    assert!(s.rx.take().is_empty(), "a redelivered request is acted on once");
    assert_eq!(s.status().await["status"], "disconnected");
    assert_eq!(events(&s.app, &s.t, &s.id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_external_id_makes_the_old_token_useless() {
    let s = setup("org-rot", "act-r1").await;
    let url = s.rx.url();
    let (status, _) = s.app.rotate_external_id(&s.t, &s.id).await;
    assert_eq!(status, 200);
    send(&s.state, &s.msg("Create", &url)).await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap().contains("rotated"), "{answer}");
    assert_eq!(s.status().await["status"], "pending");
    // The fresh template carries a new token, and its stack connects.
    let fresh = template(&s.app, &s.t, &s.id).await;
    let tok = token_of(&fresh);
    assert_ne!(tok, s.tok);
    let (stack, role) = another_stack(&fresh);
    send(
        &s.state,
        &Message {
            token: &tok,
            stack_id: &stack,
            role: &role,
            ..s.msg("Create", &url)
        },
    )
    .await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    assert_eq!(s.status().await["status"], "connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_external_id_makes_the_token_useless() {
    let mut cfg = config(None);
    cfg.external_id_ttl_secs = 0; // Expired as soon as issued.
    let s = setup_with("org-exp", "act-e1", cfg).await;
    let url = s.rx.url();
    send(&s.state, &s.msg("Create", &url)).await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap().contains("expired"), "{answer}");
    assert_eq!(s.status().await["status"], "expired");
}

#[tokio::test]
async fn automatic_connections_need_the_aws_account_and_manual_ones_do_not() {
    let app = common::spawn_app(config(None)).await;
    let t = common::token("org-acc", None);
    let (status, err) = app
        .create_connection(
            &t,
            &json!({"accountId": "act-n1", "partition": "aws", "permissions": {"mode": "default"}, "method": "automatic"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "aws_account_id_required", "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("awsAccountId"));
    let (status, _) = app
        .create_connection(
            &t,
            &json!({"accountId": "act-n1", "partition": "aws", "permissions": {"mode": "default"}}),
        )
        .await;
    assert_eq!(status, 201);
}

/// Well-formed StackIds in the connection's account whose region is not one
/// of their partition's: made up, another partition's, or commercial in a
/// GovCloud ARN.
const UNKNOWN_REGION_STACKS: [&str; 5] = [
    "arn:aws:cloudformation:us-east-9:123456789012:stack/spotinst-iam-stack-r/1b2c3d4e-0000-11f0-9d2e-0affd41e6b35",
    "arn:aws:cloudformation:us-gov-west-1:123456789012:stack/spotinst-iam-stack-r/1b2c3d4e-0000-11f0-9d2e-0affd41e6b35",
    "arn:aws:cloudformation:cn-north-1:123456789012:stack/spotinst-iam-stack-r/1b2c3d4e-0000-11f0-9d2e-0affd41e6b35",
    "arn:aws:cloudformation:eu-west-9:123456789012:stack/spotinst-iam-stack-r/1b2c3d4e-0000-11f0-9d2e-0affd41e6b35",
    "arn:aws-us-gov:cloudformation:us-east-1:123456789012:stack/spotinst-iam-stack-r/1b2c3d4e-0000-11f0-9d2e-0affd41e6b35",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_in_a_region_its_partition_lacks_gets_no_request_and_changes_nothing() {
    let s = setup("org-region", "act-r1").await;
    let url = s.rx.url();
    let before = events(&s.app, &s.t, &s.id).await;
    // The genuine token and role, an allowed ResponseURL (the receiver
    // records any request): only the StackId's region is wrong.
    for stack in UNKNOWN_REGION_STACKS {
        for (request_type, physical) in [
            ("Create", None),
            ("Update", Some(s.id.as_str())),
            ("Delete", Some(s.id.as_str())),
        ] {
            send(
                &s.state,
                &Message {
                    stack_id: stack,
                    physical,
                    ..s.msg(request_type, &url)
                },
            )
            .await;
            assert!(s.rx.take().is_empty(), "{request_type} from {stack} was answered");
            assert_eq!(s.status().await["status"], "pending", "{request_type} from {stack}");
        }
    }
    assert_eq!(events(&s.app, &s.t, &s.id).await, before, "nothing recorded");
    // The same message from the stack's own region connects.
    s.connect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_of_another_partition_than_the_connection_fails_and_changes_nothing() {
    let s = setup("org-part", "act-p1").await;
    let url = s.rx.url();
    // A GovCloud stack in the same account, with the commercial connection's
    // genuine token and a role that would connect it.
    let gov = "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/spotinst-iam-stack-g/1b2c3d4e-0000-11f0-9d2e-0affd41e6b35";
    send(
        &s.state,
        &Message {
            stack_id: gov,
            ..s.msg("Create", &url)
        },
    )
    .await;
    let answer = s.rx.answer();
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(
        reason.contains("AWS GovCloud (US)") && reason.contains("AWS (commercial)"),
        "{reason}"
    );
    assert_ne!(answer["PhysicalResourceId"], s.id.as_str());
    assert_eq!(s.status().await["status"], "pending");
    s.connect().await;
    // Nor does that stack's Delete disconnect it.
    send(
        &s.state,
        &Message {
            stack_id: gov,
            physical: Some(&s.id),
            ..s.msg("Delete", &url)
        },
    )
    .await;
    assert_eq!(s.rx.answer()["Status"], "SUCCESS");
    assert_eq!(s.status().await["status"], "connected");
}
