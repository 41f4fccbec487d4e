//! Diagnostics as data: a stable code, a severity, a message, labelled spans and a `help`.
//!
//! They are rendered only at the edge (the CLI), as rustc-style text through `annotate-snippets`
//! or as JSON for tools. Codes are stable: once published a code keeps its meaning, and
//! `docs/diagnostics.md` lists them all.

use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::source::{SourceFile, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $summary:literal;)*) => {
        /// Every diagnostic the compiler can emit. The string form (`C0012`) is stable.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// One line saying what the code is about (for `contractc explain` and the docs).
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }
        }
    };
}

codes! {
    // Files and YAML syntax.
    Io = "C0001", Error, "the file cannot be read";
    YamlSyntax = "C0002", Error, "the file is not valid YAML";
    DuplicateKey = "C0003", Error, "a mapping has the same key twice";
    UnsupportedYaml = "C0004", Error, "a YAML feature contracts do not allow (tags, non-scalar keys, several documents, non-finite numbers)";
    EmptyContract = "C0005", Error, "the file holds no contract";
    // Structure (the contract-language JSON Schema).
    UnknownKey = "C0010", Error, "a key the contract language does not define";
    MissingKey = "C0011", Error, "a required key is missing";
    WrongValueType = "C0012", Error, "a value has the wrong YAML type";
    InvalidValue = "C0013", Error, "a value is not one of the allowed ones";
    UnknownType = "C0014", Error, "a field type the contract language does not know";
    SchemaViolation = "C0015", Error, "a value breaks a structural constraint of the contract language";
    // Names, ids, identity.
    InvalidIdentifier = "C0100", Error, "a name is not a safe identifier for Rust, Python, SQL and Iceberg";
    ReservedWord = "C0101", Error, "a name is reserved by a target language or by contractc";
    DuplicateName = "C0102", Error, "two fields share a name";
    DuplicateId = "C0103", Error, "two fields share an id";
    ReservedIdUsed = "C0104", Error, "a field uses an id kept in `reserved`";
    ReservedNameUsed = "C0105", Error, "a field uses a name kept in `reserved`";
    IdOutOfRange = "C0106", Error, "a field id outside 1..=2147483647";
    InvalidVersion = "C0107", Error, "the contract version is not a semantic version";
    DuplicateContract = "C0108", Error, "two files declare the same contract name";
    DuplicateReserved = "C0109", Warning, "a reserved id or name is listed twice";
    // Types.
    InvalidDecimal = "C0200", Error, "decimal precision or scale out of range";
    FormatOnNonTimestamp = "C0201", Error, "`format` on a type that is not `timestamp`";
    InvalidTimestampFormat = "C0202", Error, "a timestamp format contractc cannot parse identically on every engine";
    MissingNestedType = "C0203", Error, "a list, map or struct without its element, key/value or member fields";
    MisplacedNestedType = "C0204", Error, "`items`, `keys`, `values` or `fields` on a type that has none";
    MapKeyNotString = "C0205", Error, "map keys must be strings (JSON object keys)";
    // Rules.
    RuleNotApplicable = "C0300", Error, "a rule that does not apply to the field's type";
    MinAboveMax = "C0301", Error, "`min` is greater than `max`";
    MinLengthAboveMaxLength = "C0302", Error, "`min_length` is greater than `max_length`";
    InvalidPattern = "C0303", Error, "a pattern that is not a valid regular expression";
    EmptyOneOf = "C0304", Error, "`one_of` lists no values";
    OneOfTypeMismatch = "C0305", Error, "a `one_of` value of another type than the field";
    DuplicateOneOf = "C0306", Warning, "a `one_of` value listed twice";
    ImpossibleRule = "C0307", Error, "rules no value can satisfy";
    EmptyTimeWindow = "C0308", Error, "`not_before` lies after `not_after`: no timestamp passes";
    InvalidDuration = "C0309", Error, "a duration that cannot be parsed";
    BoundOutOfRange = "C0310", Error, "a bound outside what the field's type can hold";
    RuleShape = "C0311", Error, "a rule entry must name exactly one rule";
    DuplicateRule = "C0312", Error, "the same rule kind twice on one field";
    NegativeLength = "C0313", Error, "a length bound below zero";
    RedundantRule = "C0314", Warning, "a rule that can never fail";
    // Variants.
    UnknownDiscriminator = "C0400", Error, "the discriminator is not an envelope field";
    UnsuitableDiscriminator = "C0401", Error, "the discriminator must be a required string field";
    VariantShadowsField = "C0402", Error, "a variant field has the name of an envelope or enrichment field";
    ConflictingVariantField = "C0403", Error, "two variants define the same field differently";
    UnknownRequiredField = "C0404", Error, "a variant requires a field the envelope does not have";
    UnknownRuleTarget = "C0405", Error, "variant rules for a field the envelope does not have";
    VariantIdentCollision = "C0406", Error, "two variant names map to the same generated identifier";
    DiscriminatorOneOf = "C0407", Error, "the discriminator has its own `one_of`: the variant cases already list the values";
    RequireAlreadyRequired = "C0408", Warning, "a variant requires a field that is always required";
    // Table.
    UnknownPartitionField = "C0500", Error, "partitioning on a column the table does not have";
    UnsuitablePartition = "C0501", Error, "a partition transform that does not apply to the column's type";
    DuplicatePartition = "C0502", Error, "the same partition field twice";
    UnknownSortField = "C0503", Error, "sorting on a column the table does not have or cannot order";
    UnsuitableKey = "C0504", Error, "an upsert key column that is unknown, optional or of an unsuitable type";
    WriteModeShape = "C0505", Error, "`key`/`latest_by` do not fit the write mode";
    UnsuitableLatestBy = "C0506", Error, "`latest_by` names a column that is unknown or cannot be ordered";
    DuplicateTable = "C0507", Error, "two contracts write the same table";
    InvalidTransformParameter = "C0508", Error, "a bucket count or truncate width that is zero or too large";
    ReservedTableProperty = "C0509", Error, "a table property contractc sets itself";
    // Ingest.
    InvalidRoute = "C0600", Error, "an ingest route that is not a plain absolute HTTP path";
    DuplicateRoute = "C0601", Error, "two routes with the same path";
    BodyLimitOutOfRange = "C0602", Error, "`max_body_bytes` outside 1..=10485760 (API Gateway's limit)";
    InvalidIssuer = "C0603", Error, "an issuer that is neither `dev` nor an http(s) URL";
    EmptyScopes = "C0604", Error, "no scope would ever be allowed";
    EmptyAudience = "C0605", Error, "an empty audience";
    BatchLimitOutOfRange = "C0606", Error, "`max_batch_events` outside 1..=100000";
    UnsuitableDedupId = "C0607", Error, "a deduplication id that is not a top-level `uuid` field";
    DedupWindowOutOfRange = "C0608", Error, "a deduplication window outside 1m..=7d";
    // Enrichment.
    UnknownEnrichmentSource = "C0700", Error, "an enrichment source the runtime does not provide";
    EnrichmentCollision = "C0701", Error, "an enrichment column with the name of a field";
    // Versions: releases and migrations.
    UncoveredBreak = "C0800", Error, "a change between two supported versions that no migration step covers";
    VersionNotReleased = "C0801", Error, "a version named in `versions` that is neither released nor current";
    ReleaseMismatch = "C0802", Error, "a release file that is not an earlier version of its contract";
    InvalidMigrationStep = "C0803", Error, "a migration step naming a field it cannot apply to";
    // Personal data: `pii` and `privacy`.
    UnsuitablePii = "C0900", Error, "a `pii` handling that does not apply to the field";
    PiiInTableLayout = "C0901", Error, "a partition, key or discriminator column that is not stored as sent";
    UnsuitableSubject = "C0902", Error, "`privacy.subject` names no column that identifies a person";
    NoDataSubject = "C0903", Warning, "personal data, but no column names the data subject";
    // Quality alerts: `quality.alerts`.
    AlertThreshold = "C1000", Error, "an alert threshold that does not fit its condition";
    AlertWindow = "C1001", Error, "an alert window that is not whole minutes from 1m to 24h";
    DuplicateAlert = "C1002", Error, "two alerts of one contract with the same name";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A span in a file with an optional message.
#[derive(Debug, Clone)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub file: Option<Arc<SourceFile>>,
    pub primary: Option<Label>,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            file: None,
            primary: None,
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn in_file(mut self, file: &Arc<SourceFile>) -> Self {
        self.file = Some(Arc::clone(file));
        self
    }

    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.primary = Some(Label {
            span,
            message: label.into(),
        });
        self
    }

    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: label.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders like rustc: header with code, `--> file:line:col`, the source line with a caret
    /// under the offending token, then `help:` and `note:` lines.
    pub fn render(&self, color: bool) -> String {
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let mut group =
            Group::with_title(level.primary_title(&self.message).id(self.code.as_str()));
        if let Some(file) = &self.file {
            let mut snippet = Snippet::source(file.text.as_str()).path(file.name.as_str());
            if let Some(primary) = &self.primary {
                let span = clamp(file, primary.span);
                snippet = snippet.annotation(
                    AnnotationKind::Primary
                        .span(span)
                        .label(primary.message.as_str()),
                );
            }
            for label in &self.secondary {
                let span = clamp(file, label.span);
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(span)
                        .label(label.message.as_str()),
                );
            }
            if self.primary.is_some() || !self.secondary.is_empty() {
                group = group.element(snippet);
            }
        }
        let mut report = vec![group];
        if let Some(help) = &self.help {
            report.push(Group::with_title(
                Level::HELP.secondary_title(help.as_str()),
            ));
        }
        for note in &self.notes {
            report.push(Group::with_title(
                Level::NOTE.secondary_title(note.as_str()),
            ));
        }
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut text = renderer.render(&report);
        if self.primary.is_none() {
            // Without a snippet annotate-snippets prints no location: say which file it was.
            if let Some(file) = &self.file {
                text.push_str(&format!("\n  --> {}", file.name));
            }
        }
        text
    }

    /// A machine-readable form for `--format json`.
    pub fn to_json(&self) -> serde_json::Value {
        let location = |label: &Label, file: &SourceFile| {
            let span = clamp(file, label.span);
            let start = file.line_col(span.start);
            let end = file.line_col(span.end);
            serde_json::json!({
                "byte_start": span.start,
                "byte_end": span.end,
                "line": start.line,
                "column": start.column,
                "end_line": end.line,
                "end_column": end.column,
                "label": label.message,
                "source_line": file.line_text(start.line),
            })
        };
        let file = self.file.as_deref();
        serde_json::json!({
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": file.map(|f| f.name.clone()),
            "primary": match (file, &self.primary) {
                (Some(file), Some(label)) => location(label, file),
                _ => serde_json::Value::Null,
            },
            "secondary": match file {
                Some(file) => self.secondary.iter().map(|l| location(l, file)).collect(),
                None => Vec::new(),
            },
            "help": self.help,
            "notes": self.notes,
        })
    }
}

fn clamp(file: &SourceFile, span: Span) -> std::ops::Range<usize> {
    let start = file.clamp(span.start);
    let end = file.clamp(span.end).max(start);
    start..end
}

/// Sorts diagnostics by file, then position, so output is stable whatever order checks ran in.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            (
                d.file.as_ref().map(|f| f.name.clone()),
                d.primary.as_ref().map(|l| l.span.start),
                d.code,
            )
        };
        key(a).cmp(&key(b))
    });
}
