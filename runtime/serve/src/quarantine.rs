//! Rows of a contract's quarantine table: refused and quarantined events with their reasons.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, ListArray, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, SchemaRef};
use contract_judge::privacy::{self, Keys};
use contract_support::manifest::Manifest;
use contract_support::manifest::quarantine as q;
use contract_support::{Code, Verdict, Violation};

/// One quarantined event, owned (it outlives the request that brought it).
#[derive(Debug, Clone)]
pub struct Row {
    pub received_micros: i64,
    pub request_id: String,
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
    pub raw_payload: String,
    pub player_id: Option<String>,
}

pub use contract_judge::OVERSIZED_KEPT_BYTES;

impl Row {
    /// Whether the event was refused for its size.
    pub fn is_oversized(&self) -> bool {
        self.violations.iter().any(|v| v.code == Code::TooLarge)
    }
}

/// `row` as the quarantine table may hold it: no raw value of a field the contract hashes,
/// masks or drops, and the player as its `jwt.sub` enrichment is stored.
fn scrub(row: &mut Row, manifest: &Manifest, keys: &Keys) {
    let scrubbed = privacy::scrub_payload(&row.raw_payload, manifest, keys);
    if *scrubbed != *row.raw_payload {
        row.raw_payload = scrubbed.into_owned();
    }
    if let Some(player) = &row.player_id {
        row.player_id =
            privacy::stored(manifest.quarantine_subject_pii(), player, keys).map(Cow::into_owned);
    }
}

/// The first `max` bytes of `text`, cut on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Accumulates rows; builds a batch shaped exactly like the table's Arrow schema.
pub struct QuarantineBatch {
    schema: SchemaRef,
    manifest: &'static Manifest,
    /// The hashing keys, when a contract needs them: personal values are rewritten as a row
    /// is added, so no quarantine file holds them as sent (#23).
    keys: Option<Arc<Keys>>,
    rows: Vec<Row>,
}

impl QuarantineBatch {
    pub fn new(schema: SchemaRef, manifest: &'static Manifest, keys: Option<Arc<Keys>>) -> Self {
        QuarantineBatch {
            schema,
            manifest,
            keys,
            rows: Vec::new(),
        }
    }

    /// Adds a row; an oversized event keeps only its first [`OVERSIZED_KEPT_BYTES`], and the
    /// payload's personal fields and the player are stored as the contract declares.
    pub fn push(&mut self, mut row: Row) {
        if row.is_oversized() && row.raw_payload.len() > OVERSIZED_KEPT_BYTES {
            let kept = prefix(&row.raw_payload, OVERSIZED_KEPT_BYTES).len();
            row.raw_payload.truncate(kept);
            row.raw_payload.shrink_to_fit();
        }
        if let Some(keys) = &self.keys {
            scrub(&mut row, self.manifest, keys);
        }
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Drops every row (a rebuild from the log refills the batch).
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// Builds the batch and starts empty again. Columns are matched to the table's schema by
    /// their Iceberg field ids (`contract_manifest::quarantine`), the one definition of the
    /// quarantine table, so a reordered or renamed column cannot receive the wrong values.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        let mut offsets = vec![0i32];
        for row in &rows {
            offsets.push(offsets.last().copied().unwrap_or(0) + row.violations.len() as i32);
        }
        let all: Vec<&Violation> = rows.iter().flat_map(|r| r.violations.iter()).collect();
        let strings = |f: &dyn Fn(&Row) -> Option<&str>| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let member = |f: &dyn Fn(&Violation) -> String| -> ArrayRef {
            Arc::new(StringArray::from(
                all.iter().map(|v| f(v)).collect::<Vec<_>>(),
            ))
        };
        let list_of = |field: &Field, values: ArrayRef| -> Result<ArrayRef, ArrowError> {
            let DataType::List(element) = field.data_type() else {
                return Err(schema_error(field, "a list"));
            };
            Ok(Arc::new(ListArray::try_new(
                element.clone(),
                arrow_buffer_offsets(&offsets),
                values,
                None,
            )?))
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let column: ArrayRef = match field_id(field) {
                Some(q::RECEIVED_AT) => Arc::new(
                    TimestampMicrosecondArray::from(
                        rows.iter().map(|r| r.received_micros).collect::<Vec<_>>(),
                    )
                    .with_timezone("+00:00"),
                ),
                Some(q::REQUEST_ID) => strings(&|r| Some(r.request_id.as_str())),
                Some(q::CONTRACT_VERSION) => {
                    Arc::new(StringArray::from(vec![
                        self.manifest.version.as_str();
                        rows.len()
                    ]))
                }
                Some(q::VERDICT) => strings(&|r| Some(r.verdict.as_str())),
                Some(q::VIOLATION_CODES) => list_of(
                    field,
                    Arc::new(StringArray::from(
                        all.iter().map(|v| v.code.as_str()).collect::<Vec<_>>(),
                    )),
                )?,
                Some(q::VIOLATIONS) => {
                    let members = match field.data_type() {
                        DataType::List(element) => match element.data_type() {
                            DataType::Struct(members) => members.clone(),
                            _ => return Err(schema_error(field, "a list of structs")),
                        },
                        _ => return Err(schema_error(field, "a list of structs")),
                    };
                    let structs = StructArray::try_new(
                        members,
                        vec![
                            member(&|v| v.code.as_str().to_string()),
                            member(&|v| v.path.clone()),
                            member(&|v| v.policy.as_str().to_string()),
                            member(&|v| v.message.clone()),
                        ],
                        None,
                    )?;
                    list_of(field, Arc::new(structs))?
                }
                Some(q::RAW_PAYLOAD) => strings(&|r| Some(r.raw_payload.as_str())),
                Some(q::PLAYER_ID) => strings(&|r| r.player_id.as_deref()),
                _ => return Err(schema_error(field, "a quarantine column")),
            };
            columns.push(column);
        }
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

/// The Iceberg field id Arrow schemas read from Iceberg carry in their metadata.
fn field_id(field: &Field) -> Option<u32> {
    field.metadata().get("PARQUET:field_id")?.parse().ok()
}

fn schema_error(field: &Field, expected: &str) -> ArrowError {
    ArrowError::SchemaError(format!(
        "quarantine column {} ({}) is not {expected}",
        field.name(),
        field.data_type()
    ))
}

fn arrow_buffer_offsets(offsets: &[i32]) -> arrow_buffer::OffsetBuffer<i32> {
    arrow_buffer::OffsetBuffer::new(arrow_buffer::ScalarBuffer::from(offsets.to_vec()))
}

/// A string cell of any of Arrow's string layouts (readers differ in which they return).
pub(crate) fn string_at(
    array: &dyn arrow_array::Array,
    i: usize,
) -> Result<Option<String>, String> {
    use arrow_array::{LargeStringArray, StringViewArray};
    if array.is_null(i) {
        return Ok(None);
    }
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        Ok(Some(a.value(i).to_string()))
    } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        Ok(Some(a.value(i).to_string()))
    } else if let Some(a) = any.downcast_ref::<StringViewArray>() {
        Ok(Some(a.value(i).to_string()))
    } else {
        Err(format!("{} is not a string column", array.data_type()))
    }
}
