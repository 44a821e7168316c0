//! No key can be printed: the configuration with every key set, and what
//! is made from it that holds a key, formatted with `{:?}` and `{:#?}`,
//! shows none of them, in any encoding: as text, hex, base64 (standard and
//! URL-safe, padded or not), or the byte list `Debug` gives a `Vec<u8>`,
//! whole or its first 12 bytes.

use account_connect::config::{Config, Secret};
use account_connect::tenancy::LocalIssuer;
use base64::Engine;

const JWT: &[u8] = b"jwt-key-7f3a9c1e-jwt-key-7f3a9c1e-jwt-key";
const CALLBACK: &[u8] = b"callback-key-51d2e8b0-callback-key-51d2e8b0";
const CURSOR: &[u8] = b"cursor-key-0c4b7a96-cursor-key-0c4b7a96";
const RELAY: &[u8] = b"relay-key-9e8d7c6b-relay-key-9e8d7c6b-relay";
const RELAY_PREVIOUS: &[u8] = b"relay-previous-3a2b1c0d-relay-previous-3a2b";

/// The ways a key's bytes could be shown, whole and its first 12 bytes (a
/// multiple of 3, so its base64 is a prefix of the whole's).
fn forms(key: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for part in [key, &key[..12]] {
        let b64 = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        out.push(String::from_utf8(part.to_vec()).unwrap());
        out.push(hex::encode(part));
        out.push(hex::encode_upper(part));
        out.extend(b64.iter().map(|e| e.encode(part)));
        // `{:?}` of a Vec<u8> is `[106, 119, …]`, `{:#?}` one byte a line:
        // compared without whitespace, both read `106,119,…`.
        out.push(part.iter().map(u8::to_string).collect::<Vec<_>>().join(","));
    }
    out
}

/// Every form of a key that `text` shows.
fn keys_shown(text: &str) -> Vec<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    [JWT, CALLBACK, CURSOR, RELAY, RELAY_PREVIOUS]
        .into_iter()
        .flat_map(forms)
        .filter(|form| text.contains(form) || compact.contains(form))
        .collect()
}

fn assert_shows_no_key(what: &str, text: &str) {
    let shown = keys_shown(text);
    assert!(shown.is_empty(), "{what} shows a key as {shown:?}:\n{text}");
}

fn config() -> Config {
    Config {
        jwt_secret: Some(JWT.to_vec().into()),
        callback_key: Some(CALLBACK.to_vec().into()),
        cursor_key: Some(CURSOR.to_vec().into()),
        ..Config::default()
    }
}

#[test]
fn debug_output_shows_no_key() {
    let config = config();
    // What it shows instead: the settings are there, the keys are not.
    let shown = format!("{config:?}");
    assert!(shown.contains("jwt_issuer: \"account-connect-local\""), "{shown}");
    assert!(
        shown.contains("jwt_secret: Some(SecretBox<[u8]>([REDACTED]))"),
        "{shown}"
    );
    assert_shows_no_key("Config {:?}", &shown);
    assert_shows_no_key("Config {:#?}", &format!("{config:#?}"));
    // A clone is a key too.
    let clone = config.clone();
    assert_shows_no_key("a cloned Config", &format!("{clone:?} {clone:#?}"));
    // The local token issuer borrows the JWT key.
    let issuer = LocalIssuer::of(&config).expect("a JWT key is set");
    assert_eq!(issuer.secret, JWT, "the issuer signs with the configured key");
    assert_shows_no_key("LocalIssuer", &format!("{issuer:?} {issuer:#?}"));
    // The relay intake holds each partition's keys (current, previous) so.
    let relay_keys: Vec<Secret> = vec![RELAY.to_vec().into(), RELAY_PREVIOUS.to_vec().into()];
    assert_shows_no_key("relay keys", &format!("{relay_keys:?} {relay_keys:#?}"));
    // The keys are still there for whoever asks explicitly.
    assert_eq!(config.expose_callback_key(), Some(CALLBACK));
    assert_eq!(config.expose_jwt_secret(), Some(JWT));
}

#[test]
fn the_check_finds_a_key_in_each_form() {
    // The same check on text that does show a key, each way it could.
    for key in [JWT, CALLBACK, CURSOR, RELAY, RELAY_PREVIOUS] {
        let plain = key.to_vec();
        for (how, text) in [
            ("{:?} of the bytes", format!("Config {{ jwt_secret: Some({plain:?}) }}")),
            (
                "{:#?} of the bytes",
                format!("Config {{ jwt_secret: Some({plain:#?}) }}"),
            ),
            ("text", format!("key={}", String::from_utf8_lossy(key))),
            ("hex", format!("key={}", hex::encode(key))),
            ("base64", base64::engine::general_purpose::STANDARD.encode(key)),
            (
                "base64url",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
            ),
            ("its first bytes", format!("{:?}", &key[..12])),
        ] {
            assert!(!keys_shown(&text).is_empty(), "missed a key shown as {how}: {text}");
        }
    }
}
