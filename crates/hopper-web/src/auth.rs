//! Access control for the UI and the API (`--web-login` with `--web-auth USER:PASS`).
//!
//! Locust 2.x only provides the login page and leaves the checking to code in the
//! locustfile; Hopper checks a username and password itself. A browser logs in through
//! the form and gets a session cookie; scripts and probes send the same credentials as HTTP
//! Basic auth, so `curl -f -u admin:secret .../stats/requests` keeps working. Every route
//! except the login page needs one or the other.

use base64::Engine;
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "hopper_session";

/// The one account allowed in.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, not even in debug output.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses `USER:PASS`, or `@FILE` whose first line is `USER:PASS` (keeps the password
    /// out of the process list and shell history).
    pub fn parse(spec: &str) -> Result<Credentials, String> {
        let (text, origin) = match spec.strip_prefix('@') {
            Some(path) => {
                let content = std::fs::read_to_string(path)
                    .map_err(|e| format!("--web-auth: cannot read credentials file {path}: {e}"))?;
                let first = content.lines().next().unwrap_or("").trim().to_string();
                (first, format!("the first line of {path}"))
            }
            None => (spec.to_string(), "--web-auth".to_string()),
        };
        match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => Ok(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            }),
            _ => Err(format!(
                "{origin} must be USERNAME:PASSWORD with neither part empty"
            )),
        }
    }

    /// Whether `user`/`pass` match, comparing in time independent of where they differ.
    pub fn matches(&self, user: &str, pass: &str) -> bool {
        // Both comparisons always run, so timing does not tell which part was wrong.
        let u = constant_time_eq(user.as_bytes(), self.username.as_bytes());
        let p = constant_time_eq(pass.as_bytes(), self.password.as_bytes());
        u & p
    }

    /// Whether an `Authorization` header carries these credentials as Basic auth.
    pub fn matches_basic_header(&self, header: &str) -> bool {
        let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        match text.split_once(':') {
            Some((u, p)) => self.matches(u, p),
            None => false,
        }
    }
}

/// Compares SHA-256 digests, so neither the content nor the length of the secret shows in
/// the time taken.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Logged-in browser sessions: random tokens handed out as cookies.
#[derive(Default)]
pub struct Sessions {
    tokens: Mutex<HashSet<String>>,
}

impl Sessions {
    /// A new session token (128 bits from the operating system's secure generator).
    pub fn create(&self) -> Result<String, String> {
        let mut bytes = [0u8; 16];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut bytes)
            .map_err(|_| "the system random number generator failed".to_string())?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.lock().insert(token.clone());
        Ok(token)
    }

    /// Whether the token belongs to a live session.
    pub fn contains(&self, token: &str) -> bool {
        self.lock().contains(token)
    }

    /// Ends a session.
    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The value of the session cookie in a `Cookie` header, if present.
pub fn session_cookie(cookie_header: &str) -> Option<&str> {
    cookie_header.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        (name == SESSION_COOKIE).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_pass_and_rejects_empty_parts() {
        let c = Credentials::parse("admin:se:cret").unwrap();
        assert_eq!(c.username, "admin");
        assert_eq!(c.password, "se:cret");
        assert!(Credentials::parse("admin").is_err());
        assert!(Credentials::parse(":x").is_err());
        assert!(Credentials::parse("x:").is_err());
        assert!(!format!("{c:?}").contains("se:cret"));
    }

    #[test]
    fn reads_a_credentials_file() {
        let dir = std::env::temp_dir().join(format!("hopper-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("creds");
        std::fs::write(&path, "ops:pw\nignored\n").unwrap();
        let c = Credentials::parse(&format!("@{}", path.display())).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("ops", "pw"));
        let err = Credentials::parse("@/nonexistent/creds").unwrap_err();
        assert!(err.contains("/nonexistent/creds"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn basic_header_and_cookie() {
        let c = Credentials::parse("admin:secret").unwrap();
        // base64("admin:secret")
        assert!(c.matches_basic_header("Basic YWRtaW46c2VjcmV0"));
        assert!(!c.matches_basic_header("Basic YWRtaW46c2VjcmVV"));
        assert!(!c.matches_basic_header("Bearer x"));
        assert!(!c.matches_basic_header("Basic !!!"));
        assert_eq!(session_cookie("a=1; hopper_session=abc; b=2"), Some("abc"));
        assert_eq!(session_cookie("a=1"), None);
        let s = Sessions::default();
        let t = s.create().unwrap();
        assert_eq!(t.len(), 32);
        assert!(s.contains(&t));
        s.remove(&t);
        assert!(!s.contains(&t));
    }
}
