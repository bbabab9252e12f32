//! A small per-user cookie jar.
//!
//! Locust users keep cookies in their `requests.Session`; load tests rely on that for
//! session logins. This jar keeps what test targets set in practice — name, value, domain,
//! path, expiry by `Max-Age`/`Expires` deletion — and sends matching cookies back. It does
//! not implement public-suffix rules: a load test talks to its own hosts.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    /// Lower-cased host the cookie belongs to (the request host unless `Domain` widened it).
    domain: String,
    /// True when set with a `Domain` attribute: sub-domains match too.
    include_subdomains: bool,
    path: String,
    expires: Option<Instant>,
}

/// Cookies of one user.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Stores the cookie of one `Set-Cookie` header received from `host` for `path`.
    pub fn store(&mut self, set_cookie: &str, host: &str, request_path: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        let mut cookie = Cookie {
            name: name.to_string(),
            value: value.trim().trim_matches('"').to_string(),
            domain: host.to_ascii_lowercase(),
            include_subdomains: false,
            path: default_path(request_path),
            expires: None,
        };
        let mut delete = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("domain") && !v.is_empty() {
                cookie.domain = v.trim_start_matches('.').to_ascii_lowercase();
                cookie.include_subdomains = true;
            } else if k.eq_ignore_ascii_case("path") && v.starts_with('/') {
                cookie.path = v.to_string();
            } else if k.eq_ignore_ascii_case("max-age") {
                match v.parse::<i64>() {
                    Ok(secs) if secs <= 0 => delete = true,
                    // A huge Max-Age means "practically never": no expiry rather than an overflow.
                    Ok(secs) => {
                        cookie.expires =
                            Instant::now().checked_add(Duration::from_secs(secs as u64))
                    }
                    Err(_) => {}
                }
            } else if k.eq_ignore_ascii_case("expires") && expires_in_past(v) {
                delete = true;
            }
        }
        self.cookies.retain(|c| {
            !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
        });
        if !delete {
            self.cookies.push(cookie);
        }
    }

    /// The `Cookie` header value for a request, or `None` when no cookie matches.
    pub fn header_for(&mut self, host: &str, path: &str) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        let now = Instant::now();
        self.cookies.retain(|c| c.expires.is_none_or(|e| e > now));
        let host = host.to_ascii_lowercase();
        let mut out = String::new();
        for c in &self.cookies {
            let domain_ok = host == c.domain
                || (c.include_subdomains && host.ends_with(&format!(".{}", c.domain)));
            let path_ok = path.starts_with(&c.path)
                && (c.path.ends_with('/')
                    || path.len() == c.path.len()
                    || path[c.path.len()..].starts_with(['/', '?']));
            if domain_ok && path_ok {
                if !out.is_empty() {
                    out.push_str("; ");
                }
                out.push_str(&c.name);
                out.push('=');
                out.push_str(&c.value);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

/// RFC 6265 default-path: the request path up to its last `/`.
fn default_path(request_path: &str) -> String {
    let path = request_path.split('?').next().unwrap_or("/");
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

/// Servers delete cookies with an `Expires` date in the past; the usual idiom is the epoch.
fn expires_in_past(v: &str) -> bool {
    v.contains("1970")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_sends_back() {
        let mut jar = CookieJar::default();
        jar.store("session=abc; Path=/; HttpOnly", "127.0.0.1", "/cookie/set");
        jar.store("theme=dark", "127.0.0.1", "/prefs/set");
        assert_eq!(
            jar.header_for("127.0.0.1", "/x").as_deref(),
            Some("session=abc")
        );
        assert_eq!(
            jar.header_for("127.0.0.1", "/prefs/a").as_deref(),
            Some("session=abc; theme=dark")
        );
        assert_eq!(jar.header_for("localhost", "/x"), None);
    }

    #[test]
    fn replaces_and_deletes() {
        let mut jar = CookieJar::default();
        jar.store("a=1; Path=/", "h", "/");
        jar.store("a=2; Path=/", "h", "/");
        assert_eq!(jar.header_for("h", "/").as_deref(), Some("a=2"));
        jar.store("a=; Path=/; Max-Age=0", "h", "/");
        assert_eq!(jar.header_for("h", "/"), None);
    }

    #[test]
    fn huge_max_age_does_not_overflow() {
        let mut jar = CookieJar::default();
        jar.store("sid=1; Max-Age=9223372036854775807", "h", "/");
        assert_eq!(jar.header_for("h", "/").as_deref(), Some("sid=1"));
    }

    #[test]
    fn domain_attribute_covers_subdomains() {
        let mut jar = CookieJar::default();
        jar.store("a=1; Domain=.example.test", "www.example.test", "/");
        assert!(jar.header_for("api.example.test", "/").is_some());
        assert!(jar.header_for("other.test", "/").is_none());
    }
}
