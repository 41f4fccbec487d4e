//! Rows of a contract's quarantine table: refused and quarantined events with their reasons.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, ListArray, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, SchemaRef};
use contract_support::{Verdict, Violation};

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

/// Accumulates rows; builds a batch shaped exactly like the table's Arrow schema.
pub struct QuarantineBatch {
    schema: SchemaRef,
    contract_version: String,
    rows: Vec<Row>,
}

impl QuarantineBatch {
    pub fn new(schema: SchemaRef, contract_version: &str) -> Self {
        QuarantineBatch {
            schema,
            contract_version: contract_version.to_string(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Builds the batch and starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        let strings = |f: &dyn Fn(&Row) -> Option<&str>| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let list_field = |index: usize| match self.schema.field(index).data_type() {
            DataType::List(field) => Ok(field.clone()),
            other => Err(arrow_schema::ArrowError::SchemaError(format!(
                "column {index} is {other}, not a list"
            ))),
        };
        let mut offsets = vec![0i32];
        for row in &rows {
            offsets.push(offsets.last().copied().unwrap_or(0) + row.violations.len() as i32);
        }
        let all: Vec<&Violation> = rows.iter().flat_map(|r| r.violations.iter()).collect();
        let codes_field = list_field(4)?;
        let codes = ListArray::try_new(
            codes_field,
            arrow_buffer_offsets(&offsets),
            Arc::new(StringArray::from(
                all.iter().map(|v| v.code.as_str()).collect::<Vec<_>>(),
            )),
            None,
        )?;
        let violations_field = list_field(5)?;
        let DataType::Struct(members) = violations_field.data_type() else {
            return Err(arrow_schema::ArrowError::SchemaError(
                "violations are not structs".into(),
            ));
        };
        let member = |f: &dyn Fn(&Violation) -> String| -> ArrayRef {
            Arc::new(StringArray::from(
                all.iter().map(|v| f(v)).collect::<Vec<_>>(),
            ))
        };
        let structs = StructArray::try_new(
            members.clone(),
            vec![
                member(&|v| v.code.as_str().to_string()),
                member(&|v| v.path.clone()),
                member(&|v| v.policy.as_str().to_string()),
                member(&|v| v.message.clone()),
            ],
            None,
        )?;
        let violations = ListArray::try_new(
            violations_field.clone(),
            arrow_buffer_offsets(&offsets),
            Arc::new(structs),
            None,
        )?;
        let received = TimestampMicrosecondArray::from(
            rows.iter().map(|r| r.received_micros).collect::<Vec<_>>(),
        )
        .with_timezone("+00:00");
        let version: ArrayRef = Arc::new(StringArray::from(vec![
            self.contract_version.as_str();
            rows.len()
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(received),
            strings(&|r| Some(r.request_id.as_str())),
            version,
            strings(&|r| {
                Some(if r.verdict == Verdict::Reject {
                    "reject"
                } else {
                    "quarantine"
                })
            }),
            Arc::new(codes),
            Arc::new(violations),
            strings(&|r| Some(r.raw_payload.as_str())),
            strings(&|r| r.player_id.as_deref()),
        ];
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

fn arrow_buffer_offsets(offsets: &[i32]) -> arrow_buffer::OffsetBuffer<i32> {
    arrow_buffer::OffsetBuffer::new(arrow_buffer::ScalarBuffer::from(offsets.to_vec()))
}
