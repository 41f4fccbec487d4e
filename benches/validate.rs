//! Validation throughput, single thread, bytes in → verdict with every violation out.
//!
//! Three contenders over the same events of the reference shape (90% valid, 10% breaking one
//! rule each), measured in one run so the ratios are fair:
//! - the generated validator (`contract_validators::game_events::validate`);
//! - the `jsonschema` crate on the generated draft-04 model (parse + `iter_errors`);
//! - `serde_json` parsing into `serde_json::Value` alone (the floor of any Value-based check).
//!
//! Then `contractc build` (check + every backend, in memory) for 100 generated contracts.
//! Targets: validator ≥ 2.0× jsonschema and ≥ 1.0× the Value parse; build < 1 s.
//! Run: `cargo bench -p contract-benches`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract_corpus::{self as corpus, REFERENCE_TIME_MICROS};
use contract_support::json::Parser;
use contract_support::{Context, Verdict};
use contract_validators::game_events;
use contractc::source::SourceFile;

const EVENTS: usize = 200_000;
const ROUNDS: usize = 5;

fn events() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/game_events.yaml"
    ))
    .expect("the sample contract");
    let outcome =
        contractc::driver::check_sources(&[SourceFile::new("contracts/game_events.yaml", text)]);
    let set = outcome.contracts.expect("the sample contract checks");
    let contract = &set.contracts[0];
    let invalid: Vec<String> = corpus::cases(&contract.manifest())
        .into_iter()
        .filter(|c| !c.is_valid())
        .map(|c| c.body)
        .collect();
    let types = ["Login", "Logout", "New Game", "Resume Game", "End Game"];
    let texts = [
        "The only thing we have to fear is fear itself.",
        "Ask not what your country can do for you; ask what you can do for your country.",
        "I have a dream",
        "That's one small step for \"man\", one giant leap for mankind.",
    ];
    // A deterministic mix: no RNG crate needed for a fixed pattern.
    (0..EVENTS)
        .map(|i| {
            if i % 10 == 9 {
                invalid[(i / 10) % invalid.len()].clone().into_bytes()
            } else {
                format!(
                    r#"{{"event_id": "{:05}", "event_type": "{}", "updated_at": "2024-02-22 {:02}:{:02}:{:02}", "event_data": "{}"}}"#,
                    i % 20 + 1,
                    types[i % types.len()],
                    i % 12,
                    i % 60,
                    (i * 7) % 60,
                    texts[i % texts.len()]
                )
                .into_bytes()
            }
        })
        .collect()
}

/// Best of `ROUNDS` runs of `f` over all events; returns events per second.
fn measure(name: &str, events: &[Vec<u8>], mut f: impl FnMut(&[u8]) -> usize) -> f64 {
    let mut best = Duration::MAX;
    let mut checksum = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        checksum = 0;
        for e in events {
            checksum += f(black_box(e));
        }
        best = best.min(start.elapsed());
    }
    let rate = events.len() as f64 / best.as_secs_f64();
    println!(
        "{name:<44} {:>12.0} events/s   ({:>6.1} ns/event, checksum {checksum})",
        rate,
        1e9 / rate
    );
    rate
}

fn build_time() -> Duration {
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/match_events.yaml"
    ))
    .expect("the sample contract");
    let sources: Vec<Arc<SourceFile>> = (0..100)
        .map(|i| {
            let text = base
                .replace(
                    "contract: match_events",
                    &format!("contract: match_events_{i}"),
                )
                .replace("name: match_events", &format!("name: match_events_{i}"))
                .replace("/prod/match-events", &format!("/prod/match-events-{i}"));
            SourceFile::new(format!("contracts/match_events_{i}.yaml"), text)
        })
        .collect();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let outcome = contractc::driver::check_sources(&sources);
        let set = outcome.contracts.expect("100 contracts check");
        let files = contractc::backend::emit_all(&set, &contractc::backend::Options::default());
        black_box(files.len());
        best = best.min(start.elapsed());
    }
    best
}

fn main() {
    let events = events();
    let bytes: usize = events.iter().map(Vec::len).sum();
    println!(
        "{} events, {:.0} bytes on average, single thread, best of {ROUNDS}\n",
        events.len(),
        bytes as f64 / events.len() as f64
    );

    let ctx = Context {
        ingest_time_micros: REFERENCE_TIME_MICROS,
    };
    let mut parser = Parser::new();
    let generated = measure("generated validator (all violations)", &events, |e| {
        let outcome = game_events::validate(&mut parser, e, &ctx);
        usize::from(outcome.verdict() == Verdict::Accept) + outcome.violations.len()
    });

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../generated/game_events/apigateway/request-model.json"
    ))
    .expect("generated model");
    let model: serde_json::Value = serde_json::from_str(&text).expect("model JSON");
    let schema = jsonschema::draft4::new(&model).expect("draft-04 model");
    let jsonschema_rate =
        measure(
            "jsonschema crate (parse + iter_errors)",
            &events,
            |e| match serde_json::from_slice::<serde_json::Value>(e) {
                Ok(v) => schema.iter_errors(&v).count(),
                Err(_) => 1,
            },
        );
    let value_rate = measure("serde_json → Value only (no checks)", &events, |e| {
        serde_json::from_slice::<serde_json::Value>(e)
            .map_or(1, |v| v.as_object().map_or(0, |o| o.len()))
    });

    println!();
    println!(
        "generated / jsonschema : {:.2}x   (target >= 2.0x)",
        generated / jsonschema_rate
    );
    println!(
        "generated / Value parse: {:.2}x   (target >= 1.0x)",
        generated / value_rate
    );

    let build = build_time();
    println!(
        "\ncontractc build, 100 contracts (check + all backends, in memory): {:.0?}   (target < 1 s)",
        build
    );
}
