//! Recovery a partner does alone: enable a disabled webhook, and send again
//! what failed or was dropped (every such delivery since a time, or one by
//! its message id), bringing forward too what still waits minutes or hours
//! for its next retry. A resent delivery keeps its message id and body (the
//! `webhook-id` receivers de-duplicate by) and starts its attempts afresh,
//! due now. In AWS the store's write reaches the attempt queue through the
//! table's stream (`WebhookStore::resend_delivery`), as a new delivery's
//! does; locally the dispatcher finds it due.

use super::{WebhookError, WebhookService, ATTEMPT_TIMEOUT, DISABLED_EVENT, LEASE_SECS, WRITE_ATTEMPTS};
use crate::domain::{is_message_id, Delivery, DeliveryState, ParseError, Webhook, WebhookId, WebhookState};
use crate::store::{StoreError, DELIVERY_RETENTION_SECS, MAX_DELIVERIES_PER_WEBHOOK, MAX_PAGE};
use crate::tenancy::Tenant;

/// Deliveries one `recover` call sends again; past it the answer says it
/// is not complete, and the same call again takes the rest (those it sent
/// are pending then, so they are not taken twice).
pub const MAX_RESENDS_PER_CALL: usize = MAX_DELIVERIES_PER_WEBHOOK;

/// Whether a resend may take `d` at `now`: it failed (every attempt, or
/// dropped while its webhook was disabled), or it failed at least once and
/// waits for a retry further off than any sender's lease (so none is
/// sending it now; one due sooner is attempted within a minute anyway).
/// Never the log's `webhook.disabled` line.
fn resendable(d: &Delivery, now: i64) -> bool {
    let lease = ATTEMPT_TIMEOUT.as_secs() as i64 + LEASE_SECS;
    let waits =
        d.state == DeliveryState::Pending && d.attempts > 0 && d.next_attempt_at.is_some_and(|t| t > now + lease);
    d.event_type != DISABLED_EVENT && (d.state == DeliveryState::Failed || waits)
}

/// What `recover` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Deliveries made pending again.
    pub queued: usize,
    /// False when it stopped at `MAX_RESENDS_PER_CALL`.
    pub complete: bool,
}

impl WebhookService {
    /// Active again, its run of failures forgotten; an active one is
    /// answered as it is. What was dropped meanwhile is not sent until
    /// `recover` asks.
    pub async fn enable(&self, tenant: &Tenant, id: &WebhookId) -> Result<Webhook, WebhookError> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut hook = self.get(tenant, id).await?;
            if !hook.enable(self.now()) {
                return Ok(hook);
            }
            match self.store.update_webhook(&hook).await {
                Ok(()) => return Ok(hook),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WebhookError::Store(StoreError::Conflict))
    }

    /// The active webhook, for a resend (a disabled one sends nothing).
    async fn sending(&self, tenant: &Tenant, id: &WebhookId) -> Result<Webhook, WebhookError> {
        let hook = self.get(tenant, id).await?;
        match hook.state {
            WebhookState::Active => Ok(hook),
            WebhookState::Disabled => Err(WebhookError::Disabled),
        }
    }

    /// Sends again every delivery of the webhook created at `since` or
    /// later that `resendable` takes (failed, dropped while the webhook was
    /// disabled, or waiting long for a retry), newest first, page by page.
    /// `since` is at most the deliveries' retention (30 days) ago, and not
    /// in the future.
    pub async fn recover(&self, tenant: &Tenant, id: &WebhookId, since: i64) -> Result<Recovered, WebhookError> {
        self.sending(tenant, id).await?;
        let now = self.now();
        if since < now - DELIVERY_RETENTION_SECS {
            return Err(ParseError::new(
                "since",
                "is more than 30 days ago; deliveries are kept 30 days, so name a later time",
            )
            .into());
        }
        if since > now {
            return Err(ParseError::new("since", "is in the future; name the time the trouble began").into());
        }
        let mut queued = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self.store.deliveries(id, after.as_deref(), MAX_PAGE).await?;
            // Newest first: once one is older than `since`, the rest are too.
            let reached_since = page.items.iter().any(|d| d.created_at < since);
            let mut picks: Vec<Delivery> = page
                .items
                .into_iter()
                .filter(|d| d.created_at >= since && resendable(d, now))
                .collect();
            let room = MAX_RESENDS_PER_CALL - queued;
            let cut = picks.len() > room;
            picks.truncate(room);
            let sent = futures::future::join_all(picks.into_iter().map(|d| self.resend(d, now))).await;
            for r in sent {
                queued += usize::from(r?);
            }
            if cut || (queued == MAX_RESENDS_PER_CALL && page.next.is_some() && !reached_since) {
                return Ok(Recovered {
                    queued,
                    complete: false,
                });
            }
            match page.next {
                Some(next) if !reached_since => after = Some(next),
                _ => break,
            }
        }
        Ok(Recovered { queued, complete: true })
    }

    /// Sends one delivery again, by its message id: one that failed, that
    /// succeeded (the receiver lost it) or that waits long for a retry; not
    /// one being sent or due within the lease (`DeliveryPending`).
    pub async fn retry(&self, tenant: &Tenant, id: &WebhookId, message_id: &str) -> Result<Delivery, WebhookError> {
        self.sending(tenant, id).await?;
        if !is_message_id(message_id) {
            return Err(WebhookError::DeliveryNotFound);
        }
        let d = self
            .store
            .delivery_by_message(id, message_id)
            .await?
            .ok_or(WebhookError::DeliveryNotFound)?;
        if d.event_type == DISABLED_EVENT {
            return Err(WebhookError::NotResendable);
        }
        let now = self.now();
        if !d.is_finished() && !resendable(&d, now) {
            return Err(WebhookError::DeliveryPending);
        }
        let mut resent = d.clone();
        resent.resend(now);
        match self.store.resend_delivery(&resent).await {
            Ok(()) => Ok(resent),
            // A sender or another resend got there first: it is pending now.
            Err(StoreError::Conflict) => Err(WebhookError::DeliveryPending),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `d` pending again; false if it changed since it was read
    /// (another call resent it).
    async fn resend(&self, mut d: Delivery, now: i64) -> Result<bool, WebhookError> {
        d.resend(now);
        match self.store.resend_delivery(&d).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
