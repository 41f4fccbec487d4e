//! The cost of an old client's event (#20): judging an event of a supported release (its
//! validator, the upcast, the current validator, buffered) as a ratio to judging an event of the
//! current version (the current validator, buffered), over the same number of random valid
//! events of each, in one run. Target: ≤ 1.3×.
//!
//! It needs a contract with a released version, which this repository's contracts do not have
//! yet: run it in the versioned copy (game_events 2.0.0 with 1.2.0 released),
//!
//!     tests/rebuilt_runtime.sh versioned
//!     cd "${CARGO_TARGET_DIR:-target}/versioned-workspace" && cargo bench -p contract-benches --bench versions
//!
//! In a build without one it says so and measures nothing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use contract_corpus::random::Generator;
use contract_support::json::Parser;
use contract_support::{AnyContract, Context, Enrichment, Verdict};

const EVENTS: usize = 100_000;
const ROUNDS: usize = 5;

fn events(manifest: &'static contract_support::Manifest, now_secs: i64) -> Vec<Vec<u8>> {
    Generator::new(manifest, 7, 0.0, now_secs)
        .take(EVENTS)
        .map(|e| e.body.into_bytes())
        .collect()
}

/// The best of ROUNDS runs judging every event as `version` into a fresh buffer.
fn judge_all(
    spec: &'static dyn AnyContract,
    events: &[Vec<u8>],
    version: &str,
    ctx: &Context,
) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let mut buffer = spec.event_buffer();
        let mut parser = Parser::new();
        let enrichment = Enrichment {
            client_contract_version: Some(version),
            ..Default::default()
        };
        let started = Instant::now();
        let mut accepted = 0usize;
        for body in events {
            let (verdict, _) = contract_judge::validate(
                Some(&mut buffer),
                spec,
                &mut parser,
                body,
                ctx,
                &enrichment,
            );
            accepted += usize::from(verdict == Verdict::Accept);
            if buffer.len() >= 8192 {
                black_box(buffer.finish());
            }
        }
        best = best.min(started.elapsed());
        assert_eq!(
            accepted,
            events.len(),
            "every generated {version} event is valid"
        );
    }
    best
}

fn main() {
    let Some(spec) = contract_validators::ALL
        .iter()
        .copied()
        .find(|c| !c.releases().is_empty())
    else {
        println!(
            "no contract with a released version in this build: nothing to measure (see benches/versions.rs)"
        );
        return;
    };
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let ctx = Context {
        ingest_time_micros: now_secs * 1_000_000,
    };
    let current = spec.manifest();
    let current_events = events(current, now_secs);
    let baseline = judge_all(spec, &current_events, &current.version, &ctx);
    let per_event = |d: Duration| d.as_nanos() as f64 / EVENTS as f64;
    println!(
        "{} {} (current): {:.0} ns/event, {:.0} events/s",
        current.name,
        current.version,
        per_event(baseline),
        EVENTS as f64 / baseline.as_secs_f64()
    );
    for release in spec.releases() {
        let manifest = release.manifest();
        let old_events = events(manifest, now_secs);
        let took = judge_all(spec, &old_events, &manifest.version, &ctx);
        // Where the time goes: the release's validator alone, the upcast alone.
        let alone = judge_all(*release, &old_events, &manifest.version, &ctx);
        let steps = current
            .versions
            .as_ref()
            .and_then(|v| v.releases.iter().find(|r| r.version == manifest.version))
            .map(|r| r.upcast.clone())
            .unwrap_or_default();
        let started = Instant::now();
        for body in &old_events {
            black_box(contract_judge::upcast::upcast(body, &steps).expect("upcasts"));
        }
        let upcast = started.elapsed();
        let bytes = |events: &[Vec<u8>]| {
            events.iter().map(Vec::len).sum::<usize>() as f64 / events.len() as f64
        };
        println!(
            "{} {} (release: its validator + upcast + the current validator): {:.0} ns/event, {:.2}× the current version's cost (target ≤ 1.3×)",
            manifest.name,
            manifest.version,
            per_event(took),
            took.as_secs_f64() / baseline.as_secs_f64()
        );
        println!(
            "  of which: {} validator alone {:.0} ns/event, upcast alone {:.0} ns/event; mean event {:.0} bytes ({:.0} for {})",
            manifest.version,
            per_event(alone),
            per_event(upcast),
            bytes(&old_events),
            bytes(&current_events),
            current.version
        );
    }
}
