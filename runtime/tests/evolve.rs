//! Live schema evolution: a compatible contract change (a new optional field) evolves the table
//! the runtime wrote, in place, keeping the contract's field id; old rows read as NULL in the new
//! column and new rows carry values (checked with pyiceberg). Incompatible changes are refused.

mod common;

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int32Array, RecordBatch};
use common::{pyiceberg_check, temp_dir};
use contract_serve::lake::{Lake, LakeError};
use contract_support::json::Parser;
use contract_support::manifest::{Column, Origin, TableDef, Type};
use contract_support::{Context, Contract, Enrichment};
use contract_validators::game_events;
use serde_json::json;

/// Two accepted game events as a batch of the contract's current schema.
fn batch() -> RecordBatch {
    let mut parser = Parser::new();
    let mut builder = game_events::Spec.new_batch();
    let ctx = Context {
        ingest_time_micros: 1_708_603_200_000_000,
    };
    let enrichment = Enrichment {
        ingest_time_micros: ctx.ingest_time_micros,
        contract_version: "1.0.0",
        request_id: "r",
        jwt_sub: Some("p"),
        jwt_claims: &[],
        client_contract_version: None,
    };
    for i in 0..2 {
        let body = format!(
            r#"{{"event_id": "{i}", "event_type": "Login", "updated_at": "2024-02-22 03:03:02"}}"#
        );
        let (verdict, _) = game_events::Spec.validate_into(
            &mut parser,
            body.as_bytes(),
            &ctx,
            &enrichment,
            Some(&mut builder),
        );
        assert_eq!(verdict, contract_support::Verdict::Accept);
    }
    builder.finish()
}

/// The contract's events table definition.
fn events_table() -> TableDef {
    game_events::Spec.manifest().events_table()
}

/// The events table definition with an extra int column `level` (id 6) after `event_uuid`.
fn with_level(required: bool) -> TableDef {
    let mut definition = events_table();
    definition.columns.insert(
        5,
        Column {
            id: 6,
            name: "level".into(),
            ty: Type::Int,
            required,
            doc: None,
            origin: Origin::Payload,
        },
    );
    definition
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_an_optional_field_evolves_the_table_in_place() {
    let dir = temp_dir("evolve");
    let lake = Lake::open(&dir).await.expect("lake");
    let ident = lake.ensure_table(&events_table()).await.expect("table");
    lake.append(&ident, vec![batch()], 1)
        .await
        .expect("append old rows");

    // Incompatible changes are refused, with the reason, and change nothing.
    let retyped = {
        let mut definition = events_table();
        definition.columns[3].ty = Type::Int;
        definition
    };
    let refused = lake.evolve(&ident, &retyped).await;
    assert!(
        matches!(&refused, Err(LakeError::Incompatible { reason, .. }) if reason.contains("cannot promote")),
        "{refused:?}"
    );
    let required = with_level(true);
    assert!(matches!(
        lake.evolve(&ident, &required).await,
        Err(LakeError::Incompatible { .. })
    ));
    assert!(
        lake.evolve(&ident, &events_table())
            .await
            .expect("same schema")
            .is_empty()
    );

    let evolved = with_level(false);
    let added = lake.evolve(&ident, &evolved).await.expect("compatible");
    assert_eq!(added, ["level"]);
    assert!(
        lake.evolve(&ident, &evolved)
            .await
            .expect("idempotent")
            .is_empty()
    );

    // New rows carry the column (by the contract's id 6, at the contract's position).
    let schema = Arc::new(lake.arrow_schema(&ident).await.expect("schema"));
    let level = schema.field(5);
    assert_eq!(
        (
            level.name().as_str(),
            level.metadata()["PARQUET:field_id"].as_str()
        ),
        ("level", "6")
    );
    let old = batch();
    let mut columns: Vec<ArrayRef> = old.columns().to_vec();
    columns.insert(
        5,
        Arc::new(Int32Array::from(vec![Some(7), Some(9)])) as ArrayRef,
    );
    assert_eq!(columns[5].len(), 2);
    let new_rows = RecordBatch::try_new(schema, columns).expect("batch of the new schema");
    lake.append(&ident, vec![new_rows], 2)
        .await
        .expect("append new rows");
    assert_eq!(lake.committed_lsn(&ident).await.expect("lsn"), 2);

    let text = pyiceberg_check(
        &dir,
        json!({ "analytics_events_db.events_table": { "rows": 4, "null_counts": { "level": 2 } } }),
    );
    // The contract's ids, with the new column's 6 after `event_uuid` (5).
    let mut ids: Vec<u32> = events_table().columns.iter().map(|c| c.id).collect();
    ids.insert(5, 6);
    assert!(
        text.contains(&format!("{ids:?}")),
        "the table keeps the contract's ids {ids:?}:\n{text}"
    );
}
