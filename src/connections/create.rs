//! Creating a connection (a new external ID for a Spot account), its
//! CloudFormation template, and Spot's get-or-create of an account's ID.

use super::service::{backoff, ConnectionService, WRITE_ATTEMPTS};
use super::ServiceError;
use crate::domain::{AccountId, Connection, ConnectionId, EventKind, ExternalId, Method, Partition, Permissions};
use crate::domain::{Event, NewConnection, SpotAccountId};
use crate::policy::{render_shared, Selection};
use crate::store::{Idempotency, StoreError};
use crate::tenancy::Tenant;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    pub account_id: SpotAccountId,
    pub partition: Partition,
    pub permissions: Permissions,
    pub aws_account_id: Option<AccountId>,
    pub method: Method,
}

impl ConnectionService {
    /// Issues a new external ID for a Spot account. With an idempotency key,
    /// a retry of the same request answers the same connection.
    pub async fn create(
        &self,
        tenant: &Tenant,
        req: CreateRequest,
        idempotency_key: Option<String>,
    ) -> Result<(Connection, bool), ServiceError> {
        if !tenant.may_access(&req.account_id) {
            return Err(ServiceError::AccountNotAllowed(req.account_id));
        }
        if req.method == Method::Automatic && req.aws_account_id.is_none() {
            return Err(ServiceError::AwsAccountRequired);
        }
        if let Some(a) = &req.aws_account_id {
            self.customer_account(req.partition, a.as_str())?;
        }
        self.principal(req.partition)?;
        // Refused now, not when the customer has made the role.
        if !self.config.has_credentials(req.partition) {
            return Err(ServiceError::PartitionCredentialsMissing(req.partition));
        }
        let selection = Selection::resolve(req.partition, &req.permissions).map_err(ServiceError::Selection)?;
        render_shared(&selection).map_err(ServiceError::Render)?;
        let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&req).expect("requests serialize")));
        let idem = idempotency_key.map(|key| Idempotency {
            user: tenant.sub.clone(),
            key,
            request_hash: request_hash.clone(),
        });

        for attempt in 0..WRITE_ATTEMPTS {
            let at = self.now();
            let mut conn = Connection::new_pending(NewConnection {
                id: ConnectionId::generate(),
                org: tenant.org.clone(),
                account_id: req.account_id.clone(),
                partition: req.partition,
                method: req.method,
                permissions: selection.permissions(),
                aws_account_id: req.aws_account_id.clone(),
                external_id: ExternalId::generate(&self.config.external_id_prefix),
                organization: None,
                created_by: tenant.sub.clone(),
                at,
                expires_at: at + self.config.external_id_ttl_secs as i64,
            });
            if conn.method == Method::Automatic {
                // Uploaded before the record is written: an orphan template
                // (expired by the bucket's lifecycle) is harmless, a record
                // without its template is not.
                let template = self.template_for(&conn)?;
                let links = self.templates.links(&self.config, &conn, &template, at).await;
                conn.cloud_formation = Some(links.map_err(ServiceError::TemplateUpload)?);
            }
            let ev = Event::new(
                at,
                &conn,
                EventKind::Created,
                &tenant.sub,
                "ok",
                Some(serde_json::json!({"method": req.method})),
            );
            match self.store.create(&conn, &ev, idem.as_ref(), at).await {
                Ok(()) => return Ok((conn, true)),
                Err(StoreError::IdempotencyKeyUsed {
                    request_hash: h,
                    connection_id,
                }) => {
                    if h != request_hash {
                        return Err(ServiceError::IdempotencyMismatch);
                    }
                    return self.get(tenant, &connection_id).await.map(|c| (c, false));
                }
                Err(StoreError::AccountHeld(id)) => return Err(ServiceError::AccountBusy(id)),
                // A fresh ID collides only by a miracle; a conflict is a race: try again.
                Err(StoreError::ExternalIdTaken | StoreError::Conflict) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::TooManyConcurrentWrites)
    }

    /// The connection's CloudFormation template, with the callback custom
    /// resource when a topic and key are configured for its partition.
    pub fn template_for(&self, c: &Connection) -> Result<serde_json::Value, ServiceError> {
        let principal = self.principal(c.partition)?;
        let topic = self.config.topics.get(&c.partition).map(String::as_str);
        let token = self
            .config
            .expose_callback_key()
            .and_then(|k| crate::automatic::token::issue_for(k, c));
        Ok(crate::automatic::render(c, principal, topic, token.as_deref()))
    }

    /// The live connection of a Spot account, if any.
    pub async fn active_for_account(
        &self,
        tenant: &Tenant,
        account: &SpotAccountId,
    ) -> Result<Option<Connection>, ServiceError> {
        if !tenant.may_access(account) {
            return Err(ServiceError::AccountNotAllowed(account.clone()));
        }
        let Some(id) = self.store.account_holder(&tenant.org, account, self.now()).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .get(&tenant.org, &id)
            .await?
            .filter(|c| c.is_active(self.now())))
    }

    /// Spot's externalId call: the live connection's ID, or a new default
    /// connection. Never silently a second ID for the same account.
    pub async fn external_id_for_account(
        &self,
        tenant: &Tenant,
        account: &SpotAccountId,
    ) -> Result<Connection, ServiceError> {
        for _ in 0..WRITE_ATTEMPTS {
            if let Some(c) = self.active_for_account(tenant, account).await? {
                return Ok(c);
            }
            let req = CreateRequest {
                account_id: account.clone(),
                partition: Partition::Aws,
                permissions: Permissions::Default,
                aws_account_id: None,
                method: Method::Manual,
            };
            match self.create(tenant, req, None).await {
                Ok((c, _)) => return Ok(c),
                // Someone else created it meanwhile: answer theirs.
                Err(ServiceError::AccountBusy(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ServiceError::Store(StoreError::Conflict))
    }
}
