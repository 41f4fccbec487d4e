//! The client plan: what a generated game client of one contract must hold and check, worked
//! out once and in no language, then rendered by each client backend (TypeScript, C#, C++,
//! GDScript). A backend only decides how the plan is spelled; every decision about *what* is
//! checked, in which order, with which code, path, policy and message, and what the nested types
//! are called, is made here.
//!
//! The plan is built in one walk over the IR: event shapes (one per variant, or one), the
//! records of struct-typed fields (named once by field id, inner ones before their users), the
//! interned patterns and timestamp formats, and per value its type's checks and its rules as
//! [`Test`]s on the value a rule compares (a length, an integer, an unscaled decimal, microseconds).

use std::collections::{BTreeMap, BTreeSet};

use contract_manifest::{ShapeField, shape_fields};

use super::messages;
use crate::ir::{
    Bound, Contract, Field, Literal, Policy, Rule, RuleKind, TimestampFormat, Type, UnknownFields,
    Variant,
};

/// Type names no record (or choice) may take in any client language: a type of the same name
/// in the module's scope would stand for the runtime's, the platform's or the module's own.
const RESERVED: &[&str] = &[
    // The modules' own (every language).
    "Event",
    "CONTRACT",
    "Contract",
    "Enums",
    "Patterns",
    "Formats",
    "Policy",
    "Violation",
    // C++: `using Client = rt::Client<Event>`.
    "Client",
    // TypeScript: what a module re-exports from its runtime, and the global types its code
    // names (an interface `Date` would shadow the global one).
    "BatchError",
    "ContractClient",
    "ContractViolationError",
    "DecodeError",
    "FileStore",
    "HttpError",
    "MemoryStore",
    "BatchEventResult",
    "BatchOutcome",
    "BatchResult",
    "ClientOptions",
    "FlushResult",
    "KeyValueStore",
    "SendResult",
    "TokenProvider",
    "Array",
    "BigInt",
    "Date",
    "Error",
    "JSON",
    "Map",
    "Math",
    "Number",
    "Object",
    "Omit",
    "Partial",
    "Promise",
    "Readonly",
    "Record",
    "RegExp",
    "Set",
    "String",
    // C#: the runtime's types (the module shares its namespace, `csharp_runtime_types_are_reserved`)
    // and the .NET and Unity types and namespaces its code or the module's names unqualified.
    "Checker",
    "EventIds",
    "Rules",
    "FormatItem",
    "Timestamps",
    "JsonNumber",
    "JsonObject",
    "DecodeException",
    "Json",
    "Read",
    "Write",
    "IContractEvent",
    "ContractInfo",
    "ContractViolationException",
    "HttpException",
    "HttpAnswer",
    "IHttpTransport",
    "UnityWebRequestTransport",
    "PlayerPrefsStore",
    "HttpClientTransport",
    "IKeyValueStore",
    "ProvidedToken",
    "ITokenProvider",
    "BatchException",
    "Batches",
    "Action",
    "ArgumentOutOfRangeException",
    "CultureInfo",
    "DateTime",
    "DateTimeKind",
    "DateTimeOffset",
    "Dictionary",
    "DownloadHandlerBuffer",
    "Encoding",
    "Exception",
    "File",
    "Func",
    "Guid",
    "HashSet",
    "HttpClient",
    "HttpMethod",
    "HttpRequestMessage",
    "IDictionary",
    "IList",
    "IOException",
    "InvalidOperationException",
    "KeyValuePair",
    "List",
    "MediaTypeHeaderValue",
    "NumberStyles",
    "Path",
    "PlayerPrefs",
    "Random",
    "RandomNumberGenerator",
    "Regex",
    "RegexOptions",
    "StringBuilder",
    "StringComparison",
    "StringContent",
    "Task",
    "TaskCompletionSource",
    "TimeSpan",
    "UTF8Encoding",
    "UnityWebRequest",
    "UploadHandlerRaw",
    "Uri",
    "System",
    "UnityEngine",
    // C#: the methods of every class (inherited from `object`), of a record's class and of
    // `Enums`: inside a class, a method hides a type of its name.
    "ToString",
    "Equals",
    "GetHashCode",
    "GetType",
    "ReferenceEquals",
    "MemberwiseClone",
    "Finalize",
    "ToJson",
    "Check",
    "Decode",
    "Validate",
    "Wire",
];

/// One contract's client, as data.
pub struct ClientPlan<'c> {
    pub contract: &'c Contract,
    /// The discriminator field, for a contract with variants.
    pub discriminator: Option<&'c str>,
    /// The message for a discriminator value the contract does not declare.
    pub unknown_variant: Option<String>,
    /// Full-match patterns, numbered by first use.
    pub patterns: Vec<&'c str>,
    /// Timestamp formats, numbered by first use.
    pub formats: Vec<&'c TimestampFormat>,
    /// Records of struct-typed fields, each after the records it uses.
    pub records: Vec<Record<'c>>,
    /// The event shapes: one per variant, in declaration order, or the only one.
    pub events: Vec<Record<'c>>,
    /// String fields whose own `one_of` closes their values (a language may make them enums),
    /// named like records.
    pub choices: Vec<Choice>,
    /// Whether decoders refuse keys the contract does not declare (`unknown_fields` is not
    /// `drop`).
    pub closed: bool,
}

/// A struct type: an event shape or a struct-typed field's value.
pub struct Record<'c> {
    /// The type's name, PascalCase and unique in the module (`MatchStartEvent`, `Position`).
    pub name: String,
    /// The variant an event shape is of.
    pub variant: Option<&'c Variant>,
    pub is_event: bool,
    pub members: Vec<Member<'c>>,
    /// Whether checking it compares with the ingest time (a time rule, or a nested record).
    pub uses_now: bool,
}

/// One field of a record.
pub struct Member<'c> {
    pub field: &'c Field,
    pub required: bool,
    /// For the discriminator of a variant's shape: the variant's value (a constant, not checked).
    pub constant: Option<&'c str>,
    /// What its absence says when it is required.
    pub missing: String,
    pub value: Value<'c>,
    /// The closed set of strings it holds (an index into [`ClientPlan::choices`]).
    pub choice: Option<usize>,
    /// The contract's deduplication id on an event: made when the event is made.
    pub made_with_event: bool,
}

/// A present value of some type: what its type checks and the rules it is judged by.
pub struct Value<'c> {
    pub ty: &'c Type,
    pub kind: Kind<'c>,
    pub rules: Vec<RuleCheck<'c>>,
}

/// The type of a value as the clients check it.
pub enum Kind<'c> {
    String,
    Boolean,
    Uuid,
    Int,
    Long,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// A timestamp in [`ClientPlan::formats`]`[format]`.
    Timestamp {
        format: usize,
    },
    TimestampTz,
    List(Box<Element<'c>>),
    Map {
        key: Box<Element<'c>>,
        value: Box<Element<'c>>,
    },
    /// A value of [`ClientPlan::records`]`[index]`.
    Record(usize),
}

/// A list item, map key or map value: maybe null unless required.
pub struct Element<'c> {
    pub required: bool,
    pub value: Value<'c>,
}

/// A closed set of string values.
pub struct Choice {
    pub name: String,
    pub values: Vec<String>,
}

/// One rule on a value.
pub struct RuleCheck<'c> {
    /// The violation code (`min`, `pattern`, ...).
    pub code: &'static str,
    pub policy: Policy,
    pub message: String,
    pub test: Test<'c>,
    /// A variant's rule on an envelope field (judged beside the field's own).
    pub from_variant: bool,
}

/// When a rule is broken, on the value it compares.
pub enum Test<'c> {
    /// The number is below the limit.
    Below(Limit),
    /// The number is above the limit.
    Above(Limit),
    /// Fewer characters (strings) or items (lists, maps) than this.
    ShorterThan(u64),
    /// More characters or items than this.
    LongerThan(u64),
    /// The string does not fully match [`ClientPlan::patterns`]`[index]`.
    NoMatch(usize),
    /// The value is none of these.
    NotIn(&'c [Literal]),
    /// The time (microseconds) is before the ingest time plus this many microseconds.
    Before(i64),
    /// The time is after the ingest time plus this many microseconds.
    After(i64),
}

/// A numeric bound as the value's type compares it.
#[derive(Clone, Copy)]
pub enum Limit {
    /// An integer bound on an integer.
    Int(i64),
    /// A bound compared as a double (floats, or a fractional bound on an integer).
    Float(f64),
    /// A bound on a decimal: as written, and unscaled at the decimal's scale.
    Decimal { written: Bound, unscaled: i128 },
}

impl ClientPlan<'static> {
    /// Plans the client of `contract`.
    pub fn of(contract: &Contract) -> ClientPlan<'_> {
        Planner::new(contract).plan()
    }
}

impl<'c> ClientPlan<'c> {
    /// The field names a decoder of `record` allows, or `None` when any key is allowed.
    pub fn allowed_keys<'r>(&self, record: &'r Record<'c>) -> Option<Vec<&'r str>> {
        self.closed.then(|| {
            record
                .members
                .iter()
                .map(|m| m.field.name.as_str())
                .collect()
        })
    }
}

/// `match_started` → `MatchStarted`: any character but a letter or digit separates words, and a
/// name that would start with a digit starts with `V`.
pub fn pascal(name: &str) -> String {
    let mut out: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// Builds the plan: names, interning and the checks of each value.
struct Planner<'c> {
    contract: &'c Contract,
    patterns: Vec<&'c str>,
    formats: Vec<&'c TimestampFormat>,
    records: Vec<Record<'c>>,
    /// Records and choices by the field id they were planned for.
    record_ids: BTreeMap<u32, usize>,
    choice_ids: BTreeMap<u32, usize>,
    choices: Vec<Choice>,
    used: BTreeSet<String>,
}

impl<'c> Planner<'c> {
    fn new(contract: &'c Contract) -> Self {
        let mut used: BTreeSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
        used.insert(format!("{}Contract", pascal(&contract.name)));
        used.insert(format!("{}Event", pascal(&contract.name)));
        for case in contract.variants.iter().flat_map(|v| &v.cases) {
            used.insert(format!("{}Event", case.ident));
        }
        Planner {
            contract,
            patterns: Vec::new(),
            formats: Vec::new(),
            records: Vec::new(),
            record_ids: BTreeMap::new(),
            choice_ids: BTreeMap::new(),
            choices: Vec::new(),
            used,
        }
    }

    fn plan(mut self) -> ClientPlan<'c> {
        let c = self.contract;
        let events: Vec<Record<'c>> = match &c.variants {
            Some(variants) => variants
                .cases
                .iter()
                .map(|case| self.event(format!("{}Event", case.ident), Some(case)))
                .collect(),
            None => vec![self.event("Event".to_string(), None)],
        };
        ClientPlan {
            contract: c,
            discriminator: c.variants.as_ref().map(|v| v.discriminator.as_str()),
            unknown_variant: c
                .variants
                .as_ref()
                .map(|v| messages::unknown_variant(&v.discriminator, &v.cases)),
            patterns: self.patterns,
            formats: self.formats,
            records: self.records,
            events,
            choices: self.choices,
            closed: c.ingest.unknown_fields != UnknownFields::Drop,
        }
    }

    /// A name for a type planned for field `id`: `hint` in PascalCase, with the id when taken.
    fn unique(&mut self, hint: &str, id: u32) -> String {
        let mut name = pascal(hint);
        if self.used.contains(&name) {
            name = format!("{name}{id}");
        }
        self.used.insert(name.clone());
        name
    }

    fn event(&mut self, name: String, variant: Option<&'c Variant>) -> Record<'c> {
        let c = self.contract;
        let discriminator = c.variants.as_ref().map(|v| v.discriminator.as_str());
        let dedup = c.ingest.dedup.as_ref().map(|d| d.field.as_str());
        let members = shape_fields(&c.fields, variant)
            .into_iter()
            .map(|shape| {
                let name = Some(shape.field.name.as_str());
                let mut member = self.member(shape);
                if name == discriminator {
                    member.constant = variant.map(|v| v.value.as_str());
                }
                member.made_with_event = name == dedup;
                member
            })
            .collect();
        record(name, variant, true, members)
    }

    fn member(&mut self, shape: ShapeField<'c>) -> Member<'c> {
        let field = shape.field;
        let missing = match shape.required_by {
            Some(v) => messages::required_for_variant(&v.value),
            None => "required field is missing".to_string(),
        };
        let rules: Vec<(&'c Rule, bool)> = field
            .rules
            .iter()
            .map(|r| (r, false))
            .chain(shape.variant_rules.iter().map(|r| (r, true)))
            .collect();
        Member {
            field,
            required: shape.required,
            constant: None,
            missing,
            value: self.value(&field.ty, field.id, &field.name, &rules),
            choice: self.choice(field),
            made_with_event: false,
        }
    }

    /// The closed set of a string field's own `one_of`, named once by field id.
    fn choice(&mut self, field: &'c Field) -> Option<usize> {
        if !matches!(field.ty, Type::String) {
            return None;
        }
        let values = field.rules.iter().find_map(|r| match &r.kind {
            RuleKind::OneOf(values) => Some(values),
            _ => None,
        })?;
        if let Some(index) = self.choice_ids.get(&field.id) {
            return Some(*index);
        }
        let name = self.unique(&field.name, field.id);
        self.choices.push(Choice {
            name,
            values: values
                .iter()
                .map(|l| match l {
                    Literal::String(s) => s.clone(),
                    Literal::Int(i) => i.to_string(),
                })
                .collect(),
        });
        self.choice_ids.insert(field.id, self.choices.len() - 1);
        Some(self.choices.len() - 1)
    }

    fn value(
        &mut self,
        ty: &'c Type,
        id: u32,
        hint: &str,
        rules: &[(&'c Rule, bool)],
    ) -> Value<'c> {
        let kind = self.kind(ty, id, hint);
        let rules = rules
            .iter()
            .map(|(rule, from_variant)| self.rule(rule, ty, *from_variant))
            .collect();
        Value { ty, kind, rules }
    }

    fn element(&mut self, e: &'c crate::ir::Element, hint: &str) -> Element<'c> {
        let rules: Vec<(&'c Rule, bool)> = e.rules.iter().map(|r| (r, false)).collect();
        Element {
            required: e.required,
            value: self.value(&e.ty, e.id, hint, &rules),
        }
    }

    fn kind(&mut self, ty: &'c Type, id: u32, hint: &str) -> Kind<'c> {
        match ty {
            Type::String => Kind::String,
            Type::Boolean => Kind::Boolean,
            Type::Uuid => Kind::Uuid,
            Type::Int => Kind::Int,
            Type::Long => Kind::Long,
            Type::Float => Kind::Float,
            Type::Double => Kind::Double,
            Type::Decimal { precision, scale } => Kind::Decimal {
                precision: *precision,
                scale: *scale,
            },
            Type::Date => Kind::Date,
            Type::Timestamp { format } => Kind::Timestamp {
                format: self.format(format),
            },
            Type::TimestampTz => Kind::TimestampTz,
            Type::List(e) => Kind::List(Box::new(self.element(e, &format!("{hint}_item")))),
            Type::Map { key, value } => Kind::Map {
                key: Box::new(self.element(key, &format!("{hint}_key"))),
                value: Box::new(self.element(value, &format!("{hint}_value"))),
            },
            Type::Struct(fields) => Kind::Record(self.record_of(id, hint, fields)),
        }
    }

    /// The record of the struct-typed field `id`, planned on first use (its inner records
    /// first).
    fn record_of(&mut self, id: u32, hint: &str, fields: &'c [Field]) -> usize {
        if let Some(index) = self.record_ids.get(&id) {
            return *index;
        }
        let name = self.unique(hint, id);
        let members = shape_fields(fields, None)
            .into_iter()
            .map(|shape| self.member(shape))
            .collect();
        self.records.push(record(name, None, false, members));
        self.record_ids.insert(id, self.records.len() - 1);
        self.records.len() - 1
    }

    fn pattern(&mut self, pattern: &'c str) -> usize {
        intern(&mut self.patterns, pattern, |a, b| a == b)
    }

    fn format(&mut self, format: &'c TimestampFormat) -> usize {
        intern(&mut self.formats, format, |a, b| a.pattern == b.pattern)
    }

    fn rule(&mut self, rule: &'c Rule, ty: &'c Type, from_variant: bool) -> RuleCheck<'c> {
        let test = match &rule.kind {
            RuleKind::Min(b) => Test::Below(limit(*b, ty, true)),
            RuleKind::Max(b) => Test::Above(limit(*b, ty, false)),
            RuleKind::MinLength(n) => Test::ShorterThan(*n),
            RuleKind::MaxLength(n) => Test::LongerThan(*n),
            RuleKind::Pattern(p) => Test::NoMatch(self.pattern(p)),
            RuleKind::OneOf(values) => Test::NotIn(values),
            RuleKind::NotBefore(bound) => Test::Before(bound.earliest_offset() * 1_000_000),
            RuleKind::NotAfter(bound) => Test::After(bound.latest_offset() * 1_000_000),
        };
        RuleCheck {
            code: rule.kind.key(),
            policy: rule.policy,
            message: messages::rule_message(rule, ty),
            test,
            from_variant,
        }
    }
}

fn intern<T: Copy>(list: &mut Vec<T>, item: T, same: impl Fn(&T, &T) -> bool) -> usize {
    match list.iter().position(|known| same(known, &item)) {
        Some(index) => index,
        None => {
            list.push(item);
            list.len() - 1
        }
    }
}

/// A bound as the value's type compares it.
fn limit(bound: Bound, ty: &Type, is_min: bool) -> Limit {
    match (ty, bound) {
        (Type::Decimal { scale, .. }, written) => Limit::Decimal {
            written,
            unscaled: written.unscaled(*scale, is_min),
        },
        (Type::Int | Type::Long, Bound::Int(i)) => Limit::Int(i),
        (_, b) => Limit::Float(b.as_f64()),
    }
}

fn record<'c>(
    name: String,
    variant: Option<&'c Variant>,
    is_event: bool,
    members: Vec<Member<'c>>,
) -> Record<'c> {
    let uses_now = members
        .iter()
        .any(|m| m.constant.is_none() && m.value.uses_now());
    Record {
        name,
        variant,
        is_event,
        members,
        uses_now,
    }
}

impl Value<'_> {
    /// Whether checking it compares with the ingest time (a nested record's check takes the time
    /// whether it uses it or not).
    fn uses_now(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.test, Test::Before(_) | Test::After(_)))
            || match &self.kind {
                Kind::List(e) => e.value.uses_now(),
                Kind::Map { key, value } => key.value.uses_now() || value.value.uses_now(),
                Kind::Record(_) => true,
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    /// The plan of the one contract in `yaml` (it must check).
    fn planned(yaml: &str, test: impl FnOnce(&ClientPlan)) {
        let outcome = crate::driver::check_sources(&[SourceFile::new("t.yaml", yaml)]);
        let set = outcome.contracts.expect("the contract checks");
        test(&ClientPlan::of(&set.contracts[0]));
    }

    const VARIANTS: &str = "contract: t\nversion: 1.0.0\nowner: tests\nfields:\n  - {name: kind, id: 1, type: string, required: true}\n  - {name: note, id: 2, type: string, rules: [{pattern: '[a-z]+'}]}\n  - {name: event, id: 3, type: struct, fields: [{name: tag, id: 4, type: string, rules: [{pattern: '[a-z]+'}]}]}\nvariants:\n  discriminator: kind\n  cases:\n    a b:\n      require: [note]\n      rules: {note: [{max_length: 3}]}\n      fields:\n        - {name: size, id: 5, type: int, required: true}\n    c:\ntable: {database: d, name: t}\ningest:\n  route: /t\n  auth: {issuer: dev, audience: a, scopes: [guest]}\n";

    #[test]
    fn a_variant_requires_its_payload_and_its_require_list_and_says_so() {
        planned(VARIANTS, |plan| {
            let a = &plan.events[0];
            let member = |name: &str| a.members.iter().find(|m| m.field.name == name).unwrap();
            assert!(member("note").required && member("size").required);
            assert_eq!(member("note").missing, "required for variant \"a b\"");
            assert_eq!(member("kind").missing, "required field is missing");
            assert_eq!(member("kind").constant, Some("a b"));
            // The field's own pattern, then the variant's rule for it.
            let codes: Vec<_> = member("note")
                .value
                .rules
                .iter()
                .map(|r| (r.code, r.from_variant))
                .collect();
            assert_eq!(codes, [("pattern", false), ("max_length", true)]);
            let c = &plan.events[1];
            assert!(!c.members.iter().any(|m| m.field.name == "size"));
            assert!(
                !c.members
                    .iter()
                    .find(|m| m.field.name == "note")
                    .unwrap()
                    .required
            );
        });
    }

    #[test]
    fn types_are_named_once_by_field_id_and_patterns_interned() {
        planned(VARIANTS, |plan| {
            // `Event` is taken (every language's event type): the struct gets its field id.
            let names: Vec<_> = plan.records.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["Event3"]);
            // One record for the struct although both variants hold it.
            assert!(plan.events.iter().all(|e| {
                e.members
                    .iter()
                    .any(|m| matches!(m.value.kind, Kind::Record(0)))
            }));
            // `[a-z]+` on two fields: one pattern.
            assert_eq!(plan.patterns, ["[a-z]+"]);
            assert!(
                plan.events[0].uses_now,
                "a nested record's check takes the time"
            );
        });
    }

    #[test]
    fn pascal_splits_on_anything_but_letters_and_digits() {
        assert_eq!(pascal("match_started"), "MatchStarted");
        assert_eq!(pascal("end game-2"), "EndGame2");
        assert_eq!(pascal("3rd"), "V3rd");
        assert_eq!(pascal("__"), "V");
    }

    #[test]
    fn decimal_bounds_round_inward() {
        assert_eq!(Bound::Float(0.125).unscaled(2, true), 13);
        assert_eq!(Bound::Float(0.125).unscaled(2, false), 12);
        assert_eq!(Bound::Float(1.1).unscaled(1, true), 11);
        assert_eq!(Bound::Int(-3).unscaled(2, false), -300);
    }

    /// A record named like a type of the C# runtime would replace it: the module shares the
    /// runtime's namespace.
    #[test]
    fn csharp_runtime_types_are_reserved() {
        let runtime = include_str!("../../templates/csharp/ContractcRuntime.cs");
        let declared = regex::Regex::new(
            r"(?m)^\s*public (?:static |sealed |abstract )*(?:class|struct|enum|interface) (\w+)",
        )
        .unwrap();
        let mut count = 0;
        for found in declared.captures_iter(runtime) {
            assert!(super::RESERVED.contains(&&found[1]), "{}", &found[1]);
            count += 1;
        }
        assert!(count > 30, "{count} types found");
    }
}
