use super::{string_newtype_serde, ParseError};
use std::str::FromStr;

/// Longest Spot account id accepted; real ones are `act-` and 8 hex digits.
const MAX_LEN: usize = 64;

/// A Spot account id (`act-…`), the unit a connection belongs to inside an org.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpotAccountId(String);

impl SpotAccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SpotAccountId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let ok = s.len() <= MAX_LEN
            && s.strip_prefix("act-")
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
        if ok {
            Ok(SpotAccountId(s.to_owned()))
        } else {
            Err(ParseError::new(
                "accountId",
                format!("{s:?} is not a Spot account id: expected \"act-\" followed by letters and digits, e.g. \"act-1a2b3c4d\""),
            ))
        }
    }
}

string_newtype_serde!(SpotAccountId);
super::string_newtype_schema!(
    SpotAccountId,
    serde_json::json!({"type": "string", "pattern": "^act-[A-Za-z0-9]+$", "maxLength": MAX_LEN, "examples": ["act-1a2b3c4d"]})
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_prefix_and_alphanumerics() {
        assert!("act-1a2b3c4d".parse::<SpotAccountId>().is_ok());
        for bad in ["act-", "acc-1234", "act-12/4", "ACT-1234", ""] {
            assert!(bad.parse::<SpotAccountId>().is_err(), "{bad:?}");
        }
        assert!(format!("act-{}", "a".repeat(70)).parse::<SpotAccountId>().is_err());
    }
}
