//! Settings from the environment; each is documented in docs/api.md. The
//! only module that reads environment variables (the layering test fails
//! on a read anywhere else): the rest of the code is handed what it needs.
//! Keys are held as [`Secret`]s, which `Debug` never prints.

use crate::domain::{ExternalIdPrefix, Partition};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;

/// A key's bytes: formatted as `[REDACTED]` by `Debug`, wiped from memory
/// when dropped; read with `secrecy::ExposeSecret::expose_secret`.
pub type Secret = secrecy::SecretSlice<u8>;

/// Spot's commercial principal, from its public docs (the seeds).
pub const DEFAULT_PRINCIPAL_AWS: &str = "arn:aws:iam::922761411349:root";
/// Local runs keep their state in this SQLite file.
/// STS calls a process makes per second per partition unless configured.
pub const DEFAULT_STS_PER_SEC: u32 = 100;

pub const DEFAULT_STORE: &str = "sqlite://account-connect.db";
/// `iss` of the tokens `account-connect token` mints and the local server expects.
pub const DEFAULT_JWT_ISSUER: &str = "account-connect-local";
/// `aud` of the same tokens.
pub const DEFAULT_JWT_AUDIENCE: &str = "account-connect";
/// Longest issuer or audience setting accepted.
const MAX_JWT_PARTY_LEN: usize = 256;
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
    /// The KMS key (id, ARN or alias) whose data keys seal webhook signing
    /// secrets in the store (the DynamoDB deployment).
    pub secrets_kms_key: Option<String>,
    /// The local key file that wraps those data keys instead (SQLite);
    /// unset: `<database>.secrets-key`, made on first use.
    pub secrets_key_file: Option<std::path::PathBuf>,
    /// Key for HS256 bearer tokens on the local server; in Lambda, API
    /// Gateway checks tokens and this stays unset.
    pub jwt_secret: Option<Secret>,
    /// `iss` the local server's tokens must carry (and `token` mints).
    pub jwt_issuer: String,
    /// `aud` the local server's tokens must carry (and `token` mints).
    pub jwt_audience: String,
    /// How long a verification waits for IAM to propagate a new role; fits
    /// inside API Gateway's 30 s with the rest of the checks.
    pub propagation_budget_secs: u64,
    /// The CloudFormation callback's budget: a stack's new role may take a
    /// minute or more to propagate, and the function has minutes.
    pub callback_propagation_secs: u64,
    /// HMAC key of the callback token that proves a template came from us.
    pub callback_key: Option<Secret>,
    /// Hosts the callback may answer instead of CloudFormation's response
    /// buckets (`*.` a suffix wildcard), for local runs and tests; unset in AWS.
    pub callback_response_hosts: Option<Vec<String>>,
    /// The SNS topic customers' stacks report to, per partition.
    pub topics: BTreeMap<Partition, String>,
    /// Bucket the templates of automatic connections are uploaded to (commercial).
    pub template_bucket: Option<String>,
    /// GovCloud's and China's buckets, in the vendor's account of their
    /// partition (`ACCOUNT_CONNECT_TEMPLATE_BUCKET_AWS_US_GOV`, `_AWS_CN`).
    pub partition_template_buckets: BTreeMap<Partition, String>,
    /// Region of the quick-create link in the commercial partition.
    pub quick_create_region: String,
    /// Stack names start with this; customers search for it (the seeds).
    pub stack_prefix: String,
    /// Members read per store page by the organization view, its
    /// reconciliation and offboarding, which read every member page after
    /// page (the store's maximum, 100; smaller in tests, to page more).
    pub member_page: usize,
    /// Connections the scheduled re-check handles per page.
    pub recheck_batch: usize,
    /// Checks one re-check worker runs at once.
    pub recheck_concurrency: usize,
    /// Each re-check's own deadline, store writes included.
    pub recheck_check_timeout_secs: u64,
    /// How often the schedule runs; a connection not checked for two of
    /// these is stale.
    pub recheck_interval_secs: u64,
    /// The SQS queue the enumerator fills and the workers drain.
    pub recheck_queue_url: Option<String>,
    /// Long verifications (a Create that may wait for IAM) one organization
    /// runs at once in the callback and the relay intake, across instances;
    /// 0: no limit. See docs/design.md, "Fair shares".
    pub callback_tenant_share: u32,
    /// Webhook attempts of one organization in flight at once in the
    /// dispatcher, across instances; one over it is queued again shortly.
    /// 0: no limit. See docs/design.md, "Fair shares".
    pub webhook_tenant_share: u32,
    /// Where the callback defers an organization's Create over its share;
    /// unset (local runs), nothing is deferred.
    pub callback_queue_url: Option<String>,
    /// How long a deferred Create waits before it is tried again (seconds).
    pub callback_defer_secs: u32,
    /// The EventBridge bus (name or ARN) state-change events are put on;
    /// unset, none are published and events go to webhooks only.
    pub event_bus: Option<String>,
    /// The events' `Source`.
    pub event_source: String,
    /// Webhook hosts (`host` or `host:port`) exempt from the address rules
    /// and allowed plain http: tests and local runs.
    pub webhook_allow_hosts: Vec<String>,
    /// The AWS account the deployment runs in (the template passes
    /// `AWS::AccountId`); its roles, like those of the vendor principals'
    /// accounts, are never a customer's. None locally unless set.
    pub deployment_account: Option<String>,
    /// The delayed SQS queue that carries webhook attempts in AWS; unset,
    /// the process that fans events out sends them (`serve`).
    pub webhook_queue_url: Option<String>,
    /// The sweeper (in AWS) takes up an outbox item still undelivered, and
    /// a delivery still pending, this long after it was due.
    pub sweep_after_secs: u64,
    /// STS calls (AssumeRole) per second a process makes per partition,
    /// under STS's per-account request quota.
    pub sts_per_sec: u32,
    /// Per-tenant limits a minute on verifications, re-checks and
    /// organization syncs, held in the store (`crate::limits`).
    pub rate_limits: RateLimits,
    /// STS endpoint per partition for verifications, in place of the SDK's
    /// (a VPC endpoint; a stand-in in tests, where env vars are process-wide).
    pub sts_endpoints: BTreeMap<Partition, String>,
    /// The same for IAM (the assumed role's reads and policy simulation).
    pub iam_endpoints: BTreeMap<Partition, String>,
    /// The same for Organizations (reconciliation through the management role).
    pub organizations_endpoints: BTreeMap<Partition, String>,
    /// The same for CloudFormation (the organization StackSet's instances).
    pub cloudformation_endpoints: BTreeMap<Partition, String>,
    /// Secret that seals page cursors; every instance must share it, or a
    /// cursor from one is refused by another. Unset: random per process.
    pub cursor_key: Option<Secret>,
    /// Refuse tokens without an `accounts` claim (every account is the
    /// explicit `"*"`), so an issuer that forgets it grants nothing.
    pub require_accounts_claim: bool,
    /// Where each partition's vendor identity comes from; commercial
    /// without one uses the service's own credentials (its role).
    pub credential_sources: BTreeMap<Partition, CredentialSource>,
    /// Secret (ARN) holding the HMAC key a partition's relay signs with.
    pub relay_key_secrets: BTreeMap<Partition, String>,
    /// Whether EMF metric lines are written: `ACCOUNT_CONNECT_METRICS`
    /// (`emf` or `off`) when set, else only in Lambda.
    pub metrics: bool,
}

/// Per-tenant limits a minute, with the documented defaults (`crate::limits`
/// takes them from the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub verifications_per_minute: u32,
    pub rechecks_per_minute: u32,
    pub syncs_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            verifications_per_minute: 60,
            rechecks_per_minute: 60,
            syncs_per_minute: 6,
        }
    }
}

/// The partition relay's settings (`account-connect-relay`,
/// infra/partition-relay.yaml).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The main deployment's `…/v1/relay/<partition>`.
    pub url: String,
    /// The secret, in the relay's partition, holding the key it signs with.
    pub key_secret: String,
}

impl RelayConfig {
    pub fn from_env() -> Result<RelayConfig, ConfigError> {
        let required = |name: &str| var(name).ok_or_else(|| ConfigError(format!("{name} is not set")));
        Ok(RelayConfig {
            url: required("ACCOUNT_CONNECT_RELAY_URL")?,
            key_secret: required("ACCOUNT_CONNECT_RELAY_KEY_SECRET")?,
        })
    }
}

/// The pre-traffic hook's settings (`ACCOUNT_CONNECT_PRE_TRAFFIC_*`): the
/// dispatcher's binary runs as CodeDeploy's hook when they are set
/// (template.yaml, `PreTrafficHookFunction`; infra/RUNBOOK.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreTrafficConfig {
    /// The API function's new version (ARN): sent API Gateway's events.
    pub api_version: String,
    /// The other functions' new versions (ARNs): sent the probe event.
    pub event_versions: Vec<String>,
}

impl PreTrafficConfig {
    /// None when `ACCOUNT_CONNECT_PRE_TRAFFIC_API_VERSION` is unset (not a hook).
    pub fn from_env() -> Result<Option<PreTrafficConfig>, ConfigError> {
        let Some(api_version) = var("ACCOUNT_CONNECT_PRE_TRAFFIC_API_VERSION") else {
            return Ok(None);
        };
        let event_versions: Vec<String> = var("ACCOUNT_CONNECT_PRE_TRAFFIC_EVENT_VERSIONS")
            .unwrap_or_default()
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        for arn in std::iter::once(&api_version).chain(&event_versions) {
            if !is_version_arn(arn) {
                return Err(ConfigError(format!(
                    "ACCOUNT_CONNECT_PRE_TRAFFIC_*: {arn:?} is not a function version's ARN \
                     (arn:<partition>:lambda:<region>:<account>:function:<name>:<version>)"
                )));
            }
        }
        Ok(Some(PreTrafficConfig {
            api_version: api_version.trim().to_owned(),
            event_versions,
        }))
    }
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>:<version>`:
/// the hook invokes published versions only, never `$LATEST` or an alias.
fn is_version_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.trim().split(':').collect();
    parts.len() == 8
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && !parts[6].is_empty()
        && !parts[7].is_empty()
        && parts[7].bytes().all(|b| b.is_ascii_digit())
}

/// `ACCOUNT_CONNECT_ADDR`: where `serve` listens when the command gives no
/// `--addr`.
pub fn serve_addr() -> Option<String> {
    var("ACCOUNT_CONNECT_ADDR").map(|a| a.trim().to_owned())
}

/// A partition's vendor identity: partitions have separate IAM, so each
/// signs with credentials of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A named profile of the standard AWS config files (local runs, tests).
    Profile(String),
    /// A Secrets Manager secret (ARN) holding the vendor IAM user's access key.
    Secret(String),
}

impl Config {
    /// The settings that give `p` a vendor identity, for messages.
    pub fn credential_settings(p: Partition) -> [String; 2] {
        [
            format!("ACCOUNT_CONNECT_CREDENTIALS_SECRET_{}", p.env_suffix()),
            format!("ACCOUNT_CONNECT_PROFILE_{}", p.env_suffix()),
        ]
    }

    /// The setting naming `p`'s template bucket.
    pub fn template_bucket_setting(p: Partition) -> String {
        match p {
            Partition::Aws => "ACCOUNT_CONNECT_TEMPLATE_BUCKET".to_owned(),
            other => format!("ACCOUNT_CONNECT_TEMPLATE_BUCKET_{}", other.env_suffix()),
        }
    }

    /// The bucket `p`'s templates are uploaded to, if any: CloudFormation
    /// reads a template from its own partition's S3 only.
    pub fn template_bucket_for(&self, p: Partition) -> Option<&str> {
        match p {
            Partition::Aws => self.template_bucket.as_deref(),
            other => self.partition_template_buckets.get(&other).map(String::as_str),
        }
    }

    /// Whether verifications in `p` have credentials to sign with.
    pub fn has_credentials(&self, p: Partition) -> bool {
        p == Partition::Aws || self.credential_sources.contains_key(&p)
    }

    /// The callback key's bytes, to sign or check a callback token.
    pub fn expose_callback_key(&self) -> Option<&[u8]> {
        self.callback_key.as_ref().map(ExposeSecret::expose_secret)
    }

    /// The local server's JWT key's bytes, to sign or check a token.
    pub fn expose_jwt_secret(&self) -> Option<&[u8]> {
        self.jwt_secret.as_ref().map(ExposeSecret::expose_secret)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            principals: BTreeMap::from([(Partition::Aws, DEFAULT_PRINCIPAL_AWS.to_owned())]),
            external_id_prefix: ExternalIdPrefix::default(),
            external_id_ttl_secs: 48 * 3600,
            store_url: DEFAULT_STORE.to_owned(),
            secrets_kms_key: None,
            secrets_key_file: None,
            jwt_secret: None,
            jwt_issuer: DEFAULT_JWT_ISSUER.to_owned(),
            jwt_audience: DEFAULT_JWT_AUDIENCE.to_owned(),
            propagation_budget_secs: 20,
            callback_propagation_secs: 240,
            callback_key: None,
            callback_response_hosts: None,
            topics: BTreeMap::new(),
            template_bucket: None,
            partition_template_buckets: BTreeMap::new(),
            quick_create_region: "us-east-1".to_owned(),
            stack_prefix: "spotinst-iam-stack".to_owned(),
            // The store's largest page (`store::MAX_PAGE`).
            member_page: 100,
            recheck_batch: 50,
            recheck_concurrency: 16,
            recheck_check_timeout_secs: 30,
            recheck_interval_secs: 86_400,
            recheck_queue_url: None,
            callback_tenant_share: 2,
            webhook_tenant_share: 2,
            callback_queue_url: None,
            callback_defer_secs: 60,
            event_bus: None,
            event_source: DEFAULT_EVENT_SOURCE.to_owned(),
            webhook_allow_hosts: Vec::new(),
            deployment_account: None,
            webhook_queue_url: None,
            sweep_after_secs: 300,
            sts_per_sec: DEFAULT_STS_PER_SEC,
            rate_limits: RateLimits::default(),
            sts_endpoints: BTreeMap::new(),
            iam_endpoints: BTreeMap::new(),
            organizations_endpoints: BTreeMap::new(),
            cloudformation_endpoints: BTreeMap::new(),
            cursor_key: None,
            require_accounts_claim: true,
            credential_sources: BTreeMap::new(),
            relay_key_secrets: BTreeMap::new(),
            metrics: false,
        }
    }
}

/// Comma-separated hosts, each a name or IP address, optionally `*.` first.
fn response_hosts(v: &str) -> Result<Vec<String>, ConfigError> {
    let hosts: Vec<String> = v
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let valid = |h: &str| {
        let name = h.strip_prefix("*.").unwrap_or(h);
        let bracketed = name.starts_with('[') && name.ends_with(']') && name.len() > 2;
        !name.is_empty()
            && name.len() <= 253
            && (bracketed
                || name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    };
    if hosts.is_empty() || !hosts.iter().all(|h| valid(h)) {
        return Err(ConfigError(
            "ACCOUNT_CONNECT_CALLBACK_RESPONSE_HOSTS: comma-separated host names or IP addresses, each optionally starting with *. (no scheme, port or path), e.g. 127.0.0.1".into(),
        ));
    }
    Ok(hosts)
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

/// An endpoint override: https, or http only to this machine (a local stand-in).
fn endpoint_url(name: &str, v: &str) -> Result<String, ConfigError> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    let rest_ok = |rest: &str| rest.is_empty() || rest.starts_with([':', '/']);
    let ok = v
        .strip_prefix("https://")
        .is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        || loopback.iter().any(|l| v.strip_prefix(l).is_some_and(rest_ok));
    if ok {
        Ok(v.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError(format!(
            "{name} must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
        )))
    }
}

/// The `Source` of state-change events without ACCOUNT_CONNECT_EVENT_SOURCE.
pub const DEFAULT_EVENT_SOURCE: &str = "account-connect";

/// An EventBridge bus name (letters, digits, `.`, `-`, `_`, `/`; at most
/// 256) or a bus ARN.
fn event_bus(v: &str) -> Result<String, ConfigError> {
    let name_ok = |n: &str| {
        !n.is_empty() && n.len() <= 256 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    };
    let ok = match v.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            parts.len() == 5 && parts[1] == "events" && parts[4].strip_prefix("event-bus/").is_some_and(name_ok)
        }
        None => name_ok(v),
    };
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ConfigError(
            "ACCOUNT_CONNECT_EVENT_BUS must be an EventBridge bus name or arn:…:events:…:event-bus/NAME".into(),
        ))
    }
}

/// Comma-separated `host` or `host:port` entries, no schemes or paths.
fn allow_hosts(v: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for h in v.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let ok = h.len() <= 261 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !ok {
            return Err(ConfigError(format!(
                "ACCOUNT_CONNECT_WEBHOOK_ALLOW_HOSTS: {h:?} is not a host or host:port (comma-separated, no scheme or path)"
            )));
        }
        out.push(h.to_ascii_lowercase());
    }
    Ok(out)
}

impl Config {
    /// Whether `account` in `partition` is the vendor's own: a configured
    /// principal's account in that partition (`arn:PARTITION:iam::ACCOUNT:…`),
    /// or the deployment's (in any partition: ids do not repeat in practice).
    /// A customer's role is never in one of them.
    pub fn is_vendor_account(&self, partition: Partition, account: &str) -> bool {
        let principal = self
            .principals
            .get(&partition)
            .and_then(|arn| arn.split(':').nth(4))
            .is_some_and(|a| a == account);
        principal || self.deployment_account.as_deref() == Some(account)
    }

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
        if let Some(v) = var("ACCOUNT_CONNECT_SECRETS_KMS_KEY") {
            let ok = !v.is_empty() && v.len() <= 2048 && v.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(ConfigError(
                    "ACCOUNT_CONNECT_SECRETS_KMS_KEY must be a KMS key id, key ARN or alias".into(),
                ));
            }
            c.secrets_kms_key = Some(v);
        }
        if let Some(v) = var("ACCOUNT_CONNECT_SECRETS_KEY_FILE") {
            if c.secrets_kms_key.is_some() {
                return Err(ConfigError(
                    "set one of ACCOUNT_CONNECT_SECRETS_KMS_KEY and ACCOUNT_CONNECT_SECRETS_KEY_FILE".into(),
                ));
            }
            c.secrets_key_file = Some(v.into());
        }
        if let Some(v) = var("ACCOUNT_CONNECT_PROPAGATION_BUDGET_SECS") {
            c.propagation_budget_secs = v.parse().ok().filter(|s| *s <= 900).ok_or_else(|| {
                ConfigError(
                    "ACCOUNT_CONNECT_PROPAGATION_BUDGET_SECS must be a whole number of seconds, 0 to 900".into(),
                )
            })?;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_CALLBACK_PROPAGATION_SECS") {
            c.callback_propagation_secs = v.parse().ok().filter(|s| *s <= 840).ok_or_else(|| {
                ConfigError(
                    "ACCOUNT_CONNECT_CALLBACK_PROPAGATION_SECS must be a whole number of seconds, 0 to 840".into(),
                )
            })?;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_CALLBACK_KEY") {
            if v.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError(format!(
                    "ACCOUNT_CONNECT_CALLBACK_KEY must be at least {MIN_JWT_SECRET_BYTES} characters"
                )));
            }
            c.callback_key = Some(v.into_bytes().into());
        }
        if let Some(v) = var("ACCOUNT_CONNECT_CALLBACK_RESPONSE_HOSTS") {
            c.callback_response_hosts = Some(response_hosts(&v)?);
        }
        for p in Partition::ALL {
            let name = format!("ACCOUNT_CONNECT_TOPIC_{}", p.env_suffix());
            if let Some(v) = var(&name) {
                if !v.starts_with(&format!("arn:{}:sns:", p.as_str())) {
                    return Err(ConfigError(format!(
                        "{name} must be an SNS topic ARN in the {} partition",
                        p.as_str()
                    )));
                }
                c.topics.insert(p, v);
            }
        }
        c.template_bucket = var("ACCOUNT_CONNECT_TEMPLATE_BUCKET");
        for p in [Partition::AwsUsGov, Partition::AwsCn] {
            if let Some(v) = var(&Config::template_bucket_setting(p)) {
                c.partition_template_buckets.insert(p, v);
            }
        }
        if let Some(v) = var("ACCOUNT_CONNECT_QUICK_CREATE_REGION") {
            c.quick_create_region = v;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_STACK_PREFIX") {
            let ok = v.len() <= 80
                && v.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(ConfigError(
                    "ACCOUNT_CONNECT_STACK_PREFIX: letters, digits and -, starting with a letter, at most 80".into(),
                ));
            }
            c.stack_prefix = v;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_RECHECK_BATCH") {
            c.recheck_batch = v
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ConfigError("ACCOUNT_CONNECT_RECHECK_BATCH must be 1 to 1000".into()))?;
        }
        let number = |name: &str, min: u64, max: u64| -> Result<Option<u64>, ConfigError> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (min..=max).contains(n))
                        .ok_or_else(|| ConfigError(format!("{name} must be a whole number, {min} to {max}")))
                })
                .transpose()
        };
        if let Some(n) = number("ACCOUNT_CONNECT_RECHECK_CONCURRENCY", 1, 1024)? {
            c.recheck_concurrency = n as usize;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_RECHECK_CHECK_TIMEOUT_SECS", 1, 600)? {
            c.recheck_check_timeout_secs = n;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_RECHECK_INTERVAL_SECS", 60, 30 * 86_400)? {
            c.recheck_interval_secs = n;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_SWEEP_AFTER_SECS", 1, 86_400)? {
            c.sweep_after_secs = n;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_STS_PER_SEC", 1, 10_000)? {
            c.sts_per_sec = n as u32;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_CALLBACK_TENANT_SHARE", 0, 1000)? {
            c.callback_tenant_share = n as u32;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_WEBHOOK_TENANT_SHARE", 0, 1000)? {
            c.webhook_tenant_share = n as u32;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_CALLBACK_DEFER_SECS", 0, 900)? {
            c.callback_defer_secs = n as u32;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_CALLBACK_QUEUE_URL") {
            c.callback_queue_url = Some(endpoint_url("ACCOUNT_CONNECT_CALLBACK_QUEUE_URL", v.trim())?);
        }
        if let Some(n) = number("ACCOUNT_CONNECT_VERIFICATIONS_PER_MINUTE", 1, 10_000)? {
            c.rate_limits.verifications_per_minute = n as u32;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_RECHECKS_PER_MINUTE", 1, 10_000)? {
            c.rate_limits.rechecks_per_minute = n as u32;
        }
        if let Some(n) = number("ACCOUNT_CONNECT_SYNCS_PER_MINUTE", 1, 10_000)? {
            c.rate_limits.syncs_per_minute = n as u32;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_RECHECK_QUEUE_URL") {
            c.recheck_queue_url = Some(endpoint_url("ACCOUNT_CONNECT_RECHECK_QUEUE_URL", v.trim())?);
        }
        if let Some(v) = var("ACCOUNT_CONNECT_EVENT_BUS") {
            c.event_bus = Some(event_bus(v.trim())?);
        }
        if let Some(v) = var("ACCOUNT_CONNECT_EVENT_SOURCE") {
            let v = v.trim();
            if v.len() > 256 || v.starts_with("aws.") {
                return Err(ConfigError(
                    "ACCOUNT_CONNECT_EVENT_SOURCE: at most 256 characters, not starting with aws.".into(),
                ));
            }
            c.event_source = v.to_owned();
        }
        if let Some(v) = var("ACCOUNT_CONNECT_WEBHOOK_ALLOW_HOSTS") {
            c.webhook_allow_hosts = allow_hosts(&v)?;
        }
        if let Some(v) = var("ACCOUNT_CONNECT_DEPLOYMENT_ACCOUNT").filter(|v| !v.is_empty()) {
            if v.len() != 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError(
                    "ACCOUNT_CONNECT_DEPLOYMENT_ACCOUNT must be the 12-digit id of the AWS account the service runs in"
                        .into(),
                ));
            }
            c.deployment_account = Some(v);
        }
        if let Some(v) = var("ACCOUNT_CONNECT_WEBHOOK_QUEUE_URL") {
            c.webhook_queue_url = Some(endpoint_url("ACCOUNT_CONNECT_WEBHOOK_QUEUE_URL", v.trim())?);
        }
        if let Some(v) = var("ACCOUNT_CONNECT_CURSOR_KEY") {
            if v.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError(format!(
                    "ACCOUNT_CONNECT_CURSOR_KEY must be at least {MIN_JWT_SECRET_BYTES} characters"
                )));
            }
            c.cursor_key = Some(v.into_bytes().into());
        }
        if let Some(v) = var("ACCOUNT_CONNECT_REQUIRE_ACCOUNTS_CLAIM") {
            c.require_accounts_claim = match v.trim() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError(
                        "ACCOUNT_CONNECT_REQUIRE_ACCOUNTS_CLAIM must be true or false".into(),
                    ))
                }
            };
        }
        for p in Partition::ALL {
            for (service, map) in [
                ("STS", &mut c.sts_endpoints),
                ("IAM", &mut c.iam_endpoints),
                ("ORGANIZATIONS", &mut c.organizations_endpoints),
                ("CLOUDFORMATION", &mut c.cloudformation_endpoints),
            ] {
                let name = format!("ACCOUNT_CONNECT_{service}_ENDPOINT_{}", p.env_suffix());
                if let Some(v) = var(&name) {
                    map.insert(p, endpoint_url(&name, &v)?);
                }
            }
        }
        c.metrics = match var("ACCOUNT_CONNECT_METRICS").as_deref() {
            Some("emf") => true,
            Some("off") => false,
            Some(_) => return Err(ConfigError("ACCOUNT_CONNECT_METRICS must be emf or off".into())),
            None => std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        };
        if let Some(v) = var("ACCOUNT_CONNECT_JWT_SECRET") {
            if v.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError(format!(
                    "ACCOUNT_CONNECT_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} characters"
                )));
            }
            c.jwt_secret = Some(v.into_bytes().into());
        }
        for (name, field) in [
            ("ACCOUNT_CONNECT_JWT_ISSUER", &mut c.jwt_issuer),
            ("ACCOUNT_CONNECT_JWT_AUDIENCE", &mut c.jwt_audience),
        ] {
            if let Some(v) = var(name) {
                if v.len() > MAX_JWT_PARTY_LEN || v.trim() != v {
                    return Err(ConfigError(format!(
                        "{name} must be at most {MAX_JWT_PARTY_LEN} characters, without surrounding spaces"
                    )));
                }
                *field = v;
            }
        }
        for p in Partition::ALL {
            let relay = format!("ACCOUNT_CONNECT_RELAY_KEY_SECRET_{}", p.env_suffix());
            if let Some(arn) = var(&relay) {
                c.relay_key_secrets.insert(p, secret_arn(&relay, &arn)?);
            }
            let [secret_name, profile_name] = Config::credential_settings(p);
            if let Some(source) = credential_source(p, var(&secret_name), var(&profile_name))? {
                c.credential_sources.insert(p, source);
            }
        }
        Ok(c)
    }
}

/// A partition's source from its two settings: one or none, not both.
fn credential_source(
    p: Partition,
    secret: Option<String>,
    profile: Option<String>,
) -> Result<Option<CredentialSource>, ConfigError> {
    let [secret_name, profile_name] = Config::credential_settings(p);
    match (secret, profile) {
        (Some(_), Some(_)) => Err(ConfigError(format!("set {secret_name} or {profile_name}, not both"))),
        (Some(arn), None) => Ok(Some(CredentialSource::Secret(secret_arn(&secret_name, &arn)?))),
        (None, Some(profile)) => {
            let ok = profile.len() <= 128
                && profile
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+'));
            if !ok {
                return Err(ConfigError(format!(
                    "{profile_name} must name a profile of the AWS config files (letters, digits, - _ . @ +)"
                )));
            }
            Ok(Some(CredentialSource::Profile(profile)))
        }
        (None, None) => Ok(None),
    }
}

/// Secrets live beside the service, in the commercial partition.
fn secret_arn(name: &str, v: &str) -> Result<String, ConfigError> {
    if v.starts_with("arn:aws:secretsmanager:") && v.len() <= 2048 {
        Ok(v.to_owned())
    } else {
        Err(ConfigError(format!(
            "{name} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:…)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::{credential_source, endpoint_url, is_version_arn, CredentialSource};
    use crate::domain::Partition;

    #[test]
    fn the_hook_takes_published_versions_only() {
        assert!(is_version_arn(
            "arn:aws:lambda:us-east-1:123456789012:function:account-connect-api:7"
        ));
        assert!(is_version_arn(
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:12"
        ));
        for not in [
            "arn:aws:lambda:us-east-1:123456789012:function:account-connect-api",
            "arn:aws:lambda:us-east-1:123456789012:function:account-connect-api:live",
            "arn:aws:lambda:us-east-1:123456789012:function:account-connect-api:$LATEST",
            "arn:aws:sqs:us-east-1:123456789012:function:f:1",
            "account-connect-api:1",
        ] {
            assert!(!is_version_arn(not), "{not}");
        }
    }

    #[test]
    fn a_partition_takes_a_secret_or_a_profile() {
        let gov = Partition::AwsUsGov;
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:account-connect/partitions/gov-AbCdEf";
        assert_eq!(
            credential_source(gov, Some(arn.into()), None).unwrap(),
            Some(CredentialSource::Secret(arn.into()))
        );
        assert_eq!(
            credential_source(gov, None, Some("govcloud".into())).unwrap(),
            Some(CredentialSource::Profile("govcloud".into()))
        );
        assert_eq!(credential_source(gov, None, None).unwrap(), None);
        let both = credential_source(gov, Some(arn.into()), Some("govcloud".into())).unwrap_err();
        assert!(both.0.contains("ACCOUNT_CONNECT_PROFILE_AWS_US_GOV"), "{both}");
        for bad in ["arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x", "my-secret"] {
            let e = credential_source(gov, Some(bad.into()), None).unwrap_err();
            assert!(e.0.contains("ACCOUNT_CONNECT_CREDENTIALS_SECRET_AWS_US_GOV"), "{e}");
        }
        assert!(credential_source(gov, None, Some("gov cloud; rm".into())).is_err());
    }

    #[test]
    fn endpoint_overrides_are_https_or_loopback() {
        assert_eq!(
            endpoint_url("X", "https://sts.us-east-1.amazonaws.com/").unwrap(),
            "https://sts.us-east-1.amazonaws.com"
        );
        assert!(endpoint_url("X", "http://127.0.0.1:4566").is_ok());
        assert!(endpoint_url("X", "http://localhost").is_ok());
        for bad in [
            "http://sts.amazonaws.com",
            "http://127.0.0.1.example.com",
            "ftp://x",
            "https://",
            "sts.amazonaws.com",
        ] {
            assert!(endpoint_url("X", bad).is_err(), "{bad}");
        }
    }
}
