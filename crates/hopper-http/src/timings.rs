//! Where a request's time went: [`Timings`], from [`crate::Response::timings`].

use std::time::Duration;

/// The phases of one request. The response time Hopper records (Locust's `response_time`)
/// is [`Timings::total`]; the others are for looking closer, e.g. recording the time to
/// first byte as a request of its own with `hopper::request::fire`.
///
/// With redirects, `connect` and `tls` add up every connection opened along the way, and
/// `ttfb` is the last request's. Through a proxy, `connect` includes reaching the proxy and
/// its `CONNECT` tunnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Opening the TCP connection, name lookup included; `None` when the request went on a
    /// connection kept alive from an earlier one.
    pub connect: Option<Duration>,
    /// The TLS handshake; `None` for `http://` and for a reused connection.
    pub tls: Option<Duration>,
    /// From handing the request to the connection (headers and body to send) until the
    /// response's status line and headers arrived; `None` when no response came.
    pub ttfb: Option<Duration>,
    /// The whole request, connection, redirects and body included: the recorded response
    /// time.
    pub total: Duration,
}

/// Adds `d` to a phase that may not have happened yet.
pub(crate) fn add(slot: &mut Option<Duration>, d: Duration) {
    *slot = Some(slot.unwrap_or_default() + d);
}
