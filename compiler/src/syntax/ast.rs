//! The contract as written: a faithful, unchecked mirror of the YAML.
//!
//! Deserialized from the JSON value only after the JSON Schema accepted it, so every shape is
//! already right; nothing here is trusted beyond that. The checker turns it into the IR.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

#[derive(Debug, Deserialize)]
pub struct ContractDoc {
    pub contract: String,
    pub version: String,
    pub owner: String,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub fields: Vec<FieldDoc>,
    #[serde(default)]
    pub reserved: ReservedDoc,
    pub variants: Option<VariantsDoc>,
    pub table: TableDoc,
    pub ingest: IngestDoc,
    #[serde(default)]
    pub enrich: Vec<EnrichmentDoc>,
    pub versions: Option<VersionsDoc>,
    pub privacy: Option<PrivacyDoc>,
    #[serde(default)]
    pub quality: QualityDoc,
}

/// `quality`: aggregate expectations.
#[derive(Debug, Default, Deserialize)]
pub struct QualityDoc {
    #[serde(default)]
    pub alerts: Vec<AlertDoc>,
}

/// One `quality.alerts` entry as written.
#[derive(Debug, Deserialize)]
pub struct AlertDoc {
    pub name: String,
    pub description: Option<String>,
    pub when: AlertKindDoc,
    pub over: Option<Value>,
    #[serde(rename = "for")]
    pub window: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKindDoc {
    BadShare,
    NoEvents,
    QuarantineGrowth,
    CommitFailures,
}

/// `privacy`: who the data is about.
#[derive(Debug, Default, Deserialize)]
pub struct PrivacyDoc {
    pub subject: Option<String>,
}

/// `pii:` as written: `true`/`false`, or `keep`, `mask`, `hash`, `drop` (the schema allows
/// nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PiiDoc {
    Flag(bool),
    Handling(PiiHandling),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiHandling {
    Keep,
    Mask,
    Hash,
    Drop,
}

#[derive(Debug, Deserialize)]
pub struct FieldDoc {
    pub name: String,
    pub id: i64,
    #[serde(flatten)]
    pub shape: ShapeDoc,
    pub required: Option<bool>,
    pub description: Option<String>,
    pub pii: Option<PiiDoc>,
}

/// A list element or map key/value: typed and id'd like a field, but nameless.
#[derive(Debug, Deserialize)]
pub struct ElementDoc {
    pub id: i64,
    pub required: Option<bool>,
    #[serde(flatten)]
    pub shape: ShapeDoc,
}

/// What a field and an element share: the type, its parameters and the rules.
#[derive(Debug, Deserialize)]
pub struct ShapeDoc {
    #[serde(rename = "type")]
    pub type_name: String,
    pub format: Option<String>,
    pub items: Option<Box<ElementDoc>>,
    pub keys: Option<Box<ElementDoc>>,
    pub values: Option<Box<ElementDoc>>,
    pub fields: Option<Vec<FieldDoc>>,
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReservedDoc {
    #[serde(default)]
    pub ids: Vec<i64>,
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RuleDoc {
    pub min: Option<Number>,
    pub max: Option<Number>,
    pub min_length: Option<i64>,
    pub max_length: Option<i64>,
    pub pattern: Option<String>,
    pub one_of: Option<Vec<Value>>,
    pub not_before: Option<TimeBoundDoc>,
    pub not_after: Option<TimeBoundDoc>,
    pub policy: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TimeBoundDoc {
    pub offset: Option<String>,
    pub skew: String,
}

#[derive(Debug, Deserialize)]
pub struct VariantsDoc {
    pub discriminator: String,
    /// Kept as a JSON map: it preserves the order the author wrote the cases in.
    pub cases: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CaseDoc {
    pub description: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldDoc>,
    #[serde(default)]
    pub require: Vec<String>,
    #[serde(default)]
    pub rules: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct TableDoc {
    pub database: String,
    pub name: String,
    #[serde(default)]
    pub partition_by: Vec<PartitionDoc>,
    #[serde(default)]
    pub sort_by: Vec<SortDoc>,
    pub write: Option<WriteDoc>,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct PartitionDoc {
    pub field: String,
    pub transform: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SortDoc {
    pub field: String,
    pub direction: Option<String>,
    pub nulls: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WriteDoc {
    pub mode: String,
    pub key: Option<Vec<String>>,
    pub latest_by: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct IngestDoc {
    pub route: String,
    pub batch_route: Option<String>,
    pub max_body_bytes: Option<i64>,
    pub max_batch_events: Option<i64>,
    pub unknown_fields: Option<String>,
    pub auth: AuthDoc,
    pub dedup: Option<DedupDoc>,
}

#[derive(Debug, Deserialize)]
pub struct DedupDoc {
    pub id: String,
    pub window: String,
}

#[derive(Debug, Deserialize)]
pub struct AuthDoc {
    pub issuer: String,
    pub jwks_url: Option<String>,
    pub audience: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct EnrichmentDoc {
    pub name: String,
    pub id: i64,
    pub from: String,
    pub description: Option<String>,
    pub pii: Option<PiiDoc>,
}

/// `versions`: the default client version, retirement, and the migration from the previous
/// release (its steps refer to fields by name; the checker resolves them to ids).
#[derive(Debug, Default, Deserialize)]
pub struct VersionsDoc {
    pub default: Option<String>,
    pub retire_before: Option<String>,
    #[serde(default)]
    pub migration: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    MapValues {
        field: String,
        map: Map<String, Value>,
    },
    Derive {
        field: String,
        from: String,
        map: Option<Map<String, Value>>,
        otherwise: Option<Value>,
    },
    Default {
        field: String,
        value: Value,
    },
    Scale {
        field: String,
        by: Number,
    },
    Drop {
        field: String,
    },
}
