//! Issue #27 item 9: a `kill -9` across a rebuild loses nothing acknowledged.
//!
//! The runtime links the validators generated from the contracts, so a rule change is a new
//! binary. `tests/rebuilt_runtime.sh` builds one from a copy of the workspace with game_events
//! changed: events older than 30 days are no longer quarantined (a rule loosened), and
//! `event_data` may hold at most 16 characters instead of 4096 (a rule tightened). This test
//! crashes the workspace's own build with the quarantine table's commits failing, restarts the
//! rebuilt binary on the same data, crashes it again, and reads both tables back with pyiceberg.
//!
//! Run by tests/run.sh:
//! `CONTRACTC_REBUILT_RUNTIME=$(tests/rebuilt_runtime.sh) cargo test -p contract-runtime --test rebuild -- --ignored`

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, client, free_port, guest_token, pyiceberg_check, temp_dir, wall_clock};
use serde_json::json;

/// One commit every hour: only the commits the test provokes happen.
const NO_TIMED_COMMITS: &[&str] = &["--commit-interval-ms", "3600000"];

fn rebuilt_binary() -> PathBuf {
    let path = std::env::var_os("CONTRACTC_REBUILT_RUNTIME")
        .expect("CONTRACTC_REBUILT_RUNTIME: the binary tests/rebuilt_runtime.sh builds and prints");
    PathBuf::from(path)
}

/// `binary serve` on `data`, once it answers, run from a directory without `contracts/` (the
/// rebuilt binary's contracts are not the workspace's, and serve compares them when it finds
/// some).
async fn start(binary: &Path, data: &Path, port: u16, args: &[&str]) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.with_extension("log"))
        .expect("log");
    let child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .args(args)
        .current_dir(data.parent().expect("a parent"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("contract-runtime starts");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        data_dir: data.to_path_buf(),
    };
    // Healthy once its start (replay and first commit included) is done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = client()
            .get(format!("{}/healthz", server.base))
            .send()
            .await;
        if health.is_ok_and(|r| r.status() == 200) {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not start within 60 s; see {}",
            data.with_extension("log").display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes every commit of the quarantine table fail, as a full or broken disk would, by putting
/// a file where its data directory goes (root ignores permissions, not file types).
fn break_quarantine_commits(data: &Path) -> PathBuf {
    let table = data.join("warehouse/analytics_events_db.db/events_table_quarantine");
    assert!(
        table.is_dir(),
        "the quarantine table's directory exists once serve runs"
    );
    let blocker = table.join("data");
    assert!(
        !blocker.exists(),
        "nothing was committed to the quarantine table yet"
    );
    std::fs::write(&blocker, b"not a directory").expect("block the data directory");
    blocker
}

fn event(updated_at: &str, event_data: &str) -> String {
    json!({"event_id": "1", "event_type": "Login", "updated_at": updated_at, "event_data": event_data})
        .to_string()
}

async fn post(base: &str, token: &str, body: &str) {
    let response = client()
        .post(format!("{base}/prod/put-record"))
        .header("Authorization", token)
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200, "acknowledged: {body}");
}

/// How many commits of the events table `serve` has made.
async fn events_commits(base: &str) -> u64 {
    let text = common::metrics_text(base).await;
    text.lines()
        .filter(|l| {
            l.starts_with("contractc_commit_seconds_count{") && l.contains("events_table\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the binary tests/rebuilt_runtime.sh builds (tests/run.sh runs it)"]
async fn a_crash_across_a_rebuild_loses_nothing_acknowledged() {
    let rebuilt = rebuilt_binary();
    let workspace_build = PathBuf::from(env!("CARGO_BIN_EXE_contract-runtime"));
    let dir = temp_dir("rebuild");
    let data = dir.join("data");
    let port = free_port();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // Quarantined by the workspace's build (older than 30 days), accepted by the rebuilt one.
    let late = event(&wall_clock(now - 60 * 86_400), "x-late");
    // Accepted by both builds.
    let (a1, a2, z) = ("a1-accepted", "a2-accepted", "z-accepted");
    // Accepted by the workspace's build, refused by the rebuilt one (over 16 characters).
    let long = event(&wall_clock(now), "y-longer-than-sixteen");

    // The workspace's build; the third buffered event triggers the only commit.
    let mut args = NO_TIMED_COMMITS.to_vec();
    args.extend(["--commit-rows", "3"]);
    let server = start(&workspace_build, &data, port, &args).await;
    let blocker = break_quarantine_commits(&data);
    let token = guest_token(&server.base).await;
    post(&server.base, &token, &late).await;
    post(&server.base, &token, &event(&wall_clock(now), a1)).await;
    post(&server.base, &token, &event(&wall_clock(now), a2)).await;
    // The events table commits past the late event; its quarantine row cannot be committed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while events_commits(&server.base).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the events table never committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Two more, below the commit threshold: acknowledged, only in the log.
    post(&server.base, &token, &long).await;
    post(&server.base, &token, &event(&wall_clock(now), z)).await;
    server.crash();

    // The rebuilt binary replays; its start commits the events table past the long event,
    // the quarantine table's commit still fails, and it crashes too.
    let server = start(&rebuilt, &data, port, NO_TIMED_COMMITS).await;
    server.crash();

    // Quarantine commits work again: the rebuilt binary replays, commits, crashes once more
    // (nothing may be replayed twice), and stops cleanly after a last start.
    std::fs::remove_file(&blocker).expect("unblock");
    start(&rebuilt, &data, port, NO_TIMED_COMMITS).await.crash();
    start(&rebuilt, &data, port, NO_TIMED_COMMITS).await.stop();

    pyiceberg_check(
        &data,
        json!({
            "analytics_events_db.events_table": {
                "rows": 3, "exactly_once": [a1, a2, z], "column": "event_data",
            },
            "analytics_events_db.events_table_quarantine": {
                "rows": 2, "exactly_once": [late, long], "column": "raw_payload",
                // As acknowledged (the workspace's build), and as the rebuilt build refused it.
                "codes": { "not_before": 1, "max_length": 1 },
            },
        }),
    );
}
