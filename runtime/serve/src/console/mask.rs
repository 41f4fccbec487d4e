//! Hides the values of fields a contract marks `pii` before a payload is shown.

use contract_support::manifest::{Field, Manifest, Type};
use serde_json::Value;

/// What a masked value is replaced with.
pub const MASK: &str = "••• (pii)";

/// The payload as the console may show it: `pii` values replaced by [`MASK`]. A payload that
/// is not a JSON object (or was cut) cannot be masked field by field: when the contract has
/// `pii` fields it is withheld, else shown as received.
pub fn masked_payload(manifest: &Manifest, payload: &str, truncated: bool) -> String {
    let has_pii = has_pii(manifest);
    if !has_pii {
        return payload.to_string();
    }
    let parsed = if truncated {
        None
    } else {
        serde_json::from_str::<Value>(payload).ok()
    };
    match parsed {
        Some(mut value) if value.is_object() => {
            mask_object(&mut value, &manifest.top_level_fields().collect::<Vec<_>>());
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        _ => format!(
            "(payload of {} bytes withheld: it is not a complete JSON object, so its pii fields cannot be masked)",
            payload.len()
        ),
    }
}

fn has_pii(manifest: &Manifest) -> bool {
    fn any(fields: &[&Field]) -> bool {
        fields
            .iter()
            .any(|f| f.pii.is_personal() || type_has_pii(&f.ty))
    }
    fn type_has_pii(ty: &Type) -> bool {
        match ty {
            Type::Struct(members) => any(&members.iter().collect::<Vec<_>>()),
            Type::List(element) => type_has_pii(&element.ty),
            Type::Map { value, .. } => type_has_pii(&value.ty),
            _ => false,
        }
    }
    any(&manifest.top_level_fields().collect::<Vec<_>>())
}

fn mask_object(value: &mut Value, fields: &[&Field]) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for field in fields {
        // Every occurrence of the key: a duplicate key would otherwise show its second value.
        if let Some(child) = object.get_mut(&field.name) {
            if field.pii.is_personal() {
                *child = Value::String(MASK.to_string());
            } else {
                mask_typed(child, &field.ty);
            }
        }
    }
}

fn mask_typed(value: &mut Value, ty: &Type) {
    match ty {
        Type::Struct(members) => mask_object(value, &members.iter().collect::<Vec<_>>()),
        Type::List(element) => {
            for item in value.as_array_mut().into_iter().flatten() {
                mask_typed(item, &element.ty);
            }
        }
        Type::Map { value: element, .. } => {
            for item in value
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                mask_typed(item, &element.ty);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_support::manifest::Pii;

    fn manifest_with_pii(pii: bool) -> Manifest {
        let mut manifest = contract_validators::ALL[0].manifest().clone();
        for field in &mut manifest.fields {
            field.pii = Pii::No;
        }
        if let Some(variants) = &mut manifest.variants {
            for case in &mut variants.cases {
                case.fields.clear();
            }
        }
        manifest.fields[0].pii = if pii { Pii::Keep } else { Pii::No };
        manifest
    }

    #[test]
    fn pii_values_are_replaced_and_the_rest_kept() {
        let manifest = manifest_with_pii(true);
        let name = manifest.fields[0].name.clone();
        let payload = format!(r#"{{"{name}": "secret", "other": 1}}"#);
        let shown = masked_payload(&manifest, &payload, false);
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains(MASK) && shown.contains("\"other\": 1"),
            "{shown}"
        );
    }

    #[test]
    fn an_unparseable_payload_is_withheld_only_when_there_is_pii() {
        let payload = "{\"broken\": \"secret";
        assert!(!masked_payload(&manifest_with_pii(true), payload, false).contains("secret"));
        assert_eq!(
            masked_payload(&manifest_with_pii(false), payload, false),
            payload
        );
    }
}
