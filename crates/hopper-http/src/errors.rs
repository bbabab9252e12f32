//! Failure texts in Locust's words.
//!
//! Locust stores a failed request's error as the Python `repr` of the exception that
//! `requests` raised (after unwrapping connection errors to their root cause), and keys
//! errors by a hash of that text. Writing the same texts here means Hopper's failure tables,
//! CSV files and — in a mixed cluster — merged error keys match Locust's exactly.

use hopper_stats::pyfmt::python_repr_str;
use std::io;

/// `HTTPError('404 Client Error: Not Found for url: /missing')`, as `raise_for_status()`
/// words it, with the URL replaced by the stats name (Locust does this so failures group).
/// `None` for statuses that `requests` does not treat as errors.
pub fn http_status_error(status: u16, reason: &str, name: &str) -> Option<String> {
    let kind = match status {
        400..=499 => "Client",
        500..=599 => "Server",
        _ => return None,
    };
    let msg = format!("{status} {kind} Error: {reason} for url: {name}");
    Some(exception("HTTPError", &msg))
}

/// `CatchResponseError('reason')`: what `response.failure(reason)` records.
pub fn catch_response_error(reason: &str) -> String {
    exception("CatchResponseError", reason)
}

/// A Python exception with one string argument, as `repr()` prints it.
pub fn exception(class: &str, msg: &str) -> String {
    format!("{class}({})", python_repr_str(msg))
}

/// An `OSError` subclass with errno and text, e.g. `ConnectionRefusedError(111, 'Connection refused')`.
fn os_exception(class: &str, errno: i32, text: &str) -> String {
    format!("{class}({errno}, {})", python_repr_str(text))
}

/// The text Locust shows for a socket-level error: the root cause as Python names it.
pub fn io_error(e: &io::Error) -> String {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_error(tls);
    }
    if let Some(code) = e.raw_os_error() {
        // strerror text without Rust's " (os error N)" suffix.
        let full = e.to_string();
        let text = full
            .rsplit_once(" (os error ")
            .map_or(full.as_str(), |(t, _)| t);
        let class = match code {
            111 => "ConnectionRefusedError",
            104 => "ConnectionResetError",
            103 => "ConnectionAbortedError",
            32 => "BrokenPipeError",
            110 => "TimeoutError",
            _ => "OSError",
        };
        return os_exception(class, code, text);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => exception(
            "RemoteDisconnected",
            "Remote end closed connection without response",
        ),
        io::ErrorKind::TimedOut => exception("TimeoutError", "timed out"),
        _ => exception("ConnectionError", &e.to_string()),
    }
}

/// A failed TLS handshake: the rustls error when there is one, the server closing the
/// connection mid-handshake (it may not speak TLS), or the socket error.
pub fn tls_handshake_error(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof && e.raw_os_error().is_none() {
        return exception("SSLError", "EOF occurred in violation of protocol");
    }
    io_error(e)
}

/// The failure text for a TLS error, in the spirit of requests' `SSLError(...)`.
///
/// Python shows OpenSSL's words, e.g. `SSLError(MaxRetryError("HTTPSConnectionPool(host=
/// 'h', port=443): Max retries exceeded with url: / (Caused by SSLError(
/// SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed:
/// self-signed certificate (_ssl.c:1010)')))"))`. rustls reports errors differently (and
/// the `_ssl.c` line changes between Python builds), so those texts cannot be matched;
/// these keep OpenSSL's reason where the case is the same, and never contain addresses or
/// other per-connection data, so a failure keeps one stable error key.
pub fn tls_error(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E, InvalidMessage as M};
    let msg: std::borrow::Cow<'static, str> = match e {
        E::InvalidCertificate(c) => {
            let reason: std::borrow::Cow<'static, str> = match c {
                C::UnknownIssuer => "unable to get local issuer certificate".into(),
                C::Expired | C::ExpiredContext { .. } => "certificate has expired".into(),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "certificate is not yet valid".into()
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "Hostname mismatch, certificate is not valid for this host".into()
                }
                C::Revoked => "certificate revoked".into(),
                C::BadSignature => "certificate signature failure".into(),
                C::BadEncoding => "bad certificate encoding".into(),
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                    "unsupported certificate purpose".into()
                }
                other => other.to_string().into(),
            };
            format!("certificate verify failed: {reason}").into()
        }
        E::InvalidMessage(M::InvalidContentType | M::UnknownProtocolVersion) => {
            "wrong version number (the server did not answer with TLS)".into()
        }
        E::InvalidMessage(m) => format!("invalid TLS message: {m:?}").into(),
        E::AlertReceived(alert) => format!("received fatal alert: {alert:?}").into(),
        E::PeerIncompatible(p) => format!("handshake failure: {p:?}").into(),
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        other => other.to_string().into(),
    };
    exception("SSLError", &msg)
}

/// The text for a name that does not resolve (Python's `socket.gaierror`).
pub fn resolve_error(host: &str) -> String {
    let _ = host;
    os_exception("gaierror", -2, "Name or service not known")
}

/// A request that outlived its timeout, in the words Locust records for requests'
/// `ReadTimeout`: `ReadTimeout(ReadTimeoutError("HTTPConnectionPool(host='h', port=80): Read
/// timed out. (read timeout=0.5)"))`. (Hopper's timeout covers the whole request; requests'
/// covers each read.)
pub fn timeout_error(https: bool, host: &str, port: u16, timeout_secs: f64) -> String {
    let pool = if https {
        "HTTPSConnectionPool"
    } else {
        "HTTPConnectionPool"
    };
    let inner = format!(
        "{pool}(host='{host}', port={port}): Read timed out. (read timeout={})",
        hopper_stats::pyfmt::py_float(timeout_secs)
    );
    format!("ReadTimeout(ReadTimeoutError({}))", python_repr_str(&inner))
}

/// Errors hyper reports on a connection: the peer closing early, malformed responses, a
/// request body that failed while being sent.
pub fn hyper_error(e: &hyper::Error) -> String {
    // A TLS error wins over the generic texts: hyper reports a request that a TLS alert
    // cut off as canceled, with the alert as its cause.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        // A request body that could not be read (a file gone or shrunk) says so itself.
        if let Some(body) = s.downcast_ref::<crate::body::BodyError>() {
            return body.0.clone();
        }
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return tls_error(tls);
        }
        if let Some(tls) = s
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return tls_error(tls);
        }
        source = s.source();
    }
    if e.is_incomplete_message() || e.is_canceled() {
        return exception(
            "RemoteDisconnected",
            "Remote end closed connection without response",
        );
    }
    // An io::Error at the bottom of the chain gets Python's errno form.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io_error(io);
        }
        source = s.source();
    }
    if e.is_parse() {
        return exception("BadStatusLine", &e.to_string());
    }
    exception("ConnectionError", &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_match_requests() {
        assert_eq!(
            http_status_error(404, "Not Found", "/missing").unwrap(),
            "HTTPError('404 Client Error: Not Found for url: /missing')"
        );
        assert_eq!(
            http_status_error(503, "Service Unavailable", "/x").unwrap(),
            "HTTPError('503 Server Error: Service Unavailable for url: /x')"
        );
        assert_eq!(http_status_error(302, "Found", "/"), None);
        assert_eq!(http_status_error(600, "", "/"), None);
    }

    #[test]
    fn timeouts_read_like_locusts() {
        assert_eq!(
            timeout_error(false, "127.0.0.1", 18080, 0.5),
            "ReadTimeout(ReadTimeoutError(\"HTTPConnectionPool(host='127.0.0.1', port=18080): \
             Read timed out. (read timeout=0.5)\"))"
        );
    }

    #[test]
    fn os_errors_use_python_names() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(
            io_error(&e),
            "ConnectionRefusedError(111, 'Connection refused')"
        );
        let e = io::Error::from_raw_os_error(104);
        assert_eq!(
            io_error(&e),
            "ConnectionResetError(104, 'Connection reset by peer')"
        );
    }

    #[test]
    fn catch_response_text_quotes_like_python() {
        assert_eq!(catch_response_error("bad"), "CatchResponseError('bad')");
        assert_eq!(catch_response_error("it's"), "CatchResponseError(\"it's\")");
    }

    #[test]
    fn check_reasons_quote_like_python() {
        // The reasons of `expect_*` checks hold double quotes: Python's repr keeps single ones.
        assert_eq!(
            catch_response_error("body does not contain \"Checkout\""),
            "CatchResponseError('body does not contain \"Checkout\"')"
        );
        assert_eq!(
            catch_response_error("JSON /name is \"it's\", expected \"x\""),
            "CatchResponseError('JSON /name is \"it\\'s\", expected \"x\"')"
        );
    }
}
