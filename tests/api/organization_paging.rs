//! Organizations of any size: the organization view reads every member,
//! page after page, so no listed account reads as `missing` for want of a
//! read; offboarding pages through them too. SQLite with more members than
//! the view once read (10,000) at the store's page of 100; DynamoDB with a
//! page of 2, so a handful of members takes several pages.

use crate::common;
use account_connect::domain::{AccountId, Listing, OrganizationId, Reconciliation, SeenAccount};
use common::callback::config;
use serde_json::json;

/// An organization with `n` enrolled (pending) members, each listed by the
/// last reconciliation under a targeted OU; its view.
async fn seeded(
    store_url: Option<String>,
    page: usize,
    n: u64,
) -> (common::TestApp, String, String, serde_json::Value) {
    let mut c = config(None);
    if let Some(url) = store_url {
        c.store_url = url;
    }
    c.member_page = page;
    let (app, state, store) = common::spawn_with_store(c).await;
    let token = common::token(&format!("org-p{}", account_connect::ids::random_token(4)), None);
    let body = json!({"accountId": format!("act-p{}", account_connect::ids::random_token(4)), "partition": "aws",
        "permissions": {"mode": "default"}, "managementAccountId": common::organization::fresh_account()});
    let (status, o) = app.create_organization(&token, &body).await;
    assert_eq!(status, 201, "{o}");
    let id: OrganizationId = o["id"].as_str().unwrap().parse().unwrap();
    let org = store.get_organization(&id).await.unwrap().unwrap();
    let base: u64 = common::organization::fresh_account().parse().unwrap();
    let mut accounts = Vec::new();
    for i in 0..n {
        let account: AccountId = format!("{:012}", (base + i) % 900_000_000_000 + 100_000_000_000)
            .parse()
            .unwrap();
        state.organizations.enroll(&org, &account, "paging-test").await.unwrap();
        accounts.push(SeenAccount {
            aws_account_id: account,
            status: "ACTIVE".into(),
            parent_id: Some("ou-test-paging".into()),
            targeted: true,
            guardrails: None,
        });
    }
    let mut org = store.get_organization(&id).await.unwrap().unwrap();
    org.last_reconciliation = Some(Reconciliation::Listed(Listing::new(state.connections.now(), accounts)));
    org.version += 1;
    store.update_organization(&org).await.unwrap();
    let view = common::organization::organization(&app, &token, id.as_str()).await;
    (app, token, id.as_str().to_owned(), view)
}

fn every_member_shown(kind: &str, view: &serde_json::Value, n: u64) {
    let rows = view["members"].as_array().unwrap();
    let missing: Vec<&serde_json::Value> = rows.iter().filter(|r| r["state"] == "missing").take(3).collect();
    assert!(
        missing.is_empty(),
        "{kind}: listed members read as missing: {missing:?}"
    );
    assert_eq!(rows.len() as u64, n, "{kind}");
    assert_eq!(view["counts"]["pending"], n, "{kind}: {}", view["counts"]);
    assert_eq!(view["counts"]["missing"], 0, "{kind}: {}", view["counts"]);
    assert!(rows.iter().all(|r| r["connectionId"].is_string()), "{kind}");
}

#[tokio::test]
async fn the_view_shows_every_member_of_an_organization_past_ten_thousand() {
    let n = 10_050;
    let (_app, _token, _id, view) = seeded(None, account_connect::store::MAX_PAGE, n).await;
    every_member_shown("sqlite", &view, n);
}

#[tokio::test]
async fn the_view_and_offboarding_page_through_every_member_on_dynamodb() {
    let n = 7;
    let (app, token, id, view) = seeded(Some(common::dynamo_store_url().await), 2, n).await;
    every_member_shown("dynamodb", &view, n);
    let (status, off) = app.offboard_organization(&token, &id).await;
    assert_eq!(status, 200, "{off}");
    assert_eq!(off["counts"]["disconnected"], n, "{}", off["counts"]);
}
