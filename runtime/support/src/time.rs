//! Dates and timestamps, parsed by hand: a fixed format is a few byte comparisons, several
//! times faster than a general strftime parser, and the same rules are easy to mirror in Spark.
//!
//! Timestamps are microseconds since the Unix epoch; dates are days since the epoch (Iceberg's
//! and Arrow's representations).

/// One piece of a `timestamp` format (mirrors the compiler's IR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Literal(&'static str),
    /// Four digits.
    Year,
    /// Two digits each.
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// An optional `.` followed by 1 to 9 digits.
    Fraction,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = bytes.get(at..at + n)?;
    slice.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Parses `text` against `items`; the whole text must be consumed. Returns microseconds.
pub fn parse_timestamp(text: &str, items: &[Item]) -> Option<i64> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let (mut year, mut month, mut day) = (1970i64, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut micros) = (0u32, 0u32, 0u32, 0u32);
    for item in items {
        match *item {
            Item::Literal(lit) => {
                if bytes.get(at..at + lit.len())? != lit.as_bytes() {
                    return None;
                }
                at += lit.len();
            }
            Item::Year => {
                year = i64::from(digits(bytes, at, 4)?);
                at += 4;
            }
            Item::Fraction => {
                if bytes.get(at) == Some(&b'.') {
                    let start = at + 1;
                    let mut end = start;
                    while end < bytes.len() && bytes[end].is_ascii_digit() {
                        end += 1;
                    }
                    let n = end - start;
                    if n == 0 || n > 9 {
                        return None;
                    }
                    // Truncate to microseconds, as Spark and Iceberg store them.
                    let kept = n.min(6);
                    micros = digits(bytes, start, kept)? * 10u32.pow((6 - kept) as u32);
                    at = end;
                }
            }
            field => {
                let value = digits(bytes, at, 2)?;
                at += 2;
                match field {
                    Item::Month => month = value,
                    Item::Day => day = value,
                    Item::Hour => hour = value,
                    Item::Minute => minute = value,
                    _ => second = value,
                }
            }
        }
    }
    if at != bytes.len()
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
    {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some(seconds * 1_000_000 + i64::from(micros))
}

/// `YYYY-MM-DD` → days since the epoch.
pub fn parse_date(text: &str) -> Option<i32> {
    const ITEMS: &[Item] = &[
        Item::Year,
        Item::Literal("-"),
        Item::Month,
        Item::Literal("-"),
        Item::Day,
    ];
    parse_timestamp(text, ITEMS).map(|micros| (micros / 86_400_000_000) as i32)
}

/// RFC 3339 (`2024-02-22T03:03:02.5+01:00`, `Z` or an offset; `t`/`z`/space accepted as RFC
/// 3339 allows) → microseconds UTC.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let sep = bytes[10];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    // Split off the zone: `Z`, or `+HH:MM` / `-HH:MM` at the end.
    let (local, offset_seconds) = match bytes[bytes.len() - 1] {
        b'Z' | b'z' => (&text[..text.len() - 1], 0i64),
        _ => {
            let zone = text.len().checked_sub(6)?;
            let sign = match bytes[zone] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if bytes[zone + 3] != b':' {
                return None;
            }
            let (h, m) = (digits(bytes, zone + 1, 2)?, digits(bytes, zone + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            (&text[..zone], sign * i64::from(h * 3600 + m * 60))
        }
    };
    let sep = [sep];
    let sep = std::str::from_utf8(&sep).ok()?;
    let items = [
        Item::Year,
        Item::Literal("-"),
        Item::Month,
        Item::Literal("-"),
        Item::Day,
        Item::Literal(if sep == "T" {
            "T"
        } else if sep == "t" {
            "t"
        } else {
            " "
        }),
        Item::Hour,
        Item::Literal(":"),
        Item::Minute,
        Item::Literal(":"),
        Item::Second,
        Item::Fraction,
    ];
    parse_timestamp(local, &items).map(|micros| micros - offset_seconds * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, NaiveDateTime};

    const REFERENCE: &[Item] = &[
        Item::Year,
        Item::Literal("-"),
        Item::Month,
        Item::Literal("-"),
        Item::Day,
        Item::Literal(" "),
        Item::Hour,
        Item::Literal(":"),
        Item::Minute,
        Item::Literal(":"),
        Item::Second,
    ];

    fn chrono_micros(text: &str) -> Option<i64> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| t.and_utc().timestamp_micros())
    }

    #[test]
    fn agrees_with_chrono_on_the_reference_format() {
        for text in [
            "2024-02-22 03:03:02",
            "1970-01-01 00:00:00",
            "2000-02-29 23:59:59",
            "1900-02-29 00:00:00",
            "2023-02-29 00:00:00",
            "2024-13-01 00:00:00",
            "2024-04-31 00:00:00",
            "2024-02-22 24:00:00",
            "2024-02-22 03:60:00",
            "2024-02-22 03:03:02 ",
            "2024-02-22T03:03:02",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59",
        ] {
            assert_eq!(
                parse_timestamp(text, REFERENCE),
                chrono_micros(text),
                "{text}"
            );
        }
    }

    #[test]
    fn no_leap_seconds() {
        // chrono would accept this; Spark cannot represent it, and all engines must agree.
        assert_eq!(parse_timestamp("2024-02-22 03:03:60", REFERENCE), None);
        // Fields are fixed-width (as Spark's `MM`), where chrono would accept `2`.
        assert_eq!(parse_timestamp("2024-2-22 03:03:02", REFERENCE), None);
    }

    #[test]
    fn fractions_are_optional_and_truncated_to_micros() {
        let items = [REFERENCE, &[Item::Fraction]].concat();
        let base = parse_timestamp("2024-02-22 03:03:02", REFERENCE).unwrap();
        assert_eq!(parse_timestamp("2024-02-22 03:03:02", &items), Some(base));
        assert_eq!(
            parse_timestamp("2024-02-22 03:03:02.5", &items),
            Some(base + 500_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-22 03:03:02.123456789", &items),
            Some(base + 123_456)
        );
        assert_eq!(parse_timestamp("2024-02-22 03:03:02.", &items), None);
    }

    #[test]
    fn rfc3339_agrees_with_chrono() {
        for text in [
            "2024-02-22T03:03:02Z",
            "2024-02-22T03:03:02.25+01:30",
            "2024-02-22t03:03:02z",
            "2024-02-22 03:03:02-05:00",
            "2024-02-22T03:03:02",
            "2024-02-22T03:03:02+0100",
            "2024-02-30T03:03:02Z",
        ] {
            let expected = DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp_micros());
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        assert_eq!(
            parse_date("2024-02-29"),
            Some((d - epoch).num_days() as i32)
        );
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("1969-12-31"), Some(-1));
    }
}
