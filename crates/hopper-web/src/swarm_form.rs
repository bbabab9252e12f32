//! `POST /swarm`'s form, read and checked as Locust's `swarm()` view does, with its exact
//! error messages. Unlike Locust, nothing is applied unless the whole form is valid (Locust
//! sets the host before it finds a bad user count), and a host with markup is refused
//! rather than silently stripped.

use hopper_core::timespan::parse_timespan;
use hopper_core::SwarmRequest;
use hopper_stats::python_repr_str;
use std::time::Duration;

/// The most users one `/swarm` may ask for: far above what one process can hold, low enough
/// that a typo cannot make the dispatcher allocate gigabytes before anything else happens.
pub const MAX_USERS: i128 = 1_000_000;

/// At most this many characters of a caller's value go into a message (and so into the log
/// and the reply), so a huge form field cannot flood either.
const SHOWN_CHARS: usize = 100;

/// A caller-supplied value shortened for messages: its first [`SHOWN_CHARS`] characters, and
/// `…` when there were more.
pub fn clip(value: &str) -> std::borrow::Cow<'_, str> {
    hopper_stats::text::clip(value, SHOWN_CHARS)
}

/// Locust's message for a missing or out-of-range count or rate.
pub const MISSING_MESSAGE: &str = "Missing or invalid user_count or spawn_rate from /swarm request";
/// Locust's message for a bad run time.
pub const RUN_TIME_MESSAGE: &str =
    "Valid run_time formats are : 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc.";

/// Reads the urlencoded body into the session's request (its `host` is `Some` when the form
/// had a `host` field, possibly empty: back to class hosts). Fields are handled in order, so
/// the first bad one decides the message, as in Locust; unknown fields are ignored.
pub fn parse(body: &[u8]) -> Result<SwarmRequest, String> {
    let mut user_count: Option<i128> = None;
    let mut spawn_rate: Option<f64> = None;
    let mut host = None;
    let mut run_time = None;
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "user_count" => match python_int(&value) {
                Some(n) => user_count = Some(n),
                None => {
                    return Err(format!(
                        "Invalid user_count value: {} (must be an integer)",
                        python_repr_str(&clip(&value))
                    ))
                }
            },
            "spawn_rate" => match python_float(&value) {
                Some(x) => spawn_rate = Some(x),
                None => {
                    return Err(format!(
                        "Invalid spawn_rate value: {} (must be a number)",
                        python_repr_str(&clip(&value))
                    ))
                }
            },
            "host" => {
                if value.contains(['<', '>']) {
                    return Err(format!(
                        "Invalid host: {} (markup is not allowed in a host)",
                        python_repr_str(&clip(&value))
                    ));
                }
                let value = value.trim();
                if !value.is_empty() {
                    check_host(value)?;
                }
                host = Some(value.to_string());
            }
            "run_time" => {
                if value.is_empty() {
                    continue;
                }
                match parse_timespan(&value) {
                    Ok(secs) => run_time = Some(Duration::from_secs(secs)),
                    Err(_) => return Err(RUN_TIME_MESSAGE.to_string()),
                }
            }
            _ => {}
        }
    }
    let (Some(users), Some(rate)) = (user_count, spawn_rate) else {
        return Err(MISSING_MESSAGE.to_string());
    };
    if users < 0 || rate <= 0.0 || !rate.is_finite() {
        return Err(MISSING_MESSAGE.to_string());
    }
    if users > MAX_USERS {
        return Err(format!(
            "Invalid user_count value: '{users}' (at most {MAX_USERS} users in one process)"
        ));
    }
    let user_count = users as u32;
    Ok(SwarmRequest {
        user_count,
        spawn_rate: rate,
        host,
        run_time: run_time.filter(|t: &Duration| !t.is_zero()),
    })
}

/// The host must be a base URL Hopper's client can use, or users would fail every request;
/// a host of another protocol (`tcp://…`) is for custom-protocol users and passes.
fn check_host(host: &str) -> Result<(), String> {
    if hopper_http::is_non_http_host(host) && !host.contains(char::is_whitespace) {
        return Ok(());
    }
    let rest = host
        .strip_prefix("http://")
        .or_else(|| host.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(format!(
            "Invalid host: {} (expected a base URL such as http://127.0.0.1:8080)",
            python_repr_str(&clip(host))
        )),
    }
}

/// Python's `int(str)`: surrounding whitespace, a sign, digits with single underscores
/// between them.
fn python_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if !valid_underscores(digits) || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    let n: i128 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Python's `float(str)`: like Rust's parser plus whitespace, underscores between digits,
/// and the spellings `inf`, `infinity`, `nan` in any case.
fn python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let lowered = t.to_ascii_lowercase();
    let unsigned = lowered.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lowered.parse().ok().or(Some(f64::NAN));
    }
    // Underscores must sit between digits.
    let bytes = lowered.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_' {
            let before = bytes.get(i.wrapping_sub(1)).is_some_and(u8::is_ascii_digit);
            let after = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !before || !after {
                return None;
            }
        }
    }
    let cleaned = lowered.replace('_', "");
    if !cleaned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    cleaned.parse().ok()
}

fn valid_underscores(digits: &str) -> bool {
    !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn valid_form() {
        let f =
            parse(b"user_count=10&spawn_rate=2.5&host=http%3A%2F%2F127.0.0.1%3A9&run_time=1m30s")
                .unwrap();
        assert_eq!(f.user_count, 10);
        assert_eq!(f.spawn_rate, 2.5);
        assert_eq!(f.host.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(f.run_time, Some(Duration::from_secs(90)));
        let f = parse(b"user_count=+1_0&spawn_rate=%201e1%20&run_time=").unwrap();
        assert_eq!(
            (f.user_count, f.spawn_rate, f.host, f.run_time),
            (10, 10.0, None, None)
        );
    }

    #[test]
    fn locust_error_messages() {
        assert_eq!(
            err("user_count=abc&spawn_rate=1"),
            "Invalid user_count value: 'abc' (must be an integer)"
        );
        assert_eq!(
            err("user_count=1&spawn_rate=fast"),
            "Invalid spawn_rate value: 'fast' (must be a number)"
        );
        assert_eq!(err("spawn_rate=1"), MISSING_MESSAGE);
        assert_eq!(err("user_count=1"), MISSING_MESSAGE);
        assert_eq!(err("user_count=-1&spawn_rate=1"), MISSING_MESSAGE);
        assert_eq!(err("user_count=1&spawn_rate=0"), MISSING_MESSAGE);
        assert_eq!(err("user_count=1&spawn_rate=inf"), MISSING_MESSAGE);
        assert_eq!(err("user_count=1&spawn_rate=nan"), MISSING_MESSAGE);
        assert_eq!(
            err("user_count=1&spawn_rate=1&run_time=soon"),
            RUN_TIME_MESSAGE
        );
        assert_eq!(
            err("user_count=1.5&spawn_rate=1"),
            "Invalid user_count value: '1.5' (must be an integer)"
        );
        // The first bad field decides, as in Locust.
        assert_eq!(
            err("user_count=x&spawn_rate=y"),
            "Invalid user_count value: 'x' (must be an integer)"
        );
    }

    #[test]
    fn hosts_of_other_protocols_are_accepted() {
        let f = parse(b"user_count=1&spawn_rate=1&host=tcp%3A%2F%2F127.0.0.1%3A7000").unwrap();
        assert_eq!(f.host.as_deref(), Some("tcp://127.0.0.1:7000"));
        assert!(err("user_count=1&spawn_rate=1&host=tcp://a%20b").contains("Invalid host"));
    }

    #[test]
    fn hosts_with_markup_or_no_scheme_are_refused() {
        assert!(err("user_count=1&spawn_rate=1&host=http://x%3Cscript%3E").contains("markup"));
        assert!(err("user_count=1&spawn_rate=1&host=example.com").contains("base URL"));
        let f = parse(b"user_count=1&spawn_rate=1&host=").unwrap();
        assert_eq!(f.host.as_deref(), Some(""));
    }

    #[test]
    fn huge_values_are_refused_and_clipped_in_messages() {
        let e = err("user_count=100000000&spawn_rate=100000000");
        assert!(e.contains("at most 1000000 users"), "{e}");
        let long = "x".repeat(5000);
        let e = err(&format!("user_count={long}&spawn_rate=1"));
        assert!(e.len() < 300, "{e}");
        assert!(e.contains('…'));
        // A run time too long for any clock is accepted as a number; the session treats it
        // as no limit.
        assert!(parse(b"user_count=1&spawn_rate=1&run_time=18446744073709551615").is_ok());
    }

    #[test]
    fn python_number_parsing() {
        assert_eq!(python_int(" 42 "), Some(42));
        assert_eq!(python_int("-3"), Some(-3));
        assert_eq!(python_int("1__0"), None);
        assert_eq!(python_int("_1"), None);
        assert_eq!(python_int(""), None);
        assert_eq!(python_float("1_000.5"), Some(1000.5));
        assert_eq!(python_float("Infinity"), Some(f64::INFINITY));
        assert!(python_float("nan").unwrap().is_nan());
        assert_eq!(python_float("0x10"), None);
        assert_eq!(python_float("1._5"), None);
    }
}
