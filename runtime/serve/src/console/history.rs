//! The console's history read back from the lake, so a restart does not blank the page:
//! accepted events from the events table's rows (their `ingest_time` enrichment column, when
//! the contract has one; else the snapshot log, which maintenance expires), refused and
//! quarantined ones from the quarantine table's rows (`received_at`, `verdict`, `violations`,
//! `raw_payload`).

use arrow_array::{
    Array, ArrayRef, ListArray, RecordBatch, StructArray, TimestampMicrosecondArray,
};
use contract_support::Verdict;
use contract_support::manifest::quarantine as q;
use futures::TryStreamExt;
use iceberg::expr::Reference;
use iceberg::spec::{Datum, Operation, TableMetadata};
use iceberg::table::Table;

use super::live::{BadEvent, ShownViolation};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("quarantine table {table}: {message}")]
    Shape { table: String, message: String },
}

/// Events each ingest commit in `[since_ms, until_ms)` brought: (commit time in micros,
/// rows). An `append` adds its events; an upsert's copy-on-write `overwrite` rewrites old rows
/// too, so only its net new rows count (new keys: a replaced key is not seen again). Table
/// maintenance (`replace`) brings no events.
pub fn appended_rows(metadata: &TableMetadata, since_ms: i64, until_ms: i64) -> Vec<(i64, u32)> {
    let number = |s: &iceberg::spec::Snapshot, key: &str| -> i64 {
        let value = s.summary().additional_properties.get(key);
        value.and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    metadata
        .snapshots()
        .filter(|s| (since_ms..until_ms).contains(&s.timestamp_ms()))
        .filter_map(|s| {
            let rows = match s.summary().operation {
                Operation::Append => number(s, "added-records"),
                Operation::Overwrite => number(s, "added-records") - number(s, "deleted-records"),
                _ => return None,
            };
            Some((
                s.timestamp_ms() * 1000,
                u32::try_from(rows.max(0)).unwrap_or(u32::MAX),
            ))
        })
        .collect()
}

/// Events the table holds that were received in `[since_micros, until_micros)`, by second:
/// (time in micros, rows), from its ingest-time column `column` (only that column is read,
/// and files whose bounds miss the window are skipped). Survives compaction and snapshot
/// expiry, unlike the snapshot log.
pub async fn ingested_rows(
    table: &Table,
    column: &str,
    since_micros: i64,
    until_micros: i64,
) -> Result<Vec<(i64, u32)>, HistoryError> {
    if table.metadata().current_snapshot().is_none() {
        return Ok(Vec::new());
    }
    let filter = Reference::new(column)
        .greater_than_or_equal_to(Datum::timestamptz_micros(since_micros))
        .and(Reference::new(column).less_than(Datum::timestamptz_micros(until_micros)));
    let scan = table.scan().select([column]).with_filter(filter).build()?;
    let batches: Vec<RecordBatch> = scan.to_arrow().await?.try_collect().await?;
    let mut seconds: std::collections::BTreeMap<i64, u32> = std::collections::BTreeMap::new();
    for batch in &batches {
        let times = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| HistoryError::Shape {
                table: table.identifier().to_string(),
                message: format!("{column} is not a microsecond timestamp"),
            })?;
        for micros in times.iter().flatten() {
            *seconds.entry(micros.div_euclid(1_000_000)).or_default() += 1;
        }
    }
    Ok(seconds
        .into_iter()
        .map(|(second, rows)| (second * 1_000_000, rows))
        .collect())
}

/// When the table was last committed to (milliseconds), if ever.
pub fn last_commit_ms(metadata: &TableMetadata) -> Option<i64> {
    metadata.snapshots().map(|s| s.timestamp_ms()).max()
}

/// Hands each of the quarantine table's rows received in `[since_micros, until_micros)` to
/// `each`, a batch at a time: memory holds one small batch, not the day's rows. Returns how
/// many rows there were.
pub async fn for_each_quarantine_row(
    table: &Table,
    since_micros: i64,
    until_micros: i64,
    mut each: impl FnMut(BadEvent),
) -> Result<u64, HistoryError> {
    let shape = |message: String| HistoryError::Shape {
        table: table.identifier().to_string(),
        message,
    };
    let schema = table.metadata().current_schema();
    let name_of = |id: u32| -> Result<String, HistoryError> {
        schema
            .field_by_id(id as i32)
            .map(|f| f.name.clone())
            .ok_or_else(|| shape(format!("no column with id {id}")))
    };
    let columns = [
        q::RECEIVED_AT,
        q::REQUEST_ID,
        q::VERDICT,
        q::VIOLATIONS,
        q::RAW_PAYLOAD,
    ]
    .map(name_of);
    let [received, request_id, verdict, violations, payload] = columns;
    let (received, request_id, verdict, violations, payload) =
        (received?, request_id?, verdict?, violations?, payload?);
    if table.metadata().current_snapshot().is_none() {
        return Ok(0);
    }
    let filter = Reference::new(received.clone())
        .greater_than_or_equal_to(Datum::timestamptz_micros(since_micros))
        .and(Reference::new(received.clone()).less_than(Datum::timestamptz_micros(until_micros)));
    let scan = table
        .scan()
        .select([&received, &request_id, &verdict, &violations, &payload])
        .with_filter(filter)
        .with_batch_size(Some(HISTORY_BATCH_ROWS))
        .with_data_file_concurrency_limit(1)
        .build()?;
    let mut batches = scan.to_arrow().await?;
    let mut rows = 0;
    while let Some(batch) = batches.try_next().await? {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| shape(format!("the scan returned no column {name}")))
        };
        let read = RowsOf {
            received: column(&received)?,
            request_id: column(&request_id)?,
            verdict: column(&verdict)?,
            violations: column(&violations)?,
            payload: column(&payload)?,
        };
        rows += read.each(&mut each).map_err(shape)?;
    }
    Ok(rows)
}

/// Rows per batch of the history scan (a batch's payloads are held while it is read).
const HISTORY_BATCH_ROWS: usize = 256;

/// One batch's columns.
struct RowsOf {
    received: ArrayRef,
    request_id: ArrayRef,
    verdict: ArrayRef,
    violations: ArrayRef,
    payload: ArrayRef,
}

impl RowsOf {
    /// Hands each row to `each`; returns how many there were.
    fn each(&self, each: &mut impl FnMut(BadEvent)) -> Result<u64, String> {
        let received = self
            .received
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or("received_at is not a microsecond timestamp")?;
        let violations = self
            .violations
            .as_any()
            .downcast_ref::<ListArray>()
            .ok_or("violations is not a list")?;
        for i in 0..received.len() {
            let payload = string_at(&self.payload, i).unwrap_or_default();
            let (payload, truncated) = BadEvent::cut_payload(payload.as_bytes());
            each(BadEvent {
                received_micros: received.value(i),
                request_id: string_at(&self.request_id, i).unwrap_or_default(),
                verdict: match string_at(&self.verdict, i).as_deref() {
                    Some("quarantine") => Verdict::Quarantine,
                    _ => Verdict::Reject,
                },
                violations: violations_at(violations, i)?,
                payload,
                truncated,
                client_version: None,
                source: "lake",
            });
        }
        Ok(received.len() as u64)
    }
}

fn violations_at(list: &ListArray, row: usize) -> Result<Vec<ShownViolation>, String> {
    if list.is_null(row) {
        return Ok(Vec::new());
    }
    let values = list.value(row);
    let structs = values
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or("violations are not structs")?;
    // Members by position, as the one quarantine definition orders them: code, path,
    // policy, message.
    if structs.num_columns() < 4 {
        return Err("a violation has fewer than 4 members".into());
    }
    Ok((0..structs.len())
        .map(|i| ShownViolation {
            code: string_at(structs.column(0), i).unwrap_or_default(),
            path: string_at(structs.column(1), i).unwrap_or_default(),
            policy: string_at(structs.column(2), i).unwrap_or_default(),
            message: string_at(structs.column(3), i).unwrap_or_default(),
        })
        .collect())
}

/// A string cell, or None (a null, or a column of another type: shown as empty).
fn string_at(array: &ArrayRef, i: usize) -> Option<String> {
    crate::quarantine::string_at(array.as_ref(), i)
        .ok()
        .flatten()
}
