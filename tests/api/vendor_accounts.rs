//! The vendor's own accounts are never a customer's: a role ARN, an
//! automatic connection's account or an organization's management account in
//! a configured vendor principal's account, or in the account the deployment
//! runs in, is refused with a 422 before any AWS call (the stand-in in front
//! of moto counts every connection made to STS and IAM).

use crate::aws_standin::{Script, StandIn};
use crate::common;
use account_connect::domain::Partition;
use serde_json::json;
use std::collections::BTreeMap;

/// The default commercial principal's account (config::DEFAULT_PRINCIPAL_AWS).
const PRINCIPAL_ACCOUNT: &str = "922761411349";
const DEPLOYMENT_ACCOUNT: &str = "444455556666";

#[tokio::test]
async fn roles_in_the_vendors_accounts_are_refused_before_any_aws_call() {
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let mut config = common::test_config();
    config.deployment_account = Some(DEPLOYMENT_ACCOUNT.into());
    config.propagation_budget_secs = 0;
    config.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    config.iam_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let app = common::spawn_app(config).await;
    let t = common::token("org-v", None);
    let (status, c) = app
        .create_connection(
            &t,
            &json!({"accountId": "act-v1", "partition": "aws", "permissions": {"mode": "default"}}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    for account in [PRINCIPAL_ACCOUNT, DEPLOYMENT_ACCOUNT] {
        let arn = format!("arn:aws:iam::{account}:role/InternalAdmin");
        let (status, e) = app.connect_role(&t, id, &arn).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (422, Some("vendor_account_refused")),
            "{e}"
        );
        assert!(e["error"]["message"].as_str().unwrap().contains(account), "{e}");
        // Spot's route takes the same path.
        let (status, e) = app.spot_set_credentials(&t, "act-v1", &arn).await;
        assert!((400..500).contains(&status), "{status} {e}");
        // An automatic connection for that account, and an organization
        // whose management account it is.
        let (status, e) = app
            .create_connection(
                &t,
                &json!({"accountId": "act-v2", "partition": "aws", "permissions": {"mode": "default"},
                    "method": "automatic", "awsAccountId": account}),
            )
            .await;
        assert!(
            status == 422 && e["error"]["code"] == "vendor_account_refused" || status == 503,
            "{status} {e}"
        );
        let (status, e) = app
            .create_organization(
                &t,
                &json!({"accountId": "act-v3", "partition": "aws", "permissions": {"mode": "default"},
                    "managementAccountId": account, "organizationalUnitIds": []}),
            )
            .await;
        assert!((400..500).contains(&status), "{status} {e}");
    }
    assert_eq!(standin.connections(), 0, "no AWS call for the vendor's own accounts");
    // The same principal's partition elsewhere is another account: a
    // customer's role in another account does reach AWS (the count works).
    let (_, report) = app
        .connect_role(&t, id, "arn:aws:iam::111122223333:role/Customer")
        .await;
    assert!(standin.connections() > 0, "a customer's role is verified: {report}");
}

#[test]
fn a_principal_is_the_vendors_only_in_its_own_partition() {
    let mut config = common::test_config();
    config
        .principals
        .insert(Partition::AwsUsGov, "arn:aws-us-gov:iam::123456789012:root".into());
    assert!(config.is_vendor_account(Partition::Aws, PRINCIPAL_ACCOUNT));
    assert!(config.is_vendor_account(Partition::AwsUsGov, "123456789012"));
    assert!(!config.is_vendor_account(Partition::Aws, "123456789012"));
    assert!(!config.is_vendor_account(Partition::Aws, DEPLOYMENT_ACCOUNT));
    config.deployment_account = Some(DEPLOYMENT_ACCOUNT.into());
    assert!(config.is_vendor_account(Partition::AwsCn, DEPLOYMENT_ACCOUNT));
}
