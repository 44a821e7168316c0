//! The management stack deleted: its Delete answers SUCCESS, the management
//! connection is pending again without its role, the organization reads as
//! `managementStackDeleted` with what to do, sync and preflight answer 409
//! `management_stack_deleted`, the members stay connected, the Spot account
//! stays held, and `organization.state_changed` goes out beside
//! `connection.unlinked`. The stack created again (a new StackId, the same
//! connection's template) brings it back to `active`; offboarding then
//! frees the Spot account. On both stores.

use super::World;
use crate::common;
use common::callback::{config, send, token_of, Message};
use common::organization::{row, LINK};
use serde_json::{json, Value};
use std::time::Duration;

/// A StackId of the same stack name as `stack`, created anew.
fn recreated(stack: &str) -> String {
    let (name, _) = stack.rsplit_once('/').unwrap();
    let r = account_connect::ids::random_token(16);
    format!(
        "{name}/{}-{}-{}-{}-{}",
        &r[..8],
        &r[8..12],
        &r[12..16],
        &r[16..20],
        &r[20..32]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_management_stack_leaves_the_organization_waiting_for_it_and_it_comes_back() {
    use common::receiver::{Behaviour, Receiver as Endpoint};
    for kind in ["sqlite", "dynamodb"] {
        let hook = Endpoint::start(Behaviour::Accept).await;
        let mut settings = account_connect::config::Config {
            webhook_allow_hosts: vec![hook.authority.clone()],
            ..config(None)
        };
        if kind == "dynamodb" {
            settings.store_url = common::dynamo_store_url().await;
        }
        let w = Box::pin(World::start_with(settings, true, None)).await;
        let (status, h) = w.app.create_webhook(&w.token, &json!({"url": hook.url})).await;
        assert_eq!(status, 201, "{kind}: {h}");
        let dispatcher = account_connect::events::Dispatcher::for_services(&w.state).await;
        tokio::spawn(dispatcher.run(Duration::from_millis(100)));
        // The members' enrollments and links, and the connections' own
        // events, delivered first: each member's two member changes and
        // its connected, and the management connection's connected.
        let setup = 3 * w.accounts.len() + 1;
        assert!(
            hook.wait_for(setup, Duration::from_secs(30)).await.len() >= setup,
            "{kind}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, before) = w.app.sync_organization(&w.token, &w.id).await;
        assert_eq!(status, 200, "{kind}: {before}");
        assert_eq!(before["state"], "active", "{kind}: {before}");
        let connected = before["counts"]["connected"].clone();
        let mgmt = before["managementConnection"]["id"].as_str().unwrap().to_owned();
        let tok = token_of(&w.template);
        let url = w.rx.url();
        let seen = hook.got().len();

        // The management stack's Delete, from the stack that connected it.
        let delete = Message {
            request_type: "Delete",
            url: &url,
            stack_id: &w.mgmt_stack,
            request_id: "mgmt-delete",
            physical: Some(&mgmt),
            connection: &mgmt,
            role: &w.mgmt_role,
            token: &tok,
        };
        send(&w.state, &delete).await;
        let a = w.rx.answer();
        assert_eq!(a["Status"], "SUCCESS", "{kind}: {a}");

        let o = w.view().await;
        assert_eq!(o["state"], "managementStackDeleted", "{kind}: {o}");
        let reason = o["stateReason"].as_str().unwrap_or_else(|| panic!("{kind}: {o}"));
        for says in [
            "quickCreateUrl".to_owned(),
            format!("DELETE /v1/organizations/{}", w.id),
            w.mgmt.clone(),
        ] {
            assert!(reason.contains(&says), "{kind}: {says} in {reason}");
        }
        let m = &o["managementConnection"];
        assert_eq!(m["status"], "pending", "{kind}: {m}");
        assert!(m.get("roleArn").is_none_or(Value::is_null), "{kind}: {m}");
        // The members stay as they were: their roles still exist.
        assert_eq!(o["counts"]["connected"], connected, "{kind}: {o}");
        assert_eq!(o["members"], before["members"], "{kind}");

        // Nothing is read through a role that is gone: 409, with a code.
        for (what, (status, e)) in [
            ("sync", w.app.sync_organization(&w.token, &w.id).await),
            ("preflight", w.app.preflight_organization(&w.token, &w.id).await),
        ] {
            assert_eq!(
                (status, e["error"]["code"].as_str()),
                (409, Some("management_stack_deleted")),
                "{kind}: {what}: {e}"
            );
            assert_eq!(e["error"]["details"]["organizationId"], w.id.as_str(), "{kind}: {e}");
        }
        // The Spot account stays the organization's.
        let plain = json!({"accountId": "act-mgmt1", "partition": "aws", "permissions": {"mode": "default"}});
        let (status, e) = w.app.create_connection(&w.token, &plain).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (409, Some("account_has_connection")),
            "{kind}: {e}"
        );
        // A member's stack deleted meanwhile: nothing can confirm it is the
        // account's instance, so the Delete changes nothing (and the stack goes).
        let member = row(&o, &w.accounts[0].0)["connectionId"].as_str().unwrap().to_owned();
        let (_, c) = w.app.get_connection(&w.token, &member).await;
        let stack = c["stack"]["stackId"].as_str().unwrap().to_owned();
        let d = w.delete(LINK, &stack, &member).await;
        assert_eq!(d["Status"], "SUCCESS", "{kind}: {d}");
        assert_eq!(w.app.get_connection(&w.token, &member).await.1["status"], "connected");

        // One event for the organization, beside the connection's own.
        hook.wait_for(seen + 2, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got: Vec<Value> = hook.got()[seen..].iter().map(|g| g.json()).collect();
        let types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types.iter().filter(|t| **t == "organization.state_changed").count(),
            1,
            "{kind}: {got:#?}"
        );
        assert!(types.contains(&"connection.unlinked"), "{kind}: {types:?}");
        assert_eq!(got.len(), 2, "{kind}: {got:#?}");
        let e = got.iter().find(|e| e["type"] == "organization.state_changed").unwrap();
        let d = &e["data"];
        assert_eq!(
            (
                d["organizationId"].as_str(),
                d["previousState"].as_str(),
                d["state"].as_str()
            ),
            (Some(w.id.as_str()), Some("active"), Some("managementStackDeleted")),
            "{kind}: {e}"
        );
        assert_eq!(d["reason"], o["stateReason"], "{kind}");
        assert_eq!(d["managementConnection"]["id"], mgmt.as_str(), "{kind}");
        let mut all = got;

        // Created again from a fresh template (the same connection's): active.
        let (status, fresh) = w.app.organization_template(&w.token, &w.id).await;
        assert_eq!(status, 200, "{kind}: {fresh}");
        let again = recreated(&w.mgmt_stack);
        let fresh_tok = token_of(&fresh);
        let create = Message {
            request_type: "Create",
            url: &url,
            stack_id: &again,
            request_id: "mgmt-create-again",
            physical: None,
            connection: &mgmt,
            role: &w.mgmt_role,
            token: &fresh_tok,
        };
        send(&w.state, &create).await;
        let a = w.rx.answer();
        assert_eq!(a["Status"], "SUCCESS", "{kind}: {a}");
        let (status, o) = w.app.sync_organization(&w.token, &w.id).await;
        assert_eq!(status, 200, "{kind}: {o}");
        assert_eq!(o["state"], "active", "{kind}: {o}");
        assert!(o.get("stateReason").is_none(), "{kind}: {o}");
        assert_eq!(o["managementConnection"]["status"], "connected", "{kind}: {o}");
        assert_eq!(o["counts"]["connected"], connected, "{kind}: {o}");
        let seen = seen + all.len();
        hook.wait_for(seen + 2, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got: Vec<Value> = hook.got()[seen..].iter().map(|g| g.json()).collect();
        let back: Vec<_> = got
            .iter()
            .filter(|e| e["type"] == "organization.state_changed")
            .map(|e| (e["data"]["previousState"].clone(), e["data"]["state"].clone()))
            .collect();
        assert_eq!(
            back,
            vec![(json!("managementStackDeleted"), json!("active"))],
            "{kind}: {got:#?}"
        );
        assert!(
            got.iter()
                .any(|e| e["type"] == "connection.connected" && e["data"]["id"] == mgmt.as_str()),
            "{kind}: {got:#?}"
        );
        all.extend(got);
        common::schemas::assert_documented(&all);

        // Offboarding ends it, and frees the Spot account.
        let (status, off) = w.app.offboard_organization(&w.token, &w.id).await;
        assert_eq!(status, 200, "{kind}: {off}");
        let (status, c) = w.app.create_connection(&w.token, &plain).await;
        assert_eq!(status, 201, "{kind}: {c}");
    }
}

/// Deleted and not created again: offboarding still ends the organization
/// and frees its Spot account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_without_its_management_stack_offboards() {
    let w = Box::pin(World::start_with(config(None), false, None)).await;
    let mgmt = w.view().await["managementConnection"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tok = token_of(&w.template);
    let url = w.rx.url();
    // A Delete from another stack changes nothing.
    let other = recreated(&w.mgmt_stack);
    for (stack, state) in [
        (other.as_str(), "active"),
        (w.mgmt_stack.as_str(), "managementStackDeleted"),
    ] {
        let delete = Message {
            request_type: "Delete",
            url: &url,
            stack_id: stack,
            request_id: "mgmt-delete",
            physical: Some(&mgmt),
            connection: &mgmt,
            role: &w.mgmt_role,
            token: &tok,
        };
        send(&w.state, &delete).await;
        assert_eq!(w.rx.answer()["Status"], "SUCCESS");
        assert_eq!(w.view().await["state"], state, "{stack}");
    }
    let (status, off) = w.app.offboard_organization(&w.token, &w.id).await;
    assert_eq!(status, 200, "{off}");
    assert_eq!(off["state"], "offboarded", "{off}");
    assert_eq!(off["managementConnection"]["status"], "disconnected", "{off}");
    let plain = json!({"accountId": "act-mgmt1", "partition": "aws", "permissions": {"mode": "default"}});
    let (status, c) = w.app.create_connection(&w.token, &plain).await;
    assert_eq!(status, 201, "{c}");
}
