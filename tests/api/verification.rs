//! Verifying a role against moto, with roles created through the IAM API as
//! a customer would: every check can fail, and says what to change.

use crate::common;
use common::check;

use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012"; // moto's account

struct Env {
    app: common::TestApp,
    iam: aws_sdk_iam::Client,
    token: String,
}

async fn env() -> Env {
    common::moto_endpoint();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    Env {
        app: common::spawn_app(common::test_config()).await,
        iam: aws_sdk_iam::Client::new(&conf),
        token: common::token("org-v", None),
    }
}

impl Env {
    async fn connection(&self, account: &str, permissions: Value) -> Value {
        let body =
            json!({"accountId": account, "partition": "aws", "permissions": permissions, "awsAccountId": ACCOUNT});
        let (status, c) = self.app.create_connection(&self.token, &body).await;
        assert_eq!(status, 201, "{c}");
        c
    }

    /// A role with this trust policy and these managed and inline policies.
    async fn role(&self, trust: &Value, managed: &[Value], inline: &[Value]) -> String {
        let name = format!("Spot-Role-{}", account_connect::ids::random_token(4));
        let out = self
            .iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
        for (i, doc) in managed.iter().enumerate() {
            common::attach_managed_policy(&self.iam, &name, &format!("{name}-p{i}"), doc).await;
        }
        for (i, doc) in inline.iter().enumerate() {
            self.iam
                .put_role_policy()
                .role_name(&name)
                .policy_name(format!("inline-{i}"))
                .policy_document(doc.to_string())
                .send()
                .await
                .unwrap();
        }
        out.role.unwrap().arn
    }

    async fn connect(&self, c: &Value, arn: &str) -> (u16, Value) {
        self.app.connect_role(&self.token, c["id"].as_str().unwrap(), arn).await
    }
}

fn docs(c: &Value) -> Vec<Value> {
    c["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["document"].clone())
        .collect()
}

fn trust_with(ext: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::922761411349:root"},
        "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]})
}

/// Asserts a 422 whose report fails `failed` with a remediation, and that the
/// connection stays pending with a failed event.
async fn assert_refused(e: &Env, c: &Value, arn: &str, failed: &str) -> Value {
    let (status, err) = e.connect(c, arn).await;
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap_or("")),
        (422, "verification_failed"),
        "{err}"
    );
    let report = &err["error"]["details"]["report"];
    let chk = check(report, failed);
    assert_eq!(chk["status"], "failed", "{report}");
    assert!(chk["remediation"].as_str().is_some_and(|r| r.len() > 20), "{chk}");
    assert_eq!(report["outcome"], "failed");
    let (_, now) = e.app.get_connection(&e.token, c["id"].as_str().unwrap()).await;
    assert_eq!(now["status"], "pending");
    let (_, events) = e.app.events(&e.token, c["id"].as_str().unwrap(), "").await;
    assert_eq!(events["items"].as_array().unwrap().last().unwrap()["kind"], "failed");
    report.clone()
}

#[tokio::test]
async fn the_right_role_connects_and_is_healthy() {
    let e = env().await;
    let c = e.connection("act-100", json!({"mode": "default"})).await;
    let arn = e.role(&c["trustPolicy"], &docs(&c), &[]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["status"].as_str(), done["health"].as_str()),
        (Some("connected"), Some("healthy"))
    );
    assert_eq!(done["roleArn"], arn.as_str());
    for chk in done["report"]["checks"].as_array().unwrap() {
        assert_eq!(chk["status"], "passed", "{chk}");
    }
    assert_eq!(check(&done["report"], "assume_role")["attempts"], 1);
    // Re-checking a healthy role keeps it healthy.
    let (status, again) = e.app.recheck(&e.token, c["id"].as_str().unwrap()).await;
    assert_eq!((status, again["health"].as_str()), (200, Some("healthy")));
}

/// A trust policy made for an external ID.
type TrustFor = Box<dyn Fn(&str) -> Value>;

#[tokio::test]
async fn unsafe_trust_policies_are_refused_with_the_fix() {
    let e = env().await;
    let cases: Vec<(&str, TrustFor)> = vec![
        (
            "no external ID",
            Box::new(|_| {
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::922761411349:root"}, "Action": "sts:AssumeRole"}]})
            }),
        ),
        (
            "another external ID",
            Box::new(|_| trust_with(json!("someone-elses-id"))),
        ),
        (
            "wildcard principal",
            Box::new(|ext| {
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]})
            }),
        ),
        (
            "StringLike wildcard",
            Box::new(|ext| {
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::922761411349:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringLike": {"sts:ExternalId": format!("{}*", &ext[..20])}}}]})
            }),
        ),
        (
            "not the vendor",
            Box::new(|ext| {
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]})
            }),
        ),
    ];
    for (i, (what, trust)) in cases.into_iter().enumerate() {
        let c = e.connection(&format!("act-20{i}"), json!({"mode": "default"})).await;
        let arn = e.role(&trust(c["externalId"].as_str().unwrap()), &docs(&c), &[]).await;
        let report = assert_refused(&e, &c, &arn, "trust_policy").await;
        let fix = check(&report, "trust_policy")["remediation"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            fix.contains(c["externalId"].as_str().unwrap()),
            "{what}: the fix must name the external ID: {fix}"
        );
    }
}

#[tokio::test]
async fn the_role_arn_must_be_of_this_connection() {
    let e = env().await;
    // Declared account differs.
    let body = json!({"accountId": "act-300", "partition": "aws", "permissions": {"mode": "default"}, "awsAccountId": "111111111111"});
    let (_, c) = e.app.create_connection(&e.token, &body).await;
    let arn = e.role(&c["trustPolicy"], &docs(&c), &[]).await;
    let report = assert_refused(&e, &c, &arn, "role_arn").await;
    assert!(check(&report, "role_arn")["message"]
        .as_str()
        .unwrap()
        .contains("111111111111"));
    assert_eq!(check(&report, "assume_role")["status"], "skipped");
    // GovCloud ARN for a commercial connection.
    let c = e.connection("act-301", json!({"mode": "default"})).await;
    let report = assert_refused(&e, &c, "arn:aws-us-gov:iam::123456789012:role/Spot-Role", "role_arn").await;
    assert!(check(&report, "role_arn")["message"]
        .as_str()
        .unwrap()
        .contains("GovCloud"));
    // Not an ARN at all.
    assert_refused(&e, &c, "Spot-Role", "role_arn").await;
    // A role that does not exist.
    let report = assert_refused(&e, &c, "arn:aws:iam::123456789012:role/No-Such-Role", "trust_policy").await;
    assert!(check(&report, "trust_policy")["message"]
        .as_str()
        .unwrap()
        .contains("No-Such-Role"));
}

#[tokio::test]
async fn missing_and_denied_permissions_leave_it_connected_but_degraded() {
    let e = env().await;
    let perms = json!({"mode": "custom", "products": ["elastigroup"], "integrations": ["elastigroup-route53"]});
    let c = e.connection("act-400", perms.clone()).await;
    // The policy without the Route 53 statement.
    let mut doc = docs(&c)[0].clone();
    doc["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["Sid"] != "ElastigroupRoute53");
    let arn = e.role(&c["trustPolicy"], &[doc], &[]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!((status, done["health"].as_str()), (200, Some("degraded")), "{done}");
    let perm = check(&done["report"], "permissions");
    assert_eq!(perm["status"], "warning");
    let missing = perm["missing"]["elastigroup-route53"].as_array().unwrap();
    assert!(
        missing.iter().any(|a| a == "route53:ChangeResourceRecordSets"),
        "{perm}"
    );
    assert!(perm["missing"].get("elastigroup").is_none(), "{perm}");

    // An explicit Deny beside the full policy.
    let c = e.connection("act-401", perms).await;
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"}]});
    let mut managed = docs(&c);
    managed.push(deny);
    let arn = e.role(&c["trustPolicy"], &managed, &[]).await;
    let (_, done) = e.connect(&c, &arn).await;
    assert_eq!(done["health"], "degraded");
    let missing = &check(&done["report"], "permissions")["missing"];
    assert_eq!(
        missing
            .as_object()
            .unwrap()
            .values()
            .flat_map(|v| v.as_array().unwrap())
            .count(),
        1,
        "{missing}"
    );
    assert!(missing.to_string().contains("ec2:TerminateInstances"));
}

#[tokio::test]
async fn inline_and_managed_policies_count_together() {
    let e = env().await;
    let c = e.connection("act-500", json!({"mode": "default"})).await;
    let doc = &docs(&c)[0];
    let statements = doc["Statement"].as_array().unwrap();
    let (a, b) = statements.split_at(statements.len() / 2);
    let managed = json!({"Version": "2012-10-17", "Statement": a});
    let inline = json!({"Version": "2012-10-17", "Statement": b});
    let arn = e.role(&c["trustPolicy"], &[managed], &[inline]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!((status, done["health"].as_str()), (200, Some("healthy")), "{done}");
}

#[tokio::test]
async fn a_rotated_external_id_is_promoted_once_the_role_trusts_it() {
    let e = env().await;
    let c = e.connection("act-600", json!({"mode": "default"})).await;
    let id = c["id"].as_str().unwrap();
    let arn = e.role(&c["trustPolicy"], &docs(&c), &[]).await;
    assert_eq!(e.connect(&c, &arn).await.0, 200);
    let (_, rotated) = e.app.rotate_external_id(&e.token, id).await;
    let new = rotated["pendingExternalId"].as_str().unwrap().to_owned();
    // Not yet in the trust policy: the re-check keeps the current ID.
    let (_, still) = e.app.recheck(&e.token, id).await;
    assert_eq!(still["pendingExternalId"], new.as_str());
    // The customer pastes the updated trust policy (both IDs), then connects again.
    let name = arn.rsplit('/').next().unwrap();
    e.iam
        .update_assume_role_policy()
        .role_name(name)
        .policy_document(rotated["trustPolicy"].to_string())
        .send()
        .await
        .unwrap();
    let (status, done) = e.connect(&rotated, &arn).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["externalId"], new.as_str());
    assert!(done.get("pendingExternalId").is_none());
    // Afterwards the old ID left in the trust policy is a warning, not a failure.
    let (_, later) = e.app.recheck(&e.token, id).await;
    let trust = check(&later["report"], "trust_policy");
    assert_eq!(trust["status"], "warning", "{trust}");
    assert!(trust["message"]
        .as_str()
        .unwrap()
        .contains(c["externalId"].as_str().unwrap()));
    let (_, events) = e.app.events(&e.token, id, "").await;
    let kinds: Vec<(&str, bool)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["detail"]["promoted"] == true))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("created", false),
            ("verified", false),
            ("rotated", false),
            ("checked", false),
            ("verified", true),
            ("checked", false)
        ]
    );
}

#[tokio::test]
async fn a_role_serves_one_connection_and_concurrent_submissions_agree() {
    let e = env().await;
    let c = e.connection("act-700", json!({"mode": "default"})).await;
    let arn = e.role(&c["trustPolicy"], &docs(&c), &[]).await;
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let (app, id, token, arn) = (
                e.app.clone(),
                c["id"].as_str().unwrap().to_owned(),
                e.token.clone(),
                arn.clone(),
            );
            tokio::spawn(async move {
                let (status, body) = app.connect_role(&token, &id, &arn).await;
                (status, body["error"]["code"].as_str().map(str::to_owned))
            })
        })
        .collect();
    // One verification per connection at a time: a submission that lands
    // while another runs is refused as in progress, never a different verdict.
    let mut connected = 0;
    for h in handles {
        match h.await.unwrap() {
            (200, _) => connected += 1,
            (409, Some(code)) if code == "verification_in_progress" => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(connected >= 1);
    let (_, done) = e.app.get_connection(&e.token, c["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["status"].as_str(), done["roleArn"].as_str()),
        (Some("connected"), Some(arn.as_str()))
    );
    // Another tenant, whose external ID the role does not trust, is refused by the trust check.
    let other = Env {
        app: e.app.clone(),
        iam: e.iam.clone(),
        token: common::token("org-w", None),
    };
    let c2 = other.connection("act-701", json!({"mode": "default"})).await;
    assert_refused(&other, &c2, &arn, "trust_policy").await;
    // Even when the customer re-points the role's trust at the other connection,
    // the role stays with the connection that holds it.
    let name = arn.rsplit('/').next().unwrap();
    e.iam
        .update_assume_role_policy()
        .role_name(name)
        .policy_document(c2["trustPolicy"].to_string())
        .send()
        .await
        .unwrap();
    let (status, err) = other.connect(&c2, &arn).await;
    assert_eq!(
        (status, err["error"]["code"].as_str().unwrap_or("")),
        (409, "role_already_connected"),
        "{err}"
    );
    let (_, c2_now) = other.app.get_connection(&other.token, c2["id"].as_str().unwrap()).await;
    assert_eq!(c2_now["status"], "pending");
}

/// A sample of the trust table (src/verify/trust_table.rs) end to end: moto
/// never reads a trust policy, so each verdict here is the audit's own.
#[tokio::test]
async fn trust_verdicts_agree_with_iam_end_to_end() {
    let e = env().await;
    let vendor = "arn:aws:iam::922761411349:root";
    let refused: Vec<(&str, TrustFor, &str)> = vec![
        (
            "a second account in the vendor's list",
            Box::new(move |ext| {
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": [vendor, "arn:aws:iam::111111111111:root"]}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": ext}}}]})
            }),
            "111111111111",
        ),
        (
            "an unconditional Deny for the vendor",
            Box::new(move |ext| {
                let mut t = trust_with(json!(ext));
                t["Statement"].as_array_mut().unwrap().push(
                    json!({"Sid": "NoVendor", "Effect": "Deny", "Principal": {"AWS": vendor}, "Action": "sts:AssumeRole"}),
                );
                t
            }),
            "NoVendor",
        ),
        (
            "an EKS OIDC provider without a sub condition",
            Box::new(move |ext| {
                let mut t = trust_with(json!(ext));
                t["Statement"].as_array_mut().unwrap().push(json!({"Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EX"},
                    "Action": "sts:AssumeRoleWithWebIdentity"}));
                t
            }),
            "oidc-provider",
        ),
    ];
    for (i, (what, trust, names)) in refused.into_iter().enumerate() {
        let c = e.connection(&format!("act-80{i}"), json!({"mode": "default"})).await;
        let arn = e.role(&trust(c["externalId"].as_str().unwrap()), &docs(&c), &[]).await;
        let report = assert_refused(&e, &c, &arn, "trust_policy").await;
        let msg = check(&report, "trust_policy")["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(names), "{what}: {msg}");
    }
    // Safe by IAM's evaluation although not the shape we render.
    let safe: Vec<TrustFor> = vec![
        Box::new(move |ext| {
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": vendor}, "Action": "sts:AssumeRole"},
                {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                 "Condition": {"StringNotEquals": {"sts:ExternalId": ext}}}]})
        }),
        Box::new(|ext| {
            trust_with(json!(ext.to_uppercase()))
                .to_string()
                .replace("StringEquals", "StringEqualsIgnoreCase")
                .parse()
                .unwrap()
        }),
    ];
    for (i, trust) in safe.into_iter().enumerate() {
        let c = e.connection(&format!("act-81{i}"), json!({"mode": "default"})).await;
        let arn = e.role(&trust(c["externalId"].as_str().unwrap()), &docs(&c), &[]).await;
        let (status, done) = e.connect(&c, &arn).await;
        assert_eq!((status, done["status"].as_str()), (200, Some("connected")), "{done}");
    }
}

/// The wildcard that made the old matcher backtrack for minutes: the
/// verification answers, and the rest of the role's policy still counts.
#[tokio::test]
async fn a_hostile_wildcard_policy_is_checked_promptly() {
    let e = env().await;
    let c = e.connection("act-820", json!({"mode": "default"})).await;
    let hostile = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": format!("ec2:{}Z", "*".repeat(40)), "Resource": format!("arn:aws:s3:::{}Z", "*?".repeat(40))}
    ]});
    let arn = e.role(&c["trustPolicy"], &docs(&c), &[hostile]).await;
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["health"], "healthy", "{done}");
}

#[tokio::test]
async fn the_report_and_the_trust_audit_tell_time_by_the_service_clock() {
    // Another account may assume the role until tomorrow: unsafe today,
    // and no longer once the service's clock has passed that moment.
    let e = env().await;
    let c = e.connection("act-clock", json!({"mode": "default"})).await;
    let until = account_connect::clock::iso(e.app.clock.now() + 86_400);
    let mut trust = c["trustPolicy"].clone();
    trust["Statement"].as_array_mut().unwrap().push(json!({
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole",
        "Condition": {"DateLessThan": {"aws:CurrentTime": until}}}));
    let arn = e.role(&trust, &docs(&c), &[]).await;
    let report = assert_refused(&e, &c, &arn, "trust_policy").await;
    assert!(
        check(&report, "trust_policy")["message"]
            .as_str()
            .unwrap()
            .contains("111122223333"),
        "{report}"
    );

    // A day and an hour later by the service's clock (the external ID,
    // unused, is valid for 48 hours).
    e.app.clock.advance(86_400 + 3_600);
    let (status, done) = e.connect(&c, &arn).await;
    assert_eq!((status, done["health"].as_str()), (200, Some("healthy")), "{done}");
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    let checked = parse(&done["report"]["checkedAt"]);
    assert!((checked - e.app.clock.now()).abs() <= 5, "{done}");
}
