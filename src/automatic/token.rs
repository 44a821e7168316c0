//! The callback token: an HMAC with a server key over what the template may
//! do: the connection, its newest external ID and the AWS account it was
//! started for. Rotating the ID or changing the account makes old templates'
//! tokens useless; the callback also refuses tokens of expired or
//! disconnected connections (`live_for`). The external ID alone proves
//! nothing, since it is not secret.

use crate::domain::{Connection, Status};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Versioned, so a new scheme can be told from the old one (v1 bound the
/// connection id alone and no longer verifies).
const DOMAIN: &str = "account-connect:callback:v2:";

/// What a token is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub connection_id: &'a str,
    pub external_id: &'a str,
    pub aws_account_id: &'a str,
}

impl<'a> Binding<'a> {
    /// The connection's binding: its newest external ID (a pending rotation
    /// counts, so a rotation retires the templates issued before it) and its
    /// declared account. None without a declared account: such a connection
    /// cannot take part in the automatic flow.
    pub fn of(c: &'a Connection) -> Option<Binding<'a>> {
        let ext = c.pending_external_id.as_ref().unwrap_or(&c.external_id);
        Some(Binding {
            connection_id: c.id.as_str(),
            external_id: ext.as_str(),
            aws_account_id: c.aws_account_id.as_ref()?.as_str(),
        })
    }
}

fn mac(key: &[u8], b: Binding) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(DOMAIN.as_bytes());
    // Length-prefixed, so no two bindings share an input.
    for part in [b.connection_id, b.external_id, b.aws_account_id] {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part.as_bytes());
    }
    m
}

pub fn issue(key: &[u8], b: Binding) -> String {
    B64.encode(mac(key, b).finalize().into_bytes())
}

/// The token for a connection's current state, if it can have one.
pub fn issue_for(key: &[u8], c: &Connection) -> Option<String> {
    Binding::of(c).map(|b| issue(key, b))
}

/// Constant-time check.
pub fn verify(key: &[u8], b: Binding, token: &str) -> bool {
    token.len() <= 128
        && B64
            .decode(token)
            .is_ok_and(|sig| mac(key, b).verify_slice(&sig).is_ok())
}

/// Why a token does not verify for a connection, in words for the customer
/// (CloudFormation shows them); None when it verifies.
pub fn refusal(key: &[u8], c: &Connection, token: &str, now: i64) -> Option<String> {
    match c.status(now) {
        Status::Expired => {
            return Some(format!(
                "This template's external ID expired on {} without being used. Start again from the Spot console to get a fresh template.",
                crate::clock::iso(c.expires_at)
            ))
        }
        Status::Disconnected => {
            return Some(
                "This connection was disconnected, so its templates no longer work. Start again from the Spot console to get a fresh template.".into(),
            )
        }
        Status::Pending | Status::Connected => {}
    }
    let Some(b) = Binding::of(c) else {
        return Some(
            "This connection was started without the AWS account it is for, so it cannot be connected by a stack. Start again from the Spot console and enter your AWS account ID.".into(),
        );
    };
    if verify(key, b, token) {
        return None;
    }
    Some(
        "The CallbackToken does not match this connection's current external ID and AWS account: the template is outdated (the external ID was rotated since) or was not issued by Spot for it. Get a fresh template from the Spot console and use it unmodified.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::{issue, verify, Binding};

    fn b<'a>(c: &'a str, e: &'a str, a: &'a str) -> Binding<'a> {
        Binding {
            connection_id: c,
            external_id: e,
            aws_account_id: a,
        }
    }

    #[test]
    fn binds_key_connection_external_id_and_account() {
        let t = issue(b"k1", b("con-1", "ext-1", "111111111111"));
        assert!(verify(b"k1", b("con-1", "ext-1", "111111111111"), &t));
        assert!(!verify(b"k2", b("con-1", "ext-1", "111111111111"), &t));
        assert!(!verify(b"k1", b("con-2", "ext-1", "111111111111"), &t));
        assert!(!verify(b"k1", b("con-1", "ext-2", "111111111111"), &t));
        assert!(!verify(b"k1", b("con-1", "ext-1", "222222222222"), &t));
        assert!(!verify(b"k1", b("con-1", "ext-1", "111111111111"), "garbage!"));
        // Parts cannot slide into each other.
        assert!(!verify(b"k1", b("con-1e", "xt-1", "111111111111"), &t));
    }
}
