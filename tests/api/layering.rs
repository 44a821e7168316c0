//! Dependencies point one way: every module of `src/` may use only modules
//! below it in `RANKS` (the rank table in ARCHITECTURE.md's code map), and no
//! two files of one module use each other. Read from the source: `use` lines
//! (with `{a, b}` groups), paths written inline in code, `super::` that
//! climbs out of a module, `$crate` in macros, and a file's own child modules;
//! comments and string literals are skipped. Two jobs have one place each:
//! only `config.rs` reads environment variables, and only the composition
//! root (`app.rs`) loads the AWS SDK's configuration (`ONLY_HERE`).

mod paths;

use paths::{module_of, paths_in, uses_in};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom: a unit may use the units after it, never one before it.
/// A unit is a module path; a file belongs to the longest unit its module
/// path starts with.
const RANKS: &[&str] = &[
    "main",
    "bin",
    "cli",
    "app",
    "api",
    "callback",
    "deploy",
    "recheck",
    "events",
    "views",
    "services",
    "webhooks",
    "organizations",
    "connections",
    "limits",
    "shares",
    "automatic",
    "verify",
    "tenancy",
    "store",
    "policy",
    "catalog",
    "sdk",
    "config",
    "domain",
    "iam",
    "clock",
    "ids",
    "telemetry",
    "metrics",
];

fn unit_of(module: &[String]) -> Option<usize> {
    RANKS
        .iter()
        .enumerate()
        .filter(|(_, u)| {
            let parts: Vec<&str> = u.split("::").collect();
            module.len() >= parts.len() && parts.iter().zip(module).all(|(a, b)| a == b)
        })
        .max_by_key(|(_, u)| u.split("::").count())
        .map(|(i, _)| i)
}

/// Every use in `files` (path under src/, text) that reaches up the table,
/// or names a module the table does not know.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, src) in files {
        let module = module_of(rel);
        if module.is_empty() {
            continue; // lib.rs only declares the modules.
        }
        let Some(from) = unit_of(&module) else {
            found.push(format!(
                "src/{rel}: module {} is not in the rank table",
                module.join("::")
            ));
            continue;
        };
        let uses = match uses_in(rel, src) {
            Ok(u) => u,
            Err(e) => {
                found.push(e);
                continue;
            }
        };
        for u in uses {
            if u.target.is_empty() {
                continue; // The crate root itself (`use crate::*` is not used).
            }
            match unit_of(&u.target) {
                None => found.push(format!(
                    "src/{rel}:{}: `{}` names {}, which is not in the rank table",
                    u.line,
                    u.written,
                    u.target.join("::")
                )),
                Some(to) if to < from => found.push(format!(
                    "src/{rel}:{}: `{}` reaches up from {} to {}: {} may use only modules below it",
                    u.line, u.written, RANKS[from], RANKS[to], RANKS[from]
                )),
                _ => {}
            }
        }
    }
    found
}

/// Files of one module that use each other (through sibling paths; a
/// parent's re-exports are not followed).
fn file_cycles(files: &[(String, String)]) -> Vec<String> {
    let modules: BTreeMap<Vec<String>, &str> = files.iter().map(|(rel, _)| (module_of(rel), rel.as_str())).collect();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (rel, src) in files {
        let me = module_of(rel);
        for u in uses_in(rel, src).unwrap_or_default() {
            let Some((target, to)) = (1..=u.target.len())
                .rev()
                .find_map(|n| modules.get(&u.target[..n]).map(|f| (&u.target[..n], *f)))
            else {
                continue;
            };
            let related = target.starts_with(&me) || me.starts_with(target);
            if to != rel.as_str() && !related {
                edges.entry(rel.as_str()).or_default().insert(to);
            }
        }
    }
    let mut cycles = Vec::new();
    for (a, outs) in &edges {
        for b in outs {
            if a < b && edges.get(b).is_some_and(|o| o.contains(a)) {
                cycles.push(format!("src/{a} and src/{b} use each other"));
            }
        }
    }
    cycles
}

fn source_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let root = crate::common::repo_path("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// A job only some files may do: what it is, the paths that do it (a path
/// or anything under it: `aws_config::profile::…`), and the files (under
/// src/) allowed to.
struct OnlyHere {
    job: &'static str,
    paths: &'static [&'static str],
    files: &'static [&'static str],
}

const ONLY_HERE: &[OnlyHere] = &[
    // Settings come from one place, parsed and checked once; everything
    // else is handed them. (Code under #[cfg(test)] aside: the snapshot
    // test's UPDATE_SNAPSHOTS is the developer's switch, not a setting.)
    OnlyHere {
        job: "reads an environment variable",
        paths: &[
            "std::env::var",
            "std::env::var_os",
            "std::env::vars",
            "std::env::vars_os",
        ],
        files: &["config.rs"],
    },
    // Each partition's configuration is loaded once, by the composition
    // root, and handed down (`sdk::AwsConfigs`): the clients share it.
    OnlyHere {
        job: "loads AWS configuration",
        paths: &[
            "aws_config::defaults",
            "aws_config::load_defaults",
            "aws_config::load_from_env",
            "aws_config::from_env",
            "aws_config::ConfigLoader",
            "aws_config::profile",
        ],
        files: &["app.rs"],
    },
];

/// Every place a file does a job `ONLY_HERE` keeps to other files.
fn done_elsewhere(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, src) in files {
        for (line, path) in paths_in(src) {
            let path = path.trim_start_matches("::");
            for rule in ONLY_HERE {
                let does = rule.paths.iter().any(|p| {
                    path.strip_prefix(p)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
                });
                if does && !rule.files.contains(&rel.as_str()) {
                    found.push(format!(
                        "src/{rel}:{line}: `{path}` {}: only {} may",
                        rule.job,
                        rule.files
                            .iter()
                            .map(|f| format!("src/{f}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }
    found.dedup();
    found
}

#[test]
fn dependencies_point_down_the_rank_table() {
    let files = source_files();
    assert!(files.len() > 50, "read the sources ({} files)", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "upward or unknown imports:\n{}", found.join("\n"));
}

#[test]
fn no_two_files_of_a_module_use_each_other() {
    let cycles = file_cycles(&source_files());
    assert!(cycles.is_empty(), "{cycles:#?}");
}

#[test]
fn only_config_reads_the_environment_and_only_app_loads_aws_configuration() {
    let found = done_elsewhere(&source_files());
    assert!(
        found.is_empty(),
        "jobs done outside their one place:\n{}",
        found.join("\n")
    );
}

/// The module column of the rank table in ARCHITECTURE.md's code map, top
/// to bottom: its rows are the only lines there that start with `| ` and a
/// digit.
fn architecture_ranks() -> Vec<String> {
    let doc = std::fs::read_to_string(crate::common::repo_path("ARCHITECTURE.md")).unwrap();
    doc.lines()
        .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect()
}

/// The top-level modules of `src/`: each file beside `lib.rs` (`main.rs`
/// and every `mod` of the library) and each directory (`bin` among them).
fn top_level_modules() -> BTreeSet<String> {
    std::fs::read_dir(crate::common::repo_path("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            if p.is_dir() {
                Some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (stem != "lib").then(|| stem.to_owned())
            }
        })
        .collect()
}

#[test]
fn architecture_lists_the_same_ranks() {
    assert_eq!(
        architecture_ranks(),
        RANKS,
        "ARCHITECTURE.md's rank table and RANKS differ"
    );
}

/// A module added to `src/` without its line in ARCHITECTURE.md's code map
/// fails here, whatever RANKS says.
#[test]
fn architecture_names_every_top_level_module() {
    let modules = top_level_modules();
    for known in ["main", "bin", "api", "domain", "store"] {
        assert!(modules.contains(known), "{known} not found among {modules:?}");
    }
    let listed = architecture_ranks();
    let missing: Vec<&String> = modules.iter().filter(|m| !listed.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "top-level modules of src/ without a row in ARCHITECTURE.md's code map: {missing:?}"
    );
}

#[test]
fn upward_imports_are_caught_in_every_form() {
    let sample = r#"
use crate::{domain::Connection, api::ApiError};
use super::super::connections::ServiceError;
use super::dynamo::{self, DynamoStore};
fn f() {
    let _ = crate::app::build;
    // crate::api::only_in_a_comment
    let _ = "crate::api::only_in_a_string";
    let _ = 'c';
}
macro_rules! m { () => { $crate::services::Services }; }
mod inner {
    use super::super::super::tenancy::Tenant;
    fn g<'a>(x: &'a str) -> &'a str { x }
}
mod child;
fn h() { child::x(); }
"#;
    let files = vec![("store/sample.rs".to_owned(), sample.to_owned())];
    let found = violations(&files);
    let expect = [
        ("store/sample.rs:2: `crate::api::ApiError`", "store to api"),
        (
            "store/sample.rs:3: `super::super::connections::ServiceError`",
            "store to connections",
        ),
        ("store/sample.rs:6: `crate::app::build`", "store to app"),
        ("store/sample.rs:11: `$crate::services::Services`", "store to services"),
        (
            "store/sample.rs:13: `super::super::super::tenancy::Tenant`",
            "store to tenancy",
        ),
    ];
    for (at, what) in expect {
        assert!(
            found.iter().any(|f| f.contains(at) && f.contains(what)),
            "missed {at} ({what}) in {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "only those: {found:#?}");
    // Downward and same-unit paths resolve and pass.
    let uses = uses_in("store/sample.rs", sample).unwrap();
    let targets: Vec<String> = uses.iter().map(|u| u.target.join("::")).collect();
    for t in [
        "domain::Connection",
        "store::dynamo",
        "store::dynamo::DynamoStore",
        "store::sample::child::x",
    ] {
        assert!(targets.iter().any(|x| x == t), "{t} not in {targets:?}");
    }
    // A module the table does not know is an error too.
    let unknown = violations(&[("newthing.rs".to_owned(), String::new())]);
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    // A service may not use the callback entry point.
    let entry = violations(&[(
        "automatic/mod.rs".to_owned(),
        "pub use crate::callback::Responder;\n".to_owned(),
    )]);
    assert!(entry.iter().any(|f| f.contains("automatic to callback")), "{entry:?}");
}

/// Circles among top-level modules (`a` uses `b`, which uses `a`, through
/// any files and any path), each named by its modules.
fn module_circles(files: &[(String, String)]) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, src) in files {
        let Some(me) = module_of(rel).first().cloned() else {
            continue;
        };
        for u in uses_in(rel, src).unwrap_or_default() {
            if let Some(to) = u.target.first().filter(|t| **t != me) {
                edges.entry(me.clone()).or_default().insert(to.clone());
            }
        }
    }
    // A module is in a circle when it reaches itself.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = edges.get(from).into_iter().flatten().cloned().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
        seen
    };
    let mut circles = BTreeSet::new();
    for m in edges.keys() {
        let from_m = reach(m);
        if from_m.contains(m) {
            let members: BTreeSet<String> = from_m
                .iter()
                .filter(|n| reach(n).contains(m))
                .cloned()
                .chain([m.clone()])
                .collect();
            circles.insert(members.into_iter().collect::<Vec<_>>().join(" -> "));
        }
    }
    circles.into_iter().collect()
}

#[test]
fn no_circle_among_top_level_modules() {
    let circles = module_circles(&source_files());
    assert!(circles.is_empty(), "top-level modules in a circle: {circles:#?}");
}

#[test]
fn module_circles_are_caught() {
    // The shape the callback had inside `automatic`: its files may use the
    // services, which use `automatic`: a circle at module level.
    let files = vec![
        (
            "automatic/mod.rs".to_owned(),
            "pub mod callback;\npub mod token;\n".to_owned(),
        ),
        ("automatic/token.rs".to_owned(), "pub struct T;\n".to_owned()),
        (
            "automatic/callback.rs".to_owned(),
            "use crate::services::Services;\n".to_owned(),
        ),
        (
            "services.rs".to_owned(),
            "use crate::organizations::OrganizationService;\n".to_owned(),
        ),
        (
            "organizations/mod.rs".to_owned(),
            "use crate::automatic::token::T;\n".to_owned(),
        ),
        ("domain/mod.rs".to_owned(), "pub struct D;\n".to_owned()),
    ];
    assert_eq!(
        module_circles(&files),
        vec!["automatic -> organizations -> services".to_owned()]
    );
}

#[test]
fn sibling_cycles_are_caught() {
    let files = vec![
        ("iam/mod.rs".to_owned(), "mod a;\nmod b;\npub use a::X;\n".to_owned()),
        ("iam/a.rs".to_owned(), "use super::b::Y;\npub struct X;\n".to_owned()),
        ("iam/b.rs".to_owned(), "pub struct Y(crate::iam::a::X);\n".to_owned()),
    ];
    let cycles = file_cycles(&files);
    assert_eq!(cycles, vec!["src/iam/a.rs and src/iam/b.rs use each other".to_owned()]);
}

#[test]
fn environment_reads_and_configuration_loads_are_caught_in_every_form() {
    let sample = r#"
use std::env;
use std::env::var as read;
use aws_config::{self as sdk_config, defaults, BehaviorVersion};
fn f() {
    let _ = std::env::var("A");
    let _ = env::var_os("B");
    let _ = read("C");
    let _ = ::std::env::vars();
    let _ = aws_config::load_from_env();
    let _ = defaults(BehaviorVersion::latest());
    let _ = sdk_config::from_env();
    // std::env::var("only in a comment"), aws_config::defaults
    let _ = "aws_config::load_from_env() only in a string";
    let _ = env!("CARGO_MANIFEST_DIR");
    let _ = std::env::args();
}
mod glob {
    use std::env::*;
    fn g() { let _ = var_os("D"); }
}
#[cfg(test)]
mod tests {
    fn t() { let _ = std::env::var("UPDATE_SNAPSHOTS"); let _ = aws_config::load_from_env(); }
}
"#;
    let reads = [
        "3: `std::env::var`",
        "6: `std::env::var`",
        "7: `std::env::var_os`",
        "8: `std::env::var`",
        "9: `std::env::vars`",
        "20: `std::env::var_os`",
    ];
    let loads = [
        "4: `aws_config::defaults`",
        "10: `aws_config::load_from_env`",
        "11: `aws_config::defaults`",
        "12: `aws_config::from_env`",
    ];
    let check = |rel: &str, expect: &[&str]| {
        let found = done_elsewhere(&[(rel.to_owned(), sample.to_owned())]);
        for at in expect {
            let at = format!("src/{rel}:{at}");
            assert!(found.iter().any(|f| f.starts_with(&at)), "missed {at} in {found:#?}");
        }
        assert_eq!(found.len(), expect.len(), "only those: {found:#?}");
        found
    };
    let both: Vec<&str> = reads.iter().chain(&loads).copied().collect();
    let found = check("store/sample.rs", &both);
    assert!(
        found
            .iter()
            .any(|f| f.contains("reads an environment variable: only src/config.rs may")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.contains("loads AWS configuration: only src/app.rs may")),
        "{found:#?}"
    );
    // Each file is allowed its own job, and only that one.
    check("config.rs", &loads);
    check("app.rs", &reads);
    // A path only shares a prefix with them: not a read.
    let near = "use std::env::*;\nfn f() { let variable = 1; let _ = std::env::args(); let _ = aws_config::SdkConfig::builder(); }\n";
    assert_eq!(
        done_elsewhere(&[("store/near.rs".to_owned(), near.to_owned())]),
        Vec::<String>::new()
    );
}
