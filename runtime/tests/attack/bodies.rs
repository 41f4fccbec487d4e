//! Findings 7 and 8 of the second review (#27) on request bodies and files: refused bodies
//! kept only in part, answers that reach a client still sending, owner-only files from every
//! command that writes the data directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::common::{Server, client, free_port, guest_token, pyiceberg_check, temp_dir};
use super::game_event;

/// Finding 7: a `too_large` batch item was kept whole in the quarantine table, so a few
/// batches of them made every later reader (console history, replay) hold hundreds of MB.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_batch_items_are_kept_only_in_part() {
    let dir = temp_dir("attack-oversized-items");
    let data = dir.join("data");
    let server = Server::start(&data, free_port());
    let token = guest_token(&server.base).await;
    // 1.5 MiB each, far over game_events' 64 KiB limit, 10 to a batch (within 16 MiB).
    let item = game_event(&"x".repeat(3 << 19));
    let batch = format!("[{}]", vec![item; 10].join(","));
    for _ in 0..4 {
        let answer = client()
            .post(format!("{}/prod/put-records", server.base))
            .header("authorization", &token)
            .body(batch.clone())
            .send()
            .await
            .expect("batch");
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["rejected"], 10, "{body}");
        let message = body["results"][0]["violations"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("keeps its first 4096 bytes"), "{message}");
    }
    server.stop();
    pyiceberg_check(
        &data,
        json!({"analytics_events_db.events_table_quarantine": {
            "rows": 40, "codes": {"too_large": 40}, "max_bytes": {"raw_payload": 4096}
        }}),
    );
    // Replay streams the table and says why these rows cannot come back.
    let out = Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
        .args([
            "replay",
            "--contract",
            "game_events",
            "--dry-run",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("replay runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("too_large"), "{text}");
}

/// Sends a request with a `Content-Length` body the server refuses before reading (a bad token,
/// or a declared length over the limit), writes the whole body as a client library does, then
/// reads the answer. Returns the status line, or what went wrong.
fn send_whole_body(port: u16, path: &str, authorization: &str, bytes: usize) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/json\r\nContent-Length: {bytes}\r\n\r\n"
    );
    let body = vec![b' '; bytes];
    if let Err(error) = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&body))
    {
        return format!("write failed: {error}");
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(error) if !answer.is_empty() => String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or(&error.to_string())
            .to_string(),
        Err(error) => format!("read failed: {error}"),
    }
}

/// Finding 8: a large body refused before it was read got a broken pipe (the connection was
/// closed under the client) instead of the 401 or 413.
#[tokio::test(flavor = "multi_thread")]
async fn refused_large_bodies_get_their_answer_not_a_broken_pipe() {
    let dir = temp_dir("attack-linger");
    let port = free_port();
    let server = Server::start(&dir.join("data"), port);
    let token = guest_token(&server.base).await;
    for round in 0..10 {
        let unauthorized = tokio::task::spawn_blocking(move || {
            send_whole_body(port, "/prod/put-record", "not-a-token", 4 << 20)
        });
        let too_large = {
            let token = token.clone();
            tokio::task::spawn_blocking(move || {
                send_whole_body(port, "/prod/put-record", &token, 1 << 20)
            })
        };
        let (unauthorized, too_large) = (
            unauthorized.await.expect("task"),
            too_large.await.expect("task"),
        );
        assert_eq!(unauthorized, "HTTP/1.1 401 Unauthorized", "round {round}");
        assert_eq!(too_large, "HTTP/1.1 413 Payload Too Large", "round {round}");
    }
    server.stop();
}

/// Finding 8: `maintain` and `replay` did not set the umask: their files were 0644 and a data
/// directory `maintain` created was 0755.
#[tokio::test(flavor = "multi_thread")]
async fn maintain_and_replay_write_owner_only_files() {
    let dir = temp_dir("attack-umask");
    let data = dir.join("data");
    let runtime = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    runtime(&["maintain"]);
    // Small commits for maintenance to compact, and a bad event for replay to read.
    let server = Server::start(&data, free_port());
    let token = guest_token(&server.base).await;
    for data in ["a", "b", "c"] {
        for body in [game_event(data), "{\"event_id\": \"bad id\"}".to_string()] {
            client()
                .post(format!("{}/prod/put-record", server.base))
                .header("authorization", &token)
                .body(body)
                .send()
                .await
                .expect("post");
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    server.stop();
    runtime(&[
        "maintain",
        "--max-snapshot-age-s",
        "0",
        "--orphan-grace-s",
        "0",
    ]);
    runtime(&["replay", "--contract", "game_events"]);
    let mut open = Vec::new();
    let mut pending = vec![data.clone()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).expect("metadata");
        if meta.permissions().mode() & 0o077 != 0 {
            open.push(format!(
                "{} {:o}",
                path.display(),
                meta.permissions().mode()
            ));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    assert!(open.is_empty(), "readable by others: {open:?}");
}
