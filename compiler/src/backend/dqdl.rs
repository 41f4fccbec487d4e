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

/// A DQDL quoted string whose value DQDL unescapes (`in [...]` values, where a backslash
/// escapes the next character): `\` and `"` get a backslash.
fn string_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A DQDL quoted string DQDL passes on as written (a `matches` pattern, a `where` clause: the
/// ruleset parser drops the quotes only). Its lexer ends the string at a `"` not escaped by a
/// backslash, so such a quote gets one: in a regex and in a Spark SQL string, `\"` is `"`.
/// Backslashes stay as they are (a valid pattern or clause does not end with a lone one).
fn raw_literal(s: &str) -> String {
    let mut out = String::from("\"");
    let mut backslashes = 0;
    for c in s.chars() {
        if c == '"' && backslashes % 2 == 0 {
            out.push('\\');
        }
        backslashes = if c == '\\' { backslashes + 1 } else { 0 };
        out.push(c);
    }
    out.push('"');
    out
}

/// The `where` clause (Spark SQL) of a variant's rules: the discriminator in backquotes, its
/// value a literal Spark reads back unchanged (`views::string_literal`: no quote or backslash
/// inside, which Spark would unescape).
fn variant_condition(discriminator: &str, value: &str) -> String {
    format!(
        "`{discriminator}` = {}",
        contract_manifest::views::string_literal(value)
    )
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
        .map(|c| format!(" where {}", raw_literal(c)))
        .unwrap_or_default();
    for rule in rules {
        let line = match (&rule.kind, &field.ty) {
            (RuleKind::Min(b), _) => Some(format!("ColumnValues {column} >= {b}")),
            (RuleKind::Max(b), _) => Some(format!("ColumnValues {column} <= {b}")),
            (RuleKind::MinLength(n), Type::String) => Some(format!("ColumnLength {column} >= {n}")),
            (RuleKind::MaxLength(n), Type::String) => Some(format!("ColumnLength {column} <= {n}")),
            (RuleKind::Pattern(p), _) => {
                Some(format!("ColumnValues {column} matches {}", raw_literal(p)))
            }
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
            let condition = variant_condition(&variants.discriminator, &case.value);
            for f in &case.fields {
                if f.required {
                    rules.push(format!(
                        "IsComplete {} where {}",
                        string_literal(&f.name),
                        raw_literal(&condition)
                    ));
                }
                field_rules(f, &f.rules, Some(&condition), &mut rules, &mut skipped);
            }
            for name in &case.require {
                rules.push(format!(
                    "IsComplete {} where {}",
                    string_literal(name),
                    raw_literal(&condition)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// DQDL's lexer (awslabs/dqdl CommonLexerRules.g4): `"` (`\"` | `\\` | any)*? `"`. The
    /// quoted string `text` starts with, and the rest.
    fn lex(text: &str) -> (&str, &str) {
        let body = &text[1..];
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if body[i + 1..].starts_with(['"', '\\']) => {
                    chars.next();
                }
                '"' => return (&body[..i], &body[i + 1..]),
                _ => {}
            }
        }
        panic!("unterminated: {text}");
    }

    #[test]
    fn raw_strings_reach_dqdl_as_written() {
        for text in [
            r#"[^"\\]*"#,
            r#"\"quoted\""#,
            r"a\\",
            r"\d+ */ ${x} # ` ' %",
            "line\nbreak \u{2028} 🐢",
            r#"`kind` = 'it' || chr(39) || 's "x"'"#,
        ] {
            let literal = raw_literal(text);
            let (body, rest) = lex(&literal);
            assert_eq!(rest, "", "{literal}");
            // Only quotes gained a backslash; the parser passes the body on as is.
            assert_eq!(body.replace("\\\"", "\""), text.replace("\\\"", "\""));
        }
        assert_eq!(raw_literal(r#"a"b\"c\\"d"#), r#""a\"b\"c\\\"d""#);
    }

    #[test]
    fn unescaped_strings_lex_whole() {
        for text in ["\\", "\"", "a\\\"b", "x\\", "\u{2029}'\\n"] {
            let literal = string_literal(text);
            let (body, rest) = lex(&literal);
            assert_eq!(rest, "");
            // DQDL's removeEscapes: a backslash and the character after it become that one.
            let mut value = String::new();
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                value.push(if c == '\\' { chars.next().unwrap() } else { c });
            }
            assert_eq!(value, text);
        }
    }

    #[test]
    fn variant_conditions_hold_no_quote_or_backslash_in_a_literal() {
        assert_eq!(
            variant_condition("order", r"it's \ done"),
            r"`order` = 'it' || chr(39) || 's ' || chr(92) || ' done'"
        );
    }
}
