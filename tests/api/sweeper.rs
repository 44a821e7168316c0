//! The sweeper and the bus's independence, as they run in AWS, against moto:
//! the schedule's event to the dispatcher binary delivers an outbox item
//! whose stream batch was lost, and queues again a delivery whose queue
//! message was lost; a bus that refuses events delays the bus's copy only,
//! never the webhooks'.

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::{self, TestApp};
use crate::events::{
    attempt_queue, bus_named_to_queue, bus_to_queue, connected, received, sdk, stream_event, table_with_stream,
};
use crate::webhooks_aws::sqs_event;
use account_connect::config::Config;
use account_connect::events::{lambda, Dispatcher};
use account_connect::services::Services;
use account_connect::store::DynStore;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Past the sweeper's wait (`sweep_after_secs`, 300 by default).
const LATER: i64 = 301;

/// The schedule's event, as EventBridge hands it to the function.
fn schedule_event() -> Value {
    json!({"version": "0", "id": "c1d2e3f4-0000-4000-8000-000000000000", "detail-type": "Scheduled Event",
           "source": "aws.events", "account": "123456789012", "time": "2030-01-01T00:00:00Z",
           "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {}})
}

async fn sweep(dispatcher: &Dispatcher) -> Value {
    lambda::handle_any(dispatcher, schedule_event()).await.unwrap()
}

/// A webhook of `org-a` on a fresh receiver: the app, its services and
/// store, the receiver, the token and the webhook's id.
async fn with_webhook(config: Config) -> (TestApp, Services, DynStore, Receiver, String, String) {
    let rx = Receiver::start(Behaviour::Accept).await;
    let config = Config {
        webhook_allow_hosts: vec![rx.authority.clone()],
        ..config
    };
    let (app, state, store) = common::spawn_with_store(config).await;
    let token = common::token("org-a", None);
    let (status, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().unwrap().to_owned();
    (app, state, store, rx, token, id)
}

/// The stream's records not handed over yet, as the event source mapping
/// hands them.
fn new_records(stream: &str, seen: &mut HashSet<String>) -> Value {
    let mut event: StreamEvent = stream_event(stream);
    event.records.retain(|r| seen.insert(r.event_id.clone()));
    serde_json::to_value(event).unwrap()
}

/// The attempt queue's messages to the function, until the receiver has
/// `want` requests.
async fn attempts(dispatcher: &Dispatcher, queue: &str, rx: &Receiver, want: usize) {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    for _ in 0..5 {
        let batch = sqs_event(&sqs, queue, Duration::from_secs(5)).await;
        let answer = lambda::handle_any(dispatcher, batch).await.unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        if rx.got().len() >= want {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweeper_delivers_what_the_stream_dropped_and_queues_again_what_the_queue_lost() {
    let (bus, bus_queue) = bus_to_queue().await;
    let queue = attempt_queue(&aws_sdk_sqs::Client::new(&sdk().await)).await;
    let config = Config {
        store_url: common::dynamo_store_url().await,
        event_bus: Some(bus),
        webhook_queue_url: Some(queue.clone()),
        ..common::test_config()
    };
    let (app, state, store, rx, token, hook) = with_webhook(config).await;
    // A change whose stream batch never reaches the dispatcher (dead-lettered).
    let (c, _, _) = connected(&app, &token).await;
    let dispatcher = Dispatcher::for_services(&state).await;

    // Too young: the stream may still be on it.
    let swept = sweep(&dispatcher).await;
    assert_eq!(
        (swept["late"].as_u64(), swept["requeued"].as_u64()),
        (Some(0), Some(0)),
        "{swept}"
    );
    assert_eq!(store.undelivered(10).await.unwrap().len(), 1);

    // Late: fanned out and put on the bus.
    app.clock.advance(LATER);
    let swept = sweep(&dispatcher).await;
    assert_eq!(
        swept,
        json!({"late": 1, "delivered": 1, "heldForBus": 0, "requeued": 0})
    );
    let got = received(&bus_queue, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["detail"]["data"]["id"], c["id"]);
    assert!(store.undelivered(10).await.unwrap().is_empty(), "marked delivered");
    let (_, page) = app.webhook_deliveries(&token, &hook, "").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["state"], "pending", "{page}");

    // The stream's batch with the new delivery is lost too: nothing queues
    // its first attempt, and once it is overdue the sweeper does.
    app.clock.advance(LATER);
    let swept = sweep(&dispatcher).await;
    assert_eq!(
        swept,
        json!({"late": 0, "delivered": 0, "heldForBus": 0, "requeued": 1})
    );
    attempts(&dispatcher, &queue, &rx, 1).await;
    let got = rx.got();
    assert_eq!(got.len(), 1);
    let sequence = c["version"].as_u64().unwrap();
    assert_eq!(got[0].id(), format!("msg_{}_{sequence}", c["id"].as_str().unwrap()));
    assert_eq!(got[0].json()["type"], "connection.connected");
    let (_, page) = app.webhook_deliveries(&token, &hook, "").await;
    assert_eq!(page["items"][0]["state"], "succeeded", "{page}");

    // Nothing is left: a later sweep finds nothing, queues nothing.
    app.clock.advance(LATER);
    let swept = sweep(&dispatcher).await;
    assert_eq!(
        swept,
        json!({"late": 0, "delivered": 0, "heldForBus": 0, "requeued": 0})
    );
    assert!(received(&bus_queue, 0, Duration::from_secs(1)).await.is_empty());
}

/// A bus that refuses (it does not exist yet, as a deleted bus or a denied
/// PutEvents would), then a bus that takes: the stream's handler, the queue
/// and the sweeper in turn. Answers the app, the token, the webhook and
/// the connection.
async fn through_a_bus_outage() -> (TestApp, Services, String, String, Value, Receiver) {
    let (url, stream) = table_with_stream().await;
    let bus = format!("bus-{}", account_connect::ids::random_token(6));
    let queue = attempt_queue(&aws_sdk_sqs::Client::new(&sdk().await)).await;
    let config = Config {
        store_url: url,
        event_bus: Some(bus.clone()),
        webhook_queue_url: Some(queue.clone()),
        ..common::test_config()
    };
    let (app, state, store, rx, token, hook) = with_webhook(config).await;
    let (c, _, _) = connected(&app, &token).await;
    let dispatcher = Dispatcher::for_services(&state).await;
    let mut seen = HashSet::new();

    // The outbox insert: the bus refuses it; the webhooks get it all the
    // same, and the batch succeeds (a failed batch would hold up the shard).
    let answer = lambda::handle_any(&dispatcher, new_records(&stream, &mut seen))
        .await
        .unwrap();
    assert_eq!(answer, json!({"delivered": 0, "heldForBus": 1}));
    assert_eq!(store.undelivered(10).await.unwrap().len(), 1, "kept for the bus");
    // The delivery's insert: queued, sent.
    let answer = lambda::handle_any(&dispatcher, new_records(&stream, &mut seen))
        .await
        .unwrap();
    assert_eq!(answer, json!({"delivered": 0, "heldForBus": 0}));
    attempts(&dispatcher, &queue, &rx, 1).await;
    let got = rx.got();
    assert_eq!(got.len(), 1, "the webhook got the event while the bus refused it");
    assert_eq!(
        (got[0].json()["type"].as_str(), &got[0].json()["data"]["id"]),
        (Some("connection.connected"), &c["id"])
    );

    // The bus is back: the sweeper puts the event on it.
    let (_, bus_queue) = bus_named_to_queue(bus).await;
    app.clock.advance(LATER);
    let swept = sweep(&dispatcher).await;
    assert_eq!(
        swept,
        json!({"late": 1, "delivered": 1, "heldForBus": 0, "requeued": 0})
    );
    let on_bus = received(&bus_queue, 1, Duration::from_secs(10)).await;
    assert_eq!(on_bus.len(), 1, "{on_bus:#?}");
    assert_eq!(on_bus[0]["detail"]["data"]["id"], c["id"]);
    assert!(store.undelivered(10).await.unwrap().is_empty());
    // The sweep's fan-out writes deliveries to the table; in AWS the stream
    // hands them over next.
    lambda::handle_any(&dispatcher, new_records(&stream, &mut seen))
        .await
        .unwrap();
    (app, state, token, hook, c, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_get_events_while_the_bus_refuses_them_and_the_bus_gets_them_from_the_sweeper() {
    through_a_bus_outage().await;
}

/// The sweep fans the held item out again: a webhook that has its delivery
/// gets no second one (a delivery is one per webhook and message).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_swept_for_the_bus_writes_no_second_delivery() {
    let (app, state, token, hook, _, rx) = through_a_bus_outage().await;
    let (_, page) = app.webhook_deliveries(&token, &hook, "").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one delivery of the message: {page}");
    let dispatcher = Dispatcher::for_services(&state).await;
    app.clock.advance(LATER);
    let swept = sweep(&dispatcher).await;
    assert_eq!(swept["requeued"], 0, "{swept}");
    assert_eq!(rx.got().len(), 1);
}

#[test]
fn the_template_runs_the_sweeper_on_a_schedule_with_only_what_it_needs() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let r = &t["Resources"];
    let f = &r["SweeperFunction"];
    let binary = &f["Metadata"]["BuildProperties"]["Binary"];
    assert_eq!(
        binary,
        &r["DispatcherFunction"]["Metadata"]["BuildProperties"]["Binary"]
    );
    let p = &f["Properties"];
    let schedule = &p["Events"]["Schedule"];
    assert_eq!(schedule["Type"], "Schedule");
    assert_eq!(schedule["Properties"]["Schedule"], json!({"Ref": "SweepSchedule"}));
    assert_eq!(t["Parameters"]["SweepSchedule"]["Default"], "rate(5 minutes)");
    assert_eq!(t["Parameters"]["SweepAfterSecs"]["Default"], 300);
    // Under the schedule's period, so runs do not overlap; not retried.
    assert!(p["Timeout"].as_u64().unwrap() < 300, "{p}");
    assert_eq!(p["EventInvokeConfig"]["MaximumRetryAttempts"], 0);
    let env = &p["Environment"]["Variables"];
    assert_eq!(
        env["ACCOUNT_CONNECT_SWEEP_AFTER_SECS"],
        json!({"Ref": "SweepAfterSecs"})
    );
    assert_eq!(
        env["ACCOUNT_CONNECT_WEBHOOK_QUEUE_URL"],
        json!({"Ref": "WebhookAttemptQueue"})
    );
    assert_eq!(env["ACCOUNT_CONNECT_EVENT_BUS"], json!({"Ref": "EventBus"}));
    // Its grants: the index it reads, the table's writes of a fan-out and
    // a mark, the attempt queue, the bus. Nothing else.
    let statements = p["Policies"][0]["Statement"].as_array().unwrap();
    let mut granted: Vec<(String, String)> = Vec::new();
    for st in statements {
        assert_eq!(st["Effect"], "Allow", "{st}");
        let actions = match &st["Action"] {
            Value::String(a) => vec![a.clone()],
            a => a
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect(),
        };
        for a in actions {
            granted.push((a, st["Resource"].to_string()));
        }
    }
    granted.sort();
    let on = |a: &str| {
        granted
            .iter()
            .filter(|(g, _)| g == a)
            .map(|(_, r)| r.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        on("dynamodb:Query"),
        [
            json!({"Fn::GetAtt": ["ConnectionsTable", "Arn"]}).to_string(),
            json!({"Fn::Sub": "${ConnectionsTable.Arn}/index/gsi2"}).to_string()
        ]
    );
    assert_eq!(
        on("sqs:SendMessage"),
        [json!({"Fn::GetAtt": ["WebhookAttemptQueue", "Arn"]}).to_string()]
    );
    let actions: Vec<&str> = granted.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "events:PutEvents",
            "kms:Decrypt",
            "sqs:SendMessage"
        ]
    );
    // Signing a re-sent delivery opens the webhook's sealed secret: that key only.
    assert_eq!(
        on("kms:Decrypt"),
        [json!({"Fn::GetAtt": ["WebhookSecretsKey", "Arn"]}).to_string()]
    );
    let alarm = &r["SweeperErrorsAlarm"]["Properties"];
    assert_eq!(alarm["Dimensions"][0]["Value"], json!({"Ref": "SweeperFunction"}));
}
