//! The relay's signature: a GovCloud or China stack cannot publish to the
//! commercial topic, so a relay in its partition (src/bin/relay.rs,
//! infra/partition-relay.yaml) forwards each custom resource request
//! verbatim over HTTPS, signed with a key both sides keep in Secrets
//! Manager: HMAC-SHA256 over `<timestamp>.<body>`, hex, in
//! `X-Spot-Relay-Signature`, the Unix timestamp in `X-Spot-Relay-Timestamp`.

use crate::config::Secret;
use crate::domain::Partition;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

pub const TIMESTAMP_HEADER: &str = "x-spot-relay-timestamp";
pub const SIGNATURE_HEADER: &str = "x-spot-relay-signature";
/// A signed request is good this long (seconds): a replay later is refused.
pub const MAX_AGE_SECS: i64 = 300;
/// Clocks of two Lambda functions agree within this (seconds); a later
/// timestamp is refused as from the future.
pub const MAX_SKEW_SECS: i64 = 5;
/// The callback reads at most 64 KB (src/automatic/callback.rs).
pub const MAX_BODY: usize = 64 * 1024;
/// Shortest relay key accepted: HMAC-SHA256 wants 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

/// Why a relayed request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A header is missing or malformed.
    Malformed,
    /// Older than MAX_AGE_SECS.
    Stale,
    /// Later than now (beyond MAX_SKEW_SECS).
    Future,
    /// The signature is not the key's over this timestamp and body.
    BadSignature,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Malformed => {
                "the request needs X-Spot-Relay-Timestamp (Unix seconds) and X-Spot-Relay-Signature (64 hex digits)"
            }
            Refusal::Stale => {
                "the relayed request was signed more than 5 minutes ago; the relay signs each request as it sends it"
            }
            Refusal::Future => "the relayed request's timestamp is in the future; check the relay's clock",
            Refusal::BadSignature => {
                "the signature does not match the body and timestamp under the partition's relay key"
            }
        }
    }
}

fn mac(key: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(key, &timestamp.to_string(), body).finalize().into_bytes())
}

/// Checks the headers against `body` at `now`, the signature in constant
/// time, against each key in turn (the current one and, during a rotation,
/// the previous one). Answers the request's timestamp.
pub fn verify(
    keys: &[Secret],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<i64, Refusal> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(Refusal::Malformed);
    };
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) || sig.len() != 64 {
        return Err(Refusal::Malformed);
    }
    let at: i64 = ts.parse().map_err(|_| Refusal::Malformed)?;
    let sig = hex::decode(sig).map_err(|_| Refusal::Malformed)?;
    if at > now + MAX_SKEW_SECS {
        return Err(Refusal::Future);
    }
    if now - at > MAX_AGE_SECS {
        return Err(Refusal::Stale);
    }
    if keys
        .iter()
        .any(|k| mac(k.expose_secret(), ts, body).verify_slice(&sig).is_ok())
    {
        Ok(at)
    } else {
        Err(Refusal::BadSignature)
    }
}

/// The first second a request signed at `at` is refused as stale: until
/// then a replay of it would verify, so it is remembered until then.
pub fn window_end(at: i64) -> i64 {
    at + MAX_AGE_SECS + 1
}

/// What identifies one signed request, whichever key signed it: the
/// partition, the timestamp and the body, hashed (the store keeps it).
pub fn request_key(partition: Partition, timestamp: i64, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(partition.as_str().as_bytes());
    h.update(b"\n");
    h.update(timestamp.to_string().as_bytes());
    h.update(b".");
    h.update(body);
    format!("relay#{}#{}", partition.as_str(), hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"relay-key-relay-key-relay-key-32";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_body_verifies_within_five_minutes() {
        let body = br#"{"RequestType":"Create"}"#;
        let sig = sign(KEY, NOW, body);
        let keys = [Secret::from(KEY.to_vec())];
        let ts = NOW.to_string();
        assert_eq!(verify(&keys, Some(&ts), Some(&sig), body, NOW), Ok(NOW));
        assert_eq!(verify(&keys, Some(&ts), Some(&sig), body, NOW + MAX_AGE_SECS), Ok(NOW));
        assert_eq!(
            verify(&keys, Some(&ts), Some(&sig), body, NOW + MAX_AGE_SECS + 1),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify(&keys, Some(&ts), Some(&sig), body, NOW - MAX_SKEW_SECS - 1),
            Err(Refusal::Future)
        );
        // Another body, timestamp or key: refused.
        assert_eq!(
            verify(&keys, Some(&ts), Some(&sig), br#"{"RequestType":"Delete"}"#, NOW),
            Err(Refusal::BadSignature)
        );
        let later = (NOW + 1).to_string();
        assert_eq!(
            verify(&keys, Some(&later), Some(&sig), body, NOW),
            Err(Refusal::BadSignature)
        );
        let other = [Secret::from(b"another-key-another-key-another!".to_vec())];
        assert_eq!(
            verify(&other, Some(&ts), Some(&sig), body, NOW),
            Err(Refusal::BadSignature)
        );
        // The previous key still verifies during a rotation.
        let both = [other[0].clone(), Secret::from(KEY.to_vec())];
        assert_eq!(verify(&both, Some(&ts), Some(&sig), body, NOW), Ok(NOW));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let keys = [Secret::from(KEY.to_vec())];
        let sig = sign(KEY, NOW, b"x");
        let ts = NOW.to_string();
        for (t, s) in [
            (None, Some(sig.as_str())),
            (Some(ts.as_str()), None),
            (Some("-5"), Some(sig.as_str())),
            (Some("1e9"), Some(sig.as_str())),
            (Some("9999999999999"), Some(sig.as_str())),
            (Some(ts.as_str()), Some(&sig[..63])),
            (Some(ts.as_str()), Some("zz".repeat(32).as_str())),
        ] {
            assert_eq!(verify(&keys, t, s, b"x", NOW), Err(Refusal::Malformed), "{t:?} {s:?}");
        }
    }
}
