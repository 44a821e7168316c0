//! Who is calling: the tenant (org), the user, and the Spot accounts they may
//! act on. In Lambda, API Gateway's JWT authorizer has checked the token and
//! passes its claims; on the local server the token is checked here (HS256).
//! Both paths end in the same `Claims` -> `Tenant` step.

use crate::api::{ApiError, AppState};
use crate::domain::SpotAccountId;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn accounts_error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(axum::http::StatusCode::FORBIDDEN, code, message)
}

impl Claims {
    /// The caller; `require_accounts` refuses a token without the
    /// `accounts` claim instead of reading it as every account.
    pub fn into_tenant(self, require_accounts: bool) -> Result<Tenant, ApiError> {
        let org_ok = !self.org.is_empty()
            && self.org.len() <= MAX_ORG_LEN
            && self
                .org
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !org_ok || self.sub.is_empty() || self.sub.len() > MAX_SUB_LEN {
            return Err(unauthorized(format!(
                "the token's org and sub claims must be present (org: letters, digits, - and _; sub: at most {MAX_SUB_LEN} bytes)"
            )));
        }
        let accounts = match self.accounts {
            None if require_accounts => {
                return Err(accounts_error(
                    "accounts_claim_missing",
                    "the token has no accounts claim, and this service requires one: the Spot accounts (act-…) \
                     the user may act on, or \"*\" for every account of the organization. Ask whoever runs \
                     your identity provider to add it.",
                ))
            }
            None => None,
            Some(AccountsClaim::Every(s)) if s == EVERY_ACCOUNT => None,
            Some(AccountsClaim::Every(_)) => {
                return Err(accounts_error(
                    "invalid_accounts_claim",
                    "the token's accounts claim is a string other than \"*\"; it must be \"*\" (every account) or a list of Spot account ids (act-…)",
                ))
            }
            Some(AccountsClaim::Only(list)) => {
                if list.len() > MAX_ACCOUNTS {
                    return Err(accounts_error(
                        "invalid_accounts_claim",
                        format!("the token's accounts claim lists more than {MAX_ACCOUNTS} accounts; use \"*\" for every account"),
                    ));
                }
                if list.iter().any(|a| a == EVERY_ACCOUNT) {
                    return Err(accounts_error(
                        "invalid_accounts_claim",
                        "write every account as the claim value \"*\" itself, not inside a list",
                    ));
                }
                let parsed = list
                    .iter()
                    .map(|a| a.parse())
                    .collect::<Result<Vec<SpotAccountId>, _>>()
                    .map_err(|_| {
                        accounts_error(
                            "invalid_accounts_claim",
                            "the token's accounts claim must list Spot account ids (act-…)",
                        )
                    })?;
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
    fn from_gateway(claims: &std::collections::HashMap<String, String>) -> Claims {
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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Signs claims as an HS256 JWT.
pub fn mint(secret: &[u8], claims: &Claims) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(mac.finalize().into_bytes()))
}

/// Checks an HS256 JWT's signature and times; returns its claims.
pub fn verify(secret: &[u8], token: &str) -> Result<Claims, ApiError> {
    let bad = || {
        unauthorized(
            "the bearer token is not valid: sign it with ACCOUNT_CONNECT_JWT_SECRET (account-connect token --org ORG)",
        )
    };
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let header: serde_json::Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    if header["alg"] != "HS256" {
        return Err(unauthorized("only HS256 tokens are accepted"));
    }
    let sig = B64.decode(sig).map_err(|_| bad())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{h}.{p}").as_bytes());
    mac.verify_slice(&sig).map_err(|_| bad())?;
    let claims: Claims = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    if claims.exp.is_some_and(|exp| exp <= now()) {
        return Err(unauthorized("the bearer token has expired; get a new one"));
    }
    Ok(claims)
}

/// The claims of the request, from API Gateway's authorizer or the bearer token.
pub fn claims_of(parts: &Parts, state: &AppState) -> Result<Claims, ApiError> {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
        parts.extensions.get::<lambda_http::request::RequestContext>()
    {
        return match ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()) {
            Some(jwt) => Ok(Claims::from_gateway(&jwt.claims)),
            None => Err(unauthorized("this route needs API Gateway's JWT authorizer")),
        };
    }
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("send Authorization: Bearer <token>"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("the Authorization header must be Bearer <token>"))?;
    let secret = state
        .config
        .jwt_secret
        .as_deref()
        .ok_or_else(|| unauthorized("this server has no ACCOUNT_CONNECT_JWT_SECRET to check tokens with"))?;
    verify(secret, token.trim())
}

/// The caller of the request, under the deployment's accounts-claim rule.
pub fn tenant_of(parts: &Parts, state: &AppState) -> Result<Tenant, ApiError> {
    claims_of(parts, state)?.into_tenant(state.config.require_accounts_claim)
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        tenant_of(parts, state)
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
            exp: Some(now() + 60),
            iat: None,
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let t = mint(b"secret", &claims());
        assert_eq!(verify(b"secret", &t).unwrap().org, "org-a");
        assert!(verify(b"other", &t).is_err());
        let mut forged = claims();
        forged.org = "org-b".into();
        let payload = B64.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        assert!(verify(b"secret", &format!("{}.{}.{}", parts[0], payload, parts[2])).is_err());
        let none_alg = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), payload);
        assert!(verify(b"secret", &none_alg).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let mut c = claims();
        c.exp = Some(now() - 1);
        assert!(verify(b"secret", &mint(b"secret", &c)).is_err());
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
        let code = |c: Claims, require: bool| c.into_tenant(require).map(|t| t.accounts).map_err(|e| e.code);
        let mut c = claims();
        assert_eq!(code(c.clone(), true), Ok(None), "\"*\" is every account");
        c.accounts = None;
        assert_eq!(code(c.clone(), true), Err("accounts_claim_missing"));
        assert_eq!(
            code(c.clone(), false),
            Ok(None),
            "a deployment may read absent as every account"
        );
        c.accounts = Some(AccountsClaim::Every("all".into()));
        assert_eq!(code(c.clone(), true), Err("invalid_accounts_claim"));
        c.accounts = Some(AccountsClaim::only(["*"]));
        assert_eq!(code(c.clone(), true), Err("invalid_accounts_claim"));
        c.accounts = Some(AccountsClaim::only(["act-1", "nope"]));
        assert_eq!(code(c.clone(), true), Err("invalid_accounts_claim"));
        c.accounts = Some(AccountsClaim::only(vec!["act-1"; MAX_ACCOUNTS + 1]));
        assert_eq!(code(c.clone(), true), Err("invalid_accounts_claim"));
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
        assert_eq!(code(long, true), Err("unauthorized"));
    }
}
