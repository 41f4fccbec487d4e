//! Released versions and migrations (#20): the history links, every break between supported
//! versions must be covered, and `diff` says which breaks a migration covers.

use contractc::diagnostic::Code;
use contractc::driver::check_sources;
use contractc::source::SourceFile;

fn repo(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).expect("fixture readable")
}

/// game_events 2.0.0 and its releases, named as they are kept in a contracts directory.
fn sources(current: &str) -> Vec<std::sync::Arc<SourceFile>> {
    vec![
        SourceFile::new("contracts/game_events.yaml", current.to_string()),
        SourceFile::new(
            "contracts/game_events.releases/1.1.1.yaml",
            repo("tests/versioned/game_events.releases/1.1.1.yaml"),
        ),
        SourceFile::new(
            "contracts/game_events.releases/1.2.0.yaml",
            repo("tests/versioned/game_events.releases/1.2.0.yaml"),
        ),
        SourceFile::new(
            "contracts/game_events.releases/1.3.0.yaml",
            repo("tests/versioned/game_events.releases/1.3.0.yaml"),
        ),
    ]
}

fn errors(current: &str) -> Vec<(Code, usize, String)> {
    let outcome = check_sources(&sources(current));
    outcome
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let json = d.to_json();
            let line = json["primary"]["line"].as_u64().unwrap_or(0) as usize;
            (
                d.code,
                line,
                json["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn without_migration() -> String {
    let text = repo("tests/versioned/game_events.yaml");
    let cut = text
        .find("  # From 1.3.0")
        .expect("the fixture's migration");
    text[..cut].to_string()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("line present")
        + 1
}

#[test]
fn the_history_links_with_each_release_and_its_upcast() {
    let outcome = check_sources(&sources(&repo("tests/versioned/game_events.yaml")));
    assert_eq!(outcome.errors(), 0, "{:?}", outcome.diagnostics);
    let set = outcome.contracts.expect("checks");
    let manifest = set.contracts[0].manifest();
    let versions = manifest.versions.expect("a history");
    assert_eq!(versions.default_client, "1.2.0");
    let releases: Vec<(&str, bool, usize)> = versions
        .releases
        .iter()
        .map(|r| (r.version.as_str(), r.retired, r.upcast.len()))
        .collect();
    // Every release's upcast ends with the 1.3.0 → 2.0.0 steps (1.2.0 → 1.3.0 has none).
    assert_eq!(
        releases,
        vec![("1.1.1", true, 5), ("1.2.0", false, 5), ("1.3.0", false, 5)]
    );
}

#[test]
fn every_uncovered_break_is_named_at_its_line() {
    let text = without_migration();
    let found = errors(&text);
    let codes: Vec<Code> = found.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(codes, vec![Code::UncoveredBreak; 4], "{found:?}");
    let lines: Vec<usize> = found.iter().map(|(_, l, _)| *l).collect();
    for expected in [
        line_of(&text, "version: 2.0.0"),
        line_of(&text, "- name: category"),
        line_of(&text, "- name: platform"),
        line_of(&text, "  cases:"),
    ] {
        assert!(
            lines.contains(&expected),
            "no error at line {expected}: {found:?}"
        );
    }
    assert!(
        found
            .iter()
            .any(|(_, _, m)| m.contains("`event_data` (id 4) of 1.3.0 is gone"))
    );
    assert!(
        found
            .iter()
            .any(|(_, _, m)| m.contains("`Killed Enemy` of 1.3.0"))
    );
}

#[test]
fn versions_and_steps_that_do_not_fit_are_refused() {
    let text = repo("tests/versioned/game_events.yaml");
    let unreleased = text.replace("default: 1.2.0", "default: 1.4.0");
    assert_eq!(errors(&unreleased)[0].0, Code::VersionNotReleased);
    let retired_default = text.replace("retire_before: 1.2.0", "retire_before: 2.0.0");
    assert_eq!(errors(&retired_default)[0].0, Code::VersionNotReleased);
    let kept = text.replace(
        "- drop: { field: event_data }",
        "- drop: { field: event_id }",
    );
    let found = errors(&kept);
    assert!(
        found
            .iter()
            .any(|(c, _, _)| *c == Code::InvalidMigrationStep),
        "{found:?}"
    );
    let bad_value = text
        .replace("otherwise: gameplay", "otherwise: 7")
        .replace("CollectedItem: progress", "CollectedItem: shopping");
    let found = errors(&bad_value);
    assert!(
        found
            .iter()
            .any(|(c, _, m)| *c == Code::InvalidMigrationStep && m.contains("category")),
        "{found:?}"
    );

    let mut files = sources(&text);
    files[2] = SourceFile::new(
        "contracts/game_events.releases/1.2.5.yaml",
        repo("tests/versioned/game_events.releases/1.2.0.yaml"),
    );
    let outcome = check_sources(&files);
    assert!(
        outcome
            .diagnostics
            .iter()
            .any(|d| d.code == Code::ReleaseMismatch)
    );
}

#[test]
fn diff_says_which_breaks_the_migration_covers() {
    let old = check_sources(&[SourceFile::new(
        "contracts/game_events.yaml",
        repo("tests/versioned/game_events.releases/1.2.0.yaml"),
    )])
    .contracts
    .expect("1.2.0 checks");
    let new = check_sources(&sources(&repo("tests/versioned/game_events.yaml")))
        .contracts
        .expect("2.0.0 checks");
    let report = contractc::diff::diff(&old, &new);
    assert!(
        !report.is_breaking(),
        "{}",
        contractc::diff::render_text(&report)
    );
    let covered = report
        .changes
        .iter()
        .filter(|c| c.classes.contains(&contractc::diff::Class::Migrated))
        .count();
    assert_eq!(covered, 4, "{}", contractc::diff::render_text(&report));
    assert!(
        report.version_errors.is_empty(),
        "{:?}",
        report.version_errors
    );
}
