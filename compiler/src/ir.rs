//! The validated intermediate representation: what every backend consumes.
//!
//! Values of these types are only ever built by the checker, and reach backends wrapped in
//! [`Valid`]: a backend can rely on every invariant listed on the types (unique names and ids,
//! rules that fit their field's type, partition sources that exist, ...). Collections keep the
//! author's order, which is also the column order of the table.

use std::ops::Deref;

/// Proof that the value went through the checker. Only `crate::check` constructs it.
#[derive(Debug, Clone)]
pub struct Valid<T>(T);

impl<T> Valid<T> {
    pub(crate) fn new_checked(value: T) -> Self {
        Valid(value)
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// All contracts of one build, sorted by name; names, routes and tables are unique across them.
#[derive(Debug, Clone)]
pub struct ContractSet {
    pub contracts: Vec<Contract>,
}

#[derive(Debug, Clone)]
pub struct Contract {
    /// A safe identifier, unique in the set.
    pub name: String,
    pub version: semver::Version,
    pub owner: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Envelope fields: in every event.
    pub fields: Vec<Field>,
    pub variants: Option<Variants>,
    pub reserved_ids: Vec<u32>,
    pub reserved_names: Vec<String>,
    pub table: Table,
    pub ingest: Ingest,
    pub enrichments: Vec<Enrichment>,
    pub source: SourceInfo,
    /// `versions` as written in this file (steps by field name, resolved against the previous
    /// release when the history is linked).
    pub declared_versions: Option<DeclaredVersions>,
    /// The checked release history (`check::history`); None without released versions.
    pub history: Option<History>,
    /// The column naming the data subject (`check::privacy`).
    pub subject: Option<String>,
    /// `quality.alerts` (`check::alerts`).
    pub alerts: Vec<Alert>,
}

/// The `versions` section of one file, checked on its own.
#[derive(Debug, Clone, Default)]
pub struct DeclaredVersions {
    pub default: Option<semver::Version>,
    pub retire_before: Option<semver::Version>,
    /// Each step with the JSON pointer it was written at.
    pub migration: Vec<(crate::syntax::ast::Step, String)>,
}

/// The released versions of a contract, oldest first, each a checked contract of its own.
#[derive(Debug, Clone)]
pub struct History {
    pub default_client: semver::Version,
    pub releases: Vec<Release>,
}

#[derive(Debug, Clone)]
pub struct Release {
    pub contract: Contract,
    pub retired: bool,
    /// From this release to the current version.
    pub upcast: Vec<Step>,
}

impl Release {
    /// The name of the release's generated validator module and job functions: `v1_2_0`.
    pub fn ident(&self) -> String {
        let v = &self.contract.version;
        format!("v{}_{}_{}", v.major, v.minor, v.patch)
    }
}

pub use contract_manifest::Step;

#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// Path of the contract file as given to the compiler.
    pub path: String,
    /// SHA-256 of the file's bytes, hex: generated code records which source it came from.
    pub fingerprint: String,
}

pub use contract_manifest::{
    Alert, Auth, Bound, Condition, Dedup, Element, Enrichment, EnrichmentSource, Field, FormatItem,
    Ingest, Issuer, Literal, PartitionField, Pii, Policy, Rule, RuleKind, SortField, Table,
    TimeBound, TimestampFormat, Transform, Type, UnknownFields, Variant, Variants, WriteMode,
};

impl Contract {
    /// The contract as the runtime sees it: the typed manifest baked into the generated crate.
    pub fn manifest(&self) -> contract_manifest::Manifest {
        contract_manifest::Manifest {
            name: self.name.clone(),
            version: self.version.to_string(),
            owner: self.owner.clone(),
            description: self.description.clone(),
            source: contract_manifest::Source {
                path: self.source.path.clone(),
                fingerprint: self.source.fingerprint.clone(),
            },
            fields: self.fields.clone(),
            variants: self.variants.clone(),
            enrichments: self.enrichments.clone(),
            table: self.table.clone(),
            ingest: self.ingest.clone(),
            // Rendered by the docs backend, which the IR does not depend on: the Rust backend
            // fills it in when it bakes the manifest.
            docs: String::new(),
            versions: self.history.as_ref().map(|h| contract_manifest::Versions {
                default_client: h.default_client.to_string(),
                releases: h
                    .releases
                    .iter()
                    .map(|r| contract_manifest::Release {
                        version: r.contract.version.to_string(),
                        retired: r.retired,
                        upcast: r.upcast.clone(),
                    })
                    .collect(),
            }),
            subject: self.subject.clone(),
            alerts: self.alerts.clone(),
        }
    }

    /// The released versions still judged (each by its own validator), oldest first.
    pub fn supported_releases(&self) -> impl Iterator<Item = &Release> {
        self.history
            .iter()
            .flat_map(|h| &h.releases)
            .filter(|r| !r.retired)
    }

    /// Every top-level column in table order: envelope, then variant payloads (each once), then
    /// enrichments. Variant payload columns are optional in the table.
    pub fn columns(&self) -> Vec<Column<'_>> {
        let mut columns: Vec<Column<'_>> = self
            .fields
            .iter()
            .map(|f| Column {
                name: &f.name,
                id: f.id,
                ty: f.ty.clone(),
                // A dropped field is judged but never stored: its column is always null.
                required: f.required && f.pii != Pii::Drop,
                origin: ColumnOrigin::Envelope,
            })
            .collect();
        if let Some(variants) = &self.variants {
            for case in &variants.cases {
                for f in &case.fields {
                    if !columns.iter().any(|c| c.name == f.name) {
                        columns.push(Column {
                            name: &f.name,
                            id: f.id,
                            ty: f.ty.clone(),
                            required: false,
                            origin: ColumnOrigin::Variant,
                        });
                    }
                }
            }
        }
        for e in &self.enrichments {
            columns.push(Column {
                name: &e.name,
                id: e.id,
                ty: e.ty(),
                required: false,
                origin: ColumnOrigin::Enrichment,
            });
        }
        columns
    }
}

#[derive(Debug, Clone)]
pub struct Column<'a> {
    pub name: &'a str,
    pub id: u32,
    pub ty: Type,
    pub required: bool,
    pub origin: ColumnOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnOrigin {
    Envelope,
    Variant,
    Enrichment,
}
