//! Upcasting (#20): an event of a released version, already accepted by that version's
//! validator, rewritten as an event of the current version by the release's migration steps.
//!
//! Steps touch top-level members only; every other member keeps its exact JSON text (a
//! decimal's digits, a string's escapes), so the current validator reads what the client sent.
//! The Glue job applies the same steps (`_upcast` in the generated job).

use std::borrow::Cow;

use contract_support::manifest::Step;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Why an accepted event could not be upcast (a bug or a contract the checker let through:
/// the event is refused, with this as its message, rather than stored wrong).
#[derive(Debug, PartialEq, Eq)]
pub struct UpcastError(pub String);

/// The event `body` after `steps`, as JSON bytes.
pub fn upcast(body: &[u8], steps: &[Step]) -> Result<Vec<u8>, UpcastError> {
    let mut members: Members<'_> = serde_json::from_slice(body)
        .map_err(|e| UpcastError(format!("the event is not a JSON object: {e}")))?;
    for step in steps {
        members.apply(step)?;
    }
    members.to_json()
}

/// An event's top-level members in order, borrowed from its body where a step leaves them be
/// (an event is upcast on the ingest path: no allocation per member it does not change).
pub(crate) struct Members<'a>(pub(crate) Vec<(Cow<'a, str>, Cow<'a, RawValue>)>);

impl<'a> Members<'a> {
    fn get(&self, key: &str) -> Option<&Cow<'a, RawValue>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A present value that is not `null`.
    fn value(&self, key: &str) -> Option<&Cow<'a, RawValue>> {
        self.get(key).filter(|v| v.get() != "null")
    }

    fn set(&mut self, key: &str, value: Cow<'a, RawValue>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((Cow::Owned(key.to_string()), value)),
        }
    }

    fn remove(&mut self, key: &str) -> Option<Cow<'a, RawValue>> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    fn apply(&mut self, step: &Step) -> Result<(), UpcastError> {
        match step {
            Step::Rename { from, to } => {
                if let Some(value) = self.remove(from) {
                    self.set(to, value);
                }
            }
            Step::MapValues { field, map } => {
                let to = self
                    .get(field)
                    .and_then(|v| as_string(v))
                    .and_then(|t| mapped(map, &t));
                if let Some(to) = to {
                    self.set(field, string_json(to)?);
                }
            }
            Step::Derive {
                field,
                from,
                map,
                otherwise,
            } => {
                let derived = match self.value(from) {
                    // A copy of a member still borrowed from the body costs nothing.
                    Some(value) if map.is_empty() => Some(value.clone()),
                    Some(value) => match as_string(value).and_then(|t| mapped(map, &t)) {
                        Some(to) => Some(string_json(to)?),
                        None => otherwise.as_deref().map(raw).transpose()?,
                    },
                    None => otherwise.as_deref().map(raw).transpose()?,
                };
                if let Some(value) = derived {
                    self.set(field, value);
                }
            }
            Step::Default { field, value } => {
                if self.value(field).is_none() {
                    self.set(field, raw(value)?);
                }
            }
            Step::Scale { field, by } => {
                if let Some(value) = self.value(field) {
                    let scaled = scale(value.get(), by)?;
                    self.set(field, raw(&scaled)?);
                }
            }
            Step::Drop { field } => {
                self.remove(field);
            }
        }
        Ok(())
    }

    pub(crate) fn to_json(&self) -> Result<Vec<u8>, UpcastError> {
        let mut out = Vec::with_capacity(
            2 + self
                .0
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>(),
        );
        out.push(b'{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key).map_err(|e| UpcastError(e.to_string()))?;
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, Cow::Borrowed(value)));
        }
        Ok(Members(members))
    }
}

/// A member's name, borrowed from the body unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn raw<'a>(json: &str) -> Result<Cow<'a, RawValue>, UpcastError> {
    RawValue::from_string(json.to_string())
        .map(Cow::Owned)
        .map_err(|e| UpcastError(format!("a migration value: {e}")))
}

pub(crate) fn string_json<'a>(text: &str) -> Result<Cow<'a, RawValue>, UpcastError> {
    raw(&serde_json::Value::from(text).to_string())
}

/// The string a member holds, if it holds one.
pub(crate) fn as_string(value: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(value.get()).ok()
}

fn mapped<'m>(map: &'m [(String, String)], value: &str) -> Option<&'m str> {
    map.iter()
        .find(|(from, _)| from == value)
        .map(|(_, to)| to.as_str())
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
    fn names_with_escapes_and_spaces_between_members_are_read() {
        let body = br#"{ "a\u0062" : "x" ,"t" :"Login" }"#;
        let steps = [Step::Rename {
            from: "ab".into(),
            to: "c".into(),
        }];
        let bytes = upcast(body, &steps).expect("upcasts");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"t":"Login","c":"x"}"#
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
