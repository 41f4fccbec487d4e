//! Exact decimals: text → unscaled `i128` at a given precision and scale.

/// Why a decimal was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a decimal number at all.
    Syntax,
    /// More fraction digits than the scale.
    TooPrecise,
    /// More integer digits than precision - scale.
    TooLarge,
}

/// Parses `-?digits(.digits)?(e[+-]?digits)?` exactly. The result is the unscaled value:
/// `parse("12.3", 5, 2)` is `1230`.
pub fn parse(text: &str, precision: u8, scale: u8) -> Result<i128, DecimalError> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (
            &body[..i],
            body[i + 1..]
                .parse::<i32>()
                .map_err(|_| DecimalError::Syntax)?,
        ),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::Syntax);
    }
    if mantissa.ends_with('.') {
        return Err(DecimalError::Syntax);
    }
    // digits × 10^(exponent - frac_len)
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let point = i64::from(exponent) - frac_part.len() as i64 + i64::from(scale);
    // Unscaled value = digits × 10^point; a negative point must only drop zeros.
    let unscaled_digits: String = if point >= 0 {
        if digits.is_empty() {
            String::new()
        } else {
            format!("{digits}{}", "0".repeat(point.min(80) as usize))
        }
    } else {
        let drop = (-point) as usize;
        let (keep, dropped) = if drop >= digits.len() {
            ("", digits)
        } else {
            digits.split_at(digits.len() - drop)
        };
        if dropped.bytes().any(|b| b != b'0') {
            return Err(DecimalError::TooPrecise);
        }
        keep.to_string()
    };
    if unscaled_digits.len() > usize::from(precision) {
        return Err(DecimalError::TooLarge);
    }
    let value: i128 = if unscaled_digits.is_empty() {
        0
    } else {
        unscaled_digits
            .parse()
            .map_err(|_| DecimalError::TooLarge)?
    };
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values() {
        assert_eq!(parse("12.3", 5, 2), Ok(1230));
        assert_eq!(parse("-0.05", 5, 2), Ok(-5));
        assert_eq!(parse("1e2", 5, 2), Ok(10000));
        assert_eq!(parse("1.50", 5, 1), Ok(15));
        assert_eq!(parse("0", 1, 0), Ok(0));
        assert_eq!(parse("999.99", 5, 2), Ok(99999));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("1000.00", 5, 2), Err(DecimalError::TooLarge));
        assert_eq!(parse("1.234", 5, 2), Err(DecimalError::TooPrecise));
        for bad in [
            "", "-", ".5", "5.", "1.2.3", "abc", "1e", "+1", "0x10", " 1",
        ] {
            assert_eq!(parse(bad, 10, 2), Err(DecimalError::Syntax), "{bad}");
        }
    }
}
