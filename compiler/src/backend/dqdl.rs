//! AWS Glue Data Quality rulesets (DQDL) for the rules DQDL can express.
//!
//! DQDL judges columns of a table, so it sees what landed rather than what was sent: it cannot
//! check unknown or duplicate keys, JSON types, or nested members; time windows are relative
//! to when the ruleset runs (`now()`), not to ingest time. Per-variant rules use DQDL's `where`
//! clause. Whatever is left out is listed as a comment in the ruleset.

use super::GeneratedFile;
use crate::ir::{Contract, ContractSet, Field, Literal, Rule, RuleKind, Type, Valid};

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    set.contracts
        .iter()
        .map(|c| GeneratedFile::new(format!("{}/glue/ruleset.dqdl", c.name), ruleset(c)))
        .collect()
}

fn string_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn duration_words(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    if s.is_multiple_of(86_400) {
        format!("{} days", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{} hours", s / 3600)
    } else {
        format!("{} minutes", s.div_ceil(60))
    }
}

/// DQDL rules for one field's rules; `condition` is a `where` clause for variant rules.
fn field_rules(
    field: &Field,
    rules: &[Rule],
    condition: Option<&str>,
    out: &mut Vec<String>,
    skipped: &mut Vec<String>,
) {
    let column = string_literal(&field.name);
    let suffix = condition
        .map(|c| format!(" where {}", string_literal(c)))
        .unwrap_or_default();
    for rule in rules {
        let line = match (&rule.kind, &field.ty) {
            (RuleKind::Min(b), _) => Some(format!("ColumnValues {column} >= {b}")),
            (RuleKind::Max(b), _) => Some(format!("ColumnValues {column} <= {b}")),
            (RuleKind::MinLength(n), Type::String) => Some(format!("ColumnLength {column} >= {n}")),
            (RuleKind::MaxLength(n), Type::String) => Some(format!("ColumnLength {column} <= {n}")),
            (RuleKind::Pattern(p), _) => Some(format!(
                "ColumnValues {column} matches {}",
                string_literal(p)
            )),
            (RuleKind::OneOf(values), _) => {
                let values: Vec<String> = values
                    .iter()
                    .map(|l| match l {
                        Literal::String(s) => string_literal(s),
                        Literal::Int(i) => format!("\"{i}\""),
                    })
                    .collect();
                Some(format!("ColumnValues {column} in [{}]", values.join(", ")))
            }
            (RuleKind::NotAfter(t), _) => {
                let delta = t.latest_offset();
                Some(if delta >= 0 {
                    format!(
                        "ColumnValues {column} <= (now() + {})",
                        duration_words(delta)
                    )
                } else {
                    format!(
                        "ColumnValues {column} <= (now() - {})",
                        duration_words(delta)
                    )
                })
            }
            (RuleKind::NotBefore(t), _) => {
                let delta = t.earliest_offset();
                Some(if delta >= 0 {
                    format!(
                        "ColumnValues {column} >= (now() + {})",
                        duration_words(delta)
                    )
                } else {
                    format!(
                        "ColumnValues {column} >= (now() - {})",
                        duration_words(delta)
                    )
                })
            }
            (kind, ty) => {
                skipped.push(format!("{}.{} on a {}", field.name, kind.key(), ty.name()));
                None
            }
        };
        if let Some(line) = line {
            out.push(format!("{line}{suffix}"));
        }
    }
}

fn ruleset(c: &Contract) -> String {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for f in &c.fields {
        if f.required {
            rules.push(format!("IsComplete {}", string_literal(&f.name)));
        }
        field_rules(f, &f.rules, None, &mut rules, &mut skipped);
        if !f.ty.is_primitive() {
            skipped.push(format!("rules inside {} ({})", f.name, f.ty.name()));
        }
    }
    if let Some(variants) = &c.variants {
        let values: Vec<String> = variants
            .cases
            .iter()
            .map(|v| string_literal(&v.value))
            .collect();
        rules.push(format!(
            "ColumnValues {} in [{}]",
            string_literal(&variants.discriminator),
            values.join(", ")
        ));
        for case in &variants.cases {
            let condition = format!(
                "{} = '{}'",
                variants.discriminator,
                case.value.replace('\'', "''")
            );
            for f in &case.fields {
                if f.required {
                    rules.push(format!(
                        "IsComplete {} where {}",
                        string_literal(&f.name),
                        string_literal(&condition)
                    ));
                }
                field_rules(f, &f.rules, Some(&condition), &mut rules, &mut skipped);
            }
            for name in &case.require {
                rules.push(format!(
                    "IsComplete {} where {}",
                    string_literal(name),
                    string_literal(&condition)
                ));
            }
            for (name, extra) in &case.rules {
                if let Some(f) = c.fields.iter().find(|f| &f.name == name) {
                    field_rules(f, extra, Some(&condition), &mut rules, &mut skipped);
                }
            }
        }
    }
    let mut out = super::header("#", &c.source.path);
    out.push_str(&format!(
        "# Glue Data Quality ruleset for {}.{} (contract {} {}).\n",
        c.table.database, c.table.name, c.name, c.version
    ));
    out.push_str("# Time rules are relative to when the ruleset runs, not to ingest time.\n");
    if !skipped.is_empty() {
        out.push_str("# Not expressible in DQDL (enforced on ingest by the validators):\n");
        for s in &skipped {
            out.push_str(&format!("#   - {s}\n"));
        }
    }
    out.push_str("Rules = [\n");
    out.push_str(
        &rules
            .iter()
            .map(|r| format!("    {r}"))
            .collect::<Vec<_>>()
            .join(",\n"),
    );
    out.push_str("\n]\n");
    out
}
