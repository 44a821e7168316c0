//! The local server's HS256 tokens: minted by `account-connect token`,
//! checked on every request when no API Gateway authorizer stands in front.

use super::{Claims, TenancyError};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;

/// Who signs the local server's tokens and for whom: the `iss` and `aud`
/// every token must carry.
#[derive(Clone, Copy)]
pub struct LocalIssuer<'a> {
    pub secret: &'a [u8],
    pub issuer: &'a str,
    pub audience: &'a str,
}

/// The issuer and audience; never the key.
impl std::fmt::Debug for LocalIssuer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("secret", &"[REDACTED]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl<'a> LocalIssuer<'a> {
    /// The server's own settings (None without a secret).
    pub fn of(config: &'a crate::config::Config) -> Option<Self> {
        Some(LocalIssuer {
            secret: config.expose_jwt_secret()?,
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
pub fn verify(by: LocalIssuer<'_>, token: &str) -> Result<Claims, TenancyError> {
    let mut rules = Validation::new(Algorithm::HS256);
    // Same-host clock: no leeway, an expired token is refused at once.
    rules.leeway = 0;
    rules.validate_nbf = true;
    rules.set_required_spec_claims(&["exp", "iss", "aud"]);
    rules.set_issuer(&[by.issuer]);
    rules.set_audience(&[by.audience]);
    let key = DecodingKey::from_secret(by.secret).map_err(|_| TenancyError::EmptySecret)?;
    match jsonwebtoken::decode::<Claims>(token, &key, &rules) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::ExpiredSignature => TenancyError::Expired,
            ErrorKind::ImmatureSignature => TenancyError::NotYetValid,
            ErrorKind::InvalidAlgorithm => TenancyError::WrongAlgorithm,
            ErrorKind::InvalidIssuer => TenancyError::WrongIssuer {
                expected: by.issuer.to_owned(),
            },
            ErrorKind::InvalidAudience => TenancyError::WrongAudience {
                expected: by.audience.to_owned(),
            },
            ErrorKind::MissingRequiredClaim(claim) => TenancyError::MissingClaim(claim.clone()),
            _ => TenancyError::InvalidToken,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::AccountsClaim;
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
        verify(LOCAL, token).map(|c| c.org).map_err(|e| e.to_string())
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
}
