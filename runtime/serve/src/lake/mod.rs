//! The embedded lake: Iceberg tables in a local warehouse with a SQLite catalog.
//!
//! Layout under the data directory: `catalog.db` (the SQL catalog, name `contractc`) and
//! `warehouse/<database>.db/<table>/` — the paths pyiceberg and Spark use, so any Iceberg reader
//! can open the tables.
//!
//! Tables are created from the generated `CreateTableRequest` JSON with the contract's own
//! field ids: `Catalog::create_table` would renumber them from 1, which would break the
//! promise that a field id identifies a column forever. So the first metadata file is built
//! from the definition (through `iceberg::spec::TableMetadata`, which validates it) and
//! registered with the catalog.

mod commit;

pub(crate) use commit::{LiveFile, RemovedEntries, Rewrite, live_files, now_ms, read_files};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use contract_support::manifest::TableDef;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::{DataFile, DataFileFormat, TableMetadata};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableIdent};
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle,
    SqlCatalog, SqlCatalogBuilder,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

/// The catalog name readers must use (rows in the SQL catalog are keyed by it).
pub const CATALOG_NAME: &str = "contractc";
/// The snapshot summary property holding the highest write-ahead-log LSN a commit covers.
pub const WAL_LSN_PROPERTY: &str = "contractc.wal-lsn";

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("table definition of {table}: {message}")]
    Definition { table: String, message: String },
    #[error("table {table} cannot take this contract version: {reason}")]
    Incompatible { table: String, reason: String },
    #[error("catalog database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("maintenance of {table}: {message}")]
    Maintenance { table: String, message: String },
    #[error(
        "the catalog {path} cannot be opened ({reason}); if the file is damaged, move it and \
         the warehouse beside it aside (they belong together) and start again: `serve` creates \
         a new catalog, and events still in the write-ahead log are kept"
    )]
    Catalog { path: PathBuf, reason: String },
}

/// What went wrong opening the catalog, in SQLite's words when it was SQLite (iceberg's own
/// wrapper text says only "operation failed for hitting sqlx error").
fn catalog_reason(error: &iceberg::Error) -> String {
    let mut source = std::error::Error::source(error);
    let mut innermost = None;
    while let Some(cause) = source {
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    innermost.unwrap_or_else(|| error.to_string())
}

/// The columns a contract adds to a table whose columns are `current`, or why the table cannot
/// take the contract: a column dropped, renamed, retyped or made required, or a new required
/// one (old rows have no value for it). Pure: the schema change itself is the caller's.
fn added_columns(
    current: &std::collections::BTreeMap<i64, ColumnShape>,
    wanted: &std::collections::BTreeMap<i64, ColumnShape>,
) -> Result<Vec<String>, String> {
    for (id, have) in current {
        match wanted.get(id) {
            None => {
                return Err(format!(
                    "column `{}` (id {id}) is not in the contract; iceberg-rust cannot drop columns yet: keep the field, or write to a new table",
                    have.name
                ));
            }
            Some(want) if want.name != have.name => {
                return Err(format!(
                    "column id {id} is `{}` in the table but `{}` in the contract (renames are not applied automatically)",
                    have.name, want.name
                ));
            }
            Some(want) if want.ty != have.ty => {
                return Err(format!(
                    "column `{}` (id {id}) is {} in the table but {} in the contract; iceberg-rust cannot promote types yet: migrate the table with Spark or pyiceberg first",
                    have.name, have.ty, want.ty
                ));
            }
            Some(want) if want.required && !have.required => {
                return Err(format!(
                    "column `{}` (id {id}) is optional in the table but required in the contract",
                    have.name
                ));
            }
            Some(_) => {}
        }
    }
    let mut added = Vec::new();
    for (id, want) in wanted {
        if !current.contains_key(id) {
            if want.required {
                return Err(format!(
                    "new column `{}` (id {id}) is required: old rows have no value for it; make it optional",
                    want.name
                ));
            }
            added.push(want.name.clone());
        }
    }
    Ok(added)
}

/// The catalog identifier of the table `definition` describes.
pub fn table_ident(definition: &TableDef) -> TableIdent {
    TableIdent::new(
        NamespaceIdent::new(definition.database.clone()),
        definition.name.clone(),
    )
}

pub struct Lake {
    pub(crate) catalog: SqlCatalog,
    pub(crate) warehouse: PathBuf,
    /// The catalog's SQLite URI (schema evolution and maintenance swap the metadata pointer
    /// themselves).
    pub(crate) catalog_uri: String,
    pool: tokio::sync::OnceCell<sqlx::SqlitePool>,
    /// The id of the key ingest commits hash `pii: hash` values under, recorded in their
    /// snapshot summaries ([`PII_KEY_PROPERTY`]).
    pii_key_id: std::sync::OnceLock<String>,
}

/// The snapshot summary property naming the key a commit's hashed values were made with.
pub const PII_KEY_PROPERTY: &str = "contractc.pii-key-id";

/// How a commit's pointer swap ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    Done,
    /// Another commit moved the pointer first: nothing changed; retry on the new state.
    Conflict,
    /// The [`SwapRecord`] refused (its reason): nothing changed.
    Refused(String),
}

/// What a commit writes to the catalog database in the same transaction as its pointer swap
/// (replay's ledger rows): the snapshot is the table's with it, or neither is.
#[async_trait::async_trait]
pub trait SwapRecord: Send + Sync {
    /// Runs right before the swap (tests make another writer commit there).
    async fn before_swap(&self) {}

    /// Writes in the swap's transaction; `Some(reason)` refuses the commit (rolled back).
    async fn record(
        &self,
        tx: &mut sqlx::SqliteConnection,
        snapshot_id: Option<i64>,
    ) -> Result<Option<String>, sqlx::Error>;
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The local path of a `file://` location (the warehouse is local).
pub(crate) fn local_path(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

/// Rows per Parquet row group of the files the runtime writes.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Data files roll over at this size when a commit writes them (Iceberg's default target).
pub(crate) const DEFAULT_TARGET_FILE_BYTES: u64 = 512 * 1024 * 1024;

impl Lake {
    /// Opens (creating if needed) the catalog at `dir/catalog.db` and warehouse `dir/warehouse`.
    pub async fn open(dir: &Path) -> Result<Lake, LakeError> {
        let dir = std::path::absolute(dir).map_err(|source| LakeError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let warehouse = dir.join("warehouse");
        std::fs::create_dir_all(&warehouse).map_err(|source| LakeError::Io {
            path: warehouse.clone(),
            source,
        })?;
        let catalog_path = dir.join("catalog.db");
        let catalog_uri = format!("sqlite:{}?mode=rwc", catalog_path.display());
        let props = HashMap::from([
            (SQL_CATALOG_PROP_URI.to_string(), catalog_uri.clone()),
            (SQL_CATALOG_PROP_WAREHOUSE.to_string(), file_url(&warehouse)),
            (
                SQL_CATALOG_PROP_BIND_STYLE.to_string(),
                SqlBindStyle::QMark.to_string(),
            ),
        ]);
        let catalog = SqlCatalogBuilder::default()
            .with_storage_factory(Arc::new(iceberg::io::LocalFsStorageFactory))
            .load(CATALOG_NAME, props)
            .await
            .map_err(|error| LakeError::Catalog {
                path: catalog_path,
                reason: catalog_reason(&error),
            })?;
        Ok(Lake {
            catalog,
            warehouse,
            catalog_uri,
            pool: tokio::sync::OnceCell::new(),
            pii_key_id: std::sync::OnceLock::new(),
        })
    }

    /// Creates the namespace and the table `definition` describes unless the table exists.
    pub async fn ensure_table(&self, definition: &TableDef) -> Result<TableIdent, LakeError> {
        let database = definition.database.as_str();
        let name = definition.name.clone();
        let ident = table_ident(definition);
        let namespace = ident.namespace();
        if !self.catalog.namespace_exists(namespace).await? {
            self.catalog
                .create_namespace(namespace, HashMap::new())
                .await?;
        }
        if self.catalog.table_exists(&ident).await? {
            return Ok(ident);
        }
        let location = self.warehouse.join(format!("{database}.db")).join(&name);
        let metadata = initial_metadata(definition, &file_url(&location)).map_err(|message| {
            LakeError::Definition {
                table: name.clone(),
                message,
            }
        })?;
        let metadata_dir = location.join("metadata");
        std::fs::create_dir_all(&metadata_dir).map_err(|source| LakeError::Io {
            path: metadata_dir.clone(),
            source,
        })?;
        let metadata_path =
            metadata_dir.join(format!("00000-{}.metadata.json", uuid::Uuid::new_v4()));
        let bytes = serde_json::to_vec(&metadata).map_err(|e| LakeError::Definition {
            table: name.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&metadata_path, bytes).map_err(|source| LakeError::Io {
            path: metadata_path.clone(),
            source,
        })?;
        self.catalog
            .register_table(&ident, file_url(&metadata_path))
            .await?;
        tracing::info!(table = %ident, "created table");
        Ok(ident)
    }

    /// Evolves an existing table to the schema of `definition` in place (no data rewrite):
    /// new optional columns are added with the contract's ids, and the column order becomes the
    /// contract's. Anything else (a type change, a new required column, a removed column, a
    /// renamed one) is refused with the reason. Returns the added columns.
    pub async fn evolve(
        &self,
        ident: &TableIdent,
        definition: &TableDef,
    ) -> Result<Vec<String>, LakeError> {
        let table = self.load(ident).await?;
        let create = definition.create_request();
        let wanted_json = create.get("schema").cloned().unwrap_or_default();
        let current_json = serde_json::to_value(table.metadata().current_schema().as_ref())
            .map_err(|e| LakeError::Definition {
                table: ident.to_string(),
                message: e.to_string(),
            })?;
        let (current, wanted) = (columns_by_id(&current_json), columns_by_id(&wanted_json));
        let incompatible = |reason: String| LakeError::Incompatible {
            table: ident.to_string(),
            reason,
        };
        let added = added_columns(&current, &wanted).map_err(incompatible)?;
        let same_order = current_json["fields"]
            .as_array()
            .map(|f| f.iter().map(|c| c["id"].clone()).collect::<Vec<_>>())
            == wanted_json["fields"]
                .as_array()
                .map(|f| f.iter().map(|c| c["id"].clone()).collect::<Vec<_>>());
        if added.is_empty() && same_order {
            return Ok(added);
        }
        let schema: iceberg::spec::Schema =
            serde_json::from_value(wanted_json).map_err(|e| LakeError::Definition {
                table: ident.to_string(),
                message: e.to_string(),
            })?;
        let previous = table.metadata_location().map(str::to_string);
        let metadata = iceberg::spec::TableMetadataBuilder::new_from_metadata(
            table.metadata().clone(),
            previous.clone(),
        )
        .add_current_schema(schema)?
        .build()?
        .metadata;
        if self.swap_metadata(ident, previous, &metadata, None).await? != Swap::Done {
            return Err(incompatible(
                "the table changed while its schema was being evolved; try again".into(),
            ));
        }
        tracing::info!(table = %ident, ?added, "evolved the table schema in place");
        Ok(added)
    }

    /// The catalog database, for the runtime's own commits (one pool per lake).
    async fn pool(&self) -> Result<&sqlx::SqlitePool, LakeError> {
        Ok(self
            .pool
            .get_or_try_init(|| sqlx::SqlitePool::connect(&self.catalog_uri))
            .await?)
    }

    pub async fn exists(&self, ident: &TableIdent) -> Result<bool, LakeError> {
        Ok(self.catalog.table_exists(ident).await?)
    }

    /// Records `key_id` in every later ingest commit (set once, at start).
    pub fn record_key_id(&self, key_id: Option<&str>) {
        if let Some(id) = key_id {
            let _ = self.pii_key_id.set(id.to_string());
        }
    }

    /// The snapshot summary of an ingest commit covering the log up to `lsn`.
    pub(crate) fn ingest_properties(&self, lsn: u64) -> HashMap<String, String> {
        let mut properties = HashMap::from([(WAL_LSN_PROPERTY.to_string(), lsn.to_string())]);
        if let Some(id) = self.pii_key_id.get() {
            properties.insert(PII_KEY_PROPERTY.to_string(), id.clone());
        }
        properties
    }

    /// Whether the catalog has the table.
    pub async fn table_exists(&self, ident: &TableIdent) -> Result<bool, LakeError> {
        Ok(self.catalog.table_exists(ident).await?)
    }

    pub async fn load(&self, ident: &TableIdent) -> Result<Table, LakeError> {
        Ok(self.catalog.load_table(ident).await?)
    }

    /// The highest LSN committed to the table (0 when none): the newest snapshot carrying it.
    pub async fn committed_lsn(&self, ident: &TableIdent) -> Result<u64, LakeError> {
        let table = self.load(ident).await?;
        Ok(committed_lsn(table.metadata()))
    }

    /// Writes `batches` as Parquet data files and commits them in one snapshot recording `lsn`.
    pub async fn append(
        &self,
        ident: &TableIdent,
        batches: Vec<RecordBatch>,
        lsn: u64,
    ) -> Result<usize, LakeError> {
        let table = self.load(ident).await?;
        let files = write_data_files(&table, batches, DEFAULT_TARGET_FILE_BYTES).await?;
        let count = files.len();
        let tx = Transaction::new(&table);
        let tx = tx
            .fast_append()
            .add_data_files(files)
            .set_snapshot_properties(self.ingest_properties(lsn))
            .apply(tx)?;
        tx.commit(&self.catalog).await?;
        Ok(count)
    }

    /// The Arrow schema of a table as Iceberg sees it (with field ids).
    pub async fn arrow_schema(
        &self,
        ident: &TableIdent,
    ) -> Result<arrow_schema::Schema, LakeError> {
        let table = self.load(ident).await?;
        Ok(iceberg::arrow::schema_to_arrow_schema(
            table.metadata().current_schema(),
        )?)
    }
}

pub(crate) fn committed_lsn(metadata: &TableMetadata) -> u64 {
    let mut snapshots: Vec<_> = metadata.snapshots().collect();
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.sequence_number()));
    snapshots
        .iter()
        .find_map(|s| {
            s.summary()
                .additional_properties
                .get(WAL_LSN_PROPERTY)
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes `batches` as Parquet data files of the table (split by partition), each up to
/// `target_bytes`. Nothing is committed.
pub(crate) async fn write_data_files(
    table: &Table,
    batches: Vec<RecordBatch>,
    target_bytes: u64,
) -> Result<Vec<DataFile>, LakeError> {
    write_data_stream(
        table,
        futures::stream::iter(batches.into_iter().map(Ok)),
        target_bytes,
    )
    .await
}

/// [`write_data_files`] from a stream: rewrites (compaction, upsert) hold one batch at a
/// time, not a whole partition.
pub(crate) async fn write_data_stream(
    table: &Table,
    batches: impl futures::Stream<Item = Result<RecordBatch, iceberg::Error>>,
    target_bytes: u64,
) -> Result<Vec<DataFile>, LakeError> {
    use futures::TryStreamExt;
    let mut batches = std::pin::pin!(batches);
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().clone();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        // A writer holds its open row group in memory, and a reader fetches a row group at a
        // time: this bounds both for compaction's large files (the default is 1M rows).
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let parquet = ParquetWriterBuilder::new(properties, schema.clone());
    let locations = DefaultLocationGenerator::new(metadata)?;
    // A fresh prefix per write: the name generator's counter restarts at 0 every time.
    let names = DefaultFileNameGenerator::new(
        uuid::Uuid::now_v7().to_string(),
        None,
        DataFileFormat::Parquet,
    );
    let rolling = RollingFileWriterBuilder::new(
        parquet,
        usize::try_from(target_bytes).unwrap_or(usize::MAX),
        table.file_io().clone(),
        locations,
        names,
    );
    let data_files = DataFileWriterBuilder::new(rolling);
    if spec.is_unpartitioned() {
        let mut writer = data_files.build(None).await?;
        while let Some(batch) = batches.try_next().await? {
            writer.write(batch).await?;
        }
        Ok(writer.close().await?)
    } else {
        let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(schema, spec)?;
        let mut fanout: FanoutWriter<_> = FanoutWriter::new(data_files);
        while let Some(batch) = batches.try_next().await? {
            for (key, part) in splitter.split(&batch)? {
                fanout.write(key, part).await?;
            }
        }
        Ok(fanout.close().await?)
    }
}

struct ColumnShape {
    name: String,
    /// The type without nested members (those are columns of their own).
    ty: String,
    required: bool,
}

/// Every id in a schema's JSON (fields, list elements, map keys and values) with its shape.
fn columns_by_id(schema: &Value) -> std::collections::BTreeMap<i64, ColumnShape> {
    fn shallow(ty: &Value) -> String {
        match ty {
            Value::String(s) => s.clone(),
            other => other["type"].as_str().unwrap_or("?").to_string(),
        }
    }
    fn walk(ty: &Value, out: &mut std::collections::BTreeMap<i64, ColumnShape>) {
        match ty["type"].as_str() {
            Some("struct") => {
                for f in ty["fields"].as_array().into_iter().flatten() {
                    if let Some(id) = f["id"].as_i64() {
                        out.insert(
                            id,
                            ColumnShape {
                                name: f["name"].as_str().unwrap_or_default().to_string(),
                                ty: shallow(&f["type"]),
                                required: f["required"].as_bool().unwrap_or(false),
                            },
                        );
                    }
                    walk(&f["type"], out);
                }
            }
            Some("list") => {
                if let Some(id) = ty["element-id"].as_i64() {
                    out.insert(
                        id,
                        ColumnShape {
                            name: "element".into(),
                            ty: shallow(&ty["element"]),
                            required: ty["element-required"].as_bool().unwrap_or(false),
                        },
                    );
                }
                walk(&ty["element"], out);
            }
            Some("map") => {
                for (key, id_key, required) in
                    [("key", "key-id", true), ("value", "value-id", false)]
                {
                    if let Some(id) = ty[id_key].as_i64() {
                        let required = if key == "value" {
                            ty["value-required"].as_bool().unwrap_or(false)
                        } else {
                            required
                        };
                        out.insert(
                            id,
                            ColumnShape {
                                name: key.into(),
                                ty: shallow(&ty[key]),
                                required,
                            },
                        );
                    }
                    walk(&ty[key], out);
                }
            }
            _ => {}
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(schema, &mut out);
    out
}

/// Format-version 2 metadata of a new, empty table, from a `CreateTableRequest`.
/// A new table's first metadata, with the definition's own field ids (`deploy` writes the same
/// document to S3), parsed by iceberg-rust, which checks it.
fn initial_metadata(definition: &TableDef, location: &str) -> Result<TableMetadata, String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let metadata = definition.initial_metadata(location, &uuid::Uuid::new_v4().to_string(), now_ms);
    serde_json::from_value(metadata).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_definitions_become_valid_metadata_with_contract_ids() {
        for contract in contract_validators::ALL {
            let manifest = contract.manifest();
            for table in [manifest.events_table(), manifest.quarantine_table()] {
                let create = table.create_request();
                let metadata = initial_metadata(&table, "file:///tmp/t").unwrap();
                let schema = metadata.current_schema();
                for field in create["schema"]["fields"].as_array().unwrap() {
                    let id = field["id"].as_i64().unwrap() as i32;
                    let name = field["name"].as_str().unwrap();
                    assert_eq!(
                        schema.field_by_id(id).map(|f| f.name.as_str()),
                        Some(name),
                        "{name} keeps id {id}"
                    );
                }
            }
        }
    }
}
