//! Python's text formatting, for outputs that must read exactly like Locust's.
//!
//! Locust writes numbers with Python's `str()`/`repr()` (CSV, JSON, HTML report), quotes error
//! texts with `repr()` before hashing them into error keys, and stamps times in UTC ISO form or in
//! the `logging` module's `asctime` form. Rust's own formatting differs in small ways (no `.0` on
//! integral floats, no exponent form, different string escapes), and those small ways break byte
//! comparisons, error-key matching across a mixed cluster, and scripts that parse the files.

use std::fmt;

/// A number as Python holds it: Locust's figures are sometimes `int` and sometimes `float`
/// (`current_rps` is `0` with no traffic but `0.0` over an empty window; a clamped median is a
/// float while a bucketed one is an int), and `str()` prints the two differently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyNum {
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

impl PyNum {
    /// The value as a float, whichever kind it is.
    pub fn as_f64(self) -> f64 {
        match self {
            PyNum::Int(i) => i as f64,
            PyNum::Float(f) => f,
        }
    }

    /// Python's `int(x)`: truncation toward zero, which is also what `"%d" % x` prints.
    pub fn trunc(self) -> i64 {
        match self {
            PyNum::Int(i) => i,
            // `as` saturates and maps NaN to 0, where Python would raise; no figure here is NaN.
            PyNum::Float(f) => f.trunc() as i64,
        }
    }

    /// Python truthiness: `0` and `0.0` are false. Locust writes `x or 0` in several places.
    pub fn is_zero(self) -> bool {
        self.as_f64() == 0.0
    }
}

impl fmt::Display for PyNum {
    /// Python's `str()` of the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyNum::Int(i) => write!(f, "{i}"),
            PyNum::Float(x) => f.write_str(&py_float(*x)),
        }
    }
}

/// Python's `repr(float)` (identical to `str(float)` in Python 3): the shortest text that reads
/// back as the same float, always with a decimal point (`5.0`), and in exponent form when the
/// decimal exponent is below -4 or at least 16 (`1e-05`, `1e+16`, `1.5e+16`).
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    // Rust's `{:e}` already gives the shortest round-trip digits; only the layout differs.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();

    let mut out = String::with_capacity(digits.len() + 8);
    if x.is_sign_negative() {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(mantissa);
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    }
    out
}

/// Python's `round(x, ndigits)` for `ndigits >= 0`: CPython rounds the exact binary value to
/// `ndigits` decimals, ties to even, then reads the text back. Rust's `{:.N}` performs the same
/// correctly rounded conversion, so going through the text reproduces Python bit for bit.
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

/// Locust's `proper_round(val, digits)`: nudges the value up by `10^-(len(str(val)) + 1)` before
/// Python's `round`, an approximate round-half-up used for JSON min/max and chart averages.
pub fn proper_round(x: f64, digits: usize) -> f64 {
    let nudge = 10f64.powi(-(py_float(x).len() as i32) - 1);
    py_round(x + nudge, digits)
}

/// Python's `repr()` of a `str`: single quotes unless the text contains `'` and no `"`; escapes
/// the backslash, the chosen quote, `\t` `\n` `\r`, other control characters as `\xhh`, and
/// non-printable non-ASCII characters as `\xhh`, `\uhhhh` or `\Uhhhhhhhh`.
///
/// Printability follows Python's rule (everything except the Unicode categories Cc, Cf, Cs, Co,
/// Cn, Zl, Zp and Zs other than the ASCII space) for every category except unassigned code
/// points (Cn), which need the full Unicode database; they are printed as they are.
pub fn python_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if !is_printable(c) => {
                let v = c as u32;
                if v <= 0xff {
                    out.push_str(&format!("\\x{v:02x}"));
                } else if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one non-ASCII character, minus unassigned code points.
fn is_printable(c: char) -> bool {
    let v = c as u32;
    let non_printable = matches!(v,
        // Cc: C1 controls
        0x80..=0x9f
        // Zs: spaces other than U+0020
        | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x202f | 0x205f | 0x3000
        // Zl, Zp
        | 0x2028 | 0x2029
        // Cf: format characters
        | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        // Co: private use
        | 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd
        // Cn that every Unicode version leaves unassigned: the noncharacters
        | 0xfdd0..=0xfdef
    ) || (v & 0xfffe) == 0xfffe;
    !non_printable
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC, as Locust's `format_utc_timestamp` (the epoch is truncated to a
/// whole second first, like Python's `int()`).
pub fn utc_iso(epoch: f64) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(epoch.trunc() as i64);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `YYYY-MM-DD HH:MM:SS,mmm` in UTC: the `asctime` of Python's `logging` (which truncates the
/// milliseconds rather than rounding them).
pub fn log_time(epoch: f64) -> String {
    let whole = epoch.trunc();
    let millis = ((epoch - whole) * 1000.0).trunc() as i64;
    let (y, mo, d, h, mi, s) = civil_utc(whole as i64);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{millis:03}")
}

/// Splits whole seconds since the Unix epoch into a UTC civil date and time of day.
fn civil_utc(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod % 3600 / 60, sod % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): shift to eras of 400 years starting on 0000-03-01 so leap days fall at
/// the end of each year, then read year, month and day off the day-of-era.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python() {
        let cases = [
            (5.0, "5.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (1e-4, "0.0001"),
            (1.234e-7, "1.234e-07"),
            (9999999999999998.0, "9999999999999998.0"),
            (3.3897532708368296, "3.3897532708368296"),
            (123.456, "123.456"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-2.5, "-2.5"),
            (1e300, "1e+300"),
            (1795238527.55, "1795238527.55"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in cases {
            assert_eq!(py_float(x), want, "py_float({x:e})");
        }
    }

    #[test]
    fn pynum_display_and_trunc() {
        assert_eq!(PyNum::Int(0).to_string(), "0");
        assert_eq!(PyNum::Float(0.0).to_string(), "0.0");
        assert_eq!(
            PyNum::Float(5.463743000007071).to_string(),
            "5.463743000007071"
        );
        assert_eq!(PyNum::Float(-3.9).trunc(), -3);
        assert_eq!(PyNum::Float(3.9).trunc(), 3);
        assert!(PyNum::Float(0.0).is_zero());
        assert!(!PyNum::Int(1).is_zero());
    }

    #[test]
    fn rounding_like_python() {
        // Python: round(2.675, 2) == 2.67 (binary value below the tie), round(0.125, 2) == 0.12.
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(2.5, 0), 2.0);
        // proper_round(2.675, 2): str is "2.675" (5 chars) so the nudge is 1e-6 → 2.68.
        assert_eq!(proper_round(2.675, 2), 2.68);
        assert_eq!(proper_round(1.86, 0), 2.0);
        assert_eq!(proper_round(16.19, 0), 16.0);
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(python_repr_str("abc"), "'abc'");
        assert_eq!(
            python_repr_str("HTTPError('404 Client Error: Not Found for url: /missing')"),
            "\"HTTPError('404 Client Error: Not Found for url: /missing')\""
        );
        // Both quote kinds: single quotes, the inner single quote escaped.
        assert_eq!(python_repr_str("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(python_repr_str("say \"hi\""), "'say \"hi\"'");
        assert_eq!(python_repr_str("a\\b"), "'a\\\\b'");
        assert_eq!(python_repr_str("l1\nl2\tx\r"), "'l1\\nl2\\tx\\r'");
        assert_eq!(python_repr_str("\u{0}\u{1b}\u{7f}"), "'\\x00\\x1b\\x7f'");
        assert_eq!(
            python_repr_str("caf\u{e9} \u{2713}"),
            "'caf\u{e9} \u{2713}'"
        );
        assert_eq!(
            python_repr_str("\u{85}\u{a0}\u{200b}\u{e000}\u{f0000}"),
            "'\\x85\\xa0\\u200b\\ue000\\U000f0000'"
        );
        assert_eq!(python_repr_str(""), "''");
    }

    #[test]
    fn utc_and_log_times() {
        assert_eq!(utc_iso(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_iso(1795238527.55), "2026-11-21T05:22:07Z");
        assert_eq!(utc_iso(951782400.0), "2000-02-29T00:00:00Z");
        assert_eq!(utc_iso(4107542399.9), "2100-02-28T23:59:59Z");
        assert_eq!(utc_iso(-1.5), "1969-12-31T23:59:59Z");
        assert_eq!(log_time(1795238607.5759), "2026-11-21 05:23:27,575");
        assert_eq!(log_time(1700000000.0), "2023-11-14 22:13:20,000");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }
}
