//! A table's Iceberg state, read from the lake: snapshots, data files, rows, partitions.
//!
//! Manifest files never change once written, so what was read from one is cached by its path:
//! each look at a table reads only the manifests committed since the last look.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use iceberg::spec::{DataContentType, ManifestStatus, Struct};
use iceberg::table::Table;
use serde::Serialize;

use super::history::HistoryError;

/// Snapshots and data files listed per table (the totals count them all).
const SNAPSHOTS_SHOWN: usize = 20;
const FILES_SHOWN: usize = 50;
const PARTITIONS_SHOWN: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct DataFileInfo {
    pub path: String,
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    /// The data sequence number: larger is newer.
    #[serde(skip)]
    sequence: i64,
}

#[derive(Debug, Serialize)]
pub struct SnapshotInfo {
    pub id: i64,
    pub timestamp_ms: i64,
    pub operation: String,
    pub summary: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Default)]
pub struct PartitionInfo {
    pub partition: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct TableState {
    pub table: String,
    pub location: String,
    pub format_version: String,
    pub snapshot_count: usize,
    pub snapshots: Vec<SnapshotInfo>,
    pub current_snapshot: Option<SnapshotInfo>,
    pub data_files: usize,
    pub rows: u64,
    pub bytes: u64,
    pub partition_spec: Vec<String>,
    pub partitions: Vec<PartitionInfo>,
    pub partition_count: usize,
    pub files: Vec<DataFileInfo>,
}

/// Live data files of manifests already read, by manifest path.
#[derive(Default)]
pub struct ManifestCache {
    files: Mutex<HashMap<String, Vec<DataFileInfo>>>,
}

impl ManifestCache {
    fn get(&self, path: &str) -> Option<Vec<DataFileInfo>> {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            .cloned()
    }

    fn put(&self, path: String, files: Vec<DataFileInfo>) {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path, files);
    }

    /// Forgets manifests no current snapshot of any table lists.
    fn retain(&self, current: &[String]) {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|path, _| current.contains(path));
    }
}

fn snapshot_info(snapshot: &iceberg::spec::Snapshot) -> SnapshotInfo {
    SnapshotInfo {
        id: snapshot.snapshot_id(),
        timestamp_ms: snapshot.timestamp_ms(),
        operation: snapshot.summary().operation.as_str().to_string(),
        summary: snapshot
            .summary()
            .additional_properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// `name=value` per partition field, e.g. `event_type=Login`.
fn partition_text(names: &[String], partition: &Struct) -> String {
    if names.is_empty() {
        return "(unpartitioned)".into();
    }
    names
        .iter()
        .zip(partition.fields())
        .map(|(name, value)| match value {
            Some(literal) => format!("{name}={}", literal_text(literal)),
            None => format!("{name}=null"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn literal_text(literal: &iceberg::spec::Literal) -> String {
    match literal {
        iceberg::spec::Literal::Primitive(p) => match p {
            iceberg::spec::PrimitiveLiteral::String(s) => s.clone(),
            iceberg::spec::PrimitiveLiteral::Int(i) => i.to_string(),
            iceberg::spec::PrimitiveLiteral::Long(i) => i.to_string(),
            iceberg::spec::PrimitiveLiteral::Boolean(b) => b.to_string(),
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    }
}

/// The live data files of one manifest (added or existing; deleted ones are gone).
async fn manifest_files(
    table: &Table,
    manifest: &iceberg::spec::ManifestFile,
    names: &[String],
    cache: &ManifestCache,
) -> Result<Vec<DataFileInfo>, HistoryError> {
    if let Some(files) = cache.get(&manifest.manifest_path) {
        return Ok(files);
    }
    let loaded = manifest.load_manifest(table.file_io()).await?;
    let files: Vec<DataFileInfo> = loaded
        .entries()
        .iter()
        .filter(|e| e.status() != ManifestStatus::Deleted)
        .filter(|e| e.content_type() == DataContentType::Data)
        .map(|e| DataFileInfo {
            path: e.file_path().to_string(),
            partition: partition_text(names, e.data_file().partition()),
            rows: e.record_count(),
            bytes: e.file_size_in_bytes(),
            sequence: e.sequence_number().unwrap_or(0),
        })
        .collect();
    cache.put(manifest.manifest_path.clone(), files.clone());
    Ok(files)
}

/// The table as its current snapshot has it. `seen_manifests` collects the manifest paths
/// read, for [`forget_unlisted`].
pub async fn table_state(
    table: &Table,
    cache: &ManifestCache,
    seen_manifests: &mut Vec<String>,
) -> Result<TableState, HistoryError> {
    let metadata = table.metadata();
    let spec = metadata.default_partition_spec();
    let names: Vec<String> = spec.fields().iter().map(|f| f.name.clone()).collect();
    let mut snapshots: Vec<_> = metadata.snapshots().collect();
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.timestamp_ms()));
    let mut files = Vec::new();
    if let Some(current) = metadata.current_snapshot() {
        let list = table.manifest_list_reader(current).load().await?;
        for manifest in list.entries() {
            seen_manifests.push(manifest.manifest_path.clone());
            files.extend(manifest_files(table, manifest, &names, cache).await?);
        }
    }
    let mut partitions: BTreeMap<String, PartitionInfo> = BTreeMap::new();
    for file in &files {
        let entry = partitions.entry(file.partition.clone()).or_default();
        entry.files += 1;
        entry.rows += file.rows;
        entry.bytes += file.bytes;
    }
    let partition_count = partitions.len();
    let mut partitions: Vec<PartitionInfo> = partitions
        .into_iter()
        .map(|(partition, info)| PartitionInfo { partition, ..info })
        .collect();
    partitions.sort_by_key(|p| std::cmp::Reverse(p.rows));
    partitions.truncate(PARTITIONS_SHOWN);
    let (rows, bytes) = files
        .iter()
        .fold((0, 0), |(r, b), f| (r + f.rows, b + f.bytes));
    let data_files = files.len();
    files.sort_by_key(|f| std::cmp::Reverse(f.sequence));
    files.truncate(FILES_SHOWN);
    Ok(TableState {
        table: table.identifier().to_string(),
        location: metadata.location().to_string(),
        format_version: format!("{:?}", metadata.format_version()),
        snapshot_count: snapshots.len(),
        current_snapshot: metadata.current_snapshot().map(|s| snapshot_info(s)),
        snapshots: snapshots
            .iter()
            .take(SNAPSHOTS_SHOWN)
            .map(|s| snapshot_info(s))
            .collect(),
        data_files,
        rows,
        bytes,
        partition_spec: spec
            .fields()
            .iter()
            .map(|f| format!("{} ({})", f.name, f.transform))
            .collect(),
        partition_count,
        partitions,
        files,
    })
}

/// Drops cached manifests that no table's current snapshot lists any more.
pub fn forget_unlisted(cache: &ManifestCache, seen_manifests: &[String]) {
    cache.retain(seen_manifests);
}
