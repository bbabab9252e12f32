//! The ZeroMQ sockets of master/worker mode: bytes in, bytes out.
//!
//! Locust's master binds a ROUTER socket and its workers connect DEALER sockets whose routing
//! identity is their client id (reference §6.1). A worker sends one frame (the payload); the
//! master sees `[identity, payload]` and answers `[identity, payload]`. This module moves those
//! payloads; encoding them is [`crate::wire`]'s job.
//!
//! * [`MasterSocket`] binds the ROUTER and hands out an [`Incoming`] stream plus a cloneable
//!   [`MasterSender`]. One background task owns the socket.
//! * [`WorkerSocket`] connects a DEALER with a given identity and splits into a cloneable
//!   [`WorkerSender`] and a [`WorkerReceiver`]. When the master goes away the receiver reports
//!   [`TransportError::ConnectionLost`]; the caller then builds a new `WorkerSocket` with the same
//!   identity (the `zeromq` crate's DEALER never reconnects by itself).
//!
//! # Why the master port is guarded
//!
//! The `zeromq` 0.7 crate trusts the length a peer announces in a frame header and reserves that
//! much memory before reading: 73 bytes from any TCP client (a greeting plus a frame header
//! announcing 4 TiB) abort the whole process with a failed allocation, and it has no option to
//! cap message size. So the master does not expose the crate's ROUTER directly. The public port
//! is a plain TCP listener; each accepted connection is checked frame header by frame header
//! (ZMTP 3 greeting, command and message sizes, a deadline for the handshake) and forwarded byte
//! for byte to the crate's ROUTER on an internal `127.0.0.1` port. A connection that breaks the
//! rules is closed before the ROUTER sees the offending bytes; the ROUTER and every other peer
//! carry on. ZeroMQ peers (pyzmq, libzmq, this crate) see an ordinary ROUTER.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use zeromq::util::PeerIdentity;
use zeromq::{
    DealerSocket, RouterRecvHalf, RouterSendHalf, RouterSocket, Socket, SocketEvent, SocketOptions,
    SocketRecv, SocketSend, ZmqError, ZmqMessage,
};

const LOG_TARGET: &str = "hopper.transport";

/// Largest message (sum of its frames) the master accepts from one peer. A peer that announces
/// more is disconnected. Locust's biggest messages (stats reports) are far below this.
pub const MAX_MESSAGE_SIZE: u64 = 32 * 1024 * 1024;

/// Most frames one incoming message may have (Locust peers always send one).
const MAX_FRAMES_PER_MESSAGE: usize = 64;

/// Largest ZMTP command frame (READY carries the socket type and a ≤255-byte identity).
const MAX_COMMAND_SIZE: u64 = 64 * 1024;

/// Time a new connection has to finish the ZMTP handshake (greeting and READY).
#[cfg(not(test))]
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
#[cfg(test)]
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Locust waits this long before re-binding a ROUTER that failed.
const REBIND_DELAY: Duration = Duration::from_secs(5);

/// How long one outgoing master message may wait for room in a worker's queue (100,000
/// messages in the crate) before it is dropped. Short, because it holds up sends to everyone.
const MASTER_SEND_TIMEOUT: Duration = Duration::from_millis(250);

/// How long one outgoing worker message may wait for room before the connection counts as lost.
const WORKER_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Most peer connections the master serves at once (each costs three file descriptors).
const MAX_CONNECTIONS: usize = 8192;

/// Messages buffered between the master's socket task and its reader.
const INCOMING_CAPACITY: usize = 4096;

/// Read buffer of each guarded connection.
const GUARD_BUFFER: usize = 8 * 1024;

/// What went wrong in the transport, naming the address involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The master could not bind its port.
    Bind {
        /// `tcp://host:port` as asked for.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The master's internal ZeroMQ socket could not be set up.
    Socket {
        /// What was being done.
        what: &'static str,
        /// The `zeromq` crate's reason.
        detail: String,
    },
    /// A worker identity ZeroMQ cannot carry (empty, or longer than 255 bytes).
    InvalidIdentity {
        /// The identity as given.
        identity: String,
    },
    /// Nothing completed a ZeroMQ handshake at the address within the timeout.
    ConnectTimeout {
        /// `tcp://host:port` of the master.
        endpoint: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// Connecting failed outright (bad address, incompatible peer, ...).
    Connect {
        /// `tcp://host:port` of the master.
        endpoint: String,
        /// The reason.
        detail: String,
    },
    /// The connection to the master broke; build a new socket with the same identity.
    ConnectionLost {
        /// `tcp://host:port` of the master.
        endpoint: String,
        /// What was noticed.
        reason: String,
    },
    /// The socket was closed (by [`WorkerSender::close`] or after an earlier error).
    Closed {
        /// `tcp://host:port` of the master.
        endpoint: String,
    },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Bind { addr, source } => {
                write!(f, "could not bind the master socket to {addr}: {source}")
            }
            TransportError::Socket { what, detail } => {
                write!(f, "ZeroMQ socket error while {what}: {detail}")
            }
            TransportError::InvalidIdentity { identity } => write!(
                f,
                "invalid worker identity {identity:?}: it must be 1 to 255 bytes long"
            ),
            TransportError::ConnectTimeout { endpoint, timeout } => write!(
                f,
                "could not connect to the master at {endpoint} within {:.1} s: nothing completed \
                 a ZeroMQ handshake there (is the master running, and are the host and port right?)",
                timeout.as_secs_f64()
            ),
            TransportError::Connect { endpoint, detail } => {
                write!(f, "could not connect to the master at {endpoint}: {detail}")
            }
            TransportError::ConnectionLost { endpoint, reason } => {
                write!(f, "lost the connection to the master at {endpoint}: {reason}")
            }
            TransportError::Closed { endpoint } => {
                write!(f, "the socket to the master at {endpoint} is closed")
            }
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Master
// ---------------------------------------------------------------------------------------------

/// One message a worker sent to the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender's routing identity (its client id), as lossy UTF-8.
    pub identity: String,
    /// The single payload frame.
    pub payload: Bytes,
}

enum MasterCommand {
    Send(String, Vec<u8>),
    Close,
}

/// Sends to workers by identity. Cheap to clone; every method returns at once.
#[derive(Clone, Debug)]
pub struct MasterSender {
    commands: mpsc::UnboundedSender<MasterCommand>,
}

impl fmt::Debug for MasterCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterCommand::Send(id, p) => write!(f, "Send({id:?}, {} bytes)", p.len()),
            MasterCommand::Close => f.write_str("Close"),
        }
    }
}

impl MasterSender {
    /// Queues `payload` for the worker whose routing identity is `identity`. Like Locust's
    /// ROUTER, a message for an identity that is not (or no longer) connected is dropped
    /// silently, and so is everything sent after [`close`](Self::close).
    pub fn send(&self, identity: &str, payload: Vec<u8>) {
        if self
            .commands
            .send(MasterCommand::Send(identity.to_string(), payload))
            .is_err()
        {
            tracing::debug!(target: LOG_TARGET, "master socket closed; dropped a message for {identity}");
        }
    }

    /// Closes the socket: messages queued before this call are still handed to the ROUTER, then
    /// the port is released and the [`Incoming`] stream ends.
    pub fn close(&self) {
        let _ = self.commands.send(MasterCommand::Close);
    }

    /// Whether the socket task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// The master's ROUTER socket, bound and served by a background task.
///
/// The task lives until [`MasterSender::close`] is called or every [`MasterSender`] (including
/// the one inside this value) is dropped.
#[derive(Debug)]
pub struct MasterSocket {
    sender: MasterSender,
    incoming: mpsc::Receiver<Incoming>,
    local_addr: SocketAddr,
}

impl MasterSocket {
    /// Binds a ROUTER at `tcp://host:port`. `host` `*` or empty means every interface (IPv6
    /// dual-stack when available, else IPv4); port 0 picks a free port (see [`port`](Self::port)).
    pub async fn bind(host: &str, port: u16) -> Result<MasterSocket, TransportError> {
        let listener = bind_public(host, port).await?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: display_addr(host, port),
                source,
            })?;
        let (router, internal_port) = bind_internal_router().await?;
        let internal_port = Arc::new(AtomicU16::new(internal_port));

        let accept = tokio::spawn(accept_loop(listener, internal_port.clone()));
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_CAPACITY);
        tokio::spawn(async move {
            master_task(router, internal_port, commands_rx, incoming_tx).await;
            accept.abort();
            tracing::debug!(target: LOG_TARGET, "master socket on {local_addr} closed");
        });
        tracing::debug!(target: LOG_TARGET, "master socket bound on {local_addr}");
        Ok(MasterSocket {
            sender: MasterSender {
                commands: commands_tx,
            },
            incoming: incoming_rx,
            local_addr,
        })
    }

    /// The address the port is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound port (useful after binding port 0).
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// A sender for this socket.
    pub fn sender(&self) -> MasterSender {
        self.sender.clone()
    }

    /// The next message from a worker; `None` once the socket is closed.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// Splits into the sender and the stream of incoming messages.
    pub fn split(self) -> (MasterSender, mpsc::Receiver<Incoming>) {
        (self.sender, self.incoming)
    }
}

fn display_addr(host: &str, port: u16) -> String {
    let host = if host.is_empty() { "*" } else { host };
    if host.contains(':') && !host.starts_with('[') {
        format!("tcp://[{host}]:{port}")
    } else {
        format!("tcp://{host}:{port}")
    }
}

async fn bind_public(host: &str, port: u16) -> Result<TcpListener, TransportError> {
    let addr = display_addr(host, port);
    let result = if host.is_empty() || host == "*" {
        match TcpListener::bind(("::", port)).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
        }
    } else {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        TcpListener::bind((host, port)).await
    };
    result.map_err(|source| TransportError::Bind { addr, source })
}

async fn bind_internal_router() -> Result<(RouterSocket, u16), TransportError> {
    let mut router = RouterSocket::new();
    let endpoint = router
        .bind("tcp://127.0.0.1:0")
        .await
        .map_err(|e| TransportError::Socket {
            what: "binding the internal ROUTER on 127.0.0.1",
            detail: e.to_string(),
        })?;
    match endpoint {
        zeromq::Endpoint::Tcp(_, port) => Ok((router, port)),
        other => Err(TransportError::Socket {
            what: "binding the internal ROUTER on 127.0.0.1",
            detail: format!("unexpected endpoint {other}"),
        }),
    }
}

enum LoopEnd {
    Closed,
    Failed(String),
}

/// Owns the ROUTER; re-binds it (after [`REBIND_DELAY`], as Locust does) if it ever fails.
async fn master_task(
    router: RouterSocket,
    internal_port: Arc<AtomicU16>,
    mut commands: mpsc::UnboundedReceiver<MasterCommand>,
    incoming: mpsc::Sender<Incoming>,
) {
    let mut router = Some(router);
    loop {
        let socket = match router.take() {
            Some(socket) => socket,
            None => match bind_internal_router().await {
                Ok((socket, port)) => {
                    internal_port.store(port, Ordering::Release);
                    tracing::info!(target: LOG_TARGET, "master socket re-bound");
                    socket
                }
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, "{e}; retrying in {} s", REBIND_DELAY.as_secs());
                    if wait_or_close(&mut commands, REBIND_DELAY).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let (mut send_half, mut recv_half) = socket.split();
        let end = tokio::select! {
            end = router_recv_loop(&mut recv_half, &incoming) => end,
            end = router_send_loop(&mut send_half, &mut commands) => end,
        };
        match end {
            LoopEnd::Closed => return,
            LoopEnd::Failed(reason) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    "master socket failed ({reason}); re-binding in {} s",
                    REBIND_DELAY.as_secs()
                );
                drop((send_half, recv_half));
                if wait_or_close(&mut commands, REBIND_DELAY).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps for `delay`, discarding sends; true if the socket was closed meanwhile.
async fn wait_or_close(
    commands: &mut mpsc::UnboundedReceiver<MasterCommand>,
    delay: Duration,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return false,
            command = commands.recv() => match command {
                Some(MasterCommand::Send(identity, _)) => {
                    tracing::debug!(target: LOG_TARGET, "master socket re-binding; dropped a message for {identity}");
                }
                Some(MasterCommand::Close) | None => return true,
            },
        }
    }
}

async fn router_recv_loop(
    recv_half: &mut RouterRecvHalf,
    incoming: &mpsc::Sender<Incoming>,
) -> LoopEnd {
    loop {
        let message = match recv_half.recv().await {
            Ok(message) => message,
            Err(e) => return LoopEnd::Failed(e.to_string()),
        };
        let mut frames = message.into_vec();
        if frames.len() != 2 {
            tracing::debug!(
                target: LOG_TARGET,
                "dropped a message of {} frames from {} (expected [identity, payload])",
                frames.len(),
                frames.first().map(|f| String::from_utf8_lossy(f).into_owned()).unwrap_or_default()
            );
            continue;
        }
        let payload = frames.pop().unwrap_or_default();
        let identity = String::from_utf8_lossy(&frames[0]).into_owned();
        // A reader that went away only means nobody listens; keep draining the peers.
        let _ = incoming.send(Incoming { identity, payload }).await;
    }
}

async fn router_send_loop(
    send_half: &mut RouterSendHalf,
    commands: &mut mpsc::UnboundedReceiver<MasterCommand>,
) -> LoopEnd {
    loop {
        let (identity, payload) = match commands.recv().await {
            Some(MasterCommand::Send(identity, payload)) => (identity, payload),
            Some(MasterCommand::Close) | None => return LoopEnd::Closed,
        };
        let mut message = ZmqMessage::from(payload);
        message.push_front(Bytes::from(identity.clone().into_bytes()));
        match tokio::time::timeout(MASTER_SEND_TIMEOUT, send_half.send(message)).await {
            Ok(Ok(())) => {}
            // Unknown or vanished identity, or an identity ZeroMQ cannot carry: dropped, as
            // Locust's ROUTER drops them.
            Ok(Err(e)) => {
                tracing::debug!(target: LOG_TARGET, "dropped a message for {identity:?}: {e}");
            }
            Err(_) => tracing::warn!(
                target: LOG_TARGET,
                "dropped a message for {identity}: the worker has not read its messages for a while"
            ),
        }
    }
}

/// Accepts peers on the public port and guards each connection.
async fn accept_loop(listener: TcpListener, internal_port: Arc<AtomicU16>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(
                        target: LOG_TARGET,
                        "refused a connection from {peer}: already serving {MAX_CONNECTIONS}"
                    );
                    continue;
                };
                let port = internal_port.load(Ordering::Acquire);
                tokio::spawn(async move {
                    guard_connection(stream, peer, port).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Typically out of file descriptors; don't spin.
                tracing::warn!(target: LOG_TARGET, "accepting a worker connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn guard_connection(external: TcpStream, peer: SocketAddr, internal_port: u16) {
    let _ = external.set_nodelay(true);
    let internal = match tokio::time::timeout(
        Duration::from_secs(2),
        TcpStream::connect(("127.0.0.1", internal_port)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::warn!(target: LOG_TARGET, "could not hand the connection from {peer} to the ROUTER: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(target: LOG_TARGET, "could not hand the connection from {peer} to the ROUTER: timed out");
            return;
        }
    };
    let _ = internal.set_nodelay(true);
    let (mut ext_read, mut ext_write) = external.into_split();
    let (mut int_read, mut int_write) = internal.into_split();
    let inbound = forward_checked(&mut ext_read, &mut int_write);
    let outbound = tokio::io::copy(&mut int_read, &mut ext_write);
    tokio::select! {
        result = inbound => match result {
            Ok(()) => tracing::debug!(target: LOG_TARGET, "{peer} disconnected"),
            Err(GuardError::Handshake(reason)) => {
                tracing::debug!(target: LOG_TARGET, "closed the connection from {peer}: {reason}");
            }
            Err(GuardError::Violation(reason)) => {
                tracing::warn!(target: LOG_TARGET, "closed the connection from {peer}: {reason}");
            }
            Err(GuardError::Io(e)) => tracing::debug!(target: LOG_TARGET, "connection from {peer} failed: {e}"),
        },
        _ = outbound => tracing::debug!(target: LOG_TARGET, "the ROUTER closed the connection from {peer}"),
    }
}

#[derive(Debug)]
enum GuardError {
    /// Before the handshake completed: scanners, HTTP clients, wrong protocol.
    Handshake(String),
    /// After the handshake: a ZeroMQ peer broke the limits.
    Violation(String),
    Io(std::io::Error),
}

/// Copies peer bytes to the ROUTER, checking every ZMTP frame header before the ROUTER sees it.
async fn forward_checked(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Result<(), GuardError> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut checker = ZmtpChecker::default();
    let mut buf = vec![0u8; GUARD_BUFFER];
    loop {
        let n = if checker.handshake_done {
            from.read(&mut buf).await
        } else {
            match tokio::time::timeout_at(deadline, from.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    return Err(GuardError::Handshake(format!(
                        "no ZeroMQ handshake within {} s",
                        HANDSHAKE_TIMEOUT.as_secs()
                    )))
                }
            }
        }
        .map_err(GuardError::Io)?;
        if n == 0 {
            return Ok(());
        }
        checker.feed(&buf[..n])?;
        to.write_all(&buf[..n]).await.map_err(GuardError::Io)?;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckState {
    Greeting {
        seen: usize,
    },
    Flags,
    Length {
        flags: u8,
        missing: usize,
        value: u64,
    },
    Body {
        flags: u8,
        remaining: u64,
    },
}

/// Incremental ZMTP 3.x parser for the peer → ROUTER direction.
#[derive(Debug)]
struct ZmtpChecker {
    state: CheckState,
    handshake_done: bool,
    message_frames: usize,
    message_bytes: u64,
}

impl Default for ZmtpChecker {
    fn default() -> Self {
        ZmtpChecker {
            state: CheckState::Greeting { seen: 0 },
            handshake_done: false,
            message_frames: 0,
            message_bytes: 0,
        }
    }
}

const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;

impl ZmtpChecker {
    fn reject(&self, reason: String) -> GuardError {
        if self.handshake_done {
            GuardError::Violation(reason)
        } else {
            GuardError::Handshake(reason)
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), GuardError> {
        while !data.is_empty() {
            match self.state {
                CheckState::Greeting { seen } => {
                    let byte = data[0];
                    data = &data[1..];
                    let ok = match seen {
                        0 => byte == 0xff,
                        9 => byte & 0x01 == 0x01,
                        10 => byte >= 3,
                        _ => true,
                    };
                    if !ok {
                        return Err(self.reject(if seen == 10 {
                            format!("ZMTP version {byte} is too old (3.0 or newer needed)")
                        } else {
                            "not a ZeroMQ peer (bad greeting)".to_string()
                        }));
                    }
                    self.state = if seen + 1 == 64 {
                        CheckState::Flags
                    } else {
                        CheckState::Greeting { seen: seen + 1 }
                    };
                }
                CheckState::Flags => {
                    let flags = data[0];
                    data = &data[1..];
                    if flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0 {
                        return Err(self.reject("a command frame with the MORE flag".into()));
                    }
                    if flags & FLAG_COMMAND == 0 && !self.handshake_done {
                        return Err(self.reject("a message frame before the READY command".into()));
                    }
                    let missing = if flags & FLAG_LONG != 0 { 8 } else { 1 };
                    self.state = CheckState::Length {
                        flags,
                        missing,
                        value: 0,
                    };
                }
                CheckState::Length {
                    flags,
                    missing,
                    value,
                } => {
                    let value = (value << 8) | u64::from(data[0]);
                    data = &data[1..];
                    if missing > 1 {
                        self.state = CheckState::Length {
                            flags,
                            missing: missing - 1,
                            value,
                        };
                        continue;
                    }
                    self.check_frame(flags, value)?;
                    self.state = CheckState::Body {
                        flags,
                        remaining: value,
                    };
                    if value == 0 {
                        self.end_frame(flags);
                    }
                }
                CheckState::Body { flags, remaining } => {
                    let take = remaining.min(data.len() as u64);
                    data = &data[take as usize..];
                    let remaining = remaining - take;
                    self.state = CheckState::Body { flags, remaining };
                    if remaining == 0 {
                        self.end_frame(flags);
                    }
                }
            }
        }
        Ok(())
    }

    fn check_frame(&mut self, flags: u8, len: u64) -> Result<(), GuardError> {
        if flags & FLAG_COMMAND != 0 {
            if len > MAX_COMMAND_SIZE {
                return Err(self.reject(format!("a {len}-byte command frame")));
            }
            return Ok(());
        }
        self.message_frames += 1;
        self.message_bytes = self.message_bytes.saturating_add(len);
        if self.message_bytes > MAX_MESSAGE_SIZE {
            return Err(self.reject(format!(
                "a message larger than {} MiB (a frame of {len} bytes)",
                MAX_MESSAGE_SIZE / (1024 * 1024)
            )));
        }
        if self.message_frames > MAX_FRAMES_PER_MESSAGE {
            return Err(self.reject(format!(
                "a message of more than {MAX_FRAMES_PER_MESSAGE} frames"
            )));
        }
        Ok(())
    }

    fn end_frame(&mut self, flags: u8) {
        if flags & FLAG_COMMAND != 0 {
            self.handshake_done = true;
        } else if flags & FLAG_MORE == 0 {
            self.message_frames = 0;
            self.message_bytes = 0;
        }
        self.state = CheckState::Flags;
    }
}

// ---------------------------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------------------------

enum WorkerCommand {
    Send(Vec<u8>),
    Close,
}

/// Sends to the master. Cheap to clone; [`send`](Self::send) returns at once.
#[derive(Clone)]
pub struct WorkerSender {
    commands: mpsc::UnboundedSender<WorkerCommand>,
    endpoint: Arc<str>,
}

impl fmt::Debug for WorkerSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerSender")
            .field("endpoint", &self.endpoint)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl WorkerSender {
    /// Queues one single-frame message for the master. After the connection is lost or closed
    /// the message is dropped (the receiver reports why).
    pub fn send(&self, payload: Vec<u8>) {
        if self.commands.send(WorkerCommand::Send(payload)).is_err() {
            tracing::debug!(target: LOG_TARGET, "socket to {} closed; dropped a message", self.endpoint);
        }
    }

    /// Closes the socket once the messages queued before this call are handed over.
    pub fn close(&self) {
        let _ = self.commands.send(WorkerCommand::Close);
    }

    /// Whether the socket task has ended (connection lost or closed).
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// `tcp://host:port` of the master.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Receives from the master.
pub struct WorkerReceiver {
    incoming: mpsc::UnboundedReceiver<Result<Bytes, TransportError>>,
    endpoint: Arc<str>,
}

impl fmt::Debug for WorkerReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerReceiver")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl WorkerReceiver {
    /// The next message's payload. [`TransportError::ConnectionLost`] once the master went away
    /// (then [`TransportError::Closed`] on later calls). Cancel-safe: usable in `select!`.
    pub async fn recv(&mut self) -> Result<Bytes, TransportError> {
        match self.incoming.recv().await {
            Some(result) => result,
            None => Err(TransportError::Closed {
                endpoint: self.endpoint.to_string(),
            }),
        }
    }
}

/// A worker's DEALER connected to a master. Lives while any of its halves lives.
#[derive(Debug)]
pub struct WorkerSocket {
    sender: WorkerSender,
    receiver: WorkerReceiver,
}

impl WorkerSocket {
    /// Connects a DEALER with routing identity `identity` (Locust: `<hostname>_<32 hex>`) to
    /// `tcp://host:port`, giving up after `timeout` (the `zeromq` crate would otherwise retry a
    /// refused connection forever).
    pub async fn connect(
        host: &str,
        port: u16,
        identity: &str,
        timeout: Duration,
    ) -> Result<WorkerSocket, TransportError> {
        let endpoint = display_addr(host, port);
        if identity.is_empty() || identity.len() > PeerIdentity::MAX_LENGTH {
            return Err(TransportError::InvalidIdentity {
                identity: identity.to_string(),
            });
        }
        let peer_id: PeerIdentity =
            identity
                .parse()
                .map_err(|_: ZmqError| TransportError::InvalidIdentity {
                    identity: identity.to_string(),
                })?;
        let mut options = SocketOptions::default();
        options.peer_identity(peer_id).connect_timeout(timeout);
        let mut socket = DealerSocket::with_options(options);
        let mut monitor = socket.monitor();
        let timed_out = || TransportError::ConnectTimeout {
            endpoint: endpoint.clone(),
            timeout,
        };
        match tokio::time::timeout(timeout, socket.connect(&endpoint)).await {
            Err(_) | Ok(Err(ZmqError::ConnectTimeout(_))) => return Err(timed_out()),
            Ok(Err(e)) => {
                return Err(TransportError::Connect {
                    endpoint: endpoint.clone(),
                    detail: e.to_string(),
                })
            }
            Ok(Ok(())) => {}
        }
        tracing::debug!(target: LOG_TARGET, "connected to the master at {endpoint} as {identity}");

        let endpoint: Arc<str> = endpoint.into();
        let (commands_tx, mut commands) = mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let task_endpoint = endpoint.clone();
        tokio::spawn(async move {
            let mut senders_alive = true;
            let mut receiver_alive = true;
            let mut monitor_alive = true;
            let lost: Option<String> = loop {
                if !senders_alive && !receiver_alive {
                    break None;
                }
                tokio::select! {
                    command = commands.recv(), if senders_alive => match command {
                        Some(WorkerCommand::Send(payload)) => {
                            match tokio::time::timeout(WORKER_SEND_TIMEOUT, socket.send(ZmqMessage::from(payload))).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => break Some(format!("sending failed: {}", describe(&e))),
                                Err(_) => break Some("the master has not read its messages for a while".into()),
                            }
                        }
                        Some(WorkerCommand::Close) => break None,
                        None => senders_alive = false,
                    },
                    message = socket.recv() => match message {
                        Ok(message) => match single_payload(message) {
                            Some(payload) => {
                                if incoming_tx.send(Ok(payload)).is_err() {
                                    receiver_alive = false;
                                }
                            }
                            None => tracing::debug!(target: LOG_TARGET, "dropped a multi-frame message from {task_endpoint}"),
                        },
                        Err(e) => break Some(format!("receiving failed: {}", describe(&e))),
                    },
                    event = monitor.recv(), if monitor_alive => match event {
                        Ok(SocketEvent::Disconnected(_)) => break Some("the master closed the connection".into()),
                        Ok(_) => {}
                        Err(_) => monitor_alive = false,
                    },
                    _ = incoming_tx.closed(), if receiver_alive => receiver_alive = false,
                }
            };
            if let Some(reason) = lost {
                tracing::debug!(target: LOG_TARGET, "lost the connection to {task_endpoint}: {reason}");
                let _ = incoming_tx.send(Err(TransportError::ConnectionLost {
                    endpoint: task_endpoint.to_string(),
                    reason,
                }));
            }
            // Dropping the socket lets the crate's writer flush what was already queued.
            drop(socket);
        });

        Ok(WorkerSocket {
            sender: WorkerSender {
                commands: commands_tx,
                endpoint: endpoint.clone(),
            },
            receiver: WorkerReceiver {
                incoming: incoming_rx,
                endpoint,
            },
        })
    }

    /// Queues one message for the master (see [`WorkerSender::send`]).
    pub fn send(&self, payload: Vec<u8>) {
        self.sender.send(payload);
    }

    /// The next message from the master (see [`WorkerReceiver::recv`]).
    pub async fn recv(&mut self) -> Result<Bytes, TransportError> {
        self.receiver.recv().await
    }

    /// A sender for this socket.
    pub fn sender(&self) -> WorkerSender {
        self.sender.clone()
    }

    /// Splits into a cloneable sender and the receiver, for a send loop and a receive loop.
    pub fn split(self) -> (WorkerSender, WorkerReceiver) {
        (self.sender, self.receiver)
    }
}

/// The payload of a one-frame message, or of `[empty delimiter, payload]`.
fn single_payload(message: ZmqMessage) -> Option<Bytes> {
    let mut frames = message.into_vec();
    match frames.len() {
        1 => frames.pop(),
        2 if frames[0].is_empty() => frames.pop(),
        _ => None,
    }
}

fn describe(error: &ZmqError) -> String {
    match error {
        ZmqError::ReturnToSender { .. } | ZmqError::BufferFull(_) => {
            "the connection is gone".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::timeout;

    const T: Duration = Duration::from_secs(5);

    async fn master() -> MasterSocket {
        MasterSocket::bind("127.0.0.1", 0).await.expect("bind")
    }

    async fn worker(port: u16, identity: &str) -> WorkerSocket {
        WorkerSocket::connect("127.0.0.1", port, identity, T)
            .await
            .expect("connect")
    }

    async fn next(master: &mut MasterSocket) -> Incoming {
        timeout(T, master.recv())
            .await
            .expect("master received nothing in time")
            .expect("master socket closed")
    }

    async fn next_w(worker: &mut WorkerSocket) -> Bytes {
        timeout(T, worker.recv())
            .await
            .expect("worker received nothing in time")
            .expect("worker socket failed")
    }

    /// One worker says hello and gets an answer routed back to it.
    async fn round_trip(master: &mut MasterSocket, identity: &str) {
        let mut w = worker(master.port(), identity).await;
        w.send(format!("hello from {identity}").into_bytes());
        let got = next(master).await;
        assert_eq!(got.identity, identity);
        assert_eq!(
            &got.payload[..],
            format!("hello from {identity}").as_bytes()
        );
        master
            .sender()
            .send(identity, format!("hi {identity}").into_bytes());
        assert_eq!(
            &next_w(&mut w).await[..],
            format!("hi {identity}").as_bytes()
        );
    }

    fn greeting() -> Vec<u8> {
        let mut g = vec![0u8; 64];
        g[0] = 0xff;
        g[9] = 0x7f;
        g[10] = 3;
        g[12..16].copy_from_slice(b"NULL");
        g
    }

    fn ready_command(identity: &[u8]) -> Vec<u8> {
        let mut body = vec![5u8];
        body.extend_from_slice(b"READY");
        for (name, value) in [
            (&b"Socket-Type"[..], &b"DEALER"[..]),
            (b"Identity", identity),
        ] {
            body.push(name.len() as u8);
            body.extend_from_slice(name);
            body.extend_from_slice(&(value.len() as u32).to_be_bytes());
            body.extend_from_slice(value);
        }
        let mut frame = vec![FLAG_COMMAND, body.len() as u8];
        frame.extend_from_slice(&body);
        frame
    }

    /// Reads until the peer closes; true if it did within `within`.
    async fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let end = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn several_workers_are_routed_by_identity() {
        let mut m = master().await;
        let ids = [
            "hostA_0123456789abcdef0123456789abcdef",
            "hostB_fedcba9876543210fedcba9876543210",
            "hostA_00000000000000000000000000000000",
        ];
        let mut workers = Vec::new();
        for id in ids {
            workers.push(worker(m.port(), id).await);
        }
        for round in 0..3 {
            for (w, id) in workers.iter().zip(ids) {
                w.send(format!("{round} from {id}").into_bytes());
            }
            let mut seen = Vec::new();
            for _ in ids {
                let got = next(&mut m).await;
                assert_eq!(
                    &got.payload[..],
                    format!("{round} from {}", got.identity).as_bytes()
                );
                seen.push(got.identity);
            }
            seen.sort();
            let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            expected.sort();
            assert_eq!(seen, expected);
            for id in ids {
                m.sender().send(id, format!("{round} to {id}").into_bytes());
            }
            for (w, id) in workers.iter_mut().zip(ids) {
                assert_eq!(&next_w(w).await[..], format!("{round} to {id}").as_bytes());
            }
        }
        // Split halves work from separate tasks, and large payloads pass the guard both ways.
        let (tx, mut rx) = workers.pop().unwrap().split();
        let big = vec![7u8; 3 * 1024 * 1024 + 17];
        let sender = tokio::spawn({
            let big = big.clone();
            async move { tx.send(big) }
        });
        sender.await.unwrap();
        let got = next(&mut m).await;
        assert_eq!(got.identity, ids[2]);
        assert_eq!(got.payload.len(), big.len());
        m.sender().send(ids[2], big.clone());
        let back = timeout(T, rx.recv()).await.unwrap().unwrap();
        assert_eq!(back.len(), big.len());
    }

    #[tokio::test]
    async fn sending_to_an_unknown_identity_is_dropped_quietly() {
        let mut m = master().await;
        let sender = m.sender();
        sender.send("nobody_00000000000000000000000000000000", b"lost".to_vec());
        sender.send("", b"lost".to_vec());
        sender.send(&"x".repeat(300), b"lost".to_vec());
        round_trip(&mut m, "somebody_1").await;
        assert!(!sender.is_closed());
    }

    #[tokio::test]
    async fn messages_that_are_not_one_frame_are_dropped() {
        let mut m = master().await;
        let mut options = SocketOptions::default();
        options.peer_identity("multi".parse().unwrap());
        let mut dealer = DealerSocket::with_options(options);
        dealer
            .connect(&format!("tcp://127.0.0.1:{}", m.port()))
            .await
            .unwrap();
        let mut two = ZmqMessage::from(b"a".to_vec());
        two.push_back(Bytes::from_static(b"b"));
        dealer.send(two).await.unwrap();
        dealer
            .send(ZmqMessage::from(b"one".to_vec()))
            .await
            .unwrap();
        let got = next(&mut m).await;
        assert_eq!(got.identity, "multi");
        assert_eq!(&got.payload[..], b"one");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_peers_do_not_stop_the_master() {
        let mut m = master().await;
        let port = m.port();
        let connect = || TcpStream::connect(("127.0.0.1", port));

        let mut garbage = connect().await.unwrap();
        garbage
            .write_all(&[0x13, 0x37, 0, 1, 2, 3, 0xff, 0xfe])
            .await
            .unwrap();
        let mut http = connect().await.unwrap();
        http.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        // A truncated greeting, left open.
        let mut truncated = connect().await.unwrap();
        truncated.write_all(&greeting()[..10]).await.unwrap();
        // A frame header announcing 4 TiB: aborts a process serving the crate's ROUTER directly.
        let mut huge = connect().await.unwrap();
        huge.write_all(&greeting()).await.unwrap();
        let mut header = vec![FLAG_COMMAND | FLAG_LONG];
        header.extend_from_slice(&(1u64 << 42).to_be_bytes());
        huge.write_all(&header).await.unwrap();
        // A complete handshake, then a 64 MiB message frame.
        let mut oversized = connect().await.unwrap();
        oversized.write_all(&greeting()).await.unwrap();
        oversized.write_all(&ready_command(b"fat")).await.unwrap();
        let mut header = vec![FLAG_LONG];
        header.extend_from_slice(&(64u64 << 20).to_be_bytes());
        oversized.write_all(&header).await.unwrap();
        let _ = oversized.write_all(&vec![0u8; 100_000]).await;
        // Peers that connect and vanish.
        for _ in 0..20 {
            drop(connect().await.unwrap());
        }

        round_trip(&mut m, "after_hostiles").await;

        assert!(
            closed_by_peer(&mut garbage, T).await,
            "garbage peer left open"
        );
        assert!(closed_by_peer(&mut http, T).await, "HTTP peer left open");
        assert!(
            closed_by_peer(&mut huge, T).await,
            "huge-frame peer left open"
        );
        assert!(
            closed_by_peer(&mut oversized, T).await,
            "oversized peer left open"
        );
        // The truncated greeting is cut off once the handshake deadline passes.
        assert!(
            closed_by_peer(&mut truncated, HANDSHAKE_TIMEOUT + T).await,
            "truncated greeting left open"
        );
        round_trip(&mut m, "after_hostiles_2").await;
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_times_out_clearly() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let started = std::time::Instant::now();
        let err = WorkerSocket::connect("127.0.0.1", port, "w_1", Duration::from_millis(600))
            .await
            .expect_err("nothing listens there");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            matches!(err, TransportError::ConnectTimeout { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("tcp://127.0.0.1:{port}")), "{text}");
        assert!(text.contains("within 0.6 s"), "{text}");
    }

    #[tokio::test]
    async fn invalid_identity_is_refused() {
        let err = WorkerSocket::connect("127.0.0.1", 1, "", T)
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::InvalidIdentity { .. }));
        let err = WorkerSocket::connect("127.0.0.1", 1, &"a".repeat(256), T)
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::InvalidIdentity { .. }));
    }

    #[tokio::test]
    async fn bind_errors_name_the_address() {
        let m = master().await;
        let err = MasterSocket::bind("127.0.0.1", m.port()).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("tcp://127.0.0.1:{}", m.port())),
            "{text}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn worker_notices_the_master_going_away_and_a_rebuilt_socket_works() {
        let identity = "host_5d6c1f0e2a3b4c5d6e7f8091a2b3c4d5";
        let mut m = master().await;
        let port = m.port();
        let mut w = worker(port, identity).await;
        w.send(b"before".to_vec());
        assert_eq!(next(&mut m).await.identity, identity);

        drop(m);
        let err = timeout(T, w.recv())
            .await
            .expect("the worker did not notice the master leaving")
            .expect_err("the master is gone");
        assert!(
            matches!(err, TransportError::ConnectionLost { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
        // Later calls say the socket is closed; sends are dropped quietly.
        w.send(b"into the void".to_vec());
        assert!(matches!(w.recv().await, Err(TransportError::Closed { .. })));

        // Re-bind the same port (the old listener closes asynchronously).
        let mut m = {
            let end = std::time::Instant::now() + T;
            loop {
                match MasterSocket::bind("127.0.0.1", port).await {
                    Ok(m) => break m,
                    Err(e) if std::time::Instant::now() < end => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        };
        round_trip(&mut m, identity).await;
    }

    #[tokio::test]
    async fn closing_the_master_ends_incoming_and_frees_the_port() {
        let m = master().await;
        let port = m.port();
        let (sender, mut incoming) = m.split();
        sender.close();
        assert!(timeout(T, incoming.recv()).await.unwrap().is_none());
        assert!(sender.is_closed());
        let end = std::time::Instant::now() + T;
        while MasterSocket::bind("127.0.0.1", port).await.is_err() {
            assert!(std::time::Instant::now() < end, "port not released");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn checker_accepts_a_real_handshake_and_rejects_bad_headers() {
        let mut c = ZmtpChecker::default();
        let mut bytes = greeting();
        bytes.extend_from_slice(&ready_command(b"w1"));
        bytes.extend_from_slice(&[0, 3, b'a', b'b', b'c']);
        // Fed one byte at a time, as a slow peer would send it.
        for b in &bytes {
            c.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(c.handshake_done);
        assert_eq!(c.state, CheckState::Flags);

        let mut c = ZmtpChecker::default();
        assert!(matches!(
            c.feed(b"GET / HTTP/1.1"),
            Err(GuardError::Handshake(_))
        ));

        let mut c = ZmtpChecker::default();
        let mut old = greeting();
        old[10] = 2;
        assert!(c.feed(&old).is_err());

        let mut c = ZmtpChecker::default();
        c.feed(&greeting()).unwrap();
        assert!(c.feed(&[0, 1, 0]).is_err(), "message before READY");

        let mut c = ZmtpChecker::default();
        c.feed(&greeting()).unwrap();
        c.feed(&ready_command(b"w")).unwrap();
        let mut frame = vec![FLAG_MORE | FLAG_LONG];
        frame.extend_from_slice(&(20u64 << 20).to_be_bytes());
        c.feed(&frame).unwrap();
        c.feed(&vec![0u8; 20 << 20]).unwrap();
        let mut frame = vec![FLAG_LONG];
        frame.extend_from_slice(&(13u64 << 20).to_be_bytes());
        assert!(
            matches!(c.feed(&frame), Err(GuardError::Violation(_))),
            "two frames of one message adding up to 33 MiB"
        );
    }
}
