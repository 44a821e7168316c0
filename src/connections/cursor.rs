//! Page cursors: a store position sealed with XChaCha20-Poly1305, bound to
//! the caller and the query it was issued for. A client can neither read
//! one (it names connection ids and creation times) nor make or alter one;
//! a cursor from another tenant, user, token scope or query fails to open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// How long a cursor stays valid: long enough to page through anything,
/// short enough that an old link stops working.
pub const CURSOR_TTL_SECS: i64 = 24 * 3600;
/// Longest cursor accepted; the service's are about 150 characters.
pub const MAX_CURSOR_LEN: usize = 512;
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor this service sealed for this caller and query.
    #[error("the cursor is not one this API gave out for this query and token; start again without it")]
    Invalid,
    /// Sealed by us, but more than `CURSOR_TTL_SECS` ago.
    #[error("the cursor has expired; start again without it")]
    Expired,
}

/// What a cursor is bound to; every field must match to open it.
pub struct Binding<'a> {
    /// `connections` or `events:<connection id>`.
    pub what: &'a str,
    pub org: &'a str,
    pub user: &'a str,
    /// The token's accounts: `*` or the sorted list.
    pub scope: &'a str,
    /// The query's filters, as `name=value` lines.
    pub query: &'a str,
}

impl Binding<'_> {
    fn associated_data(&self) -> Vec<u8> {
        // Length-prefixed, so no field can spill into the next.
        let mut out = b"account-connect cursor v1".to_vec();
        for f in [self.what, self.org, self.user, self.scope, self.query] {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    /// The store position.
    p: String,
    /// Expiry, unix seconds.
    e: i64,
}

pub struct Cursors {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursors(..)")
    }
}

impl Cursors {
    /// From the configured secret (any length; it is hashed to the key).
    pub fn new(secret: &[u8]) -> Self {
        let key = Sha256::digest(secret);
        Cursors {
            cipher: XChaCha20Poly1305::new(&key),
        }
    }

    /// A fresh random key: cursors last as long as the process.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the OS random source is unavailable");
        Self::new(&secret)
    }

    pub fn seal(&self, binding: &Binding, position: &str, now: i64) -> String {
        use base64::Engine;
        let plain = serde_json::to_vec(&Sealed {
            p: position.to_owned(),
            e: now + CURSOR_TTL_SECS,
        })
        .expect("cursors serialize");
        // 192-bit random nonces: no counter to share between instances, and
        // no realistic chance of a repeat.
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source is unavailable");
        let aad = binding.associated_data();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
            .expect("sealing a short message cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    /// The position inside, if this service sealed the cursor for exactly
    /// this binding and it has not expired.
    pub fn open(&self, binding: &Binding, cursor: &str, now: i64) -> Result<String, CursorError> {
        use base64::Engine;
        if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
            return Err(CursorError::Invalid);
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| CursorError::Invalid)?;
        let (version, rest) = raw.split_first().ok_or(CursorError::Invalid)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(CursorError::Invalid);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let aad = binding.associated_data();
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| CursorError::Invalid)?;
        let s: Sealed = serde_json::from_slice(&plain).map_err(|_| CursorError::Invalid)?;
        if s.e <= now {
            return Err(CursorError::Expired);
        }
        Ok(s.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding<'a>(org: &'a str, query: &'a str) -> Binding<'a> {
        Binding {
            what: "connections",
            org,
            user: "u",
            scope: "*",
            query,
        }
    }

    #[test]
    fn opens_only_for_its_binding_and_hides_the_position() {
        let c = Cursors::new(b"k");
        let b = binding("org-a", "accountId=act-1");
        let sealed = c.seal(&b, "ACCT#act-1#000000000001#con-x", 100);
        assert!(!sealed.contains("act-1"));
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&sealed)
            .unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("act-1"));
        assert_eq!(c.open(&b, &sealed, 100).unwrap(), "ACCT#act-1#000000000001#con-x");
        assert_eq!(
            c.open(&binding("org-b", "accountId=act-1"), &sealed, 100),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            c.open(&binding("org-a", "accountId=act-2"), &sealed, 100),
            Err(CursorError::Invalid)
        );
        assert_eq!(Cursors::new(b"other").open(&b, &sealed, 100), Err(CursorError::Invalid));
        assert_eq!(c.open(&b, &sealed, 100 + CURSOR_TTL_SECS), Err(CursorError::Expired));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        use base64::Engine;
        let c = Cursors::new(b"k");
        let b = binding("org-a", "");
        let sealed = c.seal(&b, "p", 0);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&sealed)
            .unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 1;
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
            assert_eq!(c.open(&b, &t, 0), Err(CursorError::Invalid), "byte {i}");
        }
        assert_eq!(c.open(&b, "", 0), Err(CursorError::Invalid));
        assert_eq!(
            c.open(&b, &"A".repeat(MAX_CURSOR_LEN + 1), 0),
            Err(CursorError::Invalid)
        );
    }
}
