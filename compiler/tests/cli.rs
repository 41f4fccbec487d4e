//! The `contractc` binary: exit codes, output formats, help.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn contractc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_contractc"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("contractc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_defaults_to_contracts_dir_and_exits_zero_when_clean() {
    let out = contractc(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("checked 2 contract file(s): no problems"));
}

#[test]
fn check_exits_one_on_errors_and_prints_the_caret() {
    let out = contractc(&["check", "tests/diagnostics/0009_type_typo.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error[C0014]: unknown type `itn`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--> tests/diagnostics/0009_type_typo.yaml:20:11"),
        "{stderr}"
    );
    assert!(stderr.contains("^^^"), "{stderr}");
}

#[test]
fn warnings_alone_pass_unless_denied() {
    let file = "tests/diagnostics/0064_warnings_do_not_block.yaml";
    assert_eq!(contractc(&["check", file]).status.code(), Some(0));
    assert_eq!(
        contractc(&["check", "--deny-warnings", file]).status.code(),
        Some(1)
    );
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(
        contractc(&["check", "--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(contractc(&["check", "no/such/dir"]).status.code(), Some(2));
    assert_eq!(contractc(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(contractc(&["explain", "C9999"]).status.code(), Some(2));
}

#[test]
fn json_format_is_machine_readable() {
    let out = contractc(&[
        "check",
        "--format",
        "json",
        "tests/diagnostics/0055_many_errors_reported.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(json["errors"], 3);
    let codes: Vec<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["C0103", "C0100", "C0604"]);
    let first = &json["diagnostics"][0];
    assert_eq!(
        first["file"],
        "tests/diagnostics/0055_many_errors_reported.yaml"
    );
    assert_eq!(first["primary"]["line"], 11);
    assert_eq!(first["primary"]["source_line"], "    id: 2");
    assert!(first["help"].as_str().unwrap().contains("new id"));
}

#[test]
fn help_describes_each_subcommand() {
    let out = contractc(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for sub in ["check", "explain", "schema"] {
        assert!(help.contains(sub), "{help}");
    }
    let check_help = text(&contractc(&["check", "--help"]).stdout);
    assert!(check_help.contains("Exit status"), "{check_help}");
}

#[test]
fn explain_lists_every_code_and_schema_prints_the_published_schema() {
    let out = contractc(&["explain"]);
    let listing = text(&out.stdout);
    assert_eq!(listing.lines().count(), contractc::Code::ALL.len());
    let explained = text(&contractc(&["explain", "c0014"]).stdout);
    assert!(explained.starts_with("C0014"), "{explained}");
    let schema: serde_json::Value =
        serde_json::from_slice(&contractc(&["schema"]).stdout).expect("schema is JSON");
    assert_eq!(schema["title"], "contractc data contract");
}

#[test]
fn every_code_is_documented() {
    let doc =
        std::fs::read_to_string(root().join("docs/diagnostics.md")).expect("docs/diagnostics.md");
    for code in contractc::Code::ALL {
        assert!(
            doc.contains(code.as_str()),
            "docs/diagnostics.md does not mention {code}"
        );
    }
}

#[test]
fn diff_gates_on_versions_and_breaking_changes() {
    let dir = std::env::temp_dir().join(format!("contractc-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = std::fs::read_to_string(root().join("contracts/game_events.yaml")).unwrap();
    // The sample contract at another version (whatever version it is at now).
    let at_version = |version: &str| -> String {
        base.lines()
            .map(|line| {
                if line.starts_with("version:") {
                    format!("version: {version}")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let breaking_minor = dir.join("breaking_minor.yaml");
    std::fs::write(
        &breaking_minor,
        at_version("1.99.0").replace("    Killed Enemy:\n", ""),
    )
    .unwrap();
    let out = contractc(&[
        "diff",
        "contracts/game_events.yaml",
        breaking_minor.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("[breaks producers] game_events: variant \"Killed Enemy\""));
    assert!(text(&out.stdout).contains("need a major version bump"));

    let breaking_major = dir.join("breaking_major.yaml");
    std::fs::write(
        &breaking_major,
        at_version("99.0.0").replace("    Killed Enemy:\n", ""),
    )
    .unwrap();
    let path = breaking_major.to_str().unwrap();
    assert_eq!(
        contractc(&["diff", "contracts/game_events.yaml", path])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        contractc(&[
            "diff",
            "--deny-breaking",
            "contracts/game_events.yaml",
            path
        ])
        .status
        .code(),
        Some(3)
    );
    let markdown = text(
        &contractc(&[
            "diff",
            "--format",
            "markdown",
            "contracts/game_events.yaml",
            path,
        ])
        .stdout,
    );
    assert!(markdown.starts_with("## Contract changes"), "{markdown}");
    let json: serde_json::Value = serde_json::from_slice(
        &contractc(&[
            "diff",
            "--format",
            "json",
            "contracts/game_events.yaml",
            path,
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(json["changes"][0]["classes"][0], "breaks_producers");

    // A git revision on the old side: the committed contracts against themselves.
    let out = contractc(&["diff", "HEAD", "contracts"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        contractc(&["diff", "no-such-revision-or-path", "contracts"])
            .status
            .code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn diff_against_the_last_release_and_release_write_the_history() {
    // 2.0.0 against its last release (1.2.0): every break is covered, so even
    // --deny-breaking passes, and each covered break says so.
    let out = contractc(&[
        "diff",
        "--last-release",
        "--deny-breaking",
        "tests/versioned/game_events.yaml",
    ]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", text(&out.stderr));
    assert_eq!(
        report.matches("covered by migration").count(),
        4,
        "{report}"
    );
    // The repository's contracts have no release yet: nothing to compare, said so.
    let out = contractc(&["diff", "--last-release"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("no contract has a release yet"));

    // `release` copies the file byte for byte, once; a different file under that version is
    // refused.
    let dir = std::env::temp_dir().join(format!("contractc-release-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let contract = dir.join("game_events.yaml");
    let text_of_contract =
        std::fs::read_to_string(root().join("contracts/game_events.yaml")).expect("contract");
    std::fs::write(&contract, &text_of_contract).expect("write");
    let path = contract.to_str().expect("utf-8 path");
    let out = contractc(&["release", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let released = dir.join("game_events.releases/1.2.0.yaml");
    assert_eq!(
        std::fs::read_to_string(&released).expect("released"),
        text_of_contract
    );
    assert_eq!(contractc(&["release", path]).status.code(), Some(0));
    std::fs::write(
        &contract,
        text_of_contract.replace("owner: game-analytics", "owner: x"),
    )
    .expect("write");
    let out = contractc(&["release", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("was released with other contents"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
