//! An organization whose members are in every state, for the fixture sets
//! (`crate::fixtures`): connected (one with a Spot account assigned),
//! pending, missing, suspended, moved, left and disconnected, reconciled.

use super::World;
use crate::common::organization::{play, row, stand_in, ENROLL};
use std::collections::BTreeMap;

pub(crate) struct Organization {
    pub app: crate::common::TestApp,
    pub state: account_connect::services::Services,
    pub token: String,
    pub id: String,
    /// Member state (as the organization view names it) to its AWS account.
    pub members: BTreeMap<String, String>,
}

pub(crate) async fn in_every_state(config: account_connect::config::Config) -> Organization {
    let w = Box::pin(World::start_with(config, true, None)).await;
    let mut members = BTreeMap::new();
    // One joins late and connects, then is disconnected in Spot.
    let gone = stand_in(&["add-account", &w.mgmt, &w.ous[0], "late"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let (e, l, _) = Box::pin(w.connect_with(&gone, "us-east-1", "fresh")).await;
    assert_eq!(
        (&e["Status"], &l["Status"]),
        (&"SUCCESS".into(), &"SUCCESS".into()),
        "{e} {l}"
    );
    let gone_id = e["Data"]["ConnectionId"].as_str().unwrap().to_owned();
    assert_eq!(w.app.disconnect(&w.token, &gone_id).await.0, 200);
    members.insert("disconnected".to_owned(), gone);
    // One enrolled, its role not linked yet.
    let enrolling = stand_in(&["add-account", &w.mgmt, &w.ous[1], "enrolling"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    let stack = w.genuine(&enrolling, "us-east-1", "fresh");
    let url = w.rx.url();
    let e = Box::pin(play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack))).await;
    assert_eq!(e["Status"], "SUCCESS", "{e}");
    members.insert("pending".to_owned(), enrolling);
    // Missing, left, moved and suspended, as reconciliation finds them.
    let missing = stand_in(&["add-account", &w.mgmt, &w.ous[1], "no-instance"])["account"]
        .as_str()
        .unwrap()
        .to_owned();
    members.insert("missing".to_owned(), missing);
    let left = w.accounts[0].0.clone();
    stand_in(&["remove-account", &w.mgmt, &left]);
    members.insert("left".to_owned(), left);
    let moved = w.accounts[1].0.clone();
    stand_in(&["move-account", &w.mgmt, &moved, &w.accounts[1].1, &w.root]);
    members.insert("moved".to_owned(), moved);
    let closed = w.accounts[2].0.clone();
    stand_in(&["close-account", &w.mgmt, &closed]);
    members.insert("suspended".to_owned(), closed);
    members.insert("connected".to_owned(), w.accounts[3].0.clone());
    let (status, o) = w.app.sync_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{o}");
    // A Spot account assigned to the connected member.
    let member = row(&o, &w.accounts[3].0)["connectionId"].as_str().unwrap().to_owned();
    let (status, a) = w.app.assign_spot_account(&w.token, &member, "act-member1").await;
    assert_eq!(status, 200, "{a}");
    let o = w.view().await;
    for (state, account) in &members {
        assert_eq!(row(&o, account)["state"], state.as_str(), "{o}");
    }
    Organization {
        app: w.app.clone(),
        state: w.state.clone(),
        token: w.token.clone(),
        id: w.id.clone(),
        members,
    }
}
