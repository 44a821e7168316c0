//! Connecting every account of an AWS Organization, in moto: Organizations,
//! the service-managed StackSet and its instances, AssumeRole into members.
//! moto runs no custom resource, so each test plays CloudFormation's
//! requests through the callback entry point, as the automatic tests do.

use crate::common;

use common::callback::{config, send, token_of, Message, Receiver};
use common::organization::{
    fresh_account, genuine_stack, instance_stack, member_template, org_token, organization, play, row, stand_in,
    OrgMessage, ENROLL, LINK,
};
use serde_json::{json, Value};

mod drift;
mod fair_share;
pub(crate) mod fixture_world;
mod guardrails;
mod management_stack;
mod outage;
mod stack_binding;

/// An organization with two OUs of two accounts each, its management stack
/// created and reported, and (with `members`) every member connected.
pub(crate) struct World {
    app: common::TestApp,
    state: account_connect::services::Services,
    rx: Receiver,
    token: String,
    mgmt: String,
    root: String,
    ous: Vec<String>,
    accounts: Vec<(String, String)>,
    id: String,
    template: Value,
    org_token: String,
    stack_set: String,
    member_role: String,
    principal: String,
    /// The management stack's StackId and role, as its Create reported them.
    mgmt_stack: String,
    mgmt_role: String,
}

impl World {
    async fn start(members: bool) -> World {
        World::start_with(config(None), members, None).await
    }

    /// `start`, the organization targeting only the OU `only` (by index)
    /// when given; `accounts` still lists every account with its OU.
    async fn start_targeting(members: bool, only: Option<usize>) -> World {
        World::start_with(config(None), members, only).await
    }

    async fn start_with(config: account_connect::config::Config, members: bool, only: Option<usize>) -> World {
        let (app, state) = common::spawn_with_state(config).await;
        let rx = Receiver::start().await;
        let token = common::token("org-o", None);
        let mgmt = fresh_account();
        let org = stand_in(&["org", &mgmt]);
        let ous: Vec<String> = org["ous"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let mut accounts = Vec::new();
        for ou in &ous {
            for a in org["accounts"][ou].as_array().unwrap() {
                accounts.push((a.as_str().unwrap().to_owned(), ou.clone()));
            }
        }
        let targets: Vec<String> = match only {
            Some(i) => vec![ous[i].clone()],
            None => ous.clone(),
        };
        let body = json!({"accountId": "act-mgmt1", "partition": "aws", "permissions": {"mode": "default"},
            "managementAccountId": mgmt, "organizationalUnitIds": targets});
        let (status, o) = app.create_organization(&token, &body).await;
        assert_eq!(status, 201, "{o}");
        let template = o["template"].clone();
        let id = o["id"].as_str().unwrap().to_owned();
        let path = std::env::temp_dir().join(format!("org-{id}.json"));
        std::fs::write(&path, template.to_string()).unwrap();
        let stack_name = o["managementConnection"]["cloudFormation"]["stackName"]
            .as_str()
            .unwrap();
        let d = stand_in(&["deploy", &mgmt, path.to_str().unwrap(), stack_name, &targets.join(",")]);
        assert_eq!(d["status"], "CREATE_COMPLETE", "{d}");
        // The StackSet reached every account of the targeted OUs, and never the management account.
        let mut expected: Vec<&str> = accounts
            .iter()
            .filter(|(_, ou)| targets.contains(ou))
            .map(|(a, _)| a.as_str())
            .collect();
        expected.sort();
        assert_eq!(d["instances"], json!(expected));
        let w = World {
            org_token: org_token(&template),
            stack_set: d["stackSetName"].as_str().unwrap().to_owned(),
            member_role: d["memberRoleName"].as_str().unwrap().to_owned(),
            principal: o["managementConnection"]["principal"].as_str().unwrap().to_owned(),
            root: org["root"].as_str().unwrap().to_owned(),
            mgmt_stack: d["stackId"].as_str().unwrap().to_owned(),
            mgmt_role: d["roleArn"].as_str().unwrap().to_owned(),
            app,
            state,
            rx,
            token,
            mgmt,
            ous,
            accounts,
            id,
            template: template.clone(),
        };
        let mgmt_id = o["managementConnection"]["id"].as_str().unwrap();
        let url = w.rx.url();
        let tok = token_of(&template);
        let m = Message {
            request_type: "Create",
            url: &url,
            stack_id: d["stackId"].as_str().unwrap(),
            request_id: "mgmt-create",
            physical: None,
            connection: mgmt_id,
            role: d["roleArn"].as_str().unwrap(),
            token: &tok,
        };
        send(&w.state, &m).await;
        let a = w.rx.answer();
        assert_eq!(a["Status"], "SUCCESS", "{a}");
        if members {
            for (account, _) in w.accounts.clone().into_iter().filter(|(_, ou)| targets.contains(ou)) {
                let (e, l, _) = w.connect(&account, "us-east-1").await;
                assert_eq!(e["Status"], "SUCCESS", "{e}");
                assert_eq!(l["Status"], "SUCCESS", "{l}");
            }
        }
        w
    }

    fn msg<'a>(&'a self, request_type: &'a str, kind: &'a str, url: &'a str, stack: &'a str) -> OrgMessage<'a> {
        OrgMessage {
            request_type,
            resource_type: kind,
            url,
            stack_id: stack,
            physical: None,
            organization: &self.id,
            token: &self.org_token,
            role: None,
        }
    }

    fn role_arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:role/{}", self.member_role)
    }

    /// One stack instance's Create: enroll, the role trusting the external
    /// ID enroll answered (what `Fn::GetAtt` does), link. The answers and the StackId.
    async fn connect(&self, account: &str, region: &str) -> (Value, Value, String) {
        self.connect_with(account, region, "").await
    }

    /// `connect` from the instance `genuine_stack` gives with `mode`.
    async fn connect_with(&self, account: &str, region: &str, mode: &str) -> (Value, Value, String) {
        let stack = self.genuine(account, region, mode);
        self.connect_from(account, &stack).await
    }

    /// The StackId of the account's instance in the region (see `genuine_stack`).
    fn genuine(&self, account: &str, region: &str, mode: &str) -> String {
        genuine_stack(&self.mgmt, &self.stack_set, account, region, mode)
    }

    /// `connect` with the requests sent from `stack`, genuine or not.
    async fn connect_from(&self, account: &str, stack: &str) -> (Value, Value, String) {
        let stack = stack.to_owned();
        let url = self.rx.url();
        let enroll = play(&self.state, &self.rx, &self.msg("Create", ENROLL, &url, &stack)).await;
        if enroll["Status"] != "SUCCESS" {
            return (enroll, Value::Null, stack);
        }
        let ext = enroll["Data"]["ExternalId"].as_str().unwrap();
        stand_in(&["trust", account, &self.member_role, &self.principal, ext]);
        let role = self.role_arn(account);
        let link = OrgMessage {
            role: Some(&role),
            ..self.msg("Create", LINK, &url, &stack)
        };
        let link = play(&self.state, &self.rx, &link).await;
        (enroll, link, stack)
    }

    /// A Delete of one of a stack instance's resources.
    async fn delete(&self, kind: &str, stack: &str, physical: &str) -> Value {
        let url = self.rx.url();
        let role = self.role_arn(stack.split(':').nth(4).unwrap());
        let m = OrgMessage {
            physical: Some(physical),
            role: (kind == LINK).then_some(role.as_str()),
            ..self.msg("Delete", kind, &url, stack)
        };
        play(&self.state, &self.rx, &m).await
    }

    async fn view(&self) -> Value {
        organization(&self.app, &self.token, &self.id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_in_two_ous_connects_every_member() {
    let w = World::start(true).await;
    let o = w.view().await;
    assert_eq!(o["counts"]["connected"], 4, "{o}");
    assert_eq!(o["members"].as_array().unwrap().len(), 4);
    assert_eq!(o["managementConnection"]["status"], "connected", "{o}");
    assert_eq!(o["managementConnection"]["awsAccountId"], w.mgmt.as_str());
    let mut ids = std::collections::BTreeSet::new();
    for (account, _) in &w.accounts {
        let r = row(&o, account);
        assert_eq!(r["state"], "connected", "{r}");
        assert!(r.get("reason").is_none(), "{r}");
        assert_eq!(r["roleArn"], w.role_arn(account).as_str());
        assert!(
            r.get("spotAccountId").is_none(),
            "no Spot account until the platform assigns one: {r}"
        );
        let (_, c) = w
            .app
            .get_connection(&w.token, r["connectionId"].as_str().unwrap())
            .await;
        assert_eq!(c["organizationId"], w.id.as_str());
        assert_eq!(c["awsAccountId"], account.as_str());
        assert!(c.get("accountId").is_none(), "{c}");
        // Every member has its own external ID.
        assert!(ids.insert(c["externalId"].as_str().unwrap().to_owned()));
    }
    assert!(!ids.contains(o["managementConnection"]["externalId"].as_str().unwrap()));
    // Members are ordinary connections, listed by organization.
    let (status, page) = w
        .app
        .list_connections(&w.token, &format!("organizationId={}&limit=3", w.id))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, rest) = w
        .app
        .list_connections(&w.token, &format!("organizationId={}&limit=3&cursor={cursor}", w.id))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest.get("nextCursor").is_none());
    // ... and not in the Spot account listing until they have a Spot account.
    let (_, all) = w.app.list_connections(&w.token, "").await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        1,
        "only the management connection: {all}"
    );

    // The templates: cfn-lint clean; the StackSet as the issue describes it.
    common::cfn_lint_json(&w.template);
    let member = member_template(&w.template);
    common::cfn_lint_json(&member);
    let set = &w.template["Resources"]["SpotMemberStackSet"]["Properties"];
    assert_eq!(set["PermissionModel"], "SERVICE_MANAGED");
    assert_eq!(
        set["AutoDeployment"],
        json!({"Enabled": true, "RetainStacksOnAccountRemoval": false})
    );
    assert_eq!(
        set["StackInstancesGroup"][0]["Regions"],
        json!([{"Ref": "AWS::Region"}])
    );
    assert!(set["OperationPreferences"]["FailureTolerancePercentage"].is_number());
    assert!(set["OperationPreferences"]["MaxConcurrentPercentage"].is_number());
    let mut ous = w.ous.clone();
    ous.sort();
    assert_eq!(
        w.template["Parameters"]["OrganizationalUnitIds"]["Default"],
        ous.join(",").as_str()
    );
    assert_eq!(
        member["Resources"]["Role"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
            ["StringEquals"]["sts:ExternalId"],
        json!({"Fn::GetAtt": ["SpotEnroll", "ExternalId"]})
    );
    assert_eq!(member["Resources"]["SpotLink"]["DependsOn"], json!(["SpotPolicy"]));
    assert!(!w.template.to_string().contains("arn:aws:"), "literal partition");
    // The management template is served again as it was.
    let (_, again) = w.app.organization_template(&w.token, &w.id).await;
    assert_eq!(member_template(&again), member);
    // The management connection's own template route gives the same stack.
    let mgmt_id = o["managementConnection"]["id"].as_str().unwrap();
    let (_, via_connection) = w.app.template(&w.token, mgmt_id).await;
    assert_eq!(member_template(&via_connection), member);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_region_a_repeated_create_and_a_re_added_account_keep_one_connection() {
    let w = World::start(false).await;
    let account = w.accounts[0].0.clone();
    let (e1, l1, stack1) = w.connect(&account, "us-east-1").await;
    assert_eq!(l1["Status"], "SUCCESS", "{l1}");
    let id = e1["Data"]["ConnectionId"].as_str().unwrap().to_owned();
    let ext = e1["Data"]["ExternalId"].as_str().unwrap().to_owned();
    assert_eq!(e1["PhysicalResourceId"], id.as_str());

    // A repeated Create of the same instance: the same answer.
    let url = w.rx.url();
    let again = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack1)).await;
    assert_eq!(again["Data"], e1["Data"]);

    // A second region's instance: the same connection and ID, nothing changes.
    let (e2, l2, stack2) = w.connect(&account, "eu-west-1").await;
    assert_eq!(e2["Data"]["ExternalId"], ext.as_str());
    assert_eq!(l2["Status"], "SUCCESS", "{l2}");
    assert_eq!(l2["Data"]["ConnectionId"], id.as_str());
    assert!(l2["Reason"].as_str().unwrap().contains("nothing changed"), "{l2}");
    let (_, c) = w.app.get_connection(&w.token, &id).await;
    assert_eq!(c["stack"]["stackId"], stack1.as_str(), "the first stack keeps it");
    // Deleting the second region's instance leaves the member connected.
    assert_eq!(w.delete(LINK, &stack2, &id).await["Status"], "SUCCESS");
    assert_eq!(w.delete(ENROLL, &stack2, &id).await["Status"], "SUCCESS");
    let o = w.view().await;
    assert_eq!(row(&o, &account)["state"], "connected", "{o}");
    assert_eq!(o["members"].as_array().unwrap().len(), 1);

    // The account leaves (its instance is deleted), then comes back.
    assert_eq!(w.delete(LINK, &stack1, &id).await["Status"], "SUCCESS");
    assert_eq!(w.delete(ENROLL, &stack1, &id).await["Status"], "SUCCESS");
    let o = w.view().await;
    let r = row(&o, &account);
    assert_eq!(
        r["state"], "missing",
        "an instance deleted is no instance on its way: {r}"
    );
    assert!(r["reason"].as_str().unwrap().contains("was deleted"), "{r}");
    let (_, c) = w.app.get_connection(&w.token, &id).await;
    assert!(c.get("roleArn").is_none(), "the role is let go: {c}");
    let (e3, l3, stack3) = w.connect_with(&account, "us-east-1", "fresh").await;
    assert_ne!(stack3, stack1, "a new instance");
    assert_eq!(
        e3["Data"]["ExternalId"],
        ext.as_str(),
        "a re-added account keeps its external ID"
    );
    assert_eq!(e3["Data"]["ConnectionId"], id.as_str());
    assert_eq!(l3["Status"], "SUCCESS", "{l3}");
    let (_, c) = w.app.get_connection(&w.token, &id).await;
    assert_eq!(c["status"], "connected");
    assert_eq!(c["stack"]["stackId"], stack3.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_member_instance_and_its_rollback_leave_other_members_intact() {
    let w = World::start(true).await;
    // An account joins OU 1, but its instance cannot create the role (an SCP, say).
    let joined = stand_in(&["add-account", &w.mgmt, &w.ous[0], "newcomer"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let stack = w.genuine(&joined, "us-east-1", "no-role");
    let url = w.rx.url();
    let enroll = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack)).await;
    assert_eq!(enroll["Status"], "SUCCESS", "{enroll}");
    let role = w.role_arn(&joined);
    let link = OrgMessage {
        role: Some(&role),
        ..w.msg("Create", LINK, &url, &stack)
    };
    let failed = play(&w.state, &w.rx, &link).await;
    assert_eq!(failed["Status"], "FAILED", "{failed}");
    let physical = failed["PhysicalResourceId"].as_str().unwrap();
    assert!(physical.starts_with("account-connect-failed-"), "{physical}");
    // The rollback: both Deletes succeed, and touch nobody else.
    assert_eq!(w.delete(LINK, &stack, physical).await["Status"], "SUCCESS");
    let enrolled = enroll["PhysicalResourceId"].as_str().unwrap();
    assert_eq!(w.delete(ENROLL, &stack, enrolled).await["Status"], "SUCCESS");
    let o = w.view().await;
    assert_eq!(o["counts"]["connected"], 4, "{o}");
    let r = row(&o, &joined);
    assert_eq!(
        r["state"], "missing",
        "a failed instance is no instance on its way: {r}"
    );
    assert!(r["reason"].as_str().unwrap().contains("did not verify"), "{r}");
    for (account, _) in &w.accounts {
        assert_eq!(row(&o, account)["state"], "connected");
    }
    // Re-running the instances (moto has no automatic deployment) creates
    // its role, and the same member connects.
    let (e, l, _) = w.connect_with(&joined, "us-east-1", "fresh").await;
    assert_eq!(e["Data"]["ConnectionId"], enrolled);
    assert_eq!(l["Status"], "SUCCESS", "{l}");
    assert_eq!(w.view().await["counts"]["connected"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_shows_missing_suspended_moved_and_departed_accounts() {
    let w = World::start(true).await;
    let o = w.view().await;
    assert!(o.get("lastReconciliation").is_none());
    // Before anything changes, reconciliation agrees with the members.
    let (status, synced) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(synced["counts"]["connected"], 4, "{synced}");
    assert_eq!(synced["lastReconciliation"]["accounts"], 4);
    assert!(synced["lastReconciliation"].get("error").is_none(), "{synced}");

    let missing = stand_in(&["add-account", &w.mgmt, &w.ous[1], "no-instance"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let left = &w.accounts[0].0;
    stand_in(&["remove-account", &w.mgmt, left]);
    let moved = &w.accounts[1].0;
    stand_in(&["move-account", &w.mgmt, moved, &w.accounts[1].1, &w.root]);
    let closed = &w.accounts[2].0;
    stand_in(&["close-account", &w.mgmt, closed]);
    let (_, o) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(row(&o, &missing)["state"], "missing", "{o}");
    assert!(row(&o, &missing)["reason"]
        .as_str()
        .unwrap()
        .contains("No stack instance"));
    assert!(row(&o, &missing).get("connectionId").is_none());
    assert_eq!(row(&o, left)["state"], "left", "{o}");
    assert_eq!(row(&o, moved)["state"], "moved", "{o}");
    assert_eq!(row(&o, closed)["state"], "suspended", "{o}");
    assert!(row(&o, closed)["reason"].as_str().unwrap().contains("INOPERABLE"));
    assert_eq!(row(&o, &w.accounts[3].0)["state"], "connected");
    assert_eq!(
        o["counts"],
        json!({"connected": 1, "pending": 0, "missing": 1, "suspended": 1, "moved": 1, "left": 1, "disconnected": 0})
    );
    for r in o["members"].as_array().unwrap() {
        if r["state"] != "connected" {
            assert!(
                r["reason"].as_str().is_some_and(|s| !s.is_empty()),
                "every member not connected says why: {r}"
            );
        }
    }

    // The scheduled re-check reconciles too.
    let later = stand_in(&["add-account", &w.mgmt, &w.ous[0], "later"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let worker = account_connect::recheck::Worker::for_services(&w.state);
    let options = account_connect::recheck::EnumerateOptions::from_config(&w.state.config);
    let summary = account_connect::recheck::local::run(&worker, &options, 8).await;
    assert!(summary.checked >= 2, "{summary:?}");
    let o = w.view().await;
    assert_eq!(row(&o, &later)["state"], "missing", "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_claiming_an_account_outside_the_organization_is_refused() {
    let w = World::start(false).await;
    let url = w.rx.url();
    let outsider = fresh_account();
    let stack = instance_stack(&outsider, "us-east-1", &w.stack_set);
    let a = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack)).await;
    assert_eq!(a["Status"], "FAILED", "{a}");
    assert!(
        a["Reason"]
            .as_str()
            .unwrap()
            .contains("not a member of the organization"),
        "{a}"
    );
    assert!(a["Data"].get("ExternalId").is_none(), "no external ID for an outsider");
    let role = w.role_arn(&outsider);
    let link = OrgMessage {
        role: Some(&role),
        ..w.msg("Create", LINK, &url, &stack)
    };
    assert_eq!(play(&w.state, &w.rx, &link).await["Status"], "FAILED");
    // The management account is connected by its own stack, never as a member.
    let own = instance_stack(&w.mgmt, "us-east-1", &w.stack_set);
    let a = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &own)).await;
    assert_eq!(a["Status"], "FAILED", "{a}");
    assert!(a["Reason"].as_str().unwrap().contains("management account"), "{a}");
    // A token for another organization, or none, changes nothing.
    let member = &w.accounts[0].0;
    let real = instance_stack(member, "us-east-1", &w.stack_set);
    let forged = OrgMessage {
        token: "AAAA",
        ..w.msg("Create", ENROLL, &url, &real)
    };
    let a = play(&w.state, &w.rx, &forged).await;
    assert_eq!(a["Status"], "FAILED");
    assert!(a["Reason"].as_str().unwrap().contains("CallbackToken"), "{a}");
    let unknown = OrgMessage {
        organization: "awsorg-0123456789abcdef01234567",
        ..w.msg("Create", ENROLL, &url, &real)
    };
    assert_eq!(play(&w.state, &w.rx, &unknown).await["Status"], "FAILED");
    // A Delete always succeeds, so no stack hangs, and removes nothing.
    let d = OrgMessage {
        token: "AAAA",
        physical: Some("con-0123456789abcdef01234567"),
        ..w.msg("Delete", LINK, &url, &real)
    };
    assert_eq!(play(&w.state, &w.rx, &d).await["Status"], "SUCCESS");
    assert_eq!(
        w.delete(LINK, &stack, "con-0123456789abcdef01234567").await["Status"],
        "SUCCESS"
    );
    let o = w.view().await;
    assert!(o["members"].as_array().unwrap().is_empty(), "{o}");
}

/// Enrollment is for the accounts the customer chose: an active account of
/// the same organization outside the targeted OU (in another OU, or right
/// under the root) is refused, and nothing is created for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_outside_the_targeted_units_is_refused_and_nothing_is_created() {
    let w = World::start_targeting(false, Some(0)).await;
    let url = w.rx.url();
    let under_root = stand_in(&["add-account", &w.mgmt, &w.root, "at-root"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_ou: Vec<String> = w
        .accounts
        .iter()
        .filter(|(_, ou)| *ou == w.ous[1])
        .map(|(a, _)| a.clone())
        .collect();
    for outsider in other_ou.iter().chain([&under_root]) {
        let stack = instance_stack(outsider, "us-east-1", &w.stack_set);
        let a = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack)).await;
        assert_eq!(a["Status"], "FAILED", "{a}");
        let reason = a["Reason"].as_str().unwrap();
        assert!(reason.contains("outside the organizational units"), "{a}");
        assert!(
            reason.contains(w.ous[0].as_str()),
            "the reason names the targeted unit: {a}"
        );
        assert!(a["Data"].get("ExternalId").is_none(), "{a}");
        let role = w.role_arn(outsider);
        let link = OrgMessage {
            role: Some(&role),
            ..w.msg("Create", LINK, &url, &stack)
        };
        let l = play(&w.state, &w.rx, &link).await;
        assert_eq!(l["Status"], "FAILED", "{l}");
    }
    let (_, page) = w
        .app
        .list_connections(&w.token, &format!("organizationId={}", w.id))
        .await;
    assert_eq!(page["items"], json!([]), "no member was created: {page}");
    // An account of the targeted unit connects; moved out, it is refused.
    let inside = w.accounts.iter().find(|(_, ou)| *ou == w.ous[0]).unwrap().0.clone();
    let (e, l, _) = w.connect(&inside, "us-east-1").await;
    assert_eq!(
        (e["Status"].as_str(), l["Status"].as_str()),
        (Some("SUCCESS"), Some("SUCCESS")),
        "{e} {l}"
    );
    stand_in(&["move-account", &w.mgmt, &inside, &w.ous[0], &w.ous[1]]);
    let (e, _, _) = w.connect(&inside, "eu-west-1").await;
    assert_eq!(e["Status"], "FAILED", "moved out: refused at that moment: {e}");
}

/// An unassigned member never holds its organization's Spot account: its
/// verification and rotation work whether or not the management connection
/// is live, and the sequence (management disconnected, a member's
/// role connected, another Spot account assigned, the member disconnected)
/// leaves the organization's Spot account free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unassigned_member_never_holds_the_organizations_spot_account() {
    let w = World::start(false).await;
    let url = w.rx.url();
    // Enrolled by its instance, its role trusting the member's external ID;
    // then connected by hand through the API.
    let enrolled = |account: String| {
        let w = &w;
        let url = url.clone();
        async move {
            let stack = w.genuine(&account, "us-east-1", "");
            let e = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack)).await;
            assert_eq!(e["Status"], "SUCCESS", "{e}");
            let ext = e["Data"]["ExternalId"].as_str().unwrap();
            stand_in(&["trust", &account, &w.member_role, &w.principal, ext]);
            e["Data"]["ConnectionId"].as_str().unwrap().to_owned()
        }
    };
    let first = enrolled(w.accounts[0].0.clone()).await;
    let second = enrolled(w.accounts[1].0.clone()).await;
    let (status, c) = w
        .app
        .connect_role(&w.token, &first, &w.role_arn(&w.accounts[0].0))
        .await;
    assert_eq!(
        status, 200,
        "the management connection holds act-mgmt1; the member needs no hold: {c}"
    );
    let before = c["expiresAt"].clone();
    let (status, r) = w.app.rotate_external_id(&w.token, &first).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["expiresAt"], before, "a member's external ID never expires");

    let o = w.view().await;
    let mgmt = o["managementConnection"]["id"].as_str().unwrap().to_owned();
    // The management connection ends only with its organization.
    let (status, err) = w.app.disconnect(&w.token, &mgmt).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("managed_by_organization")),
        "{err}"
    );
    let (status, c) = w
        .app
        .connect_role(&w.token, &second, &w.role_arn(&w.accounts[1].0))
        .await;
    assert_eq!(status, 200, "{c}");
    let (status, c) = w.app.assign_spot_account(&w.token, &second, "act-elsewhere").await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(w.app.disconnect(&w.token, &second).await.0, 200);
    // The organization holds act-mgmt1 while it is active...
    let body = json!({"accountId": "act-mgmt1", "partition": "aws", "permissions": {"mode": "default"}});
    let (status, c) = w.app.create_connection(&w.token, &body).await;
    assert_eq!(
        (status, c["error"]["code"].as_str()),
        (409, Some("account_has_connection")),
        "{c}"
    );
    // ...and once offboarded, act-mgmt1 has no live connection: it accepts
    // a new one, by our route and Spot's.
    let (status, off) = w.app.offboard_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{off}");
    let (status, c) = w.app.create_connection(&w.token, &body).await;
    assert_eq!(status, 201, "act-mgmt1 is free again: {c}");
    assert_eq!(w.app.disconnect(&w.token, c["id"].as_str().unwrap()).await.0, 200);
    let (status, c) = w.app.spot_create_external_id(&w.token, "act-mgmt1").await;
    assert_eq!(status, 200, "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_assigns_spot_accounts_and_offboarding_disconnects_every_member() {
    let w = World::start(true).await;
    let o = w.view().await;
    let member = row(&o, &w.accounts[0].0)["connectionId"].as_str().unwrap().to_owned();
    let (status, c) = w.app.assign_spot_account(&w.token, &member, "act-member1").await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["accountId"], "act-member1");
    assert_eq!(c["status"], "connected");
    // Repeating it is a no-op; another account is refused.
    assert_eq!(w.app.assign_spot_account(&w.token, &member, "act-member1").await.0, 200);
    let (status, e) = w.app.assign_spot_account(&w.token, &member, "act-member2").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("spot_account_assigned")),
        "{e}"
    );
    // The Spot account is held like any connection's.
    let other = row(&o, &w.accounts[1].0)["connectionId"].as_str().unwrap().to_owned();
    let (status, e) = w.app.assign_spot_account(&w.token, &other, "act-member1").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("account_has_connection")),
        "{e}"
    );
    // The management connection is no member.
    let mgmt = o["managementConnection"]["id"].as_str().unwrap();
    assert_eq!(w.app.assign_spot_account(&w.token, mgmt, "act-member3").await.0, 404);
    // From then on Spot's routes find it.
    let (status, cred) = w.app.spot_get_credentials(&w.token, "act-member1").await;
    assert_eq!(status, 200, "{cred}");
    assert!(cred.to_string().contains(&w.role_arn(&w.accounts[0].0)), "{cred}");
    let (_, listed) = w.app.list_connections(&w.token, "accountId=act-member1").await;
    assert_eq!(listed["items"][0]["id"], member.as_str());
    assert_eq!(row(&w.view().await, &w.accounts[0].0)["spotAccountId"], "act-member1");

    // Offboarding: every member and the management connection disconnected.
    let (status, o) = w.app.offboard_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["state"], "offboarded");
    assert_eq!(o["counts"]["disconnected"], 4, "{o}");
    assert_eq!(o["managementConnection"]["status"], "disconnected");
    // A late instance is refused; its Delete succeeds.
    let url = w.rx.url();
    let stack = instance_stack(&w.accounts[0].0, "us-east-1", &w.stack_set);
    let a = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack)).await;
    assert_eq!(a["Status"], "FAILED");
    assert!(a["Reason"].as_str().unwrap().contains("offboarded"), "{a}");
    assert_eq!(w.delete(LINK, &stack, &member).await["Status"], "SUCCESS");
    assert_eq!(w.app.sync_organization(&w.token, &w.id).await.0, 409);
}

/// A refused POST /v1/organizations writes nothing (no record, no template
/// object), racing creates for one Spot account leave one organization, and
/// an Idempotency-Key replays the first answer, on both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_organization_create_writes_nothing_and_a_key_replays_it() {
    let bucket = common::callback::bucket().await;
    for store in ["sqlite", "dynamodb"] {
        let mut conf = config(Some(bucket.clone()));
        if store == "dynamodb" {
            conf.store_url = common::dynamo_store_url().await;
        }
        let app = common::spawn_app(conf).await;
        let t = common::token("org-w", None);
        let account = format!("act-w{}", account_connect::ids::random_token(3));
        let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"},
            "managementAccountId": "111122223333", "organizationalUnitIds": ["ou-ab12-cd34ef56"]});
        let before = common::callback::objects(&bucket).await.len();
        // Four at once for one Spot account: one organization, one template.
        let racers = (0..4).map(|_| app.create_organization(&t, &body));
        let answers = futures::future::join_all(racers).await;
        let won: Vec<&serde_json::Value> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, o)| o).collect();
        assert_eq!(won.len(), 1, "{store}: {answers:?}");
        for (status, e) in answers.iter().filter(|(s, _)| *s != 201) {
            assert_eq!(
                (*status, e["error"]["code"].as_str()),
                (409, Some("account_has_connection")),
                "{store}: {e}"
            );
        }
        assert_eq!(
            common::callback::objects(&bucket).await.len(),
            before + 1,
            "{store}: the refused creates left no template"
        );
        let (_, listed) = app.list_connections(&t, &format!("accountId={account}")).await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{store}: {listed}");

        // With a key: the same request answers the same organization, 200,
        // without writing; the key with another body is refused.
        let other = format!("act-k{}", account_connect::ids::random_token(3));
        let mut keyed = body.clone();
        keyed["accountId"] = json!(other);
        let send = |b: &serde_json::Value| {
            let req = app
                .request("POST", "/v1/organizations", Some(&t))
                .header("Idempotency-Key", "org-key-1")
                .json(b);
            async move {
                let res = req.send().await.unwrap();
                let headers = res.headers().clone();
                (
                    res.status().as_u16(),
                    headers,
                    res.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (s1, h1, first) = send(&keyed).await;
        assert_eq!(s1, 201, "{store}: {first}");
        assert!(h1.get("idempotent-replayed").is_none());
        let objects = common::callback::objects(&bucket).await.len();
        let (s2, h2, again) = send(&keyed).await;
        assert_eq!(s2, 200, "{store}: {again}");
        assert_eq!(h2.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
        assert_eq!(again["id"], first["id"], "{store}");
        assert_eq!(
            again["managementConnection"]["externalId"],
            first["managementConnection"]["externalId"]
        );
        assert_eq!(
            common::callback::objects(&bucket).await.len(),
            objects,
            "{store}: a replay writes nothing"
        );
        keyed["organizationalUnitIds"] = json!([]);
        let (s3, _, e) = send(&keyed).await;
        assert_eq!(
            (s3, e["error"]["code"].as_str()),
            (409, Some("idempotency_key_reused")),
            "{store}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_code_and_a_message() {
    let app = common::spawn_app(config(None)).await;
    let t = common::token("org-b", None);
    let base = json!({"accountId": "act-b1", "partition": "aws", "permissions": {"mode": "default"}, "managementAccountId": "111122223333"});
    let mut bad_ou = base.clone();
    bad_ou["organizationalUnitIds"] = json!(["ou-nope"]);
    let (status, e) = app.create_organization(&t, &bad_ou).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{e}"
    );
    let mut many = base.clone();
    many["organizationalUnitIds"] = json!((0..51).map(|i| format!("ou-abcd-{i:08}")).collect::<Vec<_>>());
    let (status, e) = app.create_organization(&t, &many).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("too_many_organizational_units")),
        "{e}"
    );
    // The whole organization: the stack asks for the root id.
    let (status, o) = app.create_organization(&t, &base).await;
    assert_eq!(status, 201, "{o}");
    assert!(o["template"]["Parameters"]["OrganizationalUnitIds"]
        .get("Default")
        .is_none());
    assert_eq!(o["organizationalUnitIds"], json!([]));
    // The Spot account is now held by the management connection.
    let (status, e) = app.create_organization(&t, &base).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("account_has_connection")),
        "{e}"
    );
    // Another tenant, a malformed id, an unknown one: 404.
    let id = o["id"].as_str().unwrap();
    let other = common::token("org-c", None);
    assert_eq!(app.get_organization(&other, id).await.0, 404);
    assert_eq!(app.get_organization(&t, "nope").await.0, 404);
    assert_eq!(app.get_organization(&t, "awsorg-0123456789abcdef01234567").await.0, 404);
    // A token limited to other Spot accounts may not start one.
    let limited = common::token("org-b", Some(&["act-other"]));
    let mut b2 = base.clone();
    b2["accountId"] = json!("act-b2");
    assert_eq!(app.create_organization(&limited, &b2).await.0, 403);
    // Sync before the management stack reported: the reason, not a failure.
    let (status, s) = app.sync_organization(&t, id).await;
    assert_eq!(status, 200);
    assert!(
        s["lastReconciliation"]["error"]
            .as_str()
            .unwrap()
            .contains("not connected yet"),
        "{s}"
    );
    // organizationId and accountId do not combine.
    let (status, _) = app
        .list_connections(&t, &format!("organizationId={id}&accountId=act-b1"))
        .await;
    assert_eq!(status, 400);
    // Without a callback, members could not report: no organization flow.
    let plain = common::spawn_app(common::test_config()).await;
    let (status, e) = plain.create_organization(&t, &b2).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("organization_flow_unavailable")),
        "{e}"
    );
}

/// The member list's filters, as the connection list's.
mod member_filters;
/// Tokens limited to some Spot accounts, on every route.
mod scope;

/// Each member's state change is an `organization.member_changed` event: its
/// stack instance enrolling it (missing to pending) and connecting it
/// (pending to connected, beside the connection's own event), a
/// reconciliation finding it moved or gone, its instance deleted (beside
/// `connection.unlinked`) and created again; the platform assigning a
/// member its Spot account is `connection.account_assigned`. Every payload
/// is as the OpenAPI document's `webhooks` section publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_state_changes_reach_webhooks_as_member_changed_events() {
    use common::receiver::{Behaviour, Receiver as Endpoint};
    use std::time::Duration;
    let hook = Endpoint::start(Behaviour::Accept).await;
    let settings = account_connect::config::Config {
        webhook_allow_hosts: vec![hook.authority.clone()],
        ..config(None)
    };
    let w = World::start_with(settings, true, None).await;
    let (status, h) = w.app.create_webhook(&w.token, &json!({"url": hook.url})).await;
    assert_eq!(status, 201, "{h}");
    // The events stored while the members connected go out now.
    let dispatcher = account_connect::events::Dispatcher::for_services(&w.state).await;
    tokio::spawn(dispatcher.run(Duration::from_millis(100)));
    let changes = |got: &[Value]| -> Vec<(String, String, String)> {
        let mut out: Vec<_> = got
            .iter()
            .filter(|e| e["type"] == "organization.member_changed")
            .map(|e| {
                let d = &e["data"];
                assert_eq!(d["organizationId"].as_str(), Some(w.id.as_str()), "{e}");
                assert_eq!(d["connection"]["awsAccountId"], d["awsAccountId"], "{e}");
                let s = |k: &str| d[k].as_str().unwrap().to_owned();
                (s("awsAccountId"), s("previousState"), s("state"))
            })
            .collect();
        out.sort();
        out
    };
    let of_type = |got: &[Value], kind: &str| got.iter().filter(|e| e["type"] == kind).cloned().collect::<Vec<_>>();
    // The events after the first `from`, once there are `n` more (and a
    // moment for any beyond).
    let endpoint = &hook;
    let after = move |from: usize, n: usize| async move {
        endpoint.wait_for(from + n, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        endpoint.got()[from..].iter().map(|g| g.json()).collect::<Vec<Value>>()
    };
    let connected = w.accounts.len();
    // Each member's enrollment and link, each connection's connected
    // (the management connection's too).
    let got = after(0, 3 * connected + 1).await;
    let mut want: Vec<_> = w
        .accounts
        .iter()
        .flat_map(|(a, _)| {
            [
                (a.clone(), "missing".to_owned(), "pending".to_owned()),
                (a.clone(), "pending".to_owned(), "connected".to_owned()),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(changes(&got), want, "each member's enrollment and link");
    assert_eq!(
        of_type(&got, "connection.connected").len(),
        connected + 1,
        "and each connection's own event"
    );
    assert_eq!(got.len(), 3 * connected + 1, "{got:#?}");
    let mut all = got;

    // A reconciliation that changes nothing announces nothing; one that
    // finds a member gone and another moved announces both.
    assert_eq!(w.app.sync_organization(&w.token, &w.id).await.0, 200);
    let (left, moved) = (&w.accounts[0].0, &w.accounts[1].0);
    stand_in(&["remove-account", &w.mgmt, left]);
    stand_in(&["move-account", &w.mgmt, moved, &w.accounts[1].1, &w.root]);
    assert_eq!(w.app.sync_organization(&w.token, &w.id).await.0, 200);
    let got = after(all.len(), 2).await;
    let mut want = vec![
        (left.clone(), "connected".to_owned(), "left".to_owned()),
        (moved.clone(), "connected".to_owned(), "moved".to_owned()),
    ];
    want.sort();
    assert_eq!(changes(&got), want, "{got:#?}");
    assert_eq!(got.len(), 2, "{got:#?}");
    all.extend(got);
    // The member's audit trail says why its connection changed.
    let member = row(&w.view().await, left)["connectionId"].as_str().unwrap().to_owned();
    let (_, events) = w.app.events(&w.token, &member, "").await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "reconciled", "{last}");

    // A member's stack instance deleted: the connection unlinked, the member missing.
    let unlinked = &w.accounts[2].0;
    let id = row(&w.view().await, unlinked)["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, c) = w.app.get_connection(&w.token, &id).await;
    let stack = c["stack"]["stackId"].as_str().unwrap().to_owned();
    assert_eq!(w.delete(LINK, &stack, &id).await["Status"], "SUCCESS");
    let got = after(all.len(), 2).await;
    assert_eq!(
        changes(&got),
        vec![(unlinked.clone(), "connected".to_owned(), "missing".to_owned())]
    );
    let unlink = of_type(&got, "connection.unlinked");
    assert_eq!(unlink.len(), 1, "{got:#?}");
    assert_eq!(unlink[0]["data"]["status"], "pending", "{unlink:?}");
    assert!(unlink[0]["data"].get("roleArn").is_none(), "{unlink:?}");
    assert_eq!(got.len(), 2, "{got:#?}");
    all.extend(got);
    // Its instance created again: enrolled (missing to pending), connected.
    let (e, l, _) = w.connect(unlinked, "us-east-1").await;
    assert_eq!(
        (&e["Status"], &l["Status"]),
        (&json!("SUCCESS"), &json!("SUCCESS")),
        "{e} {l}"
    );
    let got = after(all.len(), 3).await;
    let mut want = vec![
        (unlinked.clone(), "missing".to_owned(), "pending".to_owned()),
        (unlinked.clone(), "pending".to_owned(), "connected".to_owned()),
    ];
    want.sort();
    assert_eq!(changes(&got), want, "{got:#?}");
    assert_eq!(of_type(&got, "connection.connected").len(), 1, "{got:#?}");
    assert_eq!(got.len(), 3, "{got:#?}");
    all.extend(got);

    // The platform assigns a member its Spot account.
    let assigned = row(&w.view().await, &w.accounts[3].0)["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        w.app.assign_spot_account(&w.token, &assigned, "act-member9").await.0,
        200
    );
    let got = after(all.len(), 1).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        (
            got[0]["type"].as_str(),
            got[0]["data"]["id"].as_str(),
            got[0]["data"]["accountId"].as_str()
        ),
        (
            Some("connection.account_assigned"),
            Some(assigned.as_str()),
            Some("act-member9")
        )
    );
    all.extend(got);
    common::schemas::assert_documented(&all);
}

/// A reconciliation's member announcement that loses a race to another
/// write of the member is decided again from the member as read again:
/// the member's instance deleted meanwhile (connected to missing), its
/// leaving is announced as missing to left, never as connected to left;
/// disconnected meanwhile, nothing is announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_change_announced_after_a_lost_race_is_decided_from_the_member_read_again() {
    use account_connect::domain::{ChangeType, MemberState, OutboxItem};
    let w = World::start(false).await;
    let account = w.accounts[0].0.clone();
    let (e, l, stack) = w.connect(&account, "us-east-1").await;
    assert_eq!(l["Status"], "SUCCESS", "{l}");
    let raw_id = e["Data"]["ConnectionId"].as_str().unwrap().to_owned();
    let id: account_connect::domain::ConnectionId = raw_id.parse().unwrap();
    assert_eq!(w.app.sync_organization(&w.token, &w.id).await.0, 200);
    let (orgs, conns) = (&w.state.organizations, &w.state.connections);
    let member = &id;
    let read = move || async move { orgs.member_for_token(member).await.unwrap().unwrap() };
    // What a reconciliation reads: the organization, and the member, connected ...
    let prior = orgs.get_for_token(&w.id.parse().unwrap()).await.unwrap().unwrap();
    let stale = read().await;
    assert_eq!(stale.state, account_connect::domain::Status::Connected);
    // ... and what it finds: the account gone from the organization.
    let mut next = prior.clone();
    let listing = next.last_reconciliation.as_mut().unwrap().listing_mut().unwrap();
    listing.accounts.retain(|a| a.aws_account_id.as_str() != account);
    next.version += 1;
    let announced = |items: Vec<OutboxItem>| -> Vec<(ChangeType, Option<(MemberState, MemberState)>)> {
        items
            .into_iter()
            .filter(|i| i.connection_id == id)
            .map(|i| (i.kind, i.member.map(|m| (m.previous_state, m.state))))
            .collect()
    };
    let before = announced(conns.outbox_page(100).await.unwrap()).len();

    // Meanwhile its instance is deleted: the member is missing.
    assert_eq!(w.delete(LINK, &stack, &raw_id).await["Status"], "SUCCESS");
    let now = conns.announce_member(&stale, &prior, &next).await.unwrap();
    assert!(now.version > stale.version + 1, "written after the other write");
    let items = announced(conns.outbox_page(100).await.unwrap());
    assert_eq!(
        items[before..],
        [
            (
                ChangeType::Unlinked,
                Some((MemberState::Connected, MemberState::Missing))
            ),
            (
                ChangeType::MemberChanged,
                Some((MemberState::Missing, MemberState::Left))
            ),
        ],
        "{items:?}"
    );
    let (_, trail) = w.app.events(&w.token, &raw_id, "").await;
    let last = trail["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["outcome"].as_str()),
        (Some("reconciled"), Some("member state missing -> left")),
        "{last}"
    );

    // Read again, then disconnected meanwhile: it no longer leaves (it is
    // disconnected either way), so nothing is announced or written.
    let stale = read().await;
    let mut back = next.clone();
    back.last_reconciliation = prior.last_reconciliation.clone();
    back.version += 1;
    assert_eq!(w.app.disconnect(&w.token, &raw_id).await.0, 200);
    let written = announced(conns.outbox_page(100).await.unwrap()).len();
    let now = conns.announce_member(&stale, &next, &back).await.unwrap();
    assert_eq!(now.state, account_connect::domain::Status::Disconnected);
    assert_eq!(now, read().await, "nothing written");
    assert_eq!(announced(conns.outbox_page(100).await.unwrap()).len(), written);
}
