//! SQLite: organizations and their members (a primary key per organization
//! and AWS account makes enrollment idempotent).

use super::{
    claim_external_id, data_by_id, from_json, insert_connection, insert_event, insert_outbox, page_of, to_json,
    unavailable, SqliteStore,
};
use crate::domain::{Connection, Event, OutboxItem};
use crate::domain::{Organization, OrganizationId};
use crate::store::organizations::{member_after, member_key};
use crate::store::{tenant_sort_key, Idempotency, OrganizationStore, Page, StoreError};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY, org TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organization_members (
    organization_id TEXT NOT NULL, aws_account TEXT NOT NULL, connection_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, aws_account));
";

#[async_trait::async_trait]
impl OrganizationStore for SqliteStore {
    async fn create_organization(
        &self,
        o: &Organization,
        management: &Connection,
        event: &Event,
        idem: Option<&Idempotency>,
        now: i64,
    ) -> Result<(), StoreError> {
        let (o, c, e, idem) = (o.clone(), management.clone(), event.clone(), idem.cloned());
        self.with(move |db| {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO organizations (id, org, version, data) VALUES (?1, ?2, ?3, ?4)",
                    params![o.id.as_str(), o.org, o.version as i64, to_json(&o)],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
            insert_connection(&tx, &c, &e, idem.as_ref(), now)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn update_organization(&self, o: &Organization) -> Result<(), StoreError> {
        let o = o.clone();
        self.with(move |db| {
            let n = db
                .execute(
                    "UPDATE organizations SET version = ?1, data = ?2 WHERE id = ?3 AND version = ?4",
                    params![o.version as i64, to_json(&o), o.id.as_str(), o.version as i64 - 1],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
            Ok(())
        })
        .await
    }

    async fn get_organization(&self, id: &OrganizationId) -> Result<Option<Organization>, StoreError> {
        let id = id.clone();
        self.with(move |db| data_by_id(db, "organizations", id.as_str())).await
    }

    async fn enroll_member(
        &self,
        member: &Connection,
        event: &Event,
        announce: Option<&OutboxItem>,
    ) -> Result<Connection, StoreError> {
        let (c, e, announce) = (member.clone(), event.clone(), announce.cloned());
        let (org_id, account) = member_key(&c)?;
        let (org_id, account) = (org_id.as_str().to_owned(), account.to_owned());
        let publishes = announce.is_some();
        let written = self
            .with(move |db| {
                let tx = db
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(unavailable)?;
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT c.data FROM organization_members m JOIN connections c ON c.id = m.connection_id
                     WHERE m.organization_id = ?1 AND m.aws_account = ?2",
                        params![org_id, account],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                if let Some(d) = existing {
                    // Already a member: nothing written, nothing to announce.
                    return from_json(&d).map(|c| (c, false));
                }
                claim_external_id(&tx, c.external_id.as_str(), c.id.as_str())?;
                tx.execute(
                    "INSERT INTO connections (id, org, sort_key, state, version, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        c.id.as_str(),
                        c.org,
                        tenant_sort_key(&c),
                        c.state.as_str(),
                        c.version as i64,
                        to_json(&c)
                    ],
                )
                .map_err(unavailable)?;
                tx.execute(
                "INSERT INTO organization_members (organization_id, aws_account, connection_id) VALUES (?1, ?2, ?3)",
                params![org_id, account, c.id.as_str()],
            )
            .map_err(unavailable)?;
                insert_event(&tx, &e)?;
                if let Some(item) = &announce {
                    insert_outbox(&tx, item)?;
                }
                tx.commit().map_err(unavailable)?;
                Ok((c, true))
            })
            .await;
        match written {
            Ok((c, true)) if publishes => {
                self.outbox_written.notify_one();
                Ok(c)
            }
            other => other.map(|(c, _)| c),
        }
    }

    async fn list_members(&self, id: &OrganizationId, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let id = id.clone();
        let after = member_after(after)?;
        let limit = limit.clamp(1, crate::store::MAX_PAGE);
        self.with(move |db| {
            let mut stmt = db
                .prepare(
                    "SELECT c.data, m.aws_account FROM organization_members m JOIN connections c ON c.id = m.connection_id
                     WHERE m.organization_id = ?1 AND m.aws_account > ?2 ORDER BY m.aws_account LIMIT ?3",
                )
                .map_err(unavailable)?;
            page_of::<_, String>(&mut stmt, params![id.as_str(), after, limit as i64 + 1], limit)
        })
        .await
    }
}
