//! Partners' webhooks, independent of HTTP: register, list, rotate the
//! signing secret, delete, send a test event (a few a minute), read the
//! deliveries log, enable and recover (`recovery`); fan an event out to a
//! tenant's webhooks (one delivery each, idempotent by message id); and one
//! attempt at a delivery, with what follows from it
//! (the next attempt's time, the endpoint disabled). Who runs the attempts
//! (the local loop, or the queue in AWS) is the entry point's business
//! (`crate::events`).

mod address;
mod error;
mod payloads;
mod recovery;
mod send;

pub use error::WebhookError;
pub use payloads::{disabled_payload, test_payload, DisabledPayload, TestPayload, DISABLED_EVENT};
pub use recovery::{Recovered, MAX_RESENDS_PER_CALL};
pub use send::{sign, Sender, UrlRefused, ATTEMPT_TIMEOUT};

use crate::clock::{iso, Clock};
use crate::connections::cursor::{Binding, Cursors};
use crate::connections::{ClientPage, Deps, DEFAULT_PAGE};
use crate::domain::{
    parse_event_types, AttemptResult, Delivery, DeliveryState, Disabling, Webhook, WebhookId, WebhookState, WebhookUrl,
    DISABLE_AFTER_SECS, MAX_DESCRIPTION_LEN, TEST_EVENT,
};
use crate::shares::TenantShare;
pub use crate::store::MAX_WEBHOOKS;
use crate::store::{DynStore, StoreError, MAX_PAGE};
use crate::tenancy::Tenant;
use std::sync::Arc;

/// `POST …/test` calls a webhook takes per minute (of the clock, counted in
/// the store, so every process shares the count).
pub const TESTS_PER_MINUTE: u32 = crate::limits::WEBHOOK_TESTS_PER_MINUTE;
/// How long a sender holds a delivery it is sending (beyond the attempt's
/// timeout), so no other sender takes it meanwhile.
pub const LEASE_SECS: i64 = 30;
const WRITE_ATTEMPTS: u32 = 5;

/// What `POST /v1/webhooks` takes.
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
}

/// What one attempt led to.
pub struct AttemptOutcome {
    /// The delivery as recorded after the attempt (None: another sender
    /// holds it, or it was not due).
    pub delivery: Option<Delivery>,
    /// The webhook and why, when this attempt disabled it.
    pub disabled: Option<(Webhook, Disabling)>,
}

#[derive(Clone)]
pub struct WebhookService {
    store: DynStore,
    cursors: Arc<Cursors>,
    clock: Clock,
    sender: Sender,
    /// Each organization's share of the dispatcher's attempt slots (keys
    /// `wshare#<org>#<n>`): see `crate::events::attempts`.
    share: TenantShare,
}

impl WebhookService {
    pub fn new(deps: &Deps) -> Self {
        WebhookService {
            store: deps.store.clone(),
            cursors: deps.cursors.clone(),
            clock: deps.clock.clone(),
            sender: Sender::new(deps.config.webhook_allow_hosts.clone()),
            share: TenantShare::new(deps.store.clone(), "wshare", deps.config.webhook_tenant_share),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The organizations' shares of the attempts in flight.
    pub fn share(&self) -> &TenantShare {
        &self.share
    }

    /// Webhooks are the tenant's as a whole: a token limited to some Spot
    /// accounts manages none (a webhook receives every account's events).
    fn full_access(tenant: &Tenant) -> Result<(), WebhookError> {
        match tenant.accounts {
            None => Ok(()),
            Some(_) => Err(WebhookError::NeedsFullAccess),
        }
    }

    pub async fn create(&self, tenant: &Tenant, req: NewWebhook) -> Result<Webhook, WebhookError> {
        Self::full_access(tenant)?;
        let events = req.events.map(parse_event_types).transpose()?;
        if let Some(d) = &req.description {
            if d.chars().count() > MAX_DESCRIPTION_LEN {
                return Err(WebhookError::DescriptionTooLong);
            }
        }
        self.sender.admit(&req.url).await?;
        let hook = Webhook::new(&tenant.org, &tenant.sub, req.url, events, req.description, self.now());
        // The store counts and writes in one step: concurrent creations
        // cannot pass the cap together.
        match self.store.create_webhook(&hook).await? {
            true => Ok(hook),
            false => Err(WebhookError::TooMany),
        }
    }

    pub async fn list(&self, tenant: &Tenant) -> Result<Vec<Webhook>, WebhookError> {
        Self::full_access(tenant)?;
        Ok(self.store.list_webhooks(&tenant.org, MAX_WEBHOOKS).await?)
    }

    pub async fn get(&self, tenant: &Tenant, id: &WebhookId) -> Result<Webhook, WebhookError> {
        Self::full_access(tenant)?;
        self.store
            .get_webhook(&tenant.org, id)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    pub async fn delete(&self, tenant: &Tenant, id: &WebhookId) -> Result<(), WebhookError> {
        Self::full_access(tenant)?;
        match self.store.delete_webhook(&tenant.org, id).await? {
            true => Ok(()),
            false => Err(WebhookError::NotFound),
        }
    }

    /// A new secret; each replaced one goes on signing until its own
    /// expiry (`Webhook::rotate`).
    pub async fn rotate_secret(&self, tenant: &Tenant, id: &WebhookId) -> Result<Webhook, WebhookError> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut hook = self.get(tenant, id).await?;
            hook.rotate(self.now());
            match self.store.update_webhook(&hook).await {
                Ok(()) => return Ok(hook),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WebhookError::Store(StoreError::Conflict))
    }

    /// Queues a `webhook.test` event for this webhook (sent like any other),
    /// at most `TESTS_PER_MINUTE` a minute.
    pub async fn test(&self, tenant: &Tenant, id: &WebhookId) -> Result<Delivery, WebhookError> {
        let hook = self.get(tenant, id).await?;
        if hook.state == WebhookState::Disabled {
            return Err(WebhookError::Disabled);
        }
        let now = self.now();
        self.take_test_slot(id, now).await?;
        let message_id = format!("msg_test_{}", crate::ids::random_token(12));
        let d = Delivery::new(&hook, message_id, TEST_EVENT, test_payload(&hook, now), now);
        self.store.enqueue_delivery(&d).await?;
        Ok(d)
    }

    /// One of the minute's `TESTS_PER_MINUTE` slots for this webhook
    /// (`crate::limits`, held in the store across processes); none left:
    /// refused until the minute ends.
    async fn take_test_slot(&self, id: &WebhookId, now: i64) -> Result<(), WebhookError> {
        crate::limits::RateLimiter::new(self.store.clone())
            .take(crate::limits::Limit::WebhookTests, id.as_str(), TESTS_PER_MINUTE, now)
            .await?
            .map_err(|t| WebhookError::TestRateLimited {
                retry_after_secs: t.retry_after_secs,
            })
    }

    /// One page of the webhook's deliveries, newest first.
    pub async fn deliveries(
        &self,
        tenant: &Tenant,
        id: &WebhookId,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ClientPage<Delivery>, WebhookError> {
        let now = self.now();
        let what = format!("deliveries:{}", id.as_str());
        let binding = Binding {
            what: &what,
            org: &tenant.org,
            user: &tenant.sub,
            scope: "*",
            query: "",
        };
        Self::full_access(tenant)?;
        let after = cursor.map(|c| self.cursors.open(&binding, c, now)).transpose()?;
        self.get(tenant, id).await?;
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let page = self.store.deliveries(id, after.as_deref(), limit).await?;
        Ok(ClientPage {
            items: page.items,
            next_cursor: page.next.map(|p| self.cursors.seal(&binding, &p, now)),
        })
    }

    /// One delivery per active webhook of `org` that wants `event_type`
    /// (a repeat of the same message, at any later time, writes none: the
    /// store keys it by webhook and message id). In AWS the table's stream
    /// then queues each new one, as it does a test delivery.
    pub async fn fan_out(&self, org: &str, event_type: &str, message_id: &str, body: &str) -> Result<(), StoreError> {
        let now = self.now();
        for hook in self.store.list_webhooks(org, MAX_WEBHOOKS).await? {
            if hook.wants(event_type) {
                let d = Delivery::new(&hook, message_id.to_owned(), event_type, body.to_owned(), now);
                self.store.enqueue_delivery(&d).await?;
            }
        }
        Ok(())
    }

    /// Deliveries due now, of every tenant.
    pub async fn due(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.store.due_deliveries(self.now(), limit).await
    }

    /// Deliveries due already at `at` (overdue since, if `at` is past), of
    /// every tenant: the sweeper's, for those whose attempt never came.
    pub async fn due_at(&self, at: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.store.due_deliveries(at, limit).await
    }

    /// A stored delivery by its key (what a queue message names).
    pub async fn load(&self, hook: &WebhookId, position: &str) -> Result<Option<Delivery>, StoreError> {
        self.store.get_delivery(hook, position).await
    }

    /// One attempt at a due delivery: leased first (so no other sender
    /// sends it too), sent, recorded with its next attempt, and counted on
    /// the endpoint, which five days of failures or a 410 disable.
    pub async fn attempt(&self, mut d: Delivery) -> Result<AttemptOutcome, StoreError> {
        let now = self.now();
        let skipped = AttemptOutcome {
            delivery: None,
            disabled: None,
        };
        if d.state != DeliveryState::Pending || d.next_attempt_at.is_none_or(|t| t > now) {
            return Ok(skipped);
        }
        let hook = match self.store.get_webhook(&d.org, &d.webhook_id).await? {
            Some(h) if h.state == WebhookState::Active => h,
            other => {
                let why = match other {
                    Some(_) => "the webhook is disabled",
                    None => "the webhook was deleted",
                };
                d.abandon(why, now);
                return match self.store.update_delivery(&d).await {
                    Ok(()) | Err(StoreError::Conflict) => Ok(skipped),
                    Err(e) => Err(e),
                };
            }
        };
        d.version += 1;
        d.next_attempt_at = Some(now + ATTEMPT_TIMEOUT.as_secs() as i64 + LEASE_SECS);
        match self.store.update_delivery(&d).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Ok(skipped),
            Err(e) => return Err(e),
        }
        let sent = self.sender.send(&hook, &d, now).await;
        tracing::info!(
            webhook = hook.id.as_str(),
            message = d.message_id.as_str(),
            attempt = d.attempts + 1,
            status = sent.attempt.status,
            result = ?sent.result,
            latency_ms = sent.attempt.latency_ms,
            error = sent.attempt.error.as_deref(),
            "webhook attempt"
        );
        d.record(sent.attempt, sent.result, sent.retry_after, jitter());
        self.store.update_delivery(&d).await?;
        let disabled = self.count_on_endpoint(&hook, sent.result).await?;
        Ok(AttemptOutcome {
            delivery: Some(d),
            disabled,
        })
    }

    /// Records the attempt on the webhook (a success only ends a run of
    /// failures); answers the webhook if this disabled it, after writing
    /// the disabling into its deliveries log. Each failure is counted, but
    /// only time or a 410 disables, so attempts racing each other (a burst
    /// failing together) change nothing that matters: a count lost after
    /// `WRITE_ATTEMPTS` conflicts is given up, not the attempt.
    async fn count_on_endpoint(
        &self,
        hook: &Webhook,
        result: AttemptResult,
    ) -> Result<Option<(Webhook, Disabling)>, StoreError> {
        // A success when the webhook was not failing writes nothing: the
        // common case costs no write. (A failure another attempt records
        // while this one sends stays until the next success.)
        let clean = |h: &Webhook| h.failing_since.is_none() && h.consecutive_failures == 0;
        let mut hook = hook.clone();
        for _ in 0..WRITE_ATTEMPTS {
            if result == AttemptResult::Succeeded && clean(&hook) {
                return Ok(None);
            }
            let now = self.now();
            let disabling = hook.record_attempt(result, now);
            match self.store.update_webhook(&hook).await {
                Ok(()) => {
                    let Some(why) = disabling else { return Ok(None) };
                    tracing::warn!(webhook = hook.id.as_str(), reason = why.code(), "webhook disabled");
                    self.log_disabled(&hook, why, now).await?;
                    return Ok(Some((hook, why)));
                }
                Err(StoreError::Conflict) => match self.store.get_webhook(&hook.org, &hook.id).await? {
                    Some(fresh) => hook = fresh,
                    None => return Ok(None),
                },
                Err(e) => return Err(e),
            }
        }
        tracing::info!(
            webhook = hook.id.as_str(),
            ?result,
            "attempt not counted on a webhook changed concurrently"
        );
        Ok(None)
    }

    /// The deliveries log's line for a disabling: a `webhook.disabled`
    /// record, never sent, saying why.
    async fn log_disabled(&self, hook: &Webhook, why: Disabling, now: i64) -> Result<(), StoreError> {
        let body = disabled_payload(hook, why, now);
        let mut d = Delivery::new(
            hook,
            format!("msg_disabled_{}", crate::ids::random_token(8)),
            DISABLED_EVENT,
            body,
            now,
        );
        d.abandon(&disabled_reason(hook, why), now);
        d.version = 1;
        self.store.enqueue_delivery(&d).await.map(|_| ())
    }
}

/// Why the webhook was disabled, for a person reading its deliveries log.
fn disabled_reason(hook: &Webhook, why: Disabling) -> String {
    match why {
        Disabling::Failing { since } => format!(
            "disabled: every attempt since {} failed ({} attempts, none succeeding for {} days)",
            iso(since),
            hook.consecutive_failures,
            DISABLE_AFTER_SECS / 86400
        ),
        Disabling::Gone => "disabled: the endpoint answered 410 Gone, which asks for no more deliveries".into(),
    }
}

/// 0.8 to 1.2: retries of many deliveries failing together spread out.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("the OS random source is unavailable");
    0.8 + 0.4 * f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
}
