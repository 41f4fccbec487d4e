//! One contract, one verdict: the labelled corpus of each contract (valid events, and events
//! that break one thing each) is judged by the generated Rust validator and by the generated
//! draft-04 model through the `jsonschema` crate. Both must agree with the labels on every rule
//! they can express. (The PySpark rules are checked by `tests/pyspark_conformance.py`.)

use std::path::{Path, PathBuf};

use contract_corpus::{self as corpus, REFERENCE_TIME_MICROS};
use contract_support::json::Parser;
use contract_support::{Context, Verdict};
use contractc::driver;

#[rustfmt::skip]
#[path = "fixtures/all_types/expected/validators/src/all_types.rs"]
#[allow(dead_code)]
mod all_types;
#[rustfmt::skip]
#[path = "fixtures/minimal/expected/validators/src/minimal.rs"]
#[allow(dead_code)]
mod minimal;
#[rustfmt::skip]
#[path = "fixtures/upsert_nested/expected/validators/src/player_profiles.rs"]
#[allow(dead_code)]
mod player_profiles;
use contract_validators::{game_events, match_events};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .to_path_buf()
        .join("..")
}

/// (sorted distinct codes, verdict) from the generated validator of `contract`.
fn rust_verdict(contract: &str, body: &[u8]) -> (Vec<&'static str>, Verdict) {
    let ctx = Context {
        ingest_time_micros: REFERENCE_TIME_MICROS,
    };
    let mut parser = Parser::new();
    macro_rules! run {
        ($module:ident) => {{
            let outcome = $module::validate(&mut parser, body, &ctx);
            let verdict = outcome.verdict();
            if verdict == Verdict::Accept {
                assert!(outcome.event.is_some(), "accepted without an event");
            }
            (
                outcome
                    .violations
                    .iter()
                    .map(|v| v.code.as_str())
                    .collect::<Vec<_>>(),
                verdict,
            )
        }};
    }
    let (mut codes, verdict) = match contract {
        "game_events" => run!(game_events),
        "match_events" => run!(match_events),
        "all_types" => run!(all_types),
        "minimal" => run!(minimal),
        "player_profiles" => run!(player_profiles),
        other => panic!("no validator compiled in for {other}"),
    };
    codes.sort_unstable();
    codes.dedup();
    (codes, verdict)
}

fn contract_files() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("contracts/game_events.yaml"),
        root().join("contracts/match_events.yaml"),
    ];
    for case in ["all_types", "minimal", "upsert_nested"] {
        files.push(
            root()
                .join("tests/fixtures")
                .join(case)
                .join("contract.yaml"),
        );
    }
    files
}

#[test]
fn validators_and_models_agree_with_the_labels() {
    let mut failures = Vec::new();
    let mut judged = 0;
    for file in contract_files() {
        let outcome = driver::check_paths(std::slice::from_ref(&file));
        let set = outcome
            .contracts
            .unwrap_or_else(|| panic!("{} does not check", file.display()));
        for contract in &set.contracts {
            let model = contractc::backend::apigateway::request_model(contract);
            let schema =
                jsonschema::draft4::new(&model).expect("the model is a valid draft-04 schema");
            let cases = corpus::cases(&contract.manifest());
            assert!(
                cases.len() >= 10,
                "{}: only {} cases",
                contract.name,
                cases.len()
            );
            assert!(cases.iter().any(|c| c.is_valid()) && cases.iter().any(|c| !c.is_valid()));
            for case in &cases {
                judged += 1;
                let (codes, verdict) = rust_verdict(&contract.name, case.body.as_bytes());
                if codes != case.codes {
                    failures.push(format!(
                        "rust  {} / {}: expected {:?}, got {:?}\n      {}",
                        contract.name, case.name, case.codes, codes, case.body
                    ));
                }
                if case.is_valid() && verdict != Verdict::Accept {
                    failures.push(format!(
                        "rust  {} / {}: valid but {verdict:?}",
                        contract.name, case.name
                    ));
                }
                let instance: Option<serde_json::Value> = serde_json::from_str(&case.body).ok();
                let model_valid = instance.as_ref().is_some_and(|i| schema.is_valid(i));
                let expected_valid = case.is_valid() || !case.schema_expressible;
                if model_valid != expected_valid {
                    failures.push(format!(
                        "model {} / {}: expected {}, got {}\n      {}",
                        contract.name,
                        case.name,
                        if expected_valid { "valid" } else { "invalid" },
                        if model_valid { "valid" } else { "invalid" },
                        case.body
                    ));
                }
            }
        }
    }
    assert!(judged > 100, "only {judged} cases judged");
    assert!(
        failures.is_empty(),
        "{} disagreement(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
