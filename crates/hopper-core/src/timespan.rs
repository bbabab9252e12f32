//! Locust's time-span syntax, used by `--run-time`, `--stop-timeout` and the
//! web UI's `run_time` field.
//!
//! A span is either a bare number of seconds (`20`) or hours, minutes and
//! seconds in that fixed order, each part optional but at least one present
//! (`20s`, `3m`, `2h`, `1h30m`, `3h30m10s`). Units are lower-case only and
//! nothing else (spaces, signs, fractions) is allowed, exactly as Locust's
//! `locust.util.timespan.parse_timespan`. Digits are ASCII only: Python's `\d`
//! also accepts other scripts' decimal digits, which no one types on purpose.

use std::fmt;

/// Why a string is not a valid time span.
///
/// The `Display` texts are Locust's own, so an argument error reads the same
/// as `locust: error: argument -t/--run-time: <text>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimespanError {
    /// The string was empty. Locust reports this case with a shorter message
    /// than other malformed spans, and so do we.
    Empty,
    /// The string is neither all digits nor `[<n>h][<n>m][<n>s]`.
    Invalid,
    /// The span is well formed but its seconds do not fit in a `u64`.
    TooLarge,
}

impl fmt::Display for TimespanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimespanError::Empty => "Invalid time span format",
            TimespanError::Invalid => {
                "Invalid time span format. Valid formats: 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc."
            }
            TimespanError::TooLarge => "Time span is too large",
        })
    }
}

impl std::error::Error for TimespanError {}

/// Parses a Locust time span into whole seconds: `"90"` → 90,
/// `"1h30m"` → 5400, `"1.5m"` → [`TimespanError::Invalid`].
pub fn parse_timespan(s: &str) -> Result<u64, TimespanError> {
    if s.is_empty() {
        return Err(TimespanError::Empty);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| TimespanError::TooLarge);
    }

    // Walk the string once, accepting `<digits><unit>` groups whose units
    // must appear in strictly increasing position within "hms". This is the
    // hand-written equivalent of fully matching `(\d+h)?(\d+m)?(\d+s)?`.
    const UNITS: [(u8, u64); 3] = [(b'h', 3600), (b'm', 60), (b's', 1)];
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while pos < bytes.len() {
        let digits_end = pos
            + bytes[pos..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        if digits_end == pos || digits_end == bytes.len() {
            // A unit without a number, or a number without a unit after
            // other groups (e.g. `10s5`).
            return Err(TimespanError::Invalid);
        }
        let unit = bytes[digits_end];
        let offset = UNITS[next_unit..]
            .iter()
            .position(|&(u, _)| u == unit)
            .ok_or(TimespanError::Invalid)?;
        let (_, multiplier) = UNITS[next_unit + offset];
        next_unit += offset + 1;

        let amount: u64 = s[pos..digits_end]
            .parse()
            .map_err(|_| TimespanError::TooLarge)?;
        total = amount
            .checked_mul(multiplier)
            .and_then(|secs| total.checked_add(secs))
            .ok_or(TimespanError::TooLarge)?;
        pos = digits_end + 1;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVALID: &str =
        "Invalid time span format. Valid formats: 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc.";

    #[test]
    fn bare_digits_are_seconds() {
        assert_eq!(parse_timespan("20"), Ok(20));
        assert_eq!(parse_timespan("0"), Ok(0));
        assert_eq!(parse_timespan("007"), Ok(7));
    }

    #[test]
    fn single_units() {
        assert_eq!(parse_timespan("20s"), Ok(20));
        assert_eq!(parse_timespan("3m"), Ok(180));
        assert_eq!(parse_timespan("2h"), Ok(7200));
    }

    #[test]
    fn combined_units_in_order() {
        assert_eq!(parse_timespan("1h30m"), Ok(5400));
        assert_eq!(parse_timespan("1h20m"), Ok(4800));
        assert_eq!(parse_timespan("3h30m10s"), Ok(12610));
        assert_eq!(parse_timespan("1h10s"), Ok(3610));
        assert_eq!(parse_timespan("5m30s"), Ok(330));
        assert_eq!(parse_timespan("00h00m00s"), Ok(0));
        // Parts are not range-limited: 90m is simply 5400 seconds.
        assert_eq!(parse_timespan("90m"), Ok(5400));
    }

    #[test]
    fn malformed_spans_are_rejected_with_locusts_message() {
        for bad in [
            "1.5m", "5m1h", "1h1h", "s1", "h", "1hm", "10s5", "-5", "+5", " 5", "5 ", "1H",
            "1h 30m", "1d", "m", "1h\n", "²",
        ] {
            let err = parse_timespan(bad).unwrap_err();
            assert_eq!(err, TimespanError::Invalid, "{bad:?}");
            assert_eq!(err.to_string(), INVALID);
        }
    }

    #[test]
    fn empty_has_locusts_short_message() {
        assert_eq!(parse_timespan(""), Err(TimespanError::Empty));
        assert_eq!(TimespanError::Empty.to_string(), "Invalid time span format");
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(
            parse_timespan("99999999999999999999999"),
            Err(TimespanError::TooLarge)
        );
        assert_eq!(
            parse_timespan("5124095576030432h"),
            Err(TimespanError::TooLarge)
        );
        assert_eq!(parse_timespan(&format!("{}", u64::MAX)), Ok(u64::MAX));
    }
}
