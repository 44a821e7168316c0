//! The callback token: an HMAC over the connection id with a server key. It
//! proves a template came from us for that connection; the external ID alone
//! proves nothing, since it is not secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Versioned, so a new scheme can be told from the old one.
const DOMAIN: &str = "account-connect:callback:v1:";

fn mac(key: &[u8], connection_id: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(DOMAIN.as_bytes());
    m.update(connection_id.as_bytes());
    m
}

pub fn issue(key: &[u8], connection_id: &str) -> String {
    B64.encode(mac(key, connection_id).finalize().into_bytes())
}

/// Constant-time check.
pub fn verify(key: &[u8], connection_id: &str, token: &str) -> bool {
    B64.decode(token)
        .is_ok_and(|sig| mac(key, connection_id).verify_slice(&sig).is_ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn binds_key_and_connection() {
        let t = super::issue(b"k1", "con-1");
        assert!(super::verify(b"k1", "con-1", &t));
        assert!(!super::verify(b"k2", "con-1", &t));
        assert!(!super::verify(b"k1", "con-2", &t));
        assert!(!super::verify(b"k1", "con-1", "garbage!"));
    }
}
