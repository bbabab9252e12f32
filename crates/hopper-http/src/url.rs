//! Base URLs and request targets.
//!
//! Locust builds a request URL as plain `host + path` unless the path is already an absolute
//! `http(s)://` URL, and turns credentials in the host URL into HTTP basic auth. This module
//! does the same and splits the result into what a connection needs (scheme, host, port) and
//! what goes on the request line (path and query).

use base64::Engine as _;
use http::HeaderValue;
use std::fmt;
use std::sync::Arc;

/// Why a URL could not be used. The texts follow the exceptions `requests` raises, because
/// Locust records them as the failure text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// No `scheme://` in front (requests' `MissingSchema`).
    MissingSchema(String),
    /// A scheme other than http or https (requests' `InvalidSchema`).
    InvalidSchema(String),
    /// Anything else unparseable (requests' `InvalidURL`).
    Invalid(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::MissingSchema(u) => write!(
                f,
                "Invalid URL '{u}': No scheme supplied. Perhaps you meant https://{u}?"
            ),
            UrlError::InvalidSchema(u) => write!(f, "No connection adapters were found for '{u}'"),
            UrlError::Invalid(u) => write!(f, "Invalid URL '{u}'"),
        }
    }
}

impl std::error::Error for UrlError {}

impl UrlError {
    /// The Python exception class name Locust would show for this error.
    pub fn python_class(&self) -> &'static str {
        match self {
            UrlError::MissingSchema(_) => "MissingSchema",
            UrlError::InvalidSchema(_) => "InvalidSchema",
            UrlError::Invalid(_) => "InvalidURL",
        }
    }
}

/// Whether a connection speaks plain TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed absolute URL, split for the connection and the request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// Host without brackets for IPv6 literals.
    pub host: Arc<str>,
    pub port: u16,
    /// The `Host` header value: the authority as written, without credentials.
    pub host_header: Arc<str>,
    /// The same, ready to send (cloning a `HeaderValue` does not copy).
    pub host_value: Option<HeaderValue>,
    /// Path and query, always starting with `/`.
    pub path_and_query: String,
    /// `Authorization: Basic ...` built from credentials in the URL, if any.
    pub basic_auth: Option<HeaderValue>,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(url, "http://") {
            (Scheme::Http, r)
        } else if let Some(r) = strip_prefix_ci(url, "https://") {
            (Scheme::Https, r)
        } else if url.contains("://") {
            return Err(UrlError::InvalidSchema(url.to_string()));
        } else {
            return Err(UrlError::MissingSchema(url.to_string()));
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        // The fragment never goes on the wire.
        let tail = tail.split('#').next().unwrap_or("");
        let tail = requote(tail);
        let path_and_query = if tail.is_empty() {
            "/".to_string()
        } else if tail.starts_with('?') {
            format!("/{tail}")
        } else {
            tail.into_owned()
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let default_port = if scheme == Scheme::Http { 80 } else { 443 };
        let (host, port) = split_host_port(hostport, default_port)
            .ok_or_else(|| UrlError::Invalid(url.to_string()))?;
        if host.is_empty() {
            return Err(UrlError::Invalid(url.to_string()));
        }
        let basic_auth = userinfo.and_then(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let creds = format!("{}:{}", percent_decode(user), percent_decode(pass));
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(creds)
            );
            HeaderValue::from_str(&header).ok()
        });
        Ok(Target {
            scheme,
            host: Arc::from(host),
            port,
            host_header: Arc::from(hostport),
            host_value: HeaderValue::from_str(hostport).ok(),
            path_and_query,
            basic_auth,
        })
    }

    /// The key that identifies a reusable connection.
    pub fn conn_key(&self) -> (Scheme, &str, u16) {
        (self.scheme, &self.host, self.port)
    }

    /// The same origin with another path and query (no parsing, no copies of the host).
    fn with_path(&self, path_and_query: String) -> Target {
        Target {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port,
            host_header: self.host_header.clone(),
            host_value: self.host_value.clone(),
            path_and_query,
            basic_auth: self.basic_auth.clone(),
        }
    }

    /// `scheme://host:port` + path, for messages and redirects.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.host_header, self.path_and_query)
    }
}

/// The user's base URL (Locust's `host`), kept as text because Locust joins by concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// The base without credentials, e.g. `http://127.0.0.1:8080/api`.
    text: String,
    /// The base parsed once; relative requests reuse its origin.
    origin: Target,
    /// The base's own path, prefixed to every relative request ("" for a bare host).
    prefix: String,
}

/// True for a host of another protocol (`tcp://…`, `redis://…`, `grpc://…`): a scheme
/// other than http(s). Such hosts belong to custom-protocol users, which read them with
/// `User::host()`; the HTTP client refuses them per request with requests' `InvalidSchema`.
pub fn is_non_http_host(host: &str) -> bool {
    let Some((scheme, _)) = host.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !scheme.eq_ignore_ascii_case("http")
        && !scheme.eq_ignore_ascii_case("https")
}

impl BaseUrl {
    /// Checks the base URL once so every request can rely on it.
    pub fn parse(host: &str) -> Result<BaseUrl, UrlError> {
        let target = Target::parse(host)?;
        // Remove credentials from the text: they travel as a header instead.
        let text = match host.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(end);
                let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{authority}{tail}")
            }
            None => host.to_string(),
        };
        // A base of "http://h" or "http://h/" adds nothing in front of "/path"; a base with
        // a path ("http://h/api") is prefixed, exactly as Locust's string concatenation does.
        let tail_start = text.find("://").map_or(0, |i| i + 3);
        let prefix = text[tail_start..]
            .find(['/', '?', '#'])
            .map_or("", |i| &text[tail_start + i..])
            .to_string();
        Ok(BaseUrl {
            text,
            origin: target,
            prefix,
        })
    }

    /// The base URL as given, minus credentials.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Resolves a request path the way Locust does: absolute URLs are used as they are,
    /// anything else is appended to the base.
    pub fn join(&self, path: &str) -> Result<Target, UrlError> {
        if is_absolute(path) {
            return Target::parse(path);
        }
        if path.starts_with('/') && !path.contains('#') && !self.prefix.contains(['?', '#']) {
            // The common case, on every request: no need to parse the host again.
            let path = requote(path);
            let mut pq = String::with_capacity(self.prefix.len() + path.len());
            pq.push_str(&self.prefix);
            pq.push_str(&path);
            return Ok(self.origin.with_path(pq));
        }
        let mut t = Target::parse(&format!("{}{}", self.text, path))?;
        if t.basic_auth.is_none() {
            t.basic_auth.clone_from(&self.origin.basic_auth);
        }
        Ok(t)
    }
}

/// True for `http://...` and `https://...` (any case), the only URLs Locust treats as absolute.
pub fn is_absolute(path: &str) -> bool {
    strip_prefix_ci(path, "http://").is_some() || strip_prefix_ci(path, "https://").is_some()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

fn split_host_port(hostport: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        // IPv6 literal: [::1]:8080
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((
            h.to_string(),
            if p.is_empty() {
                default_port
            } else {
                p.parse().ok()?
            },
        )),
        None => Some((hostport.to_string(), default_port)),
    }
}

/// Decodes `%XX` escapes byte by byte (credentials in a URL); anything malformed is kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes what may not appear in a request line, as `requests`' `requote_uri`
/// does: letters, digits, `-._~`, the reserved characters and `%` (already-escaped text)
/// stay; a space becomes `%20`, non-ASCII text its UTF-8 bytes in `%XX` form.
pub fn requote(path: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: &[u8] = b"-._~!#$%&'()*+,/:;=?@[]";
    let needs = |b: u8| !(b.is_ascii_alphanumeric() || KEEP.contains(&b));
    if !path.bytes().any(needs) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 16);
    for b in path.bytes() {
        if needs(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_other_protocols_are_told_apart() {
        for h in [
            "tcp://127.0.0.1:7000",
            "redis://localhost/0",
            "grpc+tls://x",
        ] {
            assert!(is_non_http_host(h), "{h}");
        }
        for h in [
            "http://x",
            "HTTPS://x",
            "127.0.0.1:80",
            "://x",
            "1tcp://x",
            "a b://x",
        ] {
            assert!(!is_non_http_host(h), "{h}");
        }
    }

    #[test]
    fn joins_by_concatenation_like_locust() {
        let b = BaseUrl::parse("http://127.0.0.1:8080/api").unwrap();
        let t = b.join("/users?id=1").unwrap();
        assert_eq!(&*t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path_and_query, "/api/users?id=1");
        assert_eq!(&*t.host_header, "127.0.0.1:8080");
    }

    #[test]
    fn base_path_prefixes_and_odd_paths_fall_back_to_parsing() {
        let b = BaseUrl::parse("http://127.0.0.1:8080/api/").unwrap();
        assert_eq!(b.join("/x").unwrap().path_and_query, "/api//x");
        let b = BaseUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(b.join("/x#frag").unwrap().path_and_query, "/x");
        assert_eq!(b.join("").unwrap().path_and_query, "/");
        assert_eq!(b.join("?q=1").unwrap().path_and_query, "/?q=1");
    }

    #[test]
    fn absolute_urls_bypass_the_base_and_name_by_path() {
        let b = BaseUrl::parse("http://127.0.0.1:8080").unwrap();
        let t = b.join("http://localhost:1/refused?x=1").unwrap();
        assert_eq!((&*t.host, t.port), ("localhost", 1));
        assert_eq!(t.path_and_query, "/refused?x=1");
    }

    #[test]
    fn paths_are_requoted_like_requests() {
        let b = BaseUrl::parse("http://h:1").unwrap();
        assert_eq!(
            b.join("/search?q=hello world").unwrap().path_and_query,
            "/search?q=hello%20world"
        );
        assert_eq!(b.join("/café").unwrap().path_and_query, "/caf%C3%A9");
        assert_eq!(
            b.join("/a%20b?x=[1]").unwrap().path_and_query,
            "/a%20b?x=[1]"
        );
        assert_eq!(
            Target::parse("http://h/x y").unwrap().path_and_query,
            "/x%20y"
        );
    }

    #[test]
    fn malformed_escapes_in_credentials_do_not_panic() {
        let b = BaseUrl::parse("http://u:%aé@127.0.0.1:9").unwrap();
        assert!(b.join("/").unwrap().basic_auth.is_some());
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }

    #[test]
    fn credentials_become_basic_auth_and_leave_the_url() {
        let b = BaseUrl::parse("http://user:p%40ss@127.0.0.1:9").unwrap();
        assert_eq!(b.as_str(), "http://127.0.0.1:9");
        let t = b.join("/").unwrap();
        // base64("user:p@ss")
        assert_eq!(t.basic_auth.unwrap(), "Basic dXNlcjpwQHNz");
    }

    #[test]
    fn default_ports_and_ipv6() {
        let t = Target::parse("http://example.test/x").unwrap();
        assert_eq!((t.port, &*t.host_header), (80, "example.test"));
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (&*t.host, t.port, t.path_and_query.as_str()),
            ("::1", 8443, "/")
        );
        assert_eq!(
            Target::parse("http://h?q=1").unwrap().path_and_query,
            "/?q=1"
        );
    }

    #[test]
    fn bad_urls_get_requests_texts() {
        let e = Target::parse("/relative").unwrap_err();
        assert_eq!(e.python_class(), "MissingSchema");
        assert_eq!(
            e.to_string(),
            "Invalid URL '/relative': No scheme supplied. Perhaps you meant https:///relative?"
        );
        assert_eq!(
            Target::parse("ftp://x").unwrap_err().python_class(),
            "InvalidSchema"
        );
        assert_eq!(
            Target::parse("http://h:notaport/")
                .unwrap_err()
                .python_class(),
            "InvalidURL"
        );
    }
}
