//! YAML text → JSON value, with syntax errors as diagnostics.
//!
//! `serde_yaml` is the parser of record (YAML 1.2 core schema: `yes`/`on` stay strings). The
//! value is converted to `serde_json::Value` because the contract language is JSON-shaped: the
//! JSON Schema validates it and serde deserializes the AST from it.

use std::sync::Arc;

use serde_yaml::Value as Yaml;

use super::spans::{SpanIndex, escape_pointer_segment};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{SourceFile, Span};

pub struct Loaded {
    pub value: serde_json::Value,
    pub spans: SpanIndex,
}

pub fn load(file: &Arc<SourceFile>) -> Result<Loaded, Vec<Diagnostic>> {
    let spans = SpanIndex::build(&file.text);
    if !spans.duplicates.is_empty() {
        // Reported from the span index: it knows both positions, serde_yaml only one.
        let diagnostics = spans
            .duplicates
            .iter()
            .map(|dup| {
                Diagnostic::new(Code::DuplicateKey, format!("duplicate key `{}`", dup.key))
                    .in_file(file)
                    .at(dup.second, "defined again here")
                    .also(dup.first, "first defined here")
                    .help("remove one of them: YAML keeps only one value per key")
            })
            .collect();
        return Err(diagnostics);
    }

    let yaml: Yaml = match serde_yaml::from_str(&file.text) {
        Ok(yaml) => yaml,
        Err(error) => return Err(vec![syntax_error(file, &error)]),
    };
    if yaml.is_null() {
        return Err(vec![
            Diagnostic::new(Code::EmptyContract, "the file holds no contract")
                .in_file(file)
                .at(Span::new(0, file.text.len().min(1)), "empty document")
                .help("start from contracts/game_events.yaml or see docs/contract-language.md"),
        ]);
    }
    let mut diagnostics = Vec::new();
    let value = to_json(&yaml, String::new(), file, &spans, &mut diagnostics);
    if diagnostics.is_empty() {
        Ok(Loaded { value, spans })
    } else {
        Err(diagnostics)
    }
}

fn syntax_error(file: &Arc<SourceFile>, error: &serde_yaml::Error) -> Diagnostic {
    let full = error.to_string();
    // serde_yaml appends "at line L column C"; the snippet shows the position instead.
    let message = full.split(" at line ").next().unwrap_or(&full).to_string();
    let code = if message.contains("more than one document") {
        Code::UnsupportedYaml
    } else {
        Code::YamlSyntax
    };
    let mut diagnostic = Diagnostic::new(code, format!("invalid YAML: {message}")).in_file(file);
    if let Some(location) = error.location() {
        let start = file.offset_of(location.line(), location.column());
        diagnostic = diagnostic.at(Span::new(start, file.clamp(start + 1)), message.clone());
    }
    if code == Code::UnsupportedYaml {
        // serde_yaml gives no position here: point at the second document's marker.
        let mut offset = 0;
        let mut markers = 0;
        for line in file.text.split_inclusive('\n') {
            if line.starts_with("---") {
                markers += 1;
                // A leading `---` opens the first document; any later one starts another.
                if markers > 1
                    || offset > 0
                        && file.text[..offset]
                            .lines()
                            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                {
                    diagnostic = diagnostic.at(
                        Span::new(offset, offset + 3),
                        "a second document starts here",
                    );
                    break;
                }
            }
            offset += line.len();
        }
        diagnostic = diagnostic.help("put each contract in its own file");
    }
    diagnostic
}

fn to_json(
    yaml: &Yaml,
    pointer: String,
    file: &Arc<SourceFile>,
    spans: &SpanIndex,
    diagnostics: &mut Vec<Diagnostic>,
) -> serde_json::Value {
    let here = |spans: &SpanIndex| spans.value(&pointer).unwrap_or(Span::new(0, 0));
    match yaml {
        Yaml::Null => serde_json::Value::Null,
        Yaml::Bool(b) => serde_json::Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(number) => serde_json::Value::Number(number),
                    None => {
                        diagnostics.push(
                            Diagnostic::new(Code::UnsupportedYaml, "non-finite number")
                                .in_file(file)
                                .at(here(spans), "NaN and infinities have no JSON form"),
                        );
                        serde_json::Value::Null
                    }
                }
            }
        }
        Yaml::String(s) => serde_json::Value::String(s.clone()),
        Yaml::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| to_json(item, format!("{pointer}/{i}"), file, spans, diagnostics))
            .collect(),
        Yaml::Mapping(mapping) => {
            let mut object = serde_json::Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    // A variant case named `200` or `true` is still a name.
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => {
                        diagnostics.push(
                            Diagnostic::new(Code::UnsupportedYaml, "mapping key is not a scalar")
                                .in_file(file)
                                .at(here(spans), "in this mapping")
                                .help("contract keys are plain names"),
                        );
                        continue;
                    }
                };
                let child = format!("{pointer}/{}", escape_pointer_segment(&key));
                let value = to_json(value, child, file, spans, diagnostics);
                object.insert(key, value);
            }
            serde_json::Value::Object(object)
        }
        Yaml::Tagged(tagged) => {
            diagnostics.push(
                Diagnostic::new(Code::UnsupportedYaml, format!("YAML tag `{}`", tagged.tag))
                    .in_file(file)
                    .at(here(spans), "tagged value")
                    .help("contracts use plain YAML: remove the tag"),
            );
            serde_json::Value::Null
        }
    }
}
