//! Labelled example events, derived from a contract: valid ones, and invalid ones made by
//! breaking one thing at a time, each labelled with the violation codes it must produce.
//!
//! [`random`] makes random events that are valid by construction, for `synth`; both share the
//! value helpers here.
//!
//! Used by the docs backend (examples in each contract's page) and by the conformance tests,
//! which check that every engine (the generated Rust validator, the draft-04 model, the
//! PySpark rules) agrees with the labels. Everything is deterministic: times are relative to
//! [`REFERENCE_TIME_MICROS`], the ingest time the labels assume.

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::{Map, Value, json};

use contract_manifest::{
    Bound, Element, Field, FormatItem, Literal, Manifest as Contract, Rule, RuleKind, Type,
    UnknownFields, Variant,
};

pub mod random;

/// The ingest time the labels assume: 2024-02-22T12:00:00Z.
pub const REFERENCE_TIME_MICROS: i64 = 1_708_603_200_000_000;

/// The value of every valid `uuid` field.
const EXAMPLE_UUID: &str = "123e4567-e89b-12d3-a456-426614174000";

/// One labelled event.
#[derive(Debug, Clone)]
pub struct Case {
    /// What was done to the valid event, e.g. `event_id: too long`.
    pub name: String,
    /// The raw request body.
    pub body: String,
    /// Violation codes the event must produce (sorted, deduplicated); empty means valid.
    pub codes: Vec<&'static str>,
    /// Whether JSON Schema draft-04 can express every rule involved (else the model may accept).
    pub schema_expressible: bool,
}

impl Case {
    pub fn is_valid(&self) -> bool {
        self.codes.is_empty()
    }
}

/// A valid event for `variant` (or the contract without variants).
pub fn valid_event(c: &Contract, variant: Option<&Variant>) -> Map<String, Value> {
    valid_event_at(c, variant, REFERENCE_TIME_MICROS / 1_000_000)
}

/// A valid event for `variant`, with its times valid for an ingest time of `reference` (seconds).
pub fn valid_event_at(
    c: &Contract,
    variant: Option<&Variant>,
    reference: i64,
) -> Map<String, Value> {
    let mut event = Map::new();
    for f in &c.fields {
        let extra: Vec<Rule> = variant
            .and_then(|v| v.rules.iter().find(|(n, _)| n == &f.name))
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let rules: Vec<Rule> = f.rules.iter().cloned().chain(extra).collect();
        let value = match (&c.variants, variant) {
            (Some(vs), Some(v)) if vs.discriminator == f.name => json!(v.value),
            _ => example_value(&f.ty, &rules, reference),
        };
        event.insert(f.name.clone(), value);
    }
    if let Some(v) = variant {
        for f in &v.fields {
            event.insert(f.name.clone(), example_value(&f.ty, &f.rules, reference));
        }
    }
    event
}

/// 2024-02-22 03:03:02 UTC: the reference's example time, 9 hours before the reference ingest
/// time, when the field's time rules allow it; else a time inside their window.
pub fn example_seconds(ty: &Type, rules: &[Rule], reference: i64) -> i64 {
    let fixed = reference - (8 * 3600 + 56 * 60 + 58);
    let (lo, hi) = contract_manifest::time_window(rules, reference);
    let mut t = fixed;
    if let Some(lo) = lo {
        t = t.max(lo + 60);
    }
    if let Some(hi) = hi {
        t = t.min(hi - 60);
    }
    if *ty == Type::Date {
        // A date is its midnight: round into the window.
        let day = t.div_euclid(86_400) * 86_400;
        t = if lo.is_some_and(|lo| day < lo) {
            day + 86_400
        } else {
            day
        };
    }
    t
}

pub fn example_value(ty: &Type, rules: &[Rule], reference: i64) -> Value {
    let one_of = contract_manifest::one_of(rules).map(<[Literal]>::to_vec);
    match ty {
        Type::String => {
            if let Some(values) = one_of {
                for v in &values {
                    if let Literal::String(s) = v
                        && string_codes(s, rules).is_empty()
                    {
                        return json!(s);
                    }
                }
            }
            json!(example_string(rules))
        }
        Type::Boolean => json!(true),
        Type::Int | Type::Long => {
            if let Some(values) = one_of
                && let Some(Literal::Int(i)) = values.first()
            {
                return json!(i);
            }
            let (lo, hi) = bounds(rules);
            let mut v = 1f64.max(lo.map(f64::ceil).unwrap_or(f64::MIN));
            if let Some(hi) = hi {
                v = v.min(hi.floor());
            }
            json!(v as i64)
        }
        Type::Float | Type::Double => {
            let (lo, hi) = bounds(rules);
            let mut v = 1.5f64.max(lo.unwrap_or(f64::MIN));
            if let Some(hi) = hi {
                v = v.min(hi);
            }
            json!(v)
        }
        Type::Decimal { scale, .. } => {
            let (lo, hi) = bounds(rules);
            let mut v = 1f64.max(lo.map(f64::ceil).unwrap_or(f64::MIN));
            if let Some(hi) = hi {
                v = v.min(hi.floor());
            }
            json!(format!("{:.*}", usize::from(*scale), v))
        }
        Type::Date | Type::Timestamp { .. } | Type::TimestampTz => {
            time_value(ty, example_seconds(ty, rules, reference)).unwrap_or(Value::Null)
        }
        Type::Uuid => json!(EXAMPLE_UUID),
        Type::List(e) => {
            let n = list_len(rules);
            json!(
                (0..n)
                    .map(|_| element_value(e, reference))
                    .collect::<Vec<_>>()
            )
        }
        Type::Map { key, value } => {
            let n = list_len(rules);
            let mut map = Map::new();
            for i in 0..n {
                let mut k = example_string(&key.rules);
                if i > 0 {
                    // Distinct keys: vary the example when the rules allow it.
                    let candidate = format!("{k}{i}");
                    if string_codes(&candidate, &key.rules).is_empty() {
                        k = candidate;
                    }
                }
                map.insert(k, element_value(value, reference));
            }
            Value::Object(map)
        }
        Type::Struct(fields) => {
            let mut object = Map::new();
            for f in fields {
                object.insert(f.name.clone(), example_value(&f.ty, &f.rules, reference));
            }
            Value::Object(object)
        }
    }
}

fn element_value(e: &Element, reference: i64) -> Value {
    example_value(&e.ty, &e.rules, reference)
}

fn list_len(rules: &[Rule]) -> u64 {
    let (min, max) = contract_manifest::length_bounds(rules);
    min.unwrap_or(1).max(1).min(max.unwrap_or(u64::MAX))
}

/// The `min` / `max` bounds as floats.
pub(crate) fn bounds(rules: &[Rule]) -> (Option<f64>, Option<f64>) {
    let (lo, hi) = contract_manifest::numeric_bounds(rules);
    (lo.map(Bound::as_f64), hi.map(Bound::as_f64))
}

/// The shortest string the pattern matches, padded to the minimum length when the pattern
/// allows it, or a plain word when there is no pattern.
fn example_string(rules: &[Rule]) -> String {
    let (min, max) = contract_manifest::length_bounds(rules);
    let (min, max) = (min.map(|n| n as usize), max.map(|n| n as usize));
    match contract_manifest::pattern(rules) {
        Some(p) => {
            let hir = regex_syntax::Parser::new().parse(p).ok();
            let mut s = hir.as_ref().map(shortest_match).unwrap_or_default();
            if let (Some(min), Some(hir)) = (min, &hir) {
                // Try longer repetitions until the minimum length is met.
                let mut reps = 1;
                while s.chars().count() < min && reps < 64 {
                    reps += 1;
                    s = match_with_repetitions(hir, reps);
                }
            }
            s
        }
        None => {
            let mut s = "example".to_string();
            if let Some(min) = min {
                while s.chars().count() < min {
                    s.push('x');
                }
            }
            if let Some(max) = max {
                s = s.chars().take(max).collect();
            }
            s
        }
    }
}

fn shortest_match(hir: &Hir) -> String {
    match_with_repetitions(hir, 0)
}

/// A string matching `hir`, repeating each unbounded repetition `extra` times past its minimum.
fn match_with_repetitions(hir: &Hir, extra: u32) -> String {
    let mut out = String::new();
    build(hir, extra, &mut out);
    out
}

fn build(hir: &Hir, extra: u32, out: &mut String) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => out.push_str(&String::from_utf8_lossy(&lit.0)),
        HirKind::Class(Class::Unicode(class)) => {
            if let Some(range) = class
                .ranges()
                .iter()
                .find(|r| r.start().is_alphanumeric())
                .or(class.ranges().first())
            {
                let c = if range.start().is_alphanumeric() {
                    range.start()
                } else {
                    range.end().min(range.start())
                };
                out.push(c);
            }
        }
        HirKind::Class(Class::Bytes(class)) => {
            if let Some(range) = class.ranges().first() {
                out.push(char::from(range.start()));
            }
        }
        HirKind::Repetition(rep) => {
            let n = match rep.max {
                Some(max) => (rep.min + extra).min(max),
                None => rep.min + extra,
            };
            for _ in 0..n {
                build(&rep.sub, extra, out);
            }
        }
        HirKind::Capture(cap) => build(&cap.sub, extra, out),
        HirKind::Concat(parts) => parts.iter().for_each(|p| build(p, extra, out)),
        HirKind::Alternation(alts) => {
            if let Some(first) = alts.first() {
                build(first, extra, out);
            }
        }
    }
}

fn render_timestamp(
    items: &[FormatItem],
    (y, mo, d, h, mi, s): (i64, u32, u32, u32, u32, u32),
) -> String {
    items
        .iter()
        .map(|i| match i {
            FormatItem::Literal(l) => l.clone(),
            FormatItem::Year => format!("{y:04}"),
            FormatItem::Month => format!("{mo:02}"),
            FormatItem::Day => format!("{d:02}"),
            FormatItem::Hour => format!("{h:02}"),
            FormatItem::Minute => format!("{mi:02}"),
            FormatItem::Second => format!("{s:02}"),
            FormatItem::Fraction => String::new(),
        })
        .collect()
}

/// Codes a string value produces under `rules` (length, pattern, one_of).
pub fn string_codes(s: &str, rules: &[Rule]) -> Vec<&'static str> {
    let mut codes = Vec::new();
    let len = s.chars().count() as u64;
    for r in rules {
        let fails = match &r.kind {
            RuleKind::MinLength(n) => len < *n,
            RuleKind::MaxLength(n) => len > *n,
            RuleKind::Pattern(p) => !anchored(p).is_some_and(|re| re.is_match(s)),
            RuleKind::OneOf(values) => !values.contains(&Literal::String(s.to_string())),
            _ => false,
        };
        if fails {
            codes.push(r.kind.key());
        }
    }
    codes
}

/// The full-match regex of a rule's pattern, compiled once per pattern (a contract has few;
/// `synth` checks every string it makes against them).
fn anchored(pattern: &str) -> Option<std::sync::Arc<regex::Regex>> {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};
    static COMPILED: LazyLock<Mutex<HashMap<String, Option<Arc<regex::Regex>>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut compiled = COMPILED.lock().unwrap_or_else(|p| p.into_inner());
    compiled
        .entry(pattern.to_string())
        .or_insert_with(|| {
            regex::Regex::new(&format!("^(?:{pattern})$"))
                .ok()
                .map(Arc::new)
        })
        .clone()
}

fn render(event: &Map<String, Value>) -> String {
    serde_json::to_string(event).unwrap_or_default()
}

/// The full labelled corpus for a contract, judged at [`REFERENCE_TIME_MICROS`].
pub fn cases(c: &Contract) -> Vec<Case> {
    cases_at(c, REFERENCE_TIME_MICROS / 1_000_000)
}

/// The labelled corpus with times relative to an ingest time of `reference` (seconds).
pub fn cases_at(c: &Contract, reference: i64) -> Vec<Case> {
    let variants: Vec<Option<&Variant>> = match &c.variants {
        Some(v) => v.cases.iter().map(Some).collect(),
        None => vec![None],
    };
    let mut cases = Vec::new();
    for (variant_index, variant) in variants.into_iter().enumerate() {
        let base = Base::new(c, variant, reference);
        cases.push(base.case("valid", render(&base.event), vec![], true));
        cases.extend(free_text_cases(c, &base));
        for field in fields_under_test(c, variant) {
            cases.extend(field_cases(c, &base, &field, reference));
        }
        cases.extend(unknown_field_case(c, &base));
        cases.extend(duplicate_key_case(c, &base));
        // Only the first variant for the whole-body cases.
        if variant_index == 0 {
            cases.extend(whole_body_cases());
        }
    }
    distinct_ids(c, &mut cases);
    cases
}

/// The start of every case's own id: the rest is the case's number (`distinct_ids`).
const CASE_ID_PREFIX: &str = "00000000-0000-7000-8000-";

/// With deduplication declared, each case gets an id of its own, as each event a client makes
/// does: a runtime answers a repeated id as it answered the first event with it.
fn distinct_ids(c: &Contract, cases: &mut [Case]) {
    let Some(dedup) = &c.ingest.dedup else {
        return;
    };
    let shared = format!("\"{}\":\"{EXAMPLE_UUID}\"", dedup.field);
    for (n, case) in cases.iter_mut().enumerate() {
        let own = format!("\"{}\":\"{CASE_ID_PREFIX}{n:012x}\"", dedup.field);
        case.body = case.body.replace(&shared, &own);
    }
}

/// `body` (a case's) with its own id replaced by a new UUIDv7 wherever it appears: synth sends
/// a case as a new event each time it draws it, not as a retry of the last time.
pub fn with_fresh_id(c: &Contract, body: &str) -> String {
    let Some(dedup) = &c.ingest.dedup else {
        return body.to_string();
    };
    let key = format!("\"{}\":\"{CASE_ID_PREFIX}", dedup.field);
    let Some(at) = body.find(&key) else {
        return body.to_string();
    };
    let start = at + key.len() - CASE_ID_PREFIX.len();
    let Some(case_id) = body.get(start..start + 36) else {
        return body.to_string();
    };
    body.replace(case_id, &uuid::Uuid::now_v7().to_string())
}

impl Case {
    /// A case with its codes sorted and deduplicated.
    fn labelled(
        name: String,
        body: String,
        mut codes: Vec<&'static str>,
        schema_expressible: bool,
    ) -> Case {
        codes.sort_unstable();
        codes.dedup();
        Case {
            name,
            body,
            codes,
            schema_expressible,
        }
    }
}

/// The valid event of one variant, which its cases break, and the label their names start
/// with (the variant's value in brackets; nothing without variants).
struct Base {
    event: Map<String, Value>,
    label: String,
}

impl Base {
    fn new(c: &Contract, variant: Option<&Variant>, reference: i64) -> Base {
        Base {
            event: valid_event_at(c, variant, reference),
            label: variant
                .map(|v| format!("[{}] ", v.value))
                .unwrap_or_default(),
        }
    }

    /// A case named `what` after the label.
    fn case(
        &self,
        what: &str,
        body: String,
        codes: Vec<&'static str>,
        schema_expressible: bool,
    ) -> Case {
        let name = format!("{}{what}", self.label);
        Case::labelled(name, body, codes, schema_expressible)
    }

    /// The body of the valid event with `field` set to `value`.
    fn with(&self, field: &str, value: Value) -> String {
        let mut event = self.event.clone();
        event.insert(field.to_string(), value);
        render(&event)
    }

    /// The body of the valid event without `field`.
    fn without(&self, field: &str) -> String {
        let mut event = self.event.clone();
        event.remove(field);
        render(&event)
    }
}

/// Valid cases with escapes and non-ASCII text in the free-text strings (those limited by
/// length only), the discriminator excepted.
fn free_text_cases(c: &Contract, base: &Base) -> Vec<Case> {
    let text = "Quote \" backslash \\ tab \t é 🐢 <script>*'";
    let discriminator = c.variants.as_ref().map(|v| v.discriminator.as_str());
    c.fields
        .iter()
        .filter(|f| {
            Some(f.name.as_str()) != discriminator
                && f.ty == Type::String
                && f.rules
                    .iter()
                    .all(|r| matches!(r.kind, RuleKind::MaxLength(_)))
                && string_codes(text, &f.rules).is_empty()
        })
        .map(|f| {
            base.case(
                &format!("{}: escapes and unicode", f.name),
                base.with(&f.name, json!(text)),
                vec![],
                true,
            )
        })
        .collect()
}

/// A field of one variant's events, with what that variant makes of it.
struct FieldUnderTest<'a> {
    field: &'a Field,
    /// Required by the contract, or by the variant (`require:`, or a required payload field).
    required: bool,
    /// The field's rules and the variant's rules for it.
    rules: Vec<Rule>,
}

/// The contract's fields then the variant's payload fields.
fn fields_under_test<'a>(c: &'a Contract, variant: Option<&'a Variant>) -> Vec<FieldUnderTest<'a>> {
    contract_manifest::shape_fields(&c.fields, variant)
        .into_iter()
        .map(|shape| FieldUnderTest {
            field: shape.field,
            required: shape.required,
            rules: shape.rules().cloned().collect(),
        })
        .collect()
}

/// The cases breaking one field of the valid event, one way each.
fn field_cases(c: &Contract, base: &Base, field: &FieldUnderTest, reference: i64) -> Vec<Case> {
    let mut cases = Vec::new();
    if field.required {
        cases.extend(absent_cases(c, base, field.field));
    }
    let name = &field.field.name;
    if c.variants
        .as_ref()
        .is_some_and(|v| v.discriminator == *name)
    {
        // With variants, the remaining payload fields cannot be judged: only one_of.
        cases.push(base.case(
            &format!("{name}: unknown variant"),
            base.with(name, json!("Not A Known Variant")),
            vec!["one_of"],
            true,
        ));
        return cases;
    }
    cases.push(wrong_type_case(base, field.field));
    cases.extend(rule_cases(base, field, reference));
    cases.extend(invalid_format_case(base, field.field));
    cases.extend(huge_number_case(base, field.field));
    cases
}

/// A required field left out, and set to null.
fn absent_cases(c: &Contract, base: &Base, f: &Field) -> [Case; 2] {
    let name = &f.name;
    // Null in an always-required field is a wrong type; in a field only this variant requires
    // (a payload field, or `require:`), it is a missing value.
    let null_code = if f.required && c.fields.iter().any(|e| e.name == *name) {
        "wrong_type"
    } else {
        "missing"
    };
    [
        base.case(
            &format!("{name}: missing"),
            base.without(name),
            vec!["missing"],
            true,
        ),
        base.case(
            &format!("{name}: null"),
            base.with(name, Value::Null),
            vec![null_code],
            true,
        ),
    ]
}

/// The field set to a value of the wrong JSON type.
fn wrong_type_case(base: &Base, f: &Field) -> Case {
    let wrong = match f.ty {
        Type::String | Type::Date | Type::Timestamp { .. } | Type::TimestampTz | Type::Uuid => {
            json!(12345)
        }
        Type::Decimal { .. } => json!(true),
        Type::List(_) => json!("not a list"),
        Type::Map { .. } | Type::Struct(_) => json!(["not", "an", "object"]),
        _ => json!("not a number"),
    };
    base.case(
        &format!("{}: wrong type", f.name),
        base.with(&f.name, wrong),
        vec!["wrong_type"],
        true,
    )
}

/// One case per rule of the field that a value can break.
fn rule_cases(base: &Base, field: &FieldUnderTest, reference: i64) -> Vec<Case> {
    let f = field.field;
    field
        .rules
        .iter()
        .filter_map(|rule| {
            let (value, codes, expressible) = breaking_value(f, rule, &field.rules, reference)?;
            Some(base.case(
                &format!("{}: breaks {}", f.name, rule.kind.key()),
                base.with(&f.name, value),
                codes,
                expressible,
            ))
        })
        .collect()
}

/// A typed string (date, timestamp, uuid) in the wrong format.
fn invalid_format_case(base: &Base, f: &Field) -> Option<Case> {
    let bad = match &f.ty {
        Type::Timestamp { format } => render_timestamp(&format.items, (2024, 2, 30, 3, 3, 2)),
        Type::Date => "2024-02-30".to_string(),
        Type::TimestampTz => "2024-02-22 03:03:02".to_string(),
        Type::Uuid => "123e4567-e89b-12d3-a456-42661417400Z".to_string(),
        _ => return None,
    };
    // Calendar validity (Feb 30) is beyond a draft-04 pattern.
    let expressible = !matches!(f.ty, Type::Timestamp { .. } | Type::Date);
    Some(base.case(
        &format!("{}: invalid format", f.name),
        base.with(&f.name, json!(bad)),
        vec!["invalid_format"],
        expressible,
    ))
}

/// An `int` field set to a number past its range.
fn huge_number_case(base: &Base, f: &Field) -> Option<Case> {
    matches!(f.ty, Type::Int).then(|| {
        base.case(
            &format!("{}: huge number", f.name),
            base.with(&f.name, json!(99_999_999_999_999_999_999f64)),
            vec!["out_of_range"],
            true,
        )
    })
}

/// A field the contract does not have, unless the contract drops such fields silently.
fn unknown_field_case(c: &Contract, base: &Base) -> Option<Case> {
    (c.ingest.unknown_fields != UnknownFields::Drop).then(|| {
        let expressible = c.ingest.unknown_fields != UnknownFields::Warn;
        base.case(
            "extra field",
            base.with("not_in_the_contract", json!("x")),
            vec!["unknown_field"],
            expressible,
        )
    })
}

/// The first field given twice: JSON Schema sees only one of the values.
fn duplicate_key_case(c: &Contract, base: &Base) -> Option<Case> {
    let first = c.fields.first()?;
    let body = render(&base.event);
    let duplicated = format!(
        "{}, \"{}\": {}}}",
        &body[..body.len() - 1],
        first.name,
        base.event.get(&first.name).cloned().unwrap_or(Value::Null)
    );
    Some(base.case("duplicate key", duplicated, vec!["duplicate_field"], false))
}

/// Bodies that are not a JSON object, or not JSON at all.
fn whole_body_cases() -> Vec<Case> {
    let not_objects = [
        ("array body", "[1, 2]"),
        ("string body", "\"event\""),
        ("null body", "null"),
        ("number body", "42"),
    ];
    let not_json = [
        ("truncated JSON", "{\"a\": "),
        ("trailing garbage", "{} x"),
        ("bare word", "event"),
        ("empty body", ""),
    ];
    let labelled = |code: &'static str| {
        move |(name, body): (&str, &str)| {
            Case::labelled(name.to_string(), body.to_string(), vec![code], true)
        }
    };
    not_objects
        .into_iter()
        .map(labelled("wrong_type"))
        .chain(not_json.into_iter().map(labelled("invalid_json")))
        .collect()
}

/// A value breaking `rule` (and only rules with the same code), with the codes it produces.
fn breaking_value(
    f: &Field,
    rule: &Rule,
    rules: &[Rule],
    reference: i64,
) -> Option<(Value, Vec<&'static str>, bool)> {
    let key = rule.kind.key();
    match (&rule.kind, &f.ty) {
        (RuleKind::MaxLength(n), Type::String) => {
            let base = example_string(rules);
            let mut s = base.clone();
            let filler = s.chars().last().unwrap_or('x');
            while (s.chars().count() as u64) <= *n {
                s.push(filler);
            }
            let codes = string_codes(&s, rules);
            Some((json!(s), codes, true))
        }
        (RuleKind::MinLength(n), Type::String) if *n > 0 => {
            let s: String = example_string(rules)
                .chars()
                .take(*n as usize - 1)
                .collect();
            let codes = string_codes(&s, rules);
            Some((json!(s), codes, true))
        }
        (RuleKind::Pattern(_), Type::String) => {
            let valid = example_string(rules);
            let candidates = [
                format!("{valid}\n"),
                format!(" {valid}"),
                "!".to_string(),
                format!("{valid}!"),
                String::new(),
            ];
            let s = candidates
                .into_iter()
                .find(|s| string_codes(s, rules) == vec![key])?;
            Some((json!(s), vec![key], true))
        }
        (RuleKind::OneOf(_), Type::String) => {
            let s = "not-one-of-the-values";
            Some((json!(s), string_codes(s, rules), true))
        }
        (RuleKind::OneOf(values), Type::Int | Type::Long) => {
            let max = values
                .iter()
                .filter_map(|l| {
                    if let Literal::Int(i) = l {
                        Some(*i)
                    } else {
                        None
                    }
                })
                .max()?;
            Some((json!(max + 1), vec![key], true))
        }
        (RuleKind::Min(b), _) => {
            let v = below(*b, &f.ty);
            Some((v.clone(), decimal_codes(&f.ty, &v, key), true))
        }
        (RuleKind::Max(b), _) => {
            let v = above(*b, &f.ty);
            Some((v.clone(), decimal_codes(&f.ty, &v, key), true))
        }
        (RuleKind::MaxLength(n), Type::List(e)) => {
            let items: Vec<Value> = (0..=*n).map(|_| element_value(e, reference)).collect();
            Some((json!(items), vec![key], true))
        }
        (RuleKind::MinLength(n), Type::List(e)) if *n > 0 => {
            let items: Vec<Value> = (0..n - 1).map(|_| element_value(e, reference)).collect();
            Some((json!(items), vec![key], true))
        }
        (RuleKind::NotAfter(t), _) => {
            let limit = reference + t.latest_offset();
            time_value(&f.ty, limit + 3600).map(|v| (v, vec![key], false))
        }
        (RuleKind::NotBefore(t), _) => {
            let limit = reference + t.earliest_offset();
            time_value(&f.ty, limit - 86_400 * 2).map(|v| (v, vec![key], false))
        }
        _ => None,
    }
}

/// A bound broken past what a decimal can hold is `out_of_range`, not the rule.
fn decimal_codes(ty: &Type, v: &Value, key: &'static str) -> Vec<&'static str> {
    match (ty, v.as_f64()) {
        (Type::Decimal { precision, scale }, Some(x)) if !fits_decimal(x, *precision, *scale) => {
            vec!["out_of_range"]
        }
        _ => vec![key],
    }
}

fn below(b: Bound, ty: &Type) -> Value {
    match (b, ty) {
        (Bound::Int(i), Type::Int | Type::Long) => json!(i - 1),
        (b, Type::Int | Type::Long) => json!(b.as_f64().ceil() as i64 - 1),
        (b, _) => json!(b.as_f64() - 1.0),
    }
}

fn above(b: Bound, ty: &Type) -> Value {
    match (b, ty) {
        (Bound::Int(i), Type::Int | Type::Long) => json!(i + 1),
        (b, Type::Int | Type::Long) => json!(b.as_f64().floor() as i64 + 1),
        (b, _) => json!(b.as_f64() + 1.0),
    }
}

/// Whether a number fits `decimal(precision, scale)` (it breaks `out_of_range` otherwise).
fn fits_decimal(value: f64, precision: u8, scale: u8) -> bool {
    value.abs() < 10f64.powi(i32::from(precision) - i32::from(scale))
}

/// A value of a temporal type at `seconds` since the epoch.
pub fn time_value(ty: &Type, seconds: i64) -> Option<Value> {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    );
    match ty {
        Type::Date => Some(json!(format!("{y:04}-{m:02}-{d:02}"))),
        Type::Timestamp { format } => {
            Some(json!(render_timestamp(&format.items, (y, m, d, h, mi, s))))
        }
        Type::TimestampTz => Some(json!(format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"
        ))),
        _ => None,
    }
}

/// The (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
