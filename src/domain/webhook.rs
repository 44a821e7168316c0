//! A partner's webhook (where a tenant's events go, which ones, the signing
//! secrets) and one delivery of one event to it, with its retry schedule.

use super::ParseError;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Longest description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// After a rotation the replaced secret still signs this long (the spec's
/// multi-signature header), so a receiver can switch without a gap.
pub const OLD_SECRET_SECS: i64 = 24 * 3600;
/// Replaced secrets that go on signing at most. Each adds a signature to
/// every delivery; six in a day is a script gone round, not a receiver
/// switching, so a rotation beyond this drops the oldest early (the
/// rotation's answer lists the expiries of those still signing).
pub const MAX_OLD_SECRETS: usize = 5;
/// Delays before the second, third, … attempt (before jitter): about 37.6
/// hours from the first attempt to the last of nine, over 24 even when
/// every delay is drawn at its shortest.
pub const RETRY_DELAYS_SECS: [i64; 8] = [5, 300, 1800, 7200, 18000, 36000, 36000, 36000];
/// An endpoint whose every attempt has failed for this long is disabled
/// (Svix's rule). Time, never a count: a burst of events meeting a
/// partner's one bad minute makes hundreds of failures in that minute.
pub const DISABLE_AFTER_SECS: i64 = 5 * 24 * 3600;
/// The longest `Retry-After` honoured. A receiver's hint, not a command: a
/// longer one (or a date far ahead, by mistake or on purpose) would hold
/// the delivery past the schedule partners are promised, and from the
/// fourth attempt on the schedule's own delays (2 h and up) exceed it.
pub const MAX_RETRY_AFTER_SECS: i64 = 3600;

/// The event types a webhook can subscribe to (docs/events.md's catalogue;
/// `ChangeType::ALL`, whose unit test holds the two together).
pub const EVENT_TYPES: [&str; 9] = [
    "connection.connected",
    "connection.health_changed",
    "connection.external_id_rotated",
    "connection.disconnected",
    "connection.role_changed",
    "connection.unlinked",
    "connection.account_assigned",
    "organization.member_changed",
    "organization.state_changed",
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
    /// Every attempt failed for 5 days, or the endpoint answered 410 Gone;
    /// nothing is sent to it.
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
    /// Secrets replaced by rotations, oldest first, each signing until its
    /// own expiry. Records from before this list hold one as `oldSecret`.
    #[serde(default, alias = "oldSecret", deserialize_with = "old_secrets")]
    pub old_secrets: Vec<OldSecret>,
    pub state: WebhookState,
    /// When the run of failed attempts began (None after a success).
    pub failing_since: Option<i64>,
    /// Failed attempts recorded since `failing_since` (information: the
    /// disabling goes by time).
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
            old_secrets: Vec::new(),
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

    /// The secrets that sign at `now`: the current one, and each replaced
    /// one until its expiry.
    pub fn signing_secrets(&self, now: i64) -> Vec<&SigningSecret> {
        let old = self.old_secrets.iter().filter(|o| now < o.expires_at);
        std::iter::once(&self.secret).chain(old.map(|o| &o.secret)).collect()
    }

    /// When each replaced secret that still signs at `now` stops, oldest first.
    pub fn old_secret_expiries(&self, now: i64) -> Vec<i64> {
        self.old_secrets
            .iter()
            .map(|o| o.expires_at)
            .filter(|until| now < *until)
            .collect()
    }

    /// A new secret; the replaced one signs for `OLD_SECRET_SECS` more,
    /// beside the others still signing (expired ones are dropped, and the
    /// oldest beyond `MAX_OLD_SECRETS`).
    pub fn rotate(&mut self, now: i64) {
        let replaced = std::mem::replace(&mut self.secret, SigningSecret::generate());
        self.old_secrets.retain(|o| now < o.expires_at);
        self.old_secrets.push(OldSecret {
            secret: replaced,
            expires_at: now + OLD_SECRET_SECS,
        });
        let over = self.old_secrets.len().saturating_sub(MAX_OLD_SECRETS);
        self.old_secrets.drain(..over);
        self.version += 1;
        self.updated_at = now;
    }

    /// Records what an attempt says about the endpoint: a success ends a
    /// run of failures; a failure starts one or extends it, and disables
    /// the endpoint once every attempt has failed for `DISABLE_AFTER_SECS`;
    /// 410 Gone disables it at once. Answers why, when this disabled it.
    pub fn record_attempt(&mut self, result: AttemptResult, now: i64) -> Option<Disabling> {
        self.version += 1;
        self.updated_at = now;
        if result == AttemptResult::Succeeded {
            self.failing_since = None;
            self.consecutive_failures = 0;
            return None;
        }
        let since = *self.failing_since.get_or_insert(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.state != WebhookState::Active {
            return None;
        }
        let why = match result {
            AttemptResult::Gone => Disabling::Gone,
            _ if now - since >= DISABLE_AFTER_SECS => Disabling::Failing { since },
            _ => return None,
        };
        self.state = WebhookState::Disabled;
        Some(why)
    }
}

/// A replaced signing secret and when it stops signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OldSecret {
    pub secret: SigningSecret,
    pub expires_at: i64,
}

/// Reads the list, or the one `[secret, until]` (or null) that records
/// written before the list hold.
fn old_secrets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<OldSecret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        List(Vec<OldSecret>),
        One(Option<(SigningSecret, i64)>),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::List(list) => list,
        Stored::One(one) => one
            .map(|(secret, expires_at)| OldSecret { secret, expires_at })
            .into_iter()
            .collect(),
    })
}

/// What one attempt says about the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx in time.
    Succeeded,
    /// Anything else but 410.
    Failed,
    /// 410 Gone: the receiver asks for nothing more (Standard Webhooks).
    Gone,
}

/// Why an attempt disabled its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disabling {
    /// Every attempt has failed since then, `DISABLE_AFTER_SECS` or more.
    Failing { since: i64 },
    /// The endpoint answered 410 Gone.
    Gone,
}

impl Disabling {
    /// A stable code for the `webhook.disabled` event.
    pub fn code(&self) -> &'static str {
        match self {
            Disabling::Failing { .. } => "failing",
            Disabling::Gone => "gone",
        }
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

    /// Records an attempt: succeeded; or pending again after the
    /// schedule's delay (stretched by `jitter`, 0.8 to 1.2), and not before
    /// `retry_after` (the receiver's `Retry-After`, honoured up to
    /// `MAX_RETRY_AFTER_SECS`); or failed for good (the schedule's end, or
    /// 410 Gone).
    pub fn record(&mut self, attempt: Attempt, result: AttemptResult, retry_after: Option<i64>, jitter: f64) {
        self.version += 1;
        self.attempts += 1;
        let at = attempt.at;
        self.last = Some(attempt);
        let delay = RETRY_DELAYS_SECS.get(self.attempts as usize - 1);
        match (result, delay) {
            (AttemptResult::Succeeded, _) => {
                self.state = DeliveryState::Succeeded;
                self.next_attempt_at = None;
            }
            (AttemptResult::Failed, Some(d)) => {
                let scheduled = at + ((*d as f64) * jitter.clamp(0.8, 1.2)).round() as i64;
                let asked = retry_after.map_or(at, |t| t.min(at + MAX_RETRY_AFTER_SECS));
                self.next_attempt_at = Some(scheduled.max(asked));
            }
            (AttemptResult::Failed, None) | (AttemptResult::Gone, _) => {
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

    fn fail(at: i64, status: u16) -> Attempt {
        Attempt {
            at,
            status: Some(status),
            latency_ms: 1,
            error: None,
        }
    }

    #[test]
    fn the_schedule_spans_a_day_and_ends() {
        let total: i64 = RETRY_DELAYS_SECS.iter().sum();
        assert!(total * 8 / 10 >= 24 * 3600, "even with the shortest jitter: {total}");
        let mut d = Delivery::new(&hook(), "m".into(), "connection.connected", "{}".into(), 0);
        let mut at = 0;
        for delay in RETRY_DELAYS_SECS {
            d.record(fail(at, 500), AttemptResult::Failed, None, 1.0);
            assert_eq!(d.next_attempt_at, Some(at + delay));
            at += delay;
        }
        d.record(fail(at, 500), AttemptResult::Failed, None, 1.0);
        assert_eq!(
            (d.state, d.attempts, d.next_attempt_at),
            (DeliveryState::Failed, 9, None)
        );
    }

    #[test]
    fn retry_after_delays_the_next_attempt_up_to_an_hour() {
        let new = || Delivery::new(&hook(), "m".into(), "connection.connected", "{}".into(), 0);
        let mut d = new();
        d.record(fail(100, 503), AttemptResult::Failed, Some(100 + 120), 1.0);
        assert_eq!(d.next_attempt_at, Some(220), "120 s asked, the schedule says 5 s");
        let mut d = new();
        d.record(fail(100, 429), AttemptResult::Failed, Some(100 + 30 * 86400), 1.0);
        assert_eq!(d.next_attempt_at, Some(100 + MAX_RETRY_AFTER_SECS), "capped");
        let mut d = new();
        d.record(fail(100, 429), AttemptResult::Failed, Some(50), 1.0);
        assert_eq!(d.next_attempt_at, Some(105), "a time past never hurries the schedule");
        // Later in the schedule its own delay is longer than the cap.
        let mut d = new();
        for at in [0, 5, 305] {
            d.record(fail(at, 500), AttemptResult::Failed, None, 1.0);
        }
        d.record(fail(2105, 503), AttemptResult::Failed, Some(2105 + 3000), 1.0);
        assert_eq!(d.next_attempt_at, Some(2105 + 7200));
    }

    #[test]
    fn gone_ends_the_delivery_and_disables_the_endpoint_at_once() {
        let mut d = Delivery::new(&hook(), "m".into(), "connection.connected", "{}".into(), 0);
        d.record(fail(10, 410), AttemptResult::Gone, None, 1.0);
        assert_eq!((d.state, d.next_attempt_at), (DeliveryState::Failed, None));
        let mut h = hook();
        assert_eq!(h.record_attempt(AttemptResult::Gone, 10), Some(Disabling::Gone));
        assert_eq!(h.state, WebhookState::Disabled);
        assert_eq!(h.record_attempt(AttemptResult::Gone, 11), None, "disabled once");
    }

    #[test]
    fn an_endpoint_is_disabled_after_five_days_of_failures_never_by_their_number() {
        let mut h = hook();
        // A burst: thousands of failures within a minute leave it active.
        for i in 0..5000 {
            assert_eq!(h.record_attempt(AttemptResult::Failed, i / 100), None);
        }
        assert_eq!((h.state, h.consecutive_failures), (WebhookState::Active, 5000));
        assert_eq!(h.record_attempt(AttemptResult::Failed, DISABLE_AFTER_SECS - 1), None);
        assert_eq!(
            h.record_attempt(AttemptResult::Failed, DISABLE_AFTER_SECS),
            Some(Disabling::Failing { since: 0 })
        );
        assert!(!h.wants("connection.connected"), "a disabled webhook wants nothing");

        // A success ends the run: five days counts from the next failure.
        let mut h = hook();
        assert_eq!(h.record_attempt(AttemptResult::Failed, 0), None);
        assert_eq!(h.record_attempt(AttemptResult::Succeeded, 4 * 86400), None);
        assert_eq!((h.failing_since, h.consecutive_failures), (None, 0));
        assert_eq!(h.record_attempt(AttemptResult::Failed, DISABLE_AFTER_SECS + 1), None);
        assert_eq!(h.failing_since, Some(DISABLE_AFTER_SECS + 1));
        assert_eq!(
            h.record_attempt(AttemptResult::Failed, 2 * DISABLE_AFTER_SECS + 1),
            Some(Disabling::Failing {
                since: DISABLE_AFTER_SECS + 1
            })
        );
    }

    #[test]
    fn every_replaced_secret_signs_until_its_own_expiry() {
        let mut h = hook();
        let first = h.secret.clone();
        h.rotate(100);
        let second = h.secret.clone();
        h.rotate(200);
        // Two rotations within a day: all three sign.
        let signing = h.signing_secrets(300);
        assert_eq!(signing, vec![&h.secret, &first, &second]);
        assert_eq!(
            h.old_secret_expiries(300),
            vec![100 + OLD_SECRET_SECS, 200 + OLD_SECRET_SECS]
        );
        // Each stops at its own time.
        assert_eq!(h.signing_secrets(100 + OLD_SECRET_SECS), vec![&h.secret, &second]);
        assert_eq!(h.signing_secrets(200 + OLD_SECRET_SECS), vec![&h.secret]);
        // A later rotation drops the expired ones.
        h.rotate(200 + OLD_SECRET_SECS);
        assert_eq!(h.old_secrets.len(), 1);
        assert!(!format!("{h:?}").contains("whsec_"), "secrets never print");
    }

    #[test]
    fn at_most_the_cap_of_replaced_secrets_sign() {
        let mut h = hook();
        let mut replaced = Vec::new();
        for t in 0..(MAX_OLD_SECRETS as i64 + 3) {
            replaced.push(h.secret.clone());
            h.rotate(t);
        }
        assert_eq!(h.old_secrets.len(), MAX_OLD_SECRETS);
        let kept: Vec<&SigningSecret> = h.old_secrets.iter().map(|o| &o.secret).collect();
        let newest: Vec<&SigningSecret> = replaced[replaced.len() - MAX_OLD_SECRETS..].iter().collect();
        assert_eq!(kept, newest, "the oldest go first");
        assert_eq!(h.signing_secrets(10).len(), MAX_OLD_SECRETS + 1);
    }

    #[test]
    fn a_record_of_the_last_release_with_one_old_secret_still_reads() {
        let old_shape = serde_json::json!({
            "id": "wh-0123456789abcdef01234567", "org": "org-a", "url": "https://example.com/h",
            "events": null, "description": null, "secret": "whsec_bmV3",
            "oldSecret": ["whsec_b2xk", 500], "state": "active", "failingSince": null,
            "consecutiveFailures": 0, "createdBy": "u", "createdAt": 1, "updatedAt": 2, "version": 3
        });
        let h: Webhook = serde_json::from_value(old_shape.clone()).unwrap();
        assert_eq!(h.old_secrets.len(), 1);
        assert_eq!(
            (h.old_secrets[0].secret.expose(), h.old_secrets[0].expires_at),
            ("whsec_b2xk", 500)
        );
        assert_eq!(h.signing_secrets(499).len(), 2);
        let mut none = old_shape.clone();
        none["oldSecret"] = serde_json::Value::Null;
        assert!(serde_json::from_value::<Webhook>(none).unwrap().old_secrets.is_empty());
        let mut absent = old_shape;
        absent.as_object_mut().unwrap().remove("oldSecret");
        assert!(serde_json::from_value::<Webhook>(absent)
            .unwrap()
            .old_secrets
            .is_empty());
        // Written again, it takes the new shape and reads back the same.
        let written = serde_json::to_value(&h).unwrap();
        assert!(written.get("oldSecret").is_none(), "{written}");
        assert_eq!(serde_json::from_value::<Webhook>(written).unwrap(), h);
    }
}
