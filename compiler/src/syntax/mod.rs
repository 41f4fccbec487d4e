//! Parsing: YAML text → JSON value (+ spans) → JSON Schema → AST.
//!
//! Each stage reports every problem it finds; a file reaches the checker only if all of them
//! passed, so the checker can assume the shape the schema promises.

pub mod ast;
pub mod schema;
pub mod spans;
pub mod yaml;

use std::sync::Arc;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::SourceFile;

/// A contract file whose structure is valid: ready for the semantic checks.
pub struct Parsed {
    pub file: Arc<SourceFile>,
    pub spans: Arc<spans::SpanIndex>,
    pub doc: ast::ContractDoc,
}

pub fn parse(file: &Arc<SourceFile>) -> Result<Parsed, Vec<Diagnostic>> {
    let loaded = yaml::load(file)?;
    let diagnostics = schema::validate(file, &loaded.value, &loaded.spans);
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    match serde_json::from_value::<ast::ContractDoc>(loaded.value) {
        Ok(doc) => Ok(Parsed {
            file: Arc::clone(file),
            spans: Arc::new(loaded.spans),
            doc,
        }),
        // The schema and the AST disagree: a compiler bug, reported rather than panicked on.
        Err(error) => Err(vec![
            Diagnostic::new(
                Code::SchemaViolation,
                format!(
                    "internal error: the schema accepted a shape the compiler cannot read: {error}"
                ),
            )
            .in_file(file)
            .help("please report this with the contract file"),
        ]),
    }
}
