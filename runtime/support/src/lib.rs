//! Support library for the validators `contractc build` generates.
//!
//! Generated code stays small and readable by calling into this crate for everything that is
//! the same across contracts: walking parsed JSON, reading typed values leniently (a wrong type
//! is a violation, never an early exit, so every violation is reported), timestamps, decimals,
//! violations and verdicts. It also re-exports the crates generated code uses, so their versions
//! are pinned in one place.

pub mod decimal;
pub mod json;
pub mod read;
pub mod time;

pub use contract_manifest::{self as manifest, Manifest};

pub use arrow_array;
pub use arrow_buffer;
pub use arrow_schema;
pub use regex;
pub use simd_json;

use serde::Serialize;

/// What a violation does, from mildest to strictest. When an event breaks several rules, the
/// strictest policy decides its fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Accepted; the violation is counted and logged.
    Warn,
    /// Acknowledged, but written to the quarantine table instead of the events table.
    Quarantine,
    /// Refused (400) and written to the quarantine table.
    Reject,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Warn => "warn",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

/// Stable violation codes. Rule codes match the rule keys of the contract language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The body is not valid JSON.
    InvalidJson,
    /// A required field is absent.
    Missing,
    /// A value of the wrong JSON type (including the body not being an object).
    WrongType,
    /// A key the contract does not declare (for this variant).
    UnknownField,
    /// The same key twice in one object.
    DuplicateField,
    /// A number that does not fit the field's type.
    OutOfRange,
    /// A string that is not a valid timestamp, date, uuid or decimal.
    InvalidFormat,
    Min,
    Max,
    MinLength,
    MaxLength,
    Pattern,
    OneOf,
    NotBefore,
    NotAfter,
    /// An event larger than the contract's `max_body_bytes` (inside a batch).
    TooLarge,
    /// The client declares a contract version this build does not know (`X-Contract-Version`).
    UnknownVersion,
    /// The client declares a released version that is retired (kept in quarantine).
    RetiredVersion,
}

impl Code {
    pub const ALL: &[Code] = &[
        Code::InvalidJson,
        Code::Missing,
        Code::WrongType,
        Code::UnknownField,
        Code::DuplicateField,
        Code::OutOfRange,
        Code::InvalidFormat,
        Code::Min,
        Code::Max,
        Code::MinLength,
        Code::MaxLength,
        Code::Pattern,
        Code::OneOf,
        Code::NotBefore,
        Code::NotAfter,
        Code::TooLarge,
        Code::UnknownVersion,
        Code::RetiredVersion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidJson => "invalid_json",
            Code::Missing => "missing",
            Code::WrongType => "wrong_type",
            Code::UnknownField => "unknown_field",
            Code::DuplicateField => "duplicate_field",
            Code::OutOfRange => "out_of_range",
            Code::InvalidFormat => "invalid_format",
            Code::Min => "min",
            Code::Max => "max",
            Code::MinLength => "min_length",
            Code::MaxLength => "max_length",
            Code::Pattern => "pattern",
            Code::OneOf => "one_of",
            Code::NotBefore => "not_before",
            Code::NotAfter => "not_after",
            Code::TooLarge => "too_large",
            Code::UnknownVersion => "unknown_version",
            Code::RetiredVersion => "retired_version",
        }
    }

    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule: what, where (a JSONPath such as `$.players[2].skill`) and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub code: Code,
    pub path: String,
    pub policy: Policy,
    pub message: String,
}

/// The fate of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Quarantine,
    Reject,
}

impl Verdict {
    /// `accept`, `quarantine` or `reject`: as in metrics, answers and the quarantine table.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Quarantine => "quarantine",
            Verdict::Reject => "reject",
        }
    }
}

/// A validator's answer: the typed event when the input had the contract's shape, and every
/// violation found (warnings included).
#[derive(Debug, Clone)]
pub struct Outcome<E> {
    pub event: Option<E>,
    pub violations: Vec<Violation>,
}

impl<E> Outcome<E> {
    pub fn verdict(&self) -> Verdict {
        match self.violations.iter().map(|v| v.policy).max() {
            None | Some(Policy::Warn) if self.event.is_some() => Verdict::Accept,
            Some(Policy::Quarantine) => Verdict::Quarantine,
            _ => Verdict::Reject,
        }
    }

    /// The event, only if it is to be written to the events table.
    pub fn accepted(&self) -> Option<&E> {
        (self.verdict() == Verdict::Accept)
            .then_some(self.event.as_ref())
            .flatten()
    }
}

/// What a validator needs to know besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// When the event was received, in microseconds since the Unix epoch (UTC): the reference
    /// point of `not_before` / `not_after` rules.
    pub ingest_time_micros: i64,
}

impl Context {
    pub fn now() -> Self {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        Context {
            ingest_time_micros: micros,
        }
    }
}

/// Values the runtime fills into enrichment columns.
#[derive(Debug, Clone, Default)]
pub struct Enrichment<'a> {
    pub ingest_time_micros: i64,
    pub contract_version: &'a str,
    pub request_id: &'a str,
    /// The JWT's `sub`, when the request was authenticated.
    pub jwt_sub: Option<&'a str>,
    /// Other string claims of the JWT, by name.
    pub jwt_claims: &'a [(&'a str, &'a str)],
    /// The client's `X-Contract-Version` header, when it sent one.
    pub client_contract_version: Option<&'a str>,
}

impl<'a> Enrichment<'a> {
    pub fn claim(&self, name: &str) -> Option<&'a str> {
        self.jwt_claims
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

/// Collects violations while a validator walks an event, with the current JSON path.
#[derive(Debug, Default)]
pub struct Collector {
    path: Vec<Segment>,
    pub violations: Vec<Violation>,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Collector {
    pub fn new() -> Self {
        Collector::default()
    }

    pub fn enter_key(&mut self, key: &str) {
        self.path.push(Segment::Key(key.to_string()));
    }

    pub fn enter_index(&mut self, index: usize) {
        self.path.push(Segment::Index(index));
    }

    pub fn leave(&mut self) {
        self.path.pop();
    }

    /// The JSONPath of `field` under the current position (`None`: the current position).
    pub fn path_of(&self, field: Option<&str>) -> String {
        let mut path = String::from("$");
        let push_key = |path: &mut String, key: &str| {
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                path.push('.');
                path.push_str(key);
            } else {
                path.push('[');
                path.push_str(&serde_json_string(key));
                path.push(']');
            }
        };
        for segment in &self.path {
            match segment {
                Segment::Key(k) => push_key(&mut path, k),
                Segment::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        if let Some(field) = field {
            push_key(&mut path, field);
        }
        path
    }

    pub fn report(
        &mut self,
        code: Code,
        field: Option<&str>,
        policy: Policy,
        message: impl Into<String>,
    ) {
        let path = self.path_of(field);
        self.violations.push(Violation {
            code,
            path,
            policy,
            message: message.into(),
        });
    }

    pub fn has_rejections(&self) -> bool {
        self.violations.iter().any(|v| v.policy == Policy::Reject)
    }
}

/// A JSON string literal for `text` (used in paths for keys that are not identifiers).
fn serde_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Iceberg field-id metadata for an Arrow field (what `iceberg::arrow` and Parquet read).
pub fn field_id_metadata(id: i32) -> std::collections::HashMap<String, String> {
    std::iter::once(("PARQUET:field_id".to_string(), id.to_string())).collect()
}

/// A generated contract: its manifest, its Arrow schema, and its validator bound to the batch
/// type that buffers its accepted events. The batch is an associated type, so a contract can
/// only ever be given its own batch: there is no downcast that could fail and drop a row.
pub trait Contract: Send + Sync + 'static {
    type Batch: EventBatch;
    fn manifest(&self) -> &'static Manifest;
    /// The events table as Arrow, with Iceberg field ids.
    fn arrow_schema(&self) -> arrow_schema::Schema;
    fn new_batch(&self) -> Self::Batch;
    /// Validates one event; when it is accepted and `batch` is given, appends it with
    /// `enrichment`.
    fn validate_into(
        &self,
        parser: &mut json::Parser,
        bytes: &[u8],
        ctx: &Context,
        enrichment: &Enrichment<'_>,
        batch: Option<&mut Self::Batch>,
    ) -> (Verdict, Vec<Violation>);
    /// The validators of the contract's supported released versions (#20), oldest first: an
    /// event whose client declares one is judged by it, then upcast to this version.
    fn releases(&self) -> &'static [&'static dyn AnyContract] {
        &[]
    }
}

/// Accepted events of one contract, as Arrow columns.
pub trait EventBatch: Send + 'static {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows so far as one batch; the builder starts empty again.
    fn finish(&mut self) -> arrow_array::RecordBatch;
}

/// A contract seen without its event type, as the runtime holds every generated contract.
/// Implemented for every [`Contract`].
pub trait AnyContract: Send + Sync + 'static {
    fn manifest(&self) -> &'static Manifest;
    fn arrow_schema(&self) -> arrow_schema::Schema;
    /// Judges one event without buffering it.
    fn judge(
        &self,
        parser: &mut json::Parser,
        bytes: &[u8],
        ctx: &Context,
    ) -> (Verdict, Vec<Violation>);
    /// A buffer of accepted events that validates into itself.
    fn event_buffer(&'static self) -> Box<dyn EventBuffer>;
    /// See [`Contract::releases`].
    fn releases(&self) -> &'static [&'static dyn AnyContract];
}

/// Validates events of one contract and keeps the accepted ones as Arrow rows.
pub trait EventBuffer: Send {
    /// Validates one event and, when it is accepted, appends it with `enrichment`.
    fn validate_into(
        &mut self,
        parser: &mut json::Parser,
        bytes: &[u8],
        ctx: &Context,
        enrichment: &Enrichment<'_>,
    ) -> (Verdict, Vec<Violation>);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The rows so far as one batch; the buffer starts empty again.
    fn finish(&mut self) -> arrow_array::RecordBatch;
}

impl<C: Contract> AnyContract for C {
    fn manifest(&self) -> &'static Manifest {
        Contract::manifest(self)
    }

    fn arrow_schema(&self) -> arrow_schema::Schema {
        Contract::arrow_schema(self)
    }

    fn judge(
        &self,
        parser: &mut json::Parser,
        bytes: &[u8],
        ctx: &Context,
    ) -> (Verdict, Vec<Violation>) {
        self.validate_into(parser, bytes, ctx, &Enrichment::default(), None)
    }

    fn releases(&self) -> &'static [&'static dyn AnyContract] {
        Contract::releases(self)
    }

    fn event_buffer(&'static self) -> Box<dyn EventBuffer> {
        Box::new(TypedBuffer {
            contract: self,
            batch: self.new_batch(),
        })
    }
}

/// A contract paired with its own batch type.
struct TypedBuffer<C: Contract> {
    contract: &'static C,
    batch: C::Batch,
}

impl<C: Contract> EventBuffer for TypedBuffer<C> {
    fn validate_into(
        &mut self,
        parser: &mut json::Parser,
        bytes: &[u8],
        ctx: &Context,
        enrichment: &Enrichment<'_>,
    ) -> (Verdict, Vec<Violation>) {
        self.contract
            .validate_into(parser, bytes, ctx, enrichment, Some(&mut self.batch))
    }

    fn len(&self) -> usize {
        self.batch.len()
    }

    fn finish(&mut self) -> arrow_array::RecordBatch {
        self.batch.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_keys_that_are_not_identifiers() {
        let mut cx = Collector::new();
        cx.enter_key("players");
        cx.enter_index(2);
        assert_eq!(cx.path_of(Some("skill")), "$.players[2].skill");
        cx.leave();
        cx.leave();
        cx.enter_key("scores");
        assert_eq!(cx.path_of(Some("a \"b\"")), "$.scores[\"a \\\"b\\\"\"]");
    }

    #[test]
    fn strictest_policy_decides() {
        let v = |policy| Violation {
            code: Code::Max,
            path: "$".into(),
            policy,
            message: String::new(),
        };
        let accept = Outcome {
            event: Some(()),
            violations: vec![v(Policy::Warn)],
        };
        assert_eq!(accept.verdict(), Verdict::Accept);
        let quarantine = Outcome {
            event: Some(()),
            violations: vec![v(Policy::Warn), v(Policy::Quarantine)],
        };
        assert_eq!(quarantine.verdict(), Verdict::Quarantine);
        let reject = Outcome {
            event: Some(()),
            violations: vec![v(Policy::Reject), v(Policy::Quarantine)],
        };
        assert_eq!(reject.verdict(), Verdict::Reject);
        let unparsed: Outcome<()> = Outcome {
            event: None,
            violations: vec![],
        };
        assert_eq!(unparsed.verdict(), Verdict::Reject);
    }

    #[test]
    fn codes_round_trip() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
        }
    }
}
