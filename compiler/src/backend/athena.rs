//! Athena DDL: `CREATE TABLE … TBLPROPERTIES ('table_type'='ICEBERG')` for both tables.
//!
//! Athena's Iceberg tables have no `uuid` or zoned timestamp type: uuids are `string` and
//! `timestamptz` is `timestamp` (UTC) in this DDL; Glue and the runtime create the tables from
//! the Iceberg JSON, which keeps the exact types. `${warehouse}` is the S3 warehouse prefix.

use contract_manifest::TableDef;

use super::GeneratedFile;
use crate::ir::{Contract, ContractSet, Transform, Valid};

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    set.contracts
        .iter()
        .map(|c| GeneratedFile::new(format!("{}/athena/create-tables.sql", c.name), ddl(c)))
        .collect()
}

/// A SQL string literal.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn ddl(c: &Contract) -> String {
    let manifest = c.manifest();
    let mut out = super::header("--", &c.source.path);
    out.push_str(&format!(
        "-- Contract {} {}: the events table and its quarantine table.\n",
        c.name, c.version
    ));
    out.push_str(
        "-- Replace ${warehouse} with the S3 warehouse prefix, e.g. s3://my-lake/warehouse.\n\n",
    );
    out.push_str(&create_table(
        &manifest.events_table(),
        c.description.as_deref(),
    ));
    out.push('\n');
    out.push_str(&create_table(&manifest.quarantine_table(), None));
    out
}

/// `CREATE TABLE` for one table definition; column comments are the column docs.
fn create_table(table: &TableDef, comment: Option<&str>) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|col| {
            let comment = col
                .doc
                .as_deref()
                .map(|d| format!(" COMMENT {}", quote(d)))
                .unwrap_or_default();
            format!("  `{}` {}{comment}", col.name, col.ty.hive())
        })
        .collect();
    let partitions: Vec<String> = table
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
    let mut out = format!(
        "CREATE TABLE IF NOT EXISTS `{}`.`{}` (\n{}\n)\n",
        table.database,
        table.name,
        columns.join(",\n")
    );
    if let Some(d) = comment {
        out.push_str(&format!("COMMENT {}\n", quote(d)));
    }
    if !partitions.is_empty() {
        out.push_str(&format!("PARTITIONED BY ({})\n", partitions.join(", ")));
    }
    out.push_str(&format!(
        "LOCATION '${{warehouse}}/{}.db/{}'\n",
        table.database, table.name
    ));
    out.push_str("TBLPROPERTIES (\n  'table_type'='ICEBERG',\n  'format'='parquet',\n  'write_compression'='zstd'\n);\n");
    out
}
