//! Iceberg table definitions: REST catalog `CreateTableRequest` JSON for the events table and
//! its quarantine table.
//!
//! Both are rendered from the contract manifest's [`TableDef`]s
//! (`contract_manifest::table`), the same definitions the runtime creates its tables from and
//! `deploy` registers in Glue; this backend only writes them down.

use contract_manifest::TableDef;

use super::GeneratedFile;
use crate::ir::{ContractSet, Valid};

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for c in &set.contracts {
        let manifest = c.manifest();
        files.push(GeneratedFile::new(
            format!("{}/iceberg/events-table.json", c.name),
            table_text(&manifest.events_table()),
        ));
        files.push(GeneratedFile::new(
            format!("{}/iceberg/quarantine-table.json", c.name),
            table_text(&manifest.quarantine_table()),
        ));
    }
    files
}

/// A table definition as written to `iceberg/*.json`.
pub fn table_text(table: &TableDef) -> String {
    super::pretty_json(&table.create_request())
}
