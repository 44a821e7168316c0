//! The permission catalog is consistent and names only real IAM actions.

use crate::common;

use account_connect::catalog::Catalog;

#[test]
fn catalog_loads_and_passes_its_own_rules() {
    let c = Catalog::get();
    assert_eq!(c.schema_version, 1);
    assert_eq!(c.check(), Ok(()));
    assert!(!c.products.is_empty());
    for p in &c.products {
        assert!(!p.name.is_empty() && !p.description.is_empty(), "{}", p.id);
        for i in &p.integrations {
            assert!(
                !i.name.is_empty() && !i.description.is_empty() && !i.statements.is_empty(),
                "{}",
                i.id
            );
        }
    }
}

#[test]
fn core_bundle_holds_what_verification_reads() {
    let core: Vec<String> = Catalog::get()
        .core
        .statements
        .iter()
        .flat_map(|s| s.actions.iter().map(|a| a.to_ascii_lowercase()))
        .collect();
    for needed in [
        "iam:listroles",
        "iam:listattachedrolepolicies",
        "iam:listrolepolicies",
        "iam:getrolepolicy",
        "iam:getpolicy",
        "iam:getpolicyversion",
    ] {
        assert!(core.contains(&needed.to_owned()), "core lacks {needed}");
    }
}

#[test]
fn the_products_and_integrations_of_the_seeds_are_there() {
    let c = Catalog::get();
    for id in ["overview-dashboard", "elastigroup", "ocean", "spot-storage"] {
        assert!(
            matches!(c.find(id), Some(account_connect::catalog::BundleRef::Product(_))),
            "{id}"
        );
    }
    for id in [
        "elastigroup-route53",
        "elastigroup-batch",
        "elastigroup-stateful",
        "elastigroup-beanstalk",
        "elastigroup-emr",
        "elastigroup-codedeploy",
        "elastigroup-opsworks",
        "ocean-ecs",
        "ocean-eks",
    ] {
        assert!(
            matches!(c.find(id), Some(account_connect::catalog::BundleRef::Integration(..))),
            "{id}"
        );
    }
}

#[test]
fn every_catalog_action_is_a_real_iam_action() {
    let catalog = common::repo_path("catalog/catalog.json");
    let (ok, out) = common::run_python("tests/tools/check_actions.py", &[catalog.to_str().unwrap()], "");
    assert!(ok, "policy_sentry finds actions that do not exist:\n{out}");
    assert!(out.contains("0 unknown"), "{out}");
}
