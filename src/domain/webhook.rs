//! A partner's webhook (where a tenant's events go, which ones, the signing
//! secrets) and one delivery of one event to it, with its retry schedule.

use super::ParseError;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Longest description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// After a rotation the old secret still signs this long (the spec's
/// multi-signature header), so a receiver can switch without a gap.
pub const OLD_SECRET_SECS: i64 = 24 * 3600;
/// Delays before the second, third, … attempt (before jitter): about 37.6
/// hours from the first attempt to the last of nine, over 24 even when
/// every delay is drawn at its shortest.
pub const RETRY_DELAYS_SECS: [i64; 8] = [5, 300, 1800, 7200, 18000, 36000, 36000, 36000];
/// An endpoint failing this long, or this many attempts in a row, is disabled.
pub const DISABLE_AFTER_SECS: i64 = 5 * 24 * 3600;
pub const DISABLE_AFTER_FAILURES: u32 = 100;

/// The event types a webhook can subscribe to (the README's catalogue;
/// `ChangeType::ALL`, whose unit test holds the two together).
pub const EVENT_TYPES: [&str; 8] = [
    "connection.connected",
    "connection.health_changed",
    "connection.external_id_rotated",
    "connection.disconnected",
    "connection.role_changed",
    "connection.unlinked",
    "connection.account_assigned",
    "organization.member_changed",
];
/// Sent by `POST /v1/webhooks/{id}/test`, whatever the webhook subscribes to.
pub const TEST_EVENT: &str = "webhook.test";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookId(String);

impl WebhookId {
    pub fn generate() -> Self {
        WebhookId(super::random_id("wh-"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for WebhookId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if super::is_id(s, "wh-") {
            Ok(WebhookId(s.to_owned()))
        } else {
            Err(ParseError::new(
                "id",
                format!("{s:?} is not a webhook id (wh- and 24 hex digits)"),
            ))
        }
    }
}
super::string_newtype_serde!(WebhookId);
super::string_newtype_schema!(
    WebhookId,
    serde_json::json!({"type": "string", "pattern": "^wh-[0-9a-f]{24}$", "examples": ["wh-0123456789abcdef01234567"]})
);

/// An absolute http(s) URL with a host and no credentials in it. Whether
/// http is allowed, and where the host resolves, is decided where it is
/// used (the allowed hosts are configuration; addresses change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub fn url(&self) -> &url::Url {
        &self.0
    }
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
    /// `host` and `host:port` (the port the URL names or its scheme's).
    pub fn host_and_authority(&self) -> (String, String) {
        let host = self.0.host_str().unwrap_or_default().to_owned();
        let port = self.0.port_or_known_default().unwrap_or(443);
        let authority = format!("{host}:{port}");
        (host, authority)
    }
}

impl FromStr for WebhookUrl {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| ParseError::new("url", format!("the webhook URL {why}"));
        if s.len() > MAX_URL_LEN {
            return Err(bad(&format!("is longer than {MAX_URL_LEN} characters")));
        }
        let url = url::Url::parse(s).map_err(|e| bad(&format!("is not an absolute URL ({e})")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad("must start with https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry a user name or password"));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a #fragment"));
        }
        Ok(WebhookUrl(url))
    }
}
super::string_newtype_serde!(WebhookUrl);
super::string_newtype_schema!(
    WebhookUrl,
    serde_json::json!({"type": "string", "format": "uri", "maxLength": MAX_URL_LEN, "pattern": "^https?://",
        "examples": ["https://partner.example.com/hooks/spot"]})
);

/// A signing secret: random bytes, shown to the partner once as `whsec_`
/// and their base64 (the Standard Webhooks form). Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub fn generate() -> Self {
        use base64::Engine;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source is unavailable");
        SigningSecret(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ))
    }
    /// The `whsec_…` text, for the one answer that shows it and for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookState {
    Active,
    /// Failing too long; nothing is sent until it is created again.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: WebhookId,
    pub org: String,
    pub url: WebhookUrl,
    /// None: every type of the catalogue.
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub secret: SigningSecret,
    /// The secret before the last rotation, and until when it still signs.
    pub old_secret: Option<(SigningSecret, i64)>,
    pub state: WebhookState,
    /// When the run of failed attempts began (None after a success).
    pub failing_since: Option<i64>,
    pub consecutive_failures: u32,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: u64,
}

impl Webhook {
    /// A new active webhook with a fresh id and secret.
    pub fn new(
        org: &str,
        created_by: &str,
        url: WebhookUrl,
        events: Option<Vec<String>>,
        description: Option<String>,
        now: i64,
    ) -> Webhook {
        Webhook {
            id: WebhookId::generate(),
            org: org.to_owned(),
            url,
            events,
            description,
            secret: SigningSecret::generate(),
            old_secret: None,
            state: WebhookState::Active,
            failing_since: None,
            consecutive_failures: 0,
            created_by: created_by.to_owned(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    pub fn wants(&self, event_type: &str) -> bool {
        self.state == WebhookState::Active
            && self
                .events
                .as_ref()
                .is_none_or(|list| list.iter().any(|e| e == event_type))
    }

    /// The secrets that sign at `now`: the current one, and the old one
    /// during its day after a rotation.
    pub fn signing_secrets(&self, now: i64) -> Vec<&SigningSecret> {
        let mut out = vec![&self.secret];
        if let Some((old, until)) = &self.old_secret {
            if now < *until {
                out.push(old);
            }
        }
        out
    }

    /// Records an attempt's outcome on the endpoint; true when this failure
    /// disables it (failing for five days, or a hundred times in a row).
    pub fn record_attempt(&mut self, ok: bool, now: i64) -> bool {
        self.version += 1;
        self.updated_at = now;
        if ok {
            self.failing_since = None;
            self.consecutive_failures = 0;
            return false;
        }
        let since = *self.failing_since.get_or_insert(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let disable = self.state == WebhookState::Active
            && (self.consecutive_failures >= DISABLE_AFTER_FAILURES || now - since >= DISABLE_AFTER_SECS);
        if disable {
            self.state = WebhookState::Disabled;
        }
        disable
    }
}

/// Checks a subscription list: known types, no repeats, at least one.
pub fn parse_event_types(list: Vec<String>) -> Result<Vec<String>, ParseError> {
    if list.is_empty() {
        return Err(ParseError::new(
            "events",
            "name at least one event type, or leave events out for all of them",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in list {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ParseError::new(
                "events",
                format!("{e:?} is not an event type; the types are {}", EVENT_TYPES.join(", ")),
            ));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    Succeeded,
    /// Every attempt failed, or the webhook was disabled.
    Failed,
}

/// One attempt's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: i64,
    /// The receiver's status; None when it gave none (refused, timed out).
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed, for a person.
    pub error: Option<String>,
}

/// One event for one webhook: the body as first rendered (every attempt
/// sends the same bytes, with the same `webhook-id`), and its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub webhook_id: WebhookId,
    pub org: String,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    pub event_type: String,
    pub body: String,
    pub created_at: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last: Option<Attempt>,
    /// When the next attempt is due (while pending); also a lease: a
    /// sender pushes it ahead before it sends, so no other sends too.
    pub next_attempt_at: Option<i64>,
    pub version: u64,
}

impl Delivery {
    pub fn new(hook: &Webhook, message_id: String, event_type: &str, body: String, now: i64) -> Delivery {
        Delivery {
            webhook_id: hook.id.clone(),
            org: hook.org.clone(),
            message_id,
            event_type: event_type.to_owned(),
            body,
            created_at: now,
            state: DeliveryState::Pending,
            attempts: 0,
            last: None,
            next_attempt_at: Some(now),
            version: 1,
        }
    }

    /// Where the delivery sits among its webhook's: newest last by time.
    pub fn position(&self) -> String {
        format!("{:012}#{}", self.created_at, self.message_id)
    }

    /// Records an attempt: succeeded, or pending again after the schedule's
    /// delay (stretched by `jitter`, 0.8 to 1.2), or failed for good.
    pub fn record(&mut self, attempt: Attempt, ok: bool, jitter: f64) {
        self.version += 1;
        self.attempts += 1;
        let at = attempt.at;
        self.last = Some(attempt);
        let delay = RETRY_DELAYS_SECS.get(self.attempts as usize - 1);
        match (ok, delay) {
            (true, _) => {
                self.state = DeliveryState::Succeeded;
                self.next_attempt_at = None;
            }
            (false, Some(d)) => {
                self.next_attempt_at = Some(at + ((*d as f64) * jitter.clamp(0.8, 1.2)).round() as i64);
            }
            (false, None) => {
                self.state = DeliveryState::Failed;
                self.next_attempt_at = None;
            }
        }
    }

    /// Ends the delivery unsent (its webhook was disabled or deleted).
    pub fn abandon(&mut self, why: &str, now: i64) {
        self.version += 1;
        self.state = DeliveryState::Failed;
        self.next_attempt_at = None;
        self.last = Some(Attempt {
            at: now,
            status: None,
            latency_ms: 0,
            error: Some(why.to_owned()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Webhook {
        Webhook::new("org-a", "u", "https://example.com/h".parse().unwrap(), None, None, 0)
    }

    #[test]
    fn urls_parse_once_with_reasons() {
        for bad in [
            "ftp://x/",
            "https://u:p@x.com/",
            "/relative",
            "https://x.com/#f",
            "file:///etc/passwd",
        ] {
            assert!(bad.parse::<WebhookUrl>().is_err(), "{bad}");
        }
        let u: WebhookUrl = "https://example.com/h".parse().unwrap();
        assert_eq!(u.host_and_authority(), ("example.com".into(), "example.com:443".into()));
        let long = format!("https://x.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(long.parse::<WebhookUrl>().is_err());
    }

    #[test]
    fn the_schedule_spans_a_day_and_ends() {
        let total: i64 = RETRY_DELAYS_SECS.iter().sum();
        assert!(total * 8 / 10 >= 24 * 3600, "even with the shortest jitter: {total}");
        let mut d = Delivery::new(&hook(), "m".into(), "connection.connected", "{}".into(), 0);
        let fail = |at| Attempt {
            at,
            status: Some(500),
            latency_ms: 1,
            error: None,
        };
        let mut at = 0;
        for delay in RETRY_DELAYS_SECS {
            d.record(fail(at), false, 1.0);
            assert_eq!(d.next_attempt_at, Some(at + delay));
            at += delay;
        }
        d.record(fail(at), false, 1.0);
        assert_eq!(
            (d.state, d.attempts, d.next_attempt_at),
            (DeliveryState::Failed, 9, None)
        );
    }

    #[test]
    fn an_endpoint_is_disabled_after_a_hundred_failures_or_five_days() {
        let mut h = hook();
        for i in 0..99 {
            assert!(!h.record_attempt(false, i));
        }
        assert!(h.record_attempt(false, 100));
        assert_eq!(h.state, WebhookState::Disabled);
        let mut h = hook();
        assert!(!h.record_attempt(false, 0));
        assert!(!h.record_attempt(true, 10), "a success resets the run");
        assert!(!h.record_attempt(false, 20));
        assert!(h.record_attempt(false, 20 + DISABLE_AFTER_SECS));
        assert!(!h.wants("connection.connected"), "a disabled webhook wants nothing");
    }

    #[test]
    fn the_old_secret_signs_for_a_day() {
        let mut h = hook();
        h.old_secret = Some((SigningSecret::generate(), 100));
        assert_eq!(h.signing_secrets(99).len(), 2);
        assert_eq!(h.signing_secrets(100).len(), 1);
        assert!(!format!("{h:?}").contains("whsec_"), "secrets never print");
    }
}
