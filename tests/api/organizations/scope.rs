//! A token limited to some Spot accounts, against an organization whose
//! members are assigned to Spot accounts inside (side A) and outside (side
//! B) the token: B's members are invisible to it in every answer, and
//! nothing it sends changes them. Each Spot account holds one live
//! connection, so each side is several Spot accounts: A is the
//! organization's own (the management connection and the unassigned
//! member), a member's and a plain connection's; B two members' and a plain
//! connection's.

use super::World;
use crate::common;
use common::organization::{fresh_account, organization, row};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The World's organization's Spot account.
const ORG_ACCOUNT: &str = "act-mgmt1";
const A_MEMBER: &str = "act-amember";
const A_PLAIN: &str = "act-aplain";
/// Free Spot accounts of side A, for the routes that create.
const A_NEW: &str = "act-anew";
const A_SPARE: &str = "act-aspare";
const B_MEMBERS: [&str; 2] = ["act-bmember1", "act-bmember2"];
const B_PLAIN: &str = "act-bplain";

fn token_a() -> String {
    common::token("org-o", Some(&[ORG_ACCOUNT, A_MEMBER, A_PLAIN, A_NEW, A_SPARE]))
}

/// The World with every member connected and reconciled, its members split
/// between the sides, and a plain connection on each.
struct Split {
    w: World,
    /// The member assigned to A, then the unassigned one.
    a_members: Vec<String>,
    /// Their AWS accounts.
    a_aws: Vec<String>,
    b_members: Vec<String>,
    a_plain: String,
    a_spare: String,
    b_plain: String,
    management: String,
    /// Everything of B: Spot accounts, connection ids, AWS accounts, role
    /// ARNs, external IDs.
    b_facts: Vec<String>,
}

async fn plain(app: &common::TestApp, token: &str, account: &str) -> String {
    let body = json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}});
    let (status, c) = app.create_connection(token, &body).await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> BTreeSet<String> {
    let items = page["items"].as_array().unwrap();
    items.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

async fn split() -> Split {
    let w = World::start(true).await;
    // Reconciled first, so every member's AWS account is in the last reconciliation.
    let (status, o) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{o}");
    let aws: Vec<String> = w.accounts.iter().map(|(a, _)| a.clone()).collect();
    let member = |i: usize| row(&o, &aws[i])["connectionId"].as_str().unwrap().to_owned();
    for (i, spot) in [(0, A_MEMBER), (1, B_MEMBERS[0]), (2, B_MEMBERS[1])] {
        let (status, c) = w.app.assign_spot_account(&w.token, &member(i), spot).await;
        assert_eq!(status, 200, "{c}");
    }
    let b_members = vec![member(1), member(2)];
    let b_plain = plain(&w.app, &w.token, B_PLAIN).await;
    let mut b_facts: Vec<String> = B_MEMBERS.iter().map(|s| s.to_string()).collect();
    b_facts.push(B_PLAIN.into());
    for id in b_members.iter().chain([&b_plain]) {
        let (_, c) = w.app.get_connection(&w.token, id).await;
        b_facts.push(id.clone());
        b_facts.push(c["externalId"].as_str().unwrap().to_owned());
        for key in ["awsAccountId", "roleArn"] {
            b_facts.extend(c[key].as_str().map(str::to_owned));
        }
    }
    assert_eq!(b_facts.len(), 3 + 3 * 2 + 2 * 2, "{b_facts:?}");
    Split {
        a_members: vec![member(0), member(3)],
        a_aws: vec![aws[0].clone(), aws[3].clone()],
        b_members,
        a_plain: plain(&w.app, &w.token, A_PLAIN).await,
        a_spare: plain(&w.app, &w.token, A_SPARE).await,
        b_plain,
        management: o["managementConnection"]["id"].as_str().unwrap().to_owned(),
        b_facts,
        w,
    }
}

impl Split {
    fn b_connections(&self) -> Vec<&String> {
        self.b_members.iter().chain([&self.b_plain]).collect()
    }

    /// B's records as an unrestricted token reads them: each connection and
    /// its audit trail, and B's rows of the organization view.
    async fn b_state(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for id in self.b_connections() {
            out.push(self.w.app.get_connection(&self.w.token, id).await.1);
            out.push(self.w.app.events(&self.w.token, id, "limit=100").await.1);
        }
        let o = self.w.view().await;
        for (aws, _) in &self.w.accounts[1..3] {
            out.push(row(&o, aws).clone());
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_token_sees_its_members_only_and_offboards_only_when_it_covers_every_one() {
    let s = split().await;
    let (w, a) = (&s.w, token_a());
    let everything = w.view().await;
    assert_eq!(everything["members"].as_array().unwrap().len(), 4, "{everything}");

    // The view: only A's rows, counted, and the reconciliation's count of A's.
    let o = organization(&w.app, &a, &w.id).await;
    let aws = |v: &Value| -> BTreeSet<String> {
        let rows = v["members"].as_array().unwrap();
        rows.iter()
            .map(|r| r["awsAccountId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(aws(&o), s.a_aws.iter().cloned().collect(), "{o}");
    let rows: BTreeSet<String> = s.a_members.iter().cloned().collect();
    assert_eq!(o["counts"]["connected"], 2, "{o}");
    assert_eq!(o["counts"]["missing"], 0, "B's accounts are not missing: {o}");
    assert_eq!(o["lastReconciliation"]["accounts"], 2, "{o}");
    assert_eq!(row(&o, &s.a_aws[0])["spotAccountId"], A_MEMBER);
    assert!(
        row(&o, &s.a_aws[1]).get("spotAccountId").is_none(),
        "unassigned, and seen"
    );
    // Sync answers the same view.
    let (status, synced) = w.app.sync_organization(&a, &w.id).await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(aws(&synced), aws(&o), "{synced}");
    assert_eq!(synced["counts"], o["counts"]);
    // The member list, with and without a filter, in pages of one.
    for filter in ["", "&status=connected", "&health=healthy"] {
        let mut listed = BTreeSet::new();
        let mut cursor = String::new();
        loop {
            let q = format!("organizationId={}&limit=1{filter}{cursor}", w.id);
            let (status, page) = w.app.list_connections(&a, &q).await;
            assert_eq!(status, 200, "{page}");
            listed.extend(ids(&page));
            match page["nextCursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(listed, rows, "{filter}");
    }
    // Per member: 404 as for any connection the token cannot see.
    for id in &s.b_members {
        let (status, e) = w.app.get_connection(&a, id).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (404, Some("connection_not_found"))
        );
    }
    // A token without the organization's Spot account sees its member, not the organization.
    let member_only = common::token("org-o", Some(&[A_MEMBER]));
    assert_eq!(w.app.get_connection(&member_only, &s.a_members[0]).await.0, 200);
    assert_eq!(w.app.get_connection(&member_only, &s.a_members[1]).await.0, 404);
    assert_eq!(w.app.get_organization(&member_only, &w.id).await.0, 404);

    // Offboarding needs every member's Spot account: 403 naming the missing ones, nothing changed.
    let before = s.b_state().await;
    let (status, e) = w.app.offboard_organization(&a, &w.id).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (403, Some("members_not_allowed")),
        "{e}"
    );
    assert_eq!(e["error"]["details"]["accountIds"], json!(B_MEMBERS), "{e}");
    for b in B_MEMBERS {
        assert!(e["error"]["message"].as_str().unwrap().contains(b), "{e}");
    }
    let one_short = common::token("org-o", Some(&[ORG_ACCOUNT, A_MEMBER, B_MEMBERS[0]]));
    let (status, e) = w.app.offboard_organization(&one_short, &w.id).await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"]["details"]["accountIds"], json!([B_MEMBERS[1]]), "{e}");
    let after = w.view().await;
    assert_eq!(after["state"], "active", "{after}");
    assert_eq!(after["counts"]["connected"], 4, "{after}");
    assert_eq!(after["managementConnection"]["status"], "connected");
    assert_eq!(s.b_state().await, before);

    // A member already disconnected is not one offboarding changes.
    assert_eq!(w.app.disconnect(&w.token, &s.b_members[1]).await.0, 200);
    let (status, o) = w.app.offboard_organization(&one_short, &w.id).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(
        o["counts"]["disconnected"], 3,
        "the one it may not see is not counted: {o}"
    );
    assert_eq!(w.view().await["counts"]["disconnected"], 4);
    assert_eq!(o["managementConnection"]["status"], "disconnected");
    // Again, with A's token: nothing left to change.
    assert_eq!(w.app.offboard_organization(&a, &w.id).await.0, 200);
}

/// One request of the walk and what its answer must be.
struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
    expect: Expect,
}

enum Expect {
    /// Any answer but a 5xx.
    Answered,
    /// 2xx, holding each of these.
    Shows(Vec<String>),
    /// 403 or 404: it is B's, or B's Spot account.
    Refused,
    /// Offboarding's 403 naming B's members' Spot accounts (the one answer
    /// that may hold them).
    NotAllowed,
}

fn call(method: &'static str, path: impl Into<String>, body: Option<Value>, expect: Expect) -> Call {
    Call {
        method,
        path: path.into(),
        body,
        expect,
    }
}

/// Every operation of the served contract the walk has requests for.
const COVERED: [&str; 36] = [
    "getHealth",
    "getOpenApi",
    "getCatalog",
    "listPartitions",
    "renderPolicies",
    "relayCallback",
    "createConnection",
    "listConnections",
    "getConnection",
    "disconnect",
    "rotateExternalId",
    "listEvents",
    "connectRole",
    "recheckConnection",
    "getTemplate",
    "assignSpotAccount",
    "createOrganization",
    "getOrganization",
    "offboardOrganization",
    "syncOrganization",
    "preflightOrganization",
    "getOrganizationTemplate",
    "spotCreateExternalId",
    "spotReadExternalId",
    "spotSetCredentials",
    "spotGetCredentials",
    "createWebhook",
    "listWebhooks",
    "getWebhook",
    "deleteWebhook",
    "rotateWebhookSecret",
    "testWebhook",
    "listWebhookDeliveries",
    "enableWebhook",
    "recoverWebhook",
    "retryWebhookDelivery",
];

/// The restricted token's requests to one operation: at B's records and
/// Spot accounts (refused), and at A's (answered, without B).
fn requests(op: &str, s: &Split) -> Vec<Call> {
    use Expect::*;
    let org = &s.w.id;
    let a_ids = || s.a_members.iter().chain([&s.a_plain, &s.management]);
    let at_b = |method, suffix: &str, body: Option<Value>| -> Vec<Call> {
        s.b_connections()
            .into_iter()
            .map(|id| call(method, format!("/v1/connections/{id}{suffix}"), body.clone(), Refused))
            .collect()
    };
    let connection =
        |account: &str| json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"}});
    let a_role = s.w.role_arn(&s.a_aws[0]);
    let calls = match op {
        "getHealth" => vec![call("GET", "/health", None, Answered)],
        "getOpenApi" => vec![call("GET", "/openapi.json", None, Answered)],
        "getCatalog" => vec![call("GET", "/v1/catalog", None, Answered)],
        "listPartitions" => vec![call("GET", "/v1/partitions", None, Answered)],
        "renderPolicies" => vec![call(
            "POST",
            "/v1/policies",
            Some(json!({"partition": "aws", "permissions": {"mode": "default"}})),
            Answered,
        )],
        "relayCallback" => vec![call("POST", "/v1/relay/aws-us-gov", Some(json!({})), Answered)],
        "createConnection" => vec![
            call("POST", "/v1/connections", Some(connection(B_PLAIN)), Refused),
            call("POST", "/v1/connections", Some(connection("act-bnew")), Refused),
            call(
                "POST",
                "/v1/connections",
                Some(connection(A_NEW)),
                Shows(vec![A_NEW.into()]),
            ),
        ],
        "listConnections" => vec![
            call(
                "GET",
                "/v1/connections",
                None,
                Shows(vec![s.a_plain.clone(), s.management.clone(), s.a_members[0].clone()]),
            ),
            call(
                "GET",
                format!("/v1/connections?organizationId={org}"),
                None,
                Shows(s.a_members.clone()),
            ),
            call(
                "GET",
                format!("/v1/connections?organizationId={org}&status=connected&limit=1"),
                None,
                Shows(vec![]),
            ),
            call("GET", format!("/v1/connections?accountId={B_PLAIN}"), None, Answered),
            call(
                "GET",
                format!("/v1/connections?accountId={}", B_MEMBERS[0]),
                None,
                Answered,
            ),
            call("GET", "/v1/connections?status=connected&health=healthy", None, Answered),
        ],
        "getConnection" => {
            let mut c = at_b("GET", "", None);
            c.extend(a_ids().map(|id| call("GET", format!("/v1/connections/{id}"), None, Shows(vec![id.clone()]))));
            c
        }
        "disconnect" => {
            let mut c = at_b("DELETE", "", None);
            c.push(call(
                "DELETE",
                format!("/v1/connections/{}", s.a_spare),
                None,
                Shows(vec![s.a_spare.clone()]),
            ));
            c
        }
        "rotateExternalId" => {
            let mut c = at_b("POST", "/external-id", None);
            c.push(call(
                "POST",
                format!("/v1/connections/{}/external-id", s.a_plain),
                None,
                Shows(vec![]),
            ));
            c
        }
        "listEvents" => {
            let mut c = at_b("GET", "/events", None);
            c.extend(a_ids().map(|id| call("GET", format!("/v1/connections/{id}/events"), None, Shows(vec![]))));
            c
        }
        "connectRole" => at_b("POST", "/role", Some(json!({"roleArn": a_role}))),
        "recheckConnection" => {
            let mut c = at_b("POST", "/checks", None);
            let id = &s.a_members[0];
            c.push(call(
                "POST",
                format!("/v1/connections/{id}/checks"),
                None,
                Shows(vec![id.clone()]),
            ));
            c
        }
        "getTemplate" => {
            let mut c = at_b("GET", "/template", None);
            c.extend(a_ids().map(|id| call("GET", format!("/v1/connections/{id}/template"), None, Shows(vec![]))));
            c
        }
        "assignSpotAccount" => {
            let mut c = at_b("PUT", "/account", Some(json!({"accountId": A_SPARE})));
            let unassigned = &s.a_members[1];
            for account in ["act-bnew", B_MEMBERS[0]] {
                let path = format!("/v1/connections/{unassigned}/account");
                c.push(call("PUT", path, Some(json!({"accountId": account})), Refused));
            }
            c
        }
        "createOrganization" => {
            let body = |account: &str| {
                json!({"accountId": account, "partition": "aws", "permissions": {"mode": "default"},
                    "managementAccountId": fresh_account()})
            };
            vec![
                call("POST", "/v1/organizations", Some(body("act-bnew")), Refused),
                call("POST", "/v1/organizations", Some(body(B_PLAIN)), Refused),
            ]
        }
        "getOrganization" | "syncOrganization" => {
            let method = if op == "getOrganization" { "GET" } else { "POST" };
            let suffix = if op == "getOrganization" { "" } else { "/sync" };
            let shows = s.a_members.iter().chain(&s.a_aws).cloned().collect();
            vec![call(
                method,
                format!("/v1/organizations/{org}{suffix}"),
                None,
                Shows(shows),
            )]
        }
        // The accounts the StackSet reaches, but those of B's members.
        "preflightOrganization" => vec![call(
            "GET",
            format!("/v1/organizations/{org}/preflight"),
            None,
            Shows(s.a_aws.clone()),
        )],
        "offboardOrganization" => vec![call("DELETE", format!("/v1/organizations/{org}"), None, NotAllowed)],
        "getOrganizationTemplate" => vec![call(
            "GET",
            format!("/v1/organizations/{org}/template"),
            None,
            Shows(vec![]),
        )],
        "spotCreateExternalId" | "spotReadExternalId" | "spotGetCredentials" => {
            let path = |account: &str| match op {
                "spotReadExternalId" => format!("/setup/credentials/aws/externalId/{account}"),
                "spotCreateExternalId" => format!("/setup/credentials/aws/externalId?accountId={account}"),
                _ => format!("/setup/credentials/aws?accountId={account}"),
            };
            let method = if op == "spotCreateExternalId" { "POST" } else { "GET" };
            let mut c: Vec<Call> = [B_PLAIN, B_MEMBERS[0], B_MEMBERS[1]]
                .iter()
                .map(|b| call(method, path(b), None, Refused))
                .collect();
            let (account, shows) = match op {
                "spotGetCredentials" => (A_MEMBER, a_role.clone()),
                _ => (A_PLAIN, "spotinst:aws:extid:".to_owned()),
            };
            c.push(call(method, path(account), None, Shows(vec![shows])));
            c
        }
        "spotSetCredentials" => [B_PLAIN, B_MEMBERS[0]]
            .iter()
            .map(|b| {
                let body = json!({"credentials": {"iamRole": a_role}});
                call(
                    "POST",
                    format!("/setup/credentials/aws?accountId={b}"),
                    Some(body),
                    Refused,
                )
            })
            .collect(),
        // A webhook receives every Spot account's events: a restricted token
        // manages none (403 webhooks_need_full_access), whoever's it is.
        "createWebhook" => vec![call(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "https://partner.example.com/hooks"})),
            Refused,
        )],
        "listWebhooks" => vec![call("GET", "/v1/webhooks", None, Refused)],
        "getWebhook"
        | "deleteWebhook"
        | "rotateWebhookSecret"
        | "testWebhook"
        | "listWebhookDeliveries"
        | "enableWebhook"
        | "recoverWebhook"
        | "retryWebhookDelivery" => {
            let (method, suffix, body) = match op {
                "getWebhook" => ("GET", "", None),
                "deleteWebhook" => ("DELETE", "", None),
                "rotateWebhookSecret" => ("POST", "/secret", None),
                "testWebhook" => ("POST", "/test", None),
                "enableWebhook" => ("POST", "/enable", None),
                "recoverWebhook" => ("POST", "/recover", Some(json!({"since": "2026-01-01T00:00:00Z"}))),
                "retryWebhookDelivery" => ("POST", "/deliveries/msg_test_0/retry", None),
                _ => ("GET", "/deliveries", None),
            };
            vec![call(
                method,
                format!("/v1/webhooks/wh-0123456789abcdef01234567{suffix}"),
                body,
                Refused,
            )]
        }
        other => panic!("{other}: the walk has no request with the restricted token for this operation; add them here"),
    };
    assert!(!calls.is_empty(), "{op}");
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_a_restricted_token_shows_and_changes_nothing_of_other_spot_accounts() {
    let s = split().await;
    let a = token_a();
    let routes = account_connect::api::route_table();
    let served: BTreeSet<&str> = routes.iter().map(|r| r.operation_id).collect();
    assert_eq!(
        served,
        COVERED.into_iter().collect(),
        "every operation of the contract needs requests in this walk (and only those)"
    );
    let mut failures = Vec::new();
    for route in &routes {
        let op = route.operation_id;
        let before = s.b_state().await;
        for c in requests(op, &s) {
            let prefix = &route.path[..route.path.find('{').unwrap_or(route.path.len())];
            assert!(
                c.method.eq_ignore_ascii_case(route.method) && c.path.starts_with(prefix),
                "{op}: {} {} is not its route {} {}",
                c.method,
                c.path,
                route.method,
                route.path
            );
            let mut req = s.w.app.request(c.method, &c.path, Some(&a));
            if let Some(b) = &c.body {
                req = req.json(b);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let headers = format!("{:?}", res.headers());
            let text = res.text().await.unwrap();
            let what = format!(
                "{op}: {} {} -> {status} {}",
                c.method,
                c.path,
                &text[..text.len().min(300)]
            );
            let sent = format!(
                "{} {}",
                c.path,
                c.body.as_ref().map(Value::to_string).unwrap_or_default()
            );
            // What may appear: what the request itself said, and, in
            // offboarding's refusal, the Spot accounts it names.
            let allowed =
                |fact: &str| sent.contains(fact) || matches!(c.expect, Expect::NotAllowed) && B_MEMBERS.contains(&fact);
            for fact in s.b_facts.iter().filter(|f| !allowed(f)) {
                if text.contains(fact.as_str()) || headers.contains(fact.as_str()) {
                    failures.push(format!("{what}\n  shows B's {fact}"));
                }
            }
            let ok = match &c.expect {
                Expect::Answered => status < 500,
                Expect::Shows(facts) => (200..300).contains(&status) && facts.iter().all(|f| text.contains(f.as_str())),
                Expect::Refused => status == 403 || status == 404,
                Expect::NotAllowed => {
                    let e: Value = serde_json::from_str(&text).unwrap_or_default();
                    status == 403
                        && e["error"]["code"] == "members_not_allowed"
                        && e["error"]["details"]["accountIds"] == json!(B_MEMBERS)
                }
            };
            if !ok {
                failures.push(format!("{what}\n  is not the answer expected"));
            }
        }
        if s.b_state().await != before {
            failures.push(format!("{op}: changed B's records"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
