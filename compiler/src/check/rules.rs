//! Quality rules: each must fit its field's type, and together they must be satisfiable.

use std::time::Duration;

use super::Checker;
use crate::diagnostic::Code;
use crate::ir::{Bound, Literal, Policy, Rule, RuleKind, TimeBound, Type};
use crate::syntax::ast::{RuleDoc, TimeBoundDoc};

/// Longest pattern accepted, so a contract cannot make every engine compile a huge regex.
const MAX_PATTERN_LEN: usize = 4096;

impl Checker<'_> {
    /// Checks the rules of one field. `inherited` are rules already in force on the field (a
    /// variant's rules add to the envelope's), checked together for contradictions.
    pub fn rules(
        &mut self,
        docs: &[RuleDoc],
        ty: &Type,
        pointer: &str,
        inherited: &[Rule],
    ) -> Option<Vec<Rule>> {
        let before = self.error_count();
        let mut placed: Vec<(Rule, String)> = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let rule_pointer = format!("{pointer}/{i}");
            if let Some((rule, key)) = self.rule(doc, ty, &rule_pointer) {
                let key_pointer = format!("{rule_pointer}/{key}");
                if let Some((_, first)) =
                    placed.iter().find(|(r, _)| r.kind.key() == rule.kind.key())
                {
                    self.emit(
                        self.diag(Code::DuplicateRule, format!("`{key}` is given twice"))
                            .at(self.key_span(&key_pointer), "given again here")
                            .also(self.key_span(first), "first given here")
                            .help("keep one: a field has at most one rule of each kind"),
                    );
                    continue;
                }
                placed.push((rule, key_pointer));
            }
        }
        self.contradictions(&placed, inherited, ty);
        (self.error_count() == before).then(|| placed.into_iter().map(|(r, _)| r).collect())
    }

    fn rule(&mut self, doc: &RuleDoc, ty: &Type, pointer: &str) -> Option<(Rule, &'static str)> {
        let present: Vec<&'static str> = [
            ("min", doc.min.is_some()),
            ("max", doc.max.is_some()),
            ("min_length", doc.min_length.is_some()),
            ("max_length", doc.max_length.is_some()),
            ("pattern", doc.pattern.is_some()),
            ("one_of", doc.one_of.is_some()),
            ("not_before", doc.not_before.is_some()),
            ("not_after", doc.not_after.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.then_some(k))
        .collect();
        let key = match present.as_slice() {
            [key] => *key,
            [] => {
                self.emit(
                    self.diag(Code::RuleShape, "this rule entry names no rule")
                        .at(self.span(pointer), "only `policy`/`message`")
                        .help("add one of min, max, min_length, max_length, pattern, one_of, not_before, not_after"),
                );
                return None;
            }
            [_, second, ..] => {
                self.emit(
                    self.diag(
                        Code::RuleShape,
                        format!("one rule entry names {} rules", present.len()),
                    )
                    .at(
                        self.key_span(&format!("{pointer}/{second}")),
                        "a second rule in the same entry",
                    )
                    .help("give each rule its own `- ` entry, so each can have its own policy"),
                );
                return None;
            }
        };
        let key_pointer = format!("{pointer}/{key}");
        let applicable = match key {
            "min" | "max" => ty.is_numeric(),
            "min_length" | "max_length" => {
                matches!(ty, Type::String | Type::List(_) | Type::Map { .. })
            }
            "pattern" => *ty == Type::String,
            "one_of" => matches!(ty, Type::String | Type::Int | Type::Long),
            _ => ty.is_temporal(),
        };
        if !applicable {
            let fits = match key {
                "min" | "max" => "numbers (int, long, float, double, decimal)",
                "min_length" | "max_length" => "strings, lists and maps",
                "pattern" => "strings",
                "one_of" => "strings, ints and longs",
                _ => "dates and timestamps",
            };
            self.emit(
                self.diag(
                    Code::RuleNotApplicable,
                    format!("`{key}` does not apply to {}", ty.with_article()),
                )
                .at(
                    self.key_span(&key_pointer),
                    format!("not a rule for {}", ty.name()),
                )
                .help(format!("`{key}` applies to {fits}")),
            );
            return None;
        }
        let kind = match key {
            "min" | "max" => {
                let number = doc.min.as_ref().or(doc.max.as_ref())?;
                let bound = match number.as_i64() {
                    Some(i) => Bound::Int(i),
                    None => Bound::Float(number.as_f64()?),
                };
                self.bound_fits(bound, ty, &key_pointer)?;
                if key == "min" {
                    RuleKind::Min(bound)
                } else {
                    RuleKind::Max(bound)
                }
            }
            "min_length" | "max_length" => {
                let n = doc.min_length.or(doc.max_length)?;
                if n < 0 {
                    self.emit(
                        self.diag(Code::NegativeLength, format!("`{key}` is {n}"))
                            .at(self.span(&key_pointer), "lengths are never negative"),
                    );
                    return None;
                }
                if key == "min_length" {
                    RuleKind::MinLength(n as u64)
                } else {
                    RuleKind::MaxLength(n as u64)
                }
            }
            "pattern" => {
                let pattern = doc.pattern.clone()?;
                self.pattern_compiles(&pattern, &key_pointer)?;
                RuleKind::Pattern(pattern)
            }
            "one_of" => RuleKind::OneOf(self.one_of(doc.one_of.as_deref()?, ty, &key_pointer)?),
            "not_before" => {
                RuleKind::NotBefore(self.time_bound(doc.not_before.as_ref()?, &key_pointer)?)
            }
            _ => RuleKind::NotAfter(self.time_bound(doc.not_after.as_ref()?, &key_pointer)?),
        };
        let policy = match doc.policy.as_deref() {
            Some("quarantine") => Policy::Quarantine,
            Some("warn") => Policy::Warn,
            _ => Policy::Reject,
        };
        Some((
            Rule {
                kind,
                policy,
                message: doc.message.clone(),
            },
            key,
        ))
    }

    fn bound_fits(&mut self, bound: Bound, ty: &Type, pointer: &str) -> Option<()> {
        let (fits, range) = match (ty, bound) {
            (Type::Int, Bound::Int(i)) => (
                i32::try_from(i).is_ok(),
                "an int holds -2147483648..=2147483647".to_string(),
            ),
            (Type::Int | Type::Long, Bound::Float(f)) => (
                f.fract() == 0.0 && f.abs() < 9.2e18,
                "an integer bound for an integer field".to_string(),
            ),
            (Type::Float, b) => (
                b.as_f64().abs() <= f64::from(f32::MAX),
                "a float holds about ±3.4e38".to_string(),
            ),
            (Type::Decimal { precision, scale }, b) => {
                let limit = 10f64.powi(i32::from(*precision) - i32::from(*scale));
                (
                    b.as_f64().abs() < limit,
                    format!("a decimal({precision},{scale}) holds less than ±{limit}"),
                )
            }
            _ => (true, String::new()),
        };
        if fits {
            Some(())
        } else {
            self.emit(
                self.diag(
                    Code::BoundOutOfRange,
                    format!("bound {} does not fit {}", bound, ty.with_article()),
                )
                .at(self.span(pointer), "out of the type's range")
                .help(range),
            );
            None
        }
    }

    fn pattern_compiles(&mut self, pattern: &str, pointer: &str) -> Option<()> {
        if pattern.len() > MAX_PATTERN_LEN {
            self.emit(self.diag(Code::InvalidPattern, "pattern too long").at(
                self.span(pointer),
                format!("longer than {MAX_PATTERN_LEN} bytes"),
            ));
            return None;
        }
        // Full-match semantics, the same in every engine: the whole value must match.
        match regex::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(_) => Some(()),
            Err(error) => {
                // regex-syntax reports where in the pattern it failed; point there.
                let detail = error.to_string();
                let mut span = self.span(pointer);
                if let Err(regex_syntax::Error::Parse(e)) =
                    regex_syntax::Parser::new().parse(pattern)
                {
                    let at = e.span();
                    let whole = self.spans.value(pointer).unwrap_or(span);
                    span = self.span_within_scalar(
                        whole,
                        pattern,
                        at.start.offset,
                        at.end.offset - at.start.offset,
                    );
                }
                let message = detail
                    .lines()
                    .last()
                    .unwrap_or("invalid regular expression")
                    .trim()
                    .to_string();
                self.emit(
                    self.diag(Code::InvalidPattern, "invalid regular expression")
                        .at(span, message)
                        .help("patterns use the common subset of Rust, Python and Java regexes; no look-around or back-references"),
                );
                None
            }
        }
    }

    fn one_of(
        &mut self,
        values: &[serde_json::Value],
        ty: &Type,
        pointer: &str,
    ) -> Option<Vec<Literal>> {
        if values.is_empty() {
            self.emit(
                self.diag(Code::EmptyOneOf, "`one_of` lists no values")
                    .at(self.span(pointer), "no value could ever pass")
                    .help("list the allowed values, or remove the rule"),
            );
            return None;
        }
        let mut out: Vec<Literal> = Vec::new();
        let mut ok = true;
        for (i, value) in values.iter().enumerate() {
            let item_pointer = format!("{pointer}/{i}");
            let literal = match (ty, value) {
                (Type::String, serde_json::Value::String(s)) => Some(Literal::String(s.clone())),
                (Type::Int, serde_json::Value::Number(n)) => n
                    .as_i64()
                    .filter(|i| i32::try_from(*i).is_ok())
                    .map(Literal::Int),
                (Type::Long, serde_json::Value::Number(n)) => n.as_i64().map(Literal::Int),
                _ => None,
            };
            match literal {
                Some(literal) if out.contains(&literal) => self.emit(
                    self.diag(Code::DuplicateOneOf, format!("{value} is listed twice"))
                        .at(self.span(&item_pointer), "listed again here"),
                ),
                Some(literal) => out.push(literal),
                None => {
                    ok = false;
                    let help = if *ty == Type::String {
                        "quote it: one_of values of a string field are strings".to_string()
                    } else {
                        format!("values must be integers that fit {}", ty.with_article())
                    };
                    self.emit(
                        self.diag(
                            Code::OneOfTypeMismatch,
                            format!("{value} is not {} value", ty.with_article()),
                        )
                        .at(
                            self.span(&item_pointer),
                            format!("the field is {}", ty.with_article()),
                        )
                        .help(help),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    fn time_bound(&mut self, doc: &TimeBoundDoc, pointer: &str) -> Option<TimeBound> {
        let offset_seconds = match &doc.offset {
            None => Some(0),
            Some(text) => {
                self.duration(text, true, &format!("{pointer}/offset"))
                    .map(|(neg, d)| {
                        let s = d.as_secs() as i64;
                        if neg { -s } else { s }
                    })
            }
        };
        let skew = self
            .duration(&doc.skew, false, &format!("{pointer}/skew"))
            .map(|(_, d)| d);
        Some(TimeBound {
            offset_seconds: offset_seconds?,
            skew_seconds: skew?.as_secs(),
        })
    }

    pub(crate) fn duration(
        &mut self,
        text: &str,
        signed: bool,
        pointer: &str,
    ) -> Option<(bool, Duration)> {
        let (negative, body) = match text.trim().strip_prefix('-') {
            Some(rest) if signed => (true, rest),
            Some(_) => {
                self.emit(
                    self.diag(Code::InvalidDuration, format!("negative duration `{text}`"))
                        .at(self.span(pointer), "a skew tolerance is never negative")
                        .help("use the offset for direction, the skew for tolerance"),
                );
                return None;
            }
            None => (false, text.trim()),
        };
        match humantime::parse_duration(body) {
            Ok(d) if d.subsec_nanos() == 0 => Some((negative, d)),
            Ok(_) => {
                self.emit(
                    self.diag(
                        Code::InvalidDuration,
                        format!("duration `{text}` is not a whole number of seconds"),
                    )
                    .at(self.span(pointer), "sub-second precision is not supported"),
                );
                None
            }
            Err(error) => {
                self.emit(
                    self.diag(Code::InvalidDuration, format!("invalid duration `{text}`"))
                        .at(self.span(pointer), error.to_string())
                        .help(
                            "write a number and a unit: 30s, 15m, 14h, 7d, or combined like 1h30m",
                        ),
                );
                None
            }
        }
    }

    /// Rules that no value can satisfy together.
    fn contradictions(&mut self, placed: &[(Rule, String)], inherited: &[Rule], ty: &Type) {
        let find = |key: &str| -> Option<(&Rule, Option<&str>)> {
            placed
                .iter()
                .find(|(r, _)| r.kind.key() == key)
                .map(|(r, p)| (r, Some(p.as_str())))
                .or_else(|| {
                    inherited
                        .iter()
                        .find(|r| r.kind.key() == key)
                        .map(|r| (r, None))
                })
        };
        let span_of = |p: Option<&str>, this: &Self| p.map(|p| this.span(p));
        // Report at whichever side is new in this rule list.
        let report = |this: &mut Self,
                      code: Code,
                      message: String,
                      a: Option<&str>,
                      b: Option<&str>,
                      label_a: &str,
                      label_b: &str,
                      help: &str| {
            let (primary, secondary) = match (span_of(b, this), span_of(a, this)) {
                (Some(pb), sa) => ((pb, label_b), sa.map(|s| (s, label_a))),
                (None, Some(sa)) => ((sa, label_a), None),
                (None, None) => return,
            };
            let mut d = this.diag(code, message).at(primary.0, primary.1);
            match secondary {
                Some((s, l)) => d = d.also(s, l),
                None => d = d.note(
                    "the other rule is the envelope field's own, which applies to every variant",
                ),
            }
            this.emit(d.help(help));
        };

        if let (Some((min, pa)), Some((max, pb))) = (find("min"), find("max"))
            && let (RuleKind::Min(lo), RuleKind::Max(hi)) = (&min.kind, &max.kind)
            && lo.as_f64() > hi.as_f64()
        {
            report(
                self,
                Code::MinAboveMax,
                format!("min {} is greater than max {}", *lo, *hi),
                pa,
                pb,
                "min here",
                "max here",
                "swap them, or widen the range: as written, no value passes",
            );
        }
        let min_len = find("min_length");
        let max_len = find("max_length");
        if let (Some((min, pa)), Some((max, pb))) = (min_len, max_len)
            && let (RuleKind::MinLength(lo), RuleKind::MaxLength(hi)) = (&min.kind, &max.kind)
            && lo > hi
        {
            report(
                self,
                Code::MinLengthAboveMaxLength,
                format!("min_length {lo} is greater than max_length {hi}"),
                pa,
                pb,
                "min_length here",
                "max_length here",
                "as written, no value passes",
            );
        }
        if let Some((min, p)) = min_len
            && min.kind == RuleKind::MinLength(0)
            && p.is_some()
        {
            self.emit(
                self.diag(Code::RedundantRule, "`min_length: 0` never fails")
                    .at(
                        self.key_span(p.unwrap_or_default()),
                        "every value has a length of at least 0",
                    )
                    .help("remove it"),
            );
        }
        if let (Some((nb, pa)), Some((na, pb))) = (find("not_before"), find("not_after"))
            && let (RuleKind::NotBefore(lo), RuleKind::NotAfter(hi)) = (&nb.kind, &na.kind)
        {
            let earliest = lo.earliest_offset();
            let latest = hi.latest_offset();
            if earliest > latest {
                report(
                    self,
                    Code::EmptyTimeWindow,
                    "the time window is empty".into(),
                    pa,
                    pb,
                    "not_before here",
                    "not_after here",
                    "not_before (offset - skew) must not be later than not_after (offset + skew)",
                );
            }
        }
        // Every one_of value must be able to pass the field's other rules.
        if let Some((one_of, p)) = find("one_of") {
            let RuleKind::OneOf(values) = &one_of.kind else {
                return;
            };
            let others: Vec<&Rule> = placed
                .iter()
                .map(|(r, _)| r)
                .chain(inherited)
                .filter(|r| r.kind.key() != "one_of")
                .collect();
            for (i, value) in values.iter().enumerate() {
                if let Some(rule) = others.iter().find(|r| !literal_passes(value, &r.kind, ty)) {
                    let value_pointer = p.map(|p| format!("{p}/{i}"));
                    let span = match &value_pointer {
                        Some(vp) => self.span(vp),
                        None => continue,
                    };
                    let shown = match value {
                        Literal::String(s) => format!("{s:?}"),
                        Literal::Int(n) => n.to_string(),
                    };
                    self.emit(
                        self.diag(
                            Code::ImpossibleRule,
                            format!("one_of value {shown} can never pass `{}`", rule.kind.key()),
                        )
                        .at(span, format!("rejected by `{}`", rule.kind.key()))
                        .help("remove the value, or relax the other rule"),
                    );
                }
            }
        }
    }
}

fn literal_passes(value: &Literal, rule: &RuleKind, ty: &Type) -> bool {
    match (value, rule) {
        (Literal::String(s), RuleKind::MinLength(n)) => s.chars().count() as u64 >= *n,
        (Literal::String(s), RuleKind::MaxLength(n)) => s.chars().count() as u64 <= *n,
        (Literal::String(s), RuleKind::Pattern(p)) => regex::Regex::new(&format!("^(?:{p})$"))
            .map(|r| r.is_match(s))
            .unwrap_or(true),
        (Literal::Int(i), RuleKind::Min(b)) if ty.is_numeric() => (*i as f64) >= b.as_f64(),
        (Literal::Int(i), RuleKind::Max(b)) if ty.is_numeric() => (*i as f64) <= b.as_f64(),
        _ => true,
    }
}
