//! Names that end up as identifiers in generated Rust, Python, SQL and Iceberg.
//!
//! The rule is deliberately narrow (`[a-z_][a-z0-9_]*`, at most 128 bytes) so a name can be
//! pasted into any of those languages without quoting tricks, and no contract text can inject
//! code. Keywords that Rust cannot even write as raw identifiers are refused; other keywords are
//! escaped by the backends (`r#type`, backquoted SQL).

use super::Checker;
use crate::diagnostic::Code;

pub const MAX_IDENTIFIER_LEN: usize = 128;

/// Rust keywords that cannot be raw identifiers, plus `_`.
const RUST_UNRAWABLE: &[&str] = &["self", "super", "crate", "_"];

/// The largest Iceberg field id (ids are positive Java ints).
pub const MAX_FIELD_ID: i64 = i32::MAX as i64;

impl Checker<'_> {
    /// Checks a name used as an identifier; returns whether it is acceptable.
    pub fn identifier(&mut self, name: &str, pointer: &str, what: &str) -> bool {
        let span = self.span(pointer);
        let first_bad = name
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_lowercase() || c == '_' || (i > 0 && c.is_ascii_digit())));
        if name.is_empty() || name.len() > MAX_IDENTIFIER_LEN || first_bad.is_some() {
            let suggestion = to_snake_case(name);
            let label = match first_bad {
                _ if name.is_empty() => "empty name".to_string(),
                _ if name.len() > MAX_IDENTIFIER_LEN => {
                    format!("longer than {MAX_IDENTIFIER_LEN} bytes")
                }
                Some((0, c)) if c.is_ascii_digit() => "starts with a digit".to_string(),
                Some((_, c)) => format!("{c:?} is not allowed here"),
                None => String::new(),
            };
            let mut d = self
                .diag(Code::InvalidIdentifier, format!("invalid {what} `{name}`"))
                .at(span, label)
                .note("names become identifiers in generated Rust, Python, SQL and Iceberg: lowercase letters, digits and '_', not starting with a digit");
            let fixable = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " -_".contains(c));
            if fixable && !suggestion.is_empty() && suggestion != name {
                d = d.help(format!("try `{suggestion}`"));
            }
            self.emit(d);
            return false;
        }
        if RUST_UNRAWABLE.contains(&name) || name.starts_with("__") {
            self.emit(
                self.diag(Code::ReservedWord, format!("`{name}` is a reserved name"))
                    .at(
                        span,
                        if name.starts_with("__") {
                            "names starting with `__` are reserved for contractc"
                        } else {
                            "a Rust keyword that cannot be escaped"
                        },
                    )
                    .help(format!(
                        "rename it, e.g. `{}_`",
                        name.trim_start_matches('_')
                    )),
            );
            return false;
        }
        true
    }

    /// Checks an id is a valid Iceberg field id.
    pub fn field_id(&mut self, id: i64, pointer: &str) -> Option<u32> {
        if (1..=MAX_FIELD_ID).contains(&id) {
            Some(id as u32)
        } else {
            self.emit(
                self.diag(Code::IdOutOfRange, format!("field id {id} is out of range"))
                    .at(self.span(pointer), "must be 1..=2147483647")
                    .help("Iceberg field ids are positive 32-bit integers"),
            );
            None
        }
    }
}

/// `End Game` → `EndGame`, `match_started` → `MatchStarted`, `2fa` → `V2fa`.
pub fn variant_ident(value: &str) -> String {
    let mut ident = String::new();
    for part in value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            ident.push(first.to_ascii_uppercase());
            ident.extend(chars);
        }
    }
    if ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, 'V');
    }
    ident
}

pub fn is_claim_name(claim: &str) -> bool {
    let mut chars = claim.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn to_snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_idents() {
        assert_eq!(variant_ident("End Game"), "EndGame");
        assert_eq!(variant_ident("match_started"), "MatchStarted");
        assert_eq!(variant_ident("CollectedItem"), "CollectedItem");
        assert_eq!(variant_ident("2fa-login"), "V2faLogin");
        assert_eq!(variant_ident("!!"), "");
    }

    #[test]
    fn snake_case_suggestions() {
        assert_eq!(to_snake_case("eventType"), "event_type");
        assert_eq!(to_snake_case("Event Type"), "event_type");
        assert_eq!(to_snake_case("1st"), "_1st");
    }
}
