//! What a partner can do alone after a bad spell: enable a disabled
//! webhook again, and send a delivery again (the same message, fresh
//! attempts). Kept apart from the webhook model's sending rules.

use super::webhook::{Delivery, DeliveryState, Webhook, WebhookState};

/// Longest message id a route takes (the service writes ids of about 60).
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// Whether `s` can be a message id the service wrote (`msg_…`): letters,
/// digits, `_` and `-`, at most `MAX_MESSAGE_ID_LEN`. Anything else is
/// unknown without asking the store.
pub fn is_message_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_MESSAGE_ID_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Webhook {
    /// Active again, with the run of failures forgotten; false (and nothing
    /// changed) when it is active already.
    pub fn enable(&mut self, now: i64) -> bool {
        if self.state == WebhookState::Active {
            return false;
        }
        self.state = WebhookState::Active;
        self.failing_since = None;
        self.consecutive_failures = 0;
        self.version += 1;
        self.updated_at = now;
        true
    }
}

impl Delivery {
    /// Whether `resend` may take it: it is not waiting for an attempt.
    pub fn is_finished(&self) -> bool {
        self.state != DeliveryState::Pending
    }

    /// Pending again, due now, with the retry schedule from its start: the
    /// same message (id and body) gets a fresh run of attempts.
    pub fn resend(&mut self, now: i64) {
        self.version += 1;
        self.state = DeliveryState::Pending;
        self.attempts = 0;
        self.last = None;
        self.next_attempt_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Attempt;

    fn hook() -> Webhook {
        Webhook::new("org-a", "u", "https://example.com/h".parse().unwrap(), None, None, 0)
    }

    #[test]
    fn enabling_forgets_the_failures_and_leaves_an_active_one_alone() {
        let mut h = hook();
        assert!(!h.enable(5), "active already");
        assert_eq!((h.version, h.updated_at), (1, 0));
        h.state = WebhookState::Disabled;
        h.failing_since = Some(1);
        h.consecutive_failures = 7;
        assert!(h.enable(9));
        assert_eq!(
            (
                h.state,
                h.failing_since,
                h.consecutive_failures,
                h.version,
                h.updated_at
            ),
            (WebhookState::Active, None, 0, 2, 9)
        );
    }

    #[test]
    fn a_resent_delivery_starts_its_schedule_again() {
        let mut d = Delivery::new(&hook(), "msg_1".into(), "connection.connected", "{}".into(), 0);
        assert!(!d.is_finished());
        let fail = Attempt {
            at: 3,
            status: Some(500),
            latency_ms: 1,
            error: None,
        };
        for _ in 0..9 {
            d.record(fail.clone(), crate::domain::AttemptResult::Failed, None, 1.0);
        }
        assert!(d.is_finished());
        let (id, body, position) = (d.message_id.clone(), d.body.clone(), d.position());
        d.resend(100);
        assert_eq!(
            (d.state, d.attempts, d.next_attempt_at, d.last.is_none()),
            (DeliveryState::Pending, 0, Some(100), true)
        );
        assert_eq!((d.position(), d.message_id, d.body), (position, id, body));
    }

    #[test]
    fn message_ids_are_the_shapes_the_service_writes() {
        assert!(is_message_id("msg_con-0123456789abcdef01234567_3_member"));
        assert!(is_message_id("msg_test_abc"));
        for bad in ["", "a/b", "msg 1", "é", &"m".repeat(MAX_MESSAGE_ID_LEN + 1)] {
            assert!(!is_message_id(bad), "{bad}");
        }
    }
}
