//! What a contract declares about personal data (#23), as the engines need it: which columns
//! are stored other than sent, how the quarantine table's `player_id` is stored, and the one
//! masking rule. Hashing needs the deployment's key and lives with the engines (`serve`:
//! `contract_judge::privacy`; the Glue job: `_pseudonymise`).

use crate::Manifest;
use crate::schema::{EnrichmentSource, Field, Pii};

/// What the quarantine table keeps of a payload whose personal fields cannot be found (it is
/// not a JSON object): nothing of it.
pub const WITHHELD: &str =
    "(withheld: the payload is not a JSON object, so its personal fields could not be removed)";

/// What a masked value keeps of the original: its last characters.
pub const MASK_KEEPS: usize = 4;
/// Values shorter than this are masked whole.
pub const MASK_KEEPS_FROM: usize = 8;

/// `value` masked: every character but the last [`MASK_KEEPS`] becomes `*`, every character
/// of a value shorter than [`MASK_KEEPS_FROM`]. Characters are Unicode scalar values (Python
/// counts the same).
pub fn mask(value: &str) -> String {
    let count = value.chars().count();
    let kept = if count < MASK_KEEPS_FROM {
        0
    } else {
        MASK_KEEPS
    };
    let mut out = "*".repeat(count - kept);
    out.extend(value.chars().skip(count - kept));
    out
}

/// The subjects `forget` erases (on both engines): those `given`, and those of `file` (one per
/// line, blank lines and `#` comments skipped), each once; an error names the unreadable file,
/// or says none was given.
pub fn gather_subjects(
    given: &[String],
    file: Option<&std::path::Path>,
) -> Result<Vec<String>, String> {
    let mut subjects = given.to_vec();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let lines = text.lines().map(str::trim);
        subjects.extend(
            lines
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_string),
        );
    }
    subjects.sort();
    subjects.dedup();
    if subjects.is_empty() {
        return Err("no subject to forget: give --subject ID or --subjects-file FILE".into());
    }
    Ok(subjects)
}

impl Manifest {
    /// Every field that can be a top-level key of an event: the envelope's, then each
    /// variant's payload fields (a field shared by variants once per variant).
    pub fn top_level_fields(&self) -> impl Iterator<Item = &Field> {
        let variant_fields = self
            .variants
            .iter()
            .flat_map(|v| v.cases.iter().flat_map(|c| c.fields.iter()));
        self.fields.iter().chain(variant_fields)
    }

    /// The events table's columns stored other than sent (top-level fields, variant fields
    /// and enrichments), each once, in table order.
    pub fn rewritten_columns(&self) -> Vec<(&str, Pii)> {
        let mut out: Vec<(&str, Pii)> = Vec::new();
        for field in self.top_level_fields() {
            if field.pii.rewrites() && !out.iter().any(|(name, _)| *name == field.name) {
                out.push((&field.name, field.pii));
            }
        }
        for enrichment in &self.enrichments {
            if enrichment.pii.rewrites() {
                out.push((&enrichment.name, enrichment.pii));
            }
        }
        out
    }

    /// How the quarantine table's `player_id` (the token's subject) is stored: as the
    /// contract's `jwt.sub` enrichment is, else as sent.
    pub fn quarantine_subject_pii(&self) -> Pii {
        self.enrichments
            .iter()
            .find(|e| e.source == EnrichmentSource::JwtSub)
            .map_or(Pii::No, |e| e.pii)
    }

    /// How the subject column is stored (None: the contract names no subject).
    pub fn subject_pii(&self) -> Option<Pii> {
        let subject = self.subject.as_deref()?;
        let field = self
            .fields
            .iter()
            .find(|f| f.name == subject)
            .map(|f| f.pii);
        let enrichment = self
            .enrichments
            .iter()
            .find(|e| e.name == subject)
            .map(|e| e.pii);
        field.or(enrichment)
    }

    /// Whether a field at the top of an event is stored other than sent.
    pub fn payload_pii(&self, member: &str) -> Pii {
        self.top_level_fields()
            .find(|f| f.name == member)
            .map_or(Pii::No, |f| f.pii)
    }

    /// Whether any top-level field of an event is stored other than sent (its quarantined
    /// payloads are then scrubbed).
    pub fn rewrites_payload(&self) -> bool {
        self.top_level_fields().any(|f| f.pii.rewrites())
    }

    /// Whether anything of an event is stored other than sent.
    pub fn rewrites_personal_data(&self) -> bool {
        !self.rewritten_columns().is_empty() || self.quarantine_subject_pii().rewrites()
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masking_keeps_the_last_four_characters_of_long_values_only() {
        assert_eq!(mask(""), "");
        assert_eq!(mask("abc"), "***");
        assert_eq!(mask("1234567"), "*******");
        assert_eq!(mask("12345678"), "****5678");
        assert_eq!(mask("jane.doe@example.com"), "****************.com");
        // Characters, not bytes: a multi-byte character is one `*`.
        assert_eq!(mask("ééééééééé"), "*****éééé");
    }
}
