//! `contract-runtime replay`: quarantined events that the contract now accepts move into the
//! events table exactly once, checked with pyiceberg (an independent reader).
//!
//! "A contract fix" without rebuilding the binary: the quarantine table is given rows the way
//! `serve` writes them (the crate's quarantine rows, committed through the crate's lake at the
//! table's own LSN) for payloads that this build accepts but that an earlier, stricter contract
//! quarantined (stored with `pattern` or `max_length` violations). Events `serve` itself
//! quarantines or refuses under this build stay where they are and are reported with their codes.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, client, free_port, guest_token, pyiceberg_check, temp_dir, wall_clock};
use contract_serve::lake::Lake;
use contract_serve::quarantine::{QuarantineBatch, Row};
use contract_support::{Code, Policy, Verdict, Violation};
use serde_json::{Value, json};

const EVENTS: &str = "analytics_events_db.events_table";
/// 2024-01-10 12:00:00 UTC: when the "old" quarantined events were received.
const OLD_RECEIVED_SECS: i64 = 1_704_888_000;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A game event this build accepts when received at `received_secs`.
fn valid_event(data: &str, received_secs: i64) -> Value {
    json!({
        "event_id": "e1",
        "event_type": "Login",
        "updated_at": wall_clock(received_secs - 60),
        "event_data": data,
    })
}

/// Quarantine rows an older, stricter contract would have written: `code` at `$.event_id`.
struct Injected {
    request_id: String,
    data: String,
    received_secs: i64,
    code: Code,
}

fn injected(prefix: &str, n: usize, received_secs: i64, code: Code) -> Vec<Injected> {
    (0..n)
        .map(|i| Injected {
            request_id: format!("{prefix}-req-{i}"),
            data: format!("{prefix}-{i}"),
            received_secs,
            code,
        })
        .collect()
}

/// Commits `rows` to game_events' quarantine table the way `serve` does: the crate's quarantine
/// rows, recording the table's committed LSN again (so `serve`'s restart point is unchanged).
async fn quarantine(dir: &Path, rows: impl IntoIterator<Item = &Injected>) {
    let lake = Lake::open(dir).await.expect("lake");
    let manifest = contract_validators::ALL
        .iter()
        .map(|c| c.manifest())
        .find(|m| m.name == "game_events")
        .expect("game_events");
    lake.ensure_table(&manifest.events_table())
        .await
        .expect("events table");
    let table = lake
        .ensure_table(&manifest.quarantine_table())
        .await
        .expect("quarantine table");
    let schema = Arc::new(lake.arrow_schema(&table).await.expect("schema"));
    // Rows an older version judged: the batch stamps its manifest's version on them.
    let mut old = manifest.clone();
    old.version = "0.9.0".into();
    let mut batch = QuarantineBatch::new(schema, Box::leak(Box::new(old)), None);
    for row in rows {
        batch.push(Row {
            received_micros: row.received_secs * 1_000_000,
            request_id: row.request_id.clone(),
            verdict: Verdict::Quarantine,
            violations: vec![Violation {
                code: row.code,
                path: "$.event_id".into(),
                policy: Policy::Quarantine,
                message: "the old contract's rule".into(),
            }],
            raw_payload: valid_event(&row.data, row.received_secs).to_string(),
            player_id: Some("player-of-old".into()),
        });
    }
    let lsn = lake.committed_lsn(&table).await.expect("lsn");
    lake.append(&table, vec![batch.finish().expect("batch")], lsn)
        .await
        .expect("append");
}

/// Runs `contract-runtime replay --data-dir DIR --contract game_events --json ARGS`.
fn replay_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_contract-runtime"));
    command
        .args([
            "replay",
            "--contract",
            "game_events",
            "--json",
            "--data-dir",
        ])
        .arg(dir)
        .args(args)
        // Away from the repository's contracts/ (the freshness check has its own tests).
        .current_dir(dir.parent().expect("parent"));
    command
}

fn report_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "replay failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the report is JSON")
}

fn replay(dir: &Path, args: &[&str]) -> Value {
    let report = report_of(&replay_command(dir, args).output().expect("replay runs"));
    println!("replay {args:?}: {report}");
    report
}

fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

/// Rows still failing with `code`, summed over paths.
fn failing(report: &Value, code: &str) -> u64 {
    report["failing"]
        .as_array()
        .expect("failing")
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| f["rows"].as_u64().unwrap_or(0))
        .sum()
}

/// Posts `events` to the batch route; returns the verdicts.
async fn send_batch(base: &str, token: &str, events: &[Value]) -> Vec<String> {
    let response = client()
        .post(format!("{base}/prod/put-records"))
        .header("Authorization", token)
        .json(&events)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["verdict"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_moves_what_the_contract_now_accepts_exactly_once_and_reports_the_rest() {
    let dir = temp_dir("replay");
    // Under this build: 4 accepted, 3 quarantined (too old), 2 refused (an unknown field).
    let server = Server::start(&dir, free_port());
    let token = guest_token(&server.base).await;
    let now = now_secs();
    let mut events: Vec<Value> = (0..4)
        .map(|i| valid_event(&format!("live-{i}"), now))
        .collect();
    events.extend((0..3).map(|i| {
        json!({"event_id": "old", "event_type": "Login", "updated_at": wall_clock(now - 40 * 86_400), "event_data": format!("stale-{i}")})
    }));
    events.extend((0..2).map(|i| {
        json!({"event_id": "x", "event_type": "Login", "updated_at": wall_clock(now), "surprise": i})
    }));
    let verdicts = send_batch(&server.base, &token, &events).await;
    assert_eq!(verdicts.iter().filter(|v| *v == "accept").count(), 4);
    assert_eq!(verdicts.iter().filter(|v| *v == "quarantine").count(), 3);
    assert_eq!(verdicts.iter().filter(|v| *v == "reject").count(), 2);
    server.stop();

    // What an older contract quarantined and this one accepts: 3 old and 4 recent `pattern`
    // rows, and 2 recent `max_length` rows.
    let old = injected("old", 3, OLD_RECEIVED_SECS, Code::Pattern);
    let recent = injected("recent", 4, now, Code::Pattern);
    let long = injected("long", 2, now, Code::MaxLength);
    let all: Vec<&Injected> = old.iter().chain(&recent).chain(&long).collect();
    quarantine(&dir, all.iter().copied()).await;

    // A dry run judges everything and writes nothing.
    let dry = replay(&dir, &["--dry-run"]);
    assert_eq!(count(&dry, "considered"), 9 + 5);
    assert_eq!(count(&dry, "movable"), 9);
    assert_eq!(count(&dry, "moved"), 0);
    assert_eq!(count(&dry, "still_failing"), 5);
    assert_eq!(failing(&dry, "not_before"), 3);
    assert_eq!(failing(&dry, "unknown_field"), 2);
    assert_eq!(
        dry["not_recovered"],
        json!(["client_version (from client_contract_version)"])
    );
    assert!(
        !dir.join("replay.lock").exists(),
        "a dry run creates nothing"
    );
    pyiceberg_check(&dir, json!({ EVENTS: { "rows": 4 } }));

    // --code: only rows stored with that code.
    let by_code = replay(&dir, &["--code", "max_length"]);
    assert_eq!(
        (count(&by_code, "considered"), count(&by_code, "moved")),
        (2, 2)
    );
    // --since: only rows received since then (the recent ones; `long` moved already).
    let since = replay(&dir, &["--since", "2024-06-01T00:00:00Z"]);
    assert_eq!(count(&since, "moved"), 4);
    assert_eq!(count(&since, "already_moved"), 2);
    assert_eq!(
        count(&since, "still_failing"),
        5,
        "serve's own rows are recent"
    );
    // Everything else.
    let rest = replay(&dir, &[]);
    assert_eq!(
        (count(&rest, "moved"), count(&rest, "already_moved")),
        (3, 6)
    );
    assert_eq!(failing(&rest, "not_before"), 3);
    assert_eq!(failing(&rest, "unknown_field"), 2);
    // Idempotent: nothing more moves, and a dry run agrees.
    let again = replay(&dir, &[]);
    assert_eq!(
        (count(&again, "moved"), count(&again, "already_moved")),
        (0, 9)
    );
    assert_eq!(count(&replay(&dir, &["--dry-run"]), "movable"), 0);

    let mut values: Vec<String> = all.iter().map(|r| r.data.clone()).collect();
    values.extend((0..4).map(|i| format!("live-{i}")));
    pyiceberg_check(
        &dir,
        json!({ EVENTS: {
            "rows": 4 + 9,
            "exactly_once": values,
            "column": "event_data",
            // Enriched from the quarantine row: every row has its player; the client's
            // version was not kept (and serve's own rows were sent without one).
            "null_counts": { "player_id": 0, "request_id": 0, "client_version": 13 },
        } }),
    );

    // The lake stays serve's: it restarts on it and keeps exactly-once.
    let server = Server::start(&dir, free_port());
    let token = guest_token(&server.base).await;
    let verdicts = send_batch(&server.base, &token, &[valid_event("after", now_secs())]).await;
    assert_eq!(verdicts, ["accept"]);
    server.stop();
    values.push("after".into());
    pyiceberg_check(
        &dir,
        json!({ EVENTS: { "rows": 14, "exactly_once": values, "column": "event_data" } }),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_killed_before_or_after_its_commit_still_moves_each_event_once() {
    let dir = temp_dir("replay-kill");
    let now = now_secs();
    let pattern = injected("p", 5, now, Code::Pattern);
    let long = injected("m", 5, now, Code::MaxLength);
    quarantine(&dir, pattern.iter().chain(&long)).await;

    // Killed with its data files written and nothing committed: nothing moved.
    let killed = replay_command(&dir, &["--code", "pattern"])
        .env("CONTRACTC_REPLAY_CRASH_AT", "before-commit")
        .output()
        .expect("runs");
    assert!(!killed.status.success(), "the hook aborts the run");
    pyiceberg_check(&dir, json!({ EVENTS: { "rows": 0 } }));
    assert_eq!(count(&replay(&dir, &["--dry-run"]), "movable"), 10);

    // Killed right after its commit: the moved rows and their ledger rows are in.
    let killed = replay_command(&dir, &["--code", "pattern"])
        .env("CONTRACTC_REPLAY_CRASH_AT", "after-commit")
        .output()
        .expect("runs");
    assert!(!killed.status.success(), "the hook aborts the run");
    pyiceberg_check(&dir, json!({ EVENTS: { "rows": 5 } }));
    let dry = replay(&dir, &["--dry-run"]);
    assert_eq!(
        (count(&dry, "movable"), count(&dry, "already_moved")),
        (5, 5)
    );

    // Two replays at once: one moves the rest, the other moves nothing or is refused.
    let spawn = || {
        replay_command(&dir, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("replay starts")
    };
    let (a, b) = (spawn(), spawn());
    let outputs = [
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    ];
    let mut moved = 0;
    for output in &outputs {
        if output.status.success() {
            moved += count(&report_of(output), "moved");
        } else {
            let error = String::from_utf8_lossy(&output.stderr);
            assert!(
                error.contains("another replay is running"),
                "refused clearly: {error}"
            );
        }
    }
    assert_eq!(moved, 5);
    assert_eq!(count(&replay(&dir, &[]), "moved"), 0);

    let values: Vec<String> = pattern
        .iter()
        .chain(&long)
        .map(|r| r.data.clone())
        .collect();
    pyiceberg_check(
        &dir,
        json!({ EVENTS: { "rows": 10, "exactly_once": values, "column": "event_data" } }),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_next_to_a_running_serve_loses_and_duplicates_nothing() {
    let dir = temp_dir("replay-live");
    let now = now_secs();
    let rows = injected("fixed", 200, now, Code::Pattern);
    quarantine(&dir, &rows).await;
    // Commits 20 times a second (100 times the default rate), so the replay's commit races
    // serve's.
    let server = Server::start_with(
        &dir,
        free_port(),
        &["--commit-interval-ms", "50", "--guests-per-minute", "0"],
    );
    let base = server.base.clone();
    let token = guest_token(&base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let events: Vec<Value> = (0..20)
                    .map(|i| valid_event(&format!("live-{n}-{i}"), now_secs()))
                    .collect();
                let verdicts = send_batch(&base, &token, &events).await;
                assert!(verdicts.iter().all(|v| v == "accept"));
                acknowledged.extend((0..20).map(|i| format!("live-{n}-{i}")));
                n += 1;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replayed = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || replay(&dir, &[]))
            .await
            .expect("replay")
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = sender.await.expect("sender");
    server.stop();
    assert_eq!(count(&replayed, "moved"), 200);
    println!(
        "{} events acknowledged during the replay; {} replay commits lost a race and were retried",
        acknowledged.len(),
        count(&replayed, "commit_conflicts")
    );
    assert!(acknowledged.len() > 100, "serve took events meanwhile");
    assert_eq!(count(&replay(&dir, &[]), "moved"), 0);

    let mut values: Vec<String> = rows.iter().map(|r| r.data.clone()).collect();
    values.extend(acknowledged.iter().cloned());
    pyiceberg_check(
        &dir,
        json!({ EVENTS: {
            "rows": values.len(),
            "exactly_once": values,
            "column": "event_data",
        } }),
    );
}
