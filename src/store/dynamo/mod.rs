//! DynamoDB store: one table, every write one conditional transaction.
//!
//! Items (pk / sk):
//! - `CONN#<id>` / `CONN`: the connection (`data` JSON, `version`, `org`,
//!   `gsi1pk` = `ORG#<org>`, `gsi1sk` = account, time, id; `ttl` while pending)
//! - `CONN#<id>` / `EVENT#<unix nanos>#<rand>`: one audit event (ordered within a second)
//! - `CONN#<id>` / `OUTBOX#<sequence>`: one state change to deliver (`data`;
//!   `gsi2pk` = `OUTBOX#<n>` until delivered, then `delivered_at` and `ttl`)
//! - `EXTID#<external id>` / `EXTID`: issued once, kept forever
//! - `HOLD#<org>#<account>` / `HOLD`: the connection holding a Spot account
//! - `IDEM#<org>#<user hash>#<key>` / `IDEM`: an idempotency record (`ttl`)
//! - `ROLE#<role arn>` / `ROLE`: the one connection connected to a role
//! - `ONCE#<key>` / `ONCE`: a key `remember_once` keeps until its `ttl`
//! - `LEASE#<key>` / `LEASE`: a lease (`holder`) until its `ttl` or its release
//! - `AWSORG#<id>` / `AWSORG`: an AWS Organization (`data`, `version`)
//! - `AWSORG#<id>` / `MEMBER#<aws account>`: its member connection for that account
//! - `HOOKS#<org>` / `HOOK#<id>` and `COUNT`: a tenant's webhooks and their
//!   count; `HOOK#<id>` / `DELIVERY#<position>` and `MSG#<message id>`: a
//!   delivery and its message's claim (`webhooks`, `webhook_cap`)
//!
//! Index `gsi1` lists a tenant's connections; sparse index `gsi2`, keys
//! only, sharded (`shards`: no key is every tenant's), lists connected ones
//! for re-checks (`gsi2pk` = `CONNECTED#<n>`, `gsi2sk` = id), undelivered
//! outbox items for the local dispatcher (`OUTBOX#<n>`, time, id, sequence;
//! in AWS a stream feeds it) and pending webhook deliveries (`DUE#<n>`,
//! `webhooks`).
//!
//! Here: the client and the request plumbing; `items` writes and reads the
//! items, `store` is the `Store` implementation, `organizations` the organizations'
//! part, `shards` the sparse index's keys and readers, `table` creates the table.

mod items;
mod organizations;
mod shards;
mod store;
mod table;
mod webhook_cap;
mod webhooks;

pub use table::{create_table, CreateTableError};

use super::StoreError;
use crate::sdk::AwsConfigs;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::OnceCell;

pub const GSI_TENANT: &str = "gsi1";
/// Sparse, keys only: connected connections, undelivered outbox items and
/// pending deliveries carry `gsi2pk` (`shards`).
pub const GSI_CONNECTED: &str = "gsi2";

pub struct DynamoStore {
    table: String,
    /// Overrides the SDK's endpoint resolution (and `AWS_ENDPOINT_URL*`).
    endpoint: Option<String>,
    /// What the client is built from, on first use.
    aws: AwsConfigs,
    client: OnceCell<Client>,
    /// Seals and opens webhook signing secrets (`sealing`).
    sealer: super::sealing::Sealer,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Maps SDK errors: anything that is not a decided answer is `Unavailable`.
/// A conditional write's outcome: true when written, false when its
/// condition refused it (any other failure is the store's error).
fn written<O, E, R>(out: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match out {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|se| se.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(sdk_err(e)),
    }
}

fn sdk_err<E: std::fmt::Debug, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    let what = match &e {
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "could not be reached".to_owned(),
        SdkError::ServiceError(se) => format!("answered {:?}", se.err()),
        other => format!("failed: {other:?}"),
    };
    StoreError::Unavailable(format!("DynamoDB {what}"))
}

impl DynamoStore {
    pub fn new(table: String, aws: AwsConfigs) -> Self {
        DynamoStore {
            table,
            endpoint: None,
            sealer: super::sealing::Sealer::unset(),
            aws,
            client: OnceCell::new(),
        }
    }

    /// The same, its webhook secrets sealed under `key`'s data keys.
    pub fn with_secrets_key(mut self, key: super::SecretsKey) -> Self {
        self.sealer = super::sealing::Sealer::new(key, Some(&self.aws)).expect("AWS is at hand");
        self
    }

    /// The store on DynamoDB at `endpoint`, whatever the environment says:
    /// lets one process talk to two endpoints (a test's unreachable one).
    pub fn with_endpoint(table: String, endpoint: &str, aws: AwsConfigs) -> Self {
        DynamoStore {
            endpoint: Some(endpoint.to_owned()),
            ..Self::new(table, aws)
        }
    }

    /// Built on first use, so start-up pays nothing for it.
    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let conf = crate::sdk::tuned(
                    self.aws.own().await,
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(2))
                        .operation_timeout(Duration::from_secs(8))
                        .build(),
                    aws_config::retry::RetryConfig::standard().with_max_attempts(3),
                );
                let mut conf = aws_sdk_dynamodb::config::Builder::from(&conf);
                if let Some(url) = &self.endpoint {
                    conf = conf.endpoint_url(url);
                }
                Client::from_conf(conf.build())
            })
            .await
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), (Vec<Option<String>>, StoreError)> {
        let client = self.client().await;
        match client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(tc)) =
                    e.as_service_error()
                {
                    let codes: Vec<Option<String>> = tc.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect();
                    let conflict = codes.iter().any(|c| c.as_deref() == Some("TransactionConflict"));
                    let failed = codes.iter().any(|c| c.as_deref() == Some("ConditionalCheckFailed"));
                    if failed || conflict {
                        return Err((codes, StoreError::Conflict));
                    }
                }
                Err((Vec::new(), sdk_err(e)))
            }
        }
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client()
            .await
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out.item)
    }
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A Put; `values` holds `:name` values and `#name` attribute names.
fn put(table: &str, item: Item, condition: Option<&str>, values: &[(&str, AttributeValue)]) -> TransactWriteItem {
    let mut b = Put::builder().table_name(table).set_item(Some(item));
    if let Some(c) = condition {
        b = b.condition_expression(c);
    }
    for (k, v) in values {
        if let Some(name) = k.strip_prefix('#') {
            let _ = name;
            if let AttributeValue::S(real) = v {
                b = b.expression_attribute_names(*k, real);
            }
        } else {
            b = b.expression_attribute_values(*k, v.clone());
        }
    }
    TransactWriteItem::builder()
        .put(b.build().expect("table and item are set"))
        .build()
}

fn is_failed(codes: &[Option<String>], i: usize) -> bool {
    codes.get(i).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed")
}

fn attr_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn attr_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}
