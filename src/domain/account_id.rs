use super::{string_newtype_serde, ParseError};
use std::str::FromStr;

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(ParseError::new(
                "awsAccountId",
                format!("{s:?} is not an AWS account id: it must be exactly 12 digits, e.g. \"123456789012\""),
            ))
        }
    }
}

string_newtype_serde!(AccountId);
super::string_newtype_schema!(
    AccountId,
    serde_json::json!({"type": "string", "pattern": "^[0-9]{12}$", "examples": ["123456789012"]})
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_digits_only() {
        assert!("123456789012".parse::<AccountId>().is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", "", " 23456789012"] {
            assert!(bad.parse::<AccountId>().is_err(), "{bad:?}");
        }
    }
}
