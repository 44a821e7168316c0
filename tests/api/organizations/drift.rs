//! The drift fix of an organization's connections points at the
//! organization's stacks: the management connection's at the management
//! stack, with the management template (role, Organizations read access,
//! StackSet); a member's at the StackSet, with the member template. The
//! single-account template on the management stack would delete the
//! StackSet and every member's role with it.

use super::World;
use crate::common;
use account_connect::organizations::template::ORGANIZATIONS_READ;
use common::callback::config;
use common::organization::{member_template, stand_in};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// A bucket in moto for the templates the fixes link to.
async fn bucket() -> (common::s3::S3, String) {
    let s3 = common::callback::s3().await;
    let name = format!("templates-{}", account_connect::ids::random_token(4));
    s3.create_bucket(&name).await;
    (s3, name)
}

/// The template a fix's `templateUrl` names, out of the bucket.
async fn uploaded(s3: &common::s3::S3, bucket: &str, fix: &Value) -> Value {
    let url = fix["templateUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no templateUrl in {fix}"));
    assert!(url.starts_with(&format!("https://{bucket}.s3.")), "{url}");
    let key = url.split(".amazonaws.com/").nth(1).unwrap();
    s3.json(bucket, key).await
}

/// A member template as tests/tools/org_stand_in.py hands it to moto's
/// StackSet: without the custom resources moto cannot run, the role
/// trusting a placeholder for the external ID enroll would answer.
fn as_deployed_in_moto(member: &Value) -> Value {
    let mut t = member.clone();
    t["Resources"]
        .as_object_mut()
        .unwrap()
        .retain(|_, r| !r["Type"].as_str().unwrap().starts_with("Custom::"));
    for st in t["Resources"]["Role"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
    {
        st["Condition"]["StringEquals"]["sts:ExternalId"] = json!("enroll-has-not-answered");
    }
    t
}

fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

/// Re-checks a connection whose role lost its policies: degraded, with a fix.
async fn degraded(w: &World, id: &str) -> Value {
    let (status, c) = w.app.recheck(&w.token, id).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["health"], "degraded", "{c}");
    assert!(c["drift"]["missing"].as_object().is_some_and(|m| !m.is_empty()), "{c}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_connections_fix_updates_the_management_stack_with_the_management_template() {
    let (s3, bucket) = bucket().await;
    let w = World::start_with(config(Some(bucket.clone())), false, None).await;
    let o = w.view().await;
    let id = o["managementConnection"]["id"].as_str().unwrap().to_owned();
    let (_, c) = w.app.get_connection(&w.token, &id).await;
    assert_eq!(c["health"], "healthy", "{c}");
    let stack_id = c["stack"]["stackId"].as_str().unwrap().to_owned();
    stand_in(&["detach", &w.mgmt, role_name(c["roleArn"].as_str().unwrap())]);

    let c = degraded(&w, &id).await;
    let fix = &c["drift"]["fix"];
    // The management stack's update page, in its region, with the template.
    assert_eq!(fix["kind"], "updateStack", "{c}");
    assert_eq!(fix["stackId"], stack_id.as_str(), "{c}");
    let region = stack_id.split(':').nth(3).unwrap();
    let template_url = fix["templateUrl"].as_str().unwrap();
    assert_eq!(
        fix["updateUrl"],
        format!(
            "https://{region}.console.aws.amazon.com/cloudformation/home?region={region}#/stacks/update/template?stackId={}&templateURL={}",
            enc(&stack_id),
            enc(template_url)
        )
        .as_str()
    );

    // The management template: the StackSet of the members and the
    // Organizations read access stay in the stack.
    let template = uploaded(&s3, &bucket, fix).await;
    let resources = &template["Resources"];
    let set = &resources["SpotMemberStackSet"];
    assert_eq!(set["Type"], "AWS::CloudFormation::StackSet", "{template}");
    assert_eq!(set["Properties"]["StackSetName"], w.stack_set.as_str());
    assert_eq!(set["Properties"]["PermissionModel"], "SERVICE_MANAGED");
    assert_eq!(
        serde_json::from_str::<Value>(set["Properties"]["TemplateBody"].as_str().unwrap()).unwrap(),
        member_template(&w.template)
    );
    let read = &resources["OrganizationsRead"];
    assert_eq!(read["Type"], "AWS::IAM::ManagedPolicy");
    assert_eq!(read["Properties"]["Roles"], json!([{"Ref": "Role"}]));
    assert_eq!(
        read["Properties"]["PolicyDocument"]["Statement"][0]["Action"],
        json!(ORGANIZATIONS_READ)
    );
    assert_eq!(resources["SpotConnection"]["Properties"]["ConnectionId"], id.as_str());
    // It is the template the management stack was created with, as both
    // template routes answer it.
    assert_eq!(template, w.template);
    let (_, served) = w.app.organization_template(&w.token, &w.id).await;
    assert_eq!(template, served);
    let (status, via_connection) = w.app.template(&w.token, &id).await;
    assert_eq!(status, 200, "{via_connection}");
    assert_eq!(via_connection, w.template);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_fix_updates_the_stack_set_with_the_member_template() {
    let (s3, bucket) = bucket().await;
    let w = World::start_with(config(Some(bucket.clone())), false, None).await;
    let account = w.accounts[0].0.clone();
    let (enroll, link, instance) = w.connect(&account, "us-east-1").await;
    assert_eq!(link["Status"], "SUCCESS", "{link}");
    let id = enroll["Data"]["ConnectionId"].as_str().unwrap().to_owned();
    let member = member_template(&w.template);

    // Its template route answers the member template, never a stack of its own.
    let (status, served) = w.app.template(&w.token, &id).await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(served, member);

    stand_in(&["detach", &account, &w.member_role]);
    let c = degraded(&w, &id).await;
    assert_eq!(c["stack"]["stackId"], instance.as_str());
    let fix = &c["drift"]["fix"];
    // The StackSet's page in the management account, in the management
    // stack's region: not the member's stack instance.
    assert_eq!(fix["kind"], "updateStackSet", "{c}");
    assert!(fix.get("stackId").is_none(), "{c}");
    assert_eq!(fix["stackSetName"], w.stack_set.as_str());
    assert_eq!(fix["managementAccountId"], w.mgmt.as_str());
    let (_, mgmt) = w
        .app
        .get_connection(&w.token, w.view().await["managementConnection"]["id"].as_str().unwrap())
        .await;
    let region = mgmt["stack"]["stackId"]
        .as_str()
        .unwrap()
        .split(':')
        .nth(3)
        .unwrap()
        .to_owned();
    assert_eq!(fix["region"], region.as_str());
    assert_eq!(
        fix["consoleUrl"],
        format!(
            "https://{region}.console.aws.amazon.com/cloudformation/home?region={region}#/stacksets/{}/info?permissions=service",
            w.stack_set
        )
        .as_str()
    );
    let steps = fix["steps"].as_str().unwrap();
    assert!(steps.contains(&w.mgmt) && steps.contains(&w.stack_set), "{steps}");

    // The member template: enroll, the role trusting what enroll answers, link.
    let template = uploaded(&s3, &bucket, fix).await;
    let resources = &template["Resources"];
    assert_eq!(
        resources["SpotEnroll"]["Type"], "Custom::SpotOrganizationEnroll",
        "{template}"
    );
    assert_eq!(resources["SpotLink"]["Type"], "Custom::SpotOrganizationLink");
    assert_eq!(resources["SpotLink"]["Properties"]["OrganizationId"], w.id.as_str());
    assert_eq!(
        resources["Role"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
            ["sts:ExternalId"],
        json!({"Fn::GetAtt": ["SpotEnroll", "ExternalId"]})
    );
    assert!(resources.get("SpotConnection").is_none(), "{template}");
    assert!(resources.get("SpotMemberStackSet").is_none(), "{template}");
    // The one the StackSet deploys: inline in the management template, and
    // what the StackSet in moto was created with (less what moto cannot run).
    assert_eq!(template, member);
    let set = stand_in(&["stack-set", &w.mgmt, &w.stack_set]);
    assert_eq!(set["permissionModel"], "SERVICE_MANAGED", "{set}");
    let created: Value = serde_json::from_str(set["templateBody"].as_str().unwrap()).unwrap();
    assert_eq!(created, as_deployed_in_moto(&template));
}
