//! Lenient typed reads: each returns the value, or records why not and returns `None`.
//!
//! Generated validators call one of these per field. A wrong type never stops the walk, so an
//! event with three problems gets three violations.
//!
//! Messages never quote the value: they reach the client, the quarantine table and the
//! console (which masks `pii` fields in payloads, not in messages). They say what the value is
//! not, in the compiler's words (`backend/messages.rs`), so every engine writes the same text.

use simd_json::StaticNode;

use crate::json::{Json, Kind};
use crate::time::{self, Item};
use crate::{Code, Collector, Policy, decimal};

fn wrong_type(cx: &mut Collector, field: Option<&str>, expected: &str, value: &Json<'_, '_>) {
    cx.report(
        Code::WrongType,
        field,
        Policy::Reject,
        format!("expected {expected}, found {}", value.kind().as_str()),
    );
}

pub fn string<'a>(value: Json<'_, 'a>, cx: &mut Collector, field: Option<&str>) -> Option<&'a str> {
    let s = value.as_str();
    if s.is_none() {
        wrong_type(cx, field, "string", &value);
    }
    s
}

pub fn boolean(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<bool> {
    let b = value.as_bool();
    if b.is_none() {
        wrong_type(cx, field, "boolean", &value);
    }
    b
}

/// An integer in `min..=max`. Integral floats (`5.0`, `1e3`) count as integers, as in JSON
/// Schema; numbers outside the range are `out_of_range`.
fn integer(
    value: Json<'_, '_>,
    cx: &mut Collector,
    field: Option<&str>,
    min: i64,
    max: i64,
    name: &str,
) -> Option<i64> {
    let n = match value.as_static() {
        Some(StaticNode::I64(i)) => Some(i128::from(i)),
        Some(StaticNode::U64(u)) => Some(i128::from(u)),
        Some(StaticNode::F64(f)) if f.fract() == 0.0 && f.is_finite() => {
            if f.abs() < 1e38 {
                Some(f as i128)
            } else {
                Some(i128::MAX)
            }
        }
        _ => None,
    };
    match n {
        None => {
            wrong_type(cx, field, "integer", &value);
            None
        }
        Some(n) if n < i128::from(min) || n > i128::from(max) => {
            cx.report(
                Code::OutOfRange,
                field,
                Policy::Reject,
                format!("does not fit {name} ({min}..={max})"),
            );
            None
        }
        Some(n) => Some(n as i64),
    }
}

pub fn int(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<i32> {
    integer(
        value,
        cx,
        field,
        i64::from(i32::MIN),
        i64::from(i32::MAX),
        "an int",
    )
    .map(|n| n as i32)
}

pub fn long(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<i64> {
    integer(value, cx, field, i64::MIN, i64::MAX, "a long")
}

fn number(value: &Json<'_, '_>) -> Option<f64> {
    match value.as_static() {
        Some(StaticNode::I64(i)) => Some(i as f64),
        Some(StaticNode::U64(u)) => Some(u as f64),
        Some(StaticNode::F64(f)) => Some(f),
        _ => None,
    }
}

pub fn double(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<f64> {
    let n = number(&value);
    if n.is_none() {
        wrong_type(cx, field, "number", &value);
    }
    n
}

pub fn float(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<f32> {
    let n = double(value, cx, field)?;
    if n.abs() > f64::from(f32::MAX) {
        cx.report(
            Code::OutOfRange,
            field,
            Policy::Reject,
            "does not fit a float",
        );
        return None;
    }
    Some(n as f32)
}

/// A decimal from a JSON number or a numeric string, exactly; the unscaled value.
pub fn decimal(
    value: Json<'_, '_>,
    cx: &mut Collector,
    field: Option<&str>,
    precision: u8,
    scale: u8,
) -> Option<i128> {
    let text = match value.as_static() {
        Some(StaticNode::I64(i)) => i.to_string(),
        Some(StaticNode::U64(u)) => u.to_string(),
        // Rust prints the shortest text that reads back as the same float: "12.34", not
        // "12.339999…", so a decimal sent as a JSON number keeps the digits the producer wrote.
        Some(StaticNode::F64(f)) => format!("{f}"),
        _ => match value.as_str() {
            Some(s) => s.to_string(),
            None => {
                wrong_type(cx, field, "number or numeric string", &value);
                return None;
            }
        },
    };
    match decimal::parse(&text, precision, scale) {
        Ok(unscaled) => Some(unscaled),
        Err(decimal::DecimalError::Syntax) => {
            cx.report(
                Code::InvalidFormat,
                field,
                Policy::Reject,
                "is not a decimal number",
            );
            None
        }
        Err(decimal::DecimalError::TooPrecise) => {
            cx.report(
                Code::OutOfRange,
                field,
                Policy::Reject,
                format!("more than {scale} digits after the point"),
            );
            None
        }
        Err(decimal::DecimalError::TooLarge) => {
            cx.report(
                Code::OutOfRange,
                field,
                Policy::Reject,
                format!("does not fit decimal({precision},{scale})"),
            );
            None
        }
    }
}

pub fn date(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<i32> {
    let s = string(value, cx, field)?;
    let d = time::parse_date(s);
    if d.is_none() {
        cx.report(
            Code::InvalidFormat,
            field,
            Policy::Reject,
            "is not a date (YYYY-MM-DD)",
        );
    }
    d
}

pub fn timestamp(
    value: Json<'_, '_>,
    cx: &mut Collector,
    field: Option<&str>,
    items: &[Item],
    format: &str,
) -> Option<i64> {
    let s = string(value, cx, field)?;
    let t = time::parse_timestamp(s, items);
    if t.is_none() {
        cx.report(
            Code::InvalidFormat,
            field,
            Policy::Reject,
            format!("does not match the format {format:?}"),
        );
    }
    t
}

pub fn timestamptz(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<i64> {
    let s = string(value, cx, field)?;
    let t = time::parse_rfc3339(s);
    if t.is_none() {
        cx.report(
            Code::InvalidFormat,
            field,
            Policy::Reject,
            "is not an RFC 3339 timestamp",
        );
    }
    t
}

/// A canonical UUID (`8-4-4-4-12` hex digits, any case) as 16 big-endian bytes.
pub fn uuid(value: Json<'_, '_>, cx: &mut Collector, field: Option<&str>) -> Option<[u8; 16]> {
    let s = string(value, cx, field)?;
    let u = parse_uuid(s);
    if u.is_none() {
        cx.report(Code::InvalidFormat, field, Policy::Reject, "is not a UUID");
    }
    u
}

pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = bytes.iter().filter(|&&b| b != b'-');
    for byte in &mut out {
        let hi = (*nibbles.next()? as char).to_digit(16)?;
        let lo = (*nibbles.next()? as char).to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Formats 16 bytes as a lowercase canonical UUID.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Checks the value is an object; records a wrong type otherwise.
pub fn object<'t, 'a>(
    value: Json<'t, 'a>,
    cx: &mut Collector,
    field: Option<&str>,
) -> Option<Json<'t, 'a>> {
    if value.kind() == Kind::Object {
        Some(value)
    } else {
        wrong_type(cx, field, "object", &value);
        None
    }
}

/// Checks the value is an array; records a wrong type otherwise.
pub fn array<'t, 'a>(
    value: Json<'t, 'a>,
    cx: &mut Collector,
    field: Option<&str>,
) -> Option<Json<'t, 'a>> {
    if value.kind() == Kind::Array {
        Some(value)
    } else {
        wrong_type(cx, field, "array", &value);
        None
    }
}

/// Characters (Unicode scalar values) in `s`, the unit of `min_length`/`max_length` in every
/// engine (Rust, Python `len`, Spark `length`, JSON Schema).
pub fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Parser;

    fn read<T>(
        json: &str,
        f: impl Fn(Json<'_, '_>, &mut Collector) -> Option<T>,
    ) -> (Option<T>, Vec<Code>) {
        let mut parser = Parser::new();
        let doc = parser.parse(json.as_bytes()).unwrap();
        let mut cx = Collector::new();
        let v = f(doc.root(), &mut cx);
        (v, cx.violations.iter().map(|v| v.code).collect())
    }

    #[test]
    fn ints() {
        assert_eq!(read("5", |v, cx| int(v, cx, None)), (Some(5), vec![]));
        assert_eq!(read("5.0", |v, cx| int(v, cx, None)), (Some(5), vec![]));
        assert_eq!(
            read("5.5", |v, cx| int(v, cx, None)),
            (None, vec![Code::WrongType])
        );
        assert_eq!(
            read("3000000000", |v, cx| int(v, cx, None)),
            (None, vec![Code::OutOfRange])
        );
        assert_eq!(
            read("1e300", |v, cx| long(v, cx, None)),
            (None, vec![Code::OutOfRange])
        );
        assert_eq!(
            read("\"5\"", |v, cx| int(v, cx, None)),
            (None, vec![Code::WrongType])
        );
    }

    #[test]
    fn decimals_keep_written_digits() {
        assert_eq!(
            read("12.34", |v, cx| decimal(v, cx, None, 12, 2)),
            (Some(1234), vec![])
        );
        assert_eq!(
            read("\"12.34\"", |v, cx| decimal(v, cx, None, 12, 2)),
            (Some(1234), vec![])
        );
        assert_eq!(
            read("0.1", |v, cx| decimal(v, cx, None, 3, 2)),
            (Some(10), vec![])
        );
        assert_eq!(
            read("12.345", |v, cx| decimal(v, cx, None, 12, 2)),
            (None, vec![Code::OutOfRange])
        );
        assert_eq!(
            read("\"x\"", |v, cx| decimal(v, cx, None, 12, 2)),
            (None, vec![Code::InvalidFormat])
        );
    }

    #[test]
    fn uuids() {
        let u = "123e4567-e89b-12d3-a456-426614174000";
        let parsed = parse_uuid(u).unwrap();
        assert_eq!(format_uuid(&parsed), u);
        assert_eq!(parse_uuid(&u.to_uppercase()), Some(parsed));
        assert_eq!(parse_uuid("123e4567e89b12d3a456426614174000"), None);
        assert_eq!(parse_uuid("123e4567-e89b-12d3-a456-42661417400g"), None);
    }

    #[test]
    fn char_len_counts_scalars() {
        assert_eq!(char_len("abc"), 3);
        assert_eq!(char_len("żółw🐢"), 5);
    }
}
