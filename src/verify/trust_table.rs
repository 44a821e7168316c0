//! Trust policies whose real IAM verdict is known: one row, one policy, one
//! verdict, one reason the report must give.

use super::*;
use crate::iam::{Policy, Tri};
use crate::verify::report::CheckStatus::{self, Failed, Passed, Warning};
use crate::verify::trust_probe::Prober;
use proptest::prelude::*;
use serde_json::{json, Value};

const VENDOR: &str = "arn:aws:iam::922761411349:root";
const CUSTOMER: &str = "123456789012";
const OURS: &str = "ext-1";

fn ids() -> OurIds<'static> {
    OurIds {
        current: OURS,
        pending: None,
        previous: &[],
    }
}

fn vendor_ok() -> Value {
    json!({"Sid": "Spot", "Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": OURS}}})
}

fn policy(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn audit_of(doc: &Value) -> TrustAudit {
    audit(doc, VENDOR, CUSTOMER, &ids())
}

struct Row {
    what: &'static str,
    doc: Value,
    verdict: CheckStatus,
    /// A phrase the message must hold (who gets in, which statement).
    says: &'static str,
}

fn row(what: &'static str, statements: Vec<Value>, verdict: CheckStatus, says: &'static str) -> Row {
    Row {
        what,
        doc: policy(statements),
        verdict,
        says,
    }
}

fn table() -> Vec<Row> {
    let other = "arn:aws:iam::111111111111:root";
    vec![
        row("the policy we render", vec![vendor_ok()], Passed, "Only"),
        row(
            "vendor by account number",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": "922761411349"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": OURS}}}),
            ],
            Passed,
            "Only",
        ),
        row(
            "condition key in another case",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:*", "Condition": {"StringEquals": {"STS:EXTERNALID": OURS}}}),
            ],
            Passed,
            "Only",
        ),
        row("single statement as an object", vec![], Passed, "Only"),
        // Accepted today although others get in.
        row(
            "vendor and a second account in one list",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": [VENDOR, other]}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": OURS}}}),
            ],
            Failed,
            "111111111111",
        ),
        row(
            "second statement trusts another account",
            vec![
                vendor_ok(),
                json!({"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": other}, "Action": "sts:AssumeRole"}),
            ],
            Failed,
            "Statement \"Ops\"",
        ),
        row(
            "EKS OIDC without a sub condition",
            vec![
                vendor_ok(),
                json!({"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"}, "Action": "sts:AssumeRoleWithWebIdentity"}),
            ],
            Failed,
            "oidc-provider",
        ),
        row(
            "EKS OIDC with a sub condition",
            vec![
                vendor_ok(),
                json!({"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks/id/ABC"}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"oidc.eks/id/ABC:sub": "system:serviceaccount:a:b"}}}),
            ],
            Failed,
            "federated",
        ),
        row(
            "unconditional Deny for the vendor",
            vec![
                vendor_ok(),
                json!({"Sid": "No", "Effect": "Deny", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole"}),
            ],
            Failed,
            "never be assumed",
        ),
        // Refused today although IAM evaluates them as safe.
        row(
            "Deny guards an unconditioned vendor Allow",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole"}),
                json!({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringNotEquals": {"sts:ExternalId": OURS}}}),
            ],
            Passed,
            "Only",
        ),
        row(
            "anyone pinned to the vendor account",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:PrincipalAccount": "922761411349", "sts:ExternalId": OURS}}}),
            ],
            Passed,
            "Only",
        ),
        row(
            "our ID upper-cased under IgnoreCase",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEqualsIgnoreCase": {"sts:ExternalId": "EXT-1"}}}),
            ],
            Passed,
            "Only",
        ),
        row(
            "our ID ANDed with a prefix wildcard",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": OURS}, "StringLike": {"sts:ExternalId": "ext-*"}}}),
            ],
            Passed,
            "Only",
        ),
        // What the audit already handled.
        row(
            "no external ID",
            vec![json!({"Sid": "Open", "Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole"})],
            Failed,
            "without any external ID",
        ),
        row(
            "another external ID",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "someone-else"}}}),
            ],
            Failed,
            "No statement lets",
        ),
        row(
            "ours and another",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": [OURS, "someone-else"]}}}),
            ],
            Failed,
            "\"someone-else\"",
        ),
        row(
            "wildcard external ID",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringLike": {"sts:ExternalId": "ext-*"}}}),
            ],
            Failed,
            "confused deputy",
        ),
        row(
            "StringNotEquals another ID",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringNotEquals": {"sts:ExternalId": "x"}}}),
            ],
            Failed,
            "without any external ID",
        ),
        row(
            "IfExists lets a caller without an ID in",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEqualsIfExists": {"sts:ExternalId": OURS}}}),
            ],
            Failed,
            "without any external ID",
        ),
        row(
            "ForAllValues lets a caller without an ID in",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"ForAllValues:StringEquals": {"sts:ExternalId": OURS}}}),
            ],
            Failed,
            "without any external ID",
        ),
        row(
            "Null false accepts any ID",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"Null": {"sts:ExternalId": "false"}}}),
            ],
            Failed,
            "not this connection's",
        ),
        row(
            "a condition on another key only",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}),
            ],
            Failed,
            "No statement lets",
        ),
        row(
            "anyone with our ID",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": OURS}}}),
            ],
            Failed,
            "the external ID is not a secret",
        ),
        row(
            "Principal star",
            vec![
                json!({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": OURS}}}),
            ],
            Failed,
            "not a secret",
        ),
        row(
            "not the vendor at all",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": other}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": OURS}}}),
            ],
            Failed,
            "No statement lets",
        ),
        row(
            "another vendor role without an ID",
            vec![
                vendor_ok(),
                json!({"Sid": "Any", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::922761411349:role/any"}, "Action": "sts:*"}),
            ],
            Failed,
            "role/any",
        ),
        row(
            "an operator we do not know",
            vec![
                json!({"Sid": "Odd", "Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": OURS}, "StringSortOfEquals": {"sts:ExternalId": "x"}}}),
            ],
            Failed,
            "StringSortOfEquals",
        ),
        row(
            "a policy variable",
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "${aws:username}"}}}),
            ],
            Failed,
            "policy variable",
        ),
        row(
            "source identity chosen by the caller",
            vec![
                vendor_ok(),
                json!({"Effect": "Allow", "Principal": {"AWS": other}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:SourceIdentity": "ops"}}}),
            ],
            Failed,
            "111111111111",
        ),
        row(
            "an IP condition an attacker can meet",
            vec![
                vendor_ok(),
                json!({"Effect": "Allow", "Principal": {"AWS": other}, "Action": "sts:AssumeRole", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}),
            ],
            Failed,
            "111111111111",
        ),
        row(
            "another account only until 2001",
            vec![
                vendor_ok(),
                json!({"Effect": "Allow", "Principal": {"AWS": other}, "Action": "sts:AssumeRole", "Condition": {"DateLessThan": {"aws:CurrentTime": "2001-01-01T00:00:00Z"}}}),
            ],
            Passed,
            "Only",
        ),
        row(
            "a Deny narrowing everyone else",
            vec![
                vendor_ok(),
                json!({"Effect": "Deny", "NotPrincipal": {"AWS": VENDOR}, "Action": "sts:AssumeRole"}),
            ],
            Passed,
            "Only",
        ),
        row(
            "two wildcards an attacker meets at once",
            vec![
                vendor_ok(),
                json!({"Effect": "Allow", "Principal": {"AWS": other}, "Action": "sts:AssumeRole", "Condition": {"StringLike": {"sts:ExternalId": "a*"}, "ForAnyValue:StringLike": {"sts:ExternalId": "*b"}}}),
            ],
            Failed,
            "111111111111",
        ),
        // Warnings, not failures.
        row(
            "a service principal beside the vendor",
            vec![
                vendor_ok(),
                json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}),
            ],
            Warning,
            "ec2.amazonaws.com",
        ),
        row(
            "the customer's own account beside the vendor",
            vec![
                vendor_ok(),
                json!({"Sid": "Mine", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}),
            ],
            Warning,
            "your own account",
        ),
    ]
}

#[test]
fn every_row_gets_iams_verdict_and_reason() {
    for r in table() {
        // The "as an object" row: one statement not in a list.
        let doc = if r.what == "single statement as an object" {
            json!({"Version": "2012-10-17", "Statement": vendor_ok()})
        } else {
            r.doc
        };
        let a = audit_of(&doc);
        assert_eq!(a.check.status, r.verdict, "{}: {}", r.what, a.check.message);
        assert!(
            a.check.message.contains(r.says),
            "{}: {:?} lacks {:?}",
            r.what,
            a.check.message,
            r.says
        );
        if r.verdict == Failed {
            let fix = a.check.remediation.as_deref().unwrap();
            assert!(fix.contains(OURS) && fix.contains(VENDOR), "{}: {fix}", r.what);
        }
    }
}

#[test]
fn the_pending_id_is_found_and_retired_ids_warn() {
    let previous = vec!["ext-0".to_owned()];
    let ids = OurIds {
        current: "ext-1",
        pending: Some("ext-2"),
        previous: &previous,
    };
    let with = |ext: Value| {
        let d = policy(vec![
            json!({"Effect": "Allow", "Principal": {"AWS": VENDOR}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": ext}}}),
        ]);
        audit(&d, VENDOR, CUSTOMER, &ids)
    };
    let a = with(json!(["ext-1", "ext-2"]));
    assert!(a.pending_found);
    assert_eq!(a.check.status, Passed);
    let a = with(json!("ext-2"));
    assert!(a.pending_found, "the customer may drop the old ID first");
    assert_eq!(a.check.status, Passed);
    let a = with(json!(["ext-0", "ext-1"]));
    assert!(!a.pending_found);
    assert_eq!(a.check.status, Warning);
    assert!(a.check.message.contains("ext-0"));
}

#[test]
fn url_encoded_documents_decode() {
    let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
    assert_eq!(decode_policy(raw).unwrap()["Version"], "2012-10-17");
    assert_eq!(decode_policy("{\"a\":1}").unwrap()["a"], 1);
}

#[test]
fn a_hostile_trust_policy_is_audited_at_once() {
    // Many caller-chosen keys: more combinations than are enumerated.
    let mut cond = serde_json::Map::new();
    for k in 0..20 {
        cond.insert(format!("aws:RequestTag/k{k}"), json!(["a", "b", "c"]));
    }
    let doc = policy(vec![
        vendor_ok(),
        json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": format!("sts:{}Z", "*".repeat(40)), "Condition": {"StringEquals": cond}}),
    ]);
    let a = audit_of(&doc);
    assert_eq!(a.check.status, Passed, "{}", a.check.message);
    let doc = policy(vec![
        vendor_ok(),
        json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "sts:*", "Condition": {"StringEquals": cond}}),
    ]);
    assert_eq!(audit_of(&doc).check.status, Failed);
}

/// Statements an attacker or a careless customer might add.
fn extra_statement() -> impl Strategy<Value = Value> {
    let principal = prop_oneof![
        Just(json!({"AWS": VENDOR})),
        Just(json!({"AWS": "*"})),
        Just(json!({"AWS": "arn:aws:iam::111111111111:root"})),
        Just(json!({"AWS": CUSTOMER})),
        Just(json!({"Service": "ec2.amazonaws.com"})),
    ];
    let action = prop_oneof![Just("sts:AssumeRole"), Just("sts:*"), Just("*"), Just("sts:TagSession")];
    let condition = prop_oneof![
        Just(Value::Null),
        Just(json!({"StringEquals": {"sts:ExternalId": OURS}})),
        Just(json!({"StringNotEquals": {"sts:ExternalId": OURS}})),
        Just(json!({"StringLike": {"sts:ExternalId": "ext-*"}})),
        Just(json!({"Null": {"sts:ExternalId": "true"}})),
        Just(json!({"StringEquals": {"aws:PrincipalAccount": "922761411349"}})),
    ];
    let effect = prop_oneof![Just("Allow"), Just("Deny")];
    (effect, principal, action, condition).prop_map(|(e, p, a, c)| {
        let mut s = json!({"Effect": e, "Principal": p, "Action": a});
        if !c.is_null() {
            s["Condition"] = c;
        }
        s
    })
}

proptest! {
    #[test]
    fn an_unconditioned_allow_for_another_account_always_refuses(extra in proptest::collection::vec(extra_statement(), 0..4)) {
        let mut sts = vec![vendor_ok()];
        sts.extend(extra);
        sts.push(json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "sts:AssumeRole"}));
        // Unless a Deny shuts that account out too, it gets in.
        let denies_it = sts.iter().any(|s| s["Effect"] == "Deny" && s["Principal"]["AWS"] == "*" && s.get("Condition").is_none());
        prop_assume!(!denies_it);
        prop_assert_eq!(audit_of(&policy(sts)).check.status, Failed);
    }

    /// A Deny can make an unsafe policy safe (the guarded-Allow row), but it
    /// never lets anyone in: the vendor kept out stays out, and nobody the
    /// questions kept out gets in.
    #[test]
    fn adding_a_deny_never_lets_anyone_in(extra in proptest::collection::vec(extra_statement(), 0..4), deny in extra_statement()) {
        let mut sts = vec![vendor_ok()];
        sts.extend(extra);
        let before = Policy::parse(&policy(sts.clone())).unwrap();
        let mut deny = deny;
        deny["Effect"] = json!("Deny");
        sts.push(deny);
        let after = Policy::parse(&policy(sts.clone())).unwrap();
        let (b, a) = (Prober::new(&before, VENDOR, CUSTOMER, 0), Prober::new(&after, VENDOR, CUSTOMER, 0));
        if a.vendor_with(Some(OURS)).decision.allowed == Tri::True {
            prop_assert_eq!(b.vendor_with(Some(OURS)).decision.allowed, Tri::True);
        }
        if b.outsider_allowed().is_none() {
            prop_assert!(a.outsider_allowed().is_none());
        }
        if b.vendor_without(|v| v == OURS).is_empty() {
            prop_assert!(a.vendor_without(|v| v == OURS).is_empty());
        }
        if b.federated_allowed().is_none() {
            prop_assert!(a.federated_allowed().is_none());
        }
        // So a policy the audit refuses because the vendor cannot get in stays refused.
        if audit_of(&policy(sts[..sts.len() - 1].to_vec())).check.message.contains("never be assumed") {
            prop_assert_eq!(audit_of(&policy(sts)).check.status, Failed);
        }
    }
}
