//! Which store a URL names, opened; a bad URL or an unopenable database is
//! refused at start-up with the setting to fix.

use super::{DynStore, DynamoStore, SecretsKey, SqliteStore};
use crate::sdk::AwsConfigs;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("ACCOUNT_CONNECT_STORE: {0:?} is not a DynamoDB table name")]
    TableName(String),
    #[error("ACCOUNT_CONNECT_STORE {0:?}: use sqlite://PATH, sqlite::memory: or dynamodb://TABLE")]
    Scheme(String),
    #[error("cannot open SQLite database {path:?}: {source}")]
    SqliteOpen { path: String, source: rusqlite::Error },
    #[error("cannot set up the SQLite database: {0}")]
    SqliteSetup(rusqlite::Error),
    #[error("cannot create the SQLite schema: {0}")]
    SqliteSchema(rusqlite::Error),
}

/// Opens the store a URL names: `sqlite://path`, `sqlite::memory:` or
/// `dynamodb://table` (its client built from `aws` on first use), webhook
/// secrets sealed under the key its URL gets by default
/// (`SecretsKey::default_for`: none for a DynamoDB table).
pub fn open(url: &str, aws: &AwsConfigs) -> Result<DynStore, OpenError> {
    open_with(url, SecretsKey::default_for(url), aws)
}

/// The same, webhook secrets sealed under `key`'s data keys.
pub fn open_with(url: &str, key: SecretsKey, aws: &AwsConfigs) -> Result<DynStore, OpenError> {
    if let Some(table) = url.strip_prefix("dynamodb://") {
        if table.is_empty()
            || table.len() > 255
            || !table.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(OpenError::TableName(table.to_owned()));
        }
        return Ok(Arc::new(
            DynamoStore::new(table.to_owned(), aws.clone()).with_secrets_key(key),
        ));
    }
    if url == "sqlite::memory:" {
        return SqliteStore::open_in_memory().map(|s| Arc::new(s.with_secrets_key(key, aws)) as DynStore);
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        return SqliteStore::open(path).map(|s| Arc::new(s.with_secrets_key(key, aws)) as DynStore);
    }
    Err(OpenError::Scheme(url.to_owned()))
}
