//! Staleness is an error: run where `contracts/` differs from what the binary was built from,
//! `serve` and `synth` refuse with the difference and the fix; where it matches, they run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A directory holding a copy of the repository's contracts.
fn with_contracts(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("contract-runtime-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("contracts")).expect("temp dir");
    for entry in std::fs::read_dir(repo().join("contracts")).expect("contracts") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            dir.join("contracts").join(path.file_name().expect("name")),
        )
        .expect("copy");
    }
    dir
}

fn runtime(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("contract-runtime runs")
}

#[test]
fn an_edited_contract_without_a_rebuild_is_refused_with_the_fix() {
    let dir = with_contracts("stale");
    let contract = dir.join("contracts/game_events.yaml");
    let mut text = std::fs::read_to_string(&contract).expect("read");
    text.push_str("\n# edited after the build\n");
    std::fs::write(&contract, text).expect("write");
    std::fs::write(dir.join("contracts/new_events.yaml"), "name: new_events\n").expect("write");

    for args in [
        &["serve", "--data-dir", "data", "--listen", "127.0.0.1:0"][..],
        &["synth", "--dry-run", "--max-count", "1"][..],
    ] {
        let output = runtime(&dir, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "contracts/game_events.yaml changed since contract `game_events` was built"
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains("contracts/new_events.yaml is not in the build"),
            "{stderr}"
        );
        assert!(
            stderr.contains("cargo run -p contractc -- build"),
            "{stderr}"
        );
        assert!(
            !dir.join("data").exists(),
            "refused before touching the data dir"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn matching_contracts_run_and_synth_finds_a_contract_by_name_or_path() {
    let dir = with_contracts("fresh");
    for contract in ["match_events", "contracts/match_events.yaml"] {
        let output = runtime(
            &dir,
            &[
                "synth",
                "--dry-run",
                "--max-count",
                "3",
                "--contract",
                contract,
            ],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json event"))
            .collect();
        assert_eq!(events.len(), 3);
        assert!(
            events.iter().all(|e| e.get("match_id").is_some()),
            "{events:?}"
        );
    }
    let unknown = runtime(&dir, &["synth", "--dry-run", "--contract", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no contract \"nope\""));
    let _ = std::fs::remove_dir_all(&dir);
}
