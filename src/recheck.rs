//! The scheduled re-check: every connected connection, in bounded batches,
//! its health recorded when it changes (drift, removed permissions, a role
//! deleted).

use crate::domain::Health;
use crate::services::Services;
use crate::tenancy::Tenant;
use serde::Serialize;
use std::time::Instant;

/// Connections checked at once: enough to overlap AWS latency, few enough
/// not to be throttled by STS.
const CONCURRENCY: usize = 5;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub checked: usize,
    pub healthy: usize,
    pub degraded: usize,
    pub broken: usize,
    pub changed: usize,
    pub errors: usize,
    /// Set when the deadline stopped the run before the last page.
    pub unfinished: bool,
}

/// Re-checks connected connections page by page until done or `deadline`.
pub async fn run(state: &Services, deadline: Instant) -> Summary {
    let mut summary = Summary::default();
    let mut cursor: Option<String> = None;
    loop {
        let page = match state
            .connections
            .store
            .list_connected(cursor.as_deref(), state.config.recheck_batch)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot list connected connections");
                summary.errors += 1;
                return summary;
            }
        };
        for chunk in page.items.chunks(CONCURRENCY) {
            if Instant::now() >= deadline {
                summary.unfinished = true;
                return summary;
            }
            let results = futures::future::join_all(chunk.iter().map(|c| async move {
                let tenant = Tenant {
                    org: c.org.clone(),
                    sub: "scheduled-recheck".into(),
                    accounts: None,
                };
                (c.health, state.connections.recheck(&tenant, &c.id).await)
            }))
            .await;
            for (before, r) in results {
                match r {
                    Ok((c, _)) => {
                        summary.checked += 1;
                        // An organization's management connection: reconcile its members too.
                        if let Err(e) = state.organizations.reconcile_for(&c).await {
                            tracing::warn!(error = %e, connection = c.id.as_str(), "organization reconciliation failed");
                        }
                        match c.health {
                            Some(Health::Healthy) => summary.healthy += 1,
                            Some(Health::Degraded) => summary.degraded += 1,
                            Some(Health::Broken) => summary.broken += 1,
                            None => {}
                        }
                        if c.health != before {
                            summary.changed += 1;
                            tracing::info!(connection = c.id.as_str(), health = ?c.health, before = ?before, "health changed");
                        }
                    }
                    Err(e) => {
                        summary.errors += 1;
                        tracing::warn!(error = ?e, "re-check failed");
                    }
                }
            }
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => return summary,
        }
    }
}
