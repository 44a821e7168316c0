//! A verdict is written only onto the state it verified: a re-check of
//! role A that is still reading when role B is connected must not leave A's
//! health, report or drift on the connection that now holds B.

use crate::aws_standin::{Script, StandIn};
use crate::common::{self, drop_action, some_action};
use account_connect::domain::Partition;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn a_recheck_of_the_old_role_leaves_the_new_roles_verdict() {
    let standin = StandIn::start(&common::moto_endpoint(), Script::default()).await;
    let mut config = common::test_config();
    config.sts_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    config.iam_endpoints = BTreeMap::from([(Partition::Aws, standin.url.clone())]);
    let app = common::spawn_app(config).await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let t = common::token(&format!("org-{}", account_connect::ids::random_token(4)), None);
    let (status, c) = app
        .create_connection(
            &t,
            &json!({"accountId": "act-r1", "partition": "aws", "permissions": {"mode": "default"}}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    let (role_a, policies_a) = common::connection_role(&iam, &c).await;
    let (status, body) = app.connect_role(&t, id, &role_a).await;
    assert_eq!((status, body["health"].as_str()), (200, Some("healthy")), "{body}");
    // A now lacks an action: its own re-check would say degraded.
    drop_action(&iam, &policies_a[0], &some_action(&c)).await;
    // Every call of A's sessions waits, within the verifier's deadlines, so
    // the check of A is still reading when B is connected.
    standin.with(|s| s.hang_roles.insert(role_a.clone(), Duration::from_millis(1500)));
    app.clock.advance(2);
    let (role_b, _) = common::connection_role(&iam, &c).await;
    let recheck = {
        let app = common::TestApp {
            base: app.base.clone(),
            client: app.client.clone(),
            clock: app.clock.clone(),
        };
        let (t, id) = (t.clone(), id.to_owned());
        tokio::spawn(async move { app.recheck(&t, &id).await })
    };
    // B connects while A's reads wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = app.connect_role(&t, id, &role_b).await;
    assert_eq!((status, body["health"].as_str()), (200, Some("healthy")), "{body}");
    let (status, answer) = recheck.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(
        standin.last_session(&role_a).len() > 1,
        "A was assumed and read before B landed"
    );
    let (_, now) = app.get_connection(&t, id).await;
    assert_eq!(now["roleArn"], role_b, "{now}");
    assert_eq!(now["health"], "healthy", "B's own verdict, not A's: {now}");
    assert!(now["drift"].is_null(), "no drift fix of A's: {now}");
    let report = now["report"].to_string();
    assert!(!report.contains(&role_a), "A's report is not B's: {report}");
}
