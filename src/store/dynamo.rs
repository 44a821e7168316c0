//! DynamoDB store: one table, every write one conditional transaction.
//!
//! Items (pk / sk):
//! - `CONN#<id>` / `CONN`: the connection (`data` JSON, `version`, `org`,
//!   `gsi1pk` = `ORG#<org>`, `gsi1sk` = account, time, id; `ttl` while pending)
//! - `CONN#<id>` / `EVENT#<unix nanos>#<rand>`: one audit event (ordered within a second)
//! - `EXTID#<external id>` / `EXTID`: issued once, kept forever
//! - `HOLD#<org>#<account>` / `HOLD`: the connection holding a Spot account
//! - `IDEM#<org>#<user hash>#<key>` / `IDEM`: an idempotency record (`ttl`)
//! - `ROLE#<role arn>` / `ROLE`: the one connection connected to a role
//! - `AWSORG#<id>` / `AWSORG`: an AWS Organization (`data`, `version`)
//! - `AWSORG#<id>` / `MEMBER#<aws account>`: its member connection for that account
//!
//! Index `gsi1` lists a tenant's connections; sparse index `gsi2`
//! (`gsi2pk` = `CONNECTED`, `gsi2sk` = id) lists connected ones for re-checks.

use super::{account_prefix, list_start, tenant_sort_key, Guard, Idempotency, Page, Store, StoreError};
use crate::connections::{Connection, ConnectionId, Event};
use crate::domain::SpotAccountId;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::OnceCell;

mod organizations;

pub const GSI_TENANT: &str = "gsi1";
/// Sparse: only connected connections carry `gsi2pk`.
pub const GSI_CONNECTED: &str = "gsi2";
/// Pending connections linger this long after expiry before TTL removes them.
const EXPIRED_RETENTION_SECS: i64 = 90 * 24 * 3600;

pub struct DynamoStore {
    table: String,
    /// Overrides the SDK's endpoint resolution (and `AWS_ENDPOINT_URL*`).
    endpoint: Option<String>,
    client: OnceCell<Client>,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Maps SDK errors: anything that is not a decided answer is `Unavailable`.
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
    pub fn new(table: String) -> Self {
        DynamoStore {
            table,
            endpoint: None,
            client: OnceCell::new(),
        }
    }

    /// The store on DynamoDB at `endpoint`, whatever the environment says:
    /// lets one process talk to two endpoints (a test's unreachable one).
    pub fn with_endpoint(table: String, endpoint: &str) -> Self {
        DynamoStore {
            endpoint: Some(endpoint.to_owned()),
            ..Self::new(table)
        }
    }

    /// Built on first use, so start-up pays nothing for it.
    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut conf = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(url) = &self.endpoint {
                    conf = conf.endpoint_url(url);
                }
                let conf = conf
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(2))
                            .operation_timeout(Duration::from_secs(8))
                            .build(),
                    )
                    .load()
                    .await;
                Client::new(&conf)
            })
            .await
    }

    fn connection_item(&self, c: &Connection) -> Item {
        let mut item = Item::from([
            ("pk".into(), s(format!("CONN#{}", c.id.as_str()))),
            ("sk".into(), s("CONN")),
            ("gsi1pk".into(), s(format!("ORG#{}", c.org))),
            ("gsi1sk".into(), s(tenant_sort_key(c))),
            ("org".into(), s(&c.org)),
            ("version".into(), n(c.version)),
            (
                "data".into(),
                s(serde_json::to_string(c).expect("connections serialize")),
            ),
        ]);
        if c.state == crate::connections::Status::Pending {
            item.insert("ttl".into(), n(c.expires_at + EXPIRED_RETENTION_SECS));
        }
        if c.state == crate::connections::Status::Connected {
            item.insert("gsi2pk".into(), s("CONNECTED"));
            item.insert("gsi2sk".into(), s(c.id.as_str()));
        }
        item
    }

    fn event_put(&self, e: &Event) -> TransactWriteItem {
        let item = Item::from([
            ("pk".into(), s(format!("CONN#{}", e.connection_id.as_str()))),
            (
                "sk".into(),
                s(format!("EVENT#{:020}#{}", unix_nanos(), crate::ids::random_token(4))),
            ),
            ("data".into(), s(serde_json::to_string(e).expect("events serialize"))),
        ]);
        put(&self.table, item, None, &[])
    }

    fn claim_put(&self, ext: &str, id: &ConnectionId) -> TransactWriteItem {
        let item = Item::from([
            ("pk".into(), s(format!("EXTID#{ext}"))),
            ("sk".into(), s("EXTID")),
            ("connection_id".into(), s(id.as_str())),
        ]);
        put(&self.table, item, Some("attribute_not_exists(pk)"), &[])
    }

    fn hold_put(&self, c: &Connection, until: i64, now: i64) -> TransactWriteItem {
        let item = Item::from([
            ("pk".into(), s(format!("HOLD#{}#{}", c.org, c.account_id.as_str()))),
            ("sk".into(), s("HOLD")),
            ("connection_id".into(), s(c.id.as_str())),
            ("until".into(), n(until)),
        ]);
        put(
            &self.table,
            item,
            Some("attribute_not_exists(pk) OR connection_id = :id OR #until <= :now"),
            &[(":id", s(c.id.as_str())), (":now", n(now)), ("#until", s("until"))],
        )
    }

    /// Deletes a hold item on condition that this connection still holds it.
    fn release(&self, pk: String, sk: &str, id: &ConnectionId) -> TransactWriteItem {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])))
            .condition_expression("connection_id = :id")
            .expression_attribute_values(":id", s(id.as_str()))
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(d).build()
    }

    /// The release of a hold item, if this connection holds it now. A hold
    /// another connection took over (after this one expired) is theirs: left
    /// alone, as SQLite's `DELETE … AND connection_id = ?` leaves it. Should
    /// the holder change between this read and the write, the condition
    /// cancels the transaction and the caller's retry reads again.
    async fn release_if_held(
        &self,
        pk: String,
        sk: &str,
        id: &ConnectionId,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let held = self
            .get_item(pk.clone(), sk)
            .await?
            .is_some_and(|item| attr_s(&item, "connection_id") == Some(id.as_str()));
        Ok(held.then(|| self.release(pk, sk, id)))
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

fn attr_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn parse_connection(item: &Item) -> Result<Connection, StoreError> {
    let data = attr_s(item, "data").ok_or_else(|| StoreError::Corrupt("connection item without data".into()))?;
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait::async_trait]
impl Store for DynamoStore {
    async fn create(
        &self,
        c: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut items = vec![
            put(
                &self.table,
                self.connection_item(c),
                Some("attribute_not_exists(pk)"),
                &[],
            ),
            self.claim_put(c.external_id.as_str(), &c.id),
            self.hold_put(c, c.expires_at, now),
            self.event_put(event),
        ];
        if let Some(idem) = idem {
            let item = Item::from([
                ("pk".into(), s(format!("IDEM#{}#{}", c.org, idem.scoped_key()))),
                ("sk".into(), s("IDEM")),
                ("request_hash".into(), s(&idem.request_hash)),
                ("connection_id".into(), s(c.id.as_str())),
                ("ttl".into(), n(now + super::IDEMPOTENCY_TTL_SECS)),
            ]);
            items.push(put(
                &self.table,
                item,
                Some("attribute_not_exists(pk) OR #ttl <= :now"),
                &[(":now", n(now)), ("#ttl", s("ttl"))],
            ));
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err((codes, StoreError::Conflict)) => {
                // Reasons come in item order: connection, external ID, hold, event, idempotency.
                if let (Some(idem), true) = (idem, is_failed(&codes, 4)) {
                    let rec = self
                        .get_item(format!("IDEM#{}#{}", c.org, idem.scoped_key()), "IDEM")
                        .await?;
                    if let Some(rec) = rec {
                        let request_hash = attr_s(&rec, "request_hash").unwrap_or_default().to_owned();
                        let id = attr_s(&rec, "connection_id").unwrap_or_default();
                        let connection_id = id.parse().map_err(|_| StoreError::Corrupt(id.to_owned()))?;
                        return Err(StoreError::IdempotencyKeyUsed {
                            request_hash,
                            connection_id,
                        });
                    }
                    return Err(StoreError::Conflict);
                }
                if is_failed(&codes, 1) {
                    return Err(StoreError::ExternalIdTaken);
                }
                if is_failed(&codes, 2) {
                    if let Some(holder) = self.account_holder(&c.org, &c.account_id, now).await? {
                        return Err(StoreError::AccountHeld(holder));
                    }
                }
                Err(StoreError::Conflict)
            }
            Err((_, e)) => Err(e),
        }
    }

    async fn update(&self, c: &Connection, event: &Event, guards: &[Guard], now: i64) -> Result<(), StoreError> {
        let mut items = vec![
            put(
                &self.table,
                self.connection_item(c),
                Some("version = :v AND org = :org"),
                &[(":v", n(c.version - 1)), (":org", s(&c.org))],
            ),
            self.event_put(event),
        ];
        // Which guard wrote each item after the first two (a release of
        // something no longer held writes none).
        let mut written: Vec<&Guard> = Vec::new();
        for g in guards {
            let item = match g {
                Guard::ClaimExternalId(ext) => Some(self.claim_put(ext.as_str(), &c.id)),
                Guard::HoldAccount { until } => Some(self.hold_put(c, *until, now)),
                Guard::ClaimRole(arn) => {
                    let item = Item::from([
                        ("pk".into(), s(format!("ROLE#{}", arn.as_str()))),
                        ("sk".into(), s("ROLE")),
                        ("connection_id".into(), s(c.id.as_str())),
                    ]);
                    Some(put(
                        &self.table,
                        item,
                        Some("attribute_not_exists(pk) OR connection_id = :id"),
                        &[(":id", s(c.id.as_str()))],
                    ))
                }
                Guard::ReleaseRole(arn) => {
                    self.release_if_held(format!("ROLE#{}", arn.as_str()), "ROLE", &c.id)
                        .await?
                }
                Guard::ReleaseAccount => {
                    self.release_if_held(format!("HOLD#{}#{}", c.org, c.account_id.as_str()), "HOLD", &c.id)
                        .await?
                }
            };
            if let Some(item) = item {
                items.push(item);
                written.push(g);
            }
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err((codes, StoreError::Conflict)) => {
                for (i, g) in written.iter().enumerate() {
                    if is_failed(&codes, i + 2) {
                        match g {
                            Guard::ClaimExternalId(_) => return Err(StoreError::ExternalIdTaken),
                            Guard::HoldAccount { .. } => {
                                if let Some(h) = self.account_holder(&c.org, &c.account_id, now).await? {
                                    return Err(StoreError::AccountHeld(h));
                                }
                            }
                            Guard::ClaimRole(_) => return Err(StoreError::RoleHeld),
                            Guard::ReleaseAccount | Guard::ReleaseRole(_) => {}
                        }
                    }
                }
                Err(StoreError::Conflict)
            }
            Err((_, e)) => Err(e),
        }
    }

    async fn append_event(&self, event: &Event) -> Result<(), StoreError> {
        self.transact(vec![self.event_put(event)]).await.map_err(|(_, e)| e)
    }

    async fn get(&self, org: &str, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let Some(item) = self.get_item(format!("CONN#{}", id.as_str()), "CONN").await? else {
            return Ok(None);
        };
        // Another tenant's connection reads exactly like a missing one.
        if attr_s(&item, "org") != Some(org) {
            return Ok(None);
        }
        parse_connection(&item).map(Some)
    }

    async fn list(
        &self,
        org: &str,
        account: Option<&SpotAccountId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, super::MAX_PAGE);
        let prefix = account_prefix(account);
        let start = list_start(account, after)?;
        let mut q = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .index_name(GSI_TENANT)
            .key_condition_expression("gsi1pk = :o AND begins_with(gsi1sk, :p)")
            .expression_attribute_values(":o", s(format!("ORG#{org}")))
            .expression_attribute_values(":p", s(&prefix))
            // One more than the page, to know whether there is a next one.
            .limit(limit as i32 + 1);
        if let Some(after) = start {
            let id = after.rsplit('#').next().unwrap_or_default().to_owned();
            q = q
                .exclusive_start_key("pk", s(format!("CONN#{id}")))
                .exclusive_start_key("sk", s("CONN"))
                .exclusive_start_key("gsi1pk", s(format!("ORG#{org}")))
                .exclusive_start_key("gsi1sk", s(after));
        }
        let out = q.send().await.map_err(sdk_err)?;
        let rows = out.items();
        let items: Vec<Connection> = rows
            .iter()
            .take(limit)
            .map(parse_connection)
            .collect::<Result<_, _>>()?;
        let next = if rows.len() > limit {
            attr_s(&rows[limit - 1], "gsi1sk").map(str::to_owned)
        } else {
            // Short of a page with a key: DynamoDB stopped at its 1 MB.
            out.last_evaluated_key()
                .and_then(|k| attr_s(k, "gsi1sk"))
                .map(str::to_owned)
        };
        Ok(Page { items, next })
    }

    async fn events(&self, id: &ConnectionId, after: Option<&str>, limit: usize) -> Result<Page<Event>, StoreError> {
        let limit = limit.clamp(1, super::MAX_PAGE);
        let pk = format!("CONN#{}", id.as_str());
        let mut q = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :e)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":e", s("EVENT#"))
            .consistent_read(true)
            // One more than the page, to know whether there is a next one.
            .limit(limit as i32 + 1);
        if let Some(after) = after {
            // Positions are event sort keys of this connection.
            let ok = after.len() <= 64
                && after
                    .strip_prefix("EVENT#")
                    .is_some_and(|r| r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'#'));
            if !ok {
                return Err(StoreError::OutsideQuery);
            }
            q = q.exclusive_start_key("pk", s(&pk)).exclusive_start_key("sk", s(after));
        }
        let out = q.send().await.map_err(sdk_err)?;
        let rows = out.items();
        let mut items = Vec::new();
        for item in rows.iter().take(limit) {
            let data = attr_s(item, "data").ok_or_else(|| StoreError::Corrupt("event without data".into()))?;
            items.push(serde_json::from_str(data).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        let next = if rows.len() > limit {
            attr_s(&rows[limit - 1], "sk").map(str::to_owned)
        } else {
            // Short of a page with a key: DynamoDB stopped at its 1 MB.
            out.last_evaluated_key()
                .and_then(|k| attr_s(k, "sk"))
                .map(str::to_owned)
        };
        Ok(Page { items, next })
    }

    async fn get_any(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let item = self.get_item(format!("CONN#{}", id.as_str()), "CONN").await?;
        item.as_ref().map(parse_connection).transpose()
    }

    async fn list_connected(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let mut q = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .index_name(GSI_CONNECTED)
            .key_condition_expression("gsi2pk = :c")
            .expression_attribute_values(":c", s("CONNECTED"))
            .limit(limit.clamp(1, 1000) as i32);
        if let Some(id) = cursor.and_then(|c| c.parse::<ConnectionId>().ok()) {
            q = q
                .exclusive_start_key("pk", s(format!("CONN#{}", id.as_str())))
                .exclusive_start_key("sk", s("CONN"))
                .exclusive_start_key("gsi2pk", s("CONNECTED"))
                .exclusive_start_key("gsi2sk", s(id.as_str()));
        }
        let out = q.send().await.map_err(sdk_err)?;
        let items: Vec<Connection> = out.items().iter().map(parse_connection).collect::<Result<_, _>>()?;
        let next = out
            .last_evaluated_key()
            .and_then(|k| attr_s(k, "gsi2sk"))
            .map(str::to_owned);
        Ok(Page { items, next })
    }

    async fn account_holder(
        &self,
        org: &str,
        account: &SpotAccountId,
        now: i64,
    ) -> Result<Option<ConnectionId>, StoreError> {
        let Some(item) = self
            .get_item(format!("HOLD#{org}#{}", account.as_str()), "HOLD")
            .await?
        else {
            return Ok(None);
        };
        let until: i64 = item
            .get("until")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if until <= now {
            return Ok(None);
        }
        let id = attr_s(&item, "connection_id").unwrap_or_default();
        id.parse().map(Some).map_err(|_| StoreError::Corrupt(id.to_owned()))
    }
}

/// Creates the table as `template.yaml` declares it (local runs and tests).
pub async fn create_table(table: &str) -> Result<(), String> {
    let store = DynamoStore::new(table.to_owned());
    let client = store.client().await;
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("complete")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .expect("complete")
    };
    let res = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .attribute_definitions(attr("gsi2pk"))
        .attribute_definitions(attr("gsi2sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI_TENANT)
                .key_schema(key("gsi1pk", KeyType::Hash))
                .key_schema(key("gsi1sk", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("complete"),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI_CONNECTED)
                .key_schema(key("gsi2pk", KeyType::Hash))
                .key_schema(key("gsi2sk", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("complete"),
        )
        .send()
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) => Ok(()),
        Err(e) => Err(format!("cannot create table {table}: {:?}", e.into_service_error())),
    }
}
