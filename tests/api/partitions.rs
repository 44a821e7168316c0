//! GovCloud and China connections from one deployment: three moto servers
//! (scripts/test), each standing for a partition and refusing any key but
//! its own, reached through profiles of the AWS config files it writes
//! (commercial: the default profile; the others: the profiles
//! `ACCOUNT_CONNECT_PROFILE_*` would name). No `AWS_ENDPOINT_URL`: it would
//! send every profile to one server.

use crate::common;
use account_connect::config::CredentialSource;
use account_connect::domain::Partition;
use common::check;
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012"; // moto's account
pub(crate) const GOV_PRINCIPAL: &str = "arn:aws-us-gov:iam::210987654321:root";
const CN_PRINCIPAL: &str = "arn:aws-cn:iam::210987654322:root";

fn principal(p: Partition) -> &'static str {
    match p {
        Partition::Aws => account_connect::config::DEFAULT_PRINCIPAL_AWS,
        Partition::AwsUsGov => GOV_PRINCIPAL,
        Partition::AwsCn => CN_PRINCIPAL,
    }
}

pub(crate) fn test_env(name: &str, p: Partition) -> String {
    let var = format!("{name}_{}", p.env_suffix());
    std::env::var(&var).unwrap_or_else(|_| panic!("{var} is not set: run the tests with scripts/test"))
}

/// The profile scripts/test wrote for the partition's moto.
fn profile(p: Partition) -> String {
    test_env("ACCOUNT_CONNECT_TEST_PROFILE", p)
}

/// The partition's IAM, as its customer (and the vendor key) reach it.
pub(crate) async fn iam_in(p: Partition) -> aws_sdk_iam::Client {
    common::moto_endpoint();
    let conf = match p {
        Partition::Aws => aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await,
        _ => {
            let name = profile(p);
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .profile_name(&name)
                // AWS_REGION (the tests' commercial region) would beat the profile's.
                .region(aws_config::Region::new(p.sts_region()))
                .credentials_provider(
                    aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .profile_name(&name)
                        .build(),
                )
                .load()
                .await
        }
    };
    aws_sdk_iam::Client::new(&conf)
}

/// Principals for all three partitions, credentials for those given.
fn config_with(sources: &[(Partition, CredentialSource)]) -> account_connect::config::Config {
    let mut config = common::test_config();
    config.principals.insert(Partition::AwsUsGov, GOV_PRINCIPAL.into());
    config.principals.insert(Partition::AwsCn, CN_PRINCIPAL.into());
    config.credential_sources.extend(sources.iter().cloned());
    config
}

fn profiles() -> Vec<(Partition, CredentialSource)> {
    [Partition::AwsUsGov, Partition::AwsCn]
        .into_iter()
        .map(|p| (p, CredentialSource::Profile(profile(p))))
        .collect()
}

pub(crate) async fn create(app: &common::TestApp, token: &str, account: &str, p: Partition) -> Value {
    let body = json!({"accountId": account, "partition": p.as_str(), "permissions": {"mode": "default"}, "awsAccountId": ACCOUNT});
    let (status, c) = app.create_connection(token, &body).await;
    assert_eq!(status, 201, "{c}");
    c
}

/// The role the connection asks for, in the partition's IAM: its trust
/// policy and its policies, as the customer pastes them.
pub(crate) async fn role_for(iam: &aws_sdk_iam::Client, c: &Value) -> String {
    common::connection_role(iam, c).await.0
}

#[tokio::test]
async fn govcloud_and_china_roles_connect_and_recheck_beside_commercial() {
    let app = common::spawn_app(config_with(&profiles())).await;
    let t = common::token("org-partitions", None);
    for (i, p) in Partition::ALL.into_iter().enumerate() {
        let c = create(&app, &t, &format!("act-p{i}"), p).await;
        assert_eq!(c["trustPolicy"]["Statement"][0]["Principal"]["AWS"], principal(p));
        let arn = role_for(&iam_in(p).await, &c).await;
        assert!(
            arn.starts_with(&format!("arn:{}:iam::{ACCOUNT}:role/", p.as_str())),
            "{arn}"
        );
        let id = c["id"].as_str().unwrap();
        let (status, done) = app.connect_role(&t, id, &arn).await;
        assert_eq!(status, 200, "{p}: {done}");
        assert_eq!(done["status"], "connected", "{p}: {done}");
        assert_eq!(done["health"], "healthy", "{p}: {done}");
        // The trust audit compared the role with this partition's vendor.
        assert_eq!(
            check(&done["report"], "trust_policy")["status"],
            "passed",
            "{p}: {done}"
        );
        let (status, again) = app.recheck(&t, id).await;
        assert_eq!(status, 200, "{p}: {again}");
        assert_eq!(again["health"], "healthy", "{p}: {again}");
        // The role lives in its partition's server only.
        for other in Partition::ALL.into_iter().filter(|o| *o != p) {
            let name = arn.rsplit('/').next().unwrap();
            let err = iam_in(other).await.get_role().role_name(name).send().await;
            assert!(err.is_err(), "{name} is in {other} too");
        }
    }
}

#[tokio::test]
async fn a_partition_without_credentials_is_refused_at_creation() {
    // A GovCloud role that connects where GovCloud has its profile...
    let with = common::spawn_app(config_with(&profiles())).await;
    let t = common::token("org-partitions", None);
    let c = create(&with, &t, "act-withcreds", Partition::AwsUsGov).await;
    let arn = role_for(&iam_in(Partition::AwsUsGov).await, &c).await;
    let (status, done) = with.connect_role(&t, c["id"].as_str().unwrap(), &arn).await;
    assert_eq!(status, 200, "{done}");

    // ...cannot even get a connection where it has none.
    let app = common::spawn_app(config_with(&profiles()[1..])).await;
    let body = json!({"accountId": "act-nocreds", "partition": "aws-us-gov", "permissions": {"mode": "default"}});
    let (status, err) = app.create_connection(&t, &body).await;
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap()),
        (422, "partition_not_configured"),
        "{err}"
    );
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("ACCOUNT_CONNECT_CREDENTIALS_SECRET_AWS_US_GOV"), "{msg}");
    assert_eq!(
        err["error"]["details"]["setting"],
        "ACCOUNT_CONNECT_CREDENTIALS_SECRET_AWS_US_GOV"
    );
    let (_, list) = app.list_connections(&t, "").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    // A commercial connection does not take the GovCloud ARN either.
    let commercial = create(&app, &t, "act-commercial", Partition::Aws).await;
    let (status, err) = app.connect_role(&t, commercial["id"].as_str().unwrap(), &arn).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(
        check(&err["error"]["details"]["report"], "role_arn")["status"],
        "failed"
    );
    // China, which has its source, is unaffected.
    create(&app, &t, "act-cnok", Partition::AwsCn).await;
}

#[tokio::test]
async fn a_commercial_key_is_refused_in_govcloud_and_said_to_be_ours() {
    // GovCloud "configured" with the commercial identity (the default
    // profile), at the GovCloud server: it refuses the key, as real
    // GovCloud STS does. The customer's role is not to blame.
    let mut config = config_with(&[(Partition::AwsUsGov, CredentialSource::Profile("default".into()))]);
    let gov = test_env("ACCOUNT_CONNECT_TEST_MOTO_URL", Partition::AwsUsGov);
    config.sts_endpoints.insert(Partition::AwsUsGov, gov.clone());
    config.iam_endpoints.insert(Partition::AwsUsGov, gov);
    let app = common::spawn_app(config).await;
    let t = common::token("org-partitions", None);
    let c = create(&app, &t, "act-wrongkey", Partition::AwsUsGov).await;
    let arn = role_for(&iam_in(Partition::AwsUsGov).await, &c).await;
    let (status, err) = app.connect_role(&t, c["id"].as_str().unwrap(), &arn).await;
    assert_eq!(status, 422, "{err}");
    let assume = check(&err["error"]["details"]["report"], "assume_role");
    assert_eq!(assume["status"], "failed", "{assume}");
    assert_eq!(assume["transient"], true, "{assume}");
    assert!(
        assume["message"]
            .as_str()
            .unwrap()
            .contains("Spot's own credentials for AWS GovCloud (US)"),
        "{assume}"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_picked_up() {
    let p = Partition::AwsCn;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let key = |id: &str| json!({"accessKeyId": id, "secretAccessKey": "vendor-secret"}).to_string();
    let secret = sm
        .create_secret()
        .name(format!(
            "account-connect/aws-cn/{}",
            account_connect::ids::random_token(6)
        ))
        .secret_string(key("AKIASTALEKEY00000000"))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let mut config = config_with(&[(p, CredentialSource::Secret(secret.clone()))]);
    let cn = test_env("ACCOUNT_CONNECT_TEST_MOTO_URL", p);
    config.sts_endpoints.insert(p, cn.clone());
    config.iam_endpoints.insert(p, cn);
    let app = common::spawn_app(config).await;
    let t = common::token("org-partitions", None);
    let c = create(&app, &t, "act-secret", p).await;
    let id = c["id"].as_str().unwrap();
    let arn = role_for(&iam_in(p).await, &c).await;

    // A stale key: refused by China's STS, re-read at once (still stale), ours to fix.
    let (status, err) = app.connect_role(&t, id, &arn).await;
    assert_eq!(status, 422, "{err}");
    let assume = check(&err["error"]["details"]["report"], "assume_role");
    assert_eq!(
        (assume["status"].as_str(), assume["transient"].as_bool()),
        (Some("failed"), Some(true)),
        "{assume}"
    );

    // Rotated: the next refusal re-reads the secret and connects.
    sm.put_secret_value()
        .secret_id(&secret)
        .secret_string(key(&test_env("ACCOUNT_CONNECT_TEST_KEY", p)))
        .send()
        .await
        .unwrap();
    app.clock.advance(11);
    let (status, done) = app.connect_role(&t, id, &arn).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["health"], "healthy", "{done}");

    // Rotated to a key China refuses: picked up once the cache's TTL passes;
    // the re-check is inconclusive and the connection stays healthy.
    sm.put_secret_value()
        .secret_id(&secret)
        .secret_string(key("AKIAREVOKEDKEY000000"))
        .send()
        .await
        .unwrap();
    let (status, fine) = app.recheck(&t, id).await;
    assert_eq!((status, fine["health"].as_str()), (200, Some("healthy")), "{fine}");
    app.clock.advance(301);
    let (status, after) = app.recheck(&t, id).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["health"], "healthy", "{after}");
    let (_, events) = app.events(&t, id, "").await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["outcome"].as_str()),
        (Some("checked"), Some("inconclusive")),
        "{last}"
    );
}
