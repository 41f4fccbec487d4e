//! Table layout: partitioning, sort order and write mode refer to real, suitable columns.

use std::collections::BTreeMap;

use super::Checker;
use crate::diagnostic::Code;
use crate::ir::{
    Column, ColumnOrigin, Contract, PartitionField, SortField, Table, Transform, Type, WriteMode,
};
use crate::syntax::ast::TableDoc;
use crate::syntax::schema::closest;

/// Properties contractc sets itself; a contract cannot override them.
const RESERVED_PROPERTIES: &[&str] = &["format-version", "write.format.default"];
const RESERVED_PROPERTY_PREFIX: &str = "contractc.";

/// Iceberg allows more, but a bucket count past this is a typo, not a design.
const MAX_BUCKETS: u32 = 1 << 20;

impl Checker<'_> {
    pub fn table(&mut self, doc: &TableDoc, contract: &Contract) -> Option<Table> {
        let before = self.error_count();
        self.identifier(&doc.database, "/table/database", "database name");
        self.identifier(&doc.name, "/table/name", "table name");
        let columns = contract.columns();

        let mut partition: Vec<PartitionField> = Vec::new();
        for (i, p) in doc.partition_by.iter().enumerate() {
            let pointer = format!("/table/partition_by/{i}");
            let Some(column) = self.column(
                &columns,
                &p.field,
                &format!("{pointer}/field"),
                Code::UnknownPartitionField,
            ) else {
                continue;
            };
            let transform_text = p.transform.as_deref().unwrap_or("identity");
            let transform_pointer = format!("{pointer}/transform");
            let Some(transform) = self.transform(transform_text, &transform_pointer) else {
                continue;
            };
            if let Some(reason) = unsuitable_partition(transform, &column.ty) {
                let at = if p.transform.is_some() {
                    self.span(&transform_pointer)
                } else {
                    self.span(&format!("{pointer}/field"))
                };
                self.emit(
                    self.diag(Code::UnsuitablePartition, format!("cannot partition by {}({}) of type {}", transform.iceberg_name(), column.name, column.ty.name()))
                        .at(at, reason)
                        .help("identity fits low-cardinality primitives; year/month/day/hour fit dates and timestamps; bucket[N] and truncate[W] fit ids and strings"),
                );
                continue;
            }
            if partition
                .iter()
                .any(|q| q.source == column.name && q.transform == transform)
            {
                self.emit(
                    self.diag(
                        Code::DuplicatePartition,
                        format!(
                            "`{}` is partitioned by {} twice",
                            column.name,
                            transform.iceberg_name()
                        ),
                    )
                    .at(
                        self.span(&format!("{pointer}/field")),
                        "repeated partition field",
                    )
                    .help("remove the repeat"),
                );
                continue;
            }
            partition.push(PartitionField {
                source: column.name.to_string(),
                source_id: column.id,
                transform,
            });
        }

        let mut sort = Vec::new();
        for (i, s) in doc.sort_by.iter().enumerate() {
            let pointer = format!("/table/sort_by/{i}/field");
            let Some(column) = self.column(&columns, &s.field, &pointer, Code::UnknownSortField)
            else {
                continue;
            };
            if !column.ty.is_primitive() {
                self.emit(
                    self.diag(
                        Code::UnknownSortField,
                        format!(
                            "cannot sort by `{}` of type {}",
                            column.name,
                            column.ty.name()
                        ),
                    )
                    .at(self.span(&pointer), "lists, maps and structs have no order")
                    .help("sort by a primitive column"),
                );
                continue;
            }
            let descending = s.direction.as_deref() == Some("desc");
            // Iceberg's defaults: nulls first ascending, last descending.
            let nulls_first = s.nulls.as_deref().map_or(!descending, |n| n == "first");
            sort.push(SortField {
                source: column.name.to_string(),
                source_id: column.id,
                descending,
                nulls_first,
            });
        }

        let write = self.write_mode(doc, &columns);

        let mut properties = BTreeMap::new();
        for (key, value) in &doc.properties {
            if RESERVED_PROPERTIES.contains(&key.as_str())
                || key.starts_with(RESERVED_PROPERTY_PREFIX)
            {
                self.emit(
                    self.diag(
                        Code::ReservedTableProperty,
                        format!("table property `{key}` is set by contractc"),
                    )
                    .at(
                        self.key_span(&format!(
                            "/table/properties/{}",
                            crate::syntax::spans::escape_pointer_segment(key)
                        )),
                        "cannot be overridden",
                    )
                    .help("contractc writes Iceberg format version 2 Parquet tables"),
                );
                continue;
            }
            properties.insert(key.clone(), value.as_str().unwrap_or_default().to_string());
        }

        (self.error_count() == before).then(|| Table {
            database: doc.database.clone(),
            name: doc.name.clone(),
            partition,
            sort,
            write: write.unwrap_or(WriteMode::Append),
            properties,
        })
    }

    fn column<'c>(
        &mut self,
        columns: &'c [Column<'c>],
        name: &str,
        pointer: &str,
        code: Code,
    ) -> Option<&'c Column<'c>> {
        let found = columns.iter().find(|c| c.name == name);
        if found.is_none() {
            let mut d = self
                .diag(code, format!("no column `{name}`"))
                .at(self.span(pointer), "not a column of this table");
            d = match closest(name, columns.iter().map(|c| c.name)) {
                Some(best) => d.help(format!("did you mean `{best}`?")),
                None if name.contains('.') => d.help("only top-level columns can be used here"),
                None => d.help(format!(
                    "columns are: {}",
                    columns
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            self.emit(d);
        }
        found
    }

    fn transform(&mut self, text: &str, pointer: &str) -> Option<Transform> {
        let parameter = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
        };
        let transform = match text {
            "identity" => Transform::Identity,
            "year" => Transform::Year,
            "month" => Transform::Month,
            "day" => Transform::Day,
            "hour" => Transform::Hour,
            _ => {
                let (make, n): (fn(u32) -> Transform, Option<u64>) = if text.starts_with("bucket[")
                {
                    (Transform::Bucket, parameter("bucket["))
                } else {
                    (Transform::Truncate, parameter("truncate["))
                };
                match n {
                    Some(n) if n >= 1 && n <= u64::from(MAX_BUCKETS) => make(n as u32),
                    _ => {
                        self.emit(
                            self.diag(
                                Code::InvalidTransformParameter,
                                format!("invalid transform `{text}`"),
                            )
                            .at(
                                self.span(pointer),
                                format!("the parameter must be 1..={MAX_BUCKETS}"),
                            )
                            .help("e.g. bucket[16] or truncate[4]"),
                        );
                        return None;
                    }
                }
            }
        };
        Some(transform)
    }

    fn write_mode(&mut self, doc: &TableDoc, columns: &[Column<'_>]) -> Option<WriteMode> {
        let write = doc.write.as_ref()?;
        if write.mode != "upsert" {
            for (key, present) in [
                ("key", write.key.is_some()),
                ("latest_by", write.latest_by.is_some()),
            ] {
                if present {
                    self.emit(
                        self.diag(
                            Code::WriteModeShape,
                            format!("`{key}` has no meaning in append mode"),
                        )
                        .at(
                            self.key_span(&format!("/table/write/{key}")),
                            "only for `mode: upsert`",
                        )
                        .help("set `mode: upsert` to keep the latest row per key, or remove this"),
                    );
                }
            }
            return Some(WriteMode::Append);
        }
        let key = write.key.clone().unwrap_or_default();
        if key.is_empty() {
            self.emit(
                self.diag(Code::WriteModeShape, "an upsert needs a key")
                    .at(self.span("/table/write/mode"), "upsert without `key`")
                    .help("add `key: [event_id]` (the columns that identify a row)"),
            );
            return None;
        }
        let mut ok = true;
        for (i, name) in key.iter().enumerate() {
            let pointer = format!("/table/write/key/{i}");
            let Some(column) = self.column(columns, name, &pointer, Code::UnsuitableKey) else {
                ok = false;
                continue;
            };
            let envelope_required = column.origin == ColumnOrigin::Envelope && column.required;
            let problem = if !envelope_required {
                Some("key columns must be required envelope fields: every event needs a key")
            } else if !column.ty.is_primitive() || matches!(column.ty, Type::Float | Type::Double) {
                Some(
                    "key columns must be primitive and not floating point (equality must be exact)",
                )
            } else {
                None
            };
            if let Some(problem) = problem {
                ok = false;
                self.emit(
                    self.diag(
                        Code::UnsuitableKey,
                        format!("`{name}` cannot be an upsert key"),
                    )
                    .at(self.span(&pointer), problem),
                );
            }
            if key[..i].contains(name) {
                ok = false;
                self.emit(
                    self.diag(Code::UnsuitableKey, format!("`{name}` is in the key twice"))
                        .at(self.span(&pointer), "repeated"),
                );
            }
        }
        if let Some(latest_by) = &write.latest_by {
            let pointer = "/table/write/latest_by";
            match self.column(columns, latest_by, pointer, Code::UnsuitableLatestBy) {
                Some(c)
                    if c.ty.is_temporal()
                        || matches!(c.ty, Type::Int | Type::Long | Type::Decimal { .. }) => {}
                Some(c) => {
                    ok = false;
                    self.emit(
                        self.diag(
                            Code::UnsuitableLatestBy,
                            format!(
                                "`{latest_by}` of type {} cannot order versions",
                                c.ty.name()
                            ),
                        )
                        .at(self.span(pointer), "not a timestamp, date or integer")
                        .help("use a timestamp or a monotonically increasing number"),
                    );
                }
                None => ok = false,
            }
        }
        ok.then(|| WriteMode::Upsert {
            key,
            latest_by: write.latest_by.clone(),
        })
    }
}

fn unsuitable_partition(transform: Transform, ty: &Type) -> Option<&'static str> {
    let ok = match transform {
        Transform::Identity => ty.is_primitive(),
        Transform::Year | Transform::Month | Transform::Day => ty.is_temporal(),
        Transform::Hour => matches!(ty, Type::Timestamp { .. } | Type::TimestampTz),
        Transform::Bucket(_) => matches!(
            ty,
            Type::Int
                | Type::Long
                | Type::Decimal { .. }
                | Type::Date
                | Type::Timestamp { .. }
                | Type::TimestampTz
                | Type::String
                | Type::Uuid
        ),
        Transform::Truncate(_) => matches!(
            ty,
            Type::Int | Type::Long | Type::Decimal { .. } | Type::String
        ),
    };
    (!ok).then_some(match transform {
        Transform::Identity => "identity needs a primitive column",
        Transform::Year | Transform::Month | Transform::Day => "needs a date or timestamp column",
        Transform::Hour => "needs a timestamp column",
        Transform::Bucket(_) => {
            "bucket needs an int, long, decimal, date, timestamp, string or uuid"
        }
        Transform::Truncate(_) => "truncate needs an int, long, decimal or string",
    })
}
