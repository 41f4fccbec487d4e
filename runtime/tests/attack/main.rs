//! `serve` under attack and faults: each finding of the security review (docs/security.md),
//! reproduced against the real binary on 127.0.0.1 with bounded loops, and now refused.

#[path = "../common/mod.rs"]
mod common;

// Findings of the second review (#27), one module per area.
mod bodies;
mod console;
mod tokens;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, client, free_port, guest_token, pyiceberg_check, temp_dir};
use serde_json::{Value, json};

/// A valid game event of now (its time rule allows 30 days back), carrying `data`.
fn game_event(data: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let (y, m, d) = contract_corpus::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    json!({
        "event_id": "00001",
        "event_type": "Login",
        "updated_at": format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
        "event_data": data,
    })
    .to_string()
}

/// Sends `head` (and nothing more) on a fresh connection; returns the connection.
fn raw(port: u16, head: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(head).expect("write");
    stream
}

/// Reads until the peer closes or `within` passes: (bytes read, closed by the server).
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + within;
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (read, true),
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (read, true),
        }
    }
    (read, false)
}

async fn healthz_within(base: &str, limit: Duration) -> bool {
    let started = Instant::now();
    let ok = client()
        .get(format!("{base}/healthz"))
        .timeout(limit)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200);
    ok && started.elapsed() < limit
}

/// Finding 1: anyone could mint an `authenticated` token.
#[tokio::test(flavor = "multi_thread")]
async fn the_authenticated_scope_cannot_be_minted() {
    let dir = temp_dir("attack-scope");
    let port = free_port();
    let server = Server::start_with(&dir.join("data"), port, &[]);
    let minted = client()
        .get(format!(
            "{}/prod/login-as-guest?scope=authenticated",
            server.base
        ))
        .send()
        .await
        .expect("login");
    assert_eq!(minted.status(), 403);
    let text = minted.text().await.expect("body");
    assert!(text.contains("--dev-mint-scopes"), "{text}");
    // A guest token stays out of the authenticated-only route.
    let guest = guest_token(&server.base).await;
    let refused = client()
        .post(format!("{}/prod/match-events", server.base))
        .header("Authorization", &guest)
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 403);
    server.stop();

    // The development switch is refused beyond loopback.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
        .args(["serve", "--dev-mint-scopes", "--listen"])
        .arg(format!("0.0.0.0:{}", free_port()))
        .arg("--data-dir")
        .arg(dir.join("other"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback only"), "{stderr}");
}

/// Findings 2 and 11: a batch is bounded in events, bytes and answer; memory stays bounded.
#[tokio::test(flavor = "multi_thread")]
async fn batch_floods_are_refused_and_memory_stays_bounded() {
    let dir = temp_dir("attack-batch");
    let port = free_port();
    let server = Server::start_with(&dir.join("data"), port, &[]);
    let token = guest_token(&server.base).await;
    let before = server.rss_bytes();
    let mut peak = before;
    let flood = "{}\n".repeat(600_000);
    for _ in 0..5 {
        let response = client()
            .post(format!("{}/prod/put-records", server.base))
            .header("Authorization", &token)
            .header("Content-Type", "application/x-ndjson")
            .body(flood.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 413);
        let text = response.text().await.expect("body");
        assert!(
            text.contains("600000 events") && text.contains("at most 500"),
            "{text}"
        );
        peak = peak.max(server.rss_bytes());
    }
    // Batches at the limit, every event breaking many rules: the answer stays small.
    let bad: Vec<Value> = (0..500)
        .map(|i| json!({ "event_id": "a b", "event_type": "Dance", "updated_at": i, "x": 1, "y": 2 }))
        .collect();
    for _ in 0..5 {
        let response = client()
            .post(format!("{}/prod/put-records", server.base))
            .header("Authorization", &token)
            .json(&bad)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200);
        let answer = response.bytes().await.expect("answer");
        assert!(answer.len() < 1 << 20, "a {} byte answer", answer.len());
        peak = peak.max(server.rss_bytes());
    }
    // Framing follows the content type: NDJSON whose first line starts with `[` is NDJSON.
    let lines = format!("[1]\n{}\n", game_event("x"));
    let framed: Value = client()
        .post(format!("{}/prod/put-records", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (framed["rejected"].clone(), framed["accepted"].clone()),
        (json!(1), json!(1)),
        "{framed}"
    );
    // A batch over its byte limit is refused with the batch's limit, not the event's.
    let big_event = format!(
        r#"{{"event_id": "1", "event_type": "Login", "event_data": "{}"}}"#,
        "x".repeat(70_000)
    );
    let oversized = client()
        .post(format!("{}/prod/put-records", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/x-ndjson")
        .body(format!("{big_event}\n{}\n", game_event("x")))
        .send()
        .await
        .expect("post");
    assert_eq!(oversized.status(), 200);
    let answer: Value = oversized.json().await.expect("json");
    assert_eq!(
        answer["results"][0]["violations"][0]["code"], "too_large",
        "{answer}"
    );
    assert_eq!(answer["rejected"], 1);
    let growth = peak.saturating_sub(before);
    println!("rss before {} MiB, peak {} MiB", before >> 20, peak >> 20);
    assert!(growth < 400 << 20, "memory grew by {} MiB", growth >> 20);
    server.stop();
    // The oversized event was refused and kept, with its code, like any refused event.
    pyiceberg_check(
        &dir.join("data"),
        json!({ "analytics_events_db.events_table_quarantine": { "codes": { "too_large": 1 } } }),
    );
}

/// Finding 3: slow and idle connections are closed by their deadlines; others are served.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_connections_are_closed_while_others_are_served() {
    let dir = temp_dir("attack-slow");
    let port = free_port();
    let server = Server::start_with(
        &dir.join("data"),
        port,
        &["--header-timeout-s", "2", "--body-timeout-s", "3"],
    );
    let token = guest_token(&server.base).await;
    let mut idle: Vec<TcpStream> = (0..50).map(|_| raw(port, b"")).collect();
    let mut half: Vec<TcpStream> = (0..10)
        .map(|_| raw(port, b"POST /prod/put-record HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    let mut slow_body = raw(
        port,
        format!(
            "POST /prod/put-record HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    );
    for _ in 0..5 {
        assert!(
            healthz_within(&server.base, Duration::from_secs(1)).await,
            "health check held up"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let started = Instant::now();
    for stream in idle.iter_mut().chain(half.iter_mut()) {
        let (_, closed) = read_until_closed(stream, Duration::from_secs(6));
        assert!(closed, "a connection without complete headers stayed open");
    }
    let (answer, _) = read_until_closed(&mut slow_body, Duration::from_secs(6));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    println!("deadlines enforced within {:?}", started.elapsed());
    assert!(healthz_within(&server.base, Duration::from_secs(1)).await);
    server.stop();
}

/// Finding 3: the connection cap holds; connections over it are closed on accept.
#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_closed() {
    let dir = temp_dir("attack-cap");
    let port = free_port();
    let server = Server::start_with(&dir.join("data"), port, &["--max-connections", "20"]);
    let mut streams: Vec<TcpStream> = (0..40).map(|_| raw(port, b"")).collect();
    let closed = streams
        .iter_mut()
        .map(|s| read_until_closed(s, Duration::from_millis(600)).1)
        .filter(|closed| *closed)
        .count();
    assert!(
        closed >= 20,
        "only {closed} of 40 connections over a cap of 20 were closed"
    );
    drop(streams);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(healthz_within(&server.base, Duration::from_secs(2)).await);
    let metrics = common::metrics_text(&server.base).await;
    assert!(
        metrics.contains("contractc_limited_total{limit=\"connection\"}"),
        "{metrics}"
    );
    server.stop();
}

/// Finding 4: a large body is refused before it is uploaded (no token, or too large).
#[tokio::test(flavor = "multi_thread")]
async fn large_bodies_are_refused_before_upload() {
    let dir = temp_dir("attack-upload");
    let port = free_port();
    let server = Server::start_with(&dir.join("data"), port, &[]);
    let token = guest_token(&server.base).await;
    for (authorization, status) in [
        (String::new(), "401"),
        (format!("Authorization: {token}\r\n"), "413"),
    ] {
        let mut stream = raw(
            port,
            format!(
                "POST /prod/put-record HTTP/1.1\r\nHost: x\r\n{authorization}Content-Type: application/json\r\nContent-Length: 62914560\r\n\r\n"
            )
            .as_bytes(),
        );
        // Not a byte of the 60 MiB body is sent: the answer must come anyway.
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(2));
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
    }
    server.stop();
}

/// Finding 5: guest creation is throttled per client; a known guest still logs in.
#[tokio::test(flavor = "multi_thread")]
async fn guest_creation_is_throttled() {
    let dir = temp_dir("attack-guests");
    let port = free_port();
    let server = Server::start_with(
        &dir.join("data"),
        port,
        &["--guests-per-minute", "60", "--guest-burst", "5"],
    );
    let mut created = Vec::new();
    let mut throttled = 0;
    for _ in 0..20 {
        let response = client()
            .get(format!("{}/prod/login-as-guest", server.base))
            .send()
            .await
            .expect("login");
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            throttled += 1;
        } else {
            assert_eq!(response.status(), 200);
            created.push(response.json::<Value>().await.expect("json"));
        }
    }
    assert!(
        created.len() <= 6 && throttled >= 14,
        "{} created, {throttled} throttled",
        created.len()
    );
    let guest = &created[0];
    let again = client()
        .get(format!(
            "{}/prod/login-as-guest?user_id={}&guest_secret={}",
            server.base,
            guest["user_id"].as_str().expect("user"),
            guest["guest_secret"].as_str().expect("secret")
        ))
        .send()
        .await
        .expect("login");
    assert_eq!(again.status(), 200, "a known guest is not throttled");
    server.stop();
}

/// Finding 6: one damaged log record costs that event only, not every one after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_bit_flip_in_the_log_costs_one_event() {
    let dir = temp_dir("attack-wal");
    let data = dir.join("data");
    let port = free_port();
    // No commit during the test: every event is only in the write-ahead log at the crash.
    let server = Server::start_with(&data, port, &["--commit-interval-ms", "3600000"]);
    let token = guest_token(&server.base).await;
    for i in 0..100 {
        let body = game_event(&format!("event {i:03}"));
        let response = client()
            .post(format!("{}/prod/put-record", server.base))
            .header("Authorization", &token)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200);
    }
    server.crash();
    let segment = std::fs::read_dir(data.join("wal"))
        .expect("wal")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .max()
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let at = bytes.len() / 10; // early in the segment: 90 intact records follow
    bytes[at] ^= 0x04;
    std::fs::write(&segment, bytes).expect("write");
    let server = Server::start_with(&data, port, &["--commit-interval-ms", "300"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.stop();
    pyiceberg_check(
        &data,
        json!({ "analytics_events_db.events_table": { "rows": 99, "at_most_once": true, "column": "event_data" } }),
    );
}

/// Finding 8: browsers can send `Authorization` from an allowed origin.
#[tokio::test(flavor = "multi_thread")]
async fn browsers_preflight_and_send_credentials_from_allowed_origins() {
    let dir = temp_dir("attack-cors");
    let port = free_port();
    let origin = "https://game.example.com";
    let server = Server::start_with(&dir.join("data"), port, &["--cors-origin", origin]);
    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/prod/put-record", server.base),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .expect("ascii")
            .contains("Authorization")
    );
    let token = guest_token(&server.base).await;
    let sent = client()
        .post(format!("{}/prod/put-record", server.base))
        .header("Origin", origin)
        .header("Authorization", format!("BEARER {token}"))
        .body(game_event("x"))
        .send()
        .await
        .expect("post");
    assert_eq!(sent.status(), 200, "an upper-case scheme works too");
    assert_eq!(sent.headers()["access-control-allow-origin"], origin);
    // Another origin may read answers, but never with credentials.
    let other = client()
        .post(format!("{}/prod/put-record", server.base))
        .header("Origin", "https://evil.example")
        .header("Authorization", &token)
        .body(game_event("x"))
        .send()
        .await
        .expect("post");
    assert_eq!(other.headers()["access-control-allow-origin"], "*");
    assert!(
        !other
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    server.stop();
}

/// Findings 9 and 10: replayed rows keep their claims; the data directory is private.
#[tokio::test(flavor = "multi_thread")]
async fn replayed_rows_keep_their_player_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = temp_dir("attack-replay");
    let data = dir.join("data");
    let port = free_port();
    let server = Server::start_with(&data, port, &["--commit-interval-ms", "3600000"]);
    let token = guest_token(&server.base).await;
    let response = client()
        .post(format!("{}/prod/put-record", server.base))
        .header("Authorization", &token)
        .header("X-Contract-Version", "1.0.0-client")
        .body(game_event("x"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    server.crash();
    let server = Server::start_with(&data, port, &["--commit-interval-ms", "300"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.stop();
    // The row keeps the player and the client's contract version through the replay.
    pyiceberg_check(
        &data,
        json!({ "analytics_events_db.events_table": {
            "rows": 1, "null_counts": { "player_id": 0 },
            "exactly_once": ["1.0.0-client"], "column": "client_version" } }),
    );
    let mut checked = 0;
    let mut pending = vec![data.clone()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).expect("metadata");
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{} is {mode:o}", path.display());
            pending.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .filter_map(Result::ok)
                    .map(|e| e.path()),
            );
        } else {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 10, "only {checked} entries");
}

/// Finding 11: an `aud` given as an array is accepted when it names the audience.
#[tokio::test(flavor = "multi_thread")]
async fn audiences_may_be_an_array() {
    use contract_serve::identity::{Audience, Claims};
    let claims: Claims = serde_json::from_value(json!({
        "sub": "p", "iss": "i", "aud": ["other", "gamebackend"], "scope": "guest",
        "iat": 0, "nbf": 0, "exp": 1
    }))
    .expect("claims with an array audience");
    assert_eq!(
        claims.aud,
        Audience::Many(vec!["other".into(), "gamebackend".into()])
    );
}

/// Fuzzing the request path: random request lines, headers and bodies, raw on the socket. The
/// server answers each with a well-formed status line or closes the connection, and stays up.
#[test]
fn random_requests_never_take_the_server_down() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let dir = temp_dir("attack-fuzz");
    let port = free_port();
    let server = Server::start_with(&dir.join("data"), port, &["--header-timeout-s", "2"]);
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("OPTIONS".to_string()),
        "[A-Z]{1,8}",
    ];
    let path = prop_oneof![
        Just("/prod/put-record".to_string()),
        Just("/prod/put-records".to_string()),
        Just("/prod/login-as-guest".to_string()),
        "/[a-z/?=&%.-]{0,40}",
    ];
    let header = (
        prop_oneof![
            Just("Authorization".to_string()),
            Just("Content-Type".to_string()),
            Just("Content-Length".to_string()),
            Just("Origin".to_string()),
            Just("Transfer-Encoding".to_string()),
            "[A-Za-z-]{1,20}",
        ],
        "[ -~]{0,60}",
    );
    let request = (
        method,
        path,
        proptest::collection::vec(header, 0..6),
        proptest::collection::vec(any::<u8>(), 0..300),
    );
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(&request, |(method, path, headers, body)| {
            let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut stream = raw(port, head.as_bytes());
            let _ = stream.write_all(&body);
            let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(3));
            if !answer.is_empty() {
                let text = String::from_utf8_lossy(&answer);
                prop_assert!(
                    text.starts_with("HTTP/1.1 "),
                    "not an HTTP answer: {text:.100}"
                );
                let status: u16 = text[9..12].parse().unwrap_or(0);
                prop_assert!(
                    (100..600).contains(&status) && status != 500,
                    "status {status}: {text:.300}"
                );
            }
            Ok(())
        })
        .expect("the server answered every random request sanely");
    let alive = TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(alive, "the server is gone");
    server.stop();
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(Tmpfs(path.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk: the log cannot take an event, so it is answered 503 (never 200) and kept
/// nowhere; once space is back `serve` recovers by itself, and the table holds exactly the
/// events answered 200.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_with_503_keeps_nothing_refused_and_recovers() {
    let dir = temp_dir("attack-disk");
    let mount = dir.join("disk");
    let _tmpfs = match Tmpfs::mount(&mount, "16m") {
        Ok(tmpfs) => tmpfs,
        Err(error) => {
            // Loud, not silent: the run's output says this test did not run.
            eprintln!("SKIPPED a_full_disk_…: cannot mount a tmpfs here ({error}); run as root");
            println!("SKIPPED: cannot mount a tmpfs ({error})");
            return;
        }
    };
    // The data directory is the tmpfs itself; the server's log stays outside it.
    let data = mount.clone();
    let port = free_port();
    let server = Server::start_with(&data, port, &["--commit-interval-ms", "300"]);
    let token = guest_token(&server.base).await;
    // Leave about a megabyte: a few hundred 4 KB events.
    let free = rustix::fs::statvfs(&mount).expect("statvfs");
    let available = free.f_bavail * free.f_frsize;
    let filler = mount.join("filler");
    std::fs::write(
        &filler,
        vec![0u8; (available.saturating_sub(1 << 20)) as usize],
    )
    .expect("fill");

    let post = |marker: String| {
        let base = server.base.clone();
        let token = token.clone();
        async move {
            let body = game_event(&format!("{marker}{}", "x".repeat(4000)));
            let response = client()
                .post(format!("{base}/prod/put-record"))
                .header("Authorization", &token)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{marker}: {e:?}"));
            (
                response.status().as_u16(),
                response.headers().contains_key("retry-after"),
            )
        }
    };
    let mut accepted = Vec::new();
    let mut refused = 0;
    let mut streak = 0;
    for i in 0..3000 {
        let marker = format!("m{i:06}");
        match post(marker.clone()).await {
            (200, _) => {
                accepted.push(marker);
                streak = 0;
            }
            (503, retry_after) => {
                assert!(retry_after, "a 503 says when to retry");
                refused += 1;
                streak += 1;
                if streak >= 20 {
                    break;
                }
            }
            (status, _) => panic!("a full disk answered {status}"),
        }
    }
    assert!(
        refused >= 20,
        "the disk never filled ({} accepted)",
        accepted.len()
    );
    std::fs::remove_file(&filler).expect("free the disk");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..20 {
        let marker = format!("after{i:02}");
        let (status, _) = post(marker.clone()).await;
        assert_eq!(status, 200, "serve did not recover once space was back");
        accepted.push(marker);
    }
    server.stop();
    println!("{} accepted, {refused} refused with 503", accepted.len());
    let prefixes: Vec<String> = accepted.clone();
    pyiceberg_check(
        &data,
        json!({ "analytics_events_db.events_table": {
            "rows": accepted.len(),
            "prefix_exactly_once": prefixes, "column": "event_data", "prefix_length": 7 } }),
    );
}

/// The reference's SDKs refresh their access token before it expires: a refresh token buys a
/// new one of the same scope, and is never an access token itself.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_buy_new_access_tokens_and_nothing_else() {
    let dir = temp_dir("attack-refresh");
    let port = free_port();
    let server = Server::start_with(&dir.join("data"), port, &[]);
    let login: Value = client()
        .get(format!("{}/prod/login-as-guest", server.base))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let refresh = login["refresh_token"].as_str().expect("refresh token");
    // A refresh token is not an access token.
    let misuse = client()
        .post(format!("{}/prod/put-record", server.base))
        .header("Authorization", refresh)
        .body(game_event("x"))
        .send()
        .await
        .expect("post");
    assert_eq!(misuse.status(), 401);
    let refreshed: Value = client()
        .get(format!("{}/prod/refresh-access-token", server.base))
        .query(&[("refresh_token", refresh)])
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    assert_eq!(refreshed["user_id"], login["user_id"]);
    assert_eq!(refreshed["auth_token_expires_in"], 900);
    let token = refreshed["auth_token"].as_str().expect("new access token");
    let sent = client()
        .post(format!("{}/prod/put-record", server.base))
        .header("Authorization", token)
        .body(game_event("x"))
        .send()
        .await
        .expect("post");
    assert_eq!(sent.status(), 200);
    // An access token does not refresh; neither does garbage.
    for bad in [login["auth_token"].as_str().expect("token"), "garbage"] {
        let refused = client()
            .get(format!("{}/prod/refresh-access-token", server.base))
            .query(&[("refresh_token", bad)])
            .send()
            .await
            .expect("refresh");
        assert_eq!(refused.status(), 401);
    }
    server.stop();
}
