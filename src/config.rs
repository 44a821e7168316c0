//! Settings from the environment; each is documented in the README.

use crate::domain::{ExternalIdPrefix, Partition};
use std::collections::BTreeMap;

/// Spot's commercial principal, from its public docs (the seeds).
pub const DEFAULT_PRINCIPAL_AWS: &str = "arn:aws:iam::922761411349:root";

#[derive(Debug, Clone)]
pub struct Config {
    /// Vendor principal per partition; a partition without one cannot be connected.
    pub principals: BTreeMap<Partition, String>,
    pub external_id_prefix: ExternalIdPrefix,
    pub external_id_ttl_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            principals: BTreeMap::from([(Partition::Aws, DEFAULT_PRINCIPAL_AWS.to_owned())]),
            external_id_prefix: ExternalIdPrefix::default(),
            external_id_ttl_secs: 48 * 3600,
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
            let hours: u64 = v
                .parse()
                .ok()
                .filter(|h| (1..=24 * 365).contains(h))
                .ok_or_else(|| ConfigError("ACCOUNT_CONNECT_EXTERNAL_ID_TTL_HOURS must be a whole number of hours, 1 to 8760".into()))?;
            c.external_id_ttl_secs = hours * 3600;
        }
        Ok(c)
    }
}
