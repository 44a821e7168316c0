//! The organization's guardrails in moto: an SCP denying `ec2:*` at one OU,
//! a region lock at the other, an account whose FullAWSAccess was replaced
//! by a narrower allow-list, and an RCP at the root that lets only the
//! organization's principals assume its roles. The preflight and the
//! members' rows name each policy, its level and what it blocks, and
//! nothing else.

use super::World;
use crate::common;
use common::callback::config;
use common::organization::{fresh_account, member_template, row, stand_in};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Services whose calls name the home region (the region lock exempts them).
const GLOBAL: [&str; 9] = [
    "iam",
    "organizations",
    "route53",
    "cloudfront",
    "budgets",
    "ce",
    "cur",
    "support",
    "sts",
];

fn service(action: &str) -> String {
    action.split(':').next().unwrap().to_ascii_lowercase()
}

/// Every action the member template's policies grant.
fn rendered_actions(management: &Value) -> BTreeSet<String> {
    let member = member_template(management);
    let mut out = BTreeSet::new();
    for r in member["Resources"].as_object().unwrap().values() {
        if r["Type"] != "AWS::IAM::ManagedPolicy" {
            continue;
        }
        for st in r["Properties"]["PolicyDocument"]["Statement"].as_array().unwrap() {
            match &st["Action"] {
                Value::String(a) => {
                    out.insert(a.clone());
                }
                Value::Array(l) => out.extend(l.iter().map(|a| a.as_str().unwrap().to_owned())),
                _ => {}
            }
        }
    }
    out
}

fn actions(block: &Value) -> BTreeSet<String> {
    block["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The block names `policy` (by id and name) of `kind` attached to `target`.
fn names(block: &Value, ids: &Value, policy: &str, policy_type: &str, target: &str, kind: &str) {
    assert_eq!(block["policyId"], ids[policy], "{block}");
    assert_eq!(block["policyName"], policy, "{block}");
    assert_eq!(block["policyType"], policy_type, "{block}");
    assert_eq!(block["targetId"], target, "{block}");
    assert_eq!(block["kind"], kind, "{block}");
}

/// Each of `rendered` that `blocked_if` picks is in the block, and
/// everything in the block is picked.
fn blocks_exactly(block: &Value, rendered: &BTreeSet<String>, blocked_if: impl Fn(&str) -> bool) {
    let got = actions(block);
    assert!(!got.is_empty(), "{block}");
    for a in &got {
        assert!(blocked_if(a), "{a} is not one this policy blocks: {block}");
    }
    for a in rendered.iter().filter(|a| blocked_if(a)) {
        assert!(got.contains(a), "{a} is blocked and not named: {block}");
    }
}

/// What each account's guardrails say, as the preflight and the rows show them.
fn check_account(
    g: &Value,
    w: &World,
    ids: &Value,
    account: &str,
    ou: &str,
    narrowed: &str,
    rendered: &BTreeSet<String>,
) {
    let (eng, fin) = (&w.ous[0], &w.ous[1]);
    assert_eq!(g["assumeRole"], "denied", "{account}: {g}");
    let by = g["assumeRoleBlockedBy"].as_array().unwrap();
    assert_eq!(by.len(), 1, "{g}");
    names(
        &by[0],
        ids,
        "OrgOnlyAssumeRole",
        "RESOURCE_CONTROL_POLICY",
        &w.root,
        "deny",
    );
    assert_eq!(by[0]["actions"], json!(["sts:AssumeRole"]));
    assert_eq!(by[0]["targetType"], "ROOT");
    assert!(
        g.get("conditional").is_none(),
        "nothing depends on what Spot cannot know: {g}"
    );
    let denied = g["denied"].as_array().unwrap();
    if ou == eng {
        let ec2 = &denied[0];
        names(ec2, ids, "DenyEC2", "SERVICE_CONTROL_POLICY", eng, "deny");
        assert_eq!(ec2["targetType"], "ORGANIZATIONAL_UNIT");
        assert!(ec2.get("regions").is_none(), "every region: {ec2}");
        blocks_exactly(ec2, rendered, |a| service(a) == "ec2");
        if account == narrowed {
            assert_eq!(denied.len(), 2, "{g}");
            let list = &denied[1];
            names(list, ids, "SpotAllowList", "SERVICE_CONTROL_POLICY", account, "noAllow");
            assert_eq!(list["targetType"], "ACCOUNT");
            blocks_exactly(list, rendered, |a| !["ec2", "s3"].contains(&service(a).as_str()));
        } else {
            assert_eq!(denied.len(), 1, "{g}");
        }
    } else {
        assert_eq!(ou, fin);
        assert_eq!(denied.len(), 1, "{g}");
        let lock = &denied[0];
        names(lock, ids, "RegionLock", "SERVICE_CONTROL_POLICY", fin, "deny");
        let regions: Vec<&str> = lock["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let mut want: Vec<&str> = account_connect::domain::Partition::Aws
            .regions()
            .iter()
            .copied()
            .filter(|r| *r != "eu-west-1")
            .collect();
        want.sort();
        assert_eq!(regions, want, "every region but eu-west-1");
        blocks_exactly(lock, rendered, |a| !GLOBAL.contains(&service(a).as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_and_members_name_each_policy_its_level_and_what_it_blocks() {
    let w = World::start(true).await;
    let (eng, fin) = (w.ous[0].clone(), w.ous[1].clone());
    let narrowed = w.accounts.iter().find(|(_, ou)| *ou == eng).unwrap().0.clone();
    let narrowed = w
        .accounts
        .iter()
        .filter(|(_, ou)| *ou == eng)
        .map(|(a, _)| a.clone())
        .nth(1)
        .unwrap_or(narrowed);
    let g = stand_in(&["guardrails", &w.mgmt, &eng, &fin, &narrowed]);
    let ids = &g["policies"];
    let rendered = rendered_actions(&w.template);

    let (status, p) = w.app.preflight_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["organizationId"], w.id.as_str());
    let listed = p["accounts"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        w.accounts.len(),
        "every account the StackSet reaches: {p}"
    );
    for (account, ou) in &w.accounts {
        let a = listed
            .iter()
            .find(|a| a["awsAccountId"] == account.as_str())
            .unwrap_or_else(|| panic!("{account} not in {p}"));
        assert_eq!(a["parentId"], ou.as_str());
        check_account(a, &w, ids, account, ou, &narrowed, &rendered);
    }
    assert!(
        listed.iter().all(|a| a["awsAccountId"] != w.mgmt.as_str()),
        "never the management account"
    );

    // A sync records the same verdicts; the members' rows name them.
    let (status, o) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{o}");
    let o = w.view().await;
    for (account, ou) in &w.accounts {
        let r = row(&o, account);
        let g = &r["guardrails"];
        check_account(g, &w, ids, account, ou, &narrowed, &rendered);
        assert_eq!(r["state"], "connected", "{r}");
        assert_eq!(r["health"], "degraded", "{r}");
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains("OrgOnlyAssumeRole") && reason.contains(&w.root),
            "{reason}"
        );
    }

    // Each member turned degraded by its guardrails alone is announced,
    // once: `organization.member_changed`, healthy to degraded, naming the
    // policy; a second sync that finds the same announces nothing.
    let degraded = || async {
        let items = w.state.connections.outbox_page(10_000).await.unwrap();
        items
            .into_iter()
            .filter_map(|i| i.member)
            .filter(|m| m.previous_state == m.state)
            .map(|m| {
                let health = (m.previous_health, m.health);
                (
                    m.aws_account_id.as_str().to_owned(),
                    health,
                    m.reason.unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
    };
    use account_connect::domain::Health;
    let once = degraded().await;
    let mut accounts: Vec<&str> = once.iter().map(|(a, _, _)| a.as_str()).collect();
    accounts.sort();
    let mut want: Vec<&str> = w.accounts.iter().map(|(a, _)| a.as_str()).collect();
    want.sort();
    assert_eq!(accounts, want, "one announcement per member: {once:?}");
    for (account, health, reason) in &once {
        assert_eq!(*health, (Some(Health::Healthy), Some(Health::Degraded)), "{account}");
        assert!(reason.contains("OrgOnlyAssumeRole"), "{account}: {reason}");
    }
    w.app.clock.advance(60);
    assert_eq!(w.app.sync_organization(&w.token, &w.id).await.0, 200);
    assert_eq!(degraded().await, once, "the same verdicts announce nothing again");
}

/// Guardrails are read a few accounts at once (`GUARDRAIL_ACCOUNTS_AT_ONCE`,
/// never more), and each level and policy once per reconciliation however
/// the reads interleave: no ListParents, ListPoliciesForTarget or
/// DescribePolicy asks twice about the same thing. Through the stand-in in
/// front of moto, every Organizations call held a moment so side-by-side
/// calls overlap there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guardrails_are_read_a_few_accounts_at_once_each_level_and_policy_once() {
    use crate::aws_standin::{Script, StandIn};
    use account_connect::domain::Partition;
    use account_connect::organizations::GUARDRAIL_ACCOUNTS_AT_ONCE as AT_ONCE;
    use std::sync::atomic::Ordering;
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let mut settings = config(None);
    settings.organizations_endpoints = std::collections::BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let w = World::start_with(settings, true, None).await;
    let (eng, fin) = (w.ous[0].clone(), w.ous[1].clone());
    let narrowed = w.accounts.iter().find(|(_, ou)| *ou == eng).unwrap().0.clone();
    stand_in(&["guardrails", &w.mgmt, &eng, &fin, &narrowed]);
    // Twice the bound and more: accounts without an instance are read too.
    for (i, ou) in [&eng, &fin, &eng, &fin, &eng].into_iter().enumerate() {
        stand_in(&["add-account", &w.mgmt, ou, &format!("extra{i}")]);
    }
    standin.with(|s| {
        s.log.clear();
        s.calls.clear();
        s.delay_all = Some(std::time::Duration::from_millis(100));
    });
    standin.counters.peak_in_flight.store(0, Ordering::SeqCst);

    let (status, o) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{o}");
    let targeted = o["members"].as_array().unwrap().len();
    assert!(targeted > 2 * AT_ONCE, "{targeted} accounts: {o}");
    assert!(
        o["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.get("guardrails").is_some()),
        "{o}"
    );
    let peak = standin.peak_in_flight();
    assert!(peak <= AT_ONCE, "{peak} calls at once, over {AT_ONCE}");
    assert!(peak >= 2, "the accounts' reads ran one at a time");
    let log = standin.with(|s| s.log.clone());
    let mut asked: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for c in log
        .iter()
        .filter(|c| ["ListParents", "ListPoliciesForTarget", "DescribePolicy"].contains(&c.action.as_str()))
    {
        *asked
            .entry((c.action.clone(), c.json.clone().unwrap_or_default()))
            .or_default() += 1;
    }
    let twice: Vec<_> = asked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "asked more than once: {twice:?}");
    let count = |action: &str| asked.keys().filter(|(a, _)| a == action).count();
    // Every account's parent and both OUs', both policy types at the
    // root, the OUs and each account, and the scenario's policies.
    assert_eq!(count("ListParents"), targeted + 2, "{asked:?}");
    assert_eq!(count("ListPoliciesForTarget"), 2 * (1 + 2 + targeted), "{asked:?}");
    assert!(count("DescribePolicy") >= 4, "{asked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_without_guardrails_is_clear_and_a_preflight_waits_for_the_management_role() {
    let w = World::start(false).await;
    let (status, p) = w.app.preflight_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{p}");
    for a in p["accounts"].as_array().unwrap() {
        // FullAWSAccess and RCPFullAWSAccess everywhere: nothing to name.
        assert_eq!(
            a.as_object().unwrap().keys().collect::<BTreeSet<_>>(),
            BTreeSet::from([
                &"assumeRole".to_owned(),
                &"awsAccountId".to_owned(),
                &"parentId".to_owned()
            ]),
            "{a}"
        );
        assert_eq!(a["assumeRole"], "allowed");
    }

    // Before the management stack reported its role: 409, with a code.
    let (app, _) = common::spawn_with_state(config(None)).await;
    let token = common::token("org-p", None);
    let body = json!({"accountId": "act-mgmt2", "partition": "aws", "permissions": {"mode": "default"},
        "managementAccountId": fresh_account(), "organizationalUnitIds": []});
    let (status, o) = app.create_organization(&token, &body).await;
    assert_eq!(status, 201, "{o}");
    let (status, e) = app.preflight_organization(&token, o["id"].as_str().unwrap()).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("management_not_connected")),
        "{e}"
    );
    let (status, _) = app
        .preflight_organization(&token, "awsorg-0123456789abcdef01234567")
        .await;
    assert_eq!(status, 404);
}
