//! Upsert tables (#15): one row per key, the latest by `latest_by`, after any sequence of
//! commits, restarts and `kill -9`, as an independent reader (pyiceberg) sees it.

mod common;

use std::time::Duration;

use common::{Server, client, free_port, guest_token_with, pyiceberg_check, temp_dir};
use serde_json::{Value, json};

const MATCHES: &str = "multiplayer.match_events";

/// A time `minutes` before the test started: the same version whenever it is sent.
fn minutes_ago(minutes: i64) -> String {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
    });
    let t = start - start.rem_euclid(60) - minutes * 60;
    let (y, m, d) = contract_corpus::civil_from_days(t.div_euclid(86_400));
    let r = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:00Z",
        r / 3600,
        r % 3600 / 60
    )
}

/// Key `n` (a UUID), a version `minutes_ago`, and `duration_s` to tell versions apart.
fn event(n: u32, minutes_ago_: i64, duration: i64) -> Value {
    json!({"event_id": format!("123e4567-e89b-12d3-a456-{n:012}"), "kind": "match_ended",
           "occurred_at": minutes_ago(minutes_ago_), "match_id": format!("m-{:012}", n % 7),
           "region": "eu-west", "build": {"version": "1.2.3"}, "duration_s": duration, "scores": {"a": 1}})
}

/// Sends `events` in one batch and waits for the commit after it.
async fn commit(base: &str, token: &str, events: Vec<Value>) {
    let count = events.len();
    let response = client()
        .post(format!("{base}/prod/match-events/batch"))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(Value::from(events).to_string())
        .send()
        .await
        .expect("batch");
    assert_eq!(response.status(), 200);
    let verdicts: Value = response.json().await.expect("json");
    assert_eq!(verdicts["accepted"], count, "{verdicts}");
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upsert_tables_hold_one_row_per_key_across_commits_restarts_and_crashes() {
    let dir = temp_dir("upsert-across");
    let port = free_port();
    let server = Server::start(&dir, port);
    let token = guest_token_with(&server.base, Some("authenticated")).await;
    // Commit 1: 50 keys, version "30 minutes ago", duration = key.
    commit(
        &server.base,
        &token,
        (0..50).map(|n| event(n, 30, i64::from(n))).collect(),
    )
    .await;
    // Commit 2: newer versions of keys 0..5 (duration 1000 + key), and key 50.
    commit(
        &server.base,
        &token,
        (0..5)
            .map(|n| event(n, 10, 1000 + i64::from(n)))
            .chain([event(50, 30, 50)])
            .collect(),
    )
    .await;
    // Commit 3: an older version of key 1 (ignored) and a newer one of key 7.
    commit(
        &server.base,
        &token,
        vec![event(1, 20, 9999), event(7, 5, 2007)],
    )
    .await;
    server.stop();

    // After a restart: a tie on key 2 (the same version again): the last received wins.
    let server = Server::start(&dir, port);
    commit(&server.base, &token, vec![event(2, 10, 3002)]).await;
    // Acknowledged, then `kill -9` before any commit: the log replays it at the next start.
    let response = client()
        .post(format!("{}/prod/match-events/batch", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body(Value::from(vec![event(3, 1, 4003), event(51, 1, 51)]).to_string())
        .send()
        .await
        .expect("batch");
    assert_eq!(response.status(), 200);
    server.crash();
    let server = Server::start(&dir, port);
    server.stop();

    let mut expected: Vec<i64> = (0..52).collect();
    expected[0] = 1000;
    expected[1] = 1001;
    expected[2] = 3002;
    expected[3] = 4003;
    expected[4] = 1004;
    expected[7] = 2007;
    pyiceberg_check(
        &dir,
        json!({ MATCHES: { "rows": 52, "exactly_once": expected, "column": "duration_s" } }),
    );
    // One row per key (the event id, a UUID column), too.
    pyiceberg_check(
        &dir,
        json!({ MATCHES: { "at_most_once": true, "column": "event_id" } }),
    );
}
