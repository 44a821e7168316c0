//! What the organization routes and the callback do, independent of HTTP.

use super::aws::OrgReader;
use super::guardrails;
use super::{template, token};
use crate::config::Config;
use crate::connections::{ConnectionService, Deps, ListQuery, ServiceError};
use crate::domain::{
    AccountId, Connection, ConnectionId, Event, EventKind, ExternalId, Method, NewConnection, Partition, Permissions,
    SpotAccountId, Status,
};
use crate::domain::{Listing, Membership, OrgState, Organization, OrganizationId, Reconciliation, TargetId};
use crate::policy::{render_shared, Selection};
use crate::store::{DynStore, Idempotency, StoreError};
use crate::tenancy::Tenant;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `CreateStackInstances` takes at most 50 organizational units per call.
pub const MAX_TARGETS: usize = 50;
pub(super) const WRITE_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum OrganizationError {
    #[error("no organization with this id for this token; start one with POST /v1/organizations")]
    NotFound,
    /// The organization was offboarded: nothing joins it any more.
    #[error("this organization was offboarded; start again with POST /v1/organizations")]
    Offboarded,
    /// No callback topic or key for the partition: members could not report.
    #[error("{} organizations cannot be connected here: no callback topic or key is configured, so member accounts could not report back; connect the accounts one by one", .0.display_name())]
    CallbackUnavailable(Partition),
    #[error("{0} organizational units given; a StackSet targets at most {MAX_TARGETS} at once: target a parent unit instead")]
    TooManyTargets(usize),
    /// The member template does not fit a StackSet's inline TemplateBody.
    #[error("with these permissions the member template is {0} bytes, over a StackSet's {limit} byte limit: choose fewer products or integrations", limit = template::MAX_MEMBER_TEMPLATE)]
    MemberTemplateTooLarge(usize),
    /// The connection is not an organization member.
    #[error("no organization member with this id; members are listed by GET /v1/connections?organizationId=")]
    NotAMember,
    /// The member already has another Spot account.
    #[error("this member already has the Spot account {0}; a member's Spot account does not change")]
    SpotAccountAssigned(SpotAccountId),
    /// Offboarding would disconnect members assigned to Spot accounts the token may not act on.
    #[error("offboarding disconnects every member, and members are assigned to Spot accounts your token does not allow: {}. Offboard with a token that also allows them (or every account, \"*\")", .0.iter().map(SpotAccountId::as_str).collect::<Vec<_>>().join(", "))]
    MembersNotAllowed(Vec<SpotAccountId>),
    /// The preflight needs the management role.
    #[error("the management account {0} is not connected yet: create the management stack there first (its connection must be connected before the preflight can read the organization)")]
    ManagementNotConnected(AccountId),
    /// The management role could not read the organization.
    #[error("{0}")]
    OrganizationUnreadable(String),
    /// The management stack was deleted, and its role with it: the reason
    /// says what to do.
    #[error("{reason}")]
    ManagementStackDeleted { id: OrganizationId, reason: String },
    #[error(transparent)]
    Connection(ServiceError),
}

impl From<ServiceError> for OrganizationError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => OrganizationError::NotFound,
            e => OrganizationError::Connection(e),
        }
    }
}

impl OrganizationError {
    /// The store could not be reached: worth a retry (see `ServiceError::unavailable`).
    pub fn unavailable(&self) -> Option<&str> {
        match self {
            OrganizationError::Connection(e) => e.unavailable(),
            _ => None,
        }
    }
}

impl From<StoreError> for OrganizationError {
    fn from(e: StoreError) -> Self {
        OrganizationError::Connection(ServiceError::Store(e))
    }
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrganization {
    pub account_id: SpotAccountId,
    pub partition: Partition,
    pub permissions: Permissions,
    pub management_account_id: AccountId,
    pub organizational_unit_ids: Vec<TargetId>,
}

/// An organization with its management connection and members.
pub struct OrganizationSnapshot {
    pub organization: Organization,
    pub management: Connection,
    /// Every member, however many (read page by page): one left out would
    /// show its account as missing.
    pub members: Vec<Connection>,
}

#[derive(Clone)]
pub struct OrganizationService {
    /// Members are connections: verified, rotated and disconnected there.
    pub(super) connections: ConnectionService,
    pub(super) store: DynStore,
    pub(super) config: Arc<Config>,
    pub(super) templates: Arc<crate::automatic::Templates>,
    pub(super) cursors: Arc<crate::connections::cursor::Cursors>,
    pub(super) reader: Arc<OrgReader>,
}

/// Who acts for a tenant when no person does.
pub(crate) fn system_tenant(org: &str, who: &str) -> Tenant {
    Tenant {
        org: org.to_owned(),
        sub: who.to_owned(),
        accounts: None,
    }
}

impl OrganizationService {
    pub fn new(deps: &Deps, connections: ConnectionService) -> Self {
        OrganizationService {
            reader: Arc::new(OrgReader::from_config(&deps.config, deps.verifier.clone())),
            store: deps.store.clone(),
            config: deps.config.clone(),
            templates: deps.templates.clone(),
            cursors: deps.cursors.clone(),
            connections,
        }
    }

    pub fn with_connections(self, connections: ConnectionService) -> Self {
        OrganizationService { connections, ..self }
    }

    pub(super) fn now(&self) -> i64 {
        self.connections.now()
    }

    pub(super) fn callback(&self, partition: Partition) -> Result<(&str, &[u8]), OrganizationError> {
        let c = &self.config;
        match (c.topics.get(&partition), c.expose_callback_key()) {
            (Some(t), Some(k)) => Ok((t.as_str(), k)),
            _ => Err(OrganizationError::CallbackUnavailable(partition)),
        }
    }

    /// The management template of an organization, for its management connection.
    pub fn template_for(&self, o: &Organization, mgmt: &Connection) -> Result<serde_json::Value, OrganizationError> {
        let principal = self.connections.principal(o.partition)?;
        let (topic, key) = self.callback(o.partition)?;
        let conn_token =
            crate::automatic::token::issue_for(key, mgmt).expect("the management connection has its account");
        let org_token = token::issue(key, o.id.as_str(), o.management_account_id.as_str());
        let member = template::member(o, principal, topic, &org_token);
        let size = serde_json::to_string(&member).map(|s| s.len()).unwrap_or(usize::MAX);
        if size > template::MAX_MEMBER_TEMPLATE {
            return Err(OrganizationError::MemberTemplateTooLarge(size));
        }
        Ok(template::management(o, mgmt, principal, topic, &conn_token, &member))
    }

    /// A new organization: its record, its management connection (holding
    /// the Spot account), the management template and its links; false for
    /// the answer to an earlier request with the same idempotency key. A
    /// refused request writes nothing: no record, no template object.
    pub async fn create(
        &self,
        tenant: &Tenant,
        req: CreateOrganization,
        idempotency_key: Option<String>,
    ) -> Result<(Organization, Connection, serde_json::Value, bool), OrganizationError> {
        if !tenant.may_access(&req.account_id) {
            return Err(ServiceError::AccountNotAllowed(req.account_id).into());
        }
        let mut req = req;
        req.organizational_unit_ids.sort();
        req.organizational_unit_ids.dedup();
        if req.organizational_unit_ids.len() > MAX_TARGETS {
            return Err(OrganizationError::TooManyTargets(req.organizational_unit_ids.len()));
        }
        self.connections.principal(req.partition)?;
        self.connections
            .customer_account(req.partition, req.management_account_id.as_str())?;
        self.callback(req.partition)?;
        let selection = Selection::resolve(req.partition, &req.permissions)
            .map_err(|e| OrganizationError::Connection(ServiceError::Selection(e)))?;
        render_shared(&selection).map_err(|e| OrganizationError::Connection(ServiceError::Render(e)))?;
        let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&req).expect("requests serialize")));
        let idem = idempotency_key.map(|key| Idempotency {
            user: tenant.sub.clone(),
            key,
            request_hash: request_hash.clone(),
        });
        let store = &self.store;
        // Refusals that need no write are made before any write.
        if let Some(idem) = &idem {
            if let Some((hash, id)) = store.idempotency_record(&tenant.org, idem, self.now()).await? {
                return self.replay(tenant, &hash, &request_hash, &id).await;
            }
        }
        if let Some(holder) = store.account_holder(&tenant.org, &req.account_id, self.now()).await? {
            return Err(ServiceError::AccountBusy(holder).into());
        }
        let config = &self.config;
        for _ in 0..WRITE_ATTEMPTS {
            let at = self.now();
            let o = Organization {
                id: OrganizationId::generate(),
                org: tenant.org.clone(),
                account_id: req.account_id.clone(),
                partition: req.partition,
                permissions: selection.permissions(),
                management_account_id: req.management_account_id.clone(),
                organizational_unit_ids: req.organizational_unit_ids.clone(),
                management_connection_id: ConnectionId::generate(),
                state: OrgState::Active,
                last_reconciliation: None,
                created_at: at,
                created_by: tenant.sub.clone(),
                updated_at: at,
                version: 1,
            };
            let mut mgmt = Connection::new_pending(NewConnection {
                id: o.management_connection_id.clone(),
                org: tenant.org.clone(),
                account_id: req.account_id.clone(),
                partition: req.partition,
                method: Method::Automatic,
                permissions: o.permissions.clone(),
                aws_account_id: Some(req.management_account_id.clone()),
                external_id: ExternalId::generate(&config.external_id_prefix),
                organization: Some(Membership {
                    organization_id: o.id.clone(),
                    management: true,
                    spot_account_assigned: true,
                    note: None,
                }),
                created_by: tenant.sub.clone(),
                at,
                expires_at: at + config.external_id_ttl_secs as i64,
            });
            let tpl = self.template_for(&o, &mgmt)?;
            let links = self.templates.links(config, &mgmt, &tpl, at).await;
            let links = links.map_err(ServiceError::TemplateUpload)?;
            mgmt.cloud_formation = Some(links.clone());
            let ev = Event::new(
                at,
                &mgmt,
                EventKind::Created,
                &tenant.sub,
                "ok",
                Some(serde_json::json!({"method": "automatic", "organizationId": o.id.as_str()})),
            );
            // Record and management connection in one transaction: a
            // management connection never lacks its organization, nor the reverse.
            let written = store.create_organization(&o, &mgmt, &ev, idem.as_ref(), at).await;
            if written.is_err() {
                if let Some(bucket) = config.template_bucket_for(o.partition) {
                    self.templates.discard(o.partition, bucket, &links).await;
                }
            }
            match written {
                Ok(()) => return Ok((o, mgmt, tpl, true)),
                Err(StoreError::IdempotencyKeyUsed {
                    request_hash: hash,
                    connection_id,
                }) => return self.replay(tenant, &hash, &request_hash, &connection_id).await,
                Err(StoreError::AccountHeld(id)) => return Err(ServiceError::AccountBusy(id).into()),
                Err(StoreError::ExternalIdTaken | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::TooManyConcurrentWrites.into())
    }

    /// The answer to an earlier create with the same idempotency key.
    async fn replay(
        &self,
        tenant: &Tenant,
        hash: &str,
        request_hash: &str,
        management: &ConnectionId,
    ) -> Result<(Organization, Connection, serde_json::Value, bool), OrganizationError> {
        if hash != request_hash {
            return Err(ServiceError::IdempotencyMismatch.into());
        }
        let mgmt = self.connections.get(tenant, management).await?;
        let Some(m) = mgmt.organization.as_ref().filter(|m| m.management) else {
            // The key created a connection, not an organization.
            return Err(ServiceError::IdempotencyMismatch.into());
        };
        let o = self.organization(tenant, &m.organization_id).await?;
        let tpl = self.template_for(&o, &mgmt)?;
        Ok((o, mgmt, tpl, false))
    }

    /// An organization by id alone, of any tenant, for a caller that proves
    /// its right to it another way (the organization's callback token).
    pub async fn get_for_token(&self, id: &OrganizationId) -> Result<Option<Organization>, OrganizationError> {
        Ok(self.store.get_organization(id).await?)
    }

    /// A connection by id alone, for the organization's callback (its token
    /// proves the right; the caller checks the membership).
    pub async fn member_for_token(&self, id: &ConnectionId) -> Result<Option<Connection>, OrganizationError> {
        Ok(self.connections.get_for_token(id).await?)
    }

    /// The tenant's organization, or NotFound.
    pub async fn organization(&self, tenant: &Tenant, id: &OrganizationId) -> Result<Organization, OrganizationError> {
        match self.store.get_organization(id).await? {
            Some(o) if o.org == tenant.org && tenant.may_access(&o.account_id) => Ok(o),
            _ => Err(OrganizationError::NotFound),
        }
    }

    /// Members read per store page (`Config::member_page`).
    fn page(&self) -> usize {
        self.config.member_page.clamp(1, crate::store::MAX_PAGE)
    }

    /// Every member of the organization, page after page.
    pub(super) async fn all_members(&self, id: &OrganizationId) -> Result<Vec<Connection>, OrganizationError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_members(id, after.as_deref(), self.page()).await?;
            out.extend(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    pub async fn snapshot(
        &self,
        tenant: &Tenant,
        id: &OrganizationId,
    ) -> Result<OrganizationSnapshot, OrganizationError> {
        let o = self.organization(tenant, id).await?;
        self.snapshot_of(tenant, o).await
    }

    /// What the token may see: members assigned to a Spot account it may not
    /// act on are left out, and so are their AWS accounts in the last
    /// reconciliation (they would read as missing). Unassigned members scope
    /// to the organization's Spot account, which `organization` checked.
    async fn snapshot_of(
        &self,
        tenant: &Tenant,
        mut o: Organization,
    ) -> Result<OrganizationSnapshot, OrganizationError> {
        let management = self
            .store
            .get(&o.org, &o.management_connection_id)
            .await?
            .ok_or(OrganizationError::NotFound)?;
        let mut members = self.all_members(&o.id).await?;
        let hidden: std::collections::HashSet<AccountId> = members
            .iter()
            .filter(|c| !tenant.may_access(&c.account_id))
            .filter_map(|c| c.aws_account_id.clone())
            .collect();
        members.retain(|c| tenant.may_access(&c.account_id));
        if let Some(l) = o.last_reconciliation.as_mut().and_then(Reconciliation::listing_mut) {
            l.accounts.retain(|a| !hidden.contains(&a.aws_account_id));
        }
        Ok(OrganizationSnapshot {
            organization: o,
            management,
            members,
        })
    }

    /// The management template again (the one the links point to).
    pub async fn template(&self, tenant: &Tenant, id: &OrganizationId) -> Result<serde_json::Value, OrganizationError> {
        let s = self.snapshot(tenant, id).await?;
        self.template_for(&s.organization, &s.management)
    }

    /// One page of members, for `GET /v1/connections?organizationId=`, by
    /// AWS account; the cursor is sealed like the connection list's, and the
    /// token and filters (status, health, checkedBefore; `q.account_id` is
    /// not for members) apply as they do there.
    pub async fn member_page(
        &self,
        tenant: &Tenant,
        id: &OrganizationId,
        q: &ListQuery,
    ) -> Result<crate::connections::ClientPage<Connection>, OrganizationError> {
        let t = self.now();
        let scope = tenant.scope();
        let what = format!("members:{}", id.as_str());
        let filters = q.bound_filters();
        let binding = crate::connections::cursor::Binding {
            what: &what,
            org: &tenant.org,
            user: &tenant.sub,
            scope: &scope,
            query: &filters,
        };
        let cursors = &self.cursors;
        let after = q
            .cursor
            .as_deref()
            .map(|c| cursors.open(&binding, c, t))
            .transpose()
            .map_err(|e| OrganizationError::Connection(ServiceError::InvalidCursor(e)))?;
        self.organization(tenant, id).await?;
        let limit = q
            .limit
            .unwrap_or(crate::connections::DEFAULT_PAGE)
            .clamp(1, crate::store::MAX_PAGE);
        let page = self.store.list_members(id, after.as_deref(), limit).await?;
        let items = page
            .items
            .into_iter()
            .filter(|c| tenant.may_access(&c.account_id) && q.matches(c, t))
            .collect();
        Ok(crate::connections::ClientPage {
            items,
            next_cursor: page.next.map(|p| cursors.seal(&binding, &p, t)),
        })
    }

    /// Reads Organizations through the management role and records what it
    /// saw, or why it could not look.
    pub async fn sync(&self, tenant: &Tenant, id: &OrganizationId) -> Result<OrganizationSnapshot, OrganizationError> {
        let o = self.organization(tenant, id).await?;
        self.refuse_without_management(&o).await?;
        // Each sync reads Organizations through the customer's role.
        self.connections.take_rate(tenant, crate::limits::Limit::Syncs).await?;
        let o = self.reconcile(o).await?;
        self.snapshot_of(tenant, o).await
    }

    /// Reconciles the organization a management connection belongs to: the
    /// scheduled re-check calls this for every connected management connection.
    pub async fn reconcile_for(&self, management: &Connection) -> Result<Option<Organization>, OrganizationError> {
        let Some(m) = management.organization.as_ref().filter(|m| m.management) else {
            return Ok(None);
        };
        let Some(o) = self.store.get_organization(&m.organization_id).await? else {
            return Ok(None);
        };
        if o.state != OrgState::Active {
            return Ok(None);
        }
        self.reconcile(o).await.map(Some)
    }

    async fn reconcile(&self, o: Organization) -> Result<Organization, OrganizationError> {
        if o.state != OrgState::Active {
            return Err(OrganizationError::Offboarded);
        }
        self.refuse_without_management(&o).await?;
        let at = self.now();
        let seen = match self.session(&o).await {
            Ok(s) => match s.accounts(&o.organizational_unit_ids, &o.management_account_id).await {
                Ok(accounts) => {
                    let mut l = self.with_guardrails(&s, &o, Listing::new(at, accounts)).await;
                    if let Some(prior) = o.listing() {
                        l.keep_guardrails_of(prior);
                    }
                    Ok(l)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let mut o = o;
        for attempt in 0..WRITE_ATTEMPTS {
            let prior = o.clone();
            let rec = match &seen {
                Ok(listing) => Reconciliation::Listed(listing.clone()),
                // Any read failed: not a listing. The record says why, and
                // the listing before stands (re-read after a conflict).
                Err(e) => Reconciliation::failed(o.last_reconciliation.as_ref(), at, e.clone()),
            };
            let complete = matches!(rec, Reconciliation::Listed(_));
            o.last_reconciliation = Some(rec);
            o.updated_at = at;
            o.version += 1;
            // Announced before the record is written: a write that fails
            // leaves the old record, and the next reconciliation announces
            // the same changes again (at least once, never lost). A failed
            // one changes no member: nothing to announce.
            if complete {
                self.announce_members(&prior, &o, at).await?;
            }
            match self.store.update_organization(&o).await {
                Ok(()) => return Ok(o),
                Err(StoreError::Conflict) if attempt + 1 < WRITE_ATTEMPTS => {
                    o = self
                        .store
                        .get_organization(&o.id)
                        .await?
                        .ok_or(OrganizationError::NotFound)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// An `organization.member_changed` event for each member connection
    /// whose state the new reconciliation changes.
    async fn announce_members(
        &self,
        prior: &Organization,
        next: &Organization,
        at: i64,
    ) -> Result<(), OrganizationError> {
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_members(&next.id, after.as_deref(), self.page()).await?;
            for c in &page.items {
                // Decided again on the stored connection if it changed meanwhile.
                if crate::domain::MemberChange::between(prior, c, next, c, at).is_some() {
                    self.connections.announce_member(c, prior, next).await?;
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(()),
            }
        }
    }

    /// The listing with its guardrails' verdicts; a guardrail read that
    /// fails (a management stack from before they were read lacks the
    /// grant) leaves the listing whole and says why.
    async fn with_guardrails(&self, s: &super::aws::Session, o: &Organization, mut l: Listing) -> Listing {
        let verdicts = match self.connections.principal(o.partition) {
            Ok(principal) => {
                let needs = guardrails::Needs::of(o, principal);
                guardrails::assess_accounts(&guardrails::Reader::new(s), o, &l.accounts, &needs).await
            }
            Err(e) => Err(e.to_string()),
        };
        l.set_guardrails(verdicts);
        l
    }

    /// A session in the management account, once its role is connected.
    pub(super) async fn session(&self, o: &Organization) -> Result<super::aws::Session, String> {
        let mgmt = self
            .store
            .get(&o.org, &o.management_connection_id)
            .await
            .map_err(|e| format!("Spot could not read the management connection: {e}"))?
            .ok_or("the management connection is gone")?;
        // No role to assume: its stack was deleted (what to do, in words).
        if o.state_with(&mgmt) == OrgState::ManagementStackDeleted {
            return Err(o.state_reason(OrgState::ManagementStackDeleted).unwrap_or_default());
        }
        let (Status::Connected, Some(role)) = (mgmt.status(self.now()), mgmt.role_arn.as_ref()) else {
            return Err(format!(
                "The management account {} is not connected yet: create the management stack there first.",
                o.management_account_id
            ));
        };
        self.reader
            .session(role, mgmt.external_id.as_str(), &format!("spot-{}", o.id.short()))
            .await
    }

    /// The Spot accounts, sorted, of members offboarding would disconnect
    /// that the token may not act on.
    async fn members_not_allowed(
        &self,
        tenant: &Tenant,
        id: &OrganizationId,
    ) -> Result<Vec<SpotAccountId>, OrganizationError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_members(id, after.as_deref(), self.page()).await?;
            out.extend(
                page.items
                    .into_iter()
                    .filter(|m| m.state != Status::Disconnected && !tenant.may_access(&m.account_id))
                    .map(|m| m.account_id),
            );
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Offboards: every member and the management connection disconnected
    /// (their external IDs retired); the customer's stacks and roles stay.
    /// The token must allow every member's Spot account, or nothing changes.
    pub async fn offboard(
        &self,
        tenant: &Tenant,
        id: &OrganizationId,
    ) -> Result<OrganizationSnapshot, OrganizationError> {
        let mut o = self.organization(tenant, id).await?;
        let missing = self.members_not_allowed(tenant, id).await?;
        if !missing.is_empty() {
            return Err(OrganizationError::MembersNotAllowed(missing));
        }
        if o.state == OrgState::Active {
            o.state = OrgState::Offboarded;
            o.version += 1;
            o.updated_at = self.now();
            self.store.update_organization(&o).await?;
        }
        // As the caller: a member assigned out of its reach since the check is
        // not found and stays connected; the 403 names it (offboarding again finishes).
        let mut skipped = false;
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_members(&o.id, after.as_deref(), self.page()).await?;
            for m in page.items.iter().filter(|m| m.state != Status::Disconnected) {
                match self.connections.disconnect(tenant, &m.id).await {
                    Ok(_) => {}
                    Err(ServiceError::NotFound) => skipped = true,
                    Err(e) => return Err(e.into()),
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let missing = if skipped {
            self.members_not_allowed(tenant, id).await?
        } else {
            Vec::new()
        };
        if !missing.is_empty() {
            return Err(OrganizationError::MembersNotAllowed(missing));
        }
        self.connections.disconnect(tenant, &o.management_connection_id).await?;
        self.snapshot_of(tenant, o).await
    }
}
