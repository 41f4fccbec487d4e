//! The generated validators, exercised: verdicts, violation codes and paths, Arrow batches.

use contract_support::json::Parser;
use contract_support::{Code, Context, Enrichment, Policy, Verdict};
use contract_validators::{game_events, match_events};

/// 2024-02-22 12:00:00 UTC.
const NOON: i64 = 1_708_603_200_000_000;

fn ctx() -> Context {
    Context {
        ingest_time_micros: NOON,
    }
}

fn codes(violations: &[contract_support::Violation]) -> Vec<(Code, String)> {
    violations
        .iter()
        .map(|v| (v.code, v.path.clone()))
        .collect()
}

#[test]
fn the_reference_event_is_accepted() {
    let mut parser = Parser::new();
    let body = br#"{"event_id": "00006", "event_type": "Login", "updated_at": "2024-02-22 03:03:02", "event_data": "The only thing we have to fear is fear itself."}"#;
    let outcome = game_events::validate(&mut parser, body, &ctx());
    assert_eq!(outcome.violations, vec![]);
    assert_eq!(outcome.verdict(), Verdict::Accept);
    let event = outcome.event.expect("typed event");
    assert_eq!(event.event_id, "00006");
    assert_eq!(event.variant, game_events::Variant::Login);
    assert_eq!(event.updated_at, 1_708_570_982_000_000);
}

#[test]
fn every_violation_is_reported_with_its_path() {
    let mut parser = Parser::new();
    let body = br#"{"event_id": "a b", "event_type": "Dance", "updated_at": "2024-02-22T03:03:02", "extra": 1, "event_id": "x"}"#;
    let outcome = game_events::validate(&mut parser, body, &ctx());
    assert_eq!(
        codes(&outcome.violations),
        vec![
            (Code::Pattern, "$.event_id".into()),
            (Code::InvalidFormat, "$.updated_at".into()),
            (Code::UnknownField, "$.extra".into()),
            (Code::DuplicateField, "$.event_id".into()),
            (Code::OneOf, "$.event_type".into()),
        ]
    );
    assert_eq!(outcome.verdict(), Verdict::Reject);
}

/// A body and the (code, path) pairs it must produce.
type Case<'a> = (&'a [u8], Vec<(Code, &'a str)>);

#[test]
fn structural_problems() {
    let mut parser = Parser::new();
    let cases: &[Case] = &[
        (b"not json", vec![(Code::InvalidJson, "$")]),
        (b"[1, 2]", vec![(Code::WrongType, "$")]),
        (
            br#"{"event_type": "Login", "updated_at": "2024-02-22 03:03:02"}"#,
            vec![(Code::Missing, "$.event_id")],
        ),
        (
            br#"{"event_id": 6, "event_type": "Login", "updated_at": null}"#,
            vec![
                (Code::WrongType, "$.event_id"),
                (Code::WrongType, "$.updated_at"),
            ],
        ),
    ];
    for (body, expected) in cases {
        let outcome = game_events::validate(&mut parser, body, &ctx());
        let got: Vec<(Code, &str)> = outcome
            .violations
            .iter()
            .map(|v| (v.code, v.path.as_str()))
            .collect();
        assert_eq!(&got, expected, "{}", String::from_utf8_lossy(body));
        assert_eq!(outcome.verdict(), Verdict::Reject);
    }
}

#[test]
fn time_rules_use_ingest_time_and_their_policies() {
    let mut parser = Parser::new();
    // 13h ahead of ingest time: inside the 14h skew.
    let ahead = br#"{"event_id": "1", "event_type": "Login", "updated_at": "2024-02-23 01:00:00"}"#;
    assert_eq!(
        game_events::validate(&mut parser, ahead, &ctx()).verdict(),
        Verdict::Accept
    );
    let too_far =
        br#"{"event_id": "1", "event_type": "Login", "updated_at": "2024-02-23 03:00:01"}"#;
    let outcome = game_events::validate(&mut parser, too_far, &ctx());
    assert_eq!(
        codes(&outcome.violations),
        vec![(Code::NotAfter, "$.updated_at".into())]
    );
    // Older than 30 days (and 12h): quarantined, not rejected.
    let old = br#"{"event_id": "1", "event_type": "Login", "updated_at": "2024-01-01 00:00:00"}"#;
    let outcome = game_events::validate(&mut parser, old, &ctx());
    assert_eq!(outcome.violations[0].policy, Policy::Quarantine);
    assert_eq!(outcome.verdict(), Verdict::Quarantine);
}

#[test]
fn nested_payloads_and_per_variant_fields() {
    let mut parser = Parser::new();
    let started = br#"{"event_id": "123e4567-e89b-12d3-a456-426614174000", "kind": "match_started",
        "occurred_at": "2024-02-22T11:59:00Z", "match_id": "m-0123456789ab", "region": "eu-west",
        "build": {"version": "1.2.3", "platform": "pc"}, "tags": ["ranked"], "map_name": "dust",
        "players": [{"player_id": "123e4567-e89b-12d3-a456-426614174001", "skill": 1200.5},
                    {"player_id": "123e4567-e89b-12d3-a456-426614174002"}]}"#;
    let outcome = match_events::validate(&mut parser, started, &ctx());
    assert_eq!(outcome.violations, vec![]);
    let event = outcome.event.expect("typed");
    let match_events::Variant::MatchStarted(payload) = &event.variant else {
        panic!("{:?}", event.variant)
    };
    assert_eq!(payload.players.len(), 2);
    assert_eq!(payload.players[0].skill, Some(1200.5));

    let bad = br#"{"event_id": "123e4567-e89b-12d3-a456-426614174000", "kind": "match_ended",
        "occurred_at": "2024-02-22T11:59:00Z", "match_id": "m-0123456789ab", "region": "eu-west",
        "build": {"version": "1.2", "platform": "gameboy", "color": "red"}, "map_name": "dust",
        "duration_s": 90000, "scores": {"a": 1, "b": "x"}}"#;
    let outcome = match_events::validate(&mut parser, bad, &ctx());
    assert_eq!(
        codes(&outcome.violations),
        vec![
            (Code::Pattern, "$.build.version".into()),
            (Code::OneOf, "$.build.platform".into()),
            (Code::UnknownField, "$.build.color".into()),
            (Code::Max, "$.duration_s".into()),
            (Code::WrongType, "$.scores.b".into()),
            (Code::UnknownField, "$.map_name".into()),
        ]
    );
    // Unknown fields are quarantined by this contract; the broken rules reject.
    assert_eq!(outcome.verdict(), Verdict::Reject);
}

#[test]
fn batches_carry_iceberg_field_ids() {
    let mut parser = Parser::new();
    let mut batch = game_events::BatchBuilder::new();
    let enrichment = Enrichment {
        ingest_time_micros: NOON,
        contract_version: game_events::VERSION,
        request_id: "req-1",
        jwt_sub: Some("player-1"),
        jwt_claims: &[],
        client_contract_version: Some("1.0.0"),
    };
    for i in 0..3 {
        let body = format!(
            r#"{{"event_id": "{i}", "event_type": "End Game", "updated_at": "2024-02-22 03:03:02"}}"#
        );
        let outcome = game_events::validate(&mut parser, body.as_bytes(), &ctx());
        batch.push(outcome.accepted().expect("valid"), &enrichment);
    }
    let records = batch.finish();
    assert_eq!(records.num_rows(), 3);
    let schema = records.schema();
    let ids: Vec<&str> = schema
        .fields()
        .iter()
        .map(|f| f.metadata()["PARQUET:field_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5", "100", "101", "102", "103", "104"]
    );
    // The enrichments are filled from the request: the client's version among them.
    let client_version = records
        .column_by_name("client_version")
        .expect("client_version column");
    let client_version = client_version
        .as_any()
        .downcast_ref::<contract_support::arrow_array::StringArray>()
        .expect("strings");
    assert_eq!(client_version.value(0), "1.0.0");
    assert!(batch.is_empty());

    let mut batch = match_events::BatchBuilder::new();
    let started = br#"{"event_id": "123e4567-e89b-12d3-a456-426614174000", "kind": "match_ended",
        "occurred_at": "2024-02-22T11:59:00Z", "match_id": "m-0123456789ab", "region": "eu-west",
        "build": {"version": "1.2.3"}, "duration_s": 600, "scores": {"a": 1, "b": 2}, "prize_pool": 12.5}"#;
    let outcome = match_events::validate(&mut parser, started, &ctx());
    assert_eq!(outcome.violations, vec![]);
    batch.push(outcome.accepted().expect("valid"), &enrichment);
    let records = batch.finish();
    assert_eq!(records.num_rows(), 1);
    assert_eq!(
        records.num_columns(),
        match_events::arrow_schema().fields().len()
    );
}
