//! [`Response`]: what a request gave back, and Locust's `catch_response` recording.

use crate::errors;
use crate::url::Target;
use bytes::Bytes;
use hopper_stats::RequestRecord;
use http::{HeaderMap, Method};
use std::borrow::Cow;
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
    response_time: Duration,
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
        response_time: Duration,
        error: Option<String>,
        pending: Option<Pending>,
    ) -> Response {
        Response {
            status,
            headers,
            body,
            target,
            response_time,
            error,
            pending,
        }
    }

    /// The status code, or 0 when no response arrived.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// True for a response the status rule counts as a success (status 1..400).
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The failure text Locust would record by default: `HTTPError('404 ...')` for an error
    /// status, the root cause for a connection error, `None` when the response is fine.
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

    /// The body, as received.
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

    /// Time from sending until the body was read, including redirects.
    pub fn response_time(&self) -> Duration {
        self.response_time
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
