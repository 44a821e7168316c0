//! Helpers for the organization tests: an AWS Organization in moto (through
//! tests/tools/org_stand_in.py, acting as its accounts), and the enroll and
//! link custom resources' requests as CloudFormation sends them.

use super::callback::{Receiver, TOPIC};
use super::TestApp;
use account_connect::callback::{self, Responder};
use account_connect::services::Services;
use serde_json::{json, Value};

pub const ENROLL: &str = "Custom::SpotOrganizationEnroll";
pub const LINK: &str = "Custom::SpotOrganizationLink";

/// A 12-digit account id no other test uses: each test's organization has
/// its own management account in the one moto.
pub fn fresh_account() -> String {
    let hex = account_connect::ids::random_token(8);
    let n = u64::from_str_radix(&hex[..15], 16).unwrap() % 900_000_000_000 + 100_000_000_000;
    n.to_string()
}

/// Runs org_stand_in.py; its JSON answer.
pub fn stand_in(args: &[&str]) -> Value {
    stand_in_with(args, &[])
}

/// `stand_in` on the moto the named profile of the AWS config files
/// reaches (scripts/test writes one per partition), in `region` (the
/// tests' AWS_REGION would beat the profile's).
pub fn stand_in_at(profile: &str, region: &str, args: &[&str]) -> Value {
    stand_in_with(
        args,
        &[
            ("AWS_PROFILE", profile),
            ("AWS_REGION", region),
            ("AWS_DEFAULT_REGION", region),
        ],
    )
}

fn stand_in_with(args: &[&str], env: &[(&str, &str)]) -> Value {
    let (ok, out) = super::run_python_with("tests/tools/org_stand_in.py", args, "", env);
    assert!(ok, "org_stand_in.py {args:?}: {out}");
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

/// The StackId of the StackSet's instance in (account, region), as
/// ListStackInstances reports it, the instance made if there is none.
/// `mode`: "" as is; "fresh" made again (a new StackId); "no-role" its
/// role then deleted (as an SCP would have refused it).
pub fn genuine_stack(mgmt: &str, stack_set: &str, account: &str, region: &str, mode: &str) -> String {
    let mut args = vec!["instance", mgmt, stack_set, account, region];
    if !mode.is_empty() {
        args.push(mode);
    }
    stand_in(&args)["stackId"].as_str().unwrap().to_owned()
}

/// A made-up StackId shaped as CloudFormation names StackSet stacks: no
/// instance's (a forger's, or an account's outside the StackSet).
pub fn instance_stack(account: &str, region: &str, stack_set: &str) -> String {
    let r = account_connect::ids::random_token(16);
    format!(
        "arn:aws:cloudformation:{region}:{account}:stack/StackSet-{stack_set}-{}/{}-{}-{}-{}-{}",
        &r[..8],
        &r[..8],
        &r[8..12],
        &r[12..16],
        &r[16..20],
        &r[20..32]
    )
}

/// One custom-resource request of a member's stack instance.
pub struct OrgMessage<'a> {
    pub request_type: &'a str,
    pub resource_type: &'a str,
    pub url: &'a str,
    pub stack_id: &'a str,
    pub physical: Option<&'a str>,
    pub organization: &'a str,
    pub token: &'a str,
    pub role: Option<&'a str>,
}

impl OrgMessage<'_> {
    pub fn text(&self) -> String {
        let logical = if self.resource_type == ENROLL {
            "SpotEnroll"
        } else {
            "SpotLink"
        };
        let mut props =
            json!({"ServiceToken": TOPIC, "OrganizationId": self.organization, "CallbackToken": self.token});
        if let Some(r) = self.role {
            props["RoleArn"] = json!(r);
        }
        let mut m = json!({
            "RequestType": self.request_type,
            "ServiceToken": TOPIC,
            "ResponseURL": self.url,
            "StackId": self.stack_id,
            "RequestId": account_connect::ids::random_token(8),
            "LogicalResourceId": logical,
            "ResourceType": self.resource_type,
            "ResourceProperties": props
        });
        if let Some(p) = self.physical {
            m["PhysicalResourceId"] = json!(p);
        }
        m.to_string()
    }
}

/// Delivers a message and takes the one answer CloudFormation got.
pub async fn play(state: &Services, rx: &Receiver, m: &OrgMessage<'_>) -> Value {
    callback::handle_message(state, &Responder::new(&state.config), &m.text())
        .await
        .expect("not retried");
    rx.answer()
}

/// The organization's member template, out of the management template's StackSet.
pub fn member_template(management: &Value) -> Value {
    let body = management["Resources"]["SpotMemberStackSet"]["Properties"]["TemplateBody"]
        .as_str()
        .unwrap();
    serde_json::from_str(body).unwrap()
}

/// The organization's callback token, as its member template carries it.
pub fn org_token(management: &Value) -> String {
    member_template(management)["Resources"]["SpotEnroll"]["Properties"]["CallbackToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn organization(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, o) = app.get_organization(token, id).await;
    assert_eq!(status, 200, "{o}");
    o
}

/// The row of one AWS account in the organization view.
pub fn row<'a>(o: &'a Value, account: &str) -> &'a Value {
    o["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["awsAccountId"] == account)
        .unwrap_or_else(|| panic!("no member {account} in {o}"))
}
