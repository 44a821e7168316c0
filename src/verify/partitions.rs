//! Everything a verification needs per partition, built once and shared:
//! the vendor identity that signs AssumeRole there (partitions have separate
//! IAM, so a commercial key is InvalidClientTokenId in GovCloud or China),
//! the partition's region and its STS and IAM endpoints. A shared HTTP
//! client or a rate budget per partition belongs here too.

use super::aws::{self, CallError, Endpoints};
use super::secret_source::{SecretCredentials, SecretKey};
use crate::clock::Clock;
use crate::config::{Config, CredentialSource};
use crate::domain::Partition;
use crate::sdk::AwsConfigs;
use aws_config::{Region, SdkConfig};
use aws_sdk_sts::config::retry::{ReconnectMode, RetryConfig};
use aws_sdk_sts::config::{IdentityCache, SharedCredentialsProvider};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// STS of the partition's home region (`Partition::sts_region`).
pub fn default_sts_endpoint(p: Partition) -> String {
    match p {
        Partition::AwsCn => format!("https://sts.{}.amazonaws.com.cn", p.sts_region()),
        Partition::Aws | Partition::AwsUsGov => format!("https://sts.{}.amazonaws.com", p.sts_region()),
    }
}

/// IAM is global per partition; China's endpoint is named for its region.
pub fn default_iam_endpoint(p: Partition) -> String {
    match p {
        Partition::Aws => "https://iam.amazonaws.com".to_owned(),
        Partition::AwsUsGov => "https://iam.us-gov.amazonaws.com".to_owned(),
        Partition::AwsCn => "https://iam.cn-north-1.amazonaws.com.cn".to_owned(),
    }
}

/// The endpoint setting (`ACCOUNT_CONNECT_{STS,IAM}_ENDPOINT_*`) first, then
/// the source's own (a profile's `endpoint_url`, `AWS_ENDPOINT_URL` for the
/// service's own credentials), then the partition's.
fn resolve(
    p: Partition,
    sts_setting: Option<&String>,
    iam_setting: Option<&String>,
    source: Option<&str>,
) -> Endpoints {
    Endpoints {
        sts: Some(
            sts_setting
                .cloned()
                .or_else(|| source.map(str::to_owned))
                .unwrap_or_else(|| default_sts_endpoint(p)),
        ),
        iam: Some(
            iam_setting
                .cloned()
                .or_else(|| source.map(str::to_owned))
                .unwrap_or_else(|| default_iam_endpoint(p)),
        ),
    }
}

/// One partition's vendor identity and endpoints.
pub struct PartitionAccess {
    pub partition: Partition,
    /// What the partition's clients are built from: credentials, region,
    /// timeouts.
    pub sdk: SdkConfig,
    pub endpoints: Endpoints,
    /// The vendor's STS client for AssumeRole. No SDK retries: the
    /// propagation wait retries with its own backoff and counts every call.
    pub sts: aws_sdk_sts::Client,
    secret: Option<Arc<SecretKey>>,
}

impl PartitionAccess {
    /// STS refused the vendor key: read it again where it can change (a
    /// secret). Answers whether another attempt may succeed.
    pub async fn refresh(&self) -> bool {
        match &self.secret {
            Some(s) => s.invalidate().await,
            None => false,
        }
    }

    /// Whether the key can be had at all (a secret that cannot be read
    /// fails here, before any call to the customer's account).
    pub async fn ready(&self) -> Result<(), CallError> {
        match &self.secret {
            Some(s) => s.current().await.map(|_| ()).map_err(CallError::VendorCredentials),
            None => Ok(()),
        }
    }
}

pub struct Partitions {
    sources: BTreeMap<Partition, CredentialSource>,
    sts_settings: BTreeMap<Partition, String>,
    iam_settings: BTreeMap<Partition, String>,
    /// The service's own configuration (its role) and the partitions'
    /// profiles, loaded on first use.
    aws: AwsConfigs,
    each: [OnceCell<Arc<PartitionAccess>>; 3],
    /// Decides when a cached secret is read again.
    clock: Clock,
}

fn index(p: Partition) -> usize {
    match p {
        Partition::Aws => 0,
        Partition::AwsUsGov => 1,
        Partition::AwsCn => 2,
    }
}

/// Timeouts and retries every partition's clients share.
fn defaults(loaded: &SdkConfig) -> SdkConfig {
    crate::sdk::tuned(
        loaded,
        aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(aws::CALL_TIMEOUT)
            .build(),
        retries(RetryConfig::standard().with_max_attempts(2)),
    )
}

/// Every client of the partition keeps its pooled connection after an
/// error answer: the SDK's default closes it on a 5xx (and a timeout), so a
/// burst of AWS's errors became a burst of new TCP and TLS connections.
pub fn retries(r: RetryConfig) -> RetryConfig {
    r.with_reconnect_mode(ReconnectMode::ReuseAllConnections)
}

impl Partitions {
    pub fn from_config(config: &Config, aws: AwsConfigs) -> Self {
        Partitions {
            sources: config.credential_sources.clone(),
            sts_settings: config.sts_endpoints.clone(),
            iam_settings: config.iam_endpoints.clone(),
            aws,
            each: Default::default(),
            clock: Clock::system(),
        }
    }

    /// The same on another clock (before any partition is built).
    pub fn with_clock(self, clock: Clock) -> Self {
        Partitions { clock, ..self }
    }

    async fn base(&self) -> SdkConfig {
        defaults(self.aws.own().await)
    }

    /// The partition's access, built on first use. A GovCloud or China
    /// partition without a source has none: connections there are refused
    /// at creation (`Config::has_credentials`).
    pub async fn get(&self, p: Partition) -> Result<Arc<PartitionAccess>, CallError> {
        let source = self.sources.get(&p);
        if source.is_none() && p != Partition::Aws {
            let [secret, profile] = Config::credential_settings(p);
            return Err(CallError::VendorCredentials(format!(
                "no credentials are configured for {}: set {secret} or {profile}",
                p.display_name()
            )));
        }
        let access = self.each[index(p)]
            .get_or_init(|| async { Arc::new(self.build(p, source).await) })
            .await;
        Ok(access.clone())
    }

    async fn build(&self, p: Partition, source: Option<&CredentialSource>) -> PartitionAccess {
        let region = Region::new(p.sts_region());
        let (sdk, secret) = match source {
            None => (self.base().await, None),
            // The profile's keys, region and endpoint (`app` loads it).
            Some(CredentialSource::Profile(name)) => (defaults(self.aws.profile(p, name).await), None),
            Some(CredentialSource::Secret(arn)) => {
                let base = &self.base().await;
                let mut sm = aws_sdk_secretsmanager::config::Builder::from(base);
                if let Some(r) = SecretKey::region_of(arn) {
                    sm = sm.region(Region::new(r.to_owned()));
                }
                let key = Arc::new(SecretKey::new(
                    aws_sdk_secretsmanager::Client::from_conf(sm.build()),
                    arn.clone(),
                    self.clock.clone(),
                ));
                let mut b = base
                    .to_builder()
                    .credentials_provider(SharedCredentialsProvider::new(SecretCredentials(key.clone())))
                    // The secret's cache decides when to read again.
                    .identity_cache(IdentityCache::no_cache());
                // The service's own endpoint is not the partition's.
                b.set_endpoint_url(None);
                let sdk = b.build();
                (sdk, Some(key))
            }
        };
        let endpoints = resolve(
            p,
            self.sts_settings.get(&p),
            self.iam_settings.get(&p),
            sdk.endpoint_url(),
        );
        // The partition's one HTTP client: every verification's connections
        // and TLS sessions are reused by the next (`pool`).
        let sdk = sdk.into_builder().http_client(super::pool::http_client(p)).build();
        let mut conf = aws_sdk_sts::config::Builder::from(&sdk)
            .region(region.clone())
            .retry_config(retries(RetryConfig::disabled()));
        if let Some(url) = &endpoints.sts {
            conf = conf.endpoint_url(url);
        }
        PartitionAccess {
            partition: p,
            sts: aws_sdk_sts::Client::from_conf(conf.build()),
            sdk: sdk.into_builder().region(region).build(),
            endpoints,
            secret,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_has_its_own_endpoints() {
        let table: Vec<(Partition, String, String)> = Partition::ALL
            .into_iter()
            .map(|p| (p, default_sts_endpoint(p), default_iam_endpoint(p)))
            .collect();
        assert_eq!(
            table,
            [
                (
                    Partition::Aws,
                    "https://sts.us-east-1.amazonaws.com".to_owned(),
                    "https://iam.amazonaws.com".to_owned()
                ),
                (
                    Partition::AwsUsGov,
                    "https://sts.us-gov-west-1.amazonaws.com".to_owned(),
                    "https://iam.us-gov.amazonaws.com".to_owned()
                ),
                (
                    Partition::AwsCn,
                    "https://sts.cn-north-1.amazonaws.com.cn".to_owned(),
                    "https://iam.cn-north-1.amazonaws.com.cn".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn settings_beat_the_source_which_beats_the_table() {
        let p = Partition::AwsUsGov;
        let setting = "https://sts.vpce.example".to_owned();
        let e = resolve(p, Some(&setting), None, Some("http://127.0.0.1:5001"));
        assert_eq!(e.sts.as_deref(), Some("https://sts.vpce.example"));
        assert_eq!(e.iam.as_deref(), Some("http://127.0.0.1:5001"));
        let e = resolve(p, None, None, None);
        assert_eq!(e.sts.as_deref(), Some("https://sts.us-gov-west-1.amazonaws.com"));
        assert_eq!(e.iam.as_deref(), Some("https://iam.us-gov.amazonaws.com"));
    }
}
