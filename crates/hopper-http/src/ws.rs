//! WebSocket users: connect, send, receive with a timeout, close; each exchange recorded as
//! a request in Hopper's statistics.
//!
//! A test author keeps a [`WebSocket`] in the user's own state (typically an
//! `Option<WebSocket>` filled in `on_start`). What is recorded, with the type `WS` unless
//! [`request_type`](Connect::request_type) says otherwise:
//!
//! | call | recorded as | response time | length |
//! |---|---|---|---|
//! | [`WebSocket::connect`] | the URL's path (or `.name(..)`) | TCP connect, TLS and the upgrade handshake | 0 |
//! | [`WebSocket::receive`] | `receive` (or `.name(..)`) | from the call until a message arrives | the message's payload bytes |
//! | [`WebSocket::exchange`] | `exchange` (or `.name(..)`) | from before the send until the reply arrives | the reply's payload bytes |
//! | `send_*`, [`WebSocket::close`] | nothing | | |
//!
//! A send alone is not a request (nothing comes back to time); when it fails, the error is
//! returned and the socket is left closed, so the next receive or exchange is recorded as a
//! failure. A socket made with [`WebSocket::connect_from`] follows the user's client when the
//! user is killed: nothing new starts, and what is on the wire finishes and is recorded. Every failure — connection refused, a TLS error, the server refusing the upgrade,
//! a timeout, the server closing, a protocol error — is recorded with a text in the words of
//! Python's `websocket-client` where it has one (`WebSocketTimeoutException('timed out')`),
//! returned as a [`WsError`], and never panics. A receive on a closed socket fails at once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hopper_http::ws::WsError> {
//! use hopper_http::ws::WebSocket;
//! use std::time::Duration;
//! let mut ws = WebSocket::connect("ws://127.0.0.1:8080/ws/echo").name("connect").await?;
//! ws.send_text("hello").await?;
//! let reply = ws.receive(Duration::from_secs(2)).name("echo").await?;
//! assert_eq!(reply.to_text().unwrap_or(""), "hello");
//! ws.exchange("ping", Duration::from_secs(2)).name("ping").await?;
//! ws.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! `wss://` uses the same rustls configuration (roots, client certificate, `verify=False`)
//! as the HTTP client, given with [`Connect::tls`]; it always offers only HTTP/1.1, which
//! the upgrade needs.

use crate::drain::Drain;
use crate::errors;
use crate::tcp_or::TcpOr;
use crate::tls::{self, TlsOptions};
use crate::url::{self, Scheme, Target};
use crate::HttpClient;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderName, HeaderValue};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Error as TError};
use tokio_tungstenite::WebSocketStream;

/// A WebSocket message: `Text` or `Binary` when received (pings and pongs are answered and
/// skipped).
pub use tokio_tungstenite::tungstenite::Message;

/// The request type recorded unless the test chooses another.
pub const DEFAULT_REQUEST_TYPE: &str = "WS";

/// How long [`WebSocket::close`] waits for the server to answer the closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failed WebSocket operation; its text is what the failures table shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError(String);

impl WsError {
    /// The failure text, e.g. `WebSocketTimeoutException('timed out')`.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WsError {}

/// An open (or closed) client WebSocket. Dropping it drops the connection without the
/// closing handshake; call [`close`](WebSocket::close) to say goodbye properly.
pub struct WebSocket {
    /// `None` once closed, by either side or by an error.
    stream: Option<WebSocketStream<Io>>,
    request_type: Arc<str>,
    path: Arc<str>,
    drain: Option<Drain>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("path", &self.path)
            .field("open", &self.is_open())
            .finish()
    }
}

impl WebSocket {
    /// Starts connecting to a `ws://` or `wss://` URL (`http://` and `https://` are taken
    /// as `ws://` and `wss://`, so a URL built from the user's host works). Await the
    /// returned builder, after setting the name, type, headers, TLS options or timeout.
    pub fn connect(url: impl Into<String>) -> Connect {
        Connect {
            url: url.into(),
            name: None,
            request_type: Arc::from(DEFAULT_REQUEST_TYPE),
            headers: Vec::new(),
            tls: TlsOptions::default(),
            timeout: None,
            drain: None,
        }
    }

    /// Starts connecting to `path` on the user's host, with the user's HTTP client settings:
    /// the host's `http://` / `https://` becomes `ws://` / `wss://`, and the client's TLS
    /// options and timeout apply. The socket also joins the client's drain, so when the user
    /// is killed mid-task an exchange already on the wire still finishes and is recorded,
    /// like an HTTP request (the target's count and Hopper's stay equal).
    ///
    /// ```no_run
    /// # async fn demo(user_client: &hopper_http::HttpClient) {
    /// use hopper_http::WebSocket;
    /// let ws = WebSocket::connect_from(user_client, "/ws/echo").await;
    /// # }
    /// ```
    pub fn connect_from(client: &HttpClient, path: &str) -> Connect {
        let url = match client.base_url() {
            Some(base) if !url::is_absolute(path) && !is_ws_url(path) => {
                format!("{}{path}", base.trim_end_matches('/'))
            }
            _ => path.to_string(),
        };
        let mut connect = WebSocket::connect(url);
        connect.tls = client.config.tls.clone();
        connect.timeout = client.config.timeout;
        connect.drain = Some(client.drain());
        connect
    }

    /// True until the socket is closed by [`close`](WebSocket::close), by the server or by
    /// an error.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// The path (and query) this socket connected to.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Changes the request type recorded for this socket's later receives and exchanges.
    pub fn set_request_type(&mut self, request_type: &str) -> &mut Self {
        self.request_type = Arc::from(request_type);
        self
    }

    /// Sends a text message. Not recorded; see the module docs.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), WsError> {
        self.send(Message::text(text.into())).await
    }

    /// Sends a binary message. Not recorded; see the module docs.
    pub async fn send_binary(&mut self, data: impl Into<Vec<u8>>) -> Result<(), WsError> {
        self.send(Message::binary(data.into())).await
    }

    /// Sends any message (text, binary, ping). Not recorded; see the module docs.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), WsError> {
        // A killed user sends nothing new (the server would answer a message that is never
        // received); a send under way finishes.
        let drain = self.drain.clone();
        let _in_flight = match &drain {
            Some(d) => Some(d.begin().await),
            None => None,
        };
        let Some(stream) = self.stream.as_mut() else {
            return Err(already_closed());
        };
        match stream.send(message.into()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stream = None;
                Err(WsError(ws_error(e)))
            }
        }
    }

    /// Waits up to `timeout` for the next text or binary message; recorded when awaited.
    pub fn receive(&mut self, timeout: Duration) -> Receive<'_> {
        Receive {
            request_type: self.request_type.clone(),
            socket: self,
            send: None,
            timeout,
            name: None,
        }
    }

    /// Sends `message`, then waits up to `timeout` for the next message, recorded as one
    /// request timed from before the send.
    pub fn exchange(&mut self, message: impl Into<Message>, timeout: Duration) -> Receive<'_> {
        Receive {
            request_type: self.request_type.clone(),
            socket: self,
            send: Some(message.into()),
            timeout,
            name: None,
        }
    }

    /// The closing handshake: sends a close frame and waits briefly for the server's. Not
    /// recorded; does nothing on a socket that is already closed.
    pub async fn close(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        let handshake = async {
            if stream.close(None).await.is_err() {
                return;
            }
            // The server's close frame ends the stream.
            while let Some(Ok(_)) = stream.next().await {}
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, handshake).await;
    }

    async fn next_message(&mut self, send: Option<Message>) -> Result<Message, String> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(already_closed().0);
        };
        if let Some(message) = send {
            if let Err(e) = stream.send(message).await {
                self.stream = None;
                return Err(ws_error(e));
            }
        }
        loop {
            match stream.next().await {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Ok(m),
                // tungstenite answers pings by itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    // Let tungstenite send its reply to the close frame, briefly.
                    let _ = tokio::time::timeout(CLOSE_WAIT, stream.flush()).await;
                    self.stream = None;
                    return Err(closed_by_server(frame.as_ref()));
                }
                Some(Err(e)) => {
                    self.stream = None;
                    return Err(ws_error(e));
                }
                None => {
                    self.stream = None;
                    return Err(connection_lost());
                }
            }
        }
    }
}

/// A connection being set up; await it to connect. Recorded as one request.
#[must_use = "a WebSocket connects when awaited"]
pub struct Connect {
    url: String,
    name: Option<String>,
    request_type: Arc<str>,
    headers: Vec<(String, String)>,
    tls: TlsOptions,
    timeout: Option<Duration>,
    drain: Option<Drain>,
}

impl Connect {
    /// The name in the statistics (default: the URL's path and query).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The request type of the connect and of this socket's later receives and exchanges
    /// (default `WS`).
    pub fn request_type(mut self, request_type: &str) -> Self {
        self.request_type = Arc::from(request_type);
        self
    }

    /// Adds a header to the upgrade request (e.g. a cookie or `Authorization`). A header
    /// that is not valid HTTP makes the connect fail.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// TLS settings for `wss://` (shared with the HTTP client's; HTTP/2 is never offered).
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = options;
        self
    }

    /// Gives up connecting (TCP, TLS and handshake together) after this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    async fn run(self) -> Result<WebSocket, WsError> {
        // A killed user starts no new connection; one under way finishes and is recorded.
        let drain = self.drain.clone();
        let _in_flight = match &drain {
            Some(d) => Some(d.begin().await),
            None => None,
        };
        let started = Instant::now();
        let target = parse_url(&self.url);
        let name = match (&self.name, &target) {
            (Some(name), _) => name.clone(),
            (None, Ok(t)) => t.path_and_query.clone(),
            (None, Err(_)) => self.url.clone(),
        };
        let result = match target {
            Err(e) => Err(e),
            Ok(target) => {
                let open = open(&target, &self.headers, &self.tls);
                let opened = match self.timeout {
                    None => open.await,
                    Some(t) => tokio::time::timeout(t, open)
                        .await
                        .unwrap_or_else(|_| Err(timeout_text())),
                };
                opened.map(|stream| WebSocket {
                    stream: Some(stream),
                    request_type: self.request_type.clone(),
                    path: Arc::from(target.path_and_query.as_str()),
                    drain: self.drain.clone(),
                })
            }
        };
        record(
            &self.request_type,
            &name,
            started.elapsed(),
            0,
            result.as_ref().err().map(String::as_str),
        );
        result.map_err(WsError)
    }
}

impl IntoFuture for Connect {
    type Output = Result<WebSocket, WsError>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A receive (or exchange) being set up; await it to wait for the message. Recorded as
/// one request.
#[must_use = "a receive waits for a message when awaited"]
pub struct Receive<'a> {
    socket: &'a mut WebSocket,
    send: Option<Message>,
    timeout: Duration,
    name: Option<String>,
    request_type: Arc<str>,
}

impl Receive<'_> {
    /// The name in the statistics (default `receive`, or `exchange` for an exchange).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The request type of this one request (default: the socket's).
    pub fn request_type(mut self, request_type: &str) -> Self {
        self.request_type = Arc::from(request_type);
        self
    }
}

impl<'a> IntoFuture for Receive<'a> {
    type Output = Result<Message, WsError>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Receive {
                socket,
                send,
                timeout,
                name,
                request_type,
            } = self;
            let name = name.unwrap_or_else(|| {
                if send.is_some() {
                    "exchange"
                } else {
                    "receive"
                }
                .to_string()
            });
            // A killed user starts no new exchange; a receive still waits for what was sent.
            let drain = socket.drain.clone();
            let _in_flight = match (&drain, send.is_some()) {
                (Some(d), true) => Some(d.begin().await),
                (Some(d), false) => Some(d.track()),
                (None, _) => None,
            };
            let started = Instant::now();
            // A timed-out receive leaves the socket usable: tungstenite keeps a partly read
            // frame in its own buffer.
            let result = tokio::time::timeout(timeout, socket.next_message(send))
                .await
                .unwrap_or_else(|_| Err(timeout_text()));
            let elapsed = started.elapsed();
            let length = result.as_ref().map_or(0, |m| m.len() as u64);
            record(
                &request_type,
                &name,
                elapsed,
                length,
                result.as_ref().err().map(String::as_str),
            );
            result.map_err(WsError)
        })
    }
}

fn record(request_type: &str, name: &str, elapsed: Duration, length: u64, error: Option<&str>) {
    hopper_stats::record(&hopper_stats::RequestRecord {
        request_type,
        name,
        response_time: Some(elapsed),
        response_length: length,
        error,
    });
}

/// The first six characters, lowercased: enough to tell `ws://`, `wss://`, `http:/`, `https:`.
fn scheme_prefix(url: &str) -> String {
    url.chars().take(6).collect::<String>().to_ascii_lowercase()
}

fn is_ws_url(url: &str) -> bool {
    let lower = scheme_prefix(url);
    lower.starts_with("ws://") || lower.starts_with("wss://")
}

/// Parses a ws(s):// (or http(s)://) URL with the HTTP client's parser.
fn parse_url(url: &str) -> Result<Target, String> {
    let lower = scheme_prefix(url);
    let as_http = if lower.starts_with("ws://") {
        format!("http://{}", &url[5..])
    } else if lower.starts_with("wss://") {
        format!("https://{}", &url[6..])
    } else if lower.starts_with("http:/") || lower.starts_with("https:") {
        url.to_string()
    } else if url.contains("://") {
        return Err(errors::exception(
            "WebSocketAddressException",
            &format!("url scheme is not ws or wss: {url}"),
        ));
    } else {
        return Err(errors::exception(
            "WebSocketAddressException",
            &format!("no ws:// or wss:// scheme in the url: {url}"),
        ));
    };
    Target::parse(&as_http)
        .map_err(|e| errors::exception("WebSocketAddressException", &e.to_string()))
}

/// TCP, TLS for `wss://`, then the upgrade handshake.
async fn open(
    target: &Target,
    headers: &[(String, String)],
    tls_options: &TlsOptions,
) -> Result<WebSocketStream<Io>, String> {
    // Unusable TLS options, headers or URLs fail before any network traffic.
    let tls_config = match target.scheme {
        Scheme::Http => None,
        Scheme::Https => {
            let mut options = tls_options.clone();
            // The upgrade is an HTTP/1.1 request: never let ALPN pick h2.
            options.http1_only(true);
            Some(tls::client_config(&options)?)
        }
    };
    let scheme = match target.scheme {
        Scheme::Http => "ws",
        Scheme::Https => "wss",
    };
    let url = format!("{scheme}://{}{}", target.host_header, target.path_and_query);
    let mut request = url.as_str().into_client_request().map_err(ws_error)?;
    if let Some(auth) = &target.basic_auth {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, auth.clone());
    }
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            errors::exception("ValueError", &format!("invalid header name {name:?}"))
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            errors::exception("ValueError", &format!("invalid value for header {name}"))
        })?;
        request.headers_mut().insert(name, value);
    }

    let tcp = match TcpStream::connect((&*target.host, target.port)).await {
        Ok(s) => s,
        Err(e) if e.raw_os_error().is_none() && e.kind() != io::ErrorKind::TimedOut => {
            // tokio reports a failed lookup as a custom error without an errno.
            return Err(errors::resolve_error(&target.host));
        }
        Err(e) => return Err(errors::io_error(&e)),
    };
    let _ = tcp.set_nodelay(true);
    let io = match tls_config {
        None => Io::Tcp(tcp),
        Some(config) => {
            let name = tls::server_name(&target.host)?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| errors::tls_handshake_error(&e))?;
            Io::Wrapped(Box::new(stream))
        }
    };
    let (stream, _response) = tokio_tungstenite::client_async_with_config(request, io, None)
        .await
        .map_err(ws_error)?;
    Ok(stream)
}

fn timeout_text() -> String {
    errors::exception("WebSocketTimeoutException", "timed out")
}

fn connection_lost() -> String {
    errors::exception(
        "WebSocketConnectionClosedException",
        "Connection to remote host was lost.",
    )
}

fn already_closed() -> WsError {
    WsError(errors::exception(
        "WebSocketConnectionClosedException",
        "socket is already closed.",
    ))
}

fn closed_by_server(frame: Option<&CloseFrame>) -> String {
    let msg = match frame {
        None => "the server closed the connection (no status code)".to_string(),
        Some(f) => {
            let code = u16::from(f.code);
            let meaning = match f.code {
                CloseCode::Normal => " normal closure",
                CloseCode::Away => " going away",
                CloseCode::Protocol => " protocol error",
                CloseCode::Unsupported => " unsupported data",
                CloseCode::Invalid => " invalid payload",
                CloseCode::Policy => " policy violation",
                CloseCode::Size => " message too big",
                CloseCode::Error => " internal error",
                CloseCode::Restart => " service restart",
                CloseCode::Again => " try again later",
                _ => "",
            };
            if f.reason.is_empty() {
                format!("the server closed the connection: {code}{meaning}")
            } else {
                format!(
                    "the server closed the connection: {code}{meaning}, reason: {}",
                    f.reason.as_str()
                )
            }
        }
    };
    errors::exception("WebSocketConnectionClosedException", &msg)
}

/// The failure text of a tungstenite error.
fn ws_error(e: TError) -> String {
    use tungstenite::error::ProtocolError as P;
    match e {
        TError::ConnectionClosed | TError::AlreadyClosed => already_closed().0,
        TError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof && e.raw_os_error().is_none() => {
            connection_lost()
        }
        TError::Io(e) => errors::io_error(&e),
        TError::Protocol(P::ResetWithoutClosingHandshake | P::HandshakeIncomplete) => {
            connection_lost()
        }
        TError::Protocol(p) => errors::exception("WebSocketProtocolException", &p.to_string()),
        TError::Http(response) => {
            let status = response.status();
            errors::exception(
                "WebSocketBadStatusException",
                format!(
                    "Handshake status {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end(),
            )
        }
        TError::HttpFormat(e) => errors::exception("WebSocketAddressException", &e.to_string()),
        TError::Url(e) => errors::exception("WebSocketAddressException", &e.to_string()),
        TError::Utf8(_) => errors::exception(
            "WebSocketProtocolException",
            "invalid UTF-8 in a text message",
        ),
        TError::Capacity(e) => errors::exception("WebSocketPayloadException", &e.to_string()),
        other => errors::exception("WebSocketException", &other.to_string()),
    }
}

/// A plain or TLS client connection.
type Io = TcpOr<Box<tokio_rustls::client::TlsStream<TcpStream>>>;

/// The server side, for test targets such as Hopper's demo target: frames an upgraded
/// connection (after the HTTP upgrade handshake the server answered itself).
pub mod server {
    use super::{Message, WsError};
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
    use tokio_tungstenite::WebSocketStream;

    /// The `Sec-WebSocket-Accept` value answering a client's `Sec-WebSocket-Key`.
    pub fn accept_key(key: &[u8]) -> String {
        tokio_tungstenite::tungstenite::handshake::derive_accept_key(key)
    }

    /// A server-side WebSocket over an already upgraded connection. Nothing is recorded.
    pub struct ServerSocket<S> {
        inner: WebSocketStream<S>,
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> ServerSocket<S> {
        /// Wraps a connection whose upgrade handshake is done.
        pub async fn from_upgraded(io: S) -> Self {
            ServerSocket {
                inner: WebSocketStream::from_raw_socket(io, Role::Server, None).await,
            }
        }

        /// The next text or binary message; `None` once the client has closed or the
        /// connection failed. Pings are answered by themselves.
        pub async fn recv(&mut self) -> Option<Message> {
            loop {
                match self.inner.next().await? {
                    Ok(m @ (Message::Text(_) | Message::Binary(_))) => return Some(m),
                    Ok(Message::Close(_)) => {
                        // Flushes the reply to the client's close frame.
                        let _ = self.inner.flush().await;
                        return None;
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        }

        /// Sends a message.
        pub async fn send(&mut self, message: Message) -> Result<(), WsError> {
            self.inner
                .send(message)
                .await
                .map_err(|e| WsError(super::ws_error(e)))
        }

        /// Starts the closing handshake with `code` (e.g. 1011) and `reason`, and waits for
        /// the client's answer until it comes or the connection ends.
        pub async fn close(mut self, code: u16, reason: &str) {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            if self.inner.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = self.inner.next().await {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_the_http_parser() {
        let t = parse_url("ws://127.0.0.1:9000/echo?x=1").unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Http, 9000));
        assert_eq!(t.path_and_query, "/echo?x=1");
        let t = parse_url("WSS://example.com").unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Https, 443));
        assert_eq!(t.path_and_query, "/");
        assert_eq!(
            parse_url("http://h:1/a").unwrap().path_and_query,
            "/a".to_string()
        );
        assert!(parse_url("ftp://h/")
            .unwrap_err()
            .starts_with("WebSocketAddressException("));
        assert!(parse_url("h/echo")
            .unwrap_err()
            .starts_with("WebSocketAddressException("));
    }

    #[test]
    fn close_texts_name_code_and_reason() {
        let frame = CloseFrame {
            code: CloseCode::Error,
            reason: "bye".into(),
        };
        assert_eq!(
            closed_by_server(Some(&frame)),
            "WebSocketConnectionClosedException('the server closed the connection: 1011 \
             internal error, reason: bye')"
        );
        assert_eq!(
            closed_by_server(None),
            "WebSocketConnectionClosedException('the server closed the connection (no status \
             code)')"
        );
    }

    #[test]
    fn rejected_handshakes_show_the_status() {
        let response = http::Response::builder().status(404).body(None).unwrap();
        assert_eq!(
            ws_error(TError::Http(Box::new(response))),
            "WebSocketBadStatusException('Handshake status 404 Not Found')"
        );
    }
}
