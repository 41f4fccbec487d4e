//! Golden tests for diagnostics.
//!
//! Each `tests/diagnostics/NNNN_name.yaml` starts with `# expect: CODE`; its full rendering is
//! pinned in `NNNN_name.stderr` next to it. Run with `UPDATE_EXPECT=1` to rewrite the goldens
//! after an intended change, then review the diff.

use std::path::{Path, PathBuf};

use contractc::driver::{self, check_sources};
use contractc::source::SourceFile;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compiler/ has a parent")
        .to_path_buf()
}

fn updating() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some()
}

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn render_check(relative: &str, text: String) -> (String, Vec<String>) {
    let file = SourceFile::new(relative, text);
    let outcome = check_sources(&[file]);
    let rendered: Vec<String> = outcome
        .diagnostics
        .iter()
        .map(|d| d.render(false))
        .collect();
    let codes = outcome
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect();
    (rendered.join("\n\n") + "\n", codes)
}

#[test]
fn bad_contracts_produce_their_pinned_diagnostics() {
    let files = fixtures("tests/diagnostics");
    assert!(
        files.len() >= 30,
        "expected at least 30 bad-contract fixtures, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 file name");
        let relative = format!("tests/diagnostics/{name}");
        let text = std::fs::read_to_string(path).expect("fixture readable");
        let expected_code = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{relative}: first line must be `# expect: CODE`"))
            .trim()
            .to_string();
        let (rendered, codes) = render_check(&relative, text);
        if !codes.contains(&expected_code) {
            failures.push(format!(
                "{relative}: expected {expected_code}, got {codes:?}\n{rendered}"
            ));
        }
        let golden = path.with_extension("stderr");
        if updating() {
            std::fs::write(&golden, &rendered).expect("golden writable");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == rendered => {}
            Ok(expected) => failures.push(format!(
                "{relative}: rendering changed (UPDATE_EXPECT=1 to accept)\n--- expected\n{expected}\n--- actual\n{rendered}"
            )),
            Err(_) => failures.push(format!("{relative}: no golden {} (run with UPDATE_EXPECT=1)", golden.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_golden_has_its_fixture() {
    let dir = repo_root().join("tests/diagnostics");
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "stderr") {
            assert!(
                path.with_extension("yaml").exists(),
                "orphan golden {}",
                path.display()
            );
        }
    }
}

#[test]
fn sample_contracts_are_clean() {
    let outcome = driver::check_paths(&[repo_root().join("contracts")]);
    let rendered: Vec<String> = outcome
        .diagnostics
        .iter()
        .map(|d| d.render(false))
        .collect();
    assert!(outcome.diagnostics.is_empty(), "{}", rendered.join("\n\n"));
    let set = outcome.contracts.expect("clean contracts validate");
    let names: Vec<&str> = set.contracts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["game_events", "match_events"]);
}

#[test]
fn good_fixtures_are_clean() {
    let root = repo_root().join("tests/fixtures");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures")
        .map(|e| e.expect("entry").path().join("contract.yaml"))
        .filter(|p| p.exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 3,
        "expected good fixtures under tests/fixtures/*/contract.yaml"
    );
    for case in cases {
        let outcome = driver::check_paths(std::slice::from_ref(&case));
        let rendered: Vec<String> = outcome
            .diagnostics
            .iter()
            .map(|d| d.render(false))
            .collect();
        assert!(
            outcome.diagnostics.is_empty(),
            "{}:\n{}",
            case.display(),
            rendered.join("\n\n")
        );
        assert!(outcome.contracts.is_some());
    }
}

#[test]
fn contracts_across_files_must_not_clash() {
    let game =
        std::fs::read_to_string(repo_root().join("contracts/game_events.yaml")).expect("sample");
    let a = SourceFile::new("a.yaml", game.clone());
    let b = SourceFile::new("b.yaml", game);
    let outcome = check_sources(&[a, b]);
    let codes: Vec<&str> = outcome
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["C0108", "C0507", "C0601", "C0601"], "{codes:?}");
    assert!(outcome.contracts.is_none());
    let rendered = outcome.diagnostics[0].render(false);
    assert!(rendered.contains("b.yaml:5:11"), "{rendered}");
    assert!(
        rendered.contains("first declared in a.yaml:5:11"),
        "{rendered}"
    );
}

#[test]
fn a_typo_in_a_type_points_at_its_line_and_column() {
    let text =
        std::fs::read_to_string(repo_root().join("contracts/game_events.yaml")).expect("sample");
    let line = text
        .lines()
        .position(|l| l.trim() == "type: timestamp")
        .expect("has a timestamp field")
        + 1;
    let text = text.replacen("type: timestamp\n", "type: timestmp\n", 1);
    let (rendered, codes) = render_check("game.yaml", text);
    assert_eq!(codes, ["C0014"]);
    assert!(
        rendered.contains(&format!("--> game.yaml:{line}:11")),
        "{rendered}"
    );
    assert!(
        rendered.contains(&format!("{line} |     type: timestmp\n")),
        "{rendered}"
    );
    assert!(
        rendered.contains("          ^^^^^^^^ not a contract type"),
        "{rendered}"
    );
    assert!(
        rendered.contains("help: did you mean `timestamp`?"),
        "{rendered}"
    );
}

#[test]
fn json_output_has_byte_offsets_and_character_columns() {
    let text = "contract: x\nversion: 1.0.0\nowner: t\nfields:\n  - {description: \"żółw 🐢\", name: a, id: 1, type: strng}\ntable: {database: d, name: t}\ningest: {route: /r, auth: {issuer: dev, audience: a, scopes: [s]}}\n".to_string();
    let bad = text.find("strng").expect("typo present");
    let file = SourceFile::new("m.yaml", text);
    let outcome = check_sources(&[file]);
    assert_eq!(outcome.diagnostics.len(), 1);
    let json = outcome.diagnostics[0].to_json();
    assert_eq!(json["code"], "C0014");
    assert_eq!(json["primary"]["byte_start"], bad);
    assert_eq!(json["primary"]["byte_end"], bad + 5);
    assert_eq!(json["primary"]["line"], 5);
    // Columns count characters: the line has 3 two-byte letters and a four-byte emoji before.
    let line = "  - {description: \"żółw 🐢\", name: a, id: 1, type: ";
    assert_eq!(json["primary"]["column"], line.chars().count() + 1);
}
