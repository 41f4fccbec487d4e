//! The generated validators are on the ingest path: no input may make them panic. Random bytes,
//! random JSON-ish text and byte-level mutations of valid events go through every contract's
//! validator, which must always return a verdict (and an event only when it accepts).

use contract_support::json::Parser;
use contract_support::{Context, Enrichment, Verdict};
use proptest::prelude::*;

fn judge_everywhere(bytes: &[u8]) {
    let ctx = Context {
        ingest_time_micros: 1_708_603_200_000_000,
    };
    let mut parser = Parser::new();
    for contract in contract_validators::ALL {
        let mut batch = contract.event_buffer();
        let (verdict, violations) =
            batch.validate_into(&mut parser, bytes, &ctx, &Enrichment::default());
        match verdict {
            Verdict::Accept => assert_eq!(batch.len(), 1),
            Verdict::Reject | Verdict::Quarantine => {
                assert_eq!(batch.len(), 0);
                assert!(!violations.is_empty(), "{:?} without a violation", verdict);
            }
        }
        // Building the Arrow batch from whatever was accepted must work too.
        let _ = batch.finish();
    }
}

const VALID: &[&str] = &[
    r#"{"event_id": "00006", "event_type": "Login", "updated_at": "2024-02-22 03:03:02", "event_data": "fear itself"}"#,
    r#"{"event_id":"123e4567-e89b-12d3-a456-426614174000","kind":"match_started","occurred_at":"2024-02-22T11:59:00Z","match_id":"m-0123456789ab","region":"eu-west","build":{"version":"1.2.3","platform":"pc"},"tags":["a"],"map_name":"dust","players":[{"player_id":"123e4567-e89b-12d3-a456-426614174001","skill":1.5},{"player_id":"123e4567-e89b-12d3-a456-426614174002"}]}"#,
    r#"{"event_id":"123e4567-e89b-12d3-a456-426614174000","kind":"match_ended","occurred_at":"2024-02-22T11:59:00Z","match_id":"m-0123456789ab","region":"eu-west","build":{"version":"1.2.3"},"duration_s":60,"scores":{"a":1,"b":2},"prize_pool":"12.50"}"#,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        judge_everywhere(&bytes);
    }

    #[test]
    fn json_shaped_text(text in r#"[\[\]{}:,"0-9a-z_\\. -]{0,80}"#) {
        judge_everywhere(text.as_bytes());
    }

    #[test]
    fn mutated_valid_events(which in 0usize..3, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut bytes = VALID[which].as_bytes().to_vec();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match op {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        judge_everywhere(&bytes);
    }
}
