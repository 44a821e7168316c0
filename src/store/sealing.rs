//! Webhook signing secrets as the stores keep them (envelope encryption):
//! a record's secrets, the current one and those a rotation keeps until
//! they expire, are sealed together with XChaCha20-Poly1305 under a data
//! key, bound to the record's tenant and id; the data key is stored beside
//! them wrapped by KMS (DynamoDB: `GenerateDataKey`, `Decrypt`) or by a
//! local key file (SQLite). A read of the table alone gives no secret away.
//!
//! Stored shape: the record's JSON without `secret` and `oldSecrets`, with
//! `sealedSecrets` = `{keySource, dataKey, box}` (base64). A record of the
//! last release holds `secret` in plain text and no `sealedSecrets`: it is
//! read as it is, and sealed when next written.
//!
//! One data key seals for `DATA_KEY_REUSE` per process, and an unwrapped
//! one is kept as long, so the dispatcher pays a KMS call per few minutes,
//! not per delivery.

use super::StoreError;
use crate::domain::Webhook;
use crate::sdk::AwsConfigs;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long one data key seals, and an unwrapped one is kept, per process.
pub const DATA_KEY_REUSE: Duration = Duration::from_secs(300);
/// Unwrapped data keys a process keeps at most (one per few minutes of
/// writes: a handful in practice).
const MAX_OPENED: usize = 256;
const NONCE_LEN: usize = 24;
/// The KMS encryption context every data key carries (a key policy may
/// require it).
const KMS_CONTEXT: (&str, &str) = ("account-connect", "webhook-secrets");
const SEALED_FIELD: &str = "sealedSecrets";

/// What wraps the data keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsKey {
    /// A KMS key: id, ARN, alias name or alias ARN.
    Kms(String),
    /// A local key file, created (mode 0600) on first use.
    File(PathBuf),
    /// A random key of this process only (an in-memory database).
    Ephemeral,
    /// None configured: records in plain text are read, nothing is sealed
    /// or opened (a DynamoDB store without `ACCOUNT_CONNECT_SECRETS_KMS_KEY`).
    Unset,
}

impl SecretsKey {
    /// The key a store URL gets unless one is configured: an SQLite file's
    /// key file lies beside it; a DynamoDB table has none.
    pub fn default_for(store_url: &str) -> SecretsKey {
        match store_url.strip_prefix("sqlite://") {
            Some(path) => SecretsKey::File(PathBuf::from(format!("{path}.secrets-key"))),
            None if store_url == "sqlite::memory:" => SecretsKey::Ephemeral,
            None => SecretsKey::Unset,
        }
    }
}

struct DataKey {
    plain: Key,
    wrapped: Vec<u8>,
    made: Instant,
}

pub struct Sealer {
    wrapper: Wrapper,
    current: Mutex<Option<DataKey>>,
    opened: Mutex<HashMap<Vec<u8>, (Key, Instant)>>,
}

enum Wrapper {
    Kms {
        key_id: String,
        aws: AwsConfigs,
        client: OnceCell<aws_sdk_kms::Client>,
    },
    Local {
        /// None: a random key of this process.
        path: Option<PathBuf>,
        master: OnceCell<XChaCha20Poly1305>,
    },
    Unset,
}

fn unavailable(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("webhook secrets key: {what}"))
}

impl Sealer {
    /// Wraps with `key`; `aws` (for KMS only: None refuses a KMS key).
    pub fn new(key: SecretsKey, aws: Option<&AwsConfigs>) -> Result<Sealer, SecretsKey> {
        let wrapper = match key {
            SecretsKey::Kms(key_id) => match aws {
                Some(aws) => Wrapper::Kms {
                    key_id,
                    aws: aws.clone(),
                    client: OnceCell::new(),
                },
                None => return Err(SecretsKey::Kms(key_id)),
            },
            SecretsKey::File(path) => Wrapper::Local {
                path: Some(path),
                master: OnceCell::new(),
            },
            SecretsKey::Ephemeral => Wrapper::Local {
                path: None,
                master: OnceCell::new(),
            },
            SecretsKey::Unset => Wrapper::Unset,
        };
        Ok(Sealer {
            wrapper,
            current: Mutex::new(None),
            opened: Mutex::new(HashMap::new()),
        })
    }

    /// A random key of this process only.
    pub fn ephemeral() -> Sealer {
        Sealer::new(SecretsKey::Ephemeral, None).expect("a local key needs no AWS")
    }

    /// Nothing sealed or opened (plain records are read).
    pub fn unset() -> Sealer {
        Sealer::new(SecretsKey::Unset, None).expect("no key needs no AWS")
    }

    fn source(&self) -> &'static str {
        match self.wrapper {
            Wrapper::Kms { .. } => "kms",
            _ => "file",
        }
    }

    /// The record's JSON as stored: its secrets sealed.
    pub async fn seal(&self, hook: &Webhook) -> Result<String, StoreError> {
        let Value::Object(mut record) = serde_json::to_value(hook).expect("webhooks serialize") else {
            unreachable!("a webhook serializes to an object")
        };
        let mut secrets = Map::new();
        for field in ["secret", "oldSecrets"] {
            if let Some(v) = record.remove(field) {
                secrets.insert(field.to_owned(), v);
            }
        }
        let (key, wrapped) = self.data_key().await?;
        let plain = serde_json::to_vec(&secrets).expect("secrets serialize");
        let boxed = seal_with(&key, &plain, aad(hook).as_bytes());
        record.insert(
            SEALED_FIELD.to_owned(),
            serde_json::json!({"keySource": self.source(), "dataKey": B64.encode(wrapped), "box": B64.encode(boxed)}),
        );
        Ok(Value::Object(record).to_string())
    }

    /// A stored record read back: sealed secrets opened, plain ones (the
    /// last release's) taken as they are.
    pub async fn open(&self, data: &str) -> Result<Webhook, StoreError> {
        let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("webhook record: {e}"));
        let Value::Object(mut record) = serde_json::from_str(data).map_err(|e| corrupt(&e))? else {
            return Err(corrupt(&"not an object"));
        };
        if let Some(sealed) = record.remove(SEALED_FIELD) {
            let field = |name: &str| {
                sealed
                    .get(name)
                    .and_then(Value::as_str)
                    .and_then(|v| B64.decode(v).ok())
                    .ok_or_else(|| corrupt(&format!("{SEALED_FIELD}.{name} missing")))
            };
            let (wrapped, boxed) = (field("dataKey")?, field("box")?);
            let key = self.unwrap(&wrapped).await?;
            let (org, id) = (record.get("org"), record.get("id"));
            let aad = format!(
                "account-connect webhook secrets\0{}\0{}",
                org.and_then(Value::as_str).unwrap_or_default(),
                id.and_then(Value::as_str).unwrap_or_default()
            );
            let plain = open_with(&key, &boxed, aad.as_bytes())
                .ok_or_else(|| corrupt(&"sealed secrets do not open for this record"))?;
            let Value::Object(secrets) = serde_json::from_slice(&plain).map_err(|e| corrupt(&e))? else {
                return Err(corrupt(&"sealed secrets are not an object"));
            };
            record.extend(secrets);
        }
        serde_json::from_value(Value::Object(record)).map_err(|e| corrupt(&e))
    }

    /// The data key sealing now (made or reused), with its wrapped form.
    async fn data_key(&self) -> Result<(Key, Vec<u8>), StoreError> {
        if let Some(k) = self.current.lock().expect("sealer lock").as_ref() {
            if k.made.elapsed() < DATA_KEY_REUSE {
                return Ok((k.plain, k.wrapped.clone()));
            }
        }
        let (plain, wrapped) = match &self.wrapper {
            Wrapper::Kms { key_id, .. } => {
                let out = self
                    .kms()
                    .await?
                    .generate_data_key()
                    .key_id(key_id)
                    .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
                    .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
                    .send()
                    .await
                    .map_err(|e| unavailable(format!("KMS GenerateDataKey: {}", kms_code(&e))))?;
                let plain = out.plaintext().map(|b| b.as_ref().to_vec()).unwrap_or_default();
                let wrapped = out.ciphertext_blob().map(|b| b.as_ref().to_vec()).unwrap_or_default();
                if plain.len() != 32 || wrapped.is_empty() {
                    return Err(unavailable("KMS GenerateDataKey answered no 256-bit key"));
                }
                (*Key::from_slice(&plain), wrapped)
            }
            Wrapper::Local { .. } => {
                let mut plain = [0u8; 32];
                getrandom::fill(&mut plain).map_err(unavailable)?;
                let wrapped = seal_with_cipher(self.master().await?, &plain, DATA_KEY_AAD);
                (*Key::from_slice(&plain), wrapped)
            }
            Wrapper::Unset => return Err(unavailable("none is configured (ACCOUNT_CONNECT_SECRETS_KMS_KEY)")),
        };
        self.remember(&wrapped, plain);
        *self.current.lock().expect("sealer lock") = Some(DataKey {
            plain,
            wrapped: wrapped.clone(),
            made: Instant::now(),
        });
        Ok((plain, wrapped))
    }

    /// A stored data key unwrapped (kept `DATA_KEY_REUSE`).
    async fn unwrap(&self, wrapped: &[u8]) -> Result<Key, StoreError> {
        if let Some((key, at)) = self.opened.lock().expect("sealer lock").get(wrapped) {
            if at.elapsed() < DATA_KEY_REUSE {
                return Ok(*key);
            }
        }
        let plain = match &self.wrapper {
            Wrapper::Kms { .. } => {
                let out = self
                    .kms()
                    .await?
                    .decrypt()
                    .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped))
                    .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
                    .send()
                    .await
                    .map_err(|e| unavailable(format!("KMS Decrypt: {}", kms_code(&e))))?;
                out.plaintext().map(|b| b.as_ref().to_vec()).unwrap_or_default()
            }
            Wrapper::Local { .. } => open_with_cipher(self.master().await?, wrapped, DATA_KEY_AAD)
                .ok_or_else(|| StoreError::Corrupt("a webhook data key does not open with the key file".into()))?,
            Wrapper::Unset => return Err(unavailable("none is configured (ACCOUNT_CONNECT_SECRETS_KMS_KEY)")),
        };
        if plain.len() != 32 {
            return Err(StoreError::Corrupt("a webhook data key is not 256 bits".into()));
        }
        let key = *Key::from_slice(&plain);
        self.remember(wrapped, key);
        Ok(key)
    }

    fn remember(&self, wrapped: &[u8], key: Key) {
        let mut opened = self.opened.lock().expect("sealer lock");
        if opened.len() >= MAX_OPENED {
            opened.retain(|_, (_, at)| at.elapsed() < DATA_KEY_REUSE);
            if opened.len() >= MAX_OPENED {
                opened.clear();
            }
        }
        opened.insert(wrapped.to_vec(), (key, Instant::now()));
    }

    async fn kms(&self) -> Result<&aws_sdk_kms::Client, StoreError> {
        let Wrapper::Kms { aws, client, .. } = &self.wrapper else {
            unreachable!("asked for KMS with a local key")
        };
        Ok(client
            .get_or_init(|| async {
                let conf = crate::sdk::tuned(
                    aws.own().await,
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(2))
                        .operation_timeout(Duration::from_secs(8))
                        .build(),
                    aws_config::retry::RetryConfig::standard().with_max_attempts(3),
                );
                aws_sdk_kms::Client::new(&conf)
            })
            .await)
    }

    async fn master(&self) -> Result<&XChaCha20Poly1305, StoreError> {
        let Wrapper::Local { path, master } = &self.wrapper else {
            unreachable!("asked for the key file with KMS")
        };
        master
            .get_or_try_init(|| async {
                let key = match path {
                    Some(p) => key_file(p).map_err(|e| unavailable(format!("{}: {e}", p.display())))?,
                    None => {
                        let mut k = [0u8; 32];
                        getrandom::fill(&mut k).map_err(unavailable)?;
                        k
                    }
                };
                Ok(XChaCha20Poly1305::new(Key::from_slice(&key)))
            })
            .await
    }
}

const DATA_KEY_AAD: &[u8] = b"account-connect webhook data key";

fn aad(hook: &Webhook) -> String {
    format!("account-connect webhook secrets\0{}\0{}", hook.org, hook.id.as_str())
}

fn kms_code<E: aws_sdk_kms::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("unreachable").to_owned()
}

fn seal_with(key: &Key, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    seal_with_cipher(&XChaCha20Poly1305::new(key), plain, aad)
}

fn open_with(key: &Key, boxed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    open_with_cipher(&XChaCha20Poly1305::new(key), boxed, aad)
}

/// A random nonce, then the ciphertext and tag.
fn seal_with_cipher(cipher: &XChaCha20Poly1305, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the OS random source is unavailable");
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("XChaCha20-Poly1305 seals any length we write");
    [nonce.as_slice(), &sealed].concat()
}

fn open_with_cipher(cipher: &XChaCha20Poly1305, boxed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let (nonce, sealed) = boxed.split_at_checked(NONCE_LEN)?;
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
}

/// The local key: read, or made on first use (32 random bytes, base64,
/// mode 0600), written whole under a temporary name and linked into place
/// so that two processes starting together agree on one.
fn key_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let read = |p: &Path| -> std::io::Result<[u8; 32]> {
        let text = std::fs::read_to_string(p)?;
        B64.decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not a base64 256-bit key"))
    };
    match read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = path.with_extension(format!("tmp-{}", crate::ids::random_token(8)));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(B64.encode(key).as_bytes())?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Another process made it first: theirs is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Webhook {
        let mut h = Webhook::new(
            "org-a",
            "t",
            "https://p.example.com/h".parse().unwrap(),
            None,
            None,
            100,
        );
        h.rotate(200);
        h
    }

    #[tokio::test]
    async fn a_sealed_record_shows_no_secret_and_opens_to_the_same_webhook() {
        let s = Sealer::ephemeral();
        let h = hook();
        let stored = s.seal(&h).await.unwrap();
        for secret in h.signing_secrets(200) {
            let raw = secret.expose().strip_prefix("whsec_").unwrap();
            assert!(!stored.contains(raw), "{stored}");
        }
        assert!(!stored.contains("whsec_"), "{stored}");
        assert_eq!(s.open(&stored).await.unwrap(), h);
    }

    #[tokio::test]
    async fn sealed_secrets_do_not_open_under_another_record() {
        let s = Sealer::ephemeral();
        let stored = s.seal(&hook()).await.unwrap();
        let moved = stored.replace("org-a", "org-b");
        assert!(matches!(s.open(&moved).await, Err(StoreError::Corrupt(_))));
    }

    #[tokio::test]
    async fn a_plain_record_of_the_last_release_is_read() {
        let s = Sealer::unset();
        let h = hook();
        let plain = serde_json::to_string(&h).unwrap();
        assert_eq!(s.open(&plain).await.unwrap(), h);
        assert!(matches!(s.seal(&h).await, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn the_key_file_is_made_once_private_and_kept() {
        let path = std::env::temp_dir().join(format!("k-{}.secrets-key", crate::ids::random_token(6)));
        let h = hook();
        let stored = {
            let s = Sealer::new(SecretsKey::File(path.clone()), None).unwrap();
            s.seal(&h).await.unwrap()
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Sealer::new(SecretsKey::File(path.clone()), None).unwrap();
        assert_eq!(again.open(&stored).await.unwrap(), h);
        let other = Sealer::ephemeral();
        assert!(other.open(&stored).await.is_err(), "another key opens nothing");
        let _ = std::fs::remove_file(&path);
    }
}
