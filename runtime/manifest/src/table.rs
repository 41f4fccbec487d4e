//! Table definitions as data: the events table and the quarantine table of a contract, with
//! every column's Iceberg field id, type, nullability and origin. The Iceberg JSON, the Athena
//! DDL, the Glue catalog entries and the runtime's own tables are all rendered from these.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Manifest;
use crate::schema::{EnrichmentSource, Field, Pii, SortField, Transform, Type, WriteMode, pii_doc};

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
                doc: pii_doc(
                    Some(&match &e.description {
                        Some(d) => format!("{d} (enriched from {source})"),
                        None => format!("Enriched from {source}."),
                    }),
                    e.pii,
                ),
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
            pii: Pii::No,
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
            .filter(|f| f.pii.is_personal())
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
        // A dropped field is judged but never stored: its column is always null.
        required: required && f.pii != Pii::Drop,
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

/// Iceberg table metadata (format version 2) from a [`TableDef`]: the file a catalog entry's
/// `metadata_location` points to. Pure: the caller picks the table uuid and the time, so the
/// same function serves `deploy` (S3 + Glue) and local catalogs.
impl TableDef {
    /// The metadata of a new, empty table at `location` (`s3://…/db.db/table`): the contract's
    /// schema with its field ids, partition spec, sort order and properties.
    pub fn initial_metadata(
        &self,
        location: &str,
        table_uuid: &str,
        last_updated_ms: i64,
    ) -> Value {
        let create = self.create_request();
        let schema = create["schema"].clone();
        let spec = create["partition-spec"].clone();
        // Iceberg numbers partition fields from 1000; 999 means "none yet".
        let last_partition_id = self
            .partition
            .iter()
            .map(|p| i64::from(p.field_id))
            .max()
            .unwrap_or(999);
        let mut sort_orders = vec![json!({ "order-id": 0, "fields": [] })];
        let mut default_order = 0;
        if let Some(order) = create.get("write-order") {
            default_order = order["order-id"].as_i64().unwrap_or(1);
            sort_orders.push(order.clone());
        }
        json!({
            "format-version": 2,
            "table-uuid": table_uuid,
            "location": location,
            "last-sequence-number": 0,
            "last-updated-ms": last_updated_ms,
            "last-column-id": max_field_id(&schema),
            "current-schema-id": 0,
            "schemas": [schema],
            "default-spec-id": 0,
            "partition-specs": [spec],
            "last-partition-id": last_partition_id,
            "default-sort-order-id": default_order,
            "sort-orders": sort_orders,
            "properties": self.properties,
            "snapshots": [],
            "snapshot-log": [],
            "metadata-log": [],
            "refs": {},
        })
    }

    /// What it takes to bring a table with `metadata` to this definition: one line per added
    /// column and per property that differs; empty when nothing does. A change Iceberg cannot
    /// make in place without rewriting or breaking readers (a column removed, renamed, retyped
    /// or made required, a new required column, another partition spec) is an error with the
    /// reason.
    pub fn metadata_changes(&self, metadata: &Value) -> Result<Vec<String>, String> {
        let current = current_schema(metadata)?;
        let have = fields_by_id(current);
        let want = fields_by_id(&self.create_request()["schema"]);
        for (id, field) in &have {
            let name = field["name"].as_str().unwrap_or_default();
            let Some(wanted) = want.get(id) else {
                return Err(format!(
                    "column `{name}` (id {id}) is not in the contract: dropping columns is not applied automatically"
                ));
            };
            if wanted["name"] != field["name"] {
                return Err(format!(
                    "column id {id} is `{name}` in the table but {} in the contract: renames are not applied automatically",
                    wanted["name"]
                ));
            }
            if without_docs(&wanted["type"]) != without_docs(&field["type"]) {
                return Err(format!(
                    "column `{name}` (id {id}) changes type: migrate the table first"
                ));
            }
            if wanted["required"] == json!(true) && field["required"] != json!(true) {
                return Err(format!(
                    "column `{name}` (id {id}) is optional in the table but required in the contract"
                ));
            }
        }
        let mut changes = Vec::new();
        for (id, field) in &want {
            if have.contains_key(id) {
                continue;
            }
            let name = field["name"].as_str().unwrap_or_default();
            if field["required"] == json!(true) {
                return Err(format!(
                    "new column `{name}` (id {id}) is required: old rows have no value for it"
                ));
            }
            changes.push(format!("add column {name}"));
        }
        let spec = default_spec(metadata);
        let wanted_spec = &self.create_request()["partition-spec"]["fields"];
        if spec.map(|s| &s["fields"]) != Some(wanted_spec) {
            return Err(
                "the partition spec differs: repartitioning is not applied automatically".into(),
            );
        }
        for (key, value) in &self.properties {
            if metadata["properties"].get(key).and_then(Value::as_str) != Some(value.as_str()) {
                changes.push(format!("property {key}"));
            }
        }
        Ok(changes)
    }

    /// The metadata after `previous` (stored at `previous_location`), evolved to this definition
    /// the Iceberg way: the contract's schema appended under a new schema id (fields keep their
    /// ids) and made current, the properties set, the previous file logged; snapshots and
    /// history kept. Errors as [`TableDef::metadata_changes`].
    pub fn evolved_metadata(
        &self,
        previous: &Value,
        previous_location: &str,
        last_updated_ms: i64,
    ) -> Result<Value, String> {
        self.metadata_changes(previous)?;
        let mut next = previous.clone();
        let current = current_schema(previous)?;
        let same_fields = fields_by_id(current) == fields_by_id(&self.create_request()["schema"]);
        if !same_fields {
            let schema_id = previous["schemas"]
                .as_array()
                .and_then(|s| s.iter().filter_map(|s| s["schema-id"].as_i64()).max())
                .unwrap_or(0)
                + 1;
            let mut schema = self.create_request()["schema"].clone();
            schema["schema-id"] = json!(schema_id);
            let last_column_id =
                max_field_id(&schema).max(previous["last-column-id"].as_i64().unwrap_or(0));
            if let Some(schemas) = next["schemas"].as_array_mut() {
                schemas.push(schema);
            }
            next["current-schema-id"] = json!(schema_id);
            next["last-column-id"] = json!(last_column_id);
        }
        let properties = next["properties"]
            .as_object_mut()
            .ok_or("metadata without properties")?;
        for (key, value) in &self.properties {
            properties.insert(key.clone(), json!(value));
        }
        let logged = json!({
            "metadata-file": previous_location,
            "timestamp-ms": previous["last-updated-ms"].as_i64().unwrap_or(0),
        });
        match next["metadata-log"].as_array_mut() {
            Some(log) => log.push(logged),
            None => next["metadata-log"] = json!([logged]),
        }
        next["last-updated-ms"] = json!(last_updated_ms);
        Ok(next)
    }
}

/// The schema a table's metadata names as current.
fn current_schema(metadata: &Value) -> Result<&Value, String> {
    let id = metadata["current-schema-id"]
        .as_i64()
        .ok_or("metadata without current-schema-id")?;
    metadata["schemas"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["schema-id"].as_i64() == Some(id)))
        .ok_or_else(|| format!("metadata without its current schema {id}"))
}

/// The partition spec a table's metadata names as default.
fn default_spec(metadata: &Value) -> Option<&Value> {
    let id = metadata["default-spec-id"].as_i64()?;
    metadata["partition-specs"]
        .as_array()?
        .iter()
        .find(|s| s["spec-id"].as_i64() == Some(id))
}

/// A schema's top-level fields by id, docs left out (a changed description is no schema change).
fn fields_by_id(schema: &Value) -> BTreeMap<i64, Value> {
    schema["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| Some((f["id"].as_i64()?, without_docs(f))))
                .collect()
        })
        .unwrap_or_default()
}

fn without_docs(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "doc")
                .map(|(k, v)| (k.clone(), without_docs(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_docs).collect()),
        other => other.clone(),
    }
}

/// The highest field id in a schema, nested ids included (Iceberg's `last-column-id`).
fn max_field_id(value: &Value) -> i64 {
    match value {
        Value::Object(map) => {
            let own = ["id", "element-id", "key-id", "value-id"]
                .iter()
                .filter_map(|k| map.get(*k)?.as_i64())
                .max()
                .unwrap_or(0);
            map.values().map(max_field_id).max().unwrap_or(0).max(own)
        }
        Value::Array(items) => items.iter().map(max_field_id).max().unwrap_or(0),
        _ => 0,
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
