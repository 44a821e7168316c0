//! Reading a Rust file's crate-internal paths without a parser: comments and
//! literals blanked, tokens, inline modules tracked by brace depth, `use`
//! trees expanded, and `crate::`, `$crate::`, `account_connect::`, `self::`,
//! `super::` and the file's own child modules resolved to module paths.

use std::collections::{BTreeMap, BTreeSet};

/// A use of one module by another: where, what was written, what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub line: usize,
    pub written: String,
    pub target: Vec<String>,
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
pub fn module_of(rel: &str) -> Vec<String> {
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
pub fn uses_in(rel: &str, src: &str) -> Result<Vec<Use>, String> {
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

/// The tokens less every item under `#[cfg(test)]` (its attributes, then
/// up to its `;` or through its `{ … }` body).
fn without_test_items(toks: Vec<(usize, Tok)>) -> Vec<(usize, Tok)> {
    let is = |i: usize, want: &[Tok]| {
        want.iter()
            .enumerate()
            .all(|(k, w)| toks.get(i + k).map(|t| &t.1) == Some(w))
    };
    let cfg_test = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !is(i, &cfg_test) {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        i += cfg_test.len();
        // Further attributes of the same item.
        while is(i, &[Tok::Punct('#'), Tok::Punct('[')]) {
            let mut depth = 0;
            while i < toks.len() {
                match toks[i].1 {
                    Tok::Punct('[') => depth += 1,
                    Tok::Punct(']') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // The item: to its `;`, or through its braced body.
        let mut depth = 0i32;
        while i < toks.len() {
            match toks[i].1 {
                Tok::Punct('(') | Tok::Punct('[') => depth += 1,
                Tok::Punct(')') | Tok::Punct(']') => depth -= 1,
                Tok::Punct(';') if depth == 0 => {
                    i += 1;
                    break;
                }
                Tok::Punct('{') if depth == 0 => {
                    let mut braces = 0;
                    while i < toks.len() {
                        match toks[i].1 {
                            Tok::Punct('{') => braces += 1,
                            Tok::Punct('}') => {
                                braces -= 1;
                                if braces == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// A `use` tree's leaves from `j`: (line, path, the name it binds).
fn use_leaves(
    toks: &[(usize, Tok)],
    mut j: usize,
    prefix: &[String],
    out: &mut Vec<(usize, Vec<String>, String)>,
) -> usize {
    let mut path = prefix.to_vec();
    loop {
        let Some((line, t)) = toks.get(j) else { return j };
        match t {
            Tok::Path => j += 1,
            Tok::Ident(s) => {
                if s != "self" {
                    path.push(s.clone());
                }
                j += 1;
                if toks.get(j).map(|t| &t.1) == Some(&Tok::Path) {
                    j += 1;
                    continue;
                }
                let mut name = path.last().cloned().unwrap_or_default();
                if ident(toks.get(j)) == Some("as") {
                    name = ident(toks.get(j + 1)).unwrap_or("_").to_owned();
                    j += 2;
                }
                out.push((*line, path, name));
                return j;
            }
            Tok::Punct('{') => {
                j += 1;
                loop {
                    match toks.get(j).map(|t| &t.1) {
                        Some(Tok::Punct('}')) => return j + 1,
                        Some(Tok::Punct(',')) => j += 1,
                        None => return j,
                        _ => j = use_leaves(toks, j, &path, out),
                    }
                }
            }
            Tok::Punct('*') => {
                path.push("*".into());
                out.push((*line, path, "*".into()));
                return j + 1;
            }
            _ => return j,
        }
    }
}

/// Every path `src` writes outside `#[cfg(test)]` items (`a::b::c`, and
/// each leaf of a `use` tree), with its line, resolved through the file's
/// imports: after `use std::env;`, `env::var(…)` is `std::env::var`, as is
/// `var(…)` after `use std::env::var` (or `as v`, then `v(…)`) or
/// `use std::env::*`. Imports count for the whole file, whatever block
/// they are in.
pub fn paths_in(src: &str) -> Vec<(usize, String)> {
    let toks = without_test_items(tokens(&blank_literals(src)));
    let mut imports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut globs: Vec<Vec<String>> = Vec::new();
    let mut written: Vec<(usize, Vec<String>)> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (line, t) = &toks[i];
        if let Tok::Ident(head) = t {
            if head == "use" {
                let mut leaves = Vec::new();
                i = use_leaves(&toks, i + 1, &[], &mut leaves);
                for (line, mut path, name) in leaves {
                    out.push((line, path.join("::")));
                    if name == "*" {
                        path.pop();
                        globs.push(path);
                    } else {
                        imports.insert(name, path);
                    }
                }
                continue;
            }
            // A path starts here unless `::` joins it to what is before
            // (a leading `::` starts one: `::std::env::var`).
            let joined =
                i >= 2 && toks[i - 1].1 == Tok::Path && matches!(toks[i - 2].1, Tok::Ident(_) | Tok::Punct('>'));
            if !joined {
                let mut path = vec![head.clone()];
                let mut j = i + 1;
                while toks.get(j).map(|t| &t.1) == Some(&Tok::Path) {
                    match ident(toks.get(j + 1)) {
                        Some(s) => path.push(s.to_owned()),
                        None => break,
                    }
                    j += 2;
                }
                written.push((*line, path));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    for (line, path) in written {
        let rest = &path[1..];
        if let Some(full) = imports.get(&path[0]) {
            out.push((line, full.iter().chain(rest).cloned().collect::<Vec<_>>().join("::")));
        } else if path.len() > 1 {
            out.push((line, path.join("::")));
        }
        if !imports.contains_key(&path[0]) {
            for g in &globs {
                out.push((line, g.iter().chain(&path).cloned().collect::<Vec<_>>().join("::")));
            }
        }
    }
    out.sort();
    out
}
