//! Table maintenance (#15): compaction, snapshot expiry and orphan deletion keep every row
//! exactly once for an independent reader (pyiceberg), during ingest and across `kill -9`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, client, free_port, guest_token, local_now, pyiceberg_check, temp_dir};
use contract_serve::lake::Lake;
use contract_serve::maintenance::{self, Policy, Schedule};
use iceberg::{NamespaceIdent, TableIdent};
use serde_json::{Value, json};

const EVENTS: &str = "analytics_events_db.events_table";

fn events_table() -> TableIdent {
    TableIdent::new(
        NamespaceIdent::new("analytics_events_db".into()),
        "events_table".into(),
    )
}

/// Posts one batch of valid events whose `event_data` are `ids` (spread over event types, so
/// over partitions); returns the ids the server acknowledged.
async fn send(base: &str, token: &str, ids: Vec<String>) -> Vec<String> {
    let types = ["Login", "Logout", "New Game", "Killed Enemy"];
    let body: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"event_id": "1", "event_type": types[i % types.len()], "updated_at": local_now(), "event_data": id})
        })
        .collect();
    let response = client()
        .post(format!("{base}/prod/put-records"))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(Value::from(body).to_string())
        .send()
        .await;
    match response {
        Ok(r) if r.status() == 200 => {
            let verdicts: Value = r.json().await.expect("verdicts");
            assert_eq!(verdicts["accepted"], ids.len(), "{verdicts}");
            ids
        }
        _ => Vec::new(),
    }
}

/// The value of a `/metrics` sample `name{table="…"}` for the events table.
async fn metric(base: &str, name: &str) -> i64 {
    let text = common::metrics_text(base).await;
    let prefix = format!("{name}{{table=\"{EVENTS}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn digest(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("digest {EVENTS} ")))
        .unwrap_or_else(|| panic!("no digest in:\n{output}"))
        .to_string()
}

fn files_on_disk(dir: &std::path::Path) -> usize {
    let mut count = 0;
    let mut pending = vec![dir.join("warehouse/analytics_events_db.db/events_table")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    count
}

/// `serve` compacts, expires and deletes on its own while events keep arriving; every
/// acknowledged event is in the table once, and files and snapshots stay bounded.
#[tokio::test(flavor = "multi_thread")]
async fn serve_maintains_its_tables_while_ingest_continues() {
    let dir = temp_dir("maintain-live");
    let server = Server::start_with(
        &dir,
        free_port(),
        &[
            "--commit-interval-ms",
            "100",
            "--guests-per-minute",
            "0",
            "--maintenance-interval-s",
            "1",
            "--orphan-grace-s",
            "1",
            "--max-snapshot-age-s",
            "2",
        ],
    );
    let base = server.base.clone();
    let token = guest_token(&base).await;
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (base, token) = (base.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut acked = Vec::new();
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(8) {
                let ids = (0..20).map(|i| format!("live-{worker}-{n}-{i}")).collect();
                n += 1;
                acked.extend(send(&base, &token, ids).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            acked
        }));
    }
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.expect("worker"));
    }
    assert!(
        acknowledged.len() > 1000,
        "too little load: {}",
        acknowledged.len()
    );
    // Maintenance ran during the load; once it stops, expiry and orphan deletion catch up.
    // Caught up means quiet too: no compaction for three polls (1.5 maintenance intervals), so
    // no rewrite snapshot lands between this check and the stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last_compacted, mut quiet_polls) = (-1, 0);
    loop {
        let compacted = metric(&base, "contractc_maintenance_compacted_files_total").await;
        let expired = metric(&base, "contractc_maintenance_expired_snapshots_total").await;
        let deleted = metric(&base, "contractc_maintenance_deleted_files_total").await;
        let snapshots = metric(&base, "contractc_table_snapshots").await;
        quiet_polls = if compacted == last_compacted {
            quiet_polls + 1
        } else {
            0
        };
        last_compacted = compacted;
        if compacted > 0 && expired > 0 && deleted > 0 && snapshots <= 3 && quiet_polls >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "maintenance did not catch up: compacted {compacted}, expired {expired}, deleted {deleted}, snapshots {snapshots}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let files = metric(&base, "contractc_table_data_files").await;
    server.stop();
    // Four partitions; without compaction every commit added one file per partition (hundreds).
    assert!(files <= 40, "{files} data files after compaction");
    pyiceberg_check(
        &dir,
        json!({ EVENTS: {
            "rows": acknowledged.len(),
            "exactly_once": acknowledged,
            "column": "event_data",
            "max_files": 40,
            "max_snapshots": 3,
        }}),
    );
}

/// Each step on its own: pyiceberg reads the same rows (same digest) before and after
/// compaction, expiry and orphan deletion, while files and snapshots go down.
#[tokio::test(flavor = "multi_thread")]
async fn readers_see_the_same_rows_before_and_after_every_step() {
    let dir = temp_dir("maintain-steps");
    let server = Server::start_with(
        &dir,
        free_port(),
        &[
            "--commit-interval-ms",
            "50",
            "--guests-per-minute",
            "0",
            "--maintenance-interval-s",
            "0",
        ],
    );
    let token = guest_token(&server.base).await;
    let mut acknowledged = Vec::new();
    for n in 0..40 {
        let ids = (0..25).map(|i| format!("step-{n}-{i}")).collect();
        acknowledged.extend(send(&server.base, &token, ids).await);
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    server.stop();
    assert_eq!(acknowledged.len(), 1000);
    let expect = json!({ EVENTS: { "rows": 1000, "exactly_once": acknowledged, "column": "event_data", "digest": true }});
    let before = digest(&pyiceberg_check(&dir, expect.clone()));

    let lake = Lake::open(&dir).await.expect("lake");
    let table = events_table();
    let policy = Policy {
        max_snapshot_age_ms: 0,
        orphan_grace: Duration::ZERO,
        ..Policy::of(&Default::default(), &Schedule::default())
    };
    let start = maintenance::figures(&lake, &table).await.expect("figures");
    assert!(start.data_files >= 40, "{start:?}");

    let (compacted, written) = maintenance::compact(&lake, &table, &policy)
        .await
        .expect("compact");
    let compacted_figures = maintenance::figures(&lake, &table).await.expect("figures");
    assert!(
        compacted > written && written > 0,
        "{compacted} -> {written}"
    );
    assert!(
        compacted_figures.data_files < start.data_files / 4,
        "{compacted_figures:?}"
    );
    assert_eq!(compacted_figures.rows, 1000);
    assert_eq!(
        digest(&pyiceberg_check(&dir, expect.clone())),
        before,
        "after compaction"
    );

    let expired = maintenance::expire_snapshots(&lake, &table, &policy)
        .await
        .expect("expire");
    assert_eq!(expired as u64, compacted_figures.snapshots - 1);
    assert_eq!(
        maintenance::figures(&lake, &table)
            .await
            .expect("figures")
            .snapshots,
        1
    );
    assert_eq!(
        digest(&pyiceberg_check(&dir, expect.clone())),
        before,
        "after expiry"
    );

    let on_disk = files_on_disk(&dir);
    let (deleted, bytes) = maintenance::delete_orphans(&lake, &table, &policy)
        .await
        .expect("orphans");
    // The replaced data files, and the manifests and lists of the expired snapshots.
    assert!(
        deleted >= compacted + expired && bytes > 0,
        "{deleted} files deleted; {compacted} compacted, {expired} expired, {start:?}"
    );
    assert_eq!(files_on_disk(&dir), on_disk - deleted);
    assert_eq!(
        digest(&pyiceberg_check(&dir, expect.clone())),
        before,
        "after orphan deletion"
    );

    // Nothing left to do: a second run changes nothing.
    assert_eq!(
        maintenance::compact(&lake, &table, &policy)
            .await
            .expect("compact"),
        (0, 0)
    );
    assert_eq!(
        maintenance::delete_orphans(&lake, &table, &policy)
            .await
            .expect("orphans")
            .0,
        0
    );
    // And serve starts on the maintained table and keeps appending to it.
    let server = Server::start(&dir, free_port());
    let token = guest_token(&server.base).await;
    let more = send(
        &server.base,
        &token,
        vec!["after-1".into(), "after-2".into()],
    )
    .await;
    server.stop();
    let mut all = acknowledged;
    all.extend(more);
    pyiceberg_check(
        &dir,
        json!({ EVENTS: { "rows": 1002, "exactly_once": all, "column": "event_data" }}),
    );
}

/// `kill -9` of `contract-runtime maintain` at moments spread over its run, beside a `serve`
/// that keeps committing: every acknowledged event is in the table exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_compaction_loses_and_duplicates_nothing() {
    let dir = temp_dir("maintain-kill");
    let server = Server::start_with(
        &dir,
        free_port(),
        &[
            "--commit-interval-ms",
            "30",
            "--guests-per-minute",
            "0",
            "--maintenance-interval-s",
            "0",
        ],
    );
    let token = guest_token(&server.base).await;
    let mut acknowledged = Vec::new();
    let mut interrupted = 0;
    for (round, delay_ms) in [30u64, 80, 150, 250, 400, 600, 900].into_iter().enumerate() {
        for n in 0..30 {
            let ids = (0..10).map(|i| format!("kill-{round}-{n}-{i}")).collect();
            acknowledged.extend(send(&server.base, &token, ids).await);
            tokio::time::sleep(Duration::from_millis(35)).await;
        }
        let mut maintain = Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
            .args(["maintain", "--data-dir"])
            .arg(&dir)
            // A grace longer than the test: serve's files in flight are never orphans here.
            .args(["--orphan-grace-s", "3600", "--max-snapshot-age-s", "0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("maintain starts");
        // Events keep arriving while it runs.
        let during = (0..10)
            .map(|i| format!("kill-{round}-during-{i}"))
            .collect();
        acknowledged.extend(send(&server.base, &token, during).await);
        std::thread::sleep(Duration::from_millis(delay_ms));
        if maintain.try_wait().expect("try_wait").is_none() {
            interrupted += 1;
        }
        maintain.kill().expect("kill -9");
        let _ = maintain.wait();
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} kills landed during a run"
    );
    server.stop();
    pyiceberg_check(
        &dir,
        json!({ EVENTS: { "rows": acknowledged.len(), "exactly_once": acknowledged, "column": "event_data" }}),
    );
    // A run that completes afterwards still sees a consistent table.
    let output = Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
        .args(["maintain", "--data-dir"])
        .arg(&dir)
        .args(["--orphan-grace-s", "0", "--max-snapshot-age-s", "0"])
        .output()
        .expect("maintain runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    pyiceberg_check(
        &dir,
        json!({ EVENTS: { "rows": acknowledged.len(), "exactly_once": acknowledged, "column": "event_data", "max_snapshots": 1 }}),
    );
}
