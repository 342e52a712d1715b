//! Kubernetes resource quantities: parsing (`500m`, `16Gi`, `1e3`) for checks and comparisons.

/// Parses a quantity into its value in base units (cores, bytes).
/// Errors say what would be valid, since `8Gb` or `8GB` are common mistakes.
pub fn parse(q: &str) -> Result<f64, String> {
    let invalid = || {
        format!(
            "{q:?} is not a valid Kubernetes quantity: write a number with an optional suffix \
             (binary Ki Mi Gi Ti Pi Ei, decimal m k M G T P E), e.g. \"500m\", \"2\", \"16Gi\""
        )
    };
    let q_trim = q.trim();
    if q_trim.is_empty() || q_trim != q {
        return Err(invalid());
    }
    let split =
        q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    if num.is_empty() || num.matches('.').count() > 1 || num.starts_with('.') || num.ends_with('.') {
        return Err(invalid());
    }
    let (sign, digits) = match num.as_bytes()[0] {
        b'-' => (-1.0, &num[1..]),
        b'+' => (1.0, &num[1..]),
        _ => (1.0, num),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(invalid());
    }
    let base: f64 = digits.parse().map_err(|_| invalid())?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().map_err(|_| invalid())?;
            10f64.powi(exp)
        }
        _ => return Err(invalid()),
    };
    let v = sign * base * mult;
    if v < 0.0 {
        return Err(format!("{q:?} is negative; resource amounts must be 0 or more"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn valid_quantities() {
        assert_eq!(parse("2").unwrap(), 2.0);
        assert_eq!(parse("500m").unwrap(), 0.5);
        assert_eq!(parse("16Gi").unwrap(), 16.0 * 1024f64.powi(3));
        assert_eq!(parse("1e3").unwrap(), 1000.0);
        assert_eq!(parse("1.5").unwrap(), 1.5);
    }

    #[test]
    fn invalid_quantities() {
        for q in ["8Gb", "8GB", "", " 2", "1.2.3", "Gi", "2 Gi", "1e", "-1"] {
            assert!(parse(q).is_err(), "{q} should be invalid");
        }
    }
}
