//! Every commit path of the lake that iceberg-rust's transactions do not cover: rewrites
//! (compaction, copy-on-write upserts, replay's appends) written as manifests, manifest list
//! and metadata file, then committed by one compare-and-swap of the catalog pointer.
//!
//! iceberg-rust 0.10 has no rewrite action and keeps its commit builder private, so a rewrite
//! is committed the way its SQL catalog commits: files first, then the pointer swapped by one
//! SQL `UPDATE` that only succeeds if the table did not change meanwhile
//! ([`Lake::swap_metadata`]). A `kill -9` at any point leaves the old pointer or the new one:
//! readers see every row once either way, and what a killed run wrote is an orphan for
//! maintenance to delete. The runtime owns its catalog, which is what makes this sound:
//! nothing else holds a cached pointer it would write back.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

use arrow_array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use iceberg::TableIdent;
use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, ManifestEntry, ManifestFile, ManifestListWriter,
    ManifestWriterBuilder, Operation, Snapshot, Summary, TableMetadata, TableMetadataBuilder,
};
use iceberg::table::Table;

use super::{
    CATALOG_NAME, DEFAULT_TARGET_FILE_BYTES, Lake, LakeError, Swap, SwapRecord, WAL_LSN_PROPERTY,
    committed_lsn, file_url, local_path, write_data_files,
};

/// A data file of the current snapshot, with the manifest facts a rewrite must carry over.
#[derive(Debug, Clone)]
pub(crate) struct LiveFile {
    pub spec_id: i32,
    pub entry: ManifestEntry,
}

impl LiveFile {
    pub fn path(&self) -> &str {
        self.entry.data_file.file_path()
    }
}

/// A rewrite of the current snapshot: files removed, files added, the rest kept. Built (its
/// files written) first, committed by [`Lake::commit_rewrite`].
pub(crate) struct Rewrite {
    pub removed: HashSet<String>,
    pub added: Vec<DataFile>,
    pub operation: Operation,
    /// Extra snapshot summary properties.
    pub properties: HashMap<String, String>,
    /// The log position the new snapshot covers: `None` carries the table's forward (a rewrite
    /// adds no rows), `Some` for a commit of logged rows (upsert).
    pub lsn: Option<u64>,
    /// How the new snapshot's manifests list the removed files.
    pub removed_entries: RemovedEntries,
}

/// Whether a rewrite's manifests keep entries for the files it removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum RemovedEntries {
    /// As `deleted` entries (Iceberg's bookkeeping for incremental readers).
    #[default]
    Deleted,
    /// In no manifest: an erasure (`forget`), whose removed files' column bounds may be the
    /// very values it erases.
    Omitted,
}

impl Rewrite {
    /// A rewrite that appends `added` (written already) and removes nothing.
    pub(crate) fn appending(added: Vec<DataFile>) -> Rewrite {
        Rewrite {
            removed: HashSet::new(),
            added,
            operation: Operation::Append,
            properties: HashMap::new(),
            lsn: None,
            removed_entries: RemovedEntries::Deleted,
        }
    }
}

impl Lake {
    /// Commits `rewrite` of `table`'s current snapshot: one manifest per partition spec lists
    /// the kept files as existing, the removed ones as deleted and the added ones as added.
    /// `record` is written with the pointer swap ([`Lake::swap_metadata`]). On a conflict
    /// nothing the table references was written; the caller may retry on the new state.
    pub(crate) async fn commit_rewrite(
        &self,
        ident: &TableIdent,
        table: &Table,
        rewrite: Rewrite,
        record: Option<&dyn SwapRecord>,
    ) -> Result<Swap, LakeError> {
        let metadata = table.metadata();
        if metadata.format_version() != FormatVersion::V2 {
            return Err(LakeError::Maintenance {
                table: ident.to_string(),
                message: format!(
                    "rewrites are written for format version 2, the table is {}",
                    metadata.format_version()
                ),
            });
        }
        let target = RewriteTarget {
            ident,
            table,
            snapshot_id: new_snapshot_id(metadata),
            sequence: metadata.next_sequence_number(),
            commit: uuid::Uuid::now_v7(),
        };
        let (manifests, totals) = target.write_manifests(&rewrite).await?;
        let manifest_list = target.write_manifest_list(manifests).await?;
        let snapshot = target.snapshot(rewrite, totals, manifest_list);
        let previous = table.metadata_location().map(str::to_string);
        let next = TableMetadataBuilder::new_from_metadata(metadata.clone(), previous.clone())
            .set_branch_snapshot(snapshot, MAIN_BRANCH)?
            .build()?
            .metadata;
        self.swap_metadata(ident, previous, &next, record).await
    }

    /// Writes `batch` as data files of `table`, to be appended by [`Rewrite::appending`]. The
    /// files do not depend on the table's state, so a commit that loses a race reuses them.
    pub(crate) async fn write_appended(
        &self,
        table: &Table,
        batch: RecordBatch,
    ) -> Result<Vec<DataFile>, LakeError> {
        write_data_files(table, vec![batch], DEFAULT_TARGET_FILE_BYTES).await
    }

    /// Writes `metadata` as the table's next metadata file and points the catalog at it, the
    /// optimistic way the SQL catalog commits: the pointer only moves if it still is `previous`.
    /// `record` writes in the same SQLite transaction (replay's ledger) and may refuse the
    /// commit. On a conflict or refusal the written file is an orphan (maintenance deletes it).
    pub(crate) async fn swap_metadata(
        &self,
        ident: &TableIdent,
        previous: Option<String>,
        metadata: &TableMetadata,
        record: Option<&dyn SwapRecord>,
    ) -> Result<Swap, LakeError> {
        let path = local_path(metadata.location())
            .join("metadata")
            .join(format!(
                "{:05}-{}.metadata.json",
                metadata.last_sequence_number(),
                uuid::Uuid::now_v7()
            ));
        let bytes = serde_json::to_vec(metadata).map_err(|e| LakeError::Definition {
            table: ident.to_string(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, bytes).map_err(|source| LakeError::Io {
            path: path.clone(),
            source,
        })?;
        if let Some(record) = record {
            record.before_swap().await;
        }
        let pool = self.pool().await?;
        let mut tx = pool.begin().await?;
        let swapped = sqlx::query(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?",
        )
        .bind(file_url(&path))
        .bind(previous.clone())
        .bind(CATALOG_NAME)
        .bind(ident.namespace().join("."))
        .bind(ident.name())
        .bind(previous)
        .execute(&mut *tx)
        .await?;
        if swapped.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Swap::Conflict);
        }
        if let Some(record) = record
            && let Some(reason) = record
                .record(&mut tx, metadata.current_snapshot_id())
                .await?
        {
            tx.rollback().await?;
            return Ok(Swap::Refused(reason));
        }
        tx.commit().await?;
        Ok(Swap::Done)
    }
}

/// The data files of the table's current snapshot, with their manifests' spec ids.
pub(crate) async fn live_files(table: &Table) -> Result<Vec<LiveFile>, LakeError> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let list = table.manifest_list_reader(snapshot).load().await?;
    let mut live = Vec::new();
    for manifest in list.entries() {
        let spec_id = manifest.partition_spec_id;
        for entry in manifest.load_manifest(table.file_io()).await?.entries() {
            if entry.is_alive() {
                live.push(LiveFile {
                    spec_id,
                    entry: entry.as_ref().clone(),
                });
            }
        }
    }
    Ok(live)
}

/// The rows of the current snapshot's files named in `paths`, in the current schema, as a
/// stream of batches.
pub(crate) async fn read_files(
    table: &Table,
    paths: &HashSet<String>,
) -> Result<iceberg::scan::ArrowRecordBatchStream, LakeError> {
    let scan = table.scan().select_all().build()?;
    let tasks: Vec<_> = scan
        .plan_files()
        .await?
        .try_filter(|task| std::future::ready(paths.contains(task.data_file_path())))
        .try_collect()
        .await?;
    let stream = futures::stream::iter(tasks.into_iter().map(Ok)).boxed();
    Ok(table.reader_builder().build().read(stream)?.stream())
}

/// The new snapshot a rewrite commits, and where its files go.
struct RewriteTarget<'a> {
    ident: &'a TableIdent,
    table: &'a Table,
    snapshot_id: i64,
    sequence: i64,
    /// Names this commit's manifest files.
    commit: uuid::Uuid,
}

impl RewriteTarget<'_> {
    fn metadata_dir(&self) -> String {
        format!("{}/metadata", self.table.metadata().location())
    }

    /// One manifest per partition spec: the kept files as existing, the removed ones as
    /// deleted, the added ones (in the default spec) as added.
    async fn write_manifests(
        &self,
        rewrite: &Rewrite,
    ) -> Result<(Vec<ManifestFile>, Totals), LakeError> {
        let live = live_files(self.table).await?;
        let metadata = self.table.metadata();
        let default_spec = metadata.default_partition_spec_id();
        let mut specs: BTreeSet<i32> = live.iter().map(|f| f.spec_id).collect();
        if !rewrite.added.is_empty() {
            specs.insert(default_spec);
        }
        let mut manifests = Vec::with_capacity(specs.len());
        let mut totals = Totals::default();
        for spec_id in specs {
            let files = live.iter().filter(|f| f.spec_id == spec_id);
            let added = if spec_id == default_spec {
                rewrite.added.as_slice()
            } else {
                &[]
            };
            manifests.push(
                self.write_manifest(spec_id, files, rewrite, added, &mut totals)
                    .await?,
            );
        }
        Ok((manifests, totals))
    }

    async fn write_manifest(
        &self,
        spec_id: i32,
        live: impl Iterator<Item = &LiveFile>,
        rewrite: &Rewrite,
        added: &[DataFile],
        totals: &mut Totals,
    ) -> Result<ManifestFile, LakeError> {
        let metadata = self.table.metadata();
        let spec =
            metadata
                .partition_spec_by_id(spec_id)
                .ok_or_else(|| LakeError::Maintenance {
                    table: self.ident.to_string(),
                    message: format!("no partition spec {spec_id}"),
                })?;
        let output = self.table.file_io().new_output(format!(
            "{}/{}-m{spec_id}.avro",
            self.metadata_dir(),
            self.commit
        ))?;
        let mut writer = ManifestWriterBuilder::new(
            output,
            Some(self.snapshot_id),
            metadata.current_schema().clone(),
            spec.as_ref().clone(),
        )
        .build_v2_data();
        for file in live {
            let entry = &file.entry;
            let data = entry.data_file.clone();
            let data_sequence = entry.sequence_number.unwrap_or(0);
            if rewrite.removed.contains(file.path()) {
                totals.remove(&data);
                if rewrite.removed_entries == RemovedEntries::Deleted {
                    writer.add_delete_file(data, data_sequence, entry.file_sequence_number)?;
                }
            } else {
                totals.keep(&data);
                let added_in = entry.snapshot_id.unwrap_or(self.snapshot_id);
                writer.add_existing_file(
                    data,
                    added_in,
                    data_sequence,
                    entry.file_sequence_number,
                )?;
            }
        }
        for data in added {
            totals.add(data);
            writer.add_file(data.clone(), self.sequence)?;
        }
        Ok(writer.write_manifest_file().await?)
    }

    /// Writes the manifest list; returns its path.
    async fn write_manifest_list(&self, manifests: Vec<ManifestFile>) -> Result<String, LakeError> {
        let path = format!(
            "{}/snap-{}-1-{}.avro",
            self.metadata_dir(),
            self.snapshot_id,
            self.commit
        );
        let metadata = self.table.metadata();
        let mut list = ManifestListWriter::v2(
            self.table.file_io().new_output(&path)?.writer().await?,
            self.snapshot_id,
            metadata.current_snapshot_id(),
            self.sequence,
        );
        list.add_manifests(manifests.into_iter())?;
        list.close().await?;
        Ok(path)
    }

    fn snapshot(&self, rewrite: Rewrite, totals: Totals, manifest_list: String) -> Snapshot {
        let metadata = self.table.metadata();
        let mut properties = rewrite.properties;
        properties.extend(totals.summary());
        // The runtime finds its restart point in the newest snapshot carrying an LSN: a rewrite
        // carries the table's forward, so expiring older snapshots cannot lose it.
        let lsn = rewrite.lsn.unwrap_or_else(|| committed_lsn(metadata));
        if lsn > 0 {
            properties.insert(WAL_LSN_PROPERTY.to_string(), lsn.to_string());
        }
        Snapshot::builder()
            .with_snapshot_id(self.snapshot_id)
            .with_parent_snapshot_id(metadata.current_snapshot_id())
            .with_sequence_number(self.sequence)
            .with_timestamp_ms(now_ms())
            .with_manifest_list(manifest_list)
            .with_summary(Summary {
                operation: rewrite.operation,
                additional_properties: properties,
            })
            .with_schema_id(metadata.current_schema_id())
            .build()
    }
}

/// The `total-*`/`added-*`/`deleted-*` figures of a rewrite's snapshot summary.
#[derive(Default)]
struct Totals {
    files: u64,
    records: u64,
    bytes: u64,
    added_files: u64,
    added_records: u64,
    added_bytes: u64,
    deleted_files: u64,
    deleted_records: u64,
    removed_bytes: u64,
}

impl Totals {
    fn keep(&mut self, data: &DataFile) {
        self.files += 1;
        self.records += data.record_count();
        self.bytes += data.file_size_in_bytes();
    }

    fn add(&mut self, data: &DataFile) {
        self.keep(data);
        self.added_files += 1;
        self.added_records += data.record_count();
        self.added_bytes += data.file_size_in_bytes();
    }

    fn remove(&mut self, data: &DataFile) {
        self.deleted_files += 1;
        self.deleted_records += data.record_count();
        self.removed_bytes += data.file_size_in_bytes();
    }

    fn summary(&self) -> HashMap<String, String> {
        [
            ("total-data-files", self.files),
            ("total-records", self.records),
            ("total-files-size", self.bytes),
            ("total-delete-files", 0),
            ("total-position-deletes", 0),
            ("total-equality-deletes", 0),
            ("added-data-files", self.added_files),
            ("added-records", self.added_records),
            ("added-files-size", self.added_bytes),
            ("deleted-data-files", self.deleted_files),
            ("deleted-records", self.deleted_records),
            ("removed-files-size", self.removed_bytes),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// A snapshot id unused in `metadata` (positive, random, like iceberg-rust's).
fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((high ^ low) & (i64::MAX as u64)) as i64;
        if id != 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// Milliseconds since the Unix epoch (snapshot times, expiry cut-offs).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
