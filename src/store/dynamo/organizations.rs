//! DynamoDB: organizations and their members. A member key item per
//! organization and AWS account, written in the same transaction as the
//! member connection, makes enrollment idempotent.

use super::items::parse_connection;
use super::{attr_s, is_failed, n, put, s, sdk_err, DynamoStore, Item};
use crate::domain::{Connection, Event, OutboxItem};
use crate::domain::{Organization, OrganizationId};
use crate::store::organizations::{member_after, member_key};
use crate::store::{Idempotency, OrganizationStore, Page, Store, StoreError};

fn org_pk(id: &OrganizationId) -> String {
    format!("AWSORG#{}", id.as_str())
}

impl DynamoStore {
    fn organization_item(&self, o: &Organization) -> Item {
        Item::from([
            ("pk".into(), s(org_pk(&o.id))),
            ("sk".into(), s("AWSORG")),
            ("org".into(), s(&o.org)),
            ("version".into(), n(o.version)),
            (
                "data".into(),
                s(serde_json::to_string(o).expect("organizations serialize")),
            ),
            super::format_attr(),
        ])
    }
}

#[async_trait::async_trait]
impl OrganizationStore for DynamoStore {
    async fn create_organization(
        &self,
        o: &Organization,
        management: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Result<(), StoreError> {
        // The connection's items first: `create_refused` reads reasons by position.
        let mut items = self.create_items(management, event, idem, now);
        items.push(put(
            &self.table,
            self.organization_item(o),
            Some("attribute_not_exists(pk)"),
            &[],
        ));
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err((codes, e)) => Err(self.create_refused(management, idem, now, &codes, e).await),
        }
    }

    async fn update_organization(&self, o: &Organization) -> Result<(), StoreError> {
        let item = put(
            &self.table,
            self.organization_item(o),
            Some("version = :v"),
            &[(":v", n(o.version - 1))],
        );
        self.transact(vec![item]).await.map_err(|(_, e)| e)
    }

    async fn get_organization(&self, id: &OrganizationId) -> Result<Option<Organization>, StoreError> {
        let Some(item) = self.get_item(org_pk(id), "AWSORG").await? else {
            return Ok(None);
        };
        super::record(&item, "organization").map(Some)
    }

    async fn enroll_member(
        &self,
        member: &Connection,
        event: &Event,
        announce: Option<&OutboxItem>,
    ) -> Result<Connection, StoreError> {
        let (org_id, account) = member_key(member)?;
        let key = Item::from([
            ("pk".into(), s(org_pk(org_id))),
            ("sk".into(), s(format!("MEMBER#{account}"))),
            ("connection_id".into(), s(member.id.as_str())),
        ]);
        // The outbox item last: the refusals below are read by position.
        let mut items = vec![
            put(&self.table, key, Some("attribute_not_exists(pk)"), &[]),
            put(
                &self.table,
                self.connection_item(member),
                Some("attribute_not_exists(pk)"),
                &[],
            ),
            self.claim_put(member.external_id.as_str(), &member.id),
            self.event_put(event),
        ];
        items.extend(announce.map(|item| self.outbox_put(item)));
        match self.transact(items).await {
            Ok(()) => Ok(member.clone()),
            Err((codes, StoreError::Conflict)) if is_failed(&codes, 0) => {
                // Enrolled before: answer that connection.
                let rec = self
                    .get_item(org_pk(org_id), &format!("MEMBER#{account}"))
                    .await?
                    .ok_or(StoreError::Conflict)?;
                let id = attr_s(&rec, "connection_id").unwrap_or_default();
                let id = id.parse().map_err(|_| StoreError::Corrupt(id.to_owned()))?;
                self.get_any(&id).await?.ok_or(StoreError::Conflict)
            }
            Err((codes, StoreError::Conflict)) if is_failed(&codes, 2) => Err(StoreError::ExternalIdTaken),
            Err((_, e)) => Err(e),
        }
    }

    async fn list_members(&self, id: &OrganizationId, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, crate::store::MAX_PAGE);
        let after = member_after(after)?;
        let out = self
            .client()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(":pk", s(org_pk(id)))
            .expression_attribute_values(":after", s(format!("MEMBER#{after}")))
            .consistent_read(true)
            .limit(limit as i32 + 1)
            .send()
            .await
            .map_err(sdk_err)?;
        let rows = out.items();
        let keys: Vec<(String, String)> = rows
            .iter()
            .take(limit)
            .filter_map(|r| {
                let account = attr_s(r, "sk")?.strip_prefix("MEMBER#")?.to_owned();
                Some((account, attr_s(r, "connection_id")?.to_owned()))
            })
            .collect();
        let reads = keys.iter().map(|(_, id)| self.get_item(format!("CONN#{id}"), "CONN"));
        let mut items = Vec::new();
        for item in futures::future::join_all(reads).await {
            if let Some(item) = item? {
                items.push(parse_connection(&item)?);
            }
        }
        let next = if rows.len() > limit || out.last_evaluated_key().is_some() {
            keys.last().map(|(a, _)| a.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
