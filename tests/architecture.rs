//! The module dependency graph of `src/` and its cycles, as a ratchet: a new cycle fails, and
//! so does a listed one that is gone, so the list of known cycles can only shrink.
//!
//! Nodes are the top-level modules, and the files and folders of `engine/`, `aws/` and `env/`
//! (each its own node, `mod.rs` being the folder's; `env/model/` and `aws/s3/` are one node
//! each). Edges are the `crate::` and `super::` paths a file names outside its tests, and in a
//! `mod.rs` the paths through its own submodules. `just deps` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Folders whose files are nodes of their own.
const SPLIT: [&str; 3] = ["engine", "aws", "env"];

/// Cycles that still exist, each a strongly connected set of modules, with why it is still
/// there. Remove an entry when its cycle is gone (the test says so).
const KNOWN_CYCLES: &[(&[&str], &str)] = &[];

/// Rust source of a file without comments and without its `#[cfg(test)] mod` (which comes last).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            // `://` is a URL in a string, not a comment.
            Some(at) if !line[..at].ends_with(':') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifier paths after each occurrence of `prefix` where it starts a path
/// (`crate::env::model::X` gives `["env", "model", "X"]`); a group gives one path per item
/// (`crate::env::{names, Sources}` gives `["env", "names"]` and `["env", "Sources"]`).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        out.extend(path(&code[at + prefix.len()..]));
    }
    out
}

/// The path (or the paths of a group) at the start of `s`.
fn path(mut s: &str) -> Vec<Vec<&str>> {
    let mut segments = Vec::new();
    loop {
        if let Some(group) = s.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            return group[..end]
                .split(',')
                .map(|item| {
                    let mut p = segments.clone();
                    p.extend(path(item.trim()).into_iter().next().unwrap_or_default());
                    p
                })
                .collect();
        }
        let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
        if end == 0 {
            break;
        }
        segments.push(&s[..end]);
        match s[end..].strip_prefix("::") {
            Some(next) => s = next,
            None => break,
        }
    }
    vec![segments]
}

/// The node a source file belongs to.
fn node_of(rel: &Path) -> String {
    let parts: Vec<String> =
        rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [file] => file.clone(),
        [dir, file] if SPLIT.contains(&dir.as_str()) && file != "mod" => format!("{dir}::{file}"),
        // A folder inside a split folder (env/model/, aws/s3/) is one node, as a file there is.
        [dir, folder, _, ..] if SPLIT.contains(&dir.as_str()) => format!("{dir}::{folder}"),
        [dir, ..] => dir.clone(),
        [] => unreachable!("a file has a name"),
    }
}

/// The module graph: node -> the nodes it imports.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let rel = |p: &Path| p.strip_prefix(src).unwrap().to_path_buf();
    let nodes: BTreeSet<String> = files.iter().map(|f| node_of(&rel(f))).collect();
    // `crate::Error` and other re-exports at the crate root name the module they come from.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let reexports: BTreeMap<&str, &str> =
        paths_after(&lib, "pub use ").into_iter().filter_map(|p| Some((*p.last()?, *p.first()?))).collect();
    // A path's target: the folder's file when it names one, else the module itself.
    let target = |segments: &[&str]| -> Option<String> {
        let first = *segments.first()?;
        let first = if nodes.contains(first) { first } else { reexports.get(first)? };
        match segments.get(1) {
            Some(file) if nodes.contains(&format!("{first}::{file}")) => Some(format!("{first}::{file}")),
            _ => Some(first.to_string()),
        }
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = rel(file);
        let node = node_of(&rel);
        let text = code(&std::fs::read_to_string(file).unwrap());
        let parent: Vec<String> =
            rel.parent().unwrap().iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let is_mod = rel.file_name().is_some_and(|n| n == "mod.rs" || rel.parent() == Some(Path::new("")));
        let mut targets: Vec<String> =
            paths_after(&text, "crate::").iter().filter_map(|p| target(p)).collect();
        for p in paths_after(&text, "super::") {
            // `super::` of a folder's file is the folder; of a `mod.rs`, the crate root.
            let mut full: Vec<&str> =
                if is_mod { Vec::new() } else { parent.iter().map(String::as_str).collect() };
            full.extend(p);
            targets.extend(target(&full));
        }
        if rel.file_name().is_some_and(|n| n == "mod.rs") {
            let dir = &parent[0];
            for line in text.lines().filter(|l| !l.trim_start().starts_with("mod ") && !l.contains(" mod ")) {
                for (at, _) in line.match_indices("::") {
                    let start =
                        line[..at].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
                    let child = format!("{dir}::{}", &line[start..at]);
                    if start < at && nodes.contains(&child) && !line[..start].ends_with("::") {
                        targets.push(child);
                    }
                }
            }
        }
        let deps = graph.entry(node.clone()).or_default();
        deps.extend(targets.into_iter().filter(|t| *t != node));
    }
    graph
}

/// The strongly connected sets of more than one node (Tarjan's algorithm): the cycles.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// The shortest cycle through `from` inside `component`, as `a -> b -> a`, to name one concretely.
fn shortest_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    component: &BTreeSet<String>,
    from: &str,
) -> String {
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten().filter(|w| component.contains(*w)) {
            if w == from {
                let mut path = vec![from, v];
                let mut at = v;
                while at != from {
                    at = previous[at];
                    path.push(at);
                }
                path.reverse();
                return path.join(" -> ");
            }
            if !previous.contains_key(w.as_str()) {
                previous.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    unreachable!("a node of a strongly connected set lies on a cycle")
}

fn describe(graph: &BTreeMap<String, BTreeSet<String>>, component: &BTreeSet<String>) -> String {
    let members = component.iter().cloned().collect::<Vec<_>>().join(", ");
    let examples: Vec<String> =
        component.iter().map(|n| format!("    {}", shortest_cycle(graph, component, n))).collect();
    format!("  {{{members}}}\n{}", examples.join("\n"))
}

#[test]
fn module_dependencies_have_no_cycle_beyond_the_known_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let mut listing = String::from("src/ module dependencies (module -> modules it imports):\n");
    for (node, deps) in &graph {
        listing.push_str(&format!("  {node} -> {}\n", deps.iter().cloned().collect::<Vec<_>>().join(", ")));
    }
    let found = cycles(&graph);
    listing.push_str(&format!("cycles: {}\n", found.len()));
    for c in &found {
        listing.push_str(&describe(&graph, c));
        listing.push('\n');
    }
    println!("{listing}");

    let known: Vec<BTreeSet<String>> =
        KNOWN_CYCLES.iter().map(|(nodes, _)| nodes.iter().map(|n| n.to_string()).collect()).collect();
    let new: Vec<String> = found.iter().filter(|c| !known.contains(c)).map(|c| describe(&graph, c)).collect();
    let gone: Vec<String> = known
        .iter()
        .filter(|k| !found.contains(k))
        .map(|k| format!("  {{{}}}", k.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "the module cycles changed.\nNew cycles (remove them; list one in KNOWN_CYCLES only with the reason it must stay):\n{}\n\
         Listed cycles that no longer exist as listed (update KNOWN_CYCLES in tests/architecture.rs: it only shrinks):\n{}\n",
        new.join("\n"),
        gone.join("\n")
    );
}

#[test]
fn the_dependency_check_finds_a_cycle_and_names_it() {
    let g: BTreeMap<String, BTreeSet<String>> =
        [("a", &["b"][..]), ("b", &["c"]), ("c", &["a", "d"]), ("d", &[])]
            .into_iter()
            .map(|(n, deps)| (n.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect();
    let found = cycles(&g);
    assert_eq!(found, [BTreeSet::from(["a".to_string(), "b".into(), "c".into()])]);
    assert_eq!(shortest_cycle(&g, &found[0], "a"), "a -> b -> c -> a");
}

#[test]
fn the_dependency_check_reads_crate_and_super_paths_outside_tests() {
    let text = "use crate::env::model::X; // crate::yaml\nuse super::cluster;\nlet u = \"http://crate::no\";\n#[cfg(test)]\nmod tests {\n    use crate::jobs;\n}\n";
    let code = code(text);
    assert_eq!(paths_after(&code, "crate::"), [vec!["env", "model", "X"], vec!["no"]]);
    assert_eq!(paths_after(&code, "super::"), [vec!["cluster"]]);
    assert_eq!(
        paths_after("use crate::env::{names, model::X};", "crate::"),
        [vec!["env", "names"], vec!["env", "model", "X"]]
    );
    assert_eq!(node_of(Path::new("engine/run.rs")), "engine::run");
    assert_eq!(node_of(Path::new("commands/lifecycle.rs")), "commands");
    assert_eq!(node_of(Path::new("env/mod.rs")), "env");
}
