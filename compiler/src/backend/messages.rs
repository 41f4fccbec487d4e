//! The message of each broken rule, the same text in every engine (the Rust validator and the
//! Glue job write it into the quarantine table): the contract's own `message`, or one made
//! from the rule.
//!
//! A message never quotes the event: it goes back to the client, into the quarantine table and
//! onto the quality console, which masks `pii` fields in payloads but not in messages. It says
//! what the value is not or breaks, showing only what the contract declares (bounds, formats,
//! members); the violation's code and path say where. The runtime's own messages for values
//! that do not parse (contract-support's `read`, which cannot link this crate) follow the rule
//! word for word.

use crate::ir::{Literal, Rule, RuleKind, Type, Variant};

/// What a violation of `rule` on a value of type `ty` says.
pub fn rule_message(rule: &Rule, ty: &Type) -> String {
    if let Some(message) = &rule.message {
        return message.clone();
    }
    match &rule.kind {
        RuleKind::Min(b) => format!("must be at least {b}"),
        RuleKind::Max(b) => format!("must be at most {b}"),
        RuleKind::MinLength(n) => format!("must have at least {n} {}", length_unit(ty)),
        RuleKind::MaxLength(n) => format!("must have at most {n} {}", length_unit(ty)),
        RuleKind::Pattern(p) => format!("must match the pattern {p:?}"),
        RuleKind::OneOf(values) => {
            let shown: Vec<String> = values
                .iter()
                .map(|l| match l {
                    Literal::String(s) => format!("{s:?}"),
                    Literal::Int(i) => i.to_string(),
                })
                .collect();
            format!("must be one of {}", shown.join(", "))
        }
        RuleKind::NotBefore(bound) => format!(
            "must not be before ingest time {}",
            window_text(bound.offset_seconds, -(bound.skew_seconds as i64))
        ),
        RuleKind::NotAfter(bound) => format!(
            "must not be after ingest time {}",
            window_text(bound.offset_seconds, bound.skew_seconds as i64)
        ),
    }
}

/// What a value of `ty` that does not parse says, for the types read from a string by format.
pub fn format_message(ty: &Type) -> Option<String> {
    match ty {
        Type::Date => Some("is not a date (YYYY-MM-DD)".into()),
        Type::Timestamp { format } => {
            Some(format!("does not match the format {:?}", format.pattern))
        }
        Type::TimestampTz => Some("is not an RFC 3339 timestamp".into()),
        Type::Uuid => Some("is not a UUID".into()),
        _ => None,
    }
}

/// What a discriminator value the contract does not declare says: the declared values, never
/// the one sent.
pub fn unknown_variant(discriminator: &str, cases: &[Variant]) -> String {
    let allowed: Vec<String> = cases.iter().map(|c| format!("{:?}", c.value)).collect();
    format!(
        "is not a known {discriminator}: expected one of {}",
        allowed.join(", ")
    )
}

/// What a payload field of another variant says (`value` is the declared variant sent).
pub fn not_in_variant(value: &str) -> String {
    format!("not a field of variant {value:?}")
}

/// What a field the variant `value` requires says when it is absent or null.
pub fn required_for_variant(value: &str) -> String {
    format!("required for variant {value:?}")
}

fn length_unit(ty: &Type) -> &'static str {
    match ty {
        Type::String => "characters",
        Type::List(_) => "items",
        _ => "entries",
    }
}

fn window_text(offset: i64, skew: i64) -> String {
    let fmt = |s: i64| {
        humantime::format_duration(std::time::Duration::from_secs(s.unsigned_abs())).to_string()
    };
    let mut text = String::new();
    if offset != 0 {
        text.push_str(&format!(
            "{} {}",
            if offset < 0 { "-" } else { "+" },
            fmt(offset)
        ));
    }
    if skew != 0 {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!(
            "{} {} skew",
            if skew < 0 { "-" } else { "+" },
            fmt(skew)
        ));
    }
    if text.is_empty() {
        "(no tolerance)".into()
    } else {
        text
    }
}
