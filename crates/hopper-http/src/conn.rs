//! Keep-alive connections of one user.
//!
//! A user holds at most a handful of connections (normally one, to its host), so they live
//! in a small vector keyed by scheme, host and port instead of a shared pool: no locks, and a
//! user's connections close when the user stops, as they do in Locust. A connection that the
//! server closed while idle is replaced and the request retried once, which is what urllib3's
//! pool does when it finds a dropped connection.
//!
//! `http://` targets always get HTTP/1.1. `https://` targets get TLS (rustls, with the
//! configuration shared per distinct [`TlsOptions`]) and HTTP/2 when the server picks `h2`
//! in ALPN, HTTP/1.1 otherwise; an HTTP/2 connection carries all of the user's requests to
//! that origin, one stream after another.
//!
//! With a proxy (see [`crate::proxy`]), an `http://` target's connection goes to the proxy
//! and an `https://` target's runs TLS inside a `CONNECT` tunnel; connections are kept per
//! proxy and target. Opening a connection notes how long TCP (and the tunnel) and TLS took
//! in the request's [`Timings`]; sending notes the time to the response head.
//!
//! Before a long wait the user parks its HTTP/1.1 connections ([`Connections::park`], see
//! [`crate::park`]): each keeps only its socket until the next request to its origin resumes
//! it, on the same TCP connection.

use crate::errors;
use crate::park::{self, H1Io, Live, Parked};
use crate::proxy::{self, ProxyTarget};
use crate::tcp_or::TcpOr;
use crate::timings::{self, Timings};
use crate::tls::{self, TlsOptions};
use crate::url::{Scheme, Target};
use http::uri::Authority;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use smallvec::SmallVec;
use std::io;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpStream;

/// Connections one user keeps at most (requests keeps 10 pools); the oldest goes first.
const MAX_CONNECTIONS: usize = 10;

pub(crate) use crate::body::ReqBody;

struct Conn {
    scheme: Scheme,
    host: Arc<str>,
    port: u16,
    /// The proxy this connection goes through (host and port), if any.
    via: Option<(Arc<str>, u16)>,
    sender: Sender,
    /// For TLS connections, the first I/O error on the socket. When a connection dies before
    /// it answers, hyper often tells the request side only that it closed (h2 even keeps
    /// only the text of I/O errors); the reason, e.g. the server's alert refusing a missing
    /// client certificate, is caught here as it passes through the socket.
    io_error: Option<Arc<tls::FirstError>>,
}

/// The request side of a connection.
enum Sender {
    H1(Live),
    H2(H2Sender),
    /// An HTTP/1.1 connection reduced to its socket while its user waits.
    Parked(Parked),
}

/// An HTTP/2 connection's request side.
struct H2Sender {
    send: http2::SendRequest<ReqBody>,
    /// HTTP/2 needs the authority in the request URI (`:authority`), parsed once here.
    authority: Authority,
}

impl Conn {
    fn is_for(&self, target: &Target, proxy: Option<&ProxyTarget>) -> bool {
        self.scheme == target.scheme
            && self.port == target.port
            && self.host == target.host
            && match (&self.via, proxy) {
                (None, None) => true,
                (Some((host, port)), Some(p)) => *port == p.port && *host == p.host,
                _ => false,
            }
    }
}

impl Sender {
    /// Whether the connection is known to be closed. A parked one is checked when resumed.
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.send.is_closed(),
            Sender::H2(s) => s.send.is_closed(),
            Sender::Parked(_) => false,
        }
    }
}

/// The connections of one user.
///
/// The first is kept inline, in the user's own memory: a separate allocation made while
/// connecting lands between the large short-lived ones of the connections opened at the
/// same time, and after they are freed it alone keeps a whole page of memory resident.
#[derive(Default)]
pub(crate) struct Connections {
    conns: SmallVec<[Conn; 1]>,
}

impl Connections {
    /// Sends one request on a kept-alive connection to the target (through `proxy` when
    /// given), opening one if needed, and notes connect, TLS and time-to-head in `timing`.
    /// Errors come back as Locust's failure text.
    ///
    /// One place awaits the send, for the kept connection and for a new one alike, and the
    /// rare steps (opening, resuming a parked connection) are boxed: this future is part of
    /// every request's, which is moved and allocated per task call, so its size is CPU.
    pub(crate) async fn send(
        &mut self,
        target: &Target,
        proxy: Option<&ProxyTarget>,
        mut req: http::Request<ReqBody>,
        tls: &TlsOptions,
        timing: &mut Timings,
    ) -> Result<http::Response<Incoming>, String> {
        let mut retry = true;
        loop {
            // A request that failed unsent on a kept connection goes out on a new one.
            let kept = if retry {
                self.kept(target, proxy).await
            } else {
                None
            };
            let fresh = kept.is_none();
            let i = match kept {
                Some(i) => i,
                None => Box::pin(self.open(target, proxy, tls, timing)).await?,
            };
            let sent = Instant::now();
            match send_on(&mut self.conns[i].sender, req).await {
                Ok(resp) => {
                    timing.ttfb = Some(sent.elapsed());
                    return Ok(resp);
                }
                Err((error, unsent)) => {
                    let conn = self.conns.swap_remove(i);
                    // hyper hands the request back when it never reached the wire (the server
                    // had closed the idle connection): retry it once on a fresh connection.
                    match unsent {
                        Some(unsent) if !fresh && retry => {
                            req = unsent;
                            retry = false;
                        }
                        _ => return Err(failure_text(conn, error)),
                    }
                }
            }
        }
    }

    /// The index of a usable kept connection to the target (resumed if it was parked), or
    /// `None`: none kept, or the kept one closed (and now gone).
    async fn kept(&mut self, target: &Target, proxy: Option<&ProxyTarget>) -> Option<usize> {
        let i = self.conns.iter().position(|c| c.is_for(target, proxy))?;
        match &self.conns[i].sender {
            Sender::Parked(_) => Box::pin(self.resume(i)).await,
            s if !s.is_closed() => Some(i),
            _ => {
                self.conns.swap_remove(i);
                None
            }
        }
    }

    /// Parks every HTTP/1.1 connection (see [`crate::park`]); one that cannot be parked is
    /// closed, and the next request opens a new one. HTTP/2 connections stay as they are.
    pub(crate) async fn park(&mut self) {
        let mut i = 0;
        while i < self.conns.len() {
            if !matches!(self.conns[i].sender, Sender::H1(_)) {
                i += 1;
                continue;
            }
            // Taken out while hyper hands the socket back, put back in its place once parked.
            let mut conn = self.conns.remove(i);
            if let Sender::H1(live) = conn.sender {
                if let Some(io) = live.park().await {
                    conn.sender = Sender::Parked(io);
                    self.conns.insert(i, conn);
                    i += 1;
                }
            }
        }
    }

    /// Resumes the parked connection at `i`: `Some(i)` once it is live again, or `None` (and
    /// it is gone) when the server closed it meanwhile, so that the request opens a new one.
    async fn resume(&mut self, i: usize) -> Option<usize> {
        let mut conn = self.conns.remove(i);
        conn.sender = match conn.sender {
            Sender::Parked(parked) => Sender::H1(park::resume(parked).await?),
            // Only called for parked connections; anything else is put back untouched.
            other => other,
        };
        self.conns.insert(i, conn);
        Some(i)
    }

    /// Drops the connections to the target (direct or through a proxy), e.g. after a
    /// response body could not be read.
    pub(crate) fn discard(&mut self, target: &Target) {
        self.conns.retain(|c| {
            !(c.scheme == target.scheme && c.port == target.port && c.host == target.host)
        });
    }

    /// Closes every connection.
    pub(crate) fn clear(&mut self) {
        self.conns.clear();
    }

    /// Closes the TLS connections (their options changed).
    pub(crate) fn clear_tls(&mut self) {
        self.conns.retain(|c| c.scheme != Scheme::Https);
    }

    async fn open(
        &mut self,
        target: &Target,
        proxy: Option<&ProxyTarget>,
        tls: &TlsOptions,
        timing: &mut Timings,
    ) -> Result<usize, String> {
        // Unusable TLS options fail before any network traffic.
        let tls_config = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => Some(tls::client_config(tls)?),
        };
        let started = Instant::now();
        let (host, port) = match proxy {
            Some(p) => (&p.host, p.port),
            None => (&target.host, target.port),
        };
        let stream = match TcpStream::connect((&**host, port)).await {
            Ok(s) => s,
            Err(e) => {
                let text = if e.raw_os_error().is_none() && e.kind() != io::ErrorKind::TimedOut {
                    // tokio reports a failed lookup as a custom error without an errno.
                    errors::resolve_error(host)
                } else {
                    errors::io_error(&e)
                };
                return Err(match proxy {
                    Some(_) => proxy::cannot_connect(&text),
                    None => text,
                });
            }
        };
        // Requests are small and latency is what we measure: never wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, io_error) = match tls_config {
            None => {
                timings::add(&mut timing.connect, started.elapsed());
                (Sender::H1(Live::start(H1Io::Tcp(stream)).await?), None)
            }
            Some(config) => {
                let io = match proxy {
                    Some(p) => Io::Wrapped(proxy::tunnel(stream, target, p).await?),
                    None => Io::Tcp(stream),
                };
                timings::add(&mut timing.connect, started.elapsed());
                let io_error = Arc::new(tls::FirstError::default());
                let sender = open_tls(io, target, config, io_error.clone(), timing).await?;
                (sender, Some(io_error))
            }
        };
        if self.conns.len() >= MAX_CONNECTIONS {
            // Users that wander over many hosts must not hoard sockets.
            self.conns.remove(0);
        }
        self.conns.push(Conn {
            scheme: target.scheme,
            host: target.host.clone(),
            port: target.port,
            via: proxy.map(|p| (p.host.clone(), p.port)),
            sender,
            io_error,
        });
        Ok(self.conns.len() - 1)
    }
}

/// The TLS handshake, then HTTP/2 if the server chose `h2` in ALPN, else HTTP/1.1.
async fn open_tls(
    stream: Io,
    target: &Target,
    config: Arc<rustls::ClientConfig>,
    io_error: Arc<tls::FirstError>,
    timing: &mut Timings,
) -> Result<Sender, String> {
    let name = tls::server_name(&target.host)?;
    let started = Instant::now();
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| errors::tls_handshake_error(&e))?;
    timings::add(&mut timing.tls, started.elapsed());
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let stream = tls::Watched::new(stream, io_error);
    if h2 {
        let authority = Authority::try_from(&*target.host_header).map_err(|_| {
            errors::exception("InvalidURL", &format!("Invalid URL '{}'", target.url()))
        })?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| errors::hyper_error(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        return Ok(Sender::H2(H2Sender {
            send: sender,
            authority,
        }));
    }
    Ok(Sender::H1(
        Live::start(H1Io::Wrapped(Box::new(stream))).await?,
    ))
}

/// A failed send: hyper's failure text, and the request when it never left (so it can be
/// retried).
type SendFailure = (String, Option<http::Request<ReqBody>>);

async fn send_on(
    sender: &mut Sender,
    req: http::Request<ReqBody>,
) -> Result<http::Response<Incoming>, SendFailure> {
    match sender {
        Sender::H1(Live { send: sender, .. }) => {
            if let Err(error) = sender.ready().await {
                return Err((errors::hyper_error(&error), Some(req)));
            }
            sender.try_send_request(req).await.map_err(|mut e| {
                let unsent = e.take_message();
                (errors::hyper_error(&e.into_error()), unsent)
            })
        }
        // `send` resumes a parked connection before using it; were one ever handed here, the
        // request goes back unsent, which makes the caller retry it on a new connection.
        Sender::Parked(_) => Err((
            errors::exception("ConnectionError", "the connection was parked"),
            Some(req),
        )),
        Sender::H2(H2Sender {
            send: sender,
            authority,
            ..
        }) => {
            let req = absolute_form(req, authority);
            if let Err(error) = sender.ready().await {
                return Err((errors::hyper_error(&error), Some(req)));
            }
            sender.try_send_request(req).await.map_err(|mut e| {
                let unsent = e.take_message();
                (errors::hyper_error(&e.into_error()), unsent)
            })
        }
    }
}

/// The failure text for a request the connection could not carry.
fn failure_text(conn: Conn, error: String) -> String {
    conn.io_error
        .as_deref()
        .and_then(tls::FirstError::text)
        .unwrap_or(error)
}

/// HTTP/2 sends scheme and authority as pseudo-headers, taken from the request URI. (The
/// `Host` header stays: it equals the authority, which HTTP/2 allows.)
fn absolute_form(mut req: http::Request<ReqBody>, authority: &Authority) -> http::Request<ReqBody> {
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(http::uri::Scheme::HTTPS);
    parts.authority = Some(authority.clone());
    // Cannot fail: scheme, authority and path are all set.
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

/// What TLS runs over: a TCP connection to the target, or a tunnel through a proxy.
pub(crate) type Io = TcpOr<TokioIo<Upgraded>>;
