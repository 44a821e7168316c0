//! Paging through a tenant's connections and a connection's audit trail:
//! only what the token may see is queried, and cursors are sealed (see
//! `cursor`), opened before any store call.

use super::cursor::Binding;
use super::service::{ConnectionService, ListQuery};
use super::ServiceError;
use crate::domain::SpotAccountId;
use crate::domain::{Connection, ConnectionId, Event};
use crate::store::{account_prefix, Page, MAX_PAGE};
use crate::tenancy::Tenant;

/// Page size when the client names none.
pub const DEFAULT_PAGE: usize = 50;
/// Store queries one list request makes at most. A token limited to many
/// accounts, most of them without connections, gets a short page and a
/// cursor rather than a request that takes as long as its account list.
const MAX_QUERIES_PER_PAGE: usize = 10;

/// A page as the client sees it: items and a sealed cursor.
#[derive(Debug, Clone)]
pub struct ClientPage<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl ListQuery {
    /// Whether `c` passes the status, health and checkedBefore filters: the
    /// connection list and an organization's member list apply these same.
    pub fn matches(&self, c: &Connection, now: i64) -> bool {
        self.status.is_none_or(|s| c.status(now) == s)
            && self.health.is_none_or(|h| c.health == Some(h))
            && self
                .checked_before
                .is_none_or(|before| last_checked(c).is_some_and(|at| at < before))
    }

    /// Those filters as a cursor binds them; health and checkedBefore only
    /// when set, so cursors issued before they existed stay valid.
    pub fn bound_filters(&self) -> String {
        let mut filters = format!("status={}", self.status.map(|s| s.as_str()).unwrap_or(""));
        if let Some(h) = self.health {
            filters.push_str(&format!("\nhealth={h:?}"));
        }
        if let Some(t) = self.checked_before {
            filters.push_str(&format!("\ncheckedBefore={t}"));
        }
        filters
    }
}

impl ConnectionService {
    /// One page of the tenant's connections the token may see, by Spot
    /// account then creation time.
    pub async fn list(&self, tenant: &Tenant, q: &ListQuery) -> Result<ClientPage<Connection>, ServiceError> {
        let t = self.now();
        let scope = tenant.scope();
        let filters = format!(
            "accountId={}\n{}",
            q.account_id.as_ref().map(SpotAccountId::as_str).unwrap_or(""),
            q.bound_filters()
        );
        let binding = Binding {
            what: "connections",
            org: &tenant.org,
            user: &tenant.sub,
            scope: &scope,
            query: &filters,
        };
        let mut from = q
            .cursor
            .as_deref()
            .map(|c| self.cursors.open(&binding, c, t))
            .transpose()
            .map_err(ServiceError::InvalidCursor)?;
        // The accounts to query, in the store's order (by sort-key prefix).
        let accounts: Vec<Option<SpotAccountId>> = match (&q.account_id, &tenant.accounts) {
            (Some(a), _) if !tenant.may_access(a) => Vec::new(),
            (Some(a), _) => vec![Some(a.clone())],
            (None, None) => vec![None],
            (None, Some(list)) => {
                let mut list: Vec<SpotAccountId> = list.clone();
                list.sort_by_key(|a| account_prefix(Some(a)));
                list.dedup();
                list.into_iter().map(Some).collect()
            }
        };
        let mut i = match &from {
            None => 0,
            // Sealed by us for this very query, so always found; checked all the same.
            Some(p) => accounts
                .iter()
                .position(|a| p.starts_with(&account_prefix(a.as_ref())))
                .ok_or(ServiceError::InvalidCursor(super::cursor::CursorError::Invalid))?,
        };
        let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let mut items: Vec<Connection> = Vec::new();
        let mut next: Option<String> = None;
        let mut queries = 0;
        while i < accounts.len() {
            if queries == MAX_QUERIES_PER_PAGE {
                next = Some(from.take().unwrap_or_else(|| account_prefix(accounts[i].as_ref())));
                break;
            }
            queries += 1;
            let page: Page = self
                .store
                .list(&tenant.org, accounts[i].as_ref(), from.as_deref(), limit - items.len())
                .await?;
            items.extend(page.items);
            from = page.next;
            if from.is_none() {
                i += 1;
            }
            if items.len() >= limit {
                // Resume where this page ended: inside an account, or at the next one.
                next = from
                    .take()
                    .or_else(|| accounts.get(i).map(|a| account_prefix(a.as_ref())));
                break;
            }
        }
        items.retain(|c| tenant.may_access(&c.account_id) && q.matches(c, t));
        Ok(ClientPage {
            items,
            next_cursor: next.map(|p| self.cursors.seal(&binding, &p, t)),
        })
    }

    /// One page of the connection's audit trail, oldest first.
    pub async fn events(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ClientPage<Event>, ServiceError> {
        let t = self.now();
        let scope = tenant.scope();
        let what = format!("events:{}", id.as_str());
        let binding = Binding {
            what: &what,
            org: &tenant.org,
            user: &tenant.sub,
            scope: &scope,
            query: "",
        };
        let after = cursor
            .map(|c| self.cursors.open(&binding, c, t))
            .transpose()
            .map_err(ServiceError::InvalidCursor)?;
        self.get(tenant, id).await?;
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let page = self.store.events(id, after.as_deref(), limit).await?;
        Ok(ClientPage {
            items: page.items,
            next_cursor: page.next.map(|p| self.cursors.seal(&binding, &p, t)),
        })
    }
}

/// When the connection was last checked conclusively; records from before
/// `checked_at` was kept count from their verification.
pub fn last_checked(c: &Connection) -> Option<i64> {
    c.checked_at.or(c.verified_at)
}
