use super::{string_newtype_serde, ParseError};
use std::str::FromStr;

/// STS limits (aws-rules.md, "External IDs").
pub const MIN_LEN: usize = 2;
pub const MAX_LEN: usize = 1224;
/// 160 bits from the OS CSPRNG: above the 128 bits asked for.
const RANDOM_BYTES: usize = 20;

/// An external ID as STS accepts it: 2-1,224 characters of `[\w+=,.@:/-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)
}

impl ExternalId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh ID: `prefix` + 160 random bits from the OS CSPRNG, hex.
    pub fn generate(prefix: &ExternalIdPrefix) -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
        ExternalId(format!("{}{}", prefix.0, hex::encode(bytes)))
    }
}

impl FromStr for ExternalId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let n = s.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&n) {
            return Err(ParseError::new(
                "externalId",
                format!("an external ID has {MIN_LEN} to {MAX_LEN} characters; this one has {n}"),
            ));
        }
        if let Some(c) = s.chars().find(|c| !allowed(*c)) {
            return Err(ParseError::new(
                "externalId",
                format!("an external ID may hold letters, digits and _+=,.@:/- only; found {c:?}"),
            ));
        }
        Ok(ExternalId(s.to_owned()))
    }
}

string_newtype_serde!(ExternalId);
super::string_newtype_schema!(
    ExternalId,
    serde_json::json!({"type": "string", "pattern": "^[A-Za-z0-9_+=,.@:/-]+$", "minLength": MIN_LEN, "maxLength": MAX_LEN})
);

/// The configured prefix of generated IDs; short enough that an ID stays valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdPrefix(String);

impl ExternalIdPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ExternalIdPrefix {
    fn default() -> Self {
        ExternalIdPrefix("spotinst:aws:extid:".to_owned())
    }
}

impl FromStr for ExternalIdPrefix {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.len() + RANDOM_BYTES * 2 > MAX_LEN || s.chars().any(|c| !allowed(c)) {
            return Err(ParseError::new(
                "ACCOUNT_CONNECT_EXTERNAL_ID_PREFIX",
                format!(
                    "the prefix may hold letters, digits and _+=,.@:/- only, at most {} characters",
                    MAX_LEN - RANDOM_BYTES * 2
                ),
            ));
        }
        Ok(ExternalIdPrefix(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_unique_and_prefixed() {
        let prefix = ExternalIdPrefix::default();
        let a = ExternalId::generate(&prefix);
        let b = ExternalId::generate(&prefix);
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("spotinst:aws:extid:"));
        assert_eq!(a.as_str().len(), prefix.as_str().len() + 40);
        assert_eq!(a.as_str().parse::<ExternalId>().unwrap(), a);
    }

    #[test]
    fn refuses_what_sts_refuses() {
        assert!("a".parse::<ExternalId>().is_err());
        assert!("ab".parse::<ExternalId>().is_ok());
        assert!("has space".parse::<ExternalId>().is_err());
        assert!("semi;colon".parse::<ExternalId>().is_err());
        assert!("x".repeat(MAX_LEN).parse::<ExternalId>().is_ok());
        assert!("x".repeat(MAX_LEN + 1).parse::<ExternalId>().is_err());
        assert!("bad prefix".parse::<ExternalIdPrefix>().is_err());
    }
}
