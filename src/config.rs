//! Settings from the environment; each is documented in the README.

use crate::domain::{ExternalIdPrefix, Partition};
use std::collections::BTreeMap;

/// Spot's commercial principal, from its public docs (the seeds).
pub const DEFAULT_PRINCIPAL_AWS: &str = "arn:aws:iam::922761411349:root";
/// Local runs keep their state in this SQLite file.
pub const DEFAULT_STORE: &str = "sqlite://account-connect.db";
/// Shortest JWT secret accepted: HS256 wants at least 256 bits.
const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct Config {
    /// Vendor principal per partition; a partition without one cannot be connected.
    pub principals: BTreeMap<Partition, String>,
    pub external_id_prefix: ExternalIdPrefix,
    pub external_id_ttl_secs: u64,
    /// Where connections live: `sqlite://PATH`, `sqlite::memory:` or `dynamodb://TABLE`.
    pub store_url: String,
    /// Key for HS256 bearer tokens on the local server; in Lambda, API
    /// Gateway checks tokens and this stays unset.
    pub jwt_secret: Option<Vec<u8>>,
    /// How long a verification waits for IAM to propagate a new role; fits
    /// inside API Gateway's 30 s with the rest of the checks.
    pub propagation_budget_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            principals: BTreeMap::from([(Partition::Aws, DEFAULT_PRINCIPAL_AWS.to_owned())]),
            external_id_prefix: ExternalIdPrefix::default(),
            external_id_ttl_secs: 48 * 3600,
            store_url: DEFAULT_STORE.to_owned(),
            jwt_secret: None,
            propagation_budget_secs: 20,
        }
    }
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut c = Config::default();
        for p in Partition::ALL {
            let name = format!("ACCOUNT_CONNECT_PRINCIPAL_{}", p.env_suffix());
            if let Some(v) = var(&name) {
                if !v.starts_with(&format!("arn:{}:iam::", p.as_str())) {
                    return Err(ConfigError(format!(
                        "{name} must be an IAM ARN in the {} partition",
                        p.as_str()
                    )));
                }
                c.principals.insert(p, v);
            }
        }
        if let Some(v) = var("ACCOUNT_CONNECT_EXTERNAL_ID_PREFIX") {
            c.external_id_prefix = v
                .parse()
                .map_err(|e: crate::domain::ParseError| ConfigError(e.to_string()))?;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_EXTERNAL_ID_TTL_HOURS") {
            let hours: u64 = v.parse().ok().filter(|h| (1..=24 * 365).contains(h)).ok_or_else(|| {
                ConfigError("ACCOUNT_CONNECT_EXTERNAL_ID_TTL_HOURS must be a whole number of hours, 1 to 8760".into())
            })?;
            c.external_id_ttl_secs = hours * 3600;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_STORE") {
            c.store_url = v;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_PROPAGATION_BUDGET_SECS") {
            c.propagation_budget_secs = v.parse().ok().filter(|s| *s <= 900).ok_or_else(|| {
                ConfigError(
                    "ACCOUNT_CONNECT_PROPAGATION_BUDGET_SECS must be a whole number of seconds, 0 to 900".into(),
                )
            })?;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_JWT_SECRET") {
            if v.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError(format!(
                    "ACCOUNT_CONNECT_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} characters"
                )));
            }
            c.jwt_secret = Some(v.into_bytes());
        }
        Ok(c)
    }
}
