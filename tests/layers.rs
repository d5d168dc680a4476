//! The crate's modules import each other without a cycle: every file of `exporter/src` is a node,
//! every path it names (`use crate::…`, `super::…`, `self::…`, a child module's `child::…`) an
//! edge to the file of the longest module prefix, and no strongly connected component may hold
//! more than one file. Test modules (`#[cfg(test)]` and below) are left out: test code may reach
//! anywhere. The layers docs/design.md draws are checked too: a lower layer never names a higher.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["sources", "engine", "tiers"]`) and the file it lives in.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    /// Names of child modules the file declares (`mod x;`), which it can name bare.
    children: BTreeSet<String>,
    /// The file's text without comments and test modules.
    code: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source folder")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code without line comments, strings and everything from the first `#[cfg(test)]` on.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = String::new();
    for line in text.lines() {
        let mut kept = String::new();
        let mut in_string = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_string {
                if c == '\\' {
                    chars.next();
                } else if c == '"' {
                    in_string = false;
                }
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' {
                in_string = true;
                continue;
            }
            kept.push(c);
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

fn modules() -> Vec<Module> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .filter(|file| !file.ends_with("main.rs") || file.parent() != Some(root.as_path()))
        .map(|file| {
            let relative = file.strip_prefix(&root).expect("under src");
            let mut path: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
                path.pop();
            }
            let text = std::fs::read_to_string(&file).expect("readable source");
            let code = code_of(&text);
            let children = code
                .lines()
                .filter_map(|line| {
                    let line = line
                        .trim()
                        .trim_start_matches("pub ")
                        .trim_start_matches("pub(crate) ");
                    line.strip_prefix("mod ")?.strip_suffix(';').map(str::to_string)
                })
                .collect();
            Module {
                path,
                file,
                children,
                code,
            }
        })
        .collect()
}

/// Every path a `use` tree names, braces expanded: `a::{b, c::{d, e}}` → a::b, a::c::d, a::c::e.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|part| expand_use(&format!("{prefix}{part}")))
        .collect()
}

/// The paths a file names: its `use` trees expanded, and every inline `crate::`/`super::`/
/// `self::`/`child::` path.
fn named_paths(module: &Module) -> Vec<String> {
    let mut paths = Vec::new();
    let code = &module.code;
    let mut rest = code.as_str();
    while let Some(at) = rest.find("use ") {
        let boundary = rest[..at]
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let tail = &rest[at + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        if boundary {
            paths.extend(expand_use(&tail[..end]));
        }
        rest = &tail[end.min(tail.len())..];
    }
    let bytes = code.as_bytes();
    let starts: Vec<&str> = ["crate", "super", "self"]
        .into_iter()
        .chain(module.children.iter().map(String::as_str))
        .collect();
    for start in starts {
        let needle = format!("{start}::");
        let mut from = 0;
        while let Some(found) = code[from..].find(&needle) {
            let at = from + found;
            from = at + needle.len();
            let before = at.checked_sub(1).map(|i| bytes[i] as char);
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            // `a::{b, c}` and `a::*` are `use` trees, expanded above.
            if !code[at..end].ends_with("::") {
                paths.push(code[at..end].to_string());
            }
        }
    }
    paths
}

/// The module a path names from `module`, as an index into `all`: the longest prefix that is a
/// module of the crate.
fn resolve(path: &str, module: &Module, all: &BTreeMap<Vec<String>, usize>) -> Option<usize> {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, rest): (Vec<String>, &[&str]) = match segments.first()? {
        &"crate" => (Vec::new(), &segments[1..]),
        &"self" => (module.path.clone(), &segments[1..]),
        &"super" => {
            let mut base = module.path.clone();
            let mut rest = &segments[..];
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        first if module.children.contains(*first) => (module.path.clone(), &segments[..]),
        _ => return None,
    };
    let mut found = all.get(&base).copied();
    for segment in rest {
        base.push(segment.to_string());
        match all.get(&base) {
            Some(index) => found = Some(*index),
            None => break,
        }
    }
    found
}

fn edges(modules: &[Module]) -> Vec<BTreeSet<usize>> {
    let index: BTreeMap<Vec<String>, usize> = modules
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path.clone(), i))
        .collect();
    modules
        .iter()
        .enumerate()
        .map(|(i, module)| {
            named_paths(module)
                .iter()
                .filter_map(|path| resolve(path, module, &index))
                .filter(|target| *target != i)
                .collect()
        })
        .collect()
}

/// Tarjan's strongly connected components of more than one node.
fn cycles(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    fn visit(state: &mut State, node: usize) {
        state.index[node] = Some(state.next);
        state.low[node] = state.next;
        state.next += 1;
        state.stack.push(node);
        state.on_stack[node] = true;
        for &next in state.edges[node].iter() {
            match state.index[next] {
                None => {
                    visit(state, next);
                    state.low[node] = state.low[node].min(state.low[next]);
                }
                Some(index) if state.on_stack[next] => state.low[node] = state.low[node].min(index),
                Some(_) => {}
            }
        }
        if Some(state.low[node]) == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack[top] = false;
                component.push(top);
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                state.found.push(component);
            }
        }
    }
    let n = edges.len();
    let mut state = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in 0..n {
        if state.index[node].is_none() {
            visit(&mut state, node);
        }
    }
    state.found
}

fn name(module: &Module) -> String {
    module
        .file
        .strip_prefix(src())
        .unwrap_or(&module.file)
        .display()
        .to_string()
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let modules = modules();
    assert!(modules.len() > 50, "found only {} files", modules.len());
    let edges = edges(&modules);
    // Each cycle as the edges inside it, so the one to cut can be chosen.
    let found: Vec<String> = cycles(&edges)
        .into_iter()
        .map(|component| {
            let mut lines: Vec<String> = component
                .iter()
                .flat_map(|&from| {
                    edges[from]
                        .iter()
                        .filter(|to| component.contains(to))
                        .map(move |&to| (from, to))
                })
                .map(|(from, to)| format!("  {} → {}", name(&modules[from]), name(&modules[to])))
                .collect();
            lines.sort();
            lines.join("\n")
        })
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between modules (each block one set of files that reach each other):\n{}",
        found.join("\n\n")
    );
}

/// The layers of docs/design.md, lowest first: a module names only its own layer and lower ones.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["yaml", "units", "runtime", "store", "address"]),
    ("catalog", &["catalog"]),
    ("config", &["config"]),
    ("collection", &["sources", "probes"]),
    ("outputs", &["rules", "dashboards", "docs", "mixin", "server"]),
    ("cli", &["cli", "lib", "fuzzing"]),
];

fn layer_of(module: &Module) -> Option<usize> {
    let top = module.path.first().map_or("lib", String::as_str);
    LAYERS.iter().position(|(_, tops)| tops.contains(&top))
}

#[test]
fn a_lower_layer_never_names_a_higher_one() {
    let modules = modules();
    let edges = edges(&modules);
    let mut wrong = Vec::new();
    for (from, targets) in edges.iter().enumerate() {
        let Some(low) = layer_of(&modules[from]) else {
            wrong.push(format!("{} is in no layer of LAYERS", name(&modules[from])));
            continue;
        };
        for &to in targets {
            if layer_of(&modules[to]).is_some_and(|high| high > low) {
                wrong.push(format!(
                    "{} ({}) names {} ({})",
                    name(&modules[from]),
                    LAYERS[low].0,
                    name(&modules[to]),
                    LAYERS[layer_of(&modules[to]).unwrap_or(low)].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_parser_finds_what_a_file_names() {
    assert_eq!(
        expand_use("crate::a::{b, c::{d, e}}"),
        vec!["crate::a::b", "crate::a::c::d", "crate::a::c::e"]
    );
    let code = code_of("use crate::x; // crate::commented\nlet s = \"crate::quoted\"; super::y::z();\n#[cfg(test)]\nuse crate::tested;");
    assert!(code.contains("crate::x") && code.contains("super::y::z"));
    assert!(!code.contains("commented") && !code.contains("quoted") && !code.contains("tested"));
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let edges = |pairs: &[(usize, usize)]| {
        let mut edges = vec![BTreeSet::new(); 4];
        for (from, to) in pairs {
            edges[*from].insert(*to);
        }
        edges
    };
    assert!(cycles(&edges(&[(0, 1), (1, 2), (2, 3)])).is_empty());
    let found = cycles(&edges(&[(0, 1), (1, 2), (2, 0), (2, 3)]));
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1, 2])
    );
}
