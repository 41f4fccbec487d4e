//! The contract's schema as plain data: fields, types, rules, variants, table and ingest
//! settings. The compiler's checked IR is built from these types, and generated validators
//! carry them in their manifest, so compiler and runtime speak one vocabulary.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// Iceberg field id, unique across the whole table schema (nested ones included).
    pub id: u32,
    pub ty: Type,
    pub required: bool,
    pub description: Option<String>,
    pub pii: Pii,
    pub rules: Vec<Rule>,
}

/// How a column's personal data is stored (`pii:` in a contract, #23). Every engine applies
/// it the same way before a value reaches a table: `serve` when it commits, the Glue job when
/// it writes (docs/privacy.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pii {
    /// Not personal data.
    #[default]
    No,
    /// Personal data stored as sent (`pii: true` or `keep`): hidden on the console, erased
    /// with its data subject.
    Keep,
    /// Stored masked (a string): every character but the last four becomes `*`, all of them
    /// in a value shorter than eight characters.
    Mask,
    /// Stored as the lowercase hex HMAC-SHA256 of the value under the deployment's key (a
    /// string): the same player gives the same value, so joins still work, and nobody without
    /// the key can test a guess.
    Hash,
    /// Judged, never stored: the column stays (optional, always null), so its id stays taken.
    Drop,
}

impl Pii {
    /// Whether the value is personal data at all.
    pub fn is_personal(self) -> bool {
        self != Pii::No
    }

    /// Whether the stored value differs from the one sent.
    pub fn rewrites(self) -> bool {
        matches!(self, Pii::Mask | Pii::Hash | Pii::Drop)
    }

    /// As written in a contract.
    pub fn spelling(self) -> &'static str {
        match self {
            Pii::No => "false",
            Pii::Keep => "keep",
            Pii::Mask => "mask",
            Pii::Hash => "hash",
            Pii::Drop => "drop",
        }
    }
}

/// A list element or a map key/value.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub id: u32,
    pub ty: Type,
    pub required: bool,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    String,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    /// 1 <= precision <= 38, scale <= precision.
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// No zone; parsed with `format`.
    Timestamp {
        format: TimestampFormat,
    },
    /// RFC 3339 with an offset; stored in UTC.
    TimestampTz,
    Uuid,
    List(Box<Element>),
    /// Keys are strings (JSON object keys).
    Map {
        key: Box<Element>,
        value: Box<Element>,
    },
    Struct(Vec<Field>),
}

impl Type {
    pub fn is_primitive(&self) -> bool {
        !matches!(self, Type::List(_) | Type::Map { .. } | Type::Struct(_))
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Type::Int | Type::Long | Type::Float | Type::Double | Type::Decimal { .. }
        )
    }

    pub fn is_temporal(&self) -> bool {
        matches!(
            self,
            Type::Date | Type::Timestamp { .. } | Type::TimestampTz
        )
    }

    /// The spelling with an article, for messages: "an int", "a string".
    pub fn with_article(&self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    /// The contract-language spelling, e.g. `decimal(12,2)`.
    pub fn name(&self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Boolean => "boolean".into(),
            Type::Int => "int".into(),
            Type::Long => "long".into(),
            Type::Float => "float".into(),
            Type::Double => "double".into(),
            Type::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            Type::Date => "date".into(),
            Type::Timestamp { .. } => "timestamp".into(),
            Type::TimestampTz => "timestamptz".into(),
            Type::Uuid => "uuid".into(),
            Type::List(_) => "list".into(),
            Type::Map { .. } => "map".into(),
            Type::Struct(_) => "struct".into(),
        }
    }
}

/// A `timestamp` input format: a strftime subset every engine parses the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampFormat {
    /// As written, e.g. `%Y-%m-%d %H:%M:%S`.
    pub pattern: String,
    pub items: Vec<FormatItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatItem {
    Literal(String),
    /// `%Y`: four digits.
    Year,
    /// `%m`: two digits.
    Month,
    /// `%d`: two digits.
    Day,
    /// `%H`: two digits, 00-23.
    Hour,
    /// `%M`: two digits.
    Minute,
    /// `%S`: two digits, 00-59 (no leap seconds: Spark cannot represent them).
    Second,
    /// `%.f`: optional `.` and 1-9 fraction digits.
    Fraction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Policy {
    /// The event is refused (400) and kept in the quarantine table.
    Reject,
    /// The event is acknowledged but lands in the quarantine table, not the events table.
    Quarantine,
    /// The event is accepted; the violation is counted and logged.
    Warn,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Reject => "reject",
            Policy::Quarantine => "quarantine",
            Policy::Warn => "warn",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub policy: Policy,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Inclusive lower bound (numbers).
    Min(Bound),
    /// Inclusive upper bound (numbers).
    Max(Bound),
    /// Characters of a string, items of a list, entries of a map.
    MinLength(u64),
    MaxLength(u64),
    /// Full-match: the whole value must match (`^(?:pattern)$` with no multi-line mode).
    Pattern(String),
    /// Values of the field's type (strings, or integers for int/long).
    OneOf(Vec<Literal>),
    /// value >= ingest_time + offset - skew
    NotBefore(TimeBound),
    /// value <= ingest_time + offset + skew
    NotAfter(TimeBound),
}

impl RuleKind {
    /// The rule's key in the contract language, also the suffix of its violation code.
    pub fn key(&self) -> &'static str {
        match self {
            RuleKind::Min(_) => "min",
            RuleKind::Max(_) => "max",
            RuleKind::MinLength(_) => "min_length",
            RuleKind::MaxLength(_) => "max_length",
            RuleKind::Pattern(_) => "pattern",
            RuleKind::OneOf(_) => "one_of",
            RuleKind::NotBefore(_) => "not_before",
            RuleKind::NotAfter(_) => "not_after",
        }
    }
}

/// A numeric bound as written: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Int(i64),
    Float(f64),
}

/// As written: `10`, `0.5`.
impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Int(i) => write!(f, "{i}"),
            Bound::Float(x) => write!(f, "{x}"),
        }
    }
}

impl Bound {
    pub fn as_f64(self) -> f64 {
        match self {
            Bound::Int(i) => i as f64,
            Bound::Float(f) => f,
        }
    }

    /// The bound of a decimal at `scale` as an unscaled integer: rounded up for a minimum and
    /// down for a maximum, so comparing unscaled integers means exactly what the written bound
    /// means (every engine compares decimals this way).
    pub fn unscaled(self, scale: u8, is_min: bool) -> i128 {
        match self {
            Bound::Int(i) => i128::from(i) * 10i128.pow(u32::from(scale)),
            Bound::Float(f) => {
                let scaled = f * 10f64.powi(i32::from(scale));
                // A bound written with at most `scale` digits is exact up to float noise.
                if (scaled - scaled.round()).abs() < 1e-6 {
                    scaled.round() as i128
                } else if is_min {
                    scaled.ceil() as i128
                } else {
                    scaled.floor() as i128
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Literal {
    String(String),
    Int(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBound {
    /// Signed offset from ingest time, in seconds.
    pub offset_seconds: i64,
    /// Tolerance for clock skew, in seconds.
    pub skew_seconds: u64,
}

impl TimeBound {
    /// The earliest allowed time, as an offset from ingest time: `offset - skew`.
    pub fn earliest_offset(self) -> i64 {
        self.offset_seconds - self.skew_seconds as i64
    }

    /// The latest allowed time, as an offset from ingest time: `offset + skew`.
    pub fn latest_offset(self) -> i64 {
        self.offset_seconds + self.skew_seconds as i64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variants {
    /// An envelope field of type string, required.
    pub discriminator: String,
    pub cases: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The discriminator value, e.g. `End Game`.
    pub value: String,
    /// A CamelCase identifier derived from `value`, unique among the cases.
    pub ident: String,
    pub description: Option<String>,
    /// Payload fields; names and ids never clash with the envelope's or other variants'
    /// (a field shared by several variants is identical in each).
    pub fields: Vec<Field>,
    /// Optional envelope fields this variant requires.
    pub require: Vec<String>,
    /// Extra rules on envelope fields, by field name (in envelope order).
    pub rules: Vec<(String, Vec<Rule>)>,
}

impl Variant {
    /// The variant's own rules on the envelope field `name` (judged beside the field's).
    pub fn rules_for(&self, name: &str) -> &[Rule] {
        self.rules
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, rules)| rules.as_slice())
    }
}

/// One field of an event shape as every engine judges it: the envelope's fields, then (under a
/// variant) the variant's payload fields.
#[derive(Debug, Clone, Copy)]
pub struct ShapeField<'a> {
    pub field: &'a Field,
    /// Required in this shape: declared required, or an envelope field the variant requires.
    pub required: bool,
    /// The variant's own rules on this envelope field (none for payload fields).
    pub variant_rules: &'a [Rule],
    /// The variant the shape is of, when this field is required because of it (a payload field
    /// or an envelope field in its `require`): its absence is "required for variant".
    pub required_by: Option<&'a Variant>,
}

impl<'a> ShapeField<'a> {
    /// The field's rules, then the variant's for it.
    pub fn rules(&self) -> impl Iterator<Item = &'a Rule> + use<'a> {
        self.field.rules.iter().chain(self.variant_rules)
    }
}

/// The fields of the event shape `variant` (or of the only shape, without variants), in order:
/// the one definition of "required in this variant".
pub fn shape_fields<'a>(
    envelope: &'a [Field],
    variant: Option<&'a Variant>,
) -> Vec<ShapeField<'a>> {
    let mut fields: Vec<ShapeField<'a>> = envelope
        .iter()
        .map(|f| {
            let required_by = variant.filter(|v| !f.required && v.require.contains(&f.name));
            ShapeField {
                field: f,
                required: f.required || required_by.is_some(),
                variant_rules: variant.map_or(&[], |v| v.rules_for(&f.name)),
                required_by,
            }
        })
        .collect();
    if let Some(v) = variant {
        fields.extend(v.fields.iter().map(|f| ShapeField {
            field: f,
            required: f.required,
            variant_rules: &[],
            required_by: f.required.then_some(v),
        }));
    }
    fields
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub database: String,
    pub name: String,
    pub partition: Vec<PartitionField>,
    pub sort: Vec<SortField>,
    pub write: WriteMode,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionField {
    /// A top-level column (field, variant field or enrichment).
    pub source: String,
    pub source_id: u32,
    pub transform: Transform,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    Identity,
    Year,
    Month,
    Day,
    Hour,
    Bucket(u32),
    Truncate(u32),
}

impl Transform {
    /// Iceberg's spelling: `identity`, `day`, `bucket[16]`.
    pub fn iceberg_name(self) -> String {
        match self {
            Transform::Identity => "identity".into(),
            Transform::Year => "year".into(),
            Transform::Month => "month".into(),
            Transform::Day => "day".into(),
            Transform::Hour => "hour".into(),
            Transform::Bucket(n) => format!("bucket[{n}]"),
            Transform::Truncate(w) => format!("truncate[{w}]"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortField {
    pub source: String,
    pub source_id: u32,
    pub descending: bool,
    pub nulls_first: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteMode {
    Append,
    /// Keep one row per key: the latest by `latest_by` (or the last received).
    Upsert {
        key: Vec<String>,
        latest_by: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ingest {
    pub route: String,
    pub batch_route: Option<String>,
    pub max_body_bytes: u64,
    /// Most events one batch request may carry.
    pub max_batch_events: u64,
    pub unknown_fields: UnknownFields,
    pub auth: Auth,
    /// Events carrying an id the runtime has stored within the window are duplicates (#21).
    pub dedup: Option<Dedup>,
}

/// Deduplication: an event whose `field` holds an id already stored within `window_seconds`
/// is a duplicate of that event (a client's retry), answered as it was and stored once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    /// The top-level `uuid` field holding the event's id (the generated clients fill it).
    pub field: String,
    pub window_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownFields {
    Reject,
    Quarantine,
    Warn,
    /// Silently dropped, as the reference does.
    Drop,
}

impl UnknownFields {
    /// Whether an event with an unknown field is kept out of the events table (refused or
    /// quarantined), rather than stored without it or with a warning.
    pub fn keeps_out(self) -> bool {
        matches!(self, UnknownFields::Reject | UnknownFields::Quarantine)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub issuer: Issuer,
    pub jwks_url: Option<String>,
    pub audience: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// The runtime's built-in development identity provider.
    Dev,
    /// An external issuer base URL (no trailing slash).
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    pub name: String,
    pub id: u32,
    pub source: EnrichmentSource,
    pub description: Option<String>,
    /// How the value is stored; only token claims (`jwt.sub`, `jwt.<claim>`) may be personal.
    pub pii: Pii,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrichmentSource {
    /// When the runtime received the event (timestamptz).
    IngestTime,
    /// The contract's semantic version (string).
    ContractVersion,
    /// A unique id per HTTP request (string).
    RequestId,
    /// The JWT `sub` claim (string).
    JwtSub,
    /// Another string claim of the JWT.
    JwtClaim(String),
    /// The contract version the client was generated from (its `X-Contract-Version` header):
    /// which build produced an event. The client's word, not checked.
    ClientContractVersion,
}

impl Enrichment {
    pub fn ty(&self) -> Type {
        match self.source {
            EnrichmentSource::IngestTime => Type::TimestampTz,
            _ => Type::String,
        }
    }
}

impl EnrichmentSource {
    /// As written in a contract: `ingest_time`, `jwt.sub`, `jwt.team`.
    pub fn spelling(&self) -> String {
        match self {
            EnrichmentSource::IngestTime => "ingest_time".into(),
            EnrichmentSource::ContractVersion => "contract_version".into(),
            EnrichmentSource::RequestId => "request_id".into(),
            EnrichmentSource::JwtSub => "jwt.sub".into(),
            EnrichmentSource::JwtClaim(claim) => format!("jwt.{claim}"),
            EnrichmentSource::ClientContractVersion => "client_contract_version".into(),
        }
    }
}

impl Field {
    /// The column doc: the description, marked `[PII]` when the field is personal data.
    pub fn doc(&self) -> Option<String> {
        pii_doc(self.description.as_deref(), self.pii)
    }
}

/// A column doc marked with how its personal data is stored: `[PII]` for a value kept as
/// sent, `[PII: hash]` (`mask`, `drop`) for one stored otherwise.
pub fn pii_doc(description: Option<&str>, pii: Pii) -> Option<String> {
    let mark = match pii {
        Pii::No => return description.map(str::to_string),
        Pii::Keep => "[PII]".to_string(),
        other => format!("[PII: {}]", other.spelling()),
    };
    match description {
        Some(d) => Some(format!("{d} {mark}")),
        None => Some(mark),
    }
}

/// The inclusive numeric bounds of `min` / `max` rules, if any.
pub fn numeric_bounds(rules: &[Rule]) -> (Option<Bound>, Option<Bound>) {
    let lo = rules.iter().find_map(|r| match r.kind {
        RuleKind::Min(b) => Some(b),
        _ => None,
    });
    let hi = rules.iter().find_map(|r| match r.kind {
        RuleKind::Max(b) => Some(b),
        _ => None,
    });
    (lo, hi)
}

/// The `[earliest, latest]` seconds that `not_before` / `not_after` rules allow for an ingest
/// time of `now` (seconds), skew included; `None` where a side is unbounded.
pub fn time_window(rules: &[Rule], now: i64) -> (Option<i64>, Option<i64>) {
    let lo = rules.iter().find_map(|r| match r.kind {
        RuleKind::NotBefore(t) => Some(now + t.earliest_offset()),
        _ => None,
    });
    let hi = rules.iter().find_map(|r| match r.kind {
        RuleKind::NotAfter(t) => Some(now + t.latest_offset()),
        _ => None,
    });
    (lo, hi)
}

/// The values of a `one_of` rule, if any.
pub fn one_of(rules: &[Rule]) -> Option<&[Literal]> {
    rules.iter().find_map(|r| match &r.kind {
        RuleKind::OneOf(values) => Some(values.as_slice()),
        _ => None,
    })
}

/// The inclusive `min_length` / `max_length` of a string, list or map, if any.
pub fn length_bounds(rules: &[Rule]) -> (Option<u64>, Option<u64>) {
    let lo = rules.iter().find_map(|r| match r.kind {
        RuleKind::MinLength(n) => Some(n),
        _ => None,
    });
    let hi = rules.iter().find_map(|r| match r.kind {
        RuleKind::MaxLength(n) => Some(n),
        _ => None,
    });
    (lo, hi)
}

/// The `pattern` rule's regular expression, if any.
pub fn pattern(rules: &[Rule]) -> Option<&str> {
    rules.iter().find_map(|r| match &r.kind {
        RuleKind::Pattern(p) => Some(p.as_str()),
        _ => None,
    })
}
