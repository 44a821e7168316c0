//! Who is calling: the tenant (org), the user, and the Spot accounts they may
//! act on. In Lambda, API Gateway's JWT authorizer has checked the token and
//! passes its claims; on the local server the token is checked here (HS256).
//! Both paths end in the same `Claims` -> `Tenant` step.

use crate::api::{ApiError, AppState};
use crate::domain::SpotAccountId;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
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

/// Who signs the local server's tokens and for whom: the `iss` and `aud`
/// every token must carry.
#[derive(Debug, Clone, Copy)]
pub struct LocalIssuer<'a> {
    pub secret: &'a [u8],
    pub issuer: &'a str,
    pub audience: &'a str,
}

impl<'a> LocalIssuer<'a> {
    /// The server's own settings (None without a secret).
    pub fn of(config: &'a crate::config::Config) -> Option<Self> {
        Some(LocalIssuer {
            secret: config.jwt_secret.as_deref()?,
            issuer: &config.jwt_issuer,
            audience: &config.jwt_audience,
        })
    }
}

/// What is signed: the claims, and who issued them for whom.
#[derive(Serialize)]
struct Signed<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    iss: &'a str,
    aud: &'a str,
    /// Valid from when it was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

/// Signs claims as an HS256 JWT for a server on the default issuer and audience.
pub fn mint(secret: &[u8], claims: &Claims) -> String {
    mint_as(
        LocalIssuer {
            secret,
            issuer: crate::config::DEFAULT_JWT_ISSUER,
            audience: crate::config::DEFAULT_JWT_AUDIENCE,
        },
        claims,
    )
}

/// Signs claims as an HS256 JWT with the issuer's `iss` and `aud`.
pub fn mint_as(by: LocalIssuer<'_>, claims: &Claims) -> String {
    let signed = Signed {
        claims,
        iss: by.issuer,
        aud: by.audience,
        nbf: claims.iat,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &signed,
        &EncodingKey::from_secret(by.secret).expect("the JWT secret is not empty (the settings require 32 bytes)"),
    )
    .expect("HS256 signs any serializable claims")
}

/// Checks an HS256 JWT's signature, `exp` (required), `nbf`, `iss` and
/// `aud`; returns its claims.
pub fn verify(by: LocalIssuer<'_>, token: &str) -> Result<Claims, ApiError> {
    let mut rules = Validation::new(Algorithm::HS256);
    // Same-host clock: no leeway, an expired token is refused at once.
    rules.leeway = 0;
    rules.validate_nbf = true;
    rules.set_required_spec_claims(&["exp", "iss", "aud"]);
    rules.set_issuer(&[by.issuer]);
    rules.set_audience(&[by.audience]);
    let key = DecodingKey::from_secret(by.secret)
        .map_err(|_| unauthorized("this server's ACCOUNT_CONNECT_JWT_SECRET is empty: no token can be checked"))?;
    match jsonwebtoken::decode::<Claims>(token, &key, &rules) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(unauthorized(match e.kind() {
            ErrorKind::ExpiredSignature => "the bearer token has expired; get a new one".to_owned(),
            ErrorKind::ImmatureSignature => "the bearer token is not valid yet (its nbf is in the future)".to_owned(),
            ErrorKind::InvalidAlgorithm => "only HS256 tokens are accepted".to_owned(),
            ErrorKind::InvalidIssuer => format!(
                "the bearer token's iss claim must be {:?} (ACCOUNT_CONNECT_JWT_ISSUER)",
                by.issuer
            ),
            ErrorKind::InvalidAudience => format!(
                "the bearer token's aud claim must be {:?} (ACCOUNT_CONNECT_JWT_AUDIENCE)",
                by.audience
            ),
            ErrorKind::MissingRequiredClaim(claim) => format!(
                "the bearer token has no {claim} claim; account-connect token --org ORG mints one that has"
            ),
            _ => "the bearer token is not valid: sign it with ACCOUNT_CONNECT_JWT_SECRET (account-connect token --org ORG)"
                .to_owned(),
        })),
    }
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
    let by = LocalIssuer::of(&state.config)
        .ok_or_else(|| unauthorized("this server has no ACCOUNT_CONNECT_JWT_SECRET to check tokens with"))?;
    verify(by, token.trim())
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
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    const LOCAL: LocalIssuer<'static> = LocalIssuer {
        secret: b"secret",
        issuer: crate::config::DEFAULT_JWT_ISSUER,
        audience: crate::config::DEFAULT_JWT_AUDIENCE,
    };

    fn code_of(token: &str) -> Result<String, String> {
        verify(LOCAL, token).map(|c| c.org).map_err(|e| e.message)
    }

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
        assert_eq!(verify(LOCAL, &t).unwrap().org, "org-a");
        assert!(verify(
            LocalIssuer {
                secret: b"other",
                ..LOCAL
            },
            &t
        )
        .is_err());
        let mut forged = claims();
        forged.org = "org-b".into();
        let payload = B64.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = t.split('.').collect();
        assert!(verify(LOCAL, &format!("{}.{}.{}", parts[0], payload, parts[2])).is_err());
        let none_alg = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), payload);
        assert!(verify(LOCAL, &none_alg).is_err());
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub": "u", "org": "o", "exp": now() + 60, "iss": LOCAL.issuer, "aud": LOCAL.audience}),
            &EncodingKey::from_secret(b"secret").unwrap(),
        )
        .unwrap();
        assert_eq!(code_of(&hs512), Err("only HS256 tokens are accepted".into()));
    }

    #[test]
    fn times_are_checked_and_exp_is_required() {
        let mut c = claims();
        c.exp = Some(now() - 1);
        assert!(code_of(&mint(b"secret", &c)).unwrap_err().contains("expired"));
        c.exp = None;
        assert!(code_of(&mint(b"secret", &c)).unwrap_err().contains("no exp claim"));
        c.exp = Some(now() + 60);
        c.iat = Some(now() + 30);
        assert!(code_of(&mint(b"secret", &c)).unwrap_err().contains("not valid yet"));
        c.iat = Some(now());
        assert_eq!(
            code_of(&mint(b"secret", &c)),
            Ok("org-a".into()),
            "nbf = iat = now is valid"
        );
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let c = claims();
        let other_iss = mint_as(
            LocalIssuer {
                issuer: "someone-else",
                ..LOCAL
            },
            &c,
        );
        assert!(code_of(&other_iss).unwrap_err().contains("ACCOUNT_CONNECT_JWT_ISSUER"));
        let other_aud = mint_as(
            LocalIssuer {
                audience: "another-service",
                ..LOCAL
            },
            &c,
        );
        assert!(code_of(&other_aud)
            .unwrap_err()
            .contains("ACCOUNT_CONNECT_JWT_AUDIENCE"));
        let custom = LocalIssuer {
            issuer: "idp",
            audience: "api",
            ..LOCAL
        };
        assert_eq!(verify(custom, &mint_as(custom, &c)).unwrap().org, "org-a");
        // Without iss or aud at all.
        let bare = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "u", "org": "o", "exp": now() + 60}),
            &EncodingKey::from_secret(b"secret").unwrap(),
        )
        .unwrap();
        // Which of the two jsonwebtoken checks first varies from run to run
        // (its required claims are a hash set): either way it is refused, naming one.
        let refusal = code_of(&bare).unwrap_err();
        assert!(
            refusal.contains("iss claim") || refusal.contains("aud claim"),
            "{refusal}"
        );
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
