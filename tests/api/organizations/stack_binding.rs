//! The organization's callback token is in the member template every member
//! account reads: it proves the organization, not the account. A member's
//! enroll, link and Delete are taken only from the StackId the StackSet
//! reports for that account (ListStackInstances through the management
//! role), so another member's admin sending requests for B under a made-up
//! StackId learns nothing of B and changes nothing.

use super::World;
use crate::common;
use common::organization::{instance_stack, play, row, stand_in, OrgMessage, ENROLL, LINK};
use serde_json::Value;

/// No connection id, role ARN or external ID of the member in an answer.
fn reveals_nothing(a: &Value, secrets: &[&str]) {
    let text = a.to_string();
    for s in secrets {
        assert!(!text.contains(s), "the answer gives away {s}: {a}");
    }
    assert!(a["Data"].as_object().is_none_or(|d| d.is_empty()), "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_link_or_delete_for_another_member_is_failed_and_changes_nothing() {
    let w = World::start(false).await;
    let (a, b) = (w.accounts[0].0.clone(), w.accounts[1].0.clone());
    let url = w.rx.url();
    // A is connected by its own instance; B's instance has enrolled and
    // made its role, and its link has not landed yet.
    let (_, la, stack_a) = w.connect(&a, "us-east-1").await;
    assert_eq!(la["Status"], "SUCCESS", "{la}");
    let stack_b = w.genuine(&b, "us-east-1", "");
    let enroll = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &stack_b)).await;
    assert_eq!(enroll["Status"], "SUCCESS", "{enroll}");
    let id_b = enroll["Data"]["ConnectionId"].as_str().unwrap().to_owned();
    let ext_b = enroll["Data"]["ExternalId"].as_str().unwrap().to_owned();
    stand_in(&["trust", &b, &w.member_role, &w.principal, &ext_b]);
    let role_b = w.role_arn(&b);
    let secrets = [id_b.as_str(), role_b.as_str(), ext_b.as_str()];

    // A's admin, with the token from the member template, speaks for B
    // from a StackId it made up in B's account.
    let forged = instance_stack(&b, "us-east-1", &w.stack_set);
    let e = play(&w.state, &w.rx, &w.msg("Create", ENROLL, &url, &forged)).await;
    assert_eq!(e["Status"], "FAILED", "{e}");
    reveals_nothing(&e, &secrets);
    let link = OrgMessage {
        role: Some(&role_b),
        ..w.msg("Create", LINK, &url, &forged)
    };
    let l = play(&w.state, &w.rx, &link).await;
    assert_eq!(l["Status"], "FAILED", "{l}");
    assert!(l["Reason"].as_str().unwrap().contains("not the StackSet"), "{l}");
    reveals_nothing(&l, &secrets);
    // A's own genuine instance naming B's role: refused as before.
    let cross = OrgMessage {
        role: Some(&role_b),
        ..w.msg("Create", LINK, &url, &stack_a)
    };
    let l = play(&w.state, &w.rx, &cross).await;
    assert_eq!(l["Status"], "FAILED", "{l}");
    reveals_nothing(&l, &secrets);
    let o = w.view().await;
    assert_eq!(row(&o, &b)["state"], "pending", "B unchanged: {o}");
    let (_, c) = w.app.get_connection(&w.token, &id_b).await;
    assert!(c.get("stack").is_none() && c.get("roleArn").is_none(), "{c}");

    // B's own link lands: B connects by its instance.
    let genuine = OrgMessage {
        role: Some(&role_b),
        ..w.msg("Create", LINK, &url, &stack_b)
    };
    let l = play(&w.state, &w.rx, &genuine).await;
    assert_eq!(l["Status"], "SUCCESS", "{l}");
    assert_eq!(l["Reason"], "Connected to Spot.", "not 'already connected': {l}");
    let (_, c) = w.app.get_connection(&w.token, &id_b).await;
    assert_eq!(c["status"], "connected", "{c}");
    assert_eq!(c["stack"]["stackId"], stack_b.as_str());

    // A forged Delete of B's link: FAILED, B stays connected. From A's own
    // instance it is not B's account's: nothing to do.
    for (stack, status) in [(forged.as_str(), "FAILED"), (stack_a.as_str(), "SUCCESS")] {
        let d = OrgMessage {
            physical: Some(&id_b),
            role: Some(&role_b),
            ..w.msg("Delete", LINK, &url, stack)
        };
        let d = play(&w.state, &w.rx, &d).await;
        assert_eq!(d["Status"], status, "{d}");
    }
    let o = w.view().await;
    assert_eq!(row(&o, &b)["state"], "connected", "B stays connected: {o}");
    let (_, c) = w.app.get_connection(&w.token, &id_b).await;
    assert_eq!(c["stack"]["stackId"], stack_b.as_str());
    assert_eq!(c["roleArn"], role_b.as_str());

    // B's own Delete (its instance removed) still lets go.
    assert_eq!(w.delete(LINK, &stack_b, &id_b).await["Status"], "SUCCESS");
    let o = w.view().await;
    assert_eq!(row(&o, &b)["state"], "missing", "{o}");
}

/// CloudFormation unreachable: a member's requests cannot be bound to its
/// instance, so they are FAILED ("try again") and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_not_taken_while_its_stack_set_cannot_be_read() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut conf = common::callback::config(None);
    conf.cloudformation_endpoints =
        std::collections::BTreeMap::from([(account_connect::domain::Partition::Aws, closed)]);
    let w = World::start_with(conf, false, None).await;
    let b = w.accounts[1].0.clone();
    let (e, l, _) = w.connect(&b, "us-east-1").await;
    assert_eq!(e["Status"], "FAILED", "{e}");
    assert!(l.is_null(), "no link without an enrollment");
    let reason = e["Reason"].as_str().unwrap();
    assert!(
        reason.contains("nothing changed") && reason.contains("ListStackInstances"),
        "{e}"
    );
    assert!(e["Data"].as_object().is_none_or(|d| d.is_empty()), "{e}");
    let (_, page) = w
        .app
        .list_connections(&w.token, &format!("organizationId={}", w.id))
        .await;
    assert_eq!(page["items"], serde_json::json!([]), "no member was created: {page}");
}
