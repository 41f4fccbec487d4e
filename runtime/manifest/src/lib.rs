//! The typed boundary between `contractc` and the runtime.
//!
//! `contractc build` checks a contract and bakes its [`Manifest`] into the generated validators
//! crate as Rust data; the runtime (serve, synth, deploy) reads that manifest and never parses
//! YAML or re-parses generated text. The compiler's own IR is built from the same schema types,
//! and the compiler's JSON, DDL and script backends render tables from the same
//! [`TableDef`]s the runtime creates its tables from.
//!
//! This crate is small on purpose (serde_json and sha2): everything links it.

pub mod freshness;
pub mod schema;
pub mod table;

pub use schema::*;
pub use table::{Column, Origin, PartitionColumn, TableDef, partition_name, quarantine, type_json};

/// Everything the runtime needs to know about one compiled contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// A safe identifier, unique in the build.
    pub name: String,
    /// Semantic version, as written.
    pub version: String,
    pub owner: String,
    pub description: Option<String>,
    pub source: Source,
    /// Envelope fields: in every event.
    pub fields: Vec<Field>,
    pub variants: Option<Variants>,
    pub enrichments: Vec<Enrichment>,
    pub table: Table,
    pub ingest: Ingest,
}

/// Where a manifest was compiled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The contract file, relative to the directory `contractc build` ran in
    /// (e.g. `contracts/game_events.yaml`).
    pub path: String,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub fingerprint: String,
}

/// How an upsert table keeps one row per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upsert<'a> {
    pub key: &'a [String],
    /// The column that orders versions of a key (`None`: the last received wins).
    pub latest_by: Option<&'a str>,
}

impl Manifest {
    /// The upsert key and ordering column, for `write: mode: upsert` tables.
    pub fn upsert(&self) -> Option<Upsert<'_>> {
        match &self.table.write {
            WriteMode::Append => None,
            WriteMode::Upsert { key, latest_by } => Some(Upsert {
                key,
                latest_by: latest_by.as_deref(),
            }),
        }
    }

    /// The scope a client should ask the dev identity provider for: `guest` when the contract
    /// accepts it, else its first scope.
    pub fn default_scope(&self) -> &str {
        let scopes = &self.ingest.auth.scopes;
        if scopes.iter().any(|s| s == "guest") {
            "guest"
        } else {
            scopes.first().map_or("guest", String::as_str)
        }
    }
}
