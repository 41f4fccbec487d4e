//! Tidy: the rules of ARCHITECTURE.md ("Invariants") that a scan of the source can keep true,
//! in the spirit of rust-analyzer's tidy test. Each rule is a pure function over file text,
//! checked on the real tree by one test and shown to catch a deliberate break by another.
//!
//! - the compiler does file-system, network and process calls in `driver` only;
//! - backends never see the syntax layer (`syntax::`);
//! - `Valid` is constructed in one place (`check::check_set`);
//! - diagnostic codes are never renumbered or removed (`tests/diagnostic-codes.txt`);
//! - no module-import cycle inside a runtime crate;
//! - functions fit a line budget outside generated code (a short ratchet list excepted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, sorted, as (path relative to the repository, text).
fn sources(dir: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut pending = vec![repo().join(dir)];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            let relative = path
                .strip_prefix(repo())
                .unwrap_or(&path)
                .to_string_lossy()
                .replace("/../", "/");
            files.push((relative.trim_start_matches("./").to_string(), text));
        }
    }
    files.sort();
    files
}

/// The code of a file without comments and without `#[cfg(test)]` items: what ships.
fn shipped_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: up to the closing brace at its indentation (rustfmt
            // layout), or the line itself when it ends with `;`.
            let Some(item) = lines.next() else { break };
            let indent = &item[..item.len() - item.trim_start().len()];
            if !item.trim_end().ends_with(';') {
                for inner in lines.by_ref() {
                    if inner == format!("{indent}}}") {
                        break;
                    }
                }
            }
            continue;
        }
        let code = match line.find("//") {
            // A `//` inside a string literal is rare in this code base and only ever removes
            // text from the scan, never adds any.
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

// ---- rule: the compiler's I/O lives in `driver` -------------------------------------------

/// What counts as touching the file system, the network or another process.
const IO_CALLS: [&str; 14] = [
    "std::fs",
    "fs::",
    " File::",
    "(File::",
    "OpenOptions",
    ".exists()",
    "read_dir",
    "std::net",
    "TcpStream",
    "TcpListener",
    "reqwest",
    "process::Command",
    "Command::new",
    "process::exit",
];

/// The I/O calls in one compiler file outside `driver.rs`: (line, call).
fn io_outside_driver(path: &str, text: &str) -> Vec<(usize, &'static str)> {
    if path.ends_with("compiler/src/driver.rs") {
        return Vec::new();
    }
    shipped_code(text)
        .lines()
        .enumerate()
        .flat_map(|(i, line)| {
            IO_CALLS
                .iter()
                .filter(move |call| line.contains(**call))
                .map(move |call| (i + 1, *call))
        })
        .collect()
}

#[test]
fn the_compiler_does_io_in_driver_only() {
    let found: Vec<String> = sources("compiler/src")
        .iter()
        .flat_map(|(path, text)| {
            io_outside_driver(path, text)
                .into_iter()
                .map(move |(line, call)| format!("{path}:{line}: `{call}`"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "file-system, network or process calls outside compiler/src/driver.rs (move them \
         into driver):\n{}",
        found.join("\n")
    );
}

// ---- rule: backends never see the syntax layer ---------------------------------------------

fn syntax_in_backend(path: &str, text: &str) -> Vec<usize> {
    if !path.contains("compiler/src/backend/") {
        return Vec::new();
    }
    shipped_code(text)
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains("syntax::"))
        .map(|(i, _)| i + 1)
        .collect()
}

#[test]
fn backends_never_see_the_syntax_layer() {
    let found: Vec<String> = sources("compiler/src")
        .iter()
        .flat_map(|(path, text)| {
            syntax_in_backend(path, text)
                .into_iter()
                .map(move |line| format!("{path}:{line}"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "a backend reaches into `syntax::` (backends take Valid<ContractSet> only):\n{}",
        found.join("\n")
    );
}

// ---- rule: one construction site of `Valid` ------------------------------------------------

/// Where `Valid` values are made: calls of `Valid::new_checked(` and struct literals
/// `Valid {` outside its definition. (path, line) each.
fn valid_construction_sites(files: &[(String, String)]) -> Vec<(String, usize)> {
    let mut sites = Vec::new();
    for (path, text) in files {
        for (i, line) in shipped_code(text).lines().enumerate() {
            let defines = line.contains("fn new_checked") || line.contains("struct Valid");
            if !defines && (line.contains("Valid::new_checked(") || line.contains("Valid {")) {
                sites.push((path.clone(), i + 1));
            }
        }
    }
    sites
}

#[test]
fn valid_is_built_in_check_only() {
    let sites = valid_construction_sites(&sources("compiler/src"));
    assert_eq!(
        sites.len(),
        1,
        "Valid must be built in one place (check::check_set): {sites:?}"
    );
    assert_eq!(sites[0].0, "compiler/src/check/mod.rs", "{sites:?}");
}

// ---- rule: diagnostic codes are pinned -----------------------------------------------------

/// Differences between the pinned codes (`CODE Name` lines) and the compiler's: removed,
/// renumbered, reused or unpinned ones.
fn code_changes(pinned: &str, current: &[(String, String)]) -> Vec<String> {
    let pinned: Vec<(&str, &str)> = pinned
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let by_name: BTreeMap<&str, &str> = current
        .iter()
        .map(|(code, name)| (name.as_str(), code.as_str()))
        .collect();
    let mut problems = Vec::new();
    for (code, name) in &pinned {
        match by_name.get(name) {
            None => problems.push(format!(
                "{code} {name} was removed (codes are never removed)"
            )),
            Some(now) if now != code => {
                problems.push(format!("{name} was renumbered from {code} to {now}"))
            }
            Some(_) => {}
        }
    }
    let pinned_codes: BTreeSet<&str> = pinned.iter().map(|(c, _)| *c).collect();
    let pinned_names: BTreeSet<&str> = pinned.iter().map(|(_, n)| *n).collect();
    for (code, name) in current {
        if pinned_names.contains(name.as_str()) {
            continue;
        }
        if pinned_codes.contains(code.as_str()) {
            problems.push(format!(
                "{code} is reused by {name} (codes are never reused)"
            ));
        } else {
            problems.push(format!(
                "{code} {name} is new: append `{code} {name}` to tests/diagnostic-codes.txt"
            ));
        }
    }
    problems
}

#[test]
fn diagnostic_codes_are_never_renumbered_or_removed() {
    let pinned = std::fs::read_to_string(repo().join("tests/diagnostic-codes.txt"))
        .expect("tests/diagnostic-codes.txt");
    let current: Vec<(String, String)> = contractc::Code::ALL
        .iter()
        .map(|code| (code.as_str().to_string(), format!("{code:?}")))
        .collect();
    let problems = code_changes(&pinned, &current);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- rule: no module-import cycle inside a runtime crate ------------------------------------

/// The top-level module a source file belongs to (`src/console/live.rs` → `console`); None for
/// the crate root.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The top-level modules a file's shipped code names through `crate::`.
fn crate_references(text: &str) -> BTreeSet<String> {
    let code = shipped_code(text);
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c}`: the first segment of each top-level entry.
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for entry in group.split(',') {
                names.insert(first_segment(entry.trim()));
            }
        } else {
            names.insert(first_segment(rest));
        }
    }
    names.retain(|n| !n.is_empty() && n.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
    names
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The module graph of a crate: module → the modules it uses.
fn module_graph(files: &[(PathBuf, String)], src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let Some(module) = top_module(src, path) else {
            continue;
        };
        let uses = graph.entry(module.clone()).or_default();
        uses.extend(crate_references(text).into_iter().filter(|m| *m != module));
    }
    graph
}

/// The cycles of a graph: each strongly connected component with more than one module.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Reachability by search from every node (graphs here have a few dozen nodes).
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut pending = vec![from.to_string()];
        while let Some(node) = pending.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    pending.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|k| (k, reach(k))).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    for (node, from_node) in &reachable {
        if !from_node.contains(*node) {
            continue;
        }
        let mut component: Vec<String> = from_node
            .iter()
            .filter(|other| reachable.get(other).is_some_and(|r| r.contains(*node)))
            .cloned()
            .collect();
        component.sort();
        if !found.contains(&component) {
            found.push(component);
        }
    }
    found
}

#[test]
fn runtime_crates_have_no_module_cycles() {
    let mut problems = Vec::new();
    for krate in [
        "runtime/serve",
        "runtime/judge",
        "runtime/edge",
        "runtime/deploy",
        "runtime/synth",
        "runtime/corpus",
        "runtime/manifest",
        "runtime/support",
    ] {
        let src = PathBuf::from(format!("{krate}/src"));
        let files: Vec<(PathBuf, String)> = sources(&format!("{krate}/src"))
            .into_iter()
            .map(|(path, text)| (PathBuf::from(path), text))
            .collect();
        for cycle in cycles(&module_graph(&files, &src)) {
            problems.push(format!("{krate}: {}", cycle.join(" ↔ ")));
        }
    }
    assert!(
        problems.is_empty(),
        "module-import cycles (move what both sides need into a module of its own):\n{}",
        problems.join("\n")
    );
}

// ---- rule: functions fit a line budget ------------------------------------------------------

/// Lines a function may have in the runtime's serving and deploying crates, and elsewhere
/// (backends render whole files and get more).
const RUNTIME_BUDGET: usize = 80;
const OTHER_BUDGET: usize = 150;

/// Functions over budget today, with the most lines each may have: a ratchet (it may only
/// go down).
const OVER_BUDGET: [(&str, &str, usize); 0] = [];

/// The client backends render one plan (`client_plan.rs`) per language: their functions stay as
/// short as the runtime's.
const CLIENT_BACKENDS: [&str; 6] = [
    "compiler/src/backend/client_plan.rs",
    "compiler/src/backend/client_checks.rs",
    "compiler/src/backend/typescript.rs",
    "compiler/src/backend/csharp.rs",
    "compiler/src/backend/cpp.rs",
    "compiler/src/backend/godot.rs",
];

/// The functions of a file's shipped code with their line counts: (name, first line, lines),
/// from the `fn` line to its closing brace at the same indentation (rustfmt layout).
fn function_lengths(text: &str) -> Vec<(String, usize, usize)> {
    let code = shipped_code(text);
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn ") else {
            continue;
        };
        let head = &trimmed[..at];
        let is_item = head.split_whitespace().all(|w| {
            matches!(
                w,
                "pub" | "pub(crate)" | "pub(super)" | "async" | "const" | "unsafe"
            )
        });
        if !is_item || trimmed.trim_end().ends_with(';') {
            continue;
        }
        let name = first_segment(&trimmed[at + 3..]);
        let indent = &line[..line.len() - trimmed.len()];
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            found.push((name, i + 1, end + 1));
        }
    }
    found
}

fn budget_for(path: &str) -> usize {
    if [
        "runtime/serve/",
        "runtime/deploy/",
        "runtime/judge/",
        "runtime/edge/",
    ]
    .iter()
    .any(|dir| path.starts_with(dir))
        || CLIENT_BACKENDS.contains(&path)
    {
        RUNTIME_BUDGET
    } else {
        OTHER_BUDGET
    }
}

/// Functions over their budget in `files` (the ratchet list applied): "path:line name (n)".
fn over_budget(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        for (name, line, length) in function_lengths(text) {
            let allowed = OVER_BUDGET
                .iter()
                .find(|(p, n, _)| p == path && *n == name)
                .map_or(budget_for(path), |(_, _, most)| *most);
            if length > allowed {
                found.push(format!(
                    "{path}:{line} `{name}` has {length} lines (at most {allowed})"
                ));
            }
        }
    }
    found
}

#[test]
fn functions_fit_the_line_budget() {
    let mut files = Vec::new();
    for dir in ["compiler/src", "runtime", "benches"] {
        files.extend(
            sources(dir)
                .into_iter()
                // Tests may be long (integration tests, and test modules in files of their
                // own); generated validators live in generated/.
                .filter(|(path, _)| path.contains("/src/") || path.starts_with("benches/"))
                .filter(|(path, _)| !path.ends_with("/tests.rs")),
        );
    }
    let found = over_budget(&files);
    assert!(
        found.is_empty(),
        "functions over the line budget ({RUNTIME_BUDGET} in runtime/serve, judge, edge, deploy and the client backends, \
         {OTHER_BUDGET} elsewhere): split them by operation\n{}",
        found.join("\n")
    );
}

// ---- each rule catches a deliberate break ---------------------------------------------------

#[test]
fn io_outside_driver_is_caught() {
    let text = "fn save(p: &Path) {\n    std::fs::write(p, \"x\").ok();\n}\n";
    assert_eq!(
        io_outside_driver("compiler/src/backend/x.rs", text),
        vec![(2, "std::fs"), (2, "fs::")]
    );
    assert!(io_outside_driver("compiler/src/driver.rs", text).is_empty());
    // Comments and test modules do not count.
    let tested = "// std::fs is not used here\n#[cfg(test)]\nmod tests {\n    fn t() { std::fs::read(\"a\"); }\n}\n";
    assert!(io_outside_driver("compiler/src/x.rs", tested).is_empty());
    assert_eq!(
        io_outside_driver("compiler/src/main.rs", "if path.exists() {}\n"),
        vec![(1, ".exists()")]
    );
}

#[test]
fn syntax_in_a_backend_is_caught() {
    let text = "use crate::syntax::ast::Field;\n";
    assert_eq!(
        syntax_in_backend("compiler/src/backend/rust.rs", text),
        vec![1]
    );
    assert!(syntax_in_backend("compiler/src/check/mod.rs", text).is_empty());
}

#[test]
fn a_second_valid_is_caught() {
    let files = vec![
        (
            "compiler/src/ir.rs".to_string(),
            "pub(crate) fn new_checked(value: T) -> Self {\n    Valid(value)\n}\n".to_string(),
        ),
        (
            "compiler/src/check/mod.rs".to_string(),
            "Valid::new_checked(set)\n".to_string(),
        ),
        (
            "compiler/src/backend/x.rs".to_string(),
            "let v = Valid::new_checked(s);\n".to_string(),
        ),
    ];
    assert_eq!(valid_construction_sites(&files).len(), 2);
}

#[test]
fn renumbered_removed_reused_and_unpinned_codes_are_caught() {
    let pinned = "C0001 Io\nC0002 YamlSyntax\nC0003 DuplicateKey\n";
    let current = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(c, n)| (c.to_string(), n.to_string()))
            .collect()
    };
    let same = current(&[
        ("C0001", "Io"),
        ("C0002", "YamlSyntax"),
        ("C0003", "DuplicateKey"),
    ]);
    assert!(code_changes(pinned, &same).is_empty());
    let changed = current(&[("C0001", "Io"), ("C0009", "YamlSyntax"), ("C0003", "Other")]);
    let problems = code_changes(pinned, &changed).join("\n");
    assert!(
        problems.contains("YamlSyntax was renumbered from C0002 to C0009"),
        "{problems}"
    );
    assert!(
        problems.contains("C0003 DuplicateKey was removed"),
        "{problems}"
    );
    assert!(problems.contains("C0003 is reused by Other"), "{problems}");
    let added = current(&[
        ("C0001", "Io"),
        ("C0002", "YamlSyntax"),
        ("C0003", "DuplicateKey"),
        ("C0004", "New"),
    ]);
    assert!(code_changes(pinned, &added)[0].contains("append `C0004 New`"));
}

#[test]
fn a_module_cycle_is_caught() {
    let src = Path::new("runtime/x/src");
    let file = |name: &str, text: &str| (src.join(name), text.to_string());
    let files = vec![
        file("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        file(
            "a.rs",
            "use crate::b::thing;\n// crate::c only in a comment\n",
        ),
        file("b/mod.rs", "use crate::{a::other, c};\n"),
        file(
            "c.rs",
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
        ),
    ];
    let graph = module_graph(&files, src);
    assert_eq!(cycles(&graph), vec![vec!["a".to_string(), "b".to_string()]]);
    let acyclic = vec![
        file("a.rs", "use crate::b::thing;\n"),
        file("b.rs", "use crate::c;\n"),
        file("c.rs", "\n"),
    ];
    assert!(cycles(&module_graph(&acyclic, src)).is_empty());
}

#[test]
fn a_long_function_is_caught() {
    let body = "    let x = 1;\n".repeat(RUNTIME_BUDGET);
    let text = format!("pub async fn long() {{\n{body}}}\n\nfn short() {{\n}}\n");
    let lengths = function_lengths(&text);
    assert_eq!(lengths[0], ("long".to_string(), 1, RUNTIME_BUDGET + 2));
    assert_eq!(lengths[1], ("short".to_string(), RUNTIME_BUDGET + 4, 2));
    let files = vec![("runtime/serve/src/x.rs".to_string(), text.clone())];
    assert_eq!(over_budget(&files).len(), 1);
    // The same function passes where the budget is larger.
    assert!(over_budget(&[("compiler/src/x.rs".to_string(), text)]).is_empty());
}
