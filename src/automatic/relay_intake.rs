//! The main deployment's side of a partition relay: each partition's relay
//! key, read from its Secrets Manager secret (`ACCOUNT_CONNECT_RELAY_KEY_SECRET_*`,
//! the secret's string is the key), and the responder that answers the
//! partition's CloudFormation. During a rotation the previous version
//! (AWSPREVIOUS) verifies too, so the relay's copy may lag. A signed request
//! is acted on once: the store remembers it until its timestamp would be
//! refused as stale, for every instance.

use super::relay::{self, Refusal};
use super::responder::Responder;
use crate::clock::Clock;
use crate::config::Config;
use crate::config::Secret;
use crate::domain::Partition;
use crate::sdk::AwsConfigs;
use crate::store::{DynStore, StoreError};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use tokio::sync::{Mutex, OnceCell};

/// Keys are read again after this long (seconds).
const KEY_TTL: i64 = 300;
/// A signature that no cached key verifies re-reads the keys at most this
/// often (seconds): the key may have just been rotated.
const MIN_REREAD: i64 = 10;

pub struct RelayIntake {
    pub responder: Responder,
    secrets: BTreeMap<Partition, String>,
    aws: AwsConfigs,
    client: OnceCell<aws_sdk_secretsmanager::Client>,
    /// Per partition: when read, and the keys (current first).
    cache: Mutex<BTreeMap<Partition, (i64, Vec<Secret>)>>,
    /// Where accepted requests are remembered.
    store: DynStore,
    clock: Clock,
}

/// A relayed request whose signature and age verified.
#[derive(Debug)]
pub struct Verified {
    /// The request, whichever key signed it (relay::request_key).
    key: String,
    /// When its timestamp is refused as stale.
    until: i64,
}

/// Whether a verified request is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Seen for the first time: act on it.
    First,
    /// The same signed request was accepted before, within its window: it
    /// was acted on then, and is not again.
    Replay,
}

/// Why a relayed request is not handled.
#[derive(Debug)]
pub enum IntakeError {
    /// No relay key is configured for the partition.
    NotConfigured(Partition),
    Refused(Refusal),
    /// The key could not be read: worth the relay's retry.
    KeyUnavailable(String),
    /// The store could not tell whether the request was seen before.
    Store(StoreError),
}

impl RelayIntake {
    pub fn new(config: &Config, store: DynStore, clock: Clock, aws: AwsConfigs) -> Self {
        RelayIntake {
            responder: Responder::new(config),
            secrets: config.relay_key_secrets.clone(),
            aws,
            client: OnceCell::new(),
            cache: Mutex::new(BTreeMap::new()),
            store,
            clock,
        }
    }

    /// The same intake on another clock (a test's adjustable one), with
    /// nothing read yet.
    pub fn with_clock(&self, clock: Clock) -> Self {
        RelayIntake {
            responder: self.responder.clone(),
            secrets: self.secrets.clone(),
            aws: self.aws.clone(),
            client: OnceCell::new(),
            cache: Mutex::new(BTreeMap::new()),
            store: self.store.clone(),
            clock,
        }
    }

    pub fn configured(&self, p: Partition) -> bool {
        self.secrets.contains_key(&p)
    }

    async fn client(&self, arn: &str) -> &aws_sdk_secretsmanager::Client {
        self.client
            .get_or_init(|| async {
                let mut conf = aws_sdk_secretsmanager::config::Builder::from(self.aws.own().await);
                if let Some(region) = arn.split(':').nth(3).filter(|r| !r.is_empty()) {
                    conf = conf.region(aws_config::Region::new(region.to_owned()));
                }
                aws_sdk_secretsmanager::Client::from_conf(conf.build())
            })
            .await
    }

    async fn read(&self, arn: &str) -> Result<Vec<Secret>, String> {
        let client = self.client(arn).await;
        let mut keys = Vec::new();
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            match client
                .get_secret_value()
                .secret_id(arn)
                .version_stage(stage)
                .send()
                .await
            {
                Ok(out) => {
                    let key = Secret::from(out.secret_string.unwrap_or_default().trim().as_bytes().to_vec());
                    if key.expose_secret().len() >= relay::MIN_KEY_BYTES {
                        keys.push(key);
                    } else {
                        tracing::error!(secret = %arn, stage, "a relay key is shorter than 32 characters; ignored");
                    }
                }
                // A secret never rotated has no previous version.
                Err(_) if stage == "AWSPREVIOUS" => {}
                Err(e) => {
                    return Err(format!(
                        "GetSecretValue on {arn}: {:?}",
                        aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&e).unwrap_or("unreachable")
                    ))
                }
            }
        }
        if keys.is_empty() {
            return Err(format!("the secret {arn} holds no usable relay key"));
        }
        Ok(keys)
    }

    /// The partition's keys, from the cache unless older than the TTL or
    /// `again` (and not read a moment ago).
    async fn keys(&self, p: Partition, again: bool) -> Result<Vec<Secret>, IntakeError> {
        let arn = self.secrets.get(&p).ok_or(IntakeError::NotConfigured(p))?;
        let now = self.clock.now();
        let mut cache = self.cache.lock().await;
        if let Some((at, keys)) = cache.get(&p) {
            let age = now.saturating_sub(*at);
            if age < KEY_TTL && !(again && age >= MIN_REREAD) {
                return Ok(keys.clone());
            }
        }
        let keys = self.read(arn).await.map_err(IntakeError::KeyUnavailable)?;
        cache.insert(p, (now, keys.clone()));
        Ok(keys)
    }

    /// Checks a relayed request's signature and age.
    pub async fn verify(
        &self,
        p: Partition,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Verified, IntakeError> {
        let at = self.check(p, timestamp, signature, body).await?;
        Ok(Verified {
            key: relay::request_key(p, at, body),
            until: relay::window_end(at),
        })
    }

    /// Whether the verified request is seen for the first time, by any
    /// instance: remembered in the store until its window closes. Called
    /// right before acting on it.
    pub async fn once(&self, v: &Verified) -> Result<Accepted, IntakeError> {
        let first = self
            .store
            .remember_once(&v.key, v.until, self.clock.now())
            .await
            .map_err(IntakeError::Store)?;
        Ok(if first { Accepted::First } else { Accepted::Replay })
    }

    /// Checks a relayed request's signature and age; answers its timestamp.
    async fn check(
        &self,
        p: Partition,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<i64, IntakeError> {
        let now = self.clock.now();
        let keys = self.keys(p, false).await?;
        match relay::verify(&keys, timestamp, signature, body, now) {
            Err(Refusal::BadSignature) => {
                let keys = self.keys(p, true).await?;
                relay::verify(&keys, timestamp, signature, body, now).map_err(IntakeError::Refused)
            }
            other => other.map_err(IntakeError::Refused),
        }
    }
}
