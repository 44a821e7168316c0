//! The AWS SDK's configuration, loaded once per partition and shared: the
//! composition root (`app`) holds the only code that loads it (the layering
//! test fails on a load anywhere else) and hands this holder to the
//! services and stores, which build their clients from it. Nothing is
//! loaded until a client first needs it, so a start that calls no AWS
//! (`serve` on SQLite) pays nothing for it.

pub mod signed;
mod tls;

pub use tls::tls_builder;

use crate::domain::Partition;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// How a configuration is loaded; `app`'s reads the environment and the AWS
/// config files.
#[async_trait::async_trait]
pub trait Loader: Send + Sync {
    /// The service's own: its environment and role, in the partition it
    /// runs in (commercial for the main deployment).
    async fn own(&self) -> SdkConfig;
    /// A partition's vendor identity from the named profile of the AWS
    /// config files: its keys, region and `endpoint_url`.
    async fn profile(&self, name: &str) -> SdkConfig;
}

/// The loaded configurations, each loaded on first use and then shared by
/// every client built from it (one credentials cache among them). Cheap to
/// clone: clones share what is loaded.
#[derive(Clone)]
pub struct AwsConfigs(Arc<Inner>);

struct Inner {
    loader: Box<dyn Loader>,
    own: OnceCell<SdkConfig>,
    /// Per partition (`index`), the profile its vendor identity comes from.
    profiles: [OnceCell<SdkConfig>; 3],
}

fn index(p: Partition) -> usize {
    match p {
        Partition::Aws => 0,
        Partition::AwsUsGov => 1,
        Partition::AwsCn => 2,
    }
}

impl std::fmt::Debug for AwsConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded: Vec<Partition> = Partition::ALL
            .into_iter()
            .filter(|p| self.0.profiles[index(*p)].initialized())
            .collect();
        f.debug_struct("AwsConfigs")
            .field("own_loaded", &self.0.own.initialized())
            .field("profiles_loaded", &loaded)
            .finish()
    }
}

impl AwsConfigs {
    pub fn new(loader: impl Loader + 'static) -> Self {
        AwsConfigs(Arc::new(Inner {
            loader: Box::new(loader),
            own: OnceCell::new(),
            profiles: Default::default(),
        }))
    }

    /// The service's own configuration (its role), loaded on first use.
    pub async fn own(&self) -> &SdkConfig {
        self.0.own.get_or_init(|| self.0.loader.own()).await
    }

    /// Partition `p`'s vendor identity from the profile its setting names
    /// (`ACCOUNT_CONNECT_PROFILE_*`, one per partition), loaded on first use.
    pub async fn profile(&self, p: Partition, name: &str) -> &SdkConfig {
        self.0.profiles[index(p)]
            .get_or_init(|| self.0.loader.profile(name))
            .await
    }
}

/// A client on the service's own configuration, made on its first use: an
/// entry point holds one from its init without loading that configuration
/// (the config files, the credentials chain, the HTTP client) before an
/// event needs it. Cheap to clone: clones share the client.
pub struct OwnClient<C> {
    aws: Option<AwsConfigs>,
    make: fn(&SdkConfig) -> C,
    client: Arc<OnceCell<C>>,
}

impl<C> Clone for OwnClient<C> {
    fn clone(&self) -> Self {
        OwnClient {
            aws: self.aws.clone(),
            make: self.make,
            client: self.client.clone(),
        }
    }
}

impl<C> OwnClient<C> {
    /// `make` (a client's `new`) on `aws.own()`, at the first `get`.
    pub fn new(aws: &AwsConfigs, make: fn(&SdkConfig) -> C) -> Self {
        OwnClient {
            aws: Some(aws.clone()),
            make,
            client: Arc::new(OnceCell::new()),
        }
    }

    /// A client made already (tests, a caller with its own configuration).
    pub fn ready(client: C) -> Self {
        OwnClient {
            aws: None,
            make: |_| unreachable!("a ready client is never made"),
            client: Arc::new(OnceCell::new_with(Some(client))),
        }
    }

    pub async fn get(&self) -> &C {
        self.client
            .get_or_init(|| async {
                let aws = self.aws.as_ref().expect("only a ready client has no configuration");
                (self.make)(aws.own().await)
            })
            .await
    }

    /// Whether the client was made yet.
    pub fn made(&self) -> bool {
        self.client.initialized()
    }
}

/// `sdk` with these timeouts (the loaded ones fill in what they leave unset,
/// as they would have had the loader been given them) and retries.
pub fn tuned(sdk: &SdkConfig, mut timeouts: TimeoutConfig, retry: RetryConfig) -> SdkConfig {
    if let Some(loaded) = sdk.timeout_config() {
        timeouts.take_defaults_from(loaded);
    }
    sdk.to_builder().timeout_config(timeouts).retry_config(retry).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts its loads; each configuration names what loaded it (its app name).
    #[derive(Default)]
    struct Counting(Arc<AtomicUsize>);

    #[async_trait::async_trait]
    impl Loader for Counting {
        async fn own(&self) -> SdkConfig {
            self.0.fetch_add(1, Ordering::SeqCst);
            SdkConfig::builder()
                .app_name(aws_config::AppName::new("own").unwrap())
                .build()
        }
        async fn profile(&self, name: &str) -> SdkConfig {
            self.0.fetch_add(1, Ordering::SeqCst);
            SdkConfig::builder()
                .app_name(aws_config::AppName::new(name.to_owned()).unwrap())
                .build()
        }
    }

    fn app_name(c: &SdkConfig) -> &str {
        c.app_name().map(|a| a.as_ref()).unwrap_or_default()
    }

    #[tokio::test]
    async fn each_configuration_is_loaded_once_on_first_use() {
        let loads = Arc::new(AtomicUsize::new(0));
        let configs = AwsConfigs::new(Counting(loads.clone()));
        assert_eq!(loads.load(Ordering::SeqCst), 0, "nothing is loaded before it is used");
        let shared = configs.clone();
        let (a, b) = tokio::join!(configs.own(), shared.own());
        assert_eq!((app_name(a), app_name(b)), ("own", "own"));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let gov = configs.profile(Partition::AwsUsGov, "govcloud").await;
        assert_eq!(app_name(gov), "govcloud");
        let again = shared.profile(Partition::AwsUsGov, "govcloud").await;
        assert_eq!(app_name(again), "govcloud");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(app_name(configs.profile(Partition::AwsCn, "china").await), "china");
        assert_eq!(loads.load(Ordering::SeqCst), 3);
        let shown = format!("{configs:?}");
        assert!(
            shown.contains("own_loaded: true") && shown.contains("AwsUsGov"),
            "{shown}"
        );
    }

    #[test]
    fn tuned_keeps_the_loaded_timeouts_it_does_not_set() {
        let loaded = SdkConfig::builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(3100))
                    .build(),
            )
            .build();
        let t = tuned(
            &loaded,
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(5))
                .build(),
            RetryConfig::standard().with_max_attempts(3),
        );
        let timeouts = t.timeout_config().unwrap();
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_millis(3100)));
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(t.retry_config().unwrap().max_attempts(), 3);
    }
}
