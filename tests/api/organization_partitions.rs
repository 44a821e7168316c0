//! GovCloud and China organizations, each on its partition's stand-in
//! (the moto that takes only that partition's vendor key, scripts/test):
//! the management role is assumed with the partition's own identity, every
//! member enrolls and links through the partition's relay, and a sync
//! reconciles them. With the commercial identity, the stand-in refuses the
//! key and every member would be answered FAILED. And each partition's
//! automatic connections get a quick-create link in their own console,
//! from their own template bucket.

use crate::common;
use crate::relay::{relay_secret, RELAY_KEY};
use account_connect::automatic::relay::sign;
use account_connect::config::CredentialSource;
use account_connect::domain::Partition;
use common::callback::{token_of, Message, Receiver};
use common::organization::{fresh_account, org_token, stand_in_at, OrgMessage, ENROLL, LINK};
use serde_json::{json, Value};

/// The vendor's principal and relay topic in each partition (the stand-in's own).
fn vendor(p: Partition) -> (&'static str, &'static str) {
    match p {
        Partition::AwsUsGov => (
            "arn:aws-us-gov:iam::210987654321:root",
            "arn:aws-us-gov:sns:us-gov-west-1:210987654321:spot-relay",
        ),
        Partition::AwsCn => (
            "arn:aws-cn:iam::210987654322:root",
            "arn:aws-cn:sns:cn-north-1:210987654322:spot-relay",
        ),
        Partition::Aws => unreachable!("the commercial partition has no relay"),
    }
}

fn profile(p: Partition) -> String {
    crate::partitions::test_env("ACCOUNT_CONNECT_TEST_PROFILE", p)
}

/// The partition configured with its vendor identity (its stand-in's
/// profile), a callback key and (`relay`) its relay.
async fn config(p: Partition, relay: bool) -> account_connect::config::Config {
    let mut c = common::callback::config(None);
    let (principal, topic) = vendor(p);
    c.principals.insert(p, principal.into());
    c.credential_sources.insert(p, CredentialSource::Profile(profile(p)));
    if relay {
        c.topics.insert(p, topic.into());
        c.relay_key_secrets.insert(p, relay_secret().await);
    }
    c
}

/// One message relayed as the partition's relay posts it; CloudFormation's answer.
async fn relayed(app: &common::TestApp, rx: &Receiver, p: Partition, body: &str) -> Value {
    let now = app.clock.now();
    let sig = sign(RELAY_KEY.as_bytes(), now, body.as_bytes());
    let (status, ok) = app.relay(p.as_str(), Some(&now.to_string()), Some(&sig), body).await;
    assert_eq!((status, ok["status"].as_str()), (200, Some("handled")), "{ok}");
    rx.answer()
}

#[tokio::test]
async fn a_govcloud_organization_enrolls_links_and_reconciles_through_the_relay() {
    an_organization_enrolls_links_and_reconciles_through_the_relay(Partition::AwsUsGov).await;
}

#[tokio::test]
async fn a_china_organization_enrolls_links_and_reconciles_through_the_relay() {
    an_organization_enrolls_links_and_reconciles_through_the_relay(Partition::AwsCn).await;
}

async fn an_organization_enrolls_links_and_reconciles_through_the_relay(p: Partition) {
    let region = p.sts_region();
    let arn = |service: &str| format!("arn:{}:{service}:", p.as_str());
    let profile = profile(p);
    let stand_in = |args: &[&str]| stand_in_at(&profile, region, args);
    let (app, _state) = common::spawn_with_state(config(p, true).await).await;
    let rx = Receiver::start().await;
    let tag = match p {
        Partition::AwsCn => "cn",
        _ => "gov",
    };
    let token = common::token(&format!("org-{tag}org"), None);
    let mgmt = fresh_account();
    let org = stand_in(&["org", &mgmt]);
    let ous: Vec<String> = org["ous"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let body = json!({"accountId": format!("act-{tag}org"), "partition": p.as_str(),
        "permissions": {"mode": "default"}, "managementAccountId": mgmt, "organizationalUnitIds": ous});
    let (status, o) = app.create_organization(&token, &body).await;
    assert_eq!(status, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let template = o["template"].clone();
    let principal = o["managementConnection"]["principal"].as_str().unwrap().to_owned();
    assert!(principal.starts_with(&arn("iam")), "{principal}");
    let path = std::env::temp_dir().join(format!("org-{id}.json"));
    std::fs::write(&path, template.to_string()).unwrap();
    let stack_name = o["managementConnection"]["cloudFormation"]["stackName"]
        .as_str()
        .unwrap();
    let d = stand_in(&["deploy", &mgmt, path.to_str().unwrap(), stack_name, &ous.join(",")]);
    assert_eq!(d["status"], "CREATE_COMPLETE", "{d}");
    let role = d["roleArn"].as_str().unwrap();
    assert!(role.starts_with(&arn("iam")), "{role}");

    // The management stack's Create, relayed.
    let url = rx.url();
    let tok = token_of(&template);
    let m = Message {
        request_type: "Create",
        url: &url,
        stack_id: d["stackId"].as_str().unwrap(),
        request_id: "partition-mgmt-create",
        physical: None,
        connection: o["managementConnection"]["id"].as_str().unwrap(),
        role,
        token: &tok,
    };
    let a = relayed(&app, &rx, p, &m.text()).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");

    // Each member's stack instance: enroll, the role trusting what enroll
    // answered, link; all relayed.
    let stack_set = d["stackSetName"].as_str().unwrap();
    let member_role = d["memberRoleName"].as_str().unwrap();
    let org_tok = org_token(&template);
    let members: Vec<String> = d["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(members.len(), 4, "{d}");
    for account in &members {
        let stack = stand_in(&["instance", &mgmt, stack_set, account, region])["stackId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            stack.starts_with(&format!("{}{region}:", arn("cloudformation"))),
            "{stack}"
        );
        let msg = |kind, role: Option<&str>| {
            OrgMessage {
                request_type: "Create",
                resource_type: kind,
                url: &url,
                stack_id: &stack,
                physical: None,
                organization: &id,
                token: &org_tok,
                role,
            }
            .text()
        };
        let enroll = relayed(&app, &rx, p, &msg(ENROLL, None)).await;
        assert_eq!(enroll["Status"], "SUCCESS", "{account}: {enroll}");
        let ext = enroll["Data"]["ExternalId"].as_str().unwrap();
        stand_in(&["trust", account, member_role, &principal, ext]);
        let role = format!("{}:{account}:role/{member_role}", arn("iam"));
        let link = relayed(&app, &rx, p, &msg(LINK, Some(&role))).await;
        assert_eq!(link["Status"], "SUCCESS", "{account}: {link}");
    }

    // A sync reads the organization with the partition's identity.
    let (status, synced) = app.sync_organization(&token, &id).await;
    assert_eq!(status, 200, "{synced}");
    assert!(synced["lastReconciliation"].get("error").is_none(), "{synced}");
    assert_eq!(synced["lastReconciliation"]["accounts"], 4, "{synced}");
    assert_eq!(synced["counts"]["connected"], 4, "{synced}");
    let view = common::organization::organization(&app, &token, &id).await;
    for account in &members {
        let row = common::organization::row(&view, account);
        assert_eq!(row["state"], "connected", "{row}");
        assert_eq!(row["roleArn"], format!("{}:{account}:role/{member_role}", arn("iam")));
    }
}
#[tokio::test]
async fn govcloud_automatic_connections_get_a_quick_create_link_in_the_govcloud_console() {
    let t = common::token("org-govlink", None);
    automatic_connections_get_a_quick_create_link_in_their_console(Partition::AwsUsGov, &t, "act-govlink").await;

    // China has no bucket here: no link, and the reason names its setting.
    let cn = json!({"accountId": "act-cnlink", "partition": "aws-cn", "permissions": {"mode": "default"},
        "method": "automatic", "awsAccountId": "123456789012"});
    let app = common::spawn_app(config(Partition::AwsCn, true).await).await;
    let (status, conn) = app.create_connection(&t, &cn).await;
    assert_eq!(status, 201, "{conn}");
    let reason = conn["cloudFormation"]["unavailableReason"].as_str().unwrap();
    assert!(reason.contains("ACCOUNT_CONNECT_TEMPLATE_BUCKET_AWS_CN"), "{reason}");
    assert!(conn["cloudFormation"]["quickCreateUrl"].is_null(), "{conn}");
}

#[tokio::test]
async fn china_automatic_connections_get_a_quick_create_link_in_the_china_console() {
    let t = common::token("org-cnlink", None);
    automatic_connections_get_a_quick_create_link_in_their_console(Partition::AwsCn, &t, "act-cnlink2").await;
}

/// With the partition's template bucket (`TemplateBucketAws…` in
/// template.yaml), in its stand-in: the link opens the partition's console
/// in its home region, and the template it names is in that bucket.
async fn automatic_connections_get_a_quick_create_link_in_their_console(p: Partition, t: &str, account: &str) {
    let mut c = config(p, true).await;
    let region = p.sts_region();
    // Written with the partition's identity (the commercial key would be refused there).
    let s3 = s3_in(p).await;
    let bucket = format!("templates-{}", account_connect::ids::random_token(4));
    s3.create_bucket(&bucket).await;
    c.partition_template_buckets.insert(p, bucket.clone());
    let app = common::spawn_app(c).await;
    let body = json!({"accountId": account, "partition": p.as_str(), "permissions": {"mode": "default"},
        "method": "automatic", "awsAccountId": "123456789012"});
    let (status, conn) = app.create_connection(t, &body).await;
    assert_eq!(status, 201, "{conn}");
    let links = &conn["cloudFormation"];
    let quick = links["quickCreateUrl"].as_str().unwrap_or_else(|| panic!("{links}"));
    let console = format!(
        "https://{region}.{}/cloudformation/home?region={region}#/stacks/quickcreate?templateURL=",
        p.console_domain()
    );
    assert!(quick.starts_with(&console), "{quick}");
    let template_url = links["templateUrl"].as_str().unwrap();
    let s3_domain = match p {
        Partition::AwsCn => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    let prefix = format!("https://{bucket}.s3.{region}.{s3_domain}/templates/");
    assert!(template_url.starts_with(&prefix), "{template_url}");
    // The object is in the partition's bucket, and it is the connection's template.
    let key = template_url.split_once(&format!(".{s3_domain}/")).unwrap().1;
    let stored = s3.json(&bucket, key).await;
    let (_, served) = app.template(t, conn["id"].as_str().unwrap()).await;
    assert_eq!(stored, served);
}

/// S3 in the partition's stand-in, as its vendor reaches it.
async fn s3_in(p: Partition) -> common::s3::S3 {
    let name = profile(p);
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .profile_name(&name)
        .region(aws_config::Region::new(p.sts_region()))
        .credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(&name)
                .build(),
        )
        .load()
        .await;
    common::s3::S3::new(&conf)
}
