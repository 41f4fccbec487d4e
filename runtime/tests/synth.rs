//! `synth` generates valid events that the generated validators accept, and invalid ones that
//! fail with exactly the codes they are labelled with, reproducibly, for every sample contract.

use contract_support::json::Parser;
use contract_support::{Context, Manifest, Verdict};
use contract_synth::Generator;

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
        assert_eq!(a, b, "{}", contract.name);
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
