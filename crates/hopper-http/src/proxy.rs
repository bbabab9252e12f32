//! Forward proxies, requests' `proxies={"http": ..., "https": ...}` with one proxy for both.
//!
//! Locust's `HttpSession` sets `trust_env=False`, so `HTTP_PROXY`, `HTTPS_PROXY` and
//! `NO_PROXY` are never read: a proxy is used only when the test sets one
//! ([`crate::HttpClient::proxy`] or [`crate::ClientConfig::proxy`]). Then, as in requests:
//!
//! * `http://` targets are asked of the proxy in absolute form (`GET http://host/path
//!   HTTP/1.1`), with `Proxy-Authorization: Basic ...` when the proxy URL has credentials;
//! * `https://` targets go through a `CONNECT host:port` tunnel (the credentials go on the
//!   `CONNECT`), then TLS with the target inside it, HTTP/2 when the target offers it.
//!
//! Connections are kept per proxy and target, like direct ones. The proxy itself is spoken
//! to in plain HTTP (`http://` proxy URLs; a URL without a scheme is taken as `http://`, as
//! requests does).

use crate::errors;
use crate::url::{Target, UrlError};
use bytes::Bytes;
use http::header::{HeaderValue, HOST, PROXY_AUTHORIZATION};
use http::{Method, Request};
use http_body_util::Empty;
use hyper::client::conn::http1;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::fmt;
use std::sync::Arc;
use tokio::net::TcpStream;

/// A proxy for a user's requests: parsed once, and when it cannot be used, the failure text
/// every request then reports (requests' `InvalidProxyURL(...)`).
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The URL without credentials, for messages.
    shown: String,
    parsed: Result<Arc<ProxyTarget>, String>,
}

/// Where the proxy is and how to authenticate to it.
#[derive(PartialEq, Eq)]
pub(crate) struct ProxyTarget {
    pub(crate) host: Arc<str>,
    pub(crate) port: u16,
    /// `Basic ...` from the URL's credentials.
    pub(crate) auth: Option<HeaderValue>,
}

impl fmt::Debug for ProxyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the credentials.
        f.debug_struct("ProxyTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

impl Proxy {
    /// A proxy from its URL, `http://[user:password@]host:port` (port 80 when left out).
    /// Never fails: a URL that cannot be used makes each request fail with
    /// `InvalidProxyURL('...')`, as in requests.
    pub fn new(url: &str) -> Proxy {
        let with_scheme = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let shown = match with_scheme.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let authority = &rest[..end];
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}")
            }
            None => with_scheme.clone(),
        };
        let parsed = match Target::parse(&with_scheme) {
            Ok(t) if t.scheme == crate::url::Scheme::Http => Ok(Arc::new(ProxyTarget {
                host: t.host,
                port: t.port,
                auth: t.basic_auth,
            })),
            Ok(_) | Err(UrlError::InvalidSchema(_)) => Err(errors::exception(
                "InvalidProxyURL",
                &format!("Hopper speaks to proxies in plain HTTP only: use http://, not {shown}"),
            )),
            Err(_) => Err(errors::exception(
                "InvalidProxyURL",
                "Please check proxy URL. It is malformed and could be missing the host.",
            )),
        };
        Proxy { shown, parsed }
    }

    /// The proxy URL without credentials.
    pub fn url(&self) -> &str {
        &self.shown
    }

    pub(crate) fn target(&self) -> Result<&Arc<ProxyTarget>, &str> {
        self.parsed.as_ref().map_err(String::as_str)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the credentials.
        f.debug_tuple("Proxy").field(&self.shown).finish()
    }
}

/// `ProxyError('Cannot connect to proxy.', ConnectionRefusedError(111, 'Connection
/// refused'))`: urllib3's words when the proxy cannot be reached.
pub(crate) fn cannot_connect(cause: &str) -> String {
    format!(
        "ProxyError({}, {cause})",
        hopper_stats::pyfmt::python_repr_str("Cannot connect to proxy.")
    )
}

/// `ProxyError('Unable to connect to proxy', OSError('Tunnel connection failed: 407 Proxy
/// Authentication Required'))`: urllib3's words when the tunnel is refused.
fn tunnel_failed(cause: &str) -> String {
    format!(
        "ProxyError({}, {cause})",
        hopper_stats::pyfmt::python_repr_str("Unable to connect to proxy")
    )
}

/// The `host:port` a `CONNECT` asks for (IPv6 addresses in brackets).
fn connect_authority(target: &Target) -> String {
    if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    }
}

/// Asks the proxy on `stream` for a tunnel to the target; the tunnel is the stream TLS then
/// runs over.
pub(crate) async fn tunnel(
    stream: TcpStream,
    target: &Target,
    proxy: &ProxyTarget,
) -> Result<TokioIo<Upgraded>, String> {
    let failed = |e: &hyper::Error| tunnel_failed(&errors::hyper_error(e));
    let (mut sender, conn) = http1::Builder::new()
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| failed(&e))?;
    tokio::spawn(async move {
        // Ends when the tunnel is handed over (or the proxy hangs up).
        let _ = conn.with_upgrades().await;
    });
    let authority = connect_authority(target);
    let invalid = || errors::exception("InvalidURL", &format!("Invalid URL '{}'", target.url()));
    let mut req = Request::new(Empty::new());
    *req.method_mut() = Method::CONNECT;
    *req.uri_mut() = http::Uri::try_from(authority.as_str()).map_err(|_| invalid())?;
    let host = HeaderValue::from_str(&authority).map_err(|_| invalid())?;
    req.headers_mut().insert(HOST, host);
    if let Some(auth) = &proxy.auth {
        req.headers_mut().insert(PROXY_AUTHORIZATION, auth.clone());
    }
    let resp = sender.send_request(req).await.map_err(|e| failed(&e))?;
    let status = resp.status();
    if !status.is_success() {
        let reason = format!(
            "Tunnel connection failed: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        return Err(tunnel_failed(&errors::exception(
            "OSError",
            reason.trim_end(),
        )));
    }
    let upgraded = hyper::upgrade::on(resp).await.map_err(|e| failed(&e))?;
    Ok(TokioIo::new(upgraded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_and_without_scheme_and_credentials() {
        let p = Proxy::new("http://user:p%40ss@127.0.0.1:3128");
        assert_eq!(p.url(), "http://127.0.0.1:3128");
        let t = p.target().unwrap();
        assert_eq!((&*t.host, t.port), ("127.0.0.1", 3128));
        // base64("user:p@ss")
        assert_eq!(t.auth.as_ref().unwrap(), "Basic dXNlcjpwQHNz");
        assert!(!format!("{p:?}").contains("user"));

        let p = Proxy::new("proxy.test");
        let t = p.target().unwrap();
        assert_eq!(
            (&*t.host, t.port, t.auth.is_none()),
            ("proxy.test", 80, true)
        );
    }

    #[test]
    fn unusable_urls_give_requests_text() {
        assert_eq!(
            Proxy::new("http://:8080").target().unwrap_err(),
            "InvalidProxyURL('Please check proxy URL. It is malformed and could be missing the host.')"
        );
        assert_eq!(
            Proxy::new("socks5://127.0.0.1:1080").target().unwrap_err(),
            "InvalidProxyURL('Hopper speaks to proxies in plain HTTP only: use http://, not \
             socks5://127.0.0.1:1080')"
        );
        assert!(Proxy::new("https://127.0.0.1:1").target().is_err());
    }

    #[test]
    fn connect_asks_for_host_and_port() {
        let t = Target::parse("https://example.test/x").unwrap();
        assert_eq!(connect_authority(&t), "example.test:443");
        let t = Target::parse("https://[::1]:8443/").unwrap();
        assert_eq!(connect_authority(&t), "[::1]:8443");
    }
}
