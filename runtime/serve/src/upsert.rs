//! Upsert tables: one row per key, the latest version, after any sequence of commits.
//!
//! Within one commit the runtime keeps, for each key, the row with the greatest `latest_by`
//! value (the last received on a tie, or when the contract names no `latest_by`):
//! [`latest_per_key`]. Across commits, [`Lake::upsert`] is copy-on-write: the table's rows
//! with the batch's keys are found (a scan filtered on the key, reading only the key, the
//! version and the `_file` metadata column), the files holding superseded versions are
//! rewritten without them, and one overwrite snapshot replaces those files and adds the new
//! rows (committed like compaction, see `maintenance.rs`). Readers never see two versions of
//! a key, and a `kill -9` leaves the commit whole or absent (the log replays it).
//! Equality deletes would avoid the rewrite, but pyiceberg cannot read them yet.
//!
//! The cost of a commit grows with the rows sharing a file with an updated key; upsert tables
//! suit entity state (matches, profiles), not high-volume event streams.

use std::collections::{HashMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{ArrowError, DataType};
use futures::TryStreamExt;
use iceberg::TableIdent;
use iceberg::expr::{Predicate, Reference};
use iceberg::spec::{Datum, Operation};

use contract_support::manifest::Upsert;
use iceberg::table::Table;

use crate::lake::{
    DEFAULT_TARGET_FILE_BYTES, Lake, LakeError, RemovedEntries, Swap, write_data_files,
    write_data_stream,
};
use crate::lake::{Rewrite, read_files};

/// Keeps the latest row per key of `batch`, in first-seen key order.
pub fn latest_per_key(
    batch: &RecordBatch,
    key: &[impl AsRef<str>],
    latest_by: Option<&str>,
) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let column = |name: &str| -> Result<_, ArrowError> {
        let index = schema.index_of(name)?;
        Ok(batch.column(index).clone())
    };
    let key_columns = key
        .iter()
        .map(|k| column(k.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = RowConverter::new(
        key_columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?
    .convert_columns(&key_columns)?;
    // Row-format bytes of `latest_by` compare like the values themselves (nulls first).
    let versions = match latest_by {
        Some(name) => {
            let c = column(name)?;
            Some(
                RowConverter::new(vec![SortField::new(c.data_type().clone())])?
                    .convert_columns(&[c])?,
            )
        }
        None => None,
    };
    let mut chosen: HashMap<&[u8], usize> = HashMap::with_capacity(batch.num_rows());
    let mut order: Vec<&[u8]> = Vec::new();
    for row in 0..batch.num_rows() {
        let key = keys.row(row);
        let key = key.data();
        match chosen.get(key).copied() {
            None => {
                chosen.insert(key, row);
                order.push(key);
            }
            Some(current) => {
                let newer = match &versions {
                    Some(v) => v.row(row) >= v.row(current),
                    None => true,
                };
                if newer {
                    chosen.insert(key, row);
                }
            }
        }
    }
    let indices = UInt32Array::from(order.iter().map(|k| chosen[k] as u32).collect::<Vec<_>>());
    arrow_select::take::take_record_batch(batch, &indices)
}

/// The file column of iceberg-rust's scans (`_file`).
const FILE_COLUMN: &str = "_file";

/// Commits `batches` (in arrival order) to an upsert table: one row per key among them,
/// then [`Lake::upsert`].
pub async fn upsert_batches(
    lake: &Lake,
    ident: &TableIdent,
    batches: Vec<RecordBatch>,
    lsn: u64,
    upsert: Upsert<'_>,
) -> Result<usize, LakeError> {
    let Some(first) = batches.first() else {
        return Ok(0);
    };
    let arrow = |e: ArrowError| LakeError::Maintenance {
        table: ident.to_string(),
        message: e.to_string(),
    };
    let all = arrow_select::concat::concat_batches(&first.schema(), &batches).map_err(arrow)?;
    let latest = latest_per_key(&all, upsert.key, upsert.latest_by).map_err(arrow)?;
    upsert_batch(lake, ident, latest, lsn, upsert).await
}

/// Commits `batch` (one row per key, from [`latest_per_key`]) to an upsert table so that the
/// table holds one row per key afterwards: the latest by `latest_by`, the new row on a tie.
/// Returns the number of data files written.
pub async fn upsert_batch(
    lake: &Lake,
    ident: &TableIdent,
    batch: RecordBatch,
    lsn: u64,
    upsert: Upsert<'_>,
) -> Result<usize, LakeError> {
    let table = lake.load(ident).await?;
    let mut rewrite = upsert_rewrite(&table, batch, upsert).await?;
    rewrite.lsn = Some(lsn);
    rewrite.properties = lake.ingest_properties(lsn);
    let files = rewrite.added.len();
    match lake.commit_rewrite(ident, &table, rewrite, None).await? {
        Swap::Done => Ok(files),
        Swap::Conflict | Swap::Refused(_) => Err(LakeError::Maintenance {
            table: ident.to_string(),
            message: "another commit changed the table during the upsert; retrying".into(),
        }),
    }
}

/// The rewrite that upserts `batch` (one row per key) into `table`'s current state: the
/// files holding superseded versions rewritten without them, and the new rows that win.
/// Its files are written; nothing is committed.
pub(crate) async fn upsert_rewrite(
    table: &Table,
    batch: RecordBatch,
    upsert: Upsert<'_>,
) -> Result<Rewrite, LakeError> {
    let (key, latest_by) = (upsert.key, upsert.latest_by);
    let arrow = |e: ArrowError| LakeError::Maintenance {
        table: table.identifier().to_string(),
        message: e.to_string(),
    };
    let new = Versions::of(&batch, key, latest_by).map_err(arrow)?;
    let old = existing_versions(table, &batch, key, latest_by).await?;
    let plan = plan(&new, &old);
    let mut added = Vec::new();
    for (file, drop) in &plan.rewrite {
        let kept = read_files(table, &HashSet::from([file.clone()]))
            .await?
            .and_then(|b| {
                std::future::ready(without_rows(&b, key, latest_by, drop).map_err(|e| {
                    iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string())
                }))
            });
        added.extend(write_data_stream(table, kept, DEFAULT_TARGET_FILE_BYTES).await?);
    }
    let fresh =
        arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(plan.keep_new))
            .map_err(arrow)?;
    if fresh.num_rows() > 0 {
        added.extend(write_data_files(table, vec![fresh], DEFAULT_TARGET_FILE_BYTES).await?);
    }
    Ok(Rewrite {
        removed: plan.rewrite.into_keys().collect(),
        added,
        operation: Operation::Overwrite,
        properties: HashMap::new(),
        lsn: None,
        removed_entries: RemovedEntries::Deleted,
    })
}

/// Keys and versions of some rows, in row-format bytes (comparable like the values).
struct Versions {
    keys: Rows,
    versions: Option<Rows>,
}

impl Versions {
    fn of(
        batch: &RecordBatch,
        key: &[String],
        latest_by: Option<&str>,
    ) -> Result<Versions, ArrowError> {
        Ok(Versions {
            keys: row_bytes(batch, key)?,
            versions: match latest_by {
                Some(name) => Some(row_bytes(batch, &[name.to_string()])?),
                None => None,
            },
        })
    }

    fn version(&self, row: usize) -> Option<&[u8]> {
        self.versions.as_ref().map(|v| v.row(row).data())
    }
}

fn row_bytes(batch: &RecordBatch, columns: &[String]) -> Result<Rows, ArrowError> {
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|c| Ok(batch.column(batch.schema().index_of(c)?).clone()))
        .collect::<Result<_, ArrowError>>()?;
    RowConverter::new(
        arrays
            .iter()
            .map(|a| SortField::new(a.data_type().clone()))
            .collect(),
    )?
    .convert_columns(&arrays)
}

/// The table's rows that may share a key with the batch: keys and versions, per data file.
struct Existing {
    versions: Vec<(Versions, String)>,
}

async fn existing_versions(
    table: &Table,
    batch: &RecordBatch,
    key: &[String],
    latest_by: Option<&str>,
) -> Result<Existing, LakeError> {
    let mut columns: Vec<String> = key.to_vec();
    columns.extend(latest_by.map(str::to_string));
    columns.push(FILE_COLUMN.to_string());
    let mut scan = table.scan().select(columns);
    if let Some(filter) = key_filter(batch, key) {
        scan = scan.with_filter(filter);
    }
    let batches: Vec<RecordBatch> = scan.build()?.to_arrow().await?.try_collect().await?;
    let mut versions = Vec::with_capacity(batches.len());
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let trouble = |message: String| LakeError::Maintenance {
            table: table.identifier().to_string(),
            message,
        };
        let file =
            batch_file(b).ok_or_else(|| trouble("a scan batch without its `_file`".into()))?;
        let v = Versions::of(b, key, latest_by).map_err(|e| trouble(e.to_string()))?;
        versions.push((v, file));
    }
    Ok(Existing { versions })
}

/// The data file a scan batch came from: iceberg-rust reads one file per batch and fills
/// `_file` as a constant (run-end encoded) column.
pub(crate) fn batch_file(batch: &RecordBatch) -> Option<String> {
    let column = batch.column_by_name(FILE_COLUMN)?;
    if column.is_empty() {
        return None;
    }
    let values = match column.data_type() {
        DataType::RunEndEncoded(_, _) => column
            .as_any()
            .downcast_ref::<arrow_array::RunArray<arrow_array::types::Int32Type>>()?
            .values()
            .clone(),
        _ => column.clone(),
    };
    let strings = values.as_string_opt::<i32>()?;
    (!strings.is_empty() && strings.is_valid(0)).then(|| strings.value(0).to_string())
}

/// `key IN (the batch's values)` for single string/int/long/uuid keys (files whose bounds exclude
/// every value are skipped); `None` (read every file's key column) for other keys.
fn key_filter(batch: &RecordBatch, key: &[String]) -> Option<Predicate> {
    let [column] = key else { return None };
    let array = batch.column_by_name(column)?;
    let datums: Vec<Datum> = match array.data_type() {
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .flatten()
            .map(Datum::string)
            .collect(),
        DataType::Int32 => array
            .as_primitive::<arrow_array::types::Int32Type>()
            .iter()
            .flatten()
            .map(Datum::int)
            .collect(),
        DataType::Int64 => array
            .as_primitive::<arrow_array::types::Int64Type>()
            .iter()
            .flatten()
            .map(Datum::long)
            .collect(),
        DataType::FixedSizeBinary(16) => array
            .as_fixed_size_binary()
            .iter()
            .flatten()
            .filter_map(|bytes| uuid::Uuid::from_slice(bytes).ok())
            .map(Datum::uuid)
            .collect(),
        _ => return None,
    };
    Some(Reference::new(column.clone()).is_in(datums))
}

/// What an upsert commit does: which new rows to write, and per existing file the versions to
/// drop from it (by key; with `Some(version)` the row of that key and version stays).
struct Plan {
    keep_new: Vec<bool>,
    rewrite: HashMap<String, HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

fn plan(new: &Versions, old: &Existing) -> Plan {
    let new_rows: HashMap<&[u8], usize> = (0..new.keys.num_rows())
        .map(|r| (new.keys.row(r).data(), r))
        .collect();
    // Per key of the batch found in the table: its newest existing version and file, and how
    // many rows of it each file holds.
    let mut newest_old: HashMap<&[u8], (Option<&[u8]>, &str)> = HashMap::new();
    let mut holders: HashMap<&[u8], HashMap<&str, usize>> = HashMap::new();
    for (versions, file) in &old.versions {
        for row in 0..versions.keys.num_rows() {
            let key = versions.keys.row(row).data();
            if !new_rows.contains_key(key) {
                continue; // the filter is wider than the keys (composite or unfiltered keys)
            }
            *holders
                .entry(key)
                .or_default()
                .entry(file.as_str())
                .or_default() += 1;
            let version = versions.version(row);
            if newest_old
                .get(key)
                .is_none_or(|(current, _)| version > *current)
            {
                newest_old.insert(key, (version, file.as_str()));
            }
        }
    }
    let mut keep_new = vec![true; new.keys.num_rows()];
    let mut rewrite: HashMap<String, HashMap<Vec<u8>, Option<Vec<u8>>>> = HashMap::new();
    for (key, files) in holders {
        let row = new_rows[key];
        let (old_version, old_file) = newest_old[key];
        // The new row wins ties: it arrived last.
        let new_wins = new.version(row) >= old_version;
        keep_new[row] = new_wins;
        for (file, rows) in files {
            let drop = if new_wins || file != old_file {
                None
            } else if rows > 1 {
                Some(old_version.unwrap_or_default().to_vec())
            } else {
                continue; // the winning row, alone in its file: nothing to rewrite
            };
            rewrite
                .entry(file.to_string())
                .or_default()
                .insert(key.to_vec(), drop);
        }
    }
    Plan { keep_new, rewrite }
}

/// `batch` without the rows `drop` names: every row of a key mapped to `None`, and every row
/// of a key mapped to `Some(version)` except those of that version.
fn without_rows(
    batch: &RecordBatch,
    key: &[String],
    latest_by: Option<&str>,
    drop: &HashMap<Vec<u8>, Option<Vec<u8>>>,
) -> Result<RecordBatch, ArrowError> {
    let versions = Versions::of(batch, key, latest_by)?;
    let keep: BooleanArray = (0..batch.num_rows())
        .map(|row| {
            Some(match drop.get(versions.keys.row(row).data()) {
                None => true,
                Some(None) => false,
                Some(Some(kept)) => versions.version(row).unwrap_or_default() == kept.as_slice(),
            })
        })
        .collect();
    arrow_select::filter::filter_record_batch(batch, &keep)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn keeps_the_latest_version_per_key() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("rev", DataType::Int64, true),
            Field::new("value", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "a", "a", "b"])),
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(5),
                    Some(3),
                    Some(2),
                    None,
                ])),
                Arc::new(StringArray::from(vec!["a1", "b5", "a3", "a2", "b-null"])),
            ],
        )
        .unwrap();
        let deduped = latest_per_key(&batch, &["id"], Some("rev")).unwrap();
        let values = deduped
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(values.iter().collect::<Vec<_>>(), [Some("a3"), Some("b5")]);
        let last_wins = latest_per_key(&batch, &["id"], None).unwrap();
        let values = last_wins
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            [Some("a2"), Some("b-null")]
        );
    }
}
