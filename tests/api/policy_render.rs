//! The renderer: Spot's default exactly, partition-correct ARNs, splitting,
//! refusals that name the offending id, and no new linter findings.

use crate::common;

use account_connect::domain::Partition;
use account_connect::policy::{render, Permissions, Rendered, Selection, SelectionError, MANAGED_POLICY_MAX_CHARS};
use serde_json::Value;
use std::collections::BTreeSet;

type Pairs = BTreeSet<(String, String)>;

/// Allowed (action, resource) pairs, lowercased, without the pairs a
/// `prefix*` action on the same resource already allows.
fn effective(pairs: Pairs) -> Pairs {
    let wild: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(a, r)| a.strip_suffix('*').map(|p| (p.to_owned(), r.clone())))
        .collect();
    pairs
        .into_iter()
        .filter(|(a, r)| {
            !wild
                .iter()
                .any(|(p, wr)| wr == r && a.starts_with(p.as_str()) && a.len() > p.len() && &a[p.len()..] != "*")
        })
        .collect()
}

fn doc_pairs(doc: &Value) -> Pairs {
    let mut out = Pairs::new();
    for s in doc["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow");
        let list = |v: &Value| -> Vec<String> {
            match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
                _ => panic!("unexpected {v}"),
            }
        };
        for a in list(&s["Action"]) {
            for r in list(&s["Resource"]) {
                out.insert((a.to_ascii_lowercase(), r));
            }
        }
    }
    effective(out)
}

fn rendered_pairs(r: &Rendered) -> Pairs {
    let mut all = Pairs::new();
    for p in &r.policies {
        all.extend(doc_pairs(&serde_json::to_value(&p.document).unwrap()));
    }
    effective(all)
}

/// What the selection's catalog statements allow, before any merging.
fn catalog_pairs(sel: &Selection) -> Pairs {
    let mut out = Pairs::new();
    for t in sel.statements() {
        for a in &t.actions {
            for r in t.resources_for(sel.partition()) {
                out.insert((a.to_ascii_lowercase(), r));
            }
        }
    }
    effective(out)
}

fn custom(products: &[&str], integrations: &[&str]) -> Permissions {
    Permissions::Custom {
        products: products.iter().map(|s| s.to_string()).collect(),
        integrations: integrations.iter().map(|s| s.to_string()).collect(),
    }
}

fn render_for(p: Partition, perms: &Permissions) -> Rendered {
    render(&Selection::resolve(p, perms).unwrap()).unwrap()
}

#[test]
fn default_render_is_exactly_spots_default_policy_in_one_document() {
    let r = render_for(Partition::Aws, &Permissions::Default);
    assert_eq!(r.policies.len(), 1);
    assert_eq!(r.policies[0].name, "Spot-Policy");
    assert!(r.policies[0].size <= MANAGED_POLICY_MAX_CHARS);
    let ours = rendered_pairs(&r);
    let spot = doc_pairs(&common::spot_default_policy());
    let missing: Vec<_> = spot.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&spot).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
}

#[test]
fn reported_sizes_are_the_minified_lengths() {
    for perms in [Permissions::Default, Permissions::everything()] {
        let r = render_for(Partition::Aws, &perms);
        for p in &r.policies {
            let json = serde_json::to_string(&p.document).unwrap();
            assert_eq!(p.size, json.len(), "{}", p.name);
            let pretty = serde_json::to_string_pretty(&p.document).unwrap();
            assert_eq!(
                account_connect::policy::iam_size(&pretty),
                p.size,
                "whitespace must not count"
            );
        }
    }
}

#[test]
fn a_selection_over_the_limit_is_split_and_the_parts_add_up() {
    let sel = Selection::resolve(Partition::Aws, &Permissions::everything()).unwrap();
    let r = render(&sel).unwrap();
    assert!(
        r.total_size > MANAGED_POLICY_MAX_CHARS,
        "all bundles should exceed one policy: {}",
        r.total_size
    );
    assert!(r.policies.len() >= 2 && r.policies.len() <= 10);
    for (i, p) in r.policies.iter().enumerate() {
        assert!(p.size <= MANAGED_POLICY_MAX_CHARS, "{} is {}", p.name, p.size);
        assert_eq!(p.name, format!("Spot-Policy-{}", i + 1));
        let sids: Vec<&str> = p.document.statement.iter().map(|s| s.sid.as_ref()).collect();
        let unique: BTreeSet<&str> = sids.iter().copied().collect();
        assert_eq!(sids.len(), unique.len(), "Sids repeat inside {}", p.name);
    }
    assert_eq!(rendered_pairs(&r), catalog_pairs(&sel));
}

#[test]
fn every_render_grants_exactly_its_bundles() {
    for perms in [
        Permissions::Default,
        Permissions::everything(),
        custom(&["overview-dashboard"], &[]),
        custom(&["elastigroup"], &["elastigroup-route53", "elastigroup-emr"]),
        custom(&["ocean", "eco"], &["ocean-eks"]),
    ] {
        let sel = Selection::resolve(Partition::Aws, &perms).unwrap();
        assert_eq!(rendered_pairs(&render(&sel).unwrap()), catalog_pairs(&sel), "{perms:?}");
    }
}

#[test]
fn unselected_bundles_contribute_nothing() {
    let with = rendered_pairs(&render_for(
        Partition::Aws,
        &custom(&["elastigroup"], &["elastigroup-route53"]),
    ));
    let without = rendered_pairs(&render_for(Partition::Aws, &custom(&["elastigroup"], &[])));
    assert!(with.contains(&("route53:changeresourcerecordsets".into(), "*".into())));
    assert!(!without.contains(&("route53:changeresourcerecordsets".into(), "*".into())));
    let dash = rendered_pairs(&render_for(Partition::Aws, &custom(&["overview-dashboard"], &[])));
    assert!(
        !dash.iter().any(|(a, _)| a.starts_with("elasticfilesystem:delete")),
        "Spot Storage leaked in"
    );
}

#[test]
fn output_is_sorted_deduplicated_and_deterministic() {
    let a = render_for(
        Partition::Aws,
        &custom(&["ocean", "elastigroup"], &["ocean-ecs", "elastigroup-emr"]),
    );
    let b = render_for(
        Partition::Aws,
        &custom(&["elastigroup", "ocean"], &["elastigroup-emr", "ocean-ecs"]),
    );
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    for p in &a.policies {
        let sids: Vec<&str> = p.document.statement.iter().map(|s| s.sid.as_ref()).collect();
        assert!(sids.windows(2).all(|w| w[0] <= w[1]), "statements not sorted: {sids:?}");
        let mut seen = BTreeSet::new();
        for s in &p.document.statement {
            let lower: Vec<String> = s.action.iter().map(|a| a.to_ascii_lowercase()).collect();
            assert!(
                lower.windows(2).all(|w| w[0] < w[1]),
                "actions not sorted or repeated in {}",
                s.sid
            );
            for a in &lower {
                assert!(seen.insert((a.clone(), s.resource.clone())), "{a} granted twice");
                if let Some(prefix) = a.strip_suffix('*') {
                    assert!(
                        !lower.iter().any(|o| o != a && o.starts_with(prefix)),
                        "{a} covers another action of {}",
                        s.sid
                    );
                }
            }
        }
    }
}

#[test]
fn govcloud_and_china_use_their_partition_everywhere_and_refuse_custom() {
    for (p, arn) in [
        (Partition::AwsUsGov, "arn:aws-us-gov:"),
        (Partition::AwsCn, "arn:aws-cn:"),
    ] {
        let json = serde_json::to_string(&render_for(p, &Permissions::Default)).unwrap();
        assert!(!json.contains("arn:aws:"), "{p:?} render holds a commercial ARN");
        assert!(json.contains(arn));
        assert_eq!(
            Selection::resolve(p, &custom(&["elastigroup"], &[])).unwrap_err(),
            SelectionError::CustomNotAllowed(p)
        );
    }
}

#[test]
fn refusals_name_the_offending_id() {
    let cases = [
        (custom(&["nope"], &[]), SelectionError::UnknownBundle("nope".into())),
        (
            custom(&["ocean"], &["ocean-nope"]),
            SelectionError::UnknownBundle("ocean-nope".into()),
        ),
        (
            custom(&["ocean", "ocean"], &[]),
            SelectionError::Duplicate("ocean".into()),
        ),
        (
            custom(&["ocean"], &["ocean-ecs", "ocean-ecs"]),
            SelectionError::Duplicate("ocean-ecs".into()),
        ),
        (
            custom(&["ocean"], &["elastigroup-emr"]),
            SelectionError::IntegrationWithoutProduct {
                integration: "elastigroup-emr".into(),
                product: "elastigroup".into(),
            },
        ),
        (
            custom(&["ocean-ecs"], &[]),
            SelectionError::NotAProduct("ocean-ecs".into()),
        ),
        (
            custom(&["ocean"], &["elastigroup"]),
            SelectionError::NotAnIntegration("elastigroup".into()),
        ),
        (custom(&[], &[]), SelectionError::Empty),
    ];
    for (perms, expected) in cases {
        let err = Selection::resolve(Partition::Aws, &perms).unwrap_err();
        assert_eq!(err, expected);
        if let Some(id) = err.offending_id() {
            assert!(err.to_string().contains(id), "{err}");
        }
    }
}

#[test]
fn parliament_finds_nothing_beyond_spots_own_findings() {
    let mut docs = Vec::new();
    for p in Partition::ALL {
        docs.extend(
            render_for(p, &Permissions::Default)
                .policies
                .into_iter()
                .map(|x| x.document),
        );
    }
    docs.extend(
        render_for(Partition::Aws, &Permissions::everything())
            .policies
            .into_iter()
            .map(|x| x.document),
    );
    docs.extend(
        render_for(Partition::Aws, &custom(&["elastigroup"], &["elastigroup-beanstalk"]))
            .policies
            .into_iter()
            .map(|x| x.document),
    );
    let input = serde_json::to_string(&docs).unwrap();
    let (ok, out) = common::run_python("tests/tools/check_parliament.py", &[], &input);
    assert!(ok, "parliament reports new findings:\n{out}");
    assert!(out.contains(" 0 new"), "{out}");
}

#[test]
fn parliament_check_can_fail() {
    // The linter gate itself must reject a bad policy, or the test above proves nothing.
    let bad = serde_json::json!([{"Version": "2012-10-17", "Statement": [
        {"Sid": "Bad", "Effect": "Allow", "Action": ["ec2:NotAThing"], "Resource": ["*"]}]}]);
    let (ok, out) = common::run_python("tests/tools/check_parliament.py", &[], &bad.to_string());
    assert!(!ok, "{out}");
}
