//! De-duplication of a batch for upsert tables: one row per key, the latest version.
//!
//! Within one commit the runtime keeps, for each key, the row with the greatest `latest_by`
//! value (the last received on a tie, or when the contract names no `latest_by`). Across
//! commits rows are appended: iceberg-rust 0.10 has no row-level deletes or MERGE, so the table
//! may hold older versions from earlier commits; readers take the latest per key (or a Spark
//! `MERGE`/compaction job rewrites them, as the generated Glue job does on the AWS path).

use std::collections::HashMap;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::ArrowError;

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
