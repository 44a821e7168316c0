//! State-change events against moto: the outbox delivered to an EventBridge
//! bus whose rule targets an SQS queue (a connect, then a re-check finding
//! drift), a change stored while no dispatcher ran delivered exactly once
//! when one starts, on both stores, and the dispatcher function fed the
//! table's stream as Lambda would.

use crate::common::{self, drop_action, some_action, TestApp};
use account_connect::config::Config;
use account_connect::domain::ChangeType;
use account_connect::events::{lambda, Dispatcher};
use account_connect::recheck::{local, EnumerateOptions, Worker};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012"; // moto's account

pub(crate) async fn sdk() -> aws_config::SdkConfig {
    common::moto_endpoint();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// A fresh bus, a rule on it matching every event and an SQS queue as the
/// rule's target: the bus name and the queue URL.
pub(crate) async fn bus_to_queue() -> (String, String) {
    bus_named_to_queue(format!("bus-{}", account_connect::ids::random_token(6))).await
}

pub(crate) async fn bus_named_to_queue(name: String) -> (String, String) {
    let conf = sdk().await;
    let (events, sqs) = (aws_sdk_eventbridge::Client::new(&conf), aws_sdk_sqs::Client::new(&conf));
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

/// Messages as an SQS event source mapping hands them over, from the queue
/// named `queue` (its ARN is the event's `eventSourceARN`).
pub(crate) fn sqs_records(messages: &[aws_sdk_sqs::types::Message], queue: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": {}, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
                "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

/// A fresh webhook attempt queue on moto (its URL).
pub(crate) async fn attempt_queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.create_queue()
        .queue_name(format!("attempts-{}", account_connect::ids::random_token(6)))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Up to ten messages of the queue (waiting a second for one), deleted.
pub(crate) async fn take_messages(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
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
        let handle = m.receipt_handle().unwrap();
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(handle)
            .send()
            .await
            .unwrap();
    }
    messages
}

/// The EventBridge envelopes on the queue, waiting up to `wait` for
/// `want` of them (then reading until the queue is quiet).
pub(crate) async fn received(url: &str, want: usize, wait: Duration) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let messages = take_messages(&sqs, url).await;
        for m in &messages {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
        if (out.len() >= want && messages.is_empty()) || Instant::now() > deadline {
            return out;
        }
    }
}

/// A manual connection for a fresh Spot account, connected to a fresh role
/// in moto: the connect's answer and the role's policies.
pub(crate) async fn connected(app: &TestApp, token: &str) -> (Value, String, Vec<String>) {
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
    let dispatcher = Dispatcher::for_services(&state).await;
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
    let health_sequence = detail["data"]["sequence"].as_u64().unwrap();
    // Nothing is left to deliver, and nothing is delivered twice.
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 0);
    assert!(received(&queue, 0, Duration::from_secs(1)).await.is_empty());

    // A disconnect is the last event.
    assert_eq!(app.disconnect(&token, id).await.0, 200);
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 1);
    let got = received(&queue, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let data = &got[0]["detail"]["data"];
    assert_eq!(got[0]["detail-type"], "connection.disconnected", "{data}");
    assert_eq!(data["status"], "disconnected", "{data}");
    assert!(data["sequence"].as_u64().unwrap() > health_sequence, "{data}");
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
        // The first process runs no dispatcher (as one killed before it
        // ran): it stores the change and its event, delivers nothing, and stops.
        let config = Config {
            store_url: url.clone(),
            ..common::test_config()
        };
        let (app, state, store) = common::spawn_with_store(config.clone()).await;
        let token = common::token("org-a", None);
        let (c, _, _) = connected(&app, &token).await;
        drop((app, state));
        let pending = store.undelivered(10).await.unwrap();
        assert_eq!(pending.len(), 1, "{name}: {pending:?}");
        assert!(received(&queue, 0, Duration::from_secs(1)).await.is_empty(), "{name}");

        // Another process on the same store, with the bus: its dispatcher
        // (the task `serve` runs) delivers the stored event.
        let later = account_connect::app::build(with_bus(config, &bus)).unwrap();
        let dispatcher = Dispatcher::for_services(&later).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_the_bus_refuses_stays_in_the_outbox_until_the_bus_takes_it() {
    // The bus does not exist yet: EventBridge refuses the entry.
    let bus = format!("bus-{}", account_connect::ids::random_token(6));
    let (app, state, store) = common::spawn_with_store(with_bus(common::test_config(), &bus)).await;
    let dispatcher = Dispatcher::for_services(&state).await;
    let (c, _, _) = connected(&app, &common::token("org-a", None)).await;
    let refused = dispatcher.dispatch_pending().await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(store.undelivered(10).await.unwrap().len(), 1, "kept for the next run");
    let (_, queue) = bus_named_to_queue(bus).await;
    assert_eq!(dispatcher.dispatch_pending().await.unwrap(), 1);
    let got = received(&queue, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["detail"]["data"]["id"], c["id"]);
    assert!(store.undelivered(10).await.unwrap().is_empty());
}

/// A fresh table with its stream on: the store URL and the stream's ARN.
pub(crate) async fn table_with_stream() -> (String, String) {
    use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
    let url = common::dynamo_store_url().await;
    let table = url.strip_prefix("dynamodb://").unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let spec = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .unwrap();
    ddb.update_table()
        .table_name(table)
        .stream_specification(spec)
        .send()
        .await
        .unwrap();
    let stream = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .unwrap();
    (url, stream)
}

/// The stream's records as Lambda's event source mapping hands them over.
pub(crate) fn stream_event(stream: &str) -> StreamEvent {
    let (ok, out) = common::run_python("tests/tools/stream_event.py", &[stream, &common::moto_endpoint()], "");
    assert!(ok, "{out}");
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dispatcher_function_delivers_the_outbox_items_of_a_stream_batch() {
    let (url, stream) = table_with_stream().await;
    let (bus, queue) = bus_to_queue().await;
    let config = Config {
        store_url: url,
        ..with_bus(common::test_config(), &bus)
    };
    let (app, state, store) = common::spawn_with_store(config).await;
    let (c, _, _) = connected(&app, &common::token("org-a", None)).await;

    let event = stream_event(&stream);
    assert!(
        event.records.len() > 4,
        "the connection, its events, claims and holds too: {event:?}"
    );
    let items = lambda::outbox_items(&event).unwrap();
    assert_eq!(items.len(), 1, "only the outbox insert: {items:?}");
    assert_eq!(
        (items[0].kind, items[0].connection_id.as_str()),
        (ChangeType::Connected, c["id"].as_str().unwrap())
    );

    let dispatcher = Dispatcher::for_services(&state).await;
    assert_eq!(lambda::handle(&dispatcher, event).await.unwrap(), 1);
    let got = received(&queue, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        (got[0]["detail-type"].as_str(), &got[0]["detail"]["data"]["id"]),
        (Some("connection.connected"), &c["id"])
    );
    assert!(store.undelivered(10).await.unwrap().is_empty(), "marked delivered");
}

#[test]
fn the_template_feeds_the_dispatcher_function_the_outbox_inserts_of_the_tables_stream() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let r = &t["Resources"];
    let table = &r["ConnectionsTable"]["Properties"];
    assert!(
        matches!(
            table["StreamSpecification"]["StreamViewType"].as_str(),
            Some("NEW_IMAGE" | "NEW_AND_OLD_IMAGES")
        ),
        "the dispatcher reads the new image: {table}"
    );
    let f = &r["DispatcherFunction"];
    let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
    let cargo = std::fs::read_to_string(common::repo_path("Cargo.toml")).unwrap();
    assert!(
        cargo.contains(&format!("name = \"{binary}\"")),
        "{binary} is a binary of the crate"
    );
    let env = &f["Properties"]["Environment"]["Variables"];
    assert_eq!(env["ACCOUNT_CONNECT_EVENT_BUS"], json!({"Ref": "EventBus"}));
    assert_eq!(env["ACCOUNT_CONNECT_EVENT_SOURCE"], json!({"Ref": "EventSource"}));
    assert_eq!(t["Parameters"]["EventSource"]["Default"], "account-connect");
    let statements = f["Properties"]["Policies"][0]["Statement"].to_string();
    assert!(
        statements.contains("events:PutEvents") && statements.contains("dynamodb:UpdateItem"),
        "{statements}"
    );
    let source = &f["Properties"]["Events"]["Outbox"]["Properties"];
    assert_eq!(
        source["Stream"],
        json!({"Fn::GetAtt": ["ConnectionsTable", "StreamArn"]})
    );
    assert_eq!(
        source["DestinationConfig"]["OnFailure"]["Destination"],
        json!({"Fn::GetAtt": ["DispatcherDeadLetterQueue", "Arn"]})
    );
    // The filter passes what `lambda::outbox_items` keeps: inserts of OUTBOX# sort keys.
    let pattern: Value =
        serde_json::from_str(source["FilterCriteria"]["Filters"][0]["Pattern"].as_str().unwrap()).unwrap();
    assert_eq!(pattern["eventName"], json!(["INSERT"]), "{pattern}");
    assert_eq!(
        pattern["dynamodb"]["Keys"]["sk"]["S"],
        json!([{"prefix": "OUTBOX#"}]),
        "{pattern}"
    );
    // And inserts of DELIVERY# (webhook deliveries, queued for their attempts).
    let deliveries: Value =
        serde_json::from_str(source["FilterCriteria"]["Filters"][1]["Pattern"].as_str().unwrap()).unwrap();
    assert_eq!(
        deliveries["dynamodb"]["Keys"]["sk"]["S"],
        json!([{"prefix": "DELIVERY#"}])
    );
    // And deliveries a partner made pending again: the write that resends
    // one alone carries `requeued` (what `lambda::queued_deliveries` keeps).
    let resends: Value =
        serde_json::from_str(source["FilterCriteria"]["Filters"][2]["Pattern"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&resends["eventName"], &resends["dynamodb"]["Keys"]["sk"]["S"]),
        (&json!(["MODIFY"]), &json!([{"prefix": "DELIVERY#"}])),
        "{resends}"
    );
    assert_eq!(
        resends["dynamodb"]["NewImage"]["requeued"],
        json!({"BOOL": [true]}),
        "{resends}"
    );
    assert_eq!(
        env["ACCOUNT_CONNECT_WEBHOOK_QUEUE_URL"],
        json!({"Ref": "WebhookAttemptQueue"})
    );
    let attempts = &f["Properties"]["Events"]["Attempts"];
    assert_eq!(attempts["Type"], "SQS");
    assert_eq!(
        attempts["Properties"]["Queue"],
        json!({"Fn::GetAtt": ["WebhookAttemptQueue", "Arn"]})
    );
    assert_eq!(
        attempts["Properties"]["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert!(statements.contains("sqs:SendMessage"), "{statements}");
    for alarm in [
        "DispatcherDeadLetterAlarm",
        "DispatcherIteratorAgeAlarm",
        "WebhookAttemptDeadLetterAlarm",
    ] {
        assert_eq!(r[alarm]["Type"], "AWS::CloudWatch::Alarm", "{alarm}");
    }
}
