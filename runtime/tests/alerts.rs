//! Quality alerts on `serve` (#24): game_events' `broken_build` (more than 5% of events
//! quarantined or refused over 10 minutes) fires on refused events, shows on `/metrics`, the
//! console and the webhook, and clears once good events bring the share under 5%.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, client, free_port, guest_token, local_now, temp_dir};
use serde_json::{Value, json};

/// A webhook receiver: every POST body it gets, answered 200.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(value) = serde_json::from_slice(&body)
            {
                store.lock().expect("lock").push(value);
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, received)
}

async fn post_events(base: &str, token: &str, events: &[Value]) -> Value {
    let response = client()
        .post(format!("{base}/prod/put-records"))
        .header("Authorization", token)
        .json(&events)
        .send()
        .await
        .expect("post");
    response.json().await.expect("verdicts")
}

fn event(i: usize, valid: bool) -> Value {
    json!({
        "event_id": if valid { format!("{i:05}") } else { "not an id!".to_string() },
        "event_type": "Login",
        "updated_at": local_now(),
    })
}

/// `contractc_alert_firing` for game_events' `alert`, as `/metrics` shows it.
async fn firing(base: &str, alert: &str) -> Option<i64> {
    let text = common::metrics_text(base).await;
    let series = format!("contractc_alert_firing{{alert=\"{alert}\",contract=\"game_events\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

async fn wait_for(base: &str, alert: &str, value: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while firing(base, alert).await != Some(value) {
        assert!(
            Instant::now() < deadline,
            "{alert} never became {value}: {:?}",
            firing(base, alert).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn console_alert(base: &str, alert: &str) -> Value {
    let overview: Value = client()
        .get(format!("{base}/console/api/overview"))
        .send()
        .await
        .expect("overview")
        .json()
        .await
        .expect("overview JSON");
    let contract = overview["contracts"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "game_events"))
        .cloned()
        .expect("game_events on the console");
    contract["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alert"] == alert))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_fires_on_bad_events_and_clears_on_good_ones() {
    let (hook, received) = webhook();
    let dir = temp_dir("alerts");
    let server = Server::start_with(
        &dir,
        free_port(),
        &[
            "--commit-interval-ms",
            "300",
            "--guests-per-minute",
            "0",
            "--console-open",
            "--alert-interval-s",
            "1",
            "--alert-webhook",
            &hook,
        ],
    );
    let base = &server.base;
    // Every declared alert is on /metrics from the start, quiet.
    for alert in [
        "broken_build",
        "silence",
        "quarantine_growth",
        "commit_failures",
    ] {
        assert_eq!(firing(base, alert).await, Some(0), "{alert}");
    }
    let token = guest_token(base).await;

    let good: Vec<Value> = (0..20).map(|i| event(i, true)).collect();
    assert_eq!(post_events(base, &token, &good).await["accepted"], 20);
    let bad: Vec<Value> = (0..5).map(|i| event(i, false)).collect();
    assert_eq!(post_events(base, &token, &bad).await["rejected"], 5);
    // 5 of 25 refused: 20% > 5%.
    wait_for(base, "broken_build", 1).await;
    let shown = console_alert(base, "broken_build").await;
    assert_eq!(shown["firing"], true, "{shown}");
    assert!(
        (shown["value"].as_f64().expect("value") - 0.2).abs() < 1e-9,
        "{shown}"
    );
    assert!(shown["summary"].as_str().is_some_and(|s| s.contains("5%")));

    // 200 good events: 5 of 225 is 2.2%, under 5%.
    for chunk in 0..4 {
        let good: Vec<Value> = (0..50).map(|i| event(100 + chunk * 50 + i, true)).collect();
        assert_eq!(post_events(base, &token, &good).await["accepted"], 50);
    }
    wait_for(base, "broken_build", 0).await;
    assert_eq!(console_alert(base, "broken_build").await["firing"], false);
    // Serve has run for less than `silence`'s 30 minutes: it does not fire on a fresh start.
    assert_eq!(firing(base, "silence").await, Some(0));

    // The webhook got both changes, in order.
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().expect("lock").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posts = received.lock().expect("lock").clone();
    let states: Vec<(&str, &str)> = posts
        .iter()
        .map(|p| {
            (
                p["state"].as_str().unwrap_or(""),
                p["status"]["alert"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("firing", "broken_build"), ("resolved", "broken_build")],
        "{posts:?}"
    );
    assert_eq!(posts[0]["status"]["contract"], "game_events");
    assert_eq!(posts[0]["status"]["window_minutes"], 10);
    server.stop();
}
