//! The crate graph is the architecture (docs/ARCHITECTURE.md): the trusted
//! core stays small and free of Matrix, the hub and the CLI; the bridge
//! links the core, never the hub or its feed machinery. These read the
//! graph cargo resolves, so a new dependency that breaks a seam fails here.
//! `one_build` (a module, so that this stays one test binary to link)
//! checks that the README's two commands share one build.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

#[path = "layout/one_build.rs"]
mod one_build;

/// Names of every crate `package` links (normal dependencies, any depth).
fn linked(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(varde_tests::repo_root())
        .args([
            "tree",
            "--locked",
            "--offline",
            "--package",
            package,
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn assert_absent(package: &str, forbidden: &[&str]) {
    let deps = linked(package);
    assert!(deps.len() > 20, "{package}: only {} crates?", deps.len());
    let found: Vec<&&str> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "{package} links {found:?}, which belong to another concern"
    );
    println!("{package}: {} crates, none of {forbidden:?}", deps.len());
}

#[test]
fn the_core_links_no_matrix_hub_cli_or_feed_crates() {
    assert_absent(
        "varde-bus",
        &[
            "matrix-sdk",
            "varde-hub",
            "varde-cli",
            "varde-bridge",
            "varde-testkit",
            "clap",
            "csv",
            "ureq",
            "indicatif",
            "rcgen",
            "prefix-trie",
            "reqwest",
        ],
    );
}

#[test]
fn the_bridge_decisions_link_no_matrix_sdk_store_or_http() {
    assert!(linked("varde-bridge-core").contains("varde-bus"));
    assert_absent(
        "varde-bridge-core",
        &[
            "matrix-sdk",
            "matrix-sdk-crypto",
            "rusqlite",
            "reqwest",
            "axum",
            "clap",
            "varde-bridge",
            "varde-hub",
            "varde-cli",
            "varde-testkit",
        ],
    );
}

#[test]
fn the_bridge_links_the_core_but_not_the_hub_or_the_cli() {
    let deps = linked("varde-bridge");
    assert!(deps.contains("varde-bus") && deps.contains("varde-bridge-core"));
    assert_absent(
        "varde-bridge",
        &[
            "varde-hub",
            "varde-cli",
            "ureq",
            "indicatif",
            "rcgen",
            "prefix-trie",
        ],
    );
}

#[test]
fn the_hub_links_no_matrix_and_no_cli() {
    assert_absent(
        "varde-hub",
        &[
            "matrix-sdk",
            "varde-bridge",
            "varde-cli",
            "varde-testkit",
            "rcgen",
        ],
    );
}

/// Each top-level module of `src` → the top-level modules it names as
/// `crate::…` outside its tests (a nested file belongs to its top module).
fn module_graph(src: &std::path::Path) -> BTreeMap<String, BTreeSet<String>> {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, files);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may reach anywhere; the production code may not.
        let code = without_test_items(&text);
        let code = code.as_str();
        let mut names = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or_default();
                names.extend(group.split(',').filter_map(|n| {
                    let n = n.trim().split("::").next()?.trim();
                    (!n.is_empty()).then(|| n.to_string())
                }));
            } else {
                let n: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.insert(n);
            }
        }
        names.remove(&module);
        graph.entry(module).or_default().extend(names);
    }
    graph
}

/// `text` without its `#[cfg(test)]` items (a `mod tests;` line or a
/// braced item), wherever they stand in the file.
fn without_test_items(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let semi = item.find(';');
        let open = item.find('{');
        let end = match (semi, open) {
            (Some(s), Some(o)) if s < o => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(o)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[o..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = o + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn test_items_are_cut_wherever_they_stand() {
    let text = "use crate::a;\n#[cfg(test)]\nmod tests;\nfn f() {}\n#[cfg(test)]\nmod t {\n    use crate::b;\n    fn g() { if x { } }\n}\nuse crate::c;\n";
    let code = without_test_items(text);
    assert!(
        code.contains("crate::a") && code.contains("crate::c"),
        "{code}"
    );
    assert!(!code.contains("crate::b"), "{code}");
    assert!(code.contains("fn f()"), "{code}");
}

/// A path `from → … → from`, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_module_imports_its_caller() {
    let root = varde_tests::repo_root();
    for krate in [
        "schemas",
        "bus",
        "hub",
        "cli",
        "bridge/core",
        "bridge",
        "tests/kit",
    ] {
        let graph = module_graph(&root.join(krate).join("src"));
        assert!(graph.len() > 3, "{krate}: only {} modules?", graph.len());
        for module in graph.keys() {
            if let Some(cycle) = cycle_through(&graph, module) {
                panic!("{krate}: module cycle {}", cycle.join(" → "));
            }
        }
        println!("{krate}: {} modules, no cycle", graph.len());
    }
}
