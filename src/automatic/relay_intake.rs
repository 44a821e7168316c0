//! The main deployment's side of a partition relay: each partition's relay
//! key, read from its Secrets Manager secret (`ACCOUNT_CONNECT_RELAY_KEY_SECRET_*`,
//! the secret's string is the key), and the responder that answers the
//! partition's CloudFormation. During a rotation the previous version
//! (AWSPREVIOUS) verifies too, so the relay's copy may lag. A signed request
//! is acted on once: the store remembers it until its timestamp would be
//! refused as stale, for every instance.

use super::relay::{self, Refusal};
use super::responder::Responder;
use super::stack_arn::StackArn;
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
struct Verified {
    /// The request, whichever key signed it (relay::request_key).
    key: String,
    /// When its timestamp is refused as stale.
    until: i64,
}

/// Whether a verified request is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepted {
    /// Seen for the first time: act on it.
    First,
    /// The same signed request was accepted before, within its window: it
    /// was acted on then, and is not again.
    Replay,
}

/// What to do with a relayed request that passed the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted<'a> {
    /// Seen for the first time: the callback handles the message as one
    /// from the service's own topic.
    Act(&'a str),
    /// The same signed request was accepted before, within its window: it
    /// was acted on then, and is answered alike, not acted on again.
    Replay,
}

/// Why a relayed request is not handled; each message is for the relay's
/// operator (the API quotes it).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// No relay key is configured for the partition the request names (or it
    /// names none, or the commercial one, whose stacks need no relay).
    #[error("no relay is configured for the partition {0:.20?}; the operator sets ACCOUNT_CONNECT_RELAY_KEY_SECRET_AWS_US_GOV or _AWS_CN")]
    NotConfigured(String),
    /// The body is over what the callback reads.
    #[error("a relayed request is at most 64 KB")]
    TooLarge,
    /// The signature or timestamp does not verify.
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// The key could not be read: worth the relay's retry. `detail` is for
    /// the logs.
    #[error("the service cannot read this partition's relay key right now; retry")]
    KeyUnavailable { detail: String },
    /// Signed, but not text.
    #[error("a relayed request is UTF-8 JSON")]
    NotUtf8,
    /// A partition's key relays that partition's stacks only.
    #[error("the stack is in {} but this is the {} relay", .stack.display_name(), .relay.display_name())]
    PartitionMismatch { stack: Partition, relay: Partition },
    /// The store could not tell whether the request was seen before.
    #[error(transparent)]
    Store(#[from] StoreError),
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

    pub fn configured(&self, p: Partition) -> bool {
        self.secrets.contains_key(&p)
    }

    /// Everything a relayed request passes before the callback sees it, in
    /// order: a relay configured for the partition named (`partition`, as
    /// the request names it), the size, the signature and age, UTF-8, a
    /// stack of that partition, and once only. A refused signature or
    /// timestamp, and a replay, are counted (`CallbackRejected`).
    pub async fn admit<'a>(
        &self,
        partition: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &'a [u8],
    ) -> Result<Admitted<'a>, IntakeError> {
        let not_configured = || IntakeError::NotConfigured(partition.to_owned());
        let p: Partition = partition.parse().map_err(|_| not_configured())?;
        if p == Partition::Aws || !self.configured(p) {
            return Err(not_configured());
        }
        if body.len() > relay::MAX_BODY {
            return Err(IntakeError::TooLarge);
        }
        let verified = match self.verify(p, timestamp, signature, body).await {
            Err(IntakeError::Refused(why)) => {
                tracing::warn!(partition = %p, reason = ?why, "refused a relayed request");
                crate::metrics::callback_rejected(match why {
                    Refusal::Stale | Refusal::Future => "relay_timestamp",
                    Refusal::Malformed | Refusal::BadSignature => "relay_signature",
                });
                return Err(IntakeError::Refused(why));
            }
            other => other?,
        };
        let message = std::str::from_utf8(body).map_err(|_| IntakeError::NotUtf8)?;
        let stack = serde_json::from_str::<serde_json::Value>(message)
            .ok()
            .and_then(|v| v["StackId"].as_str().and_then(|s| s.parse::<StackArn>().ok()));
        if let Some(stack) = stack.filter(|s| s.partition != p) {
            return Err(IntakeError::PartitionMismatch {
                stack: stack.partition,
                relay: p,
            });
        }
        match self.once(&verified).await? {
            Accepted::First => Ok(Admitted::Act(message)),
            Accepted::Replay => {
                tracing::warn!(partition = %p, "a relayed request came again within its 5 minutes; not acted on again");
                crate::metrics::callback_rejected("relay_replay");
                Ok(Admitted::Replay)
            }
        }
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
        let arn = self
            .secrets
            .get(&p)
            .ok_or_else(|| IntakeError::NotConfigured(p.as_str().to_owned()))?;
        let now = self.clock.now();
        let mut cache = self.cache.lock().await;
        if let Some((at, keys)) = cache.get(&p) {
            let age = now.saturating_sub(*at);
            if age < KEY_TTL && !(again && age >= MIN_REREAD) {
                return Ok(keys.clone());
            }
        }
        let keys = self
            .read(arn)
            .await
            .map_err(|detail| IntakeError::KeyUnavailable { detail })?;
        cache.insert(p, (now, keys.clone()));
        Ok(keys)
    }

    /// Checks a relayed request's signature and age.
    async fn verify(
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
    async fn once(&self, v: &Verified) -> Result<Accepted, IntakeError> {
        let first = self.store.remember_once(&v.key, v.until, self.clock.now()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn intake() -> RelayIntake {
        let mut config = Config::default();
        config.relay_key_secrets.insert(
            Partition::AwsUsGov,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:relay".into(),
        );
        // These tests are refused before any AWS call: a configuration that
        // was never loaded from anywhere says so if one is made.
        struct NoAws;
        #[async_trait::async_trait]
        impl crate::sdk::Loader for NoAws {
            async fn own(&self) -> aws_config::SdkConfig {
                panic!("no AWS call is expected here")
            }
            async fn profile(&self, _: &str) -> aws_config::SdkConfig {
                panic!("no AWS call is expected here")
            }
        }
        let aws = AwsConfigs::new(NoAws);
        let store = crate::store::open("sqlite::memory:", &aws).expect("an in-memory store");
        RelayIntake::new(&config, store, Clock::adjustable(), aws)
    }

    /// Refused before any key is read: no AWS call.
    #[tokio::test]
    async fn a_partition_without_a_relay_and_an_oversized_body_are_refused_first() {
        let intake = intake();
        for p in ["aws", "aws-cn", "aws-iso", ""] {
            let e = intake.admit(p, None, None, b"{}").await.unwrap_err();
            assert!(
                matches!(&e, IntakeError::NotConfigured(asked) if asked == p),
                "{p}: {e:?}"
            );
            assert!(
                e.to_string().contains("ACCOUNT_CONNECT_RELAY_KEY_SECRET_AWS_US_GOV"),
                "{e}"
            );
        }
        let big = vec![b' '; relay::MAX_BODY + 1];
        let e = intake.admit("aws-us-gov", None, None, &big).await.unwrap_err();
        assert!(matches!(e, IntakeError::TooLarge), "{e:?}");
        assert_eq!(e.to_string(), "a relayed request is at most 64 KB");
    }

    #[test]
    fn a_partition_mismatch_names_both_partitions() {
        let e = IntakeError::PartitionMismatch {
            stack: Partition::Aws,
            relay: Partition::AwsUsGov,
        };
        let m = e.to_string();
        assert!(
            m.contains(Partition::Aws.display_name()) && m.contains(Partition::AwsUsGov.display_name()),
            "{m}"
        );
    }
}
