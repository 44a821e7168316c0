//! GovCloud stacks report back through the partition's relay: a signed POST
//! that the service checks, then handles as a message from its own topic,
//! verifying the role in the GovCloud moto with the GovCloud identity.

use crate::common;
use crate::common::callback::{Message, Receiver};
use account_connect::automatic::relay::sign;
use account_connect::config::CredentialSource;
use account_connect::domain::Partition;
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";
const GOV_PRINCIPAL: &str = "arn:aws-us-gov:iam::210987654321:root";
const GOV_TOPIC: &str = "arn:aws-us-gov:sns:us-gov-west-1:210987654321:spot-relay";
pub(crate) const RELAY_KEY: &str = "relay-key-relay-key-relay-key-relay-key!";
pub(crate) const STACK: &str = "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/spotinst-iam-stack-gov/5b8c1d40-c3a4-11f0-9d2e-0affd41e6b35";

fn gov_profile() -> String {
    std::env::var("ACCOUNT_CONNECT_TEST_PROFILE_AWS_US_GOV")
        .expect("ACCOUNT_CONNECT_TEST_PROFILE_AWS_US_GOV is not set: run the tests with scripts/test")
}

pub(crate) async fn relay_secret() -> String {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    aws_sdk_secretsmanager::Client::new(&conf)
        .create_secret()
        .name(format!(
            "account-connect/relay/{}",
            account_connect::ids::random_token(6)
        ))
        .secret_string(RELAY_KEY)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// GovCloud with a vendor identity, a callback key, and (`relay`) a relay.
pub(crate) async fn config(relay: bool) -> account_connect::config::Config {
    let mut c = common::callback::config(None);
    c.principals.insert(Partition::AwsUsGov, GOV_PRINCIPAL.into());
    c.credential_sources
        .insert(Partition::AwsUsGov, CredentialSource::Profile(gov_profile()));
    if relay {
        c.topics.insert(Partition::AwsUsGov, GOV_TOPIC.into());
        c.relay_key_secrets.insert(Partition::AwsUsGov, relay_secret().await);
    }
    c
}

async fn gov_iam() -> aws_sdk_iam::Client {
    let name = gov_profile();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .profile_name(&name)
        .region(aws_config::Region::new("us-gov-west-1"))
        .credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(&name)
                .build(),
        )
        .load()
        .await;
    aws_sdk_iam::Client::new(&conf)
}

/// What the stack would create: the template's role, in GovCloud.
pub(crate) async fn stack_role(c: &Value) -> String {
    common::connection_role(&gov_iam().await, c).await.0
}

pub(crate) async fn gov_connection(app: &common::TestApp, t: &str, account: &str) -> Value {
    let body = json!({"accountId": account, "partition": "aws-us-gov", "permissions": {"mode": "default"},
        "method": "automatic", "awsAccountId": ACCOUNT});
    let (status, c) = app.create_connection(t, &body).await;
    assert_eq!(status, 201, "{c}");
    c
}

#[tokio::test]
async fn a_relayed_callback_connects_govcloud_only_when_signed_and_fresh() {
    let (app, _state) = common::spawn_with_state(config(true).await).await;
    let receiver = Receiver::start().await;
    let t = common::token("org-relay", None);
    let c = gov_connection(&app, &t, "act-relay1").await;
    let id = c["id"].as_str().unwrap();
    let template = common::callback::template(&app, &t, id).await;
    let resource = &template["Resources"]["SpotConnection"];
    assert_eq!(
        resource["Properties"]["ServiceToken"]["Fn::Sub"],
        "arn:${AWS::Partition}:sns:us-gov-west-1:210987654321:spot-relay",
        "{template}"
    );
    let role = stack_role(&c).await;
    let url = receiver.url();
    let token = common::callback::token_of(&template);
    let msg = Message {
        request_type: "Create",
        url: &url,
        stack_id: STACK,
        request_id: "req-relay-1",
        physical: None,
        connection: id,
        role: &role,
        token: &token,
    }
    .text();
    let key = RELAY_KEY.as_bytes();
    let now = app.clock.now();
    let ts = now.to_string();

    // Refused, and nothing answered or changed: another key, a stale or
    // future timestamp, a body changed after signing, no headers.
    let wrong = sign(b"not-the-relay-key-not-the-relay-key!", now, msg.as_bytes());
    let stale = (now - 301).to_string();
    let future = (now + 60).to_string();
    let tampered = msg.replace("req-relay-1", "req-relay-2");
    let good = sign(key, now, msg.as_bytes());
    for (name, ts, sig, body) in [
        ("bad signature", ts.clone(), wrong, msg.clone()),
        (
            "old timestamp",
            stale.clone(),
            sign(key, now - 301, msg.as_bytes()),
            msg.clone(),
        ),
        (
            "future timestamp",
            future.clone(),
            sign(key, now + 60, msg.as_bytes()),
            msg.clone(),
        ),
        ("changed body", ts.clone(), good.clone(), tampered),
        ("signature of another time", stale, good.clone(), msg.clone()),
    ] {
        let (status, err) = app.relay("aws-us-gov", Some(&ts), Some(&sig), &body).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (401, Some("relay_signature_invalid")),
            "{name}: {err}"
        );
    }
    let (status, _) = app.relay("aws-us-gov", None, None, &msg).await;
    assert_eq!(status, 401);
    // China has no relay here, commercial needs none.
    for p in ["aws-cn", "aws", "aws-iso"] {
        let (status, err) = app.relay(p, Some(&ts), Some(&good), &msg).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (404, Some("relay_not_configured")),
            "{p}: {err}"
        );
    }
    assert!(receiver.take().is_empty(), "a refused relay answered CloudFormation");
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "pending");

    // A GovCloud key relays GovCloud stacks only.
    let commercial = msg.replace(STACK, common::callback::STACK_A);
    let sig = sign(key, now, commercial.as_bytes());
    let (status, err) = app.relay("aws-us-gov", Some(&ts), Some(&sig), &commercial).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("relay_partition_mismatch")),
        "{err}"
    );

    // Signed and fresh: handled as the callback handles its topic's.
    let (status, ok) = app.relay("aws-us-gov", Some(&ts), Some(&good), &msg).await;
    assert_eq!((status, ok["status"].as_str()), (200, Some("handled")), "{ok}");
    let answer = receiver.answer();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["PhysicalResourceId"], id);
    let now_c = common::callback::get(&app, &t, id).await;
    assert_eq!(
        (now_c["status"].as_str(), now_c["roleArn"].as_str()),
        (Some("connected"), Some(role.as_str())),
        "{now_c}"
    );

    // Every rule of the callback still applies: a forged token is refused.
    let c2 = gov_connection(&app, &t, "act-relay2").await;
    let forged = Message {
        request_type: "Create",
        url: &url,
        stack_id: STACK,
        request_id: "req-relay-3",
        physical: None,
        connection: c2["id"].as_str().unwrap(),
        role: &role,
        token: &token,
    }
    .text();
    let sig = sign(key, now, forged.as_bytes());
    let (status, _) = app.relay("aws-us-gov", Some(&ts), Some(&sig), &forged).await;
    assert_eq!(status, 200);
    assert_eq!(receiver.answer()["Status"], "FAILED");
    assert_eq!(
        common::callback::get(&app, &t, c2["id"].as_str().unwrap()).await["status"],
        "pending"
    );
}

/// A relay's POST, raw: the status, whether it says it is a replay
/// (`Idempotent-Replayed: true`), and the JSON body.
pub(crate) async fn relay_post(app: &common::TestApp, ts: &str, sig: &str, body: &str) -> (u16, bool, Value) {
    let res = app
        .request("POST", "/v1/relay/aws-us-gov", None)
        .header("content-type", "application/json")
        .header(account_connect::automatic::relay::TIMESTAMP_HEADER, ts)
        .header(account_connect::automatic::relay::SIGNATURE_HEADER, sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let replayed = res.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (res.status().as_u16(), replayed, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_signed_relay_request_is_acted_on_once_by_every_instance() {
    use account_connect::automatic::relay::MAX_AGE_SECS;
    let (app, state, store) = common::spawn_with_store(config(true).await).await;
    // Another instance (another Lambda) on the same store and clock.
    let other = common::serve(account_connect::app::build_on(
        (*state.config).clone(),
        store,
        app.clock.clone(),
    ))
    .await;
    let receiver = Receiver::start().await;
    let t = common::token("org-relay-once", None);
    let c = gov_connection(&app, &t, "act-once1").await;
    let id = c["id"].as_str().unwrap();
    let template = common::callback::template(&app, &t, id).await;
    let role = stack_role(&c).await;
    let (url, token) = (receiver.url(), common::callback::token_of(&template));
    let msg = Message {
        request_type: "Create",
        url: &url,
        stack_id: STACK,
        request_id: "req-once-1",
        physical: None,
        connection: id,
        role: &role,
        token: &token,
    }
    .text();
    let key = RELAY_KEY.as_bytes();

    // A GovCloud StackId in a region GovCloud does not have, signed and
    // fresh: dropped, nothing contacted, nothing changed.
    let now = app.clock.now();
    let unknown = msg.replace("us-gov-west-1:123456789012", "us-gov-north-9:123456789012");
    assert_ne!(unknown, msg);
    let (status, replayed, ok) =
        relay_post(&app, &now.to_string(), &sign(key, now, unknown.as_bytes()), &unknown).await;
    assert_eq!(
        (status, replayed, ok["status"].as_str()),
        (200, false, Some("handled")),
        "{ok}"
    );
    assert!(
        receiver.take().is_empty(),
        "a StackId of an unknown region was answered"
    );
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "pending");

    // Handled the first time.
    let ts = now.to_string();
    let sig = sign(key, now, msg.as_bytes());
    let (status, replayed, ok) = relay_post(&app, &ts, &sig, &msg).await;
    assert_eq!(
        (status, replayed, ok["status"].as_str()),
        (200, false, Some("handled")),
        "{ok}"
    );
    assert_eq!(receiver.answer()["Status"], "SUCCESS");
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "connected");
    let events = common::callback::events(&app, &t, id).await;

    // The same signed request again, to this instance or another, within its
    // window: answered alike, said to be a replay, not acted on.
    app.clock.advance(MAX_AGE_SECS - 1);
    for (name, instance) in [("same instance", &app), ("other instance", &other)] {
        let (status, replayed, ok) = relay_post(instance, &ts, &sig, &msg).await;
        assert!(receiver.take().is_empty(), "{name}: a replay was acted on again");
        assert_eq!(
            (status, replayed, ok["status"].as_str()),
            (200, true, Some("handled")),
            "{name}: {ok}"
        );
    }
    assert_eq!(common::callback::events(&app, &t, id).await, events);

    // A relay's retry signs anew: a new signed request, taken; but the
    // CloudFormation request it carries was answered, so the callback does
    // not act on it or answer it again (callback_once.rs).
    let later = app.clock.now();
    let (status, replayed, _) = relay_post(&other, &later.to_string(), &sign(key, later, msg.as_bytes()), &msg).await;
    assert_eq!((status, replayed), (200, false));
    assert!(
        receiver.take().is_empty(),
        "the same CloudFormation request is acted on once"
    );
    assert_eq!(common::callback::events(&app, &t, id).await, events);

    // Past the window the first one is refused as stale anyway.
    app.clock.advance(2);
    let (status, _, err) = relay_post(&app, &ts, &sig, &msg).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("relay_signature_invalid")),
        "{err}"
    );
    assert!(receiver.take().is_empty());
}

#[tokio::test]
async fn a_relay_connects_only_connections_of_its_own_partition() {
    let (app, state) = common::spawn_with_state(config(true).await).await;
    let receiver = Receiver::start().await;
    let t = common::token("org-relay-x", None);
    // A commercial automatic connection, and the role its template's stack
    // creates in the commercial moto.
    let c = common::callback::create(&app, &t, "act-relayx", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let template = common::callback::template(&app, &t, id).await;
    let name = format!(
        "{}-{}",
        c["cloudFormation"]["stackName"].as_str().unwrap(),
        account_connect::ids::random_token(2)
    );
    let (_, role) = common::callback::stack_in_moto(&template, &name);
    let (url, token) = (receiver.url(), common::callback::token_of(&template));
    // Relayed by the GovCloud relay from a GovCloud stack of the same
    // account, with the commercial connection's genuine token and role.
    let m = Message {
        request_type: "Create",
        url: &url,
        stack_id: STACK,
        request_id: "req-relay-x",
        physical: None,
        connection: id,
        role: &role,
        token: &token,
    };
    let gov = m.text();
    let now = app.clock.now();
    let sig = sign(RELAY_KEY.as_bytes(), now, gov.as_bytes());
    let (status, ok) = app.relay("aws-us-gov", Some(&now.to_string()), Some(&sig), &gov).await;
    assert_eq!((status, ok["status"].as_str()), (200, Some("handled")), "{ok}");
    let answer = receiver.answer();
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(
        reason.contains("AWS GovCloud (US)") && reason.contains("AWS (commercial)"),
        "{reason}"
    );
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "pending");

    // The same request from its own partition's stack, through the
    // commercial topic, connects: the partition was refused, not the rest.
    common::callback::send(
        &state,
        &Message {
            stack_id: common::callback::STACK_A,
            ..m
        },
    )
    .await;
    assert_eq!(receiver.answer()["Status"], "SUCCESS");
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "connected");
}

#[tokio::test]
async fn without_a_relay_the_wizard_is_told_and_the_template_has_no_custom_resource() {
    let app = common::spawn_app(config(false).await).await;
    let (status, list) = app.partitions().await;
    assert_eq!(status, 200);
    let item = |p: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["partition"] == p)
            .unwrap()
            .clone()
    };
    let gov = item("aws-us-gov");
    assert_eq!(
        (gov["available"].as_bool(), gov["automatic"].as_bool()),
        (Some(true), Some(false)),
        "{gov}"
    );
    assert!(
        gov["automaticNote"].as_str().unwrap().contains("paste its ARN"),
        "{gov}"
    );
    let cn = item("aws-cn");
    assert_eq!(cn["available"], false, "{cn}");
    assert!(
        cn["unavailableReason"]
            .as_str()
            .unwrap()
            .contains("ACCOUNT_CONNECT_PRINCIPAL_AWS_CN"),
        "{cn}"
    );
    assert_eq!(item("aws")["automatic"], true);

    let t = common::token("org-relay", None);
    let c = gov_connection(&app, &t, "act-norelay").await;
    let template = common::callback::template(&app, &t, c["id"].as_str().unwrap()).await;
    assert!(template["Resources"].get("SpotConnection").is_none(), "{template}");
    assert!(template["Resources"].get("Role").is_some());
}

#[tokio::test]
async fn the_relay_function_forwards_what_its_topic_delivers() {
    use account_connect::automatic::relay_forward::{Forwarded, Forwarder};
    let (app, _state) = common::spawn_with_state(config(true).await).await;
    let receiver = Receiver::start().await;
    let t = common::token("org-relay", None);
    let c = gov_connection(&app, &t, "act-forward").await;
    let id = c["id"].as_str().unwrap();
    let template = common::callback::template(&app, &t, id).await;
    let role = stack_role(&c).await;
    let (url, token) = (receiver.url(), common::callback::token_of(&template));
    let msg = Message {
        request_type: "Create",
        url: &url,
        stack_id: STACK,
        request_id: "req-forward-1",
        physical: None,
        connection: id,
        role: &role,
        token: &token,
    }
    .text();
    let forwarder = Forwarder::new(&app.url("/v1/relay/aws-us-gov")).unwrap();
    let now = app.clock.now();
    // A relay whose key was rotated but not yet copied: retried later.
    let stale = forwarder
        .forward(b"an-old-relay-key-an-old-relay-key!!", &msg, now)
        .await;
    assert!(
        matches!(stale, Forwarded::Retry(ref m) if m.contains("401")),
        "{stale:?}"
    );
    assert_eq!(
        forwarder.forward(RELAY_KEY.as_bytes(), &msg, now).await,
        Forwarded::Handled
    );
    assert_eq!(receiver.answer()["Status"], "SUCCESS");
    assert_eq!(common::callback::get(&app, &t, id).await["status"], "connected");
    // Only https leaves this machine.
    assert!(Forwarder::new("http://main.example.com/v1/relay/aws-us-gov").is_err());
}

#[test]
fn the_relay_stack_lints_for_govcloud_and_china() {
    common::cfn_lint(
        &common::repo_path("infra/partition-relay.yaml"),
        &["us-gov-west-1", "cn-north-1"],
    );
    // The relay forwards to the intake the main template serves.
    let relay = std::fs::read_to_string(common::repo_path("infra/partition-relay.yaml")).unwrap();
    assert!(relay.contains("Binary: account-connect-relay"));
    let main = std::fs::read_to_string(common::repo_path("template.yaml")).unwrap();
    assert!(main.contains("RelayIntakeFunction:") && main.contains("AuthType: NONE"));
}
