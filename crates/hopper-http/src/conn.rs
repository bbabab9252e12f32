//! Keep-alive connections of one user.
//!
//! A user holds at most a handful of connections (normally one, to its host), so they live
//! in a small vector keyed by scheme, host and port instead of a shared pool: no locks, and a
//! user's connections close when the user stops, as they do in Locust. A connection that the
//! server closed while idle is replaced and the request retried once, which is what urllib3's
//! pool does when it finds a dropped connection.

use crate::errors;
use crate::url::{Scheme, Target};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Connections one user keeps at most (requests keeps 10 pools); the oldest goes first.
const MAX_CONNECTIONS: usize = 10;

/// A request body as the connections send it.
pub(crate) type ReqBody = Full<Bytes>;

struct Conn {
    scheme: Scheme,
    host: std::sync::Arc<str>,
    port: u16,
    sender: SendRequest<ReqBody>,
}

/// The connections of one user.
#[derive(Default)]
pub(crate) struct Connections {
    conns: Vec<Conn>,
}

impl Connections {
    /// Sends one request on a kept-alive connection to the target, opening one if needed.
    /// Errors come back as Locust's failure text.
    pub(crate) async fn send(
        &mut self,
        target: &Target,
        req: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, String> {
        if target.scheme == Scheme::Https {
            return Err(errors::exception(
                "SSLError",
                "https is not supported by this Hopper build yet",
            ));
        }
        let idx = self.conns.iter().position(|c| {
            c.scheme == target.scheme && c.port == target.port && c.host == target.host
        });
        let reused = match idx {
            Some(i) if !self.conns[i].sender.is_closed() => Some(i),
            Some(i) => {
                self.conns.swap_remove(i);
                None
            }
            None => None,
        };
        if let Some(i) = reused {
            match send_on(&mut self.conns[i].sender, req).await {
                Ok(resp) => return Ok(resp),
                Err((error, unsent)) => {
                    self.conns.swap_remove(i);
                    // hyper hands the request back when it never reached the wire (the server
                    // had closed the idle connection): retry it once on a fresh connection.
                    let Some(req) = unsent else {
                        return Err(errors::hyper_error(&error));
                    };
                    let i = self.open(target).await?;
                    return self.finish(i, req).await;
                }
            }
        }
        let i = self.open(target).await?;
        self.finish(i, req).await
    }

    async fn finish(
        &mut self,
        i: usize,
        req: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, String> {
        let result = send_on(&mut self.conns[i].sender, req).await;
        result.map_err(|(error, _)| {
            self.conns.swap_remove(i);
            errors::hyper_error(&error)
        })
    }
    /// Drops the connection to the target, e.g. after a timeout left it mid-response.
    pub(crate) fn discard(&mut self, target: &Target) {
        self.conns.retain(|c| {
            !(c.scheme == target.scheme && c.port == target.port && c.host == target.host)
        });
    }

    /// Closes every connection.
    pub(crate) fn clear(&mut self) {
        self.conns.clear();
    }

    async fn open(&mut self, target: &Target) -> Result<usize, String> {
        let stream = match TcpStream::connect((&*target.host, target.port)).await {
            Ok(s) => s,
            Err(e) if e.raw_os_error().is_none() && e.kind() != std::io::ErrorKind::TimedOut => {
                // tokio reports a failed lookup as a custom error without an errno.
                return Err(errors::resolve_error(&target.host));
            }
            Err(e) => return Err(errors::io_error(&e)),
        };
        // Requests are small and latency is what we measure: never wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| errors::hyper_error(&e))?;
        tokio::spawn(async move {
            // Errors surface on the request side; the task only drives the socket.
            let _ = conn.await;
        });
        if self.conns.len() >= MAX_CONNECTIONS {
            // Users that wander over many hosts must not hoard sockets.
            self.conns.remove(0);
        }
        self.conns.push(Conn {
            scheme: target.scheme,
            host: target.host.clone(),
            port: target.port,
            sender,
        });
        Ok(self.conns.len() - 1)
    }
}

/// A failed send, with the request when it never left (so it can be retried).
type SendFailure = (hyper::Error, Option<http::Request<ReqBody>>);

async fn send_on(
    sender: &mut SendRequest<ReqBody>,
    req: http::Request<ReqBody>,
) -> Result<http::Response<Incoming>, SendFailure> {
    if let Err(error) = sender.ready().await {
        return Err((error, Some(req)));
    }
    sender.try_send_request(req).await.map_err(|mut e| {
        let unsent = e.take_message();
        (e.into_error(), unsent)
    })
}
