//! Servers for the HTTP client's feature tests, besides the demo target: a forward proxy
//! that records what it was asked (absolute-form requests and `CONNECT` tunnels), and an
//! HTTPS front (HTTP/2 by ALPN, a self-signed certificate made by rcgen) that forwards every
//! request to the demo target, so HTTPS runs are still counted by the target.
//!
//! Both run on the caller's tokio runtime and forward each request on a fresh HTTP/1.1
//! connection: simple, and what they forward is exactly what they were sent.

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONNECTION, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, hyper::Error>;

fn full(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp
}

/// A rustls server configuration with a fresh self-signed certificate for 127.0.0.1 and
/// localhost, offering these ALPN protocols.
pub fn self_signed_tls(alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate parameters");
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
                key.serialize_der(),
            )),
        )
        .expect("a server configuration");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Sends `req` to `authority` on a new HTTP/1.1 connection, in origin form, without the
/// proxy's own headers, and hands back the answer (502 when the target cannot be reached).
async fn forward(authority: &str, mut req: Request<Incoming>) -> Response<Body> {
    let Ok(stream) = TcpStream::connect(authority).await else {
        return full(StatusCode::BAD_GATEWAY, "target unreachable");
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return full(StatusCode::BAD_GATEWAY, "handshake failed");
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    *req.uri_mut() = path.parse().expect("an origin-form URI");
    *req.version_mut() = Version::HTTP_11;
    let h = req.headers_mut();
    h.remove(PROXY_AUTHORIZATION);
    h.remove(HeaderName::from_static("proxy-connection"));
    if !h.contains_key(HOST) {
        h.insert(
            HOST,
            HeaderValue::from_str(authority).expect("a host header"),
        );
    }
    match sender.send_request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            // Hop-by-hop headers stay on this hop (HTTP/2 refuses them).
            for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
                parts.headers.remove(name);
            }
            parts.headers.remove(HeaderName::from_static("keep-alive"));
            Response::from_parts(parts, body.boxed())
        }
        Err(_) => full(StatusCode::BAD_GATEWAY, "target failed"),
    }
}

/// One request a [`start_proxy`] proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySeen {
    pub method: String,
    /// As on the request line: `http://host:port/path` (absolute form) or `host:port`
    /// (a `CONNECT`).
    pub uri: String,
    pub proxy_authorization: Option<String>,
}

/// What a proxy saw.
#[derive(Debug, Default)]
pub struct ProxyLog {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    pub requests: Mutex<Vec<ProxySeen>>,
}

impl ProxyLog {
    pub fn seen(&self) -> Vec<ProxySeen> {
        self.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Starts a forward proxy on 127.0.0.1 and returns its `http://127.0.0.1:port` URL. It
/// forwards absolute-form requests and opens `CONNECT` tunnels; with `auth` (the whole
/// header value, e.g. `Basic ...`), anything without that `Proxy-Authorization` gets 407.
pub async fn start_proxy(auth: Option<&str>) -> (String, Arc<ProxyLog>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("the proxy's address")
    );
    let log = Arc::new(ProxyLog::default());
    let auth: Option<Arc<str>> = auth.map(Arc::from);
    let log2 = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            log2.connections.fetch_add(1, Ordering::SeqCst);
            let log = log2.clone();
            let auth = auth.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                let log = log.clone();
                let auth = auth.clone();
                async move { Ok::<_, Infallible>(proxy_request(req, &log, auth.as_deref()).await) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (url, log)
}

async fn proxy_request(
    mut req: Request<Incoming>,
    log: &ProxyLog,
    auth: Option<&str>,
) -> Response<Body> {
    let given = req
        .headers()
        .get(PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    log.requests.lock().unwrap().push(ProxySeen {
        method: req.method().to_string(),
        uri: req.uri().to_string(),
        proxy_authorization: given.clone(),
    });
    if auth.is_some() && given.as_deref() != auth {
        let mut resp = full(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "proxy credentials needed",
        );
        resp.headers_mut().insert(
            PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"test\""),
        );
        return resp;
    }
    let Some(authority) = req.uri().authority().map(|a| a.to_string()) else {
        return full(
            StatusCode::BAD_REQUEST,
            "a proxy wants absolute-form requests",
        );
    };
    if req.method() == Method::CONNECT {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let (Ok(upgraded), Ok(mut target)) =
                (upgrade.await, TcpStream::connect(&authority).await)
            else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut target).await;
        });
        return full(StatusCode::OK, "");
    }
    forward(&authority, req).await
}

/// Starts an HTTPS server on 127.0.0.1 with `tls` that forwards every request to the
/// plain-HTTP `backend`; returns its port and the HTTP version of every request it served.
pub async fn start_tls_front(
    backend: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> (u16, Arc<Mutex<Vec<Version>>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the TLS front");
    let port = listener.local_addr().expect("the front's address").port();
    let versions = Arc::new(Mutex::new(Vec::new()));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let seen = versions.clone();
    let backend = backend.to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let svc = service_fn(move |req: Request<Incoming>| {
                    seen.lock().unwrap().push(req.version());
                    let backend = backend.clone();
                    async move { Ok::<_, Infallible>(forward(&backend, req).await) }
                });
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                }
            });
        }
    });
    (port, versions)
}
