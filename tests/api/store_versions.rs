//! Which release wrote what, and which runs: the SQLite file of the last
//! release without schema versions opens migrated with every row it had;
//! a file a newer release migrated is refused, untouched, in words (by the
//! store and by `serve`); DynamoDB records carry their format (`fv`), and an
//! old record is rewritten in the new format only when it changes; `/health`,
//! `--version` and the server's log lines name the version and the commit.

use crate::common::{self, server::Server};
use crate::fixtures::attr_json::{item_from_json, scan};
use crate::fixtures::replay::{remove_copy, sets, snapshot, sqlite_copy};
use account_connect::store::{OpenError, SchemaError, StoreError};
use serde_json::Value;

const COMMIT: &str = env!("ACCOUNT_CONNECT_COMMIT");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The sets written before schema versions (user_version 0): the last landed release's.
fn unversioned_sets() -> Vec<std::path::PathBuf> {
    let old: Vec<_> = sets()
        .into_iter()
        .filter(|set| {
            let db = rusqlite::Connection::open(set.join("sqlite/store.db")).unwrap();
            db.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap() == 0
        })
        .collect();
    assert!(!old.is_empty(), "the last landed release's set is kept");
    old
}

fn user_version(path: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(path).unwrap();
    db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn a_database_of_the_last_landed_release_opens_migrated_with_every_row() {
    let aws = account_connect::app::aws_configs();
    for set in unversioned_sets() {
        let (url, path) = sqlite_copy(&set);
        let before = snapshot(&url).await;
        let store = account_connect::store::open(&url, &aws).unwrap();
        assert_eq!(user_version(&path), account_connect::store::sqlite_schema_version());
        let after = snapshot(&url).await;
        let lost: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
        assert!(lost.is_empty(), "{}: {lost:?}", set.display());
        drop(store);
        // Opened again: nothing left to migrate, nothing changes.
        account_connect::store::open(&url, &aws).unwrap();
        assert_eq!(snapshot(&url).await, after);
        remove_copy(&path);
    }
}

#[tokio::test]
async fn a_database_of_a_newer_release_is_refused_untouched_and_serve_says_why() {
    let set = sets().pop().unwrap();
    let (url, path) = sqlite_copy(&set);
    let newer = account_connect::store::sqlite_schema_version() + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    match account_connect::store::open(&url, &account_connect::app::aws_configs()) {
        Err(OpenError::SqliteSchema {
            source: SchemaError::Newer { found, known },
            ..
        }) => assert_eq!((found, known), (newer, newer - 1)),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer database was opened"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is untouched");
    // `serve` on it: refused at start, in words, exit status 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_account-connect"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("ACCOUNT_CONNECT_STORE", &url)
        .env(
            "ACCOUNT_CONNECT_JWT_SECRET",
            std::str::from_utf8(common::TEST_SECRET).unwrap(),
        )
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("schema is version {newer}, from a newer release")) && err.contains("left untouched"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "still untouched");
    remove_copy(&path);
}

fn fv(item: &Value) -> Option<&str> {
    item["fv"]["N"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_records_of_the_last_release_are_read_and_rewritten_only_when_they_change() {
    let set = unversioned_sets().pop().unwrap();
    let items: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(set.join("dynamodb/items.json")).unwrap()).unwrap();
    assert!(items.iter().all(|i| fv(i).is_none()), "the last release wrote no fv");
    let url = common::dynamo_store_url().await;
    let table = url.strip_prefix("dynamodb://").unwrap().to_owned();
    let ddb = aws_sdk_dynamodb::Client::new(&crate::events::sdk().await);
    for item in &items {
        ddb.put_item()
            .table_name(&table)
            .set_item(Some(item_from_json(item)))
            .send()
            .await
            .unwrap();
    }
    let m: crate::fixtures::Manifest =
        serde_json::from_str(&std::fs::read_to_string(set.join("dynamodb/manifest.json")).unwrap()).unwrap();
    let (app, _, store) = common::spawn_with_store(account_connect::config::Config {
        store_url: url.clone(),
        ..common::test_config()
    })
    .await;
    let token = common::token(&m.tenant, None);
    let (changed, untouched) = (&m.connections["healthy"], &m.connections["degraded"]);
    let (status, rotated) = app.rotate_external_id(&token, changed).await;
    assert_eq!(status, 200, "{rotated}");
    let after: Vec<Value> = scan(&ddb, &table)
        .await
        .iter()
        .map(crate::fixtures::attr_json::item_to_json)
        .collect();
    let conn_item = |id: &str| {
        after
            .iter()
            .find(|i| i["pk"]["S"] == format!("CONN#{id}") && i["sk"]["S"] == "CONN")
            .unwrap()
            .clone()
    };
    let current = account_connect::store::FORMAT_VERSION.to_string();
    assert_eq!(
        fv(&conn_item(changed)),
        Some(current.as_str()),
        "changed: rewritten in this format"
    );
    assert_eq!(
        fv(&conn_item(untouched)),
        None,
        "untouched: as the last release wrote it"
    );
    let fresh_events = after
        .iter()
        .filter(|i| i["pk"]["S"] == format!("CONN#{changed}") && fv(i).is_some())
        .count();
    assert!(fresh_events >= 2, "the change's event and outbox item: {fresh_events}");

    // A record in a format this release does not know is refused, in words.
    let mut future = conn_item(untouched);
    future["fv"] = serde_json::json!({"N": (account_connect::store::FORMAT_VERSION + 1).to_string()});
    ddb.put_item()
        .table_name(&table)
        .set_item(Some(item_from_json(&future)))
        .send()
        .await
        .unwrap();
    let id = untouched.parse().unwrap();
    match store.get(&m.tenant, &id).await {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("format 3") && why.contains("newer release"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn health_and_version_name_the_release_and_its_commit() {
    assert!(
        COMMIT.len() == 12 && COMMIT.chars().all(|c| c.is_ascii_hexdigit()),
        "built in a checkout: {COMMIT}"
    );
    let app = common::spawn_app(common::test_config()).await;
    let (status, h) = app.health().await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(
        (h["version"].as_str(), h["commit"].as_str()),
        (Some(VERSION), Some(COMMIT)),
        "{h}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_account-connect"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("account-connect {VERSION} (commit {COMMIT})")
    );
}

#[tokio::test]
async fn the_servers_log_lines_carry_the_release() {
    let server = Server::start_with(&[("RUST_LOG", "info".into())]);
    let client = reqwest::Client::new();
    client
        .get(format!("{}/v1/connections", server.base))
        .send()
        .await
        .unwrap();
    let release = format!("version={VERSION} commit={COMMIT}");
    let line = server.next_line(|l| l.contains(" INFO ") || l.contains(" WARN "));
    let line = line.expect("a log line");
    assert!(line.ends_with(&release), "{line}");
}
