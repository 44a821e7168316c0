//! Dependencies point one way: every module of `src/` may use only modules
//! below it in `RANKS` (the table in the README's "How it is built"), and no
//! two files of one module use each other. Read from the source: `use` lines
//! (with `{a, b}` groups), paths written inline in code, `super::` that
//! climbs out of a module, `$crate` in macros, and a file's own child modules;
//! comments and string literals are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom: a unit may use the units after it, never one before it.
/// A unit is a module path; a file belongs to the longest unit its module
/// path starts with (so `automatic::callback` is apart from `automatic`).
const RANKS: &[&str] = &[
    "main",
    "bin",
    "cli",
    "app",
    "api",
    "automatic::callback",
    "recheck",
    "services",
    "organizations",
    "connections",
    "automatic",
    "verify",
    "tenancy",
    "store",
    "policy",
    "catalog",
    "config",
    "domain",
    "iam",
    "clock",
    "ids",
    "telemetry",
    "metrics",
];

/// A use of one module by another: where, what was written, what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Use {
    line: usize,
    written: String,
    target: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    /// `::`
    Path,
}

/// The source with comments, strings and char literals blanked out (newlines
/// kept, so lines still count).
fn blank_literals(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !prev_is_ident(&b, i) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let rest: String = b[j + 1..].iter().collect();
            let end = rest
                .find(&close)
                .map_or(b.len(), |e| j + 1 + rest[..e].chars().count() + close.len());
            for ch in &b[i..end.min(b.len())] {
                out.push(keep(*ch));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(keep(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}'), else a lifetime.
            let lit_end = if next == Some('\\') {
                (i + 3..b.len()).find(|&k| b[k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match lit_end {
                Some(e) => {
                    for _ in i..=e {
                        out.push(' ');
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

fn tokens(clean: &str) -> Vec<(usize, Tok)> {
    let mut out = Vec::new();
    for (n, line) in clean.lines().enumerate() {
        let b: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c.is_alphabetic() || c == '_' || (c == '$' && b.get(i + 1).is_some_and(|c| c.is_alphabetic())) {
                let s = i;
                i += 1;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
                out.push((n + 1, Tok::Ident(b[s..i].iter().collect())));
            } else if c == ':' && b.get(i + 1) == Some(&':') {
                out.push((n + 1, Tok::Path));
                i += 2;
            } else {
                if !c.is_whitespace() {
                    out.push((n + 1, Tok::Punct(c)));
                }
                i += 1;
            }
        }
    }
    out
}

/// A file's module path: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`;
/// the binaries are `main` and `bin::<name>`.
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn ident(t: Option<&(usize, Tok)>) -> Option<&str> {
    match t {
        Some((_, Tok::Ident(s))) => Some(s),
        _ => None,
    }
}

/// Every crate-internal path `src` (the file `rel` under src/) names.
fn uses_in(rel: &str, src: &str) -> Result<Vec<Use>, String> {
    let file_module = module_of(rel);
    let toks = tokens(&blank_literals(src));
    let mut out = Vec::new();
    // Open inline modules, with the brace depth their body starts at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    // Child modules declared per module (`mod x;` and inline `mod x {`).
    let mut children: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut depth = 0usize;
    let current = |inline: &Vec<(String, usize)>| {
        let mut m = file_module.clone();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    // First pass: declared child modules, so `child::x` resolves anywhere in the file.
    {
        let mut inl: Vec<(String, usize)> = Vec::new();
        let mut d = 0usize;
        for (i, (_, t)) in toks.iter().enumerate() {
            match t {
                Tok::Ident(m) if m == "mod" => {
                    if let Some(name) = ident(toks.get(i + 1)) {
                        children.entry(current(&inl)).or_default().insert(name.to_owned());
                        if toks.get(i + 2).map(|t| &t.1) == Some(&Tok::Punct('{')) {
                            inl.push((name.to_owned(), d + 1));
                        }
                    }
                }
                Tok::Punct('{') => d += 1,
                Tok::Punct('}') => {
                    d = d.saturating_sub(1);
                    while inl.last().is_some_and(|(_, at)| *at > d) {
                        inl.pop();
                    }
                }
                _ => {}
            }
        }
    }
    let mut i = 0;
    while i < toks.len() {
        let (line, t) = &toks[i];
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|(_, at)| *at > depth) {
                    inline.pop();
                }
            }
            Tok::Ident(m) if m == "mod" => {
                if let (Some(name), Some((_, Tok::Punct('{')))) = (ident(toks.get(i + 1)), toks.get(i + 2)) {
                    inline.push((name.to_owned(), depth + 1));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(head) => {
                let after_path = i > 0 && toks[i - 1].1 == Tok::Path;
                let starts = !after_path && toks.get(i + 1).map(|t| &t.1) == Some(&Tok::Path);
                let here = current(&inline);
                let base: Option<Vec<String>> = match head.as_str() {
                    "crate" | "$crate" | "account_connect" => Some(Vec::new()),
                    "self" => Some(here.clone()),
                    "super" => Some(here.clone()),
                    h if children.get(&here).is_some_and(|c| c.contains(h)) => Some(here.clone()),
                    _ => None,
                };
                if let (true, Some(mut base)) = (starts, base) {
                    let mut j = i;
                    let mut written = String::new();
                    // Leading super::super::…
                    while ident(toks.get(j)) == Some("super") && toks.get(j + 1).map(|t| &t.1) == Some(&Tok::Path) {
                        if base.pop().is_none() {
                            return Err(format!("src/{rel}:{line}: super:: climbs above the crate root"));
                        }
                        written.push_str("super::");
                        j += 2;
                    }
                    if j == i {
                        let h = ident(toks.get(j)).unwrap();
                        written.push_str(h);
                        written.push_str("::");
                        if !matches!(h, "crate" | "$crate" | "account_connect" | "self") {
                            base.push(h.to_owned());
                        }
                        j += 2;
                    }
                    let end = path_tree(&toks, j, &base, &written, *line, &mut out);
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(out)
}

/// Reads `a::b::{c, d::e}` from `j`, pushing each leaf; returns where it ends.
fn path_tree(
    toks: &[(usize, Tok)],
    mut j: usize,
    base: &[String],
    written: &str,
    line: usize,
    out: &mut Vec<Use>,
) -> usize {
    let mut path = base.to_vec();
    let mut text = written.to_owned();
    loop {
        match toks.get(j).map(|t| &t.1) {
            Some(Tok::Ident(s)) => {
                if s != "self" {
                    path.push(s.clone());
                }
                text.push_str(s);
                j += 1;
                if toks.get(j).map(|t| &t.1) == Some(&Tok::Path) {
                    text.push_str("::");
                    j += 1;
                    continue;
                }
                break;
            }
            Some(Tok::Punct('{')) => {
                j += 1;
                loop {
                    match toks.get(j).map(|t| &t.1) {
                        Some(Tok::Punct('}')) => return j + 1,
                        Some(Tok::Punct(',')) => j += 1,
                        None => return j,
                        _ => {
                            let leaf_line = toks[j].0;
                            j = path_tree(toks, j, &path, &text, leaf_line, out);
                            // Skip `as name`.
                            if ident(toks.get(j)) == Some("as") {
                                j += 2;
                            }
                        }
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                text.push('*');
                j += 1;
                break;
            }
            _ => break,
        }
    }
    out.push(Use {
        line,
        written: text,
        target: path,
    });
    j
}

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

#[test]
fn dependencies_point_down_the_rank_table() {
    let files = source_files();
    assert!(files.len() > 50, "read the sources ({} files)", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "upward or unknown imports:\n{}", found.join("\n"));
}

/// Pairs allowed to use each other: the route table registers the document's
/// handler, which serves the document the table builds (one thing in two
/// files, in the HTTP layer only).
const ALLOWED_FILE_CYCLES: &[&str] = &["src/api/openapi.rs and src/api/routes.rs use each other"];

#[test]
fn no_two_files_of_a_module_use_each_other() {
    let cycles = file_cycles(&source_files());
    let new: Vec<&String> = cycles
        .iter()
        .filter(|c| !ALLOWED_FILE_CYCLES.contains(&c.as_str()))
        .collect();
    assert!(new.is_empty(), "{new:#?}");
    for allowed in ALLOWED_FILE_CYCLES {
        assert!(
            cycles.iter().any(|c| c == allowed),
            "{allowed} no longer holds: drop it from ALLOWED_FILE_CYCLES"
        );
    }
}

#[test]
fn the_readme_lists_the_same_ranks() {
    let readme = std::fs::read_to_string(crate::common::repo_path("README.md")).unwrap();
    let listed: Vec<String> = readme
        .lines()
        .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(listed, RANKS, "the README's rank table and RANKS differ");
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
    // A callback entry in `automatic` may use the services; `automatic` may not use it.
    let entry = violations(&[(
        "automatic/mod.rs".to_owned(),
        "pub mod callback;\npub use callback::Responder;\n".to_owned(),
    )]);
    assert!(
        entry.iter().any(|f| f.contains("automatic to automatic::callback")),
        "{entry:?}"
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
