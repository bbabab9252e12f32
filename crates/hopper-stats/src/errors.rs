//! Request failures grouped the way Locust groups them, and task exceptions.
//!
//! Locust keys a failure by a SHA-256 over `method.name.repr(error)`. Workers and the master key
//! independently and merge by that key, so Hopper must produce the very same key (including the
//! Python `repr` quoting of the error text) for a Hopper worker's failures to fold into a Python
//! master's table, and vice versa.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::pyfmt::python_repr_str;

/// One kind of failure for one request name (Locust's `StatsError`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsError {
    /// Request type of the failed requests.
    pub method: String,
    /// Request name of the failed requests.
    pub name: String,
    /// The error text in Locust's `parse_error` form, e.g. `HTTPError('404 Client Error: …')`.
    pub error: String,
    /// How many times it happened.
    pub occurrences: u64,
    /// Epoch seconds of the first occurrence (`None` only when a peer sent none).
    pub first_seen: Option<f64>,
    /// Epoch seconds of the latest occurrence.
    pub last_seen: Option<f64>,
}

impl StatsError {
    /// A failure kind seen zero times so far.
    pub fn new(method: &str, name: &str, error: &str) -> Self {
        StatsError {
            method: method.to_string(),
            name: name.to_string(),
            error: error.to_string(),
            occurrences: 0,
            first_seen: None,
            last_seen: None,
        }
    }

    /// This failure's key (see [`error_key`]).
    pub fn key(&self) -> String {
        error_key(&self.method, &self.name, &self.error)
    }

    /// Counts one occurrence at wall time `now` (Locust's `occurred()`).
    pub fn occurred(&mut self, now: f64) {
        self.occurrences += 1;
        if self.first_seen.is_none() {
            self.first_seen = Some(now);
        }
        self.last_seen = Some(now);
    }

    /// Folds in the same failure counted elsewhere (a worker report or another shard):
    /// occurrences summed, earliest first sighting, latest last sighting.
    pub fn merge(&mut self, occurrences: u64, first_seen: Option<f64>, last_seen: Option<f64>) {
        self.occurrences += occurrences;
        if let Some(f) = first_seen {
            self.first_seen = Some(self.first_seen.map_or(f, |e| e.min(f)));
        }
        if let Some(l) = last_seen {
            self.last_seen = Some(self.last_seen.map_or(l, |e| e.max(l)));
        }
    }

    /// The text of the console's error report: `"<method> <name>: <error>"`, with a
    /// `CatchResponseError('reason')` shown as just `reason`.
    ///
    /// Standalone Locust unwraps the exception object to its argument; a Locust master, which
    /// only has the text, strips the wrapper but leaves the quotes. Hopper always has the text
    /// and shows what standalone Locust shows: the argument without its Python quoting.
    pub fn to_name(&self) -> String {
        format!(
            "{} {}: {}",
            self.method,
            self.name,
            unwrap_catch_response(&self.error)
        )
    }
}

/// Strips a `CatchResponseError(…)` wrapper and, when its inside is exactly one Python string
/// literal, that literal's quoting too.
fn unwrap_catch_response(error: &str) -> std::borrow::Cow<'_, str> {
    const PREFIX: &str = "CatchResponseError(";
    let Some(rest) = error.strip_prefix(PREFIX) else {
        return error.into();
    };
    // Python slices off the last character whatever it is; so do we.
    let mut inner = rest.chars();
    inner.next_back();
    let inner = inner.as_str();
    match parse_python_str_literal(inner) {
        Some(s) => s.into(),
        None => inner.into(),
    }
}

/// Reads one Python string literal as `repr()` writes it (`'…'` or `"…"` with backslash
/// escapes). `None` when the text is not exactly one such literal.
fn parse_python_str_literal(s: &str) -> Option<String> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = s.get(1..)?.strip_suffix(quote)?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            // An unescaped quote inside: this is more than one literal.
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<char> {
            let digits: String = chars.by_ref().take(n).collect();
            if digits.len() != n {
                return None;
            }
            char::from_u32(u32::from_str_radix(&digits, 16).ok()?)
        };
        match chars.next()? {
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'x' => out.push(hex(&mut chars, 2)?),
            'u' => out.push(hex(&mut chars, 4)?),
            'U' => out.push(hex(&mut chars, 8)?),
            _ => return None,
        }
    }
    Some(out)
}

/// Locust's error key: lowercase hex SHA-256 of `"{method}.{name}.{repr(error)}"`, where
/// `repr` is Python's quoting of the error text.
pub fn error_key(method: &str, name: &str, error: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b".");
    hasher.update(name.as_bytes());
    hasher.update(b".");
    hasher.update(python_repr_str(error).as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// Locust's `parse_error` for texts: replaces the address in `… object at 0x7f3a…>` with `0x....`
/// so the same failure from different objects groups under one key. Texts without such an
/// address come back borrowed.
pub fn parse_error(text: &str) -> std::borrow::Cow<'_, str> {
    const TARGET: &str = "object at 0x";
    let Some(at) = text.find(TARGET) else {
        return text.into();
    };
    let start = at + TARGET.len() - 2;
    let Some(len) = text[start..].find('>') else {
        return text.into();
    };
    let address = &text[start..start + len];
    // Python's str.replace swaps every occurrence of the address text.
    text.replace(address, "0x....").into()
}

/// A task that raised (Locust's `runner.exceptions` row): not a request failure but user code
/// going wrong, counted per distinct traceback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskException {
    /// How many times it happened.
    pub count: u64,
    /// The message (Python `str(exc)`), from the first occurrence.
    pub msg: String,
    /// Where it happened: the formatted frames.
    pub traceback: String,
    /// Node ids that reported it (`"local"` standalone, worker client ids on a master).
    pub nodes: BTreeSet<String>,
    /// When the row was created relative to other rows ([`crate::next_creation_order`]):
    /// Locust lists exceptions in first-seen order, which the hash-keyed map here loses.
    pub creation_order: u64,
}

/// The key of an exception row: a stable hash of its traceback (Locust uses Python's `hash()`,
/// which is salted per process and never leaves it, so any stable hash serves).
pub fn exception_key(traceback: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // `DefaultHasher::new()` has fixed keys: the same traceback maps to the same row.
    let mut h = std::hash::DefaultHasher::new();
    traceback.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_matches_locust() {
        assert_eq!(
            error_key(
                "GET",
                "/missing",
                "HTTPError('404 Client Error: Not Found for url: /missing')"
            ),
            "b662e1d6e13e22a67d0b329c184fe1d00394e7718b9316e3a7815820fca3bb88"
        );
    }

    #[test]
    fn names_unwrap_catch_response() {
        let e = StatsError::new("POST", "/login", "CatchResponseError('bad body')");
        assert_eq!(e.to_name(), "POST /login: bad body");
        let e = StatsError::new("GET", "/x", "CatchResponseError(\"it's \\\\ \\n\")");
        assert_eq!(e.to_name(), "GET /x: it's \\ \n");
        // Not a single literal: only the wrapper goes, as a Locust master does.
        let e = StatsError::new("GET", "/x", "CatchResponseError('a', 'b')");
        assert_eq!(e.to_name(), "GET /x: 'a', 'b'");
        let e = StatsError::new(
            "GET",
            "/m",
            "HTTPError('404 Client Error: Not Found for url: /m')",
        );
        assert_eq!(
            e.to_name(),
            "GET /m: HTTPError('404 Client Error: Not Found for url: /m')"
        );
    }

    #[test]
    fn occurrences_and_merge() {
        let mut e = StatsError::new("GET", "/", "boom");
        e.occurred(10.0);
        e.occurred(12.0);
        assert_eq!(
            (e.occurrences, e.first_seen, e.last_seen),
            (2, Some(10.0), Some(12.0))
        );
        e.merge(3, Some(9.0), Some(11.0));
        assert_eq!(
            (e.occurrences, e.first_seen, e.last_seen),
            (5, Some(9.0), Some(12.0))
        );
        e.merge(1, None, None);
        assert_eq!(e.occurrences, 6);
    }

    #[test]
    fn parse_error_hides_addresses() {
        assert_eq!(
            parse_error("Err(<Foo object at 0x7f3a2b1c>, <Foo object at 0x7f3a2b1c>)"),
            "Err(<Foo object at 0x....>, <Foo object at 0x....>)"
        );
        assert_eq!(parse_error("plain"), "plain");
        assert_eq!(
            parse_error("object at 0x12 no close"),
            "object at 0x12 no close"
        );
    }

    #[test]
    fn exception_keys_are_stable() {
        assert_eq!(exception_key("tb"), exception_key("tb"));
        assert_ne!(exception_key("tb1"), exception_key("tb2"));
    }
}
