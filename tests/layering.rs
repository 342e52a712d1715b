//! The import direction inside `src/`, read from the source: `aws/` modules never import their
//! orchestrator, and progress and reports reach the terminal only through `output/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its module path (`aws/nodegroups/mod.rs` is
/// `["aws", "nodegroups"]`).
fn modules(dir: &Path) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src()).unwrap().with_extension("");
            let mut module: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if module.last().is_some_and(|l| l == "mod" || l == "lib") {
                module.pop();
            }
            // Comments may name modules freely; only code imports.
            let code: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.push((module, code));
        }
    }
    out.sort();
    out
}

/// The module paths a file's code names (`crate::a::b`, `super::b`, `super::{b, c}`), resolved
/// against the file's own module path.
fn references(module: &[String], code: &str) -> BTreeSet<Vec<String>> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = BTreeSet::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == ':');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        if !starts_word || !(rest.starts_with("crate::") || rest.starts_with("super::")) {
            i += 1;
            continue;
        }
        let mut base: Vec<String> = Vec::new();
        let mut segments: Vec<String> = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            let word: String = bytes[start..j].iter().collect();
            match word.as_str() {
                "crate" if segments.is_empty() && base.is_empty() => base = vec!["crate".into()],
                "super" if segments.is_empty() => {
                    let from = if base.is_empty() { module.to_vec() } else { base.clone() };
                    base = from[..from.len().saturating_sub(1)].to_vec();
                    if base.is_empty() {
                        base = vec!["crate".into()];
                    }
                }
                "" => break,
                w => segments.push(w.to_string()),
            }
            if bytes.get(j..j + 2) == Some(&[':', ':']) {
                j += 2;
            } else {
                break;
            }
        }
        let root: Vec<String> = base.into_iter().filter(|b| b != "crate").chain(segments).collect();
        // `super::{a, b::c}`: each first-level name is a reference of its own.
        if bytes.get(j) == Some(&'{') {
            let mut depth = 0;
            let mut word = String::new();
            for &c in &bytes[j..] {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 1 && ident(c) {
                    word.push(c);
                } else if !word.is_empty() {
                    let mut r = root.clone();
                    r.push(std::mem::take(&mut word));
                    out.insert(r);
                }
                if depth == 0 {
                    break;
                }
            }
        }
        out.insert(root);
        i = j.max(i + 1);
    }
    out
}

/// Which of `children` (submodules of `parent`) each of them uses.
fn graph(parent: &str, children: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in modules(&src().join(parent)) {
        let Some(from) = module.get(1).filter(|m| children.contains(&m.as_str())) else { continue };
        for r in references(&module, &code) {
            if r.first().map(String::as_str) != Some(parent) {
                continue;
            }
            if let Some(to) = r.get(1).filter(|t| children.contains(&t.as_str()) && *t != from) {
                edges.entry(from.clone()).or_default().insert(to.clone());
            }
        }
    }
    edges
}

/// A cycle in the graph, if there is one (`a -> b -> a`).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_string());
            return Some(c.join(" -> "));
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| {
        done.clear();
        visit(n, edges, &mut Vec::new(), &mut done)
    })
}

#[test]
fn the_reference_reader_resolves_crate_super_and_groups() {
    let module = ["aws".to_string(), "nodegroups".to_string(), "apply".to_string()];
    let refs = references(
        &module,
        "use super::{GroupPlan, api::live};\nuse crate::aws::change::AwsChange;\nlet x = super::super::reconcile::run();",
    );
    let refs: Vec<String> = refs.iter().map(|r| r.join("::")).collect();
    assert!(refs.contains(&"aws::nodegroups::GroupPlan".to_string()), "{refs:?}");
    assert!(refs.contains(&"aws::nodegroups::api".to_string()), "{refs:?}");
    assert!(refs.contains(&"aws::change::AwsChange".to_string()), "{refs:?}");
    assert!(refs.contains(&"aws::reconcile::run".to_string()), "{refs:?}");
    let looped = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycle(&looped).as_deref(), Some("a -> b -> a"));
}

#[test]
fn aws_modules_import_downward_only_and_never_their_orchestrator() {
    let children = ["change", "eks", "nodegroups", "reconcile", "s3", "token"];
    let edges = graph("aws", &children);
    for (from, to) in &edges {
        println!("aws::{from} -> {}", to.iter().map(|t| format!("aws::{t}")).collect::<Vec<_>>().join(", "));
    }
    assert_eq!(cycle(&edges), None, "a cycle inside aws/: {edges:?}");
    for (from, to) in &edges {
        assert!(!to.contains("reconcile"), "aws::{from} imports its orchestrator aws::reconcile");
    }
    assert!(edges.get("change").is_none_or(BTreeSet::is_empty), "aws::change is the bottom: {edges:?}");
    assert!(edges["reconcile"].contains("change") && edges["reconcile"].contains("nodegroups"));
}

#[test]
fn only_output_draws_progress_and_the_progress_trait_imports_nothing() {
    for dir in ["engine", "aws", "smoke"] {
        for (module, code) in modules(&src().join(dir)) {
            let refs = references(&module, &code);
            let name = module.join("::");
            assert!(
                !refs.iter().any(|r| r.first().is_some_and(|f| f == "output" || f == "commands")),
                "{name} imports output/ or commands/, which sit above it"
            );
            assert!(
                !code.contains("indicatif"),
                "{name} draws progress itself instead of through progress::Progress"
            );
        }
    }
    for bottom in ["progress.rs", "tally.rs"] {
        let code = std::fs::read_to_string(src().join(bottom)).unwrap();
        // An empty path is the file's own test module's `use super::*`, seen one level too high.
        let mut refs = references(&[bottom.trim_end_matches(".rs").to_string()], &code);
        refs.retain(|r| !r.is_empty());
        assert!(refs.is_empty(), "{bottom} is at the bottom and imports no module of the crate: {refs:?}");
    }
}

#[test]
fn the_kube_client_is_built_only_in_connect_and_engine_and_aws_never_import_each_other() {
    for (dir, forbidden) in [("engine", ["aws", "connect"]), ("aws", ["engine", "connect"])] {
        for (module, code) in modules(&src().join(dir)) {
            let refs = references(&module, &code);
            let name = module.join("::");
            for above in forbidden {
                assert!(
                    !refs.iter().any(|r| r.first().is_some_and(|f| f == above)),
                    "{name} imports {above}/: the client is built in connect/, above engine/ and aws/"
                );
            }
        }
    }
    for (module, code) in modules(&src()) {
        let name = module.join("::");
        // A second place that builds a client would leave out the throttle, the warnings
        // capture or the EKS token.
        if module.first().is_none_or(|m| m != "connect") {
            assert!(!code.contains("ClientBuilder"), "{name} builds a kube client outside connect/");
        }
    }
    // The leaf every adapter words its errors with imports nothing of the crate.
    let code = std::fs::read_to_string(src().join("error_chain.rs")).unwrap();
    let mut refs = references(&["error_chain".to_string()], &code);
    refs.retain(|r| !r.is_empty());
    assert!(refs.is_empty(), "error_chain.rs is a leaf: {refs:?}");
}
