//! The organization's callback token: an HMAC with the server key over the
//! organization and its management account, so a member template copied to
//! another organization, or a token made up for another one, verifies nowhere.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Its own domain: never equal to a connection token's input.
const DOMAIN: &str = "account-connect:organization-callback:v1:";

fn mac(key: &[u8], organization_id: &str, management_account: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(DOMAIN.as_bytes());
    for part in [organization_id, management_account] {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part.as_bytes());
    }
    m
}

pub fn issue(key: &[u8], organization_id: &str, management_account: &str) -> String {
    B64.encode(mac(key, organization_id, management_account).finalize().into_bytes())
}

/// Constant-time check.
pub fn verify(key: &[u8], organization_id: &str, management_account: &str, token: &str) -> bool {
    token.len() <= 128
        && B64
            .decode(token)
            .is_ok_and(|sig| mac(key, organization_id, management_account).verify_slice(&sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::{issue, verify};

    #[test]
    fn binds_key_organization_and_management_account() {
        let t = issue(b"k1", "awsorg-1", "111111111111");
        assert!(verify(b"k1", "awsorg-1", "111111111111", &t));
        assert!(!verify(b"k2", "awsorg-1", "111111111111", &t));
        assert!(!verify(b"k1", "awsorg-2", "111111111111", &t));
        assert!(!verify(b"k1", "awsorg-1", "222222222222", &t));
        assert!(!verify(b"k1", "awsorg-11", "11111111111", &t));
        assert!(!verify(b"k1", "awsorg-1", "111111111111", "not a token"));
    }
}
