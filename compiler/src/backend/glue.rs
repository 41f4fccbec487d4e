//! The Glue 5.0 (Spark 3.5) streaming ETL script, rendered from a `tera` template.
//!
//! The script has two halves. Structure (JSON syntax, duplicate keys, JSON types, required and
//! unknown fields, integer and decimal ranges) is checked per record by a small Python checker
//! driven by a generated shape: Spark's JSON reader cannot tell a string from a number or see a
//! duplicate key. Every rule (patterns, lengths, enums, bounds, formats, time windows,
//! per-variant rules) is a Spark column expression with the Rust validator's semantics:
//! full-match regexes (`\z`, not `$`), character lengths, the same timestamp formats (parsed
//! strictly, in UTC) and the same skew windows around the record's ingest time.

use serde::Serialize;
use serde_json::{Value, json};

use super::GeneratedFile;

use crate::ir::{
    Bound, ColumnOrigin, Contract, ContractSet, Element, EnrichmentSource, Field, FormatItem,
    Literal, Pii, Policy, Rule, RuleKind, Type, UnknownFields, Valid, WriteMode,
};

const TEMPLATE: &str = include_str!("../../templates/glue_job.py.tera");
const ERASURE_TEMPLATE: &str = include_str!("../../templates/erasure_job.py.tera");
const MAINTENANCE_TEMPLATE: &str = include_str!("../../templates/maintenance_job.py.tera");
/// The key document's reading and the stored forms of personal values, in both jobs.
const PII_KEYS_TEMPLATE: &str = include_str!("../../templates/pii_keys.py.tera");

/// Per contract: the streaming job, the maintenance job (#24), and the erasure job when the
/// contract names its data subject (#23).
pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for c in &set.contracts {
        files.push(GeneratedFile::new(
            format!("{}/glue/streaming_job.py", c.name),
            script(c),
        ));
        files.push(GeneratedFile::new(
            format!("{}/glue/maintenance_job.py", c.name),
            maintenance_script(c),
        ));
        if let Some(erasure) = erasure_script(c) {
            files.push(GeneratedFile::new(
                format!("{}/glue/erasure_job.py", c.name),
                erasure,
            ));
        }
    }
    files
}

/// Renders `template` (which may include `pii_keys.py`); a failure is a bug, shown in the
/// output.
fn render(name: &str, template: &str, context: &tera::Context) -> String {
    let mut tera = tera::Tera::default();
    match tera
        .add_raw_templates([("pii_keys.py", PII_KEYS_TEMPLATE), (name, template)])
        .and_then(|()| tera.render(name, context))
    {
        Ok(text) => text,
        Err(error) => format!("# contractc: the {name} template failed to render: {error:?}\n"),
    }
}

/// The erasure job: which column (or payload member) of each table holds the subject, and how.
fn erasure_script(c: &Contract) -> Option<String> {
    let manifest = c.manifest();
    let subject = manifest.subject.as_deref()?;
    let stored = |pii: Option<Pii>| match pii {
        Some(Pii::Hash) => "hash",
        _ => "keep",
    };
    let subject_pii = stored(manifest.subject_pii());
    let from_token = c
        .enrichments
        .iter()
        .any(|e| e.name == subject && e.source == EnrichmentSource::JwtSub);
    let in_payload = c.fields.iter().any(|f| f.name == subject);
    let quarantine = manifest.quarantine_table_name();
    let mut targets = vec![json!([c.table.name, subject, Value::Null, subject_pii])];
    if from_token {
        let player = stored(Some(manifest.quarantine_subject_pii()));
        targets.push(json!([quarantine, "player_id", Value::Null, player]));
    } else if in_payload {
        targets.push(json!([quarantine, Value::Null, subject, subject_pii]));
    }
    let mut context = tera::Context::new();
    context.insert("header", super::header("#", &c.source.path).trim_end());
    context.insert("contract", &c.name);
    context.insert("fingerprint", &c.source.fingerprint);
    context.insert("database", &c.table.database);
    context.insert("targets", &Value::Array(targets).to_string());
    context.insert("mask_keeps", &contract_manifest::privacy::MASK_KEEPS);
    context.insert(
        "mask_keeps_from",
        &contract_manifest::privacy::MASK_KEEPS_FROM,
    );
    Some(render("erasure_job.py", ERASURE_TEMPLATE, &context))
}

/// The maintenance settings as the template reads them: the table property, `serve`'s default
/// and floor (`contract_manifest::maintenance`), so both engines keep their tables alike.
fn maintenance_settings() -> Value {
    use contract_manifest::maintenance::{
        MAX_SNAPSHOT_AGE_MS, MIN_INPUT_FILES, MIN_SNAPSHOTS_TO_KEEP, Setting, TARGET_FILE_SIZE,
    };
    let setting =
        |s: Setting| json!({ "property": s.property, "default": s.default, "floor": s.floor });
    json!({
        "target_file_size": setting(TARGET_FILE_SIZE),
        "min_input_files": setting(MIN_INPUT_FILES),
        "max_snapshot_age_ms": setting(MAX_SNAPSHOT_AGE_MS),
        "min_snapshots_to_keep": setting(MIN_SNAPSHOTS_TO_KEEP),
    })
}

/// The maintenance job: both tables, each with the sort order compaction writes (the
/// contract's `sort_by`; none for the quarantine table, which is binpacked).
fn maintenance_script(c: &Contract) -> String {
    let manifest = c.manifest();
    let tables: Vec<Value> = [manifest.events_table(), manifest.quarantine_table()]
        .iter()
        .map(|table| {
            let order: Vec<String> = table
                .sort
                .iter()
                .map(|s| {
                    let direction = if s.descending { "DESC" } else { "ASC" };
                    let nulls = if s.nulls_first { "FIRST" } else { "LAST" };
                    format!("`{}` {direction} NULLS {nulls}", s.source)
                })
                .collect();
            let order = (!order.is_empty()).then(|| order.join(", "));
            json!([table.name, order])
        })
        .collect();
    let mut context = tera::Context::new();
    context.insert("header", super::header("#", &c.source.path).trim_end());
    context.insert("contract", &c.name);
    context.insert("fingerprint", &c.source.fingerprint);
    context.insert("database", &c.table.database);
    context.insert("events_table", &c.table.name);
    context.insert("quarantine_table", &manifest.quarantine_table_name());
    context.insert("tables", &Value::Array(tables).to_string());
    context.insert("settings", &maintenance_settings());
    render("maintenance_job.py", MAINTENANCE_TEMPLATE, &context)
}

#[derive(Serialize)]
struct RuleLine {
    /// A Python expression over the parsed event `e`, true when the rule is broken.
    condition: String,
    code: &'static str,
    path: String,
    policy: &'static str,
    /// A Python expression for the violation's message column: the Rust validator's text.
    message: String,
    /// The top-level field the rule reads (rules on structurally broken fields are skipped).
    field: String,
}

#[derive(Serialize)]
struct Column {
    name: String,
    /// A Python expression producing the column's typed value from the parsed event.
    expr: String,
}

fn script(c: &Contract) -> String {
    let (rules, columns) = rules_and_columns(c);
    let enrichments: Vec<Value> = c
        .enrichments
        .iter()
        .map(|e| {
            // The stream record's envelope carries the request's time and id and the verified
            // token's claims (see the API's mapping template).
            let expr = match &e.source {
                EnrichmentSource::IngestTime => "F.col(\"ingest_time\")".to_string(),
                EnrichmentSource::ContractVersion => "F.lit(CONTRACT_VERSION)".to_string(),
                EnrichmentSource::RequestId => "F.col(\"request_id\")".to_string(),
                EnrichmentSource::JwtSub => "F.col(\"claims\")[\"sub\"]".to_string(),
                EnrichmentSource::ClientContractVersion => {
                    "F.col(\"client_contract_version\")".to_string()
                }
                EnrichmentSource::JwtClaim(claim) => {
                    format!("F.col(\"claims\")[{}]", py_str(claim))
                }
            };
            json!({ "name": e.name, "expr": expr })
        })
        .collect();
    let (upsert_key, latest_by) = match &c.table.write {
        WriteMode::Append => (Vec::new(), None),
        WriteMode::Upsert { key, latest_by } => (key.clone(), latest_by.clone()),
    };
    let unknown_policy = unknown_policy(c);

    let mut context = tera::Context::new();
    context.insert("header", super::header("#", &c.source.path).trim_end());
    context.insert("contract", &c.name);
    context.insert("version", &c.version.to_string());
    context.insert("fingerprint", &c.source.fingerprint);
    context.insert("database", &c.table.database);
    context.insert("events_table", &c.table.name);
    context.insert("quarantine_table", &c.manifest().quarantine_table_name());
    context.insert(
        "shape",
        &serde_json::to_string(&shape(c)).unwrap_or_default(),
    );
    context.insert("unknown_policy", unknown_policy);
    // The job reads Kinesis records: its limit is the AWS path's (within a record).
    context.insert("max_body_bytes", &c.manifest().aws_event_limit());
    context.insert(
        "oversized_kept_bytes",
        &contract_manifest::OVERSIZED_KEPT_BYTES,
    );
    let session_settings: serde_json::Map<String, Value> =
        contract_manifest::SPARK_SESSION_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
    context.insert("session_settings", &Value::Object(session_settings));
    context.insert("event_schema", &struct_type(&parse_columns(c)));
    context.insert("rules", &rules);
    context.insert("columns", &columns);
    context.insert("enrichments", &enrichments);
    context.insert("upsert_key", &upsert_key);
    let (versions, releases) = versions(c);
    context.insert("versions", &versions);
    context.insert("releases", &releases);
    let dedup = c.ingest.dedup.as_ref();
    context.insert(
        "dedup_field",
        &dedup.map_or("None".to_string(), |d| py_str(&d.field)),
    );
    context.insert(
        "dedup_window_seconds",
        &dedup.map_or(0, |d| d.window_seconds),
    );
    // When the events table records each row's ingest time, the job bounds its look-back by
    // the window, as serve's index does.
    let ingest_column = c
        .enrichments
        .iter()
        .find(|e| e.source == contract_manifest::EnrichmentSource::IngestTime);
    context.insert(
        "ingest_column",
        &ingest_column.map_or("None".to_string(), |e| py_str(&e.name)),
    );
    privacy(c, &mut context);
    metric_names(&mut context);
    context.insert(
        "latest_by",
        &latest_by.as_deref().map_or("None".to_string(), py_str),
    );
    render("glue_job.py", TEMPLATE, &context)
}

/// Every rule as a Spark condition, and the typed columns of the events table (payload only).
fn rules_and_columns(c: &Contract) -> (Vec<RuleLine>, Vec<Column>) {
    let mut rules = Vec::new();
    let mut columns = Vec::new();
    for f in &c.fields {
        field_rules(f, &f.rules, None, &mut rules);
        columns.push(Column {
            name: f.name.clone(),
            expr: typed(&f.ty, &format!("e[{}]", py_str(&f.name))),
        });
    }
    if let Some(variants) = &c.variants {
        let disc = format!("e[{}]", py_str(&variants.discriminator));
        let mut seen = std::collections::BTreeSet::new();
        for case in &variants.cases {
            let condition = format!("({disc} == {})", py_str(&case.value));
            for f in &case.fields {
                field_rules(f, &f.rules, Some(&condition), &mut rules);
                if seen.insert(f.name.clone()) {
                    columns.push(Column {
                        name: f.name.clone(),
                        expr: typed(&f.ty, &format!("e[{}]", py_str(&f.name))),
                    });
                }
            }
            for (name, extra) in &case.rules {
                if let Some(f) = c.fields.iter().find(|f| &f.name == name) {
                    field_rules(f, extra, Some(&condition), &mut rules);
                }
            }
        }
    }
    (rules, columns)
}

/// Envelope and variant payload fields (what the JSON holds), for the Spark parse schema.
fn parse_columns(c: &Contract) -> Vec<(String, Type)> {
    let mut out: Vec<(String, Type)> = c
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.ty.clone()))
        .collect();
    if let Some(v) = &c.variants {
        for case in &v.cases {
            for f in &case.fields {
                if !out.iter().any(|(n, _)| n == &f.name) {
                    out.push((f.name.clone(), f.ty.clone()));
                }
            }
        }
    }
    out
}

/// The release history as the job reads it (`VERSIONS`, a Python literal), and each supported
/// release's shape, parse schema, rules and upcast steps (`RELEASES`).
fn versions(c: &Contract) -> (String, Vec<Value>) {
    let Some(versions) = c.manifest().versions else {
        return ("None".into(), Vec::new());
    };
    let current = c.version.to_string();
    let literal = json!({
        "default_client": versions.default_client,
        "supported": versions.supported(&current),
        "retired": versions.releases.iter().filter(|r| r.retired).map(|r| &r.version).collect::<Vec<_>>(),
    });
    let releases = c
        .supported_releases()
        .map(|r| {
            let old = &r.contract;
            json!({
                "version": old.version.to_string(),
                "ident": r.ident(),
                "shape": serde_json::to_string(&shape(old)).unwrap_or_default(),
                "unknown_policy": unknown_policy(old),
                "event_schema": struct_type(&parse_columns(old)),
                "rules": rules_and_columns(old).0,
                "upcast": serde_json::to_string(&r.upcast.iter().map(step_json).collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    (
        format!("json.loads({})", py_str(&literal.to_string())),
        releases,
    )
}

/// One upcast step as the job's `_upcast` reads it; values stay JSON text.
fn step_json(step: &contract_manifest::Step) -> Value {
    use contract_manifest::Step;
    let map = |pairs: &[(String, String)]| -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
    };
    match step {
        Step::Rename { from, to } => json!({"op": "rename", "from": from, "to": to}),
        Step::MapValues { field, map: pairs } => {
            json!({"op": "map_values", "field": field, "map": map(pairs)})
        }
        Step::Derive {
            field,
            from,
            map: pairs,
            otherwise,
        } => {
            json!({"op": "derive", "field": field, "from": from, "map": map(pairs), "otherwise": otherwise})
        }
        Step::Default { field, value } => json!({"op": "default", "field": field, "value": value}),
        Step::Scale { field, by } => json!({"op": "scale", "field": field, "by": by}),
        Step::Drop { field } => json!({"op": "drop", "field": field}),
    }
}

fn unknown_policy(c: &Contract) -> &'static str {
    match c.ingest.unknown_fields {
        UnknownFields::Drop => "drop",
        UnknownFields::Reject => "reject",
        UnknownFields::Quarantine => "quarantine",
        UnknownFields::Warn => "warn",
    }
}

/// A Python string literal.
/// What the job rewrites before storing (#23): events columns, payload members for the
/// quarantine table, and the quarantine table's player.
fn privacy(c: &Contract, context: &mut tera::Context) {
    let manifest = c.manifest();
    let spelled = |pairs: Vec<(&str, Pii)>| -> serde_json::Map<String, Value> {
        pairs
            .into_iter()
            .map(|(name, pii)| (name.to_string(), json!(pii.spelling())))
            .collect()
    };
    context.insert("pii_columns", &spelled(manifest.rewritten_columns()));
    let members = c
        .columns()
        .into_iter()
        .filter(|column| column.origin != ColumnOrigin::Enrichment)
        .map(|column| (column.name, manifest.payload_pii(column.name)))
        .filter(|(_, pii)| pii.rewrites())
        .collect();
    context.insert("pii_members", &spelled(members));
    let subject = manifest.quarantine_subject_pii();
    context.insert(
        "pii_subject",
        &if subject.is_personal() {
            py_str(subject.spelling())
        } else {
            "None".to_string()
        },
    );
    context.insert("pii_withheld", contract_manifest::privacy::WITHHELD);
    context.insert("mask_keeps", &contract_manifest::privacy::MASK_KEEPS);
    context.insert(
        "mask_keeps_from",
        &contract_manifest::privacy::MASK_KEEPS_FROM,
    );
}

fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The Spark type JSON is parsed into: strings for everything whose text matters (dates,
/// timestamps, uuids, decimals), longs for all integers (ranges are checked separately).
fn parse_type(ty: &Type) -> String {
    match ty {
        Type::String
        | Type::Date
        | Type::Timestamp { .. }
        | Type::TimestampTz
        | Type::Uuid
        | Type::Decimal { .. } => "T.StringType()".into(),
        Type::Boolean => "T.BooleanType()".into(),
        Type::Int | Type::Long => "T.LongType()".into(),
        Type::Float | Type::Double => "T.DoubleType()".into(),
        Type::List(e) => format!("T.ArrayType({}, True)", parse_type(&e.ty)),
        Type::Map { value, .. } => {
            format!("T.MapType(T.StringType(), {}, True)", parse_type(&value.ty))
        }
        Type::Struct(fields) => struct_type(
            &fields
                .iter()
                .map(|f| (f.name.clone(), f.ty.clone()))
                .collect::<Vec<_>>(),
        ),
    }
}

fn struct_type(fields: &[(String, Type)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(name, ty)| format!("T.StructField({}, {}, True)", py_str(name), parse_type(ty)))
        .collect();
    format!("T.StructType([{}])", members.join(", "))
}

/// Java DateTimeFormatter pattern for a timestamp format.
pub fn java_format(items: &[FormatItem]) -> String {
    items
        .iter()
        .map(|i| match i {
            FormatItem::Literal(l) => {
                if l.chars()
                    .all(|c| !c.is_ascii_alphabetic() && !"'[]{}#".contains(c))
                {
                    l.clone()
                } else {
                    format!("'{}'", l.replace('\'', "''"))
                }
            }
            FormatItem::Year => "yyyy".into(),
            FormatItem::Month => "MM".into(),
            FormatItem::Day => "dd".into(),
            FormatItem::Hour => "HH".into(),
            FormatItem::Minute => "mm".into(),
            FormatItem::Second => "ss".into(),
            FormatItem::Fraction => "[.SSSSSSSSS]".into(),
        })
        .collect()
}

const RFC3339_T: &str = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSSSSS]XXX";
const RFC3339_SPACE: &str = "yyyy-MM-dd HH:mm:ss[.SSSSSSSSS]XXX";

/// A Python expression for the typed value of `col` (an expression of the parse type).
fn typed(ty: &Type, col: &str) -> String {
    match ty {
        Type::Timestamp { format } => format!(
            "F.to_timestamp({col}, {})",
            py_str(&java_format(&format.items))
        ),
        Type::TimestampTz => format!(
            "F.coalesce(F.to_timestamp(F.upper({col}), {}), F.to_timestamp(F.upper({col}), {}))",
            py_str(RFC3339_T),
            py_str(RFC3339_SPACE)
        ),
        Type::Date => format!("F.to_date({col}, \"yyyy-MM-dd\")"),
        Type::Decimal { precision, scale } => {
            format!("{col}.cast(T.DecimalType({precision}, {scale}))")
        }
        Type::Int => format!("{col}.cast(\"int\")"),
        Type::Float => format!("{col}.cast(\"float\")"),
        // Nested values get their table types too (the parse type keeps timestamps, dates,
        // decimals as text), member by member and element by element.
        Type::Struct(fields) => {
            let members: Vec<String> = fields
                .iter()
                .map(|f| {
                    format!(
                        "({}).alias({})",
                        typed(&f.ty, &format!("{col}[{}]", py_str(&f.name))),
                        py_str(&f.name)
                    )
                })
                .collect();
            format!(
                "F.when({col}.isNull(), F.lit(None)).otherwise(F.struct({}))",
                members.join(", ")
            )
        }
        Type::List(e) if needs_typing(&e.ty) => {
            format!("F.transform({col}, lambda x: {})", typed(&e.ty, "x"))
        }
        Type::Map { value, .. } if needs_typing(&value.ty) => {
            format!(
                "F.transform_values({col}, lambda _, v: {})",
                typed(&value.ty, "v")
            )
        }
        _ => col.to_string(),
    }
}

/// Whether values of `ty` are parsed as another type than the table's.
fn needs_typing(ty: &Type) -> bool {
    match ty {
        Type::String | Type::Boolean | Type::Long | Type::Double | Type::Uuid => false,
        Type::List(e) => needs_typing(&e.ty),
        Type::Map { value, .. } => needs_typing(&value.ty),
        _ => true,
    }
}

/// Microseconds since the epoch of a typed temporal value.
fn micros(ty: &Type, typed_col: &str) -> String {
    match ty {
        Type::Date => format!("(F.unix_date({typed_col}).cast(\"long\") * 86400000000)"),
        _ => format!("F.unix_micros({typed_col})"),
    }
}

fn policy(p: Policy) -> &'static str {
    p.as_str()
}

fn bound_literal(b: Bound, ty: &Type) -> String {
    match (ty, b) {
        (Type::Decimal { precision, scale }, b) => {
            let text = match b {
                Bound::Int(i) => i.to_string(),
                Bound::Float(f) => f.to_string(),
            };
            format!(
                "F.lit(decimal.Decimal({})).cast(T.DecimalType({}, {}))",
                py_str(&text),
                38.max(*precision),
                scale
            )
        }
        (_, Bound::Int(i)) => format!("F.lit({i})"),
        (_, Bound::Float(f)) => format!("F.lit({f:?})"),
    }
}

/// The rules of one field (and, recursively, of its nested members) as Spark conditions.
fn field_rules(f: &Field, rules: &[Rule], condition: Option<&str>, out: &mut Vec<RuleLine>) {
    let col = format!("e[{}]", py_str(&f.name));
    let path = format!("$.{}", f.name);
    value_rules(&f.ty, rules, &col, &path, &f.name, condition, out);
    nested_rules(&f.ty, &col, &path, &f.name, condition, out);
}

fn guarded(condition: Option<&str>, expr: String) -> String {
    match condition {
        Some(c) => format!("{c} & ({expr})"),
        None => expr,
    }
}

/// Conditions for `rules` on the value `col` (a Spark column expression of the parse type).
fn value_rules(
    ty: &Type,
    rules: &[Rule],
    col: &str,
    path: &str,
    field: &str,
    condition: Option<&str>,
    out: &mut Vec<RuleLine>,
) {
    let present = format!("{col}.isNotNull()");
    // Format checks: the text is there but does not parse.
    let typed_col = typed(ty, col);
    let format_check = match ty {
        Type::Timestamp { .. } | Type::TimestampTz | Type::Date => {
            Some(format!("{present} & {typed_col}.isNull()"))
        }
        Type::Uuid => Some(format!(
            "{present} & ~{col}.rlike(\"^[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}\\\\z\")"
        )),
        _ => None,
    };
    if let (Some(check), Some(message)) = (format_check, super::messages::format_message(ty)) {
        out.push(RuleLine {
            condition: guarded(condition, check),
            code: "invalid_format",
            path: path.into(),
            policy: "reject",
            message: format!("F.lit({})", py_str(&message)),
            field: field.into(),
        });
    }
    for rule in rules {
        let broken = match &rule.kind {
            RuleKind::Min(b) => format!("{typed_col} < {}", bound_literal(*b, ty)),
            RuleKind::Max(b) => format!("{typed_col} > {}", bound_literal(*b, ty)),
            RuleKind::MinLength(n) => format!("{} < {n}", length(ty, col)),
            RuleKind::MaxLength(n) => format!("{} > {n}", length(ty, col)),
            RuleKind::Pattern(p) => {
                // Java regex: `\z` is the true end of input (`$` would allow a final newline);
                // (?U) gives \d, \w and \s the Unicode meaning Rust's regex has.
                let anchored = format!("(?U)^(?:{p})\\z");
                format!("~{col}.rlike({})", py_str(&anchored))
            }
            RuleKind::OneOf(values) => {
                let values: Vec<String> = values
                    .iter()
                    .map(|v| match v {
                        Literal::String(s) => py_str(s),
                        Literal::Int(i) => i.to_string(),
                    })
                    .collect();
                format!("~{col}.isin([{}])", values.join(", "))
            }
            RuleKind::NotBefore(t) => {
                let delta = (t.earliest_offset()) * 1_000_000;
                format!(
                    "{} < (F.unix_micros(F.col(\"ingest_time\")) + F.lit({delta}))",
                    micros(ty, &typed_col)
                )
            }
            RuleKind::NotAfter(t) => {
                let delta = (t.latest_offset()) * 1_000_000;
                format!(
                    "{} > (F.unix_micros(F.col(\"ingest_time\")) + F.lit({delta}))",
                    micros(ty, &typed_col)
                )
            }
        };
        out.push(RuleLine {
            condition: guarded(condition, format!("{present} & ({broken})")),
            code: rule.kind.key(),
            path: path.into(),
            policy: policy(rule.policy),
            message: format!(
                "F.lit({})",
                py_str(&super::messages::rule_message(rule, ty))
            ),
            field: field.into(),
        });
    }
}

fn length(ty: &Type, col: &str) -> String {
    match ty {
        Type::String => format!("F.length({col})"),
        _ => format!("F.size({col})"),
    }
}

/// Rules inside lists, maps and structs, as `exists` over the elements.
fn nested_rules(
    ty: &Type,
    col: &str,
    path: &str,
    field: &str,
    condition: Option<&str>,
    out: &mut Vec<RuleLine>,
) {
    match ty {
        Type::Struct(fields) => {
            for f in fields {
                let member = format!("{col}[{}]", py_str(&f.name));
                let member_path = format!("{path}.{}", f.name);
                value_rules(
                    &f.ty,
                    &f.rules,
                    &member,
                    &member_path,
                    field,
                    condition,
                    out,
                );
                nested_rules(&f.ty, &member, &member_path, field, condition, out);
            }
        }
        Type::List(e) => element_rules(e, col, &format!("{path}[*]"), field, condition, out),
        Type::Map { key, value } => {
            element_rules(
                key,
                &format!("F.map_keys({col})"),
                &format!("{path}.*~"),
                field,
                condition,
                out,
            );
            element_rules(
                value,
                &format!("F.map_values({col})"),
                &format!("{path}.*"),
                field,
                condition,
                out,
            );
        }
        _ => {}
    }
}

fn element_rules(
    e: &Element,
    array: &str,
    path: &str,
    field: &str,
    condition: Option<&str>,
    out: &mut Vec<RuleLine>,
) {
    // Rules on each element: true if any element breaks them.
    let mut inner = Vec::new();
    value_rules(&e.ty, &e.rules, "x", path, field, None, &mut inner);
    nested_rules(&e.ty, "x", path, field, None, &mut inner);
    for line in inner {
        let exists = format!("F.exists({array}, lambda x: {})", line.condition);
        out.push(RuleLine {
            condition: guarded(condition, exists),
            ..line
        });
    }
}

/// The structure the Python checker verifies: kinds, requiredness, ranges, variants.
fn shape(c: &Contract) -> Value {
    let mut root = struct_shape(&c.fields);
    if let Some(v) = &c.variants {
        let cases: serde_json::Map<String, Value> = v
            .cases
            .iter()
            .map(|case| {
                (
                    case.value.clone(),
                    json!({
                        "fields": case.fields.iter().map(|f| (f.name.clone(), json!({ "shape": type_shape(&f.ty), "required": f.required }))).collect::<serde_json::Map<_, _>>(),
                        "require": case.require,
                        "not_in_variant": super::messages::not_in_variant(&case.value),
                        "required_for_variant": super::messages::required_for_variant(&case.value),
                    }),
                )
            })
            .collect();
        root["variants"] = json!({
            "discriminator": v.discriminator,
            "cases": cases,
            "unknown": super::messages::unknown_variant(&v.discriminator, &v.cases),
        });
    }
    root
}

fn struct_shape(fields: &[Field]) -> Value {
    let members: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                json!({ "shape": type_shape(&f.ty), "required": f.required }),
            )
        })
        .collect();
    json!({ "t": "struct", "fields": members })
}

fn type_shape(ty: &Type) -> Value {
    match ty {
        Type::String | Type::Date | Type::Timestamp { .. } | Type::TimestampTz | Type::Uuid => {
            json!({ "t": "string" })
        }
        Type::Boolean => json!({ "t": "boolean" }),
        Type::Int => json!({ "t": "integer", "name": "an int", "min": i32::MIN, "max": i32::MAX }),
        Type::Long => json!({ "t": "integer", "name": "a long", "min": i64::MIN, "max": i64::MAX }),
        Type::Float => json!({ "t": "number", "max_abs": f64::from(f32::MAX) }),
        Type::Double => json!({ "t": "number" }),
        Type::Decimal { precision, scale } => {
            json!({ "t": "decimal", "precision": precision, "scale": scale })
        }
        Type::List(e) => {
            json!({ "t": "list", "items": type_shape(&e.ty), "nullable": !e.required })
        }
        Type::Map { value, .. } => {
            json!({ "t": "map", "values": type_shape(&value.ty), "nullable": !value.required })
        }
        Type::Struct(fields) => struct_shape(fields),
    }
}

/// The CloudWatch names the job publishes under (`contract_manifest::alerts::cloudwatch`, the
/// ones `deploy`'s alarms and dashboard read).
fn metric_names(context: &mut tera::Context) {
    use contract_manifest::alerts::cloudwatch as names;
    for (key, value) in [
        ("metrics_namespace", names::NAMESPACE),
        ("metric_contract", names::CONTRACT),
        ("metric_client_version", names::CLIENT_VERSION),
        ("metric_code", names::CODE),
        ("metric_accepted", names::ACCEPTED),
        ("metric_quarantined", names::QUARANTINED),
        ("metric_refused", names::REFUSED),
        ("metric_batch_failures", names::BATCH_FAILURES),
    ] {
        context.insert(key, value);
    }
}
