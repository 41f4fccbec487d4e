//! Athena DDL: `CREATE TABLE … TBLPROPERTIES ('table_type'='ICEBERG')` for both tables.
//!
//! Athena's Iceberg tables have no `uuid` or zoned timestamp type: uuids are `string` and
//! `timestamptz` is `timestamp` (UTC) in this DDL; Glue and the runtime create the tables from
//! the Iceberg JSON, which keeps the exact types. `${warehouse}` is the S3 warehouse prefix.

use super::GeneratedFile;
use super::iceberg::quarantine_table_name;
use crate::ir::{Contract, ContractSet, Transform, Type, Valid};

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    set.contracts
        .iter()
        .map(|c| GeneratedFile::new(format!("{}/athena/create-tables.sql", c.name), ddl(c)))
        .collect()
}

pub fn athena_type(ty: &Type) -> String {
    match ty {
        Type::String | Type::Uuid => "string".into(),
        Type::Boolean => "boolean".into(),
        Type::Int => "int".into(),
        Type::Long => "bigint".into(),
        Type::Float => "float".into(),
        Type::Double => "double".into(),
        Type::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        Type::Date => "date".into(),
        Type::Timestamp { .. } | Type::TimestampTz => "timestamp".into(),
        Type::List(e) => format!("array<{}>", athena_type(&e.ty)),
        Type::Map { key, value } => {
            format!("map<{},{}>", athena_type(&key.ty), athena_type(&value.ty))
        }
        Type::Struct(fields) => {
            let members: Vec<String> = fields
                .iter()
                .map(|f| format!("{}:{}", f.name, athena_type(&f.ty)))
                .collect();
            format!("struct<{}>", members.join(","))
        }
    }
}

/// A SQL string literal.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn ddl(c: &Contract) -> String {
    let mut out = super::header("--", &c.source.path);
    out.push_str(&format!(
        "-- Contract {} {}: the events table and its quarantine table.\n",
        c.name, c.version
    ));
    out.push_str(
        "-- Replace ${warehouse} with the S3 warehouse prefix, e.g. s3://my-lake/warehouse.\n\n",
    );

    let mut columns = Vec::new();
    for col in c.columns() {
        let comment = c
            .fields
            .iter()
            .find(|f| f.name == col.name)
            .and_then(|f| f.description.clone())
            .map(|d| format!(" COMMENT {}", quote(&d)))
            .unwrap_or_default();
        columns.push(format!(
            "  `{}` {}{comment}",
            col.name,
            athena_type(&col.ty)
        ));
    }
    let partitions: Vec<String> = c
        .table
        .partition
        .iter()
        .map(|p| match p.transform {
            Transform::Identity => format!("`{}`", p.source),
            Transform::Year => format!("year(`{}`)", p.source),
            Transform::Month => format!("month(`{}`)", p.source),
            Transform::Day => format!("day(`{}`)", p.source),
            Transform::Hour => format!("hour(`{}`)", p.source),
            Transform::Bucket(n) => format!("bucket({n}, `{}`)", p.source),
            Transform::Truncate(w) => format!("truncate({w}, `{}`)", p.source),
        })
        .collect();
    out.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS `{}`.`{}` (\n{}\n)\n",
        c.table.database,
        c.table.name,
        columns.join(",\n")
    ));
    if let Some(d) = &c.description {
        out.push_str(&format!("COMMENT {}\n", quote(d)));
    }
    if !partitions.is_empty() {
        out.push_str(&format!("PARTITIONED BY ({})\n", partitions.join(", ")));
    }
    out.push_str(&format!(
        "LOCATION '${{warehouse}}/{}.db/{}'\n",
        c.table.database, c.table.name
    ));
    out.push_str("TBLPROPERTIES (\n  'table_type'='ICEBERG',\n  'format'='parquet',\n  'write_compression'='zstd'\n);\n\n");

    let quarantine = quarantine_table_name(c);
    out.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS `{db}`.`{quarantine}` (\n  `received_at` timestamp COMMENT 'When the runtime received the event.',\n  `request_id` string,\n  `contract_version` string,\n  `verdict` string COMMENT 'reject or quarantine',\n  `violation_codes` array<string>,\n  `violations` array<struct<code:string,path:string,policy:string,message:string>>,\n  `raw_payload` string COMMENT 'The request body as received.',\n  `player_id` string\n)\nPARTITIONED BY (day(`received_at`))\nLOCATION '${{warehouse}}/{db}.db/{quarantine}'\nTBLPROPERTIES (\n  'table_type'='ICEBERG',\n  'format'='parquet',\n  'write_compression'='zstd'\n);\n",
        db = c.table.database
    ));
    out
}
