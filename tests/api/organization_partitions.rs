//! A GovCloud organization, on the GovCloud stand-in (the moto that takes
//! only the GovCloud vendor key, scripts/test): the management role is
//! assumed with the GovCloud identity, every member enrolls and links
//! through the partition's relay, and a sync reconciles them. With the
//! commercial identity, the stand-in refuses the key and every member
//! would be answered FAILED.

use crate::common;
use crate::relay::{config, RELAY_KEY};
use account_connect::automatic::relay::sign;
use common::callback::{token_of, Message, Receiver};
use common::organization::{fresh_account, org_token, stand_in_at, OrgMessage, ENROLL, LINK};
use serde_json::{json, Value};

const REGION: &str = "us-gov-west-1";

fn gov_profile() -> String {
    crate::partitions::test_env(
        "ACCOUNT_CONNECT_TEST_PROFILE",
        account_connect::domain::Partition::AwsUsGov,
    )
}

/// One message relayed as the GovCloud relay posts it; CloudFormation's answer.
async fn relayed(app: &common::TestApp, rx: &Receiver, body: &str) -> Value {
    let now = app.clock.now();
    let sig = sign(RELAY_KEY.as_bytes(), now, body.as_bytes());
    let (status, ok) = app.relay("aws-us-gov", Some(&now.to_string()), Some(&sig), body).await;
    assert_eq!((status, ok["status"].as_str()), (200, Some("handled")), "{ok}");
    rx.answer()
}

#[tokio::test]
async fn a_govcloud_organization_enrolls_links_and_reconciles_through_the_relay() {
    let profile = gov_profile();
    let stand_in = |args: &[&str]| stand_in_at(&profile, REGION, args);
    let (app, _state) = common::spawn_with_state(config(true).await).await;
    let rx = Receiver::start().await;
    let token = common::token("org-govorg", None);
    let mgmt = fresh_account();
    let org = stand_in(&["org", &mgmt]);
    let ous: Vec<String> = org["ous"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let body = json!({"accountId": "act-govorg", "partition": "aws-us-gov", "permissions": {"mode": "default"},
        "managementAccountId": mgmt, "organizationalUnitIds": ous});
    let (status, o) = app.create_organization(&token, &body).await;
    assert_eq!(status, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let template = o["template"].clone();
    let principal = o["managementConnection"]["principal"].as_str().unwrap().to_owned();
    assert!(principal.starts_with("arn:aws-us-gov:iam::"), "{principal}");
    let path = std::env::temp_dir().join(format!("org-{id}.json"));
    std::fs::write(&path, template.to_string()).unwrap();
    let stack_name = o["managementConnection"]["cloudFormation"]["stackName"]
        .as_str()
        .unwrap();
    let d = stand_in(&["deploy", &mgmt, path.to_str().unwrap(), stack_name, &ous.join(",")]);
    assert_eq!(d["status"], "CREATE_COMPLETE", "{d}");
    let role = d["roleArn"].as_str().unwrap();
    assert!(role.starts_with("arn:aws-us-gov:iam::"), "{role}");

    // The management stack's Create, relayed.
    let url = rx.url();
    let tok = token_of(&template);
    let m = Message {
        request_type: "Create",
        url: &url,
        stack_id: d["stackId"].as_str().unwrap(),
        request_id: "gov-mgmt-create",
        physical: None,
        connection: o["managementConnection"]["id"].as_str().unwrap(),
        role,
        token: &tok,
    };
    let a = relayed(&app, &rx, &m.text()).await;
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
        let stack = stand_in(&["instance", &mgmt, stack_set, account, REGION])["stackId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            stack.starts_with("arn:aws-us-gov:cloudformation:us-gov-west-1:"),
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
        let enroll = relayed(&app, &rx, &msg(ENROLL, None)).await;
        assert_eq!(enroll["Status"], "SUCCESS", "{account}: {enroll}");
        let ext = enroll["Data"]["ExternalId"].as_str().unwrap();
        stand_in(&["trust", account, member_role, &principal, ext]);
        let arn = format!("arn:aws-us-gov:iam::{account}:role/{member_role}");
        let link = relayed(&app, &rx, &msg(LINK, Some(&arn))).await;
        assert_eq!(link["Status"], "SUCCESS", "{account}: {link}");
    }

    // A sync reads the GovCloud organization with the GovCloud identity.
    let (status, synced) = app.sync_organization(&token, &id).await;
    assert_eq!(status, 200, "{synced}");
    assert!(synced["lastReconciliation"].get("error").is_none(), "{synced}");
    assert_eq!(synced["lastReconciliation"]["accounts"], 4, "{synced}");
    assert_eq!(synced["counts"]["connected"], 4, "{synced}");
    let view = common::organization::organization(&app, &token, &id).await;
    for account in &members {
        let row = common::organization::row(&view, account);
        assert_eq!(row["state"], "connected", "{row}");
        assert_eq!(
            row["roleArn"],
            format!("arn:aws-us-gov:iam::{account}:role/{member_role}")
        );
    }
}

#[tokio::test]
async fn govcloud_automatic_connections_get_a_quick_create_link_in_the_govcloud_console() {
    let mut c = config(true).await;
    // The GovCloud bucket, in the GovCloud stand-in: written with the
    // GovCloud identity (the commercial key would be refused there).
    let s3 = gov_s3().await;
    let bucket = format!("gov-templates-{}", account_connect::ids::random_token(4));
    s3.create_bucket(&bucket).await;
    c.partition_template_buckets
        .insert(account_connect::domain::Partition::AwsUsGov, bucket.clone());
    let app = common::spawn_app(c).await;
    let t = common::token("org-govlink", None);
    let conn = crate::relay::gov_connection(&app, &t, "act-govlink").await;
    let links = &conn["cloudFormation"];
    let quick = links["quickCreateUrl"].as_str().unwrap_or_else(|| panic!("{links}"));
    assert!(
        quick.starts_with("https://us-gov-west-1.console.amazonaws-us-gov.com/cloudformation/home?region=us-gov-west-1#/stacks/quickcreate?templateURL="),
        "{quick}"
    );
    let template_url = links["templateUrl"].as_str().unwrap();
    let prefix = format!("https://{bucket}.s3.us-gov-west-1.amazonaws.com/templates/");
    assert!(template_url.starts_with(&prefix), "{template_url}");
    // The object is in the GovCloud bucket, and it is the connection's template.
    let key = template_url.split_once(".amazonaws.com/").unwrap().1;
    let stored = s3.json(&bucket, key).await;
    let (_, served) = app.template(&t, conn["id"].as_str().unwrap()).await;
    assert_eq!(stored, served);

    // China has no bucket here: no link, and the reason names its setting.
    let cn = json!({"accountId": "act-cnlink", "partition": "aws-cn", "permissions": {"mode": "default"},
        "method": "automatic", "awsAccountId": "123456789012"});
    let mut c = config(false).await;
    c.principals.insert(
        account_connect::domain::Partition::AwsCn,
        "arn:aws-cn:iam::210987654322:root".into(),
    );
    c.topics.insert(
        account_connect::domain::Partition::AwsCn,
        "arn:aws-cn:sns:cn-north-1:210987654322:spot-relay".into(),
    );
    c.credential_sources.insert(
        account_connect::domain::Partition::AwsCn,
        account_connect::config::CredentialSource::Profile(crate::partitions::test_env(
            "ACCOUNT_CONNECT_TEST_PROFILE",
            account_connect::domain::Partition::AwsCn,
        )),
    );
    let app = common::spawn_app(c).await;
    let (status, conn) = app.create_connection(&t, &cn).await;
    assert_eq!(status, 201, "{conn}");
    let reason = conn["cloudFormation"]["unavailableReason"].as_str().unwrap();
    assert!(reason.contains("ACCOUNT_CONNECT_TEMPLATE_BUCKET_AWS_CN"), "{reason}");
    assert!(conn["cloudFormation"]["quickCreateUrl"].is_null(), "{conn}");
}

/// S3 in the GovCloud stand-in, as the GovCloud vendor reaches it.
async fn gov_s3() -> common::s3::S3 {
    let name = gov_profile();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .profile_name(&name)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(&name)
                .build(),
        )
        .load()
        .await;
    common::s3::S3::new(&conf)
}
