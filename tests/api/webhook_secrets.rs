//! Webhook signing secrets at rest, on SQLite (a key file beside the
//! database) and DynamoDB (a KMS key on moto): what a read of the table
//! alone finds holds neither the current secret nor the one a rotation
//! keeps signing, deliveries still verify with the secret the partner
//! holds, and a record of the last release (its secret in plain text) is
//! read and signs, and is sealed when next written.

use crate::common::receiver::{verify_independently, Behaviour, Receiver};
use crate::common::{self, TestApp};
use crate::webhooks::allowing;
use account_connect::config::Config;
use account_connect::domain::Webhook;
use account_connect::events::Dispatcher;
use account_connect::store::DynStore;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

/// A fresh store of each kind that a test can read behind the service's
/// back: an SQLite file, and a DynamoDB table on moto.
async fn stores() -> Vec<(&'static str, String)> {
    let dir = std::env::temp_dir().join(format!("hooks-{}", account_connect::ids::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    vec![
        ("sqlite", format!("sqlite://{}", dir.join("hooks.db").display())),
        ("dynamodb", common::dynamo_store_url().await),
    ]
}

/// Every stored byte of the store's webhooks, as text: the SQLite file
/// whole (and its write-ahead log), or every item of the table.
async fn raw(url: &str) -> String {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut all = Vec::new();
        for p in [path.to_owned(), format!("{path}-wal")] {
            all.extend(std::fs::read(p).unwrap_or_default());
        }
        return String::from_utf8_lossy(&all).into_owned();
    }
    let table = url.strip_prefix("dynamodb://").unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&crate::events::sdk().await);
    let items = ddb.scan().table_name(table).send().await.unwrap();
    format!("{:?}", items.items())
}

/// The stored `data` of the tenant's webhook, parsed.
async fn stored_record(url: &str, org: &str, id: &str) -> Value {
    let data: String = if let Some(path) = url.strip_prefix("sqlite://") {
        let db = rusqlite::Connection::open(path).unwrap();
        db.query_row(
            "SELECT data FROM webhooks WHERE org = ?1 AND id = ?2",
            rusqlite::params![org, id],
            |r| r.get(0),
        )
        .unwrap()
    } else {
        let table = url.strip_prefix("dynamodb://").unwrap();
        let ddb = aws_sdk_dynamodb::Client::new(&crate::events::sdk().await);
        let key = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
        let item = ddb
            .get_item()
            .table_name(table)
            .key("pk", key(format!("HOOKS#{org}")))
            .key("sk", key(format!("HOOK#{id}")))
            .send()
            .await
            .unwrap();
        item.item().unwrap()["data"].as_s().unwrap().clone()
    };
    serde_json::from_str(&data).unwrap()
}

/// The forms a secret could be found in: `whsec_…`, its base64 alone, and
/// its bytes as hex.
fn forms(secret: &str) -> Vec<String> {
    let b64 = secret.strip_prefix("whsec_").unwrap().to_owned();
    let bytes = base64::engine::general_purpose::STANDARD.decode(&b64).unwrap();
    vec![secret.to_owned(), b64, hex::encode(bytes)]
}

fn assert_hides(name: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        for form in forms(s) {
            assert!(
                !text.contains(&form),
                "{name}: the stored bytes show a secret as {form}"
            );
        }
    }
}

async fn running(url: &str, rx: &Receiver) -> (TestApp, DynStore) {
    let config = Config {
        store_url: url.to_owned(),
        ..allowing(&[&rx.authority])
    };
    let (app, state, store) = common::spawn_with_store(config).await;
    let d = Dispatcher::for_services(&state).await;
    tokio::spawn(d.run(Duration::from_millis(100)));
    (app, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_secrets_are_stored_sealed_and_deliveries_still_verify() {
    for (name, url) in stores().await {
        let rx = Receiver::start(Behaviour::Accept).await;
        let (app, _) = running(&url, &rx).await;
        let token = common::token("org-a", None);
        let (status, hook) = app.create_webhook(&token, &json!({"url": rx.url})).await;
        assert_eq!(status, 201, "{name}: {hook}");
        let id = hook["id"].as_str().unwrap();
        let old = hook["secret"].as_str().unwrap().to_owned();
        let (status, rotated) = app.rotate_webhook_secret(&token, id).await;
        assert_eq!(status, 200, "{name}: {rotated}");
        let new = rotated["secret"].as_str().unwrap().to_owned();

        let (status, queued) = app.test_webhook(&token, id).await;
        assert_eq!(status, 202, "{name}: {queued}");
        let got = rx.wait_for(1, Duration::from_secs(15)).await;
        assert_eq!(got.len(), 1, "{name}");
        // Both secrets sign (the old one until it expires); the partner's
        // copies verify what was sent.
        assert_eq!(verify_independently(&new, &got), vec![json!(true)], "{name}");
        assert_eq!(verify_independently(&old, &got), vec![json!(true)], "{name}");

        crate::webhooks::deliveries_after(&app, &token, id, 1).await;
        assert_hides(name, &raw(&url).await, &[&old, &new]);
        let record = stored_record(&url, "org-a", id).await;
        let source = if name == "sqlite" { "file" } else { "kms" };
        assert_eq!(record["sealedSecrets"]["keySource"], source, "{name}: {record}");
        assert!(record.get("secret").is_none(), "{name}: {record}");
        assert!(record.get("oldSecrets").is_none(), "{name}: {record}");
        if let Some(path) = url.strip_prefix("sqlite://") {
            use std::os::unix::fs::PermissionsExt;
            let key = std::fs::metadata(format!("{path}.secrets-key")).expect("the key file beside the database");
            assert_eq!(key.permissions().mode() & 0o777, 0o600, "readable by its owner only");
        }
    }
}

/// Writes the webhook as the last release did: `data` its JSON, the secret
/// in plain text.
async fn write_plain(url: &str, h: &Webhook) {
    let data = serde_json::to_string(h).unwrap();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute(
            "INSERT INTO webhooks (org, id, created_at, version, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![h.org, h.id.as_str(), h.created_at, h.version as i64, data],
        )
        .unwrap();
        return;
    }
    let table = url.strip_prefix("dynamodb://").unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&crate::events::sdk().await);
    let s = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
    ddb.put_item()
        .table_name(table)
        .item("pk", s(format!("HOOKS#{}", h.org)))
        .item("sk", s(format!("HOOK#{}", h.id.as_str())))
        .item(
            "version",
            aws_sdk_dynamodb::types::AttributeValue::N(h.version.to_string()),
        )
        .item("data", s(data))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plain_record_of_the_last_release_signs_and_is_sealed_when_next_written() {
    for (name, url) in stores().await {
        // The first attempt fails: the sender records it on the webhook,
        // which rewrites the record.
        let rx = Receiver::start(Behaviour::FailFirst(1)).await;
        let (app, store) = running(&url, &rx).await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let h = Webhook::new("org-a", "tester", rx.url.parse().unwrap(), None, None, now);
        let secret = h.secret.expose().to_owned();
        write_plain(&url, &h).await;
        assert_eq!(
            store.get_webhook("org-a", &h.id).await.unwrap(),
            Some(h.clone()),
            "{name}"
        );

        let token = common::token("org-a", None);
        let (status, queued) = app.test_webhook(&token, h.id.as_str()).await;
        assert_eq!(status, 202, "{name}: {queued}");
        let got = rx.wait_for(1, Duration::from_secs(15)).await;
        assert_eq!(verify_independently(&secret, &got), vec![json!(true)], "{name}");

        // The failed attempt's record rewrote the webhook: sealed now, the
        // same secret.
        let mut record = stored_record(&url, "org-a", h.id.as_str()).await;
        for _ in 0..100 {
            if record.get("sealedSecrets").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            record = stored_record(&url, "org-a", h.id.as_str()).await;
        }
        assert!(record.get("sealedSecrets").is_some(), "{name}: {record}");
        assert_eq!(record["consecutiveFailures"], 1, "{name}: {record}");
        assert_hides(name, &record.to_string(), &[&secret]);
        let read = store.get_webhook("org-a", &h.id).await.unwrap().unwrap();
        assert_eq!(read.secret.expose(), secret, "{name}");
    }
}

#[test]
fn the_template_lets_only_the_functions_that_handle_webhooks_use_the_secrets_key() {
    let (ok, out) = common::run_python("tests/tools/template_json.py", &["template.yaml"], "");
    assert!(ok, "{out}");
    let t: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let r = t["Resources"].as_object().unwrap();
    let key = json!({"Fn::GetAtt": ["WebhookSecretsKey", "Arn"]});
    let mut told: Vec<&str> = r
        .iter()
        .filter(|(_, res)| res["Properties"]["Environment"]["Variables"]["ACCOUNT_CONNECT_SECRETS_KMS_KEY"] == key)
        .map(|(name, _)| name.as_str())
        .collect();
    told.sort();
    assert_eq!(told, ["ApiFunction", "DispatcherFunction", "SweeperFunction"]);
    let k = &r["WebhookSecretsKey"];
    assert_eq!(k["Type"], "AWS::KMS::Key");
    assert_eq!(k["DeletionPolicy"], "Retain", "without it no stored secret opens");
    // Who may use it: the functions whose IAM policies grant it, on this
    // key only.
    let mut users: Vec<(String, Value)> = Vec::new();
    for (name, res) in r {
        let policies = res["Properties"]["Policies"].to_string();
        if !policies.contains("kms:") {
            continue;
        }
        for s in res["Properties"]["Policies"][0]["Statement"].as_array().unwrap() {
            if !s["Action"].to_string().contains("kms:") {
                continue;
            }
            assert_eq!(s["Resource"], key, "{name}: {s}");
            users.push((name.clone(), s["Action"].clone()));
        }
    }
    users.sort_by(|a, b| a.0.cmp(&b.0));
    let both = json!(["kms:GenerateDataKey", "kms:Decrypt"]);
    assert_eq!(
        users,
        [
            ("ApiFunction".to_owned(), both.clone()),
            ("DispatcherFunction".to_owned(), both),
            ("SweeperFunction".to_owned(), json!(["kms:Decrypt"])),
        ]
    );
}
