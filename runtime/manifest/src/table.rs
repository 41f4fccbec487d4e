//! Table definitions as data: the events table and the quarantine table of a contract, with
//! every column's Iceberg field id, type, nullability and origin. The Iceberg JSON, the Athena
//! DDL, the Glue catalog entries and the runtime's own tables are all rendered from these.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Manifest;
use crate::schema::{EnrichmentSource, Field, SortField, Transform, Type, WriteMode};

/// One Iceberg table: its columns in table order, partitioning, sort order and properties.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub database: String,
    pub name: String,
    pub columns: Vec<Column>,
    pub partition: Vec<PartitionColumn>,
    pub sort: Vec<SortField>,
    /// Iceberg identifier fields (the upsert key), by id.
    pub identifier_field_ids: Vec<u32>,
    /// Sorted by key.
    pub properties: BTreeMap<String, String>,
}

/// A top-level column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub id: u32,
    pub name: String,
    pub ty: Type,
    pub required: bool,
    pub doc: Option<String>,
    pub origin: Origin,
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The event body (envelope or variant payload).
    Payload,
    /// Filled by the ingest edge from the request, never by the client.
    Enrichment(EnrichmentSource),
    /// Written by the pipeline itself (the quarantine table's columns).
    System,
}

/// A partition field: a transform of a top-level column.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionColumn {
    pub source: String,
    pub source_id: u32,
    /// Iceberg's partition field id (1000 and up, as Iceberg's own writers assign them).
    pub field_id: u32,
    /// Iceberg's conventional name, e.g. `received_at_day`.
    pub name: String,
    pub transform: Transform,
}

/// Field ids of the quarantine table: its shape does not depend on the contract.
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

/// The format version every table is created with.
pub const FORMAT_VERSION: &str = "2";

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum TableKind {
    Events,
    Quarantine,
}

impl TableKind {
    fn as_str(self) -> &'static str {
        match self {
            TableKind::Events => "events",
            TableKind::Quarantine => "quarantine",
        }
    }
}

impl Manifest {
    /// The events table: envelope fields, then variant payloads (each once, optional), then
    /// enrichments.
    pub fn events_table(&self) -> TableDef {
        let mut columns: Vec<Column> = self
            .fields
            .iter()
            .map(|f| payload_column(f, f.required, f.doc()))
            .collect();
        if let Some(variants) = &self.variants {
            for case in &variants.cases {
                for f in &case.fields {
                    if columns.iter().any(|c| c.name == f.name) {
                        continue;
                    }
                    let payload =
                        format!("Payload of `{}: {}`.", variants.discriminator, case.value);
                    let doc = match f.doc() {
                        Some(d) => format!("{d} {payload}"),
                        None => payload,
                    };
                    columns.push(payload_column(f, false, Some(doc)));
                }
            }
        }
        for e in &self.enrichments {
            let source = e.source.spelling();
            columns.push(Column {
                id: e.id,
                name: e.name.clone(),
                ty: e.ty(),
                required: false,
                doc: Some(match &e.description {
                    Some(d) => format!("{d} (enriched from {source})"),
                    None => format!("Enriched from {source}."),
                }),
                origin: Origin::Enrichment(e.source.clone()),
            });
        }
        let identifier_field_ids = match &self.table.write {
            WriteMode::Upsert { key, .. } => key
                .iter()
                .filter_map(|k| self.fields.iter().find(|f| &f.name == k).map(|f| f.id))
                .collect(),
            WriteMode::Append => Vec::new(),
        };
        let partition = self
            .table
            .partition
            .iter()
            .zip(1000..)
            .map(|(p, field_id)| PartitionColumn {
                source: p.source.clone(),
                source_id: p.source_id,
                field_id,
                name: partition_name(&p.source, p.transform),
                transform: p.transform,
            })
            .collect();
        TableDef {
            database: self.table.database.clone(),
            name: self.table.name.clone(),
            columns,
            partition,
            sort: self.table.sort.clone(),
            identifier_field_ids,
            properties: self.properties(TableKind::Events),
        }
    }

    /// The quarantine table: refused and quarantined events with why. The raw payload is kept
    /// verbatim so nothing accepted at the door is lost and any event can be replayed.
    pub fn quarantine_table(&self) -> TableDef {
        use quarantine::*;
        let string = |id: u32, name: &str| Field {
            name: name.into(),
            id,
            ty: Type::String,
            required: true,
            description: None,
            pii: false,
            rules: Vec::new(),
        };
        let system = |id: u32, name: &str, ty: Type, required: bool, doc: Option<&str>| Column {
            id,
            name: name.into(),
            ty,
            required,
            doc: doc.map(str::to_string),
            origin: Origin::System,
        };
        let columns = vec![
            system(
                RECEIVED_AT,
                "received_at",
                Type::TimestampTz,
                true,
                Some("When the runtime received the event."),
            ),
            system(REQUEST_ID, "request_id", Type::String, false, None),
            system(
                CONTRACT_VERSION,
                "contract_version",
                Type::String,
                true,
                Some("The contract version that judged the event."),
            ),
            system(
                VERDICT,
                "verdict",
                Type::String,
                true,
                Some("reject (refused with 400) or quarantine (acknowledged)."),
            ),
            system(
                VIOLATION_CODES,
                "violation_codes",
                Type::List(Box::new(crate::schema::Element {
                    id: VIOLATION_CODES_ELEMENT,
                    ty: Type::String,
                    required: true,
                    rules: Vec::new(),
                })),
                true,
                None,
            ),
            system(
                VIOLATIONS,
                "violations",
                Type::List(Box::new(crate::schema::Element {
                    id: VIOLATIONS_ELEMENT,
                    ty: Type::Struct(vec![
                        string(VIOLATION_CODE, "code"),
                        string(VIOLATION_PATH, "path"),
                        string(VIOLATION_POLICY, "policy"),
                        string(VIOLATION_MESSAGE, "message"),
                    ]),
                    required: true,
                    rules: Vec::new(),
                })),
                true,
                None,
            ),
            system(
                RAW_PAYLOAD,
                "raw_payload",
                Type::String,
                true,
                Some("The request body as received (lossy UTF-8)."),
            ),
            system(
                PLAYER_ID,
                "player_id",
                Type::String,
                false,
                Some("The JWT subject, when authenticated."),
            ),
        ];
        TableDef {
            database: self.table.database.clone(),
            name: self.quarantine_table_name(),
            columns,
            partition: vec![PartitionColumn {
                source: "received_at".into(),
                source_id: RECEIVED_AT,
                field_id: 1000,
                name: "received_at_day".into(),
                transform: Transform::Day,
            }],
            sort: Vec::new(),
            identifier_field_ids: Vec::new(),
            properties: self.properties(TableKind::Quarantine),
        }
    }

    /// `<events table>_quarantine`.
    pub fn quarantine_table_name(&self) -> String {
        format!("{}_quarantine", self.table.name)
    }

    fn properties(&self, kind: TableKind) -> BTreeMap<String, String> {
        let mut props = BTreeMap::new();
        let mut set = |k: &str, v: &str| props.insert(k.to_string(), v.to_string());
        set("format-version", FORMAT_VERSION);
        set("write.format.default", "parquet");
        set("write.parquet.compression-codec", "zstd");
        // Concurrent committers (several runtimes, or Glue and a runtime) retry, not fail.
        set("commit.retry.num-retries", "10");
        set("contractc.contract", &self.name);
        set("contractc.contract-version", &self.version);
        set("contractc.fingerprint", &self.source.fingerprint);
        set("contractc.table-kind", kind.as_str());
        set("owner", &self.owner);
        let pii: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| f.pii)
            .map(|f| f.name.as_str())
            .collect();
        if !pii.is_empty() {
            set("contractc.pii-columns", &pii.join(","));
        }
        if kind == TableKind::Events {
            for (k, v) in &self.table.properties {
                set(k, v);
            }
        }
        props
    }
}

fn payload_column(f: &Field, required: bool, doc: Option<String>) -> Column {
    Column {
        id: f.id,
        name: f.name.clone(),
        ty: f.ty.clone(),
        required,
        doc,
        origin: Origin::Payload,
    }
}

impl TableDef {
    /// The Iceberg REST catalog `CreateTableRequest` for this table.
    pub fn create_request(&self) -> Value {
        let mut fields: Vec<Value> = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            fields.push(field_json(
                c.id,
                &c.name,
                c.required,
                &c.ty,
                c.doc.as_deref(),
            ));
        }
        let mut schema = json!({ "type": "struct", "schema-id": 0, "fields": fields });
        if !self.identifier_field_ids.is_empty() {
            schema["identifier-field-ids"] = json!(self.identifier_field_ids);
        }
        let partition_fields: Vec<Value> = self
            .partition
            .iter()
            .map(|p| {
                json!({
                    "source-id": p.source_id,
                    "field-id": p.field_id,
                    "name": p.name,
                    "transform": p.transform.iceberg_name(),
                })
            })
            .collect();
        let mut table = json!({
            "name": self.name,
            "schema": schema,
            "partition-spec": { "spec-id": 0, "fields": partition_fields },
            "stage-create": false,
            "properties": self.properties,
        });
        if !self.sort.is_empty() {
            let fields: Vec<Value> = self
                .sort
                .iter()
                .map(|s| {
                    json!({
                        "source-id": s.source_id,
                        "transform": "identity",
                        "direction": if s.descending { "desc" } else { "asc" },
                        "null-order": if s.nulls_first { "nulls-first" } else { "nulls-last" },
                    })
                })
                .collect();
            table["write-order"] = json!({ "order-id": 1, "fields": fields });
        }
        table
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A nested or top-level field in Iceberg's JSON form.
fn field_json(id: u32, name: &str, required: bool, ty: &Type, doc: Option<&str>) -> Value {
    let mut field = json!({
        "id": id,
        "name": name,
        "required": required,
        "type": type_json(ty),
    });
    if let Some(doc) = doc {
        field["doc"] = json!(doc);
    }
    field
}

/// A type in Iceberg's JSON form (`"long"`, `{"type": "list", ...}`).
pub fn type_json(ty: &Type) -> Value {
    match ty {
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
            "fields": fields
                .iter()
                .map(|f| field_json(f.id, &f.name, f.required, &f.ty, f.doc().as_deref()))
                .collect::<Vec<_>>(),
        }),
        primitive => json!(primitive.iceberg_primitive()),
    }
}

impl Type {
    /// Iceberg's name of a primitive type (`decimal(12, 2)`); nested types have none.
    pub fn iceberg_primitive(&self) -> String {
        match self {
            Type::Decimal { precision, scale } => format!("decimal({precision}, {scale})"),
            Type::Timestamp { .. } => "timestamp".into(),
            Type::TimestampTz => "timestamptz".into(),
            Type::List(_) => "list".into(),
            Type::Map { .. } => "map".into(),
            Type::Struct(_) => "struct".into(),
            other => other.name(),
        }
    }

    /// The Hive type Athena DDL and Glue catalog columns use (`bigint`, `array<string>`).
    /// Both kinds of timestamp are `timestamp` there, and uuids are strings.
    pub fn hive(&self) -> String {
        match self {
            Type::String | Type::Uuid => "string".into(),
            Type::Boolean => "boolean".into(),
            Type::Int => "int".into(),
            Type::Long => "bigint".into(),
            Type::Float => "float".into(),
            Type::Double => "double".into(),
            Type::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            Type::Date => "date".into(),
            Type::Timestamp { .. } | Type::TimestampTz => "timestamp".into(),
            Type::List(e) => format!("array<{}>", e.ty.hive()),
            Type::Map { key, value } => format!("map<{},{}>", key.ty.hive(), value.ty.hive()),
            Type::Struct(fields) => format!(
                "struct<{}>",
                fields
                    .iter()
                    .map(|f| format!("{}:{}", f.name, f.ty.hive()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Element;

    #[test]
    fn hive_types_as_glue_and_athena_spell_them() {
        assert_eq!(Type::Long.hive(), "bigint");
        assert_eq!(
            Type::Decimal {
                precision: 12,
                scale: 2
            }
            .hive(),
            "decimal(12,2)"
        );
        assert_eq!(Type::TimestampTz.hive(), "timestamp");
        let list = Type::List(Box::new(Element {
            id: 2,
            ty: Type::String,
            required: true,
            rules: Vec::new(),
        }));
        assert_eq!(list.hive(), "array<string>");
        assert_eq!(list.iceberg_primitive(), "list");
    }
}
