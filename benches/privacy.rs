//! The cost of personal data stored hashed (#23): judging and buffering an event, then
//! HMAC-SHA256 of the two values a game event typically hashes (the player, a device id), as a
//! ratio to judging and buffering it alone, over the same random valid events in one run. Also
//! the quarantine side: scrubbing a payload (members re-emitted, one hashed, one dropped) as a
//! ratio to judging it. Target: ≤ 1.3× on the ingest path.
//!
//! This is the worst case: every value distinct. `serve` hashes at commit, in the flusher, off
//! the request path, and each distinct value once per batch (a player's many events share one
//! hash).
//!
//!     cargo bench -p contract-benches --bench privacy

use std::hint::black_box;
use std::time::{Duration, Instant};

use contract_corpus::random::Generator;
use contract_judge::privacy::{Keys, scrub_payload};
use contract_support::json::Parser;
use contract_support::manifest::Pii;
use contract_support::{AnyContract, Context, Enrichment, Verdict};

const EVENTS: usize = 100_000;
const ROUNDS: usize = 5;

/// The best of ROUNDS runs of `work` over every event.
fn best(events: &[Vec<u8>], mut work: impl FnMut(&[u8]) -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut done = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        done = events.iter().map(|body| work(body)).sum();
        best = best.min(started.elapsed());
    }
    (best, done)
}

fn main() {
    let spec: &'static dyn AnyContract = contract_validators::ALL
        .iter()
        .copied()
        .find(|c| c.manifest().name == "game_events")
        .expect("game_events is compiled in");
    let now_secs = 1_796_300_000;
    let events: Vec<Vec<u8>> = Generator::new(spec.manifest(), 7, 0.0, now_secs)
        .take(EVENTS)
        .map(|e| e.body.into_bytes())
        .collect();
    let ctx = Context {
        ingest_time_micros: now_secs * 1_000_000,
    };
    let keys = Keys::parse(&Keys::document("k1", &[7u8; 32])).expect("keys");
    let player = "8c1f6a9e-3b2d-4e5f-9a7b-1c2d3e4f5a6b";
    let mut buffer = spec.event_buffer();
    let mut parser = Parser::new();
    let mut judge = |body: &[u8]| {
        let enrichment = Enrichment {
            jwt_sub: Some(player),
            ..Default::default()
        };
        let (verdict, _) = contract_judge::validate(
            Some(&mut buffer),
            spec,
            &mut parser,
            body,
            &ctx,
            &enrichment,
        );
        if buffer.len() >= 8192 {
            black_box(buffer.finish());
        }
        usize::from(verdict == Verdict::Accept)
    };
    let (plain, accepted) = best(&events, &mut judge);
    let (hashed, _) = best(&events, |body| {
        let accepted = judge(body);
        black_box(keys.hash(player));
        black_box(keys.hash("device-0123456789abcdef"));
        accepted
    });
    let mut manifest = spec.manifest().clone();
    for field in &mut manifest.fields {
        field.pii = match field.name.as_str() {
            "event_id" => Pii::Hash,
            "event_data" => Pii::Drop,
            _ => field.pii,
        };
    }
    let (scrubbed, _) = best(&events, |body| {
        let text = String::from_utf8_lossy(body);
        black_box(scrub_payload(&text, &manifest, &keys));
        1
    });
    assert_eq!(accepted, EVENTS, "the random events are valid");
    let per_event = |d: Duration| d.as_nanos() as f64 / EVENTS as f64;
    println!(
        "judge + buffer: {:.0} ns/event; with two HMAC-SHA256: {:.0} ns/event ({:.2}x, target <= 1.3x)",
        per_event(plain),
        per_event(hashed),
        hashed.as_secs_f64() / plain.as_secs_f64()
    );
    println!(
        "scrubbing a quarantined payload (one member hashed, one dropped): {:.0} ns/event ({:.2}x of judging it)",
        per_event(scrubbed),
        scrubbed.as_secs_f64() / plain.as_secs_f64()
    );
}
