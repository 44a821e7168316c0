//! Why a caller is refused. The API maps each to 401 or 403 and a stable code
//! (src/api/error.rs); the messages say what to do.

use super::MAX_SUB_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenancyError {
    // Who the caller is cannot be established (401).
    #[error("this route needs API Gateway's JWT authorizer")]
    NoAuthorizer,
    #[error("send Authorization: Bearer <token>")]
    NoCredentials,
    #[error("the Authorization header must be Bearer <token>")]
    NotBearer,
    #[error("this server has no ACCOUNT_CONNECT_JWT_SECRET to check tokens with")]
    NoSecret,
    #[error("this server's ACCOUNT_CONNECT_JWT_SECRET is empty: no token can be checked")]
    EmptySecret,
    #[error("the bearer token has expired; get a new one")]
    Expired,
    #[error("the bearer token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    #[error("only HS256 tokens are accepted")]
    WrongAlgorithm,
    #[error("the bearer token's iss claim must be {expected:?} (ACCOUNT_CONNECT_JWT_ISSUER)")]
    WrongIssuer { expected: String },
    #[error("the bearer token's aud claim must be {expected:?} (ACCOUNT_CONNECT_JWT_AUDIENCE)")]
    WrongAudience { expected: String },
    #[error("the bearer token has no {0} claim; account-connect token --org ORG mints one that has")]
    MissingClaim(String),
    #[error(
        "the bearer token is not valid: sign it with ACCOUNT_CONNECT_JWT_SECRET (account-connect token --org ORG)"
    )]
    InvalidToken,
    #[error("the token's org and sub claims must be present (org: letters, digits, - and _; sub: at most {MAX_SUB_LEN} bytes)")]
    InvalidIdentity,

    // The caller is known, but its accounts claim is not usable (403).
    #[error(
        "the token has no accounts claim, and this service requires one: the Spot accounts (act-…) \
         the user may act on, or \"*\" for every account of the organization. Ask whoever runs \
         your identity provider to add it."
    )]
    AccountsClaimMissing,
    #[error("the token's accounts claim is a string other than \"*\"; it must be \"*\" (every account) or a list of Spot account ids (act-…)")]
    AccountsNotEvery,
    #[error("the token's accounts claim lists more than {max} accounts; use \"*\" for every account", max = super::MAX_ACCOUNTS)]
    TooManyAccounts,
    #[error("write every account as the claim value \"*\" itself, not inside a list")]
    EveryInList,
    #[error("the token's accounts claim must list Spot account ids (act-…)")]
    NotSpotAccounts,
}
