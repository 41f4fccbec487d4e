//! The message of each broken rule, the same text in every engine (the Rust validator and the
//! Glue job write it into the quarantine table): the contract's own `message`, or one made
//! from the rule.

use crate::ir::{Literal, Rule, RuleKind, Type};

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
