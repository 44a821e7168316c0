//! Who is calling: the tenant (org), the user, and the Spot accounts they may
//! act on. In Lambda, API Gateway's JWT authorizer has checked the token and
//! passes its claims; on the local server the token is checked here (HS256,
//! `token`). Both paths end in the same `Claims` -> `Tenant` step. No HTTP
//! here: the extractor that reads a request lives in the API layer.

mod error;
mod token;

pub use error::TenancyError;
pub use token::{mint, mint_as, verify, LocalIssuer};

use crate::domain::SpotAccountId;
use serde::{Deserialize, Serialize};

/// Longest org id accepted from a token.
const MAX_ORG_LEN: usize = 128;
/// Longest user (`sub`) accepted: it is recorded in every event.
const MAX_SUB_LEN: usize = 256;
/// Most Spot accounts one token may list.
pub const MAX_ACCOUNTS: usize = 1000;
/// The `accounts` claim's value for every Spot account of the org.
pub const EVERY_ACCOUNT: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub org: String,
    pub sub: String,
    /// None: every Spot account of the org.
    pub accounts: Option<Vec<SpotAccountId>>,
}

impl Tenant {
    pub fn may_access(&self, account: &SpotAccountId) -> bool {
        self.accounts.as_ref().is_none_or(|list| list.contains(account))
    }

    /// What the token may see, as one string: `*` or the sorted accounts.
    pub fn scope(&self) -> String {
        match &self.accounts {
            None => EVERY_ACCOUNT.to_owned(),
            Some(list) => {
                let mut ids: Vec<&str> = list.iter().map(SpotAccountId::as_str).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.join(",")
            }
        }
    }
}

/// The `accounts` claim: the string `"*"` for every Spot account of the org,
/// or the list of those the caller may act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AccountsClaim {
    /// Valid only as `"*"`.
    Every(String),
    Only(Vec<String>),
}

impl AccountsClaim {
    pub fn every() -> Self {
        AccountsClaim::Every(EVERY_ACCOUNT.to_owned())
    }
    pub fn only<S: Into<String>>(accounts: impl IntoIterator<Item = S>) -> Self {
        AccountsClaim::Only(accounts.into_iter().map(Into::into).collect())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<AccountsClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

impl Claims {
    /// The caller; `require_accounts` refuses a token without the
    /// `accounts` claim instead of reading it as every account.
    pub fn into_tenant(self, require_accounts: bool) -> Result<Tenant, TenancyError> {
        let org_ok = !self.org.is_empty()
            && self.org.len() <= MAX_ORG_LEN
            && self
                .org
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !org_ok || self.sub.is_empty() || self.sub.len() > MAX_SUB_LEN {
            return Err(TenancyError::InvalidIdentity);
        }
        let accounts = match self.accounts {
            None if require_accounts => return Err(TenancyError::AccountsClaimMissing),
            None => None,
            Some(AccountsClaim::Every(s)) if s == EVERY_ACCOUNT => None,
            Some(AccountsClaim::Every(_)) => return Err(TenancyError::AccountsNotEvery),
            Some(AccountsClaim::Only(list)) => {
                if list.len() > MAX_ACCOUNTS {
                    return Err(TenancyError::TooManyAccounts);
                }
                if list.iter().any(|a| a == EVERY_ACCOUNT) {
                    return Err(TenancyError::EveryInList);
                }
                let parsed = list
                    .iter()
                    .map(|a| a.parse())
                    .collect::<Result<Vec<SpotAccountId>, _>>()
                    .map_err(|_| TenancyError::NotSpotAccounts)?;
                Some(parsed)
            }
        };
        Ok(Tenant {
            org: self.org,
            sub: self.sub,
            accounts,
        })
    }

    /// API Gateway passes every claim as a string; an array claim arrives as
    /// `[a b]`.
    pub fn from_gateway(claims: &std::collections::HashMap<String, String>) -> Claims {
        let accounts = claims.get("accounts").map(|raw| {
            if raw.trim() == EVERY_ACCOUNT {
                return AccountsClaim::every();
            }
            let trimmed = raw.trim().trim_start_matches('[').trim_end_matches(']');
            AccountsClaim::Only(
                trimmed
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .map(|s| s.trim_matches('"'))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        });
        Claims {
            sub: claims.get("sub").cloned().unwrap_or_default(),
            org: claims.get("org").cloned().unwrap_or_default(),
            accounts,
            exp: None,
            iat: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sub: "u".into(),
            org: "org-a".into(),
            accounts: Some(AccountsClaim::every()),
            exp: Some(time::OffsetDateTime::now_utc().unix_timestamp() + 60),
            iat: None,
        }
    }

    #[test]
    fn gateway_array_claims_parse() {
        let map = std::collections::HashMap::from([
            ("sub".to_owned(), "u".to_owned()),
            ("org".to_owned(), "o".to_owned()),
            ("accounts".to_owned(), "[act-1 act-2]".to_owned()),
        ]);
        let t = Claims::from_gateway(&map).into_tenant(true).unwrap();
        assert_eq!(t.accounts.unwrap().len(), 2);
        let every = std::collections::HashMap::from([
            ("sub".to_owned(), "u".to_owned()),
            ("org".to_owned(), "o".to_owned()),
            ("accounts".to_owned(), "*".to_owned()),
        ]);
        assert_eq!(Claims::from_gateway(&every).into_tenant(true).unwrap().accounts, None);
    }

    #[test]
    fn every_account_is_explicit() {
        let code = |c: Claims, require: bool| c.into_tenant(require).map(|t| t.accounts);
        let mut c = claims();
        assert_eq!(code(c.clone(), true), Ok(None), "\"*\" is every account");
        c.accounts = None;
        assert_eq!(code(c.clone(), true), Err(TenancyError::AccountsClaimMissing));
        assert_eq!(
            code(c.clone(), false),
            Ok(None),
            "a deployment may read absent as every account"
        );
        c.accounts = Some(AccountsClaim::Every("all".into()));
        assert_eq!(code(c.clone(), true), Err(TenancyError::AccountsNotEvery));
        c.accounts = Some(AccountsClaim::only(["*"]));
        assert_eq!(code(c.clone(), true), Err(TenancyError::EveryInList));
        c.accounts = Some(AccountsClaim::only(["act-1", "nope"]));
        assert_eq!(code(c.clone(), true), Err(TenancyError::NotSpotAccounts));
        c.accounts = Some(AccountsClaim::only(vec!["act-1"; MAX_ACCOUNTS + 1]));
        assert_eq!(code(c.clone(), true), Err(TenancyError::TooManyAccounts));
        c.accounts = Some(AccountsClaim::only(Vec::<String>::new()));
        assert_eq!(
            code(c.clone(), true),
            Ok(Some(Vec::new())),
            "an empty list is no account"
        );
        let json: Claims = serde_json::from_str(r#"{"sub":"u","org":"o","accounts":"*"}"#).unwrap();
        assert_eq!(json.accounts, Some(AccountsClaim::every()));
        let mut long = claims();
        long.sub = "u".repeat(MAX_SUB_LEN + 1);
        assert_eq!(code(long, true), Err(TenancyError::InvalidIdentity));
    }
}
