//! `synth` generates valid events that the generated validators accept, and invalid ones that
//! fail with exactly the codes they are labelled with, reproducibly, for every sample contract.

use contract_support::json::Parser;
use contract_support::{Context, Manifest, Verdict};
use contract_synth::{Generator, SynthEvent};

mod common;

/// A fixed ingest time (2026-01-15T10:00:00Z) keeps the test independent of the clock.
const NOW: i64 = 1_768_471_200;

/// The manifests of the sample contracts, as built into the runtime.
fn contracts() -> Vec<&'static Manifest> {
    contract_validators::ALL
        .iter()
        .map(|c| c.manifest())
        .collect()
}

fn judge(contract: &str, body: &str) -> (Verdict, Vec<String>) {
    let spec = contract_validators::ALL
        .iter()
        .find(|c| c.manifest().name == contract)
        .expect("compiled in");
    let mut parser = Parser::new();
    let ctx = Context {
        ingest_time_micros: NOW * 1_000_000,
    };
    let (verdict, violations) = spec.judge(&mut parser, body.as_bytes(), &ctx);
    (
        verdict,
        violations
            .iter()
            .map(|v| v.code.as_str().to_string())
            .collect(),
    )
}

/// The events with their dedup ids taken out (each run's events are new events, with new ids),
/// and those ids in order.
fn without_dedup_ids(
    contract: &Manifest,
    events: Vec<SynthEvent>,
) -> (Vec<String>, Vec<SynthEvent>) {
    let Some(dedup) = &contract.ingest.dedup else {
        return (Vec::new(), events);
    };
    let key = format!("\"{}\":\"", dedup.field);
    // A made id is a UUIDv7; the corpus's broken ones (a wrong format, say) stay in the body.
    let made = |text: &str| {
        let bytes = text.as_bytes();
        text.len() == 36 && [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-') && bytes[14] == b'7'
    };
    let mut ids = Vec::new();
    let events = events
        .into_iter()
        .map(|mut event| {
            let mut body = String::new();
            let mut rest = event.body.as_str();
            while let Some(at) = rest.find(&key) {
                let start = at + key.len();
                body.push_str(&rest[..start]);
                rest = &rest[start..];
                if let Some(id) = rest.get(..36).filter(|id| made(id)) {
                    ids.push(id.to_string());
                    body.push('-');
                    rest = &rest[36..];
                }
            }
            body.push_str(rest);
            event.body = body;
            event
        })
        .collect();
    (ids, events)
}

#[test]
fn the_same_seed_gives_the_same_events() {
    for contract in contracts() {
        let a: Vec<_> = {
            let mut g = Generator::new(contract, 1, 0.3, NOW);
            (0..1000).map(|_| g.next_event()).collect()
        };
        let b: Vec<_> = {
            let mut g = Generator::new(contract, 1, 0.3, NOW);
            (0..1000).map(|_| g.next_event()).collect()
        };
        // The same events, but each run's are new events: their dedup ids differ.
        let (a_ids, a) = without_dedup_ids(contract, a);
        let (b_ids, b) = without_dedup_ids(contract, b);
        assert_eq!(a, b, "{}", contract.name);
        if contract.ingest.dedup.is_some() {
            let fresh = a_ids.iter().zip(&b_ids).all(|(x, y)| x != y);
            assert!(fresh && a_ids.len() > 800, "{}: {a_ids:?}", contract.name);
        }
        let mut other = Generator::new(contract, 2, 0.3, NOW);
        assert_ne!(
            a[0],
            other.next_event(),
            "{}: seeds must matter",
            contract.name
        );
    }
}

#[test]
fn valid_events_pass_and_labelled_ones_fail_as_labelled() {
    for contract in contracts() {
        let mut generator = Generator::new(contract, 1, 0.0, NOW);
        for i in 0..1000 {
            let event = generator.next_event();
            let (verdict, codes) = judge(&contract.name, &event.body);
            assert_eq!(
                verdict,
                Verdict::Accept,
                "{} event {i} {codes:?}: {}",
                contract.name,
                event.body
            );
            assert!(codes.is_empty(), "{} event {i}: {codes:?}", contract.name);
        }
        let mut generator = Generator::new(contract, 7, 0.3, NOW);
        let mut invalid = 0;
        for _ in 0..1000 {
            let event = generator.next_event();
            let (verdict, codes) = judge(&contract.name, &event.body);
            if event.expect.is_empty() {
                assert_eq!(
                    verdict,
                    Verdict::Accept,
                    "{}: {}",
                    contract.name,
                    event.body
                );
            } else {
                invalid += 1;
                let mut sorted = codes.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(
                    sorted, event.expect,
                    "{} {:?}: {}",
                    contract.name, event.label, event.body
                );
            }
        }
        assert!(
            (200..400).contains(&invalid),
            "{}: {invalid} invalid of 1000 at ratio 0.3",
            contract.name
        );
    }
}

fn synth_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
        .arg("synth")
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("synth runs")
}

#[test]
fn synth_streams_a_count_or_a_duration_and_writes_its_labels() {
    let counted = synth_cli(&["--dry-run", "--max-count", "7", "--seed", "3"]);
    assert!(counted.status.success());
    assert_eq!(String::from_utf8_lossy(&counted.stdout).lines().count(), 7);
    let stderr = String::from_utf8_lossy(&counted.stderr);
    assert!(
        stderr.contains("generated 7 events") && stderr.contains("events/s"),
        "{stderr}"
    );

    let started = std::time::Instant::now();
    let timed = synth_cli(&[
        "--dry-run",
        "--duration",
        "1s",
        "--contract",
        "match_events",
    ]);
    assert!(timed.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(String::from_utf8_lossy(&timed.stdout).lines().count() > 10);

    let out = std::env::temp_dir().join(format!("synth-out-{}.ndjson", std::process::id()));
    let labelled = synth_cli(&[
        "--dry-run",
        "--max-count",
        "50",
        "--invalid-ratio",
        "0.5",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(labelled.status.success());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .expect("out file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 50);
    assert!(
        lines
            .iter()
            .any(|l| l["label"].is_string() && !l["expect"].as_array().expect("codes").is_empty())
    );
    let _ = std::fs::remove_file(&out);
}

/// The README's example, as a newcomer runs it, against `serve` as it starts by default (the
/// per-address limit on new guests on): synth's players sign in once and renew their tokens,
/// so no login is refused and every event gets an answer that agrees with its label.
#[test]
fn the_readme_example_runs_clean_against_a_default_serve() {
    let dir = common::temp_dir("synth-readme");
    let port = common::free_port();
    let server = common::Server::start_with(&dir, port, &[]);
    let output = synth_cli(&[
        "--max-count",
        "10000",
        "--invalid-ratio",
        "0.1",
        "--login-endpoint",
        &format!("http://127.0.0.1:{port}/prod/"),
        "--backend-endpoint",
        &format!("http://127.0.0.1:{port}/prod/put-record"),
    ]);
    let summary = String::from_utf8_lossy(&output.stderr);
    println!("{summary}");
    assert!(output.status.success(), "synth failed:\n{summary}");
    assert!(summary.contains("sent 10000 "), "{summary}");
    assert!(summary.contains("failed 0 "), "{summary}");
    assert!(
        summary.contains("mismatches against labels: 0"),
        "{summary}"
    );
    let new_guests: u64 = summary
        .split_once("new guests")
        .and_then(|(before, _)| before.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no count of new guests in:\n{summary}"));
    assert!(
        new_guests <= 100,
        "more new guests than a default serve's burst:\n{summary}"
    );
    server.stop();
}

/// synth's players renew with `serve`'s own identity provider: a refused token is renewed with
/// the refresh token, twice in a row (the second time with the refresh token the first refresh
/// answered, since a refresh token may serve once), without a second sign-in.
#[tokio::test(flavor = "multi_thread")]
async fn players_renew_their_tokens_with_serve_s_refresh_tokens() {
    let dir = common::temp_dir("synth-players");
    let port = common::free_port();
    let server = common::Server::start_with(&dir, port, &[]);
    let players = contract_synth::Players::new(
        common::client(),
        &format!("{}/prod/", server.base),
        "guest",
        1,
    );
    let (player, first) = players.token().await.expect("signed in");
    let second = players
        .renew_refused(player, &first)
        .await
        .expect("refreshed");
    players
        .renew_refused(player, &second)
        .await
        .expect("refreshed again");
    let counts = players.counts();
    assert_eq!(
        (counts.new_guests, counts.refreshes, counts.returning_logins),
        (1, 2, 0),
        "{counts:?}"
    );
    server.stop();
}
