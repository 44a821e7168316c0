//! The service's table of regions per partition (`Partition::regions`) is
//! the one AWS publishes: botocore's `partitions.json` and `endpoints.json`
//! in the test virtualenv (pinned in tests/requirements.txt). A region AWS
//! adds fails here until the table has it; one the table has and AWS does
//! not fails too.

use crate::common;

use account_connect::domain::Partition;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `$ACCOUNT_CONNECT_TEST_VENV/lib/python*/site-packages/botocore/data`.
fn botocore_data() -> PathBuf {
    let venv = std::env::var("ACCOUNT_CONNECT_TEST_VENV")
        .expect("ACCOUNT_CONNECT_TEST_VENV is not set: run the tests with scripts/test, which makes the virtualenv");
    let lib = PathBuf::from(venv).join("lib");
    let found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}", lib.display()))
        .filter_map(|d| d.ok().map(|d| d.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python"))
        })
        .map(|p| p.join("site-packages/botocore/data"))
        .filter(|p| p.join("partitions.json").is_file() && p.join("endpoints.json").is_file())
        .collect();
    assert_eq!(found.len(), 1, "botocore's data in {}: {found:?}", lib.display());
    found.into_iter().next().unwrap()
}

#[test]
fn each_partitions_regions_are_the_ones_aws_publishes() {
    let data = botocore_data();
    let (ok, out) = common::run_python("tests/tools/aws_regions.py", &[data.to_str().unwrap()], "");
    assert!(ok, "{out}");
    let published: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    for p in Partition::ALL {
        let ours: BTreeSet<&str> = p.regions().iter().copied().collect();
        let mut all = BTreeSet::new();
        for file in ["partitions.json", "endpoints.json"] {
            let theirs: BTreeSet<&str> = published[file][p.as_str()]
                .as_array()
                .unwrap_or_else(|| panic!("{file} has no partition {}", p.as_str()))
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            assert!(!theirs.is_empty(), "{file}: {}", p.as_str());
            let missing: Vec<_> = theirs.difference(&ours).collect();
            assert!(
                missing.is_empty(),
                "botocore's {file} has regions of {} the table lacks: {missing:?} (add them to src/domain/region.rs)",
                p.as_str()
            );
            all.extend(theirs);
        }
        let unknown: Vec<_> = ours.difference(&all).collect();
        assert!(
            unknown.is_empty(),
            "the table has regions of {} AWS does not publish: {unknown:?}",
            p.as_str()
        );
    }
}
