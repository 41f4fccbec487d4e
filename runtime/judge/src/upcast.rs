//! Upcasting (#20): an event of a released version, already accepted by that version's
//! validator, rewritten as an event of the current version by the release's migration steps.
//!
//! Steps touch top-level members only; every other member keeps its exact JSON text (a
//! decimal's digits, a string's escapes), so the current validator reads what the client sent.
//! The Glue job applies the same steps (`_upcast` in the generated job).

use std::collections::BTreeMap;

use contract_support::manifest::Step;
use serde_json::value::RawValue;

/// Why an accepted event could not be upcast (a bug or a contract the checker let through:
/// the event is refused, with this as its message, rather than stored wrong).
#[derive(Debug, PartialEq, Eq)]
pub struct UpcastError(pub String);

type Members = BTreeMap<String, Box<RawValue>>;

/// The event `body` after `steps`, as JSON bytes.
pub fn upcast(body: &[u8], steps: &[Step]) -> Result<Vec<u8>, UpcastError> {
    let mut members: Members = serde_json::from_slice(body)
        .map_err(|e| UpcastError(format!("the event is not a JSON object: {e}")))?;
    for step in steps {
        apply(&mut members, step)?;
    }
    serde_json::to_vec(&members).map_err(|e| UpcastError(e.to_string()))
}

fn raw(json: String) -> Result<Box<RawValue>, UpcastError> {
    RawValue::from_string(json).map_err(|e| UpcastError(format!("a migration value: {e}")))
}

fn string_json(text: &str) -> Result<Box<RawValue>, UpcastError> {
    raw(serde_json::Value::from(text).to_string())
}

/// The string a member holds, if it holds one.
fn as_string(value: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(value.get()).ok()
}

fn is_null(value: Option<&RawValue>) -> bool {
    value.is_none_or(|v| v.get() == "null")
}

fn mapped<'m>(map: &'m [(String, String)], value: &str) -> Option<&'m str> {
    map.iter()
        .find(|(from, _)| from == value)
        .map(|(_, to)| to.as_str())
}

fn apply(members: &mut Members, step: &Step) -> Result<(), UpcastError> {
    match step {
        Step::Rename { from, to } => {
            if let Some(value) = members.remove(from) {
                members.insert(to.clone(), value);
            }
        }
        Step::MapValues { field, map } => {
            let replacement = members
                .get(field)
                .and_then(|v| as_string(v))
                .and_then(|text| mapped(map, &text).map(str::to_string));
            if let Some(to) = replacement {
                members.insert(field.clone(), string_json(&to)?);
            }
        }
        Step::Derive {
            field,
            from,
            map,
            otherwise,
        } => {
            let source = members.get(from).filter(|v| v.get() != "null");
            let derived = match source {
                Some(value) if map.is_empty() => Some(value.clone()),
                Some(value) => {
                    match as_string(value).and_then(|text| mapped(map, &text).map(str::to_string)) {
                        Some(to) => Some(string_json(&to)?),
                        None => otherwise.clone().map(raw).transpose()?,
                    }
                }
                None => otherwise.clone().map(raw).transpose()?,
            };
            if let Some(value) = derived {
                members.insert(field.clone(), value);
            }
        }
        Step::Default { field, value } => {
            if is_null(members.get(field).map(|v| &**v)) {
                members.insert(field.clone(), raw(value.clone())?);
            }
        }
        Step::Scale { field, by } => {
            if let Some(value) = members.get(field).filter(|v| v.get() != "null") {
                let scaled = scale(value.get(), by)?;
                members.insert(field.clone(), raw(scaled)?);
            }
        }
        Step::Drop { field } => {
            members.remove(field);
        }
    }
    Ok(())
}

/// `value × by`: integer × integer stays an integer (refused past i64, as no integer column
/// holds it), anything else is a double.
fn scale(value: &str, by: &str) -> Result<String, UpcastError> {
    if let (Ok(a), Ok(b)) = (value.parse::<i64>(), by.parse::<i64>()) {
        return a
            .checked_mul(b)
            .map(|n| n.to_string())
            .ok_or_else(|| UpcastError(format!("{value} × {by} does not fit a 64-bit integer")));
    }
    let (Ok(a), Ok(b)) = (value.parse::<f64>(), by.parse::<f64>()) else {
        return Err(UpcastError(format!(
            "`scale` on a value that is not a number: {value}"
        )));
    };
    let product = a * b;
    serde_json::Number::from_f64(product)
        .map(|n| n.to_string())
        .ok_or_else(|| UpcastError(format!("{value} × {by} is not a finite number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, steps: &[Step]) -> serde_json::Value {
        let bytes = upcast(body.as_bytes(), steps).expect("upcasts");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn map(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn every_step_applies_in_order() {
        let steps = vec![
            Step::Rename {
                from: "t".into(),
                to: "type".into(),
            },
            Step::Derive {
                field: "category".into(),
                from: "type".into(),
                map: map(&[("Login", "session")]),
                otherwise: Some("\"gameplay\"".into()),
            },
            Step::MapValues {
                field: "type".into(),
                map: map(&[("Killed Enemy", "Enemy Killed")]),
            },
            Step::Default {
                field: "platform".into(),
                value: "\"unknown\"".into(),
            },
            Step::Scale {
                field: "ms".into(),
                by: "1000".into(),
            },
            Step::Drop {
                field: "text".into(),
            },
        ];
        let out = run(
            r#"{"t":"Killed Enemy","text":"hi","ms":3,"amount":12345678901234567.891}"#,
            &steps,
        );
        assert_eq!(
            out,
            serde_json::json!({"type": "Enemy Killed", "category": "gameplay", "platform": "unknown", "ms": 3000, "amount": 12345678901234567.891})
        );
        let login = run(r#"{"t":"Login","platform":"ps5"}"#, &steps);
        assert_eq!(login["category"], "session");
        assert_eq!(
            login["platform"], "ps5",
            "a default leaves a sent value alone"
        );
    }

    #[test]
    fn untouched_members_keep_their_text() {
        let bytes =
            upcast(br#"{"amount":12345678901234567.891,"s":"\u00e9"}"#, &[]).expect("upcasts");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"amount":12345678901234567.891,"s":"\u00e9"}"#
        );
    }

    #[test]
    fn scale_keeps_integers_and_refuses_overflow() {
        assert_eq!(scale("3", "1000"), Ok("3000".into()));
        assert_eq!(scale("1.5", "1000"), Ok("1500.0".into()));
        assert_eq!(scale("2", "0.5"), Ok("1.0".into()));
        assert!(scale("9223372036854775807", "2").is_err());
        assert!(scale("\"x\"", "2").is_err());
    }

    #[test]
    fn a_derive_without_its_source_takes_otherwise_or_nothing() {
        let steps = [Step::Derive {
            field: "c".into(),
            from: "a".into(),
            map: vec![],
            otherwise: None,
        }];
        assert_eq!(run(r#"{"b":1}"#, &steps), serde_json::json!({"b": 1}));
        assert_eq!(
            run(r#"{"a":[1,2]}"#, &steps),
            serde_json::json!({"a": [1, 2], "c": [1, 2]})
        );
    }
}
