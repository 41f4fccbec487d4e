//! Iceberg table definitions: REST catalog `CreateTableRequest` JSON for the events table and
//! its quarantine table.
//!
//! Field ids are the contract's; partition field ids start at 1000 as Iceberg's own writers do.
//! The same JSON is what the runtime and `deploy` create tables from.

use serde_json::{Value, json};

use super::GeneratedFile;
use crate::ir::{Contract, ContractSet, Field, SortField, Transform, Type, Valid, WriteMode};

/// Properties every table gets (a contract cannot override them).
const FORMAT_VERSION: &str = "2";

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for c in &set.contracts {
        files.push(GeneratedFile::new(
            format!("{}/iceberg/events-table.json", c.name),
            super::pretty_json(&events_table(c)),
        ));
        files.push(GeneratedFile::new(
            format!("{}/iceberg/quarantine-table.json", c.name),
            super::pretty_json(&quarantine_table(c)),
        ));
    }
    files
}

/// The events table definition as written to `iceberg/events-table.json`.
pub fn events_table_text(c: &Contract) -> String {
    super::pretty_json(&events_table(c))
}

/// The quarantine table definition as written to `iceberg/quarantine-table.json`.
pub fn quarantine_table_text(c: &Contract) -> String {
    super::pretty_json(&quarantine_table(c))
}

/// The name of a contract's quarantine table.
pub fn quarantine_table_name(contract: &Contract) -> String {
    format!("{}_quarantine", contract.table.name)
}

pub fn type_json(ty: &Type) -> Value {
    match ty {
        Type::String => json!("string"),
        Type::Boolean => json!("boolean"),
        Type::Int => json!("int"),
        Type::Long => json!("long"),
        Type::Float => json!("float"),
        Type::Double => json!("double"),
        Type::Decimal { precision, scale } => json!(format!("decimal({precision}, {scale})")),
        Type::Date => json!("date"),
        Type::Timestamp { .. } => json!("timestamp"),
        Type::TimestampTz => json!("timestamptz"),
        Type::Uuid => json!("uuid"),
        Type::List(e) => json!({
            "type": "list",
            "element-id": e.id,
            "element": type_json(&e.ty),
            "element-required": e.required,
        }),
        Type::Map { key, value } => json!({
            "type": "map",
            "key-id": key.id,
            "key": type_json(&key.ty),
            "value-id": value.id,
            "value": type_json(&value.ty),
            "value-required": value.required,
        }),
        Type::Struct(fields) => json!({
            "type": "struct",
            "fields": fields.iter().map(|f| field_json(f, f.required)).collect::<Vec<_>>(),
        }),
    }
}

fn field_json(f: &Field, required: bool) -> Value {
    let mut field = json!({
        "id": f.id,
        "name": f.name,
        "required": required,
        "type": type_json(&f.ty),
    });
    let doc = match (&f.description, f.pii) {
        (Some(d), true) => Some(format!("{d} [PII]")),
        (Some(d), false) => Some(d.clone()),
        (None, true) => Some("[PII]".to_string()),
        (None, false) => None,
    };
    if let Some(doc) = doc {
        field["doc"] = json!(doc);
    }
    field
}

/// The table schema: every column of [`Contract::columns`], with docs.
pub fn schema_json(c: &Contract) -> Value {
    let mut fields: Vec<Value> = c.fields.iter().map(|f| field_json(f, f.required)).collect();
    if let Some(variants) = &c.variants {
        let mut seen = std::collections::BTreeSet::new();
        for case in &variants.cases {
            for f in &case.fields {
                if seen.insert(f.name.clone()) {
                    let mut field = field_json(f, false);
                    let doc = format!("Payload of `{}: {}`.", variants.discriminator, case.value);
                    field["doc"] = json!(match field.get("doc").and_then(Value::as_str) {
                        Some(d) => format!("{d} {doc}"),
                        None => doc,
                    });
                    fields.push(field);
                }
            }
        }
    }
    for e in &c.enrichments {
        let mut field =
            json!({ "id": e.id, "name": e.name, "required": false, "type": type_json(&e.ty()) });
        let source = match &e.source {
            crate::ir::EnrichmentSource::IngestTime => "ingest_time".to_string(),
            crate::ir::EnrichmentSource::ContractVersion => "contract_version".to_string(),
            crate::ir::EnrichmentSource::RequestId => "request_id".to_string(),
            crate::ir::EnrichmentSource::JwtSub => "jwt.sub".to_string(),
            crate::ir::EnrichmentSource::JwtClaim(claim) => format!("jwt.{claim}"),
        };
        let doc = match &e.description {
            Some(d) => format!("{d} (enriched from {source})"),
            None => format!("Enriched from {source}."),
        };
        field["doc"] = json!(doc);
        fields.push(field);
    }
    let mut schema = json!({ "type": "struct", "schema-id": 0, "fields": fields });
    if let WriteMode::Upsert { key, .. } = &c.table.write {
        let ids: Vec<u32> = key
            .iter()
            .filter_map(|k| c.fields.iter().find(|f| &f.name == k).map(|f| f.id))
            .collect();
        schema["identifier-field-ids"] = json!(ids);
    }
    schema
}

/// Iceberg's conventional partition field name for a transform of `source`.
pub fn partition_name(source: &str, transform: Transform) -> String {
    match transform {
        Transform::Identity => source.to_string(),
        Transform::Year => format!("{source}_year"),
        Transform::Month => format!("{source}_month"),
        Transform::Day => format!("{source}_day"),
        Transform::Hour => format!("{source}_hour"),
        Transform::Bucket(_) => format!("{source}_bucket"),
        Transform::Truncate(_) => format!("{source}_trunc"),
    }
}

fn sort_json(s: &SortField) -> Value {
    json!({
        "source-id": s.source_id,
        "transform": "identity",
        "direction": if s.descending { "desc" } else { "asc" },
        "null-order": if s.nulls_first { "nulls-first" } else { "nulls-last" },
    })
}

fn properties(c: &Contract, table_kind: &str) -> serde_json::Map<String, Value> {
    let mut props = serde_json::Map::new();
    props.insert("format-version".into(), json!(FORMAT_VERSION));
    props.insert("write.format.default".into(), json!("parquet"));
    props.insert("write.parquet.compression-codec".into(), json!("zstd"));
    // Concurrent committers (several runtimes, or Glue and a runtime) retry instead of failing.
    props.insert("commit.retry.num-retries".into(), json!("10"));
    // Lets the Glue job's Spark writer add the optional columns of a new contract version.
    props.insert("write.spark.accept-any-schema".into(), json!("true"));
    props.insert("contractc.contract".into(), json!(c.name));
    props.insert(
        "contractc.contract-version".into(),
        json!(c.version.to_string()),
    );
    props.insert("contractc.fingerprint".into(), json!(c.source.fingerprint));
    props.insert("contractc.table-kind".into(), json!(table_kind));
    props.insert("owner".into(), json!(c.owner));
    let pii: Vec<&str> = c
        .fields
        .iter()
        .filter(|f| f.pii)
        .map(|f| f.name.as_str())
        .collect();
    if !pii.is_empty() {
        props.insert("contractc.pii-columns".into(), json!(pii.join(",")));
    }
    if table_kind == "events" {
        for (k, v) in &c.table.properties {
            props.insert(k.clone(), json!(v));
        }
    }
    // Sorted, so the file does not change with insertion order.
    let mut sorted: Vec<(String, Value)> = props.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.into_iter().collect()
}

pub fn events_table(c: &Contract) -> Value {
    let partition_fields: Vec<Value> = c
        .table
        .partition
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "source-id": p.source_id,
                "field-id": 1000 + i,
                "name": partition_name(&p.source, p.transform),
                "transform": p.transform.iceberg_name(),
            })
        })
        .collect();
    let mut table = json!({
        "name": c.table.name,
        "schema": schema_json(c),
        "partition-spec": { "spec-id": 0, "fields": partition_fields },
        "stage-create": false,
        "properties": properties(c, "events"),
    });
    if !c.table.sort.is_empty() {
        table["write-order"] = json!({ "order-id": 1, "fields": c.table.sort.iter().map(sort_json).collect::<Vec<_>>() });
    }
    table
}

/// Field ids of the quarantine table (fixed: the table's shape does not depend on the contract).
pub mod quarantine {
    pub const RECEIVED_AT: u32 = 1;
    pub const REQUEST_ID: u32 = 2;
    pub const CONTRACT_VERSION: u32 = 3;
    pub const VERDICT: u32 = 4;
    pub const VIOLATION_CODES: u32 = 5;
    pub const VIOLATION_CODES_ELEMENT: u32 = 6;
    pub const VIOLATIONS: u32 = 7;
    pub const VIOLATIONS_ELEMENT: u32 = 8;
    pub const VIOLATION_CODE: u32 = 9;
    pub const VIOLATION_PATH: u32 = 10;
    pub const VIOLATION_POLICY: u32 = 11;
    pub const VIOLATION_MESSAGE: u32 = 12;
    pub const RAW_PAYLOAD: u32 = 13;
    pub const PLAYER_ID: u32 = 14;
}

/// Events that were refused or quarantined, with why: the raw payload is kept verbatim so
/// nothing accepted at the door is lost and any event can be replayed after a fix.
pub fn quarantine_table(c: &Contract) -> Value {
    use quarantine::*;
    let fields = json!([
        { "id": RECEIVED_AT, "name": "received_at", "required": true, "type": "timestamptz", "doc": "When the runtime received the event." },
        { "id": REQUEST_ID, "name": "request_id", "required": false, "type": "string" },
        { "id": CONTRACT_VERSION, "name": "contract_version", "required": true, "type": "string", "doc": "The contract version that judged the event." },
        { "id": VERDICT, "name": "verdict", "required": true, "type": "string", "doc": "reject (refused with 400) or quarantine (acknowledged)." },
        { "id": VIOLATION_CODES, "name": "violation_codes", "required": true, "type": {
            "type": "list", "element-id": VIOLATION_CODES_ELEMENT, "element": "string", "element-required": true } },
        { "id": VIOLATIONS, "name": "violations", "required": true, "type": {
            "type": "list", "element-id": VIOLATIONS_ELEMENT, "element-required": true, "element": {
                "type": "struct", "fields": [
                    { "id": VIOLATION_CODE, "name": "code", "required": true, "type": "string" },
                    { "id": VIOLATION_PATH, "name": "path", "required": true, "type": "string" },
                    { "id": VIOLATION_POLICY, "name": "policy", "required": true, "type": "string" },
                    { "id": VIOLATION_MESSAGE, "name": "message", "required": true, "type": "string" },
                ] } } },
        { "id": RAW_PAYLOAD, "name": "raw_payload", "required": true, "type": "string", "doc": "The request body as received (lossy UTF-8)." },
        { "id": PLAYER_ID, "name": "player_id", "required": false, "type": "string", "doc": "The JWT subject, when authenticated." },
    ]);
    json!({
        "name": quarantine_table_name(c),
        "schema": { "type": "struct", "schema-id": 0, "fields": fields },
        "partition-spec": { "spec-id": 0, "fields": [
            { "source-id": RECEIVED_AT, "field-id": 1000, "name": "received_at_day", "transform": "day" },
        ] },
        "stage-create": false,
        "properties": properties(c, "quarantine"),
    })
}
