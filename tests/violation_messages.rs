//! Violation messages never quote the event: they go back to the client in a 400 answer, into the
//! quarantine table's `violations` and onto the quality console, which masks `pii` fields in
//! payloads but shows messages as they are. A message may show what the contract declares
//! (bounds, formats, enum members); the code and the path say where the bad value is.

use contract_support::json::Parser;
use contract_support::manifest::{Field, Manifest, Type};
use contract_support::{AnyContract, Code, Context, Violation};
use contract_validators::ALL;
use serde_json::{Map, Value, json};

/// A value no contract declares, so a message containing it echoes the event.
const MARKER: &str = "SECRET-7f3a";

/// 2024-02-22 12:00:00 UTC.
const NOON: i64 = 1_708_603_200_000_000;

/// The marker wherever a value goes: in every leaf (whatever its type), as a list's element,
/// as a map's key and value; structs are filled member by member.
fn marked(ty: &Type) -> Value {
    match ty {
        Type::Struct(fields) => marked_object(fields),
        Type::List(element) => json!([marked(&element.ty)]),
        Type::Map { value, .. } => json!({ MARKER: marked(&value.ty) }),
        _ => json!(MARKER),
    }
}

fn marked_object<'f>(fields: impl IntoIterator<Item = &'f Field>) -> Value {
    let members: Map<String, Value> = fields
        .into_iter()
        .map(|f| (f.name.clone(), marked(&f.ty)))
        .collect();
    Value::Object(members)
}

/// Bodies with the marker in every field: for contracts with variants, one with the marker as
/// the discriminator (every variant's payload fields present), and one per declared variant.
fn marked_bodies(manifest: &Manifest) -> Vec<Value> {
    let Some(variants) = &manifest.variants else {
        return vec![marked_object(&manifest.fields)];
    };
    let payloads = variants.cases.iter().flat_map(|c| &c.fields);
    let mut unknown = marked_object(manifest.fields.iter().chain(payloads));
    unknown[&variants.discriminator] = json!(MARKER);
    let mut bodies = vec![unknown];
    for case in &variants.cases {
        let mut body = marked_object(manifest.fields.iter().chain(&case.fields));
        body[&variants.discriminator] = json!(case.value);
        bodies.push(body);
    }
    bodies
}

fn judge(contract: &dyn AnyContract, body: &[u8]) -> Vec<Violation> {
    let ctx = Context {
        ingest_time_micros: NOON,
    };
    contract.judge(&mut Parser::new(), body, &ctx).1
}

#[test]
fn messages_never_quote_a_fields_value() {
    let mut codes = Vec::new();
    let mut leaks = Vec::new();
    for contract in ALL {
        let manifest = contract.manifest();
        for body in marked_bodies(manifest) {
            for violation in judge(*contract, body.to_string().as_bytes()) {
                if violation.message.contains(MARKER) {
                    leaks.push(format!(
                        "{}: {} at {}: {:?}",
                        manifest.name, violation.code, violation.path, violation.message
                    ));
                }
                codes.push(violation.code);
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "messages quote the event:\n{}",
        leaks.join("\n")
    );
    // The bodies reach the messages that used to quote values: formats and the discriminator.
    for code in [Code::InvalidFormat, Code::OneOf, Code::WrongType] {
        assert!(codes.contains(&code), "no {code} violation was produced");
    }
}

#[test]
fn invalid_json_messages_quote_no_character_of_the_body() {
    for contract in ALL {
        // simd-json names the byte it stopped at; `Q` is in none of its error names.
        let violations = judge(*contract, br#"{"a": Q}"#);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].code, Code::InvalidJson);
        assert!(
            !violations[0].message.contains('Q'),
            "{:?}",
            violations[0].message
        );
    }
}
