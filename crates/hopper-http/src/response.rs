//! [`Response`]: what a request gave back, Locust's `catch_response` recording, the
//! `expect_*` checks of [`crate::RequestBuilder`], and values taken from a response for
//! later requests ([`Response::json_str`], [`Response::header_str`], [`Response::cookie`],
//! [`Response::body_between`]).

use crate::errors;
use crate::timings::Timings;
use crate::url::Target;
use bytes::Bytes;
use hopper_stats::RequestRecord;
use http::{HeaderMap, Method};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// How user code judged a caught response.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Neither success() nor failure() was called: the status rule decides.
    Default,
    Success,
    Failure(String),
}

/// What is recorded once the request's fate is known.
#[derive(Debug)]
pub(crate) struct Pending {
    pub method: Method,
    pub name: String,
    pub response_time: Duration,
    pub length: u64,
    /// The failure text the status rule (or the connection) gives, `None` for success.
    pub default_error: Option<String>,
    pub outcome: Outcome,
}

/// The answer to one request. Connection failures come back as status 0 with
/// [`Response::error`] set, as in Locust, so task code never has to unwrap.
#[derive(Debug)]
pub struct Response {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    /// Where the final response came from (`None` when no response arrived).
    target: Option<Target>,
    timings: Timings,
    error: Option<String>,
    /// Present until recorded; recorded on drop for caught responses.
    pending: Option<Pending>,
}

impl Response {
    pub(crate) fn new(
        status: u16,
        headers: HeaderMap,
        body: Bytes,
        target: Option<Target>,
        timings: Timings,
        error: Option<String>,
        pending: Option<Pending>,
    ) -> Response {
        Response {
            status,
            headers,
            body,
            target,
            timings,
            error,
            pending,
        }
    }

    /// The status code, or 0 when no response arrived.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// True for a response the status rule counts as a success (status 1..400) and whose
    /// `expect_*` checks all passed (with `expect_status`, the expected status is a success
    /// whatever it is).
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The failure text of this response: `HTTPError('404 ...')` for an error status, the
    /// root cause for a connection error, `CatchResponseError('...')` for the first failed
    /// `expect_*` check, `None` when the response is fine. (A later [`Response::success`] or
    /// [`Response::failure`] changes what is recorded, not this text.)
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body, decoded when the server sent it compressed (`Content-Encoding` gzip,
    /// deflate or br, as requests decodes it); empty after
    /// [`crate::RequestBuilder::discard_body`]. The recorded response length is this
    /// decoded length, like `len(response.content)` in Locust.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The final URL (after redirects), or an empty string when no response arrived.
    pub fn url(&self) -> String {
        self.target.as_ref().map(Target::url).unwrap_or_default()
    }

    /// Time from sending until the body was read, including redirects: the recorded
    /// response time.
    pub fn response_time(&self) -> Duration {
        self.timings.total
    }

    /// Where the time went: connecting, the TLS handshake (both `None` on a kept-alive
    /// connection), time to the response head, and the total. See [`Timings`].
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// A value of the JSON body for a later request, found by its
    /// [JSON Pointer](https://www.rfc-editor.org/rfc/rfc6901) (`/token`, `/items/0/id`;
    /// `""` is the whole document). Fails with `JSON /token is missing` or `body is not
    /// JSON: ...`, which `?` turns into a task error.
    pub fn json_field(&self, pointer: &str) -> Result<Value, CheckError> {
        check_pointer(pointer)?;
        let doc = parse_json(&self.body)?;
        match doc.pointer(pointer) {
            Some(v) => Ok(v.clone()),
            None => Err(missing_field(pointer)),
        }
    }

    /// A JSON field as text, typically a token: a string's content, or a number's or
    /// boolean's JSON text (`42`, `true`). Objects, arrays and `null` fail with
    /// `JSON /x is not a string: ...`. See [`Response::json_field`] for the pointer syntax.
    pub fn json_str(&self, pointer: &str) -> Result<String, CheckError> {
        match self.json_field(pointer)? {
            Value::String(s) => Ok(s),
            v @ (Value::Number(_) | Value::Bool(_)) => Ok(v.to_string()),
            other => Err(CheckError::new(format!(
                "JSON {pointer} is not a string: {}",
                shorten(&other.to_string())
            ))),
        }
    }

    /// A response header as text; fails with `header location is missing` when absent (or
    /// not visible ASCII).
    pub fn header_str(&self, name: &str) -> Result<&str, CheckError> {
        self.header(name)
            .ok_or_else(|| CheckError::new(format!("header {name} is missing")))
    }

    /// The value of a cookie this response sets (`Set-Cookie`), like `r.cookies["name"]` in
    /// requests. The client's cookie jar already keeps it and sends it back; this is for
    /// using the value elsewhere (a header, a form field).
    pub fn cookie(&self, name: &str) -> Result<String, CheckError> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next()?.split_once('='))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
            .ok_or_else(|| CheckError::new(format!("cookie {name} is missing")))
    }

    /// The text between the first `prefix` in the body and the next `suffix` after it, e.g.
    /// a CSRF token: `r.body_between("name=\"csrf\" value=\"", "\"")`: the usual "value
    /// between two markers" case without a regular expression.
    pub fn body_between(&self, prefix: &str, suffix: &str) -> Result<String, CheckError> {
        let text = self.text();
        text.find(prefix)
            .map(|i| &text[i + prefix.len()..])
            .and_then(|rest| rest.find(suffix).map(|j| rest[..j].to_string()))
            .ok_or_else(|| {
                CheckError::new(format!(
                    "body has no text between {prefix:?} and {suffix:?}"
                ))
            })
    }

    /// The first match of `re` in the body: its first capture group, or the whole match when
    /// it has none (Locust tests use `re.search(...).group(1)`). Build the expression once,
    /// e.g. in a `static LazyLock<Regex>`, not per request.
    pub fn regex(&self, re: &regex_lite::Regex) -> Result<String, CheckError> {
        let text = self.text();
        let captures = re
            .captures(&text)
            .ok_or_else(|| CheckError::new(format!("body does not match /{}/", re.as_str())))?;
        let found = captures.get(1).or_else(|| captures.get(0));
        Ok(found.map_or_else(String::new, |m| m.as_str().to_string()))
    }

    /// With `catch_response`: count this request as a success whatever its status.
    pub fn success(&mut self) {
        match &mut self.pending {
            Some(p) => p.outcome = Outcome::Success,
            None => warn_not_caught("success"),
        }
    }

    /// With `catch_response`: count this request as a failure with this reason; the error
    /// text is Locust's `CatchResponseError('reason')`.
    pub fn failure(&mut self, reason: impl std::fmt::Display) {
        match &mut self.pending {
            Some(p) => p.outcome = Outcome::Failure(reason.to_string()),
            None => warn_not_caught("failure"),
        }
    }

    /// Records the request now (normal requests; caught ones on drop).
    pub(crate) fn record_now(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let caught;
        let error = match &p.outcome {
            Outcome::Default => p.default_error.as_deref(),
            Outcome::Success => None,
            Outcome::Failure(reason) => {
                caught = errors::catch_response_error(reason);
                Some(caught.as_str())
            }
        };
        hopper_stats::record(&RequestRecord {
            request_type: p.method.as_str(),
            name: &p.name,
            response_time: Some(p.response_time),
            response_length: p.length,
            error,
        });
    }
}

/// One `expect_*` check of a request, run on its response before it is recorded.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    Status(u16),
    BodyContains(String),
    JsonEquals(String, Value),
    JsonExists(String),
}

impl Check {
    /// True for checks that read the body.
    pub(crate) fn needs_body(&self) -> bool {
        !matches!(self, Check::Status(_))
    }
}

/// The verdict of a request's checks: [`Outcome::Failure`] with the first failed check's
/// reason; [`Outcome::Success`] when all passed and one of them was `expect_status` (the
/// expected status counts as a success, as `r.success()` after checking it would); else
/// [`Outcome::Default`] (the status rule decides).
///
/// A connection error (status 0) always keeps its own text, and without `expect_status`
/// an error status keeps the status rule's `HTTPError(...)`: the status is checked first.
pub(crate) fn run_checks(
    checks: &[Check],
    status: u16,
    body: &[u8],
    default_error: Option<&str>,
    connection_failed: bool,
) -> Outcome {
    let expects_status = checks.iter().any(|c| matches!(c, Check::Status(_)));
    if checks.is_empty() || connection_failed || (!expects_status && default_error.is_some()) {
        return Outcome::Default;
    }
    let mut doc: Option<Result<Value, CheckError>> = None;
    for check in checks {
        let failed = match check {
            Check::Status(expected) => (status != *expected)
                .then(|| CheckError::new(format!("expected status {expected}, got {status}"))),
            Check::BodyContains(needle) => (!String::from_utf8_lossy(body)
                .contains(needle.as_str()))
            .then(|| CheckError::new(format!("body does not contain {needle:?}"))),
            Check::JsonEquals(pointer, expected) => {
                match doc.get_or_insert_with(|| parse_json(body)) {
                    Err(e) => Some(e.clone()),
                    Ok(d) => match d.pointer(pointer) {
                        None => Some(missing_field(pointer)),
                        Some(v) if json_eq(v, expected) => None,
                        Some(v) => Some(CheckError::new(format!(
                            "JSON {pointer} is {}, expected {}",
                            shorten(&v.to_string()),
                            shorten(&expected.to_string())
                        ))),
                    },
                }
            }
            Check::JsonExists(pointer) => match doc.get_or_insert_with(|| parse_json(body)) {
                Err(e) => Some(e.clone()),
                Ok(d) => d.pointer(pointer).is_none().then(|| missing_field(pointer)),
            },
        };
        if let Some(e) = failed {
            return Outcome::Failure(e.reason);
        }
    }
    if expects_status {
        Outcome::Success
    } else {
        Outcome::Default
    }
}

/// JSON equality where numbers compare by value (`2` equals `2.0`), at any depth.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn parse_json(body: &[u8]) -> Result<Value, CheckError> {
    serde_json::from_slice(body).map_err(|e| CheckError::new(format!("body is not JSON: {e}")))
}

fn missing_field(pointer: &str) -> CheckError {
    CheckError::new(format!("JSON {pointer} is missing"))
}

/// A JSON Pointer is empty (the whole document) or starts with `/`.
pub(crate) fn check_pointer(pointer: &str) -> Result<(), CheckError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(CheckError::new(format!(
            "{pointer:?} is not a JSON Pointer: write \"/{pointer}\" (RFC 6901)"
        )))
    }
}

/// Values in failure texts are cut at 100 characters: the text becomes the error key, and a
/// whole document in it would make it unreadable.
fn shorten(text: &str) -> Cow<'_, str> {
    hopper_stats::text::clip_with(text, 100, "...")
}

/// Why an `expect_*` check failed or a value could not be taken from a response. The text
/// reads like a `catch_response` reason (`JSON /token is missing`); `?` in a task turns it
/// into a task error, and [`Response::failure`] accepts it as a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    reason: String,
}

impl CheckError {
    pub(crate) fn new(reason: String) -> CheckError {
        CheckError { reason }
    }

    /// The reason, e.g. `expected status 200, got 404`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for CheckError {}

/// Locust raises `LocustError` here; a warning (once) keeps the user running while saying
/// that the verdict was not applied.
fn warn_not_caught(what: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            target: "hopper.http",
            "Response::{what}() was called on a request sent without .catch_response(): it was \
             already recorded by the status rule, so the call has no effect"
        );
    });
}

impl Drop for Response {
    fn drop(&mut self) {
        self.record_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn verdict(checks: &[Check], status: u16, body: &str) -> Outcome {
        let default = crate::errors::http_status_error(status, "Reason", "/x");
        run_checks(checks, status, body.as_bytes(), default.as_deref(), false)
    }

    fn reason(o: Outcome) -> String {
        match o {
            Outcome::Failure(r) => r,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    const CART: &str = r#"{"items": 3, "user": {"name": "ann", "tags": ["a", "b"]}, "total": 2.0}"#;

    #[test]
    fn first_failing_check_gives_the_reason() {
        let checks = [
            Check::Status(200),
            Check::BodyContains("Checkout".into()),
            Check::JsonEquals("/items".into(), json!(2)),
        ];
        assert_eq!(
            reason(verdict(&checks, 404, CART)),
            "expected status 200, got 404"
        );
        assert_eq!(
            reason(verdict(&checks, 200, CART)),
            "body does not contain \"Checkout\""
        );
        let checks = [
            Check::Status(200),
            Check::BodyContains("items".into()),
            Check::JsonEquals("/items".into(), json!(2)),
        ];
        assert_eq!(
            reason(verdict(&checks, 200, CART)),
            "JSON /items is 3, expected 2"
        );
        let checks = [Check::JsonEquals("/user/name".into(), json!("bob"))];
        assert_eq!(
            reason(verdict(&checks, 200, CART)),
            "JSON /user/name is \"ann\", expected \"bob\""
        );
        let checks = [Check::JsonExists("/token".into())];
        assert_eq!(
            reason(verdict(&checks, 200, CART)),
            "JSON /token is missing"
        );
        let r = reason(verdict(&checks, 200, "<html>"));
        assert!(
            r.starts_with("body is not JSON: expected value at line 1 column 1"),
            "{r}"
        );
    }

    #[test]
    fn passing_checks_and_the_status_rule() {
        let json_ok = [
            Check::JsonEquals("/items".into(), json!(3)),
            Check::JsonEquals("/total".into(), json!(2)),
            Check::JsonEquals("/user/tags/1".into(), json!("b")),
            Check::JsonExists("/user".into()),
        ];
        // All passed, no expect_status: the status rule decides.
        assert!(matches!(verdict(&json_ok, 200, CART), Outcome::Default));
        // An error status without expect_status keeps the HTTPError, checked first.
        assert!(matches!(verdict(&json_ok, 500, "x"), Outcome::Default));
        // The expected status is a success even when it is an error status.
        assert!(matches!(
            verdict(&[Check::Status(404)], 404, ""),
            Outcome::Success
        ));
        // A connection error keeps its own text.
        let o = run_checks(
            &[Check::Status(200)],
            0,
            b"",
            Some("ConnectionRefusedError(111, 'Connection refused')"),
            true,
        );
        assert!(matches!(o, Outcome::Default));
        assert!(matches!(verdict(&[], 404, ""), Outcome::Default));
    }

    #[test]
    fn json_numbers_compare_by_value() {
        assert!(json_eq(&json!(2), &json!(2.0)));
        assert!(json_eq(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!json_eq(&json!(2), &json!("2")));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(-1), &json!(u64::MAX)));
    }

    #[test]
    fn long_values_are_shortened() {
        let body = format!(r#"{{"blob": "{}"}}"#, "x".repeat(500));
        let r = reason(verdict(
            &[Check::JsonEquals("/blob".into(), json!("y"))],
            200,
            &body,
        ));
        assert!(r.len() < 150 && r.ends_with("x..., expected \"y\""), "{r}");
    }

    #[test]
    fn pointers_must_start_with_a_slash() {
        assert!(check_pointer("").is_ok());
        assert!(check_pointer("/a/0").is_ok());
        assert_eq!(
            check_pointer("items").unwrap_err().reason(),
            "\"items\" is not a JSON Pointer: write \"/items\" (RFC 6901)"
        );
    }

    fn response(headers: &[(&'static str, &'static str)], body: &'static str) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_static(v));
        }
        Response::new(
            200,
            map,
            Bytes::from_static(body.as_bytes()),
            None,
            Timings::default(),
            None,
            None,
        )
    }

    #[test]
    fn values_for_correlation() {
        let r = response(
            &[
                ("location", "/next"),
                ("set-cookie", "theme=dark; Path=/"),
                ("set-cookie", "session=\"abc\"; HttpOnly"),
            ],
            r#"{"token": "t0k", "id": 7, "ok": true, "list": [1], "none": null, "html": "<b>x</b>"}"#,
        );
        assert_eq!(r.json_str("/token").unwrap(), "t0k");
        assert_eq!(r.json_str("/id").unwrap(), "7");
        assert_eq!(r.json_str("/ok").unwrap(), "true");
        assert_eq!(r.json_field("/list").unwrap(), json!([1]));
        assert_eq!(r.json_field("/none").unwrap(), Value::Null);
        assert_eq!(
            r.json_str("/list").unwrap_err().to_string(),
            "JSON /list is not a string: [1]"
        );
        assert_eq!(
            r.json_str("/missing").unwrap_err().to_string(),
            "JSON /missing is missing"
        );
        assert!(r.json_field("token").is_err());
        assert_eq!(r.header_str("Location").unwrap(), "/next");
        assert_eq!(
            r.header_str("x-token").unwrap_err().to_string(),
            "header x-token is missing"
        );
        assert_eq!(r.cookie("session").unwrap(), "abc");
        assert_eq!(r.cookie("theme").unwrap(), "dark");
        assert_eq!(
            r.cookie("nope").unwrap_err().to_string(),
            "cookie nope is missing"
        );
        assert_eq!(r.body_between("<b>", "</b>").unwrap(), "x");
        assert_eq!(
            r.body_between("<i>", "</i>").unwrap_err().to_string(),
            "body has no text between \"<i>\" and \"</i>\""
        );
        let html = response(&[], "<html>");
        assert!(html
            .json_str("/token")
            .unwrap_err()
            .to_string()
            .starts_with("body is not JSON: "));
    }
}
