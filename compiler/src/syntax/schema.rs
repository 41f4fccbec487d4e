//! Structural validation against the contract language's JSON Schema.
//!
//! The schema (`compiler/schema/contract.schema.json`) is the one published for editors, so what
//! the YAML language server flags while typing is what `contractc check` flags. Each schema error
//! becomes a diagnostic with a specific code and, for typos, a did-you-mean.

use std::sync::{Arc, LazyLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::spans::{SpanIndex, escape_pointer_segment};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{SourceFile, Span};

/// The contract language's JSON Schema, as published for editors.
pub const CONTRACT_SCHEMA: &str = include_str!("../../schema/contract.schema.json");

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(CONTRACT_SCHEMA).expect("the embedded contract schema is valid JSON")
});

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::validator_for(&SCHEMA).expect("the embedded contract schema compiles")
});

/// The type names a field may use (for did-you-mean on an unknown type).
pub const TYPE_NAMES: &[&str] = &[
    "string",
    "boolean",
    "int",
    "long",
    "float",
    "double",
    "decimal(P,S)",
    "date",
    "timestamp",
    "timestamptz",
    "uuid",
    "list",
    "map",
    "struct",
];

pub fn validate(file: &Arc<SourceFile>, value: &Value, spans: &SpanIndex) -> Vec<Diagnostic> {
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    for error in VALIDATOR.iter_errors(value) {
        let pointer = error.instance_path().as_str().to_string();
        let instance = error.instance();
        let at_value = spans.value(&pointer).unwrap_or(Span::new(0, 0));
        let diagnostic = match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_keys(error.schema_path().as_str());
                for key in unexpected {
                    let key_pointer = format!("{pointer}/{}", escape_pointer_segment(key));
                    let span = spans.key_or_value(&key_pointer).unwrap_or(at_value);
                    let mut diagnostic =
                        Diagnostic::new(Code::UnknownKey, format!("unknown key `{key}`"))
                            .in_file(file)
                            .at(span, format!("not a key of {}", describe(&pointer)));
                    diagnostic = match closest(key, allowed.iter().map(String::as_str)) {
                        Some(best) => diagnostic.help(format!("did you mean `{best}`?")),
                        None if !allowed.is_empty() => {
                            diagnostic.help(format!("expected one of: {}", allowed.join(", ")))
                        }
                        None => diagnostic,
                    };
                    diagnostics.push(diagnostic);
                }
                continue;
            }
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                let span = first_line(file, spans.key_or_value(&pointer).unwrap_or(at_value));
                Diagnostic::new(
                    Code::MissingKey,
                    format!("missing required key `{property}`"),
                )
                .in_file(file)
                .at(span, format!("{} needs `{property}`", describe(&pointer)))
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(set) => set
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                let found = json_type(instance);
                let mut diagnostic = Diagnostic::new(
                    Code::WrongValueType,
                    format!("expected {expected}, found {found}"),
                )
                .in_file(file)
                .at(
                    first_line(file, at_value),
                    format!("this is {}", with_article(found)),
                );
                if expected == "string" && matches!(found, "number" | "integer" | "boolean") {
                    diagnostic = diagnostic.help(format!("quote it: \"{instance}\""));
                } else if expected == "array" && found != "object" {
                    diagnostic = diagnostic.help(format!("write a list: [{instance}]"));
                }
                diagnostic
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options
                    .as_array()
                    .map(|o| {
                        o.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut diagnostic =
                    Diagnostic::new(Code::InvalidValue, format!("invalid value {instance}"))
                        .in_file(file)
                        .at(at_value, format!("expected one of: {}", options.join(", ")));
                if let Some(best) = instance
                    .as_str()
                    .and_then(|s| closest(s, options.iter().map(String::as_str)))
                {
                    diagnostic = diagnostic.help(format!("did you mean `{best}`?"));
                }
                diagnostic
            }
            ValidationErrorKind::AnyOf { .. } if pointer.ends_with("/type") => {
                let name = instance
                    .as_str()
                    .map_or_else(|| instance.to_string(), str::to_string);
                let mut diagnostic =
                    Diagnostic::new(Code::UnknownType, format!("unknown type `{name}`"))
                        .in_file(file)
                        .at(at_value, "not a contract type");
                diagnostic = match closest(&name, TYPE_NAMES.iter().copied()) {
                    Some(best) => diagnostic.help(format!("did you mean `{best}`?")),
                    None => diagnostic.help(format!("types are: {}", TYPE_NAMES.join(", "))),
                };
                diagnostic
            }
            ValidationErrorKind::Pattern { .. } if pointer.ends_with("/transform") => {
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("invalid partition transform {instance}"),
                )
                .in_file(file)
                .at(at_value, "not an Iceberg transform")
                .help("use identity, year, month, day, hour, bucket[N] or truncate[W]")
            }
            _ => Diagnostic::new(Code::SchemaViolation, error.to_string())
                .in_file(file)
                .at(
                    first_line(file, at_value),
                    format!("in {}", describe(&pointer)),
                ),
        };
        diagnostics.push(diagnostic);
    }
    diagnostics
}

/// The `properties` next to the `additionalProperties` keyword that failed.
fn allowed_keys(schema_path: &str) -> Vec<String> {
    let mut node = &*SCHEMA;
    let segments: Vec<String> = schema_path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((_, parents)) = segments.split_last() else {
        return Vec::new();
    };
    for segment in parents {
        node = match node
            .get(segment.as_str())
            .or_else(|| segment.parse::<usize>().ok().and_then(|i| node.get(i)))
        {
            Some(next) => resolve(next),
            None => return Vec::new(),
        };
    }
    let node = resolve(node);
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn resolve(node: &Value) -> &Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/$defs/")
            .and_then(|name| SCHEMA.get("$defs").and_then(|d| d.get(name)))
            .map_or(node, resolve),
        None => node,
    }
}

/// The closest candidate to a misspelt `word`, if one is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn with_article(noun: &str) -> String {
    match noun {
        "null" => "null".to_string(),
        n if n.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {n}"),
        n => format!("a {n}"),
    }
}

/// A readable name for the node at `pointer`: "the contract", "`table`", "`fields[2]`".
pub fn describe(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the contract".to_string();
    }
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    format!("`{out}`")
}

/// Collections span many lines; a caret on the first line reads better.
pub fn first_line(file: &SourceFile, span: Span) -> Span {
    let line = file.line_span_from(span.start);
    Span::new(span.start, span.end.min(line.end).max(span.start))
}
