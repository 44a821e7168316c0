//! State-change events against moto: the outbox delivered to an EventBridge
//! bus whose rule targets an SQS queue (a connect, then a re-check finding
//! drift), and a change stored while no dispatcher ran delivered exactly
//! once when one starts, on both stores.

use crate::common::{self, TestApp};
use crate::recheck_fleet::{drop_action, some_action};
use account_connect::config::Config;
use account_connect::events::Dispatcher;
use account_connect::recheck::{local, EnumerateOptions, Worker};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012"; // moto's account

async fn sdk() -> aws_config::SdkConfig {
    common::moto_endpoint();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// A fresh bus, a rule on it matching every event and an SQS queue as the
/// rule's target: the bus name and the queue URL.
async fn bus_to_queue() -> (String, String) {
    let conf = sdk().await;
    let (events, sqs) = (aws_sdk_eventbridge::Client::new(&conf), aws_sdk_sqs::Client::new(&conf));
    let name = format!("bus-{}", account_connect::ids::random_token(6));
    events.create_event_bus().name(&name).send().await.unwrap();
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name("all")
        .event_bus_name(&name)
        .event_pattern(json!({"source": [{"prefix": ""}]}).to_string())
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(arn)
        .build()
        .unwrap();
    events
        .put_targets()
        .rule("all")
        .event_bus_name(&name)
        .targets(target)
        .send()
        .await
        .unwrap();
    (name, url)
}

/// The EventBridge envelopes on the queue, waiting up to `wait` for
/// `want` of them (then reading until the queue is quiet).
async fn received(url: &str, want: usize, wait: Duration) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        for m in &messages {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if (out.len() >= want && messages.is_empty()) || Instant::now() > deadline {
            return out;
        }
    }
}

/// A manual connection for a fresh Spot account, connected to a fresh role
/// in moto: the connect's answer and the role's policies.
async fn connected(app: &TestApp, token: &str) -> (Value, String, Vec<String>) {
    let account = format!("act-{}", account_connect::ids::random_token(4));
    let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"},
        "awsAccountId": ACCOUNT, "method": "manual"});
    let (status, c) = app.create_connection(token, &body).await;
    assert_eq!(status, 201, "{c}");
    let iam = aws_sdk_iam::Client::new(&sdk().await);
    let (role, policies) = common::connection_role(&iam, &c).await;
    let (status, body) = app.connect_role(token, c["id"].as_str().unwrap(), &role).await;
    assert_eq!((status, body["health"].as_str()), (200, Some("healthy")), "{body}");
    (body, role, policies)
}

fn with_bus(config: Config, bus: &str) -> Config {
    Config {
        event_bus: Some(bus.to_owned()),
        ..config
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connect_and_a_drifted_recheck_reach_an_eventbridge_rule() {
    let (bus, queue) = bus_to_queue().await;
    let (app, state, _) = common::spawn_with_store(with_bus(common::test_config(), &bus)).await;
    let dispatcher = Dispatcher::for_services(&state).await.expect("a bus is set");
    let org = format!("org-{}", account_connect::ids::random_token(4));
    let token = common::token(&org, None);
    let (c, _, policies) = connected(&app, &token).await;
    let id = c["id"].as_str().unwrap();

    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 1);
    let got = received(&queue, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let e = &got[0];
    assert_eq!(
        (e["source"].as_str(), e["detail-type"].as_str()),
        (Some("account-connect"), Some("connection.connected")),
        "{e}"
    );
    let detail = &e["detail"];
    assert_eq!(detail["type"], "connection.connected", "{detail}");
    let at = time::OffsetDateTime::parse(
        detail["timestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    );
    assert!(at.is_ok(), "{detail}");
    // `data` is the API's view of the connection, with the sequence.
    let mut data = detail["data"].clone();
    let sequence = data
        .as_object_mut()
        .unwrap()
        .remove("sequence")
        .unwrap()
        .as_u64()
        .unwrap();
    let (_, now) = app.get_connection(&token, id).await;
    assert_eq!(data, now, "the event's view is the API's");
    assert_eq!(sequence, now["version"].as_u64().unwrap());

    // The customer drops an action from the role's policy: the re-check
    // finds the role degraded.
    let iam = aws_sdk_iam::Client::new(&sdk().await);
    drop_action(&iam, &policies[0], &some_action(&c)).await;
    let opts = EnumerateOptions::from_config(&state.config);
    let summary = local::run(&Worker::new(state.connections.clone()), &opts, 2).await;
    assert_eq!((summary.degraded, summary.changed), (1, 1), "{summary:?}");
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 1);
    let got = received(&queue, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let detail = &got[0]["detail"];
    assert_eq!(got[0]["detail-type"], "connection.health_changed", "{detail}");
    assert_eq!(
        (
            detail["data"]["id"].as_str(),
            detail["data"]["health"].as_str(),
            detail["data"]["previousHealth"].as_str()
        ),
        (Some(id), Some("degraded"), Some("healthy")),
        "{detail}"
    );
    assert!(detail["data"]["drift"]["missing"].is_object(), "{detail}");
    assert!(detail["data"]["sequence"].as_u64().unwrap() > sequence, "{detail}");
    // Nothing is left to deliver, and nothing is delivered twice.
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 0);
    assert!(received(&queue, 0, Duration::from_secs(1)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_stored_while_no_dispatcher_ran_is_delivered_once_when_one_starts() {
    let file = std::env::temp_dir().join(format!("events-{}.db", account_connect::ids::random_token(6)));
    let stores = [
        ("sqlite", format!("sqlite://{}", file.display())),
        ("dynamodb", common::dynamo_store_url().await),
    ];
    for (name, url) in stores {
        let (bus, queue) = bus_to_queue().await;
        // The first process has no bus: it stores the change and its event,
        // delivers nothing, and stops.
        let config = Config {
            store_url: url.clone(),
            ..common::test_config()
        };
        let (app, state, store) = common::spawn_with_store(config.clone()).await;
        assert!(Dispatcher::for_services(&state).await.is_none(), "{name}");
        let token = common::token("org-a", None);
        let (c, _, _) = connected(&app, &token).await;
        drop((app, state));
        let pending = store.undelivered(10).await.unwrap();
        assert_eq!(pending.len(), 1, "{name}: {pending:?}");
        assert!(received(&queue, 0, Duration::from_secs(1)).await.is_empty(), "{name}");

        // Another process on the same store, with the bus: its dispatcher
        // (the task `serve` runs) delivers the stored event.
        let later = account_connect::app::build(with_bus(config, &bus)).unwrap();
        let dispatcher = Dispatcher::for_services(&later).await.unwrap();
        let task = tokio::spawn(dispatcher.clone().run(Duration::from_millis(100)));
        let got = received(&queue, 1, Duration::from_secs(15)).await;
        task.abort();
        assert_eq!(got.len(), 1, "{name}: {got:#?}");
        assert_eq!(got[0]["detail-type"], "connection.connected", "{name}");
        assert_eq!(got[0]["detail"]["data"]["id"], c["id"], "{name}");
        assert_eq!(got[0]["detail"]["data"]["sequence"], c["version"], "{name}");
        // And once only: nothing is left, a further run sends nothing.
        assert!(store.undelivered(10).await.unwrap().is_empty(), "{name}");
        assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 0, "{name}");
        assert!(received(&queue, 0, Duration::from_secs(2)).await.is_empty(), "{name}");
    }
    let _ = std::fs::remove_file(&file);
}
