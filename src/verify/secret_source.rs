//! A partition's vendor key, read from a Secrets Manager secret beside the
//! service. The secret's value is JSON:
//! `{"accessKeyId": "AKIA…", "secretAccessKey": "…"}` (the IAM user's key in
//! that partition). It is cached, re-read after `SECRET_TTL` (a rotation is
//! picked up within it) and, at most every `MIN_REREAD`, when STS refuses
//! the key it gave.

use crate::clock::Clock;
use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;
use serde::Deserialize;
use tokio::sync::Mutex;

/// A rotated key is used at most this long (seconds) after the rotation.
pub const SECRET_TTL: i64 = 300;
/// A refused key is re-read at most this often (seconds), so a dead key
/// cannot turn every verification into a Secrets Manager call.
pub const MIN_REREAD: i64 = 10;
/// A key's JSON is under 200 bytes; anything much bigger is not one.
const MAX_SECRET: usize = 4096;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyJson {
    access_key_id: String,
    secret_access_key: String,
}

struct Cached {
    creds: Credentials,
    version: Option<String>,
    read_at: i64,
}

pub struct SecretKey {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    /// The service's clock (a test moves it instead of waiting).
    clock: Clock,
    /// One read at a time: concurrent verifications wait for it.
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

/// The key in a secret's value, or why it is not one (never the value).
fn parse(value: &str) -> Result<(String, String), String> {
    if value.len() > MAX_SECRET {
        return Err(format!("the secret's value is over {MAX_SECRET} bytes"));
    }
    let k: KeyJson = serde_json::from_str(value)
        .map_err(|_| "the secret's value is not {\"accessKeyId\": …, \"secretAccessKey\": …}".to_owned())?;
    if k.access_key_id.trim().is_empty() || k.secret_access_key.trim().is_empty() {
        return Err("the secret's accessKeyId or secretAccessKey is empty".into());
    }
    Ok((k.access_key_id, k.secret_access_key))
}

/// Whether a cache read at `read_at` is still good at `now`.
fn fresh(read_at: i64, now: i64) -> bool {
    now.saturating_sub(read_at) < SECRET_TTL
}

impl SecretKey {
    pub fn new(client: aws_sdk_secretsmanager::Client, arn: String, clock: Clock) -> Self {
        SecretKey {
            client,
            arn,
            clock,
            cache: Mutex::new(None),
        }
    }

    /// The region in the secret's ARN (`arn:aws:secretsmanager:REGION:…`).
    pub fn region_of(arn: &str) -> Option<&str> {
        arn.split(':').nth(3).filter(|r| !r.is_empty())
    }

    async fn read(&self) -> Result<(Credentials, Option<String>), String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetSecretValue on {} failed: {}",
                    self.arn,
                    super::aws::classify_message(&e)
                )
            })?;
        let value = out
            .secret_string
            .ok_or_else(|| format!("the secret {} has no string value", self.arn))?;
        let (id, secret) = parse(&value).map_err(|m| format!("{}: {m}", self.arn))?;
        Ok((
            Credentials::new(id, secret, None, None, "secrets-manager"),
            out.version_id,
        ))
    }

    /// The cached key, read again once it is older than the TTL. A failed
    /// re-read keeps the old key: Secrets Manager being down is no reason
    /// to stop verifying.
    pub async fn current(&self) -> Result<Credentials, String> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| fresh(c.read_at, self.clock.now())) {
            return Ok(c.creds.clone());
        }
        match self.read().await {
            Ok((creds, version)) => {
                if let Some(old) = cache.as_ref() {
                    if old.version != version {
                        tracing::info!(secret = %self.arn, "a partition's vendor key was rotated; using the new one");
                    }
                }
                *cache = Some(Cached {
                    creds: creds.clone(),
                    version,
                    read_at: self.clock.now(),
                });
                Ok(creds)
            }
            Err(m) => match cache.as_mut() {
                Some(old) => {
                    tracing::warn!(error = %m, "could not re-read a partition's vendor key; keeping the cached one");
                    old.read_at = self.clock.now();
                    Ok(old.creds.clone())
                }
                None => Err(m),
            },
        }
    }

    /// STS refused the cached key: forget it, unless it was read a moment
    /// ago. Answers whether a new read will happen.
    pub async fn invalidate(&self) -> bool {
        let mut cache = self.cache.lock().await;
        match cache.as_ref() {
            Some(c) if self.clock.now().saturating_sub(c.read_at) < MIN_REREAD => false,
            _ => {
                *cache = None;
                true
            }
        }
    }
}

/// The SDK asks this for every AssumeRole; the cache above answers.
#[derive(Debug, Clone)]
pub struct SecretCredentials(pub std::sync::Arc<SecretKey>);

impl ProvideCredentials for SecretCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.0.current().await.map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_holds_an_access_key() {
        let (id, secret) = parse(r#"{"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "s3cr3t"}"#).unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("AKIAEXAMPLE", "s3cr3t"));
        for bad in [
            "AKIAEXAMPLE:s3cr3t",
            r#"{"AccessKeyId": "AKIA", "SecretAccessKey": "x"}"#,
            r#"{"accessKeyId": "", "secretAccessKey": "x"}"#,
            r#"{"accessKeyId": "AKIA"}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("s3cr3t") && !err.contains('x'), "{err}");
        }
        assert!(parse(&format!(
            r#"{{"accessKeyId": "{}", "secretAccessKey": "x"}}"#,
            "A".repeat(MAX_SECRET)
        ))
        .is_err());
    }

    #[test]
    fn a_read_is_good_for_the_ttl() {
        let t = 1_700_000_000;
        assert!(fresh(t, t));
        assert!(fresh(t, t + SECRET_TTL - 1));
        assert!(!fresh(t, t + SECRET_TTL));
    }

    #[test]
    fn the_region_comes_from_the_arn() {
        assert_eq!(
            SecretKey::region_of("arn:aws:secretsmanager:eu-west-1:123456789012:secret:gov-AbCdEf"),
            Some("eu-west-1")
        );
        assert_eq!(SecretKey::region_of("not-an-arn"), None);
    }
}
