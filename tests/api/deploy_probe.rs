//! The probe the pre-traffic hook sends the new callback and dispatcher
//! versions: answered after one read of the store, on both stores, and an
//! error when the store cannot be read (so the hook reports Failed).

use crate::common;

use account_connect::app;
use account_connect::deploy::probe;
use account_connect::store::DynamoStore;
use std::sync::Arc;

#[tokio::test]
async fn the_probe_reads_the_store_and_answers_ok_on_both_stores() {
    for (kind, store) in common::both_stores().await {
        let services = app::build_with_store(common::test_config(), store);
        let answer = probe::answer(&services).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(answer["status"], "ok", "{kind}");
        assert_eq!(answer["read"], "missing", "{kind}");
    }
    assert!(probe::is_probe(&probe::event()));
    assert!(!probe::is_probe(&serde_json::json!({"Records": []})));
}

#[tokio::test]
async fn a_store_that_cannot_be_read_fails_the_probe() {
    // Nothing listens on port 9 of loopback.
    let store = Arc::new(DynamoStore::with_endpoint(
        "nowhere".into(),
        "http://127.0.0.1:9",
        app::aws_configs(),
    ));
    let services = app::build_with_store(common::test_config(), store);
    assert!(probe::answer(&services).await.is_err());
}
