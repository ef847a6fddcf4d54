//! The house's floors, held: every module of `src/` has a floor, and an import may only
//! go to a lower floor (or stay in its own folder). Inside a folder, a file may use its
//! siblings but not its folder's `mod.rs` (the façade that re-exports them), and
//! siblings never import each other in a circle. The order is written in
//! ARCHITECTURE.md ("Floors, lowest first"), and this test keeps the two the same.
//!
//! It reads the code as text: `crate::x` paths and `super::x` paths outside comments
//! and `#[cfg(test)]` modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first; `|` separates leaves, infrastructure, capabilities, the HTTP edge and
/// the entry points.
const FLOORS: &str = "time, json, redact, names, config, events | redis, prom, breaker, ai, store | supervisor, cameras, pipeline, fleet, health, storage, perf, quiet, alerts, actions, coverage, notify, ws | state, api | service, lib, main";

fn floors() -> BTreeMap<String, usize> {
    FLOORS
        .split(['|', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, m)| (m.to_string(), i))
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments, string contents and its test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `prefix::name` in `code` (the first segment after the prefix), groups
/// included: `super::{a, b::c}` names `a` and `b`, as `use super::a;` would.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let ident_end = |t: &str| {
        t.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(t.len())
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // The group's own items, to its closing brace (nested groups skipped).
            let mut depth = 0usize;
            let mut start = 0usize;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        push_item(&group[start..j], &mut out, ident_end);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push_item(&group[start..j], &mut out, ident_end);
                        start = j + 1;
                    }
                    _ => {}
                }
            }
            continue;
        }
        let end = ident_end(rest);
        if end > 0 {
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// The first name of one item of a `use` group (`b::c as d` → `b`; `self` is the
/// module itself, not a sibling).
fn push_item(item: &str, out: &mut Vec<String>, ident_end: impl Fn(&str) -> usize) {
    let item = item.trim();
    let end = ident_end(item);
    if end > 0 && &item[..end] != "self" {
        out.push(item[..end].to_string());
    }
}

#[test]
fn a_use_group_names_every_module_it_reaches() {
    let code =
        "use super::{alpha, beta::Thing, gamma::{x, y} as z, self};\nuse crate::{one, two::Z};";
    assert_eq!(paths_after(code, "super::"), ["alpha", "beta", "gamma"]);
    assert_eq!(paths_after(code, "crate::"), ["one", "two"]);
}

/// The top-level module a file of `src/` belongs to.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

#[test]
fn architecture_md_states_these_floors() {
    let arch =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let line = arch
        .lines()
        .find_map(|l| l.split_once("Floors, lowest first: ").map(|(_, r)| r))
        .expect("a line 'Floors, lowest first: …' in ARCHITECTURE.md");
    assert_eq!(line.trim().trim_matches('`').trim_end_matches('.'), FLOORS);
}

#[test]
fn every_module_has_a_floor_and_imports_only_go_down() {
    let floors = floors();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    for file in &files {
        if file.extension().is_some_and(|e| e != "rs") {
            continue;
        }
        let me = module_of(file);
        let Some(&mine) = floors.get(&me) else {
            panic!(
                "{me} (from {}) has no floor in FLOORS and ARCHITECTURE.md",
                file.display()
            );
        };
        let code = code(file);
        for target in paths_after(&code, "crate::")
            .into_iter()
            .collect::<BTreeSet<_>>()
        {
            if target == me {
                continue;
            }
            match floors.get(&target) {
                Some(&theirs) if theirs < mine => {}
                Some(_) => upward.push(format!("{} imports crate::{target}", file.display())),
                None => {}
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run back up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn files_use_their_siblings_not_their_facade_and_never_in_a_circle() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut facade = Vec::new();
    // sibling edges: dir -> (from file stem -> to stems)
    let mut edges: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let dir = file.parent().expect("dir").to_path_buf();
        let stem = file
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        // A folder's `mod.rs` belongs to the folder above; its `super` is that folder.
        let (dir, stem) = if stem == "mod" {
            let up = dir.parent().expect("parent").to_path_buf();
            let name = dir.file_name().expect("name").to_string_lossy().to_string();
            (up, name)
        } else {
            (dir, stem)
        };
        if dir == src() {
            continue; // top-level files: the floors test covers them
        }
        let siblings: BTreeSet<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| {
                e.path()
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .to_string()
            })
            .filter(|s| s != "mod")
            .collect();
        for name in paths_after(&code(file), "super::") {
            if name == "super" {
                continue;
            }
            if siblings.contains(&name) {
                edges
                    .entry(dir.clone())
                    .or_default()
                    .entry(stem.clone())
                    .or_default()
                    .insert(name.to_string());
            } else {
                facade.push(format!(
                    "{} uses super::{name} from its folder's mod.rs",
                    file.display()
                ));
            }
        }
    }
    facade.sort();
    facade.dedup();
    assert!(
        facade.is_empty(),
        "files importing their façade:\n{}",
        facade.join("\n")
    );
    for (dir, graph) in &edges {
        // Depth-first search for a back edge.
        fn visit(
            n: &str,
            g: &BTreeMap<String, BTreeSet<String>>,
            on_path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(i) = on_path.iter().position(|x| x == n) {
                return Some(on_path[i..].to_vec());
            }
            if done.contains(n) {
                return None;
            }
            on_path.push(n.to_string());
            for m in g.get(n).into_iter().flatten() {
                if let Some(c) = visit(m, g, on_path, done) {
                    return Some(c);
                }
            }
            on_path.pop();
            done.insert(n.to_string());
            None
        }
        let mut done = BTreeSet::new();
        for n in graph.keys() {
            if let Some(circle) = visit(n, graph, &mut Vec::new(), &mut done) {
                panic!("a circle in {}: {}", dir.display(), circle.join(" -> "));
            }
        }
    }
}

/// A file holds one concern: none under `src/` grows past 600 lines (split it by
/// concern, as `queue/` and `supervisor/` are). The status page's assets are not Rust.
#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(p).expect("read").lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over 600 lines:\n{}",
        long.join("\n")
    );
}
