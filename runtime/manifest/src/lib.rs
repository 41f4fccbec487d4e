//! The typed boundary between `contractc` and the runtime.
//!
//! `contractc build` checks a contract and bakes its [`Manifest`] into the generated validators
//! crate as Rust data; the runtime (serve, synth, deploy) reads that manifest and never parses
//! YAML or re-parses generated text. The compiler's own IR is built from the same schema types,
//! and the compiler's JSON, DDL and script backends render tables from the same
//! [`TableDef`]s the runtime creates its tables from.
//!
//! This crate is small on purpose (serde_json and sha2): everything links it.

pub mod alerts;
pub mod freshness;
pub mod maintenance;
pub mod privacy;
pub mod schema;
pub mod table;
pub mod versions;
pub mod views;

pub use alerts::{Alert, Condition};
pub use schema::*;
pub use table::{Column, Origin, PartitionColumn, TableDef, partition_name, quarantine, type_json};
pub use versions::{Judging, Release, Step, Versions};

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
    /// The contract's documentation page (Markdown), as `contractc build` writes it to
    /// `<name>/README.md`: baked here so the runtime can show it (the quality console)
    /// without reading files or re-rendering the contract.
    pub docs: String,
    /// Released versions still judged (each by its own validator) and how their events are
    /// upcast; None for a contract without a release history.
    pub versions: Option<Versions>,
    /// The events column naming the data subject (`privacy.subject`; by default the `jwt.sub`
    /// enrichment): what `forget` erases by. None when the contract records no subject.
    pub subject: Option<String>,
    /// Quality alerts (`quality.alerts`), in the contract's order.
    pub alerts: Vec<Alert>,
}

/// The request header the JWT front door sets to a verified claim, overwriting whatever a
/// client sent under that name; the validating API reads claims from these headers only.
pub fn claim_header(claim: &str) -> String {
    format!("x-contractc-claim-{}", claim.to_ascii_lowercase())
}

/// The request header carrying the front door's shared secret: the validating API puts no
/// record for a request without it (one that went around the front door).
pub const EDGE_SECRET_HEADER: &str = "x-contractc-edge";

/// The stage variable of the validating API that holds the front door's secret.
pub const EDGE_SECRET_STAGE_VARIABLE: &str = "contractc_edge_secret";

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

    /// The most one event may weigh on the AWS path: the contract's limit, within what one
    /// Kinesis record carries once the event is base64-encoded in its envelope. `serve` takes
    /// the contract's limit; the edge function and the Glue job take this one.
    pub fn aws_event_limit(&self) -> u64 {
        let carried = (KINESIS_RECORD_BYTES - ENVELOPE_ROOM) / 4 * 3;
        self.ingest.max_body_bytes.min(carried as u64)
    }

    /// The JWT claims the contract's enrichments read (`sub` for `jwt.sub`), in enrichment
    /// order, each once. The ingest edge forwards exactly these, from the verified token.
    pub fn enrichment_claims(&self) -> Vec<&str> {
        let mut claims: Vec<&str> = Vec::new();
        for e in &self.enrichments {
            let claim = match &e.source {
                EnrichmentSource::JwtSub => "sub",
                EnrichmentSource::JwtClaim(claim) => claim.as_str(),
                _ => continue,
            };
            if !claims.contains(&claim) {
                claims.push(claim);
            }
        }
        claims
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

/// How much of an event refused as `too_large` the quarantine table keeps: enough to see what
/// it was. Kept whole, oversized batch items would fill memory (buffers, the console's history,
/// a replay) and disk with what the contract already refused. The same at every door and in
/// the Glue job.
pub const OVERSIZED_KEPT_BYTES: usize = 4096;

/// The most one Kinesis record carries (its data and partition key).
pub const KINESIS_RECORD_BYTES: usize = 1 << 20;

/// Room in a stream record for the envelope around an event: its request id and time, the
/// contract's claims (each at most a token's size), the client's version, the JSON around them.
const ENVELOPE_ROOM: usize = 64 << 10;

/// The Spark session settings the Glue job runs with, in order: the Iceberg extensions, UTC
/// for zone-less timestamps, lenient parsing (an unparseable timestamp is null, as the Rust
/// validator sees it), and no nullability check on writes (required columns are filled by
/// construction). The generated job applies them and `deploy` passes them to Glue: one list.
pub const SPARK_SESSION_SETTINGS: &[(&str, &str)] = &[
    (
        "spark.sql.extensions",
        "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    ),
    ("spark.sql.session.timeZone", "UTC"),
    ("spark.sql.legacy.timeParserPolicy", "CORRECTED"),
    ("spark.sql.ansi.enabled", "false"),
    ("spark.sql.iceberg.check-nullability", "false"),
];

/// The settings of an Iceberg catalog named `catalog` in the Glue Data Catalog, with its
/// warehouse in S3, added to [`SPARK_SESSION_SETTINGS`].
pub fn glue_catalog_settings(catalog: &str, warehouse: &str) -> Vec<(String, String)> {
    let prefix = format!("spark.sql.catalog.{catalog}");
    let mut settings: Vec<(String, String)> = SPARK_SESSION_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    settings.extend([
        (
            prefix.clone(),
            "org.apache.iceberg.spark.SparkCatalog".to_string(),
        ),
        (
            format!("{prefix}.catalog-impl"),
            "org.apache.iceberg.aws.glue.GlueCatalog".to_string(),
        ),
        (
            format!("{prefix}.io-impl"),
            "org.apache.iceberg.aws.s3.S3FileIO".to_string(),
        ),
        (format!("{prefix}.warehouse"), warehouse.to_string()),
    ]);
    settings
}
