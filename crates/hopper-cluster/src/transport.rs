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
//!
//! # One connection per identity
//!
//! When a peer connects with the routing identity of a peer it already has, the crate's ROUTER
//! drops the old peer for the new one; libzmq's (Locust's) keeps the old one and ignores the
//! newcomer (`ZMQ_ROUTER_HANDOVER` is off by default). With the crate's behaviour two workers
//! started with the same `--worker-id` would take the identity from each other in a loop. So the
//! guard reads the `Identity` property of each peer's READY command and refuses (closes) a
//! connection whose identity another guarded connection already holds, before the ROUTER sees
//! that READY. An identity is held from its READY until the ROUTER has let go of the peer after
//! the connection ended, for whatever reason; a worker whose old connection is not closed yet is
//! refused and gets in on a later attempt. Anonymous peers (no identity) are not affected.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// After a connection that held an identity ends, how long the guard waits for the ROUTER to
/// let go of the peer before it frees the identity anyway (the ROUTER normally takes
/// microseconds; it only lags when the master does not read its messages).
const ROUTER_RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Refused connections for one live identity are logged as warnings at most this often (a
/// libzmq worker retries every 100 ms); the others at debug level.
const DUPLICATE_WARN_INTERVAL: Duration = Duration::from_secs(10);

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
    let live = LiveIdentities::default();
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
                let live = live.clone();
                tokio::spawn(async move {
                    guard_connection(stream, peer, port, &live).await;
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

/// The identities of the guarded connections that got past their READY command, so that a
/// second connection with the same identity is refused instead of replacing the first one in
/// the ROUTER. Each maps to when a refusal was last logged as a warning.
#[derive(Clone, Default)]
struct LiveIdentities {
    live: Arc<Mutex<HashMap<Vec<u8>, Option<Instant>>>>,
}

impl LiveIdentities {
    /// Takes `identity` for one connection until the returned claim is dropped. `Err(warn)` if
    /// another connection holds it; `warn` says whether this refusal deserves a warning.
    fn claim(&self, identity: &[u8]) -> Result<IdentityClaim, bool> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match live.entry(identity.to_vec()) {
            Entry::Vacant(slot) => {
                slot.insert(None);
                Ok(IdentityClaim {
                    live: self.clone(),
                    identity: identity.to_vec(),
                })
            }
            Entry::Occupied(mut slot) => {
                let now = Instant::now();
                let warn = slot
                    .get()
                    .is_none_or(|last| now.duration_since(last) >= DUPLICATE_WARN_INTERVAL);
                if warn {
                    slot.insert(Some(now));
                }
                Err(warn)
            }
        }
    }

    #[cfg(test)]
    fn is_live(&self, identity: &[u8]) -> bool {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(identity)
    }
}

/// One connection's hold on its identity; dropping it frees the identity.
struct IdentityClaim {
    live: LiveIdentities,
    identity: Vec<u8>,
}

impl Drop for IdentityClaim {
    fn drop(&mut self) {
        self.live
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.identity);
    }
}

async fn guard_connection(
    external: TcpStream,
    peer: SocketAddr,
    internal_port: u16,
    live: &LiveIdentities,
) {
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
    // Set by `forward_checked` once the READY has passed; dropping it frees the identity, so
    // it is freed however this function ends (even if its task is dropped).
    let mut claim: Option<IdentityClaim> = None;
    let router_closed = {
        let inbound = forward_checked(&mut ext_read, &mut int_write, live, &mut claim);
        let outbound = tokio::io::copy(&mut int_read, &mut ext_write);
        tokio::select! {
            result = inbound => {
                match result {
                    Ok(()) => tracing::debug!(target: LOG_TARGET, "{peer} disconnected"),
                    Err(GuardError::Handshake(reason)) => {
                        tracing::debug!(target: LOG_TARGET, "closed the connection from {peer}: {reason}");
                    }
                    Err(GuardError::Violation(reason)) => {
                        tracing::warn!(target: LOG_TARGET, "closed the connection from {peer}: {reason}");
                    }
                    Err(GuardError::Duplicate { identity, warn }) => {
                        let identity = String::from_utf8_lossy(&identity);
                        if warn {
                            tracing::warn!(
                                target: LOG_TARGET,
                                "refused a connection from {peer}: a worker with identity {identity:?} \
                                 is already connected (two workers with the same --worker-id, or the \
                                 old connection of a restarted worker that has not closed yet)"
                            );
                        } else {
                            tracing::debug!(
                                target: LOG_TARGET,
                                "refused a connection from {peer}: identity {identity:?} is already connected"
                            );
                        }
                    }
                    Err(GuardError::Io(e)) => tracing::debug!(target: LOG_TARGET, "connection from {peer} failed: {e}"),
                }
                false
            }
            result = outbound => {
                tracing::debug!(target: LOG_TARGET, "the ROUTER closed the connection from {peer}");
                // Ok: the ROUTER closed its side. Err: that, or the peer is gone.
                result.is_ok()
            }
        }
    };
    drop((ext_read, ext_write));
    let Some(claim) = claim else {
        return;
    };
    if !router_closed {
        // The ROUTER still has the peer under this identity. Freeing the identity now would let
        // a newcomer's READY reach the ROUTER first, and the crate's ROUTER would then drop the
        // newcomer when it notices the old connection ending (it forgets peers by identity).
        // So end our side and wait for the ROUTER to close its side: it does that only after
        // it has forgotten the peer.
        drop(int_write);
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(ROUTER_RELEASE_TIMEOUT, async {
            while let Ok(n) = int_read.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        if closed.is_err() {
            tracing::debug!(
                target: LOG_TARGET,
                "the ROUTER did not let go of {peer} within {} s; freeing its identity anyway",
                ROUTER_RELEASE_TIMEOUT.as_secs()
            );
        }
    }
    drop(claim);
}

#[derive(Debug)]
enum GuardError {
    /// Before the handshake completed: scanners, HTTP clients, wrong protocol.
    Handshake(String),
    /// After the handshake: a ZeroMQ peer broke the limits.
    Violation(String),
    /// The peer's identity belongs to another live connection.
    Duplicate {
        identity: Vec<u8>,
        /// Whether to log the refusal as a warning (else at debug level).
        warn: bool,
    },
    Io(std::io::Error),
}

/// Copies peer bytes to the ROUTER, checking every ZMTP frame header before the ROUTER sees it.
/// The identity of the peer's READY command is claimed in `live` (into `claim`) before the
/// ROUTER sees the end of that command; a live identity ends the connection instead.
async fn forward_checked(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    live: &LiveIdentities,
    claim: &mut Option<IdentityClaim>,
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
        if let Some(identity) = checker.ready_identity.take() {
            if !identity.is_empty() {
                match live.claim(&identity) {
                    Ok(held) => *claim = Some(held),
                    Err(warn) => return Err(GuardError::Duplicate { identity, warn }),
                }
            }
        }
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
    /// The body of the first command (READY) so far.
    ready: Vec<u8>,
    /// The identity the READY command announced (empty: none), until taken.
    ready_identity: Option<Vec<u8>>,
}

impl Default for ZmtpChecker {
    fn default() -> Self {
        ZmtpChecker {
            state: CheckState::Greeting { seen: 0 },
            handshake_done: false,
            message_frames: 0,
            message_bytes: 0,
            ready: Vec::new(),
            ready_identity: None,
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
                        self.end_frame(flags)?;
                    }
                }
                CheckState::Body { flags, remaining } => {
                    let take = remaining.min(data.len() as u64);
                    let (body, rest) = data.split_at(take as usize);
                    data = rest;
                    if flags & FLAG_COMMAND != 0 && !self.handshake_done {
                        // At most MAX_COMMAND_SIZE bytes (checked in the header).
                        self.ready.extend_from_slice(body);
                    }
                    let remaining = remaining - take;
                    self.state = CheckState::Body { flags, remaining };
                    if remaining == 0 {
                        self.end_frame(flags)?;
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

    fn end_frame(&mut self, flags: u8) -> Result<(), GuardError> {
        if flags & FLAG_COMMAND != 0 {
            if !self.handshake_done {
                let ready = std::mem::take(&mut self.ready);
                let identity = ready_identity(&ready).map_err(|reason| self.reject(reason))?;
                self.ready_identity = Some(identity);
                self.handshake_done = true;
            }
        } else if flags & FLAG_MORE == 0 {
            self.message_frames = 0;
            self.message_bytes = 0;
        }
        self.state = CheckState::Flags;
        Ok(())
    }
}

/// The routing identity announced by the body of a peer's first command, which must be a
/// well-formed READY: the command name, then properties (1-byte name length, name, 4-byte
/// big-endian value length, value). Property names are case-insensitive (ZMTP 3.0); empty if
/// there is no `Identity`. The ROUTER rejects whatever this rejects, so nothing is lost.
fn ready_identity(body: &[u8]) -> Result<Vec<u8>, String> {
    let malformed = || "a malformed READY command".to_string();
    let (&name_len, rest) = body.split_first().ok_or_else(malformed)?;
    if rest.len() < usize::from(name_len) {
        return Err(malformed());
    }
    let (name, mut properties) = rest.split_at(usize::from(name_len));
    if name != b"READY" {
        return Err(format!(
            "a {:?} command instead of READY",
            String::from_utf8_lossy(name)
        ));
    }
    let mut identity: Option<&[u8]> = None;
    while let Some((&name_len, rest)) = properties.split_first() {
        if rest.len() < usize::from(name_len) + 4 {
            return Err(malformed());
        }
        let (name, rest) = rest.split_at(usize::from(name_len));
        let (value_len, rest) = rest.split_at(4);
        let value_len =
            u32::from_be_bytes([value_len[0], value_len[1], value_len[2], value_len[3]]);
        let value_len = usize::try_from(value_len).unwrap_or(usize::MAX);
        if rest.len() < value_len {
            return Err(malformed());
        }
        let (value, rest) = rest.split_at(value_len);
        properties = rest;
        if name.eq_ignore_ascii_case(b"Identity") {
            if identity.is_some() {
                // Which one would count? Legitimate peers send one.
                return Err("a READY command with two Identity properties".to_string());
            }
            if value.len() > PeerIdentity::MAX_LENGTH {
                return Err(format!(
                    "an identity of {} bytes (255 at most)",
                    value.len()
                ));
            }
            identity = Some(value);
        }
    }
    Ok(identity.unwrap_or_default().to_vec())
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
        command_frame(&ready_body(&[
            (b"Socket-Type", b"DEALER"),
            (b"Identity", identity),
        ]))
    }

    fn ready_body(properties: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut body = vec![5u8];
        body.extend_from_slice(b"READY");
        for (name, value) in properties {
            body.push(name.len() as u8);
            body.extend_from_slice(name);
            body.extend_from_slice(&(value.len() as u32).to_be_bytes());
            body.extend_from_slice(value);
        }
        body
    }

    fn command_frame(body: &[u8]) -> Vec<u8> {
        let mut frame = vec![FLAG_COMMAND | FLAG_LONG];
        frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
        frame.extend_from_slice(body);
        frame
    }

    /// The worker sends `text`; the master must get exactly that from `identity` next, and its
    /// answer must come back.
    async fn exchange(master: &mut MasterSocket, w: &mut WorkerSocket, identity: &str, text: &str) {
        w.send(format!("{text} from {identity}").into_bytes());
        let got = next(master).await;
        assert_eq!(got.identity, identity);
        assert_eq!(
            String::from_utf8_lossy(&got.payload),
            format!("{text} from {identity}")
        );
        master
            .sender()
            .send(identity, format!("{text} to {identity}").into_bytes());
        assert_eq!(
            String::from_utf8_lossy(&next_w(w).await),
            format!("{text} to {identity}")
        );
    }

    /// Connects with `identity` as a reconnecting worker does: a refused attempt (the identity
    /// still held by an old connection) is retried. Returns the socket, once the master has
    /// heard from it, and how long that took.
    async fn connect_until_accepted(
        master: &mut MasterSocket,
        identity: &str,
    ) -> (WorkerSocket, Duration) {
        let started = std::time::Instant::now();
        let end = tokio::time::Instant::now() + T;
        loop {
            assert!(tokio::time::Instant::now() < end, "{identity} never got in");
            let Ok(mut w) =
                WorkerSocket::connect("127.0.0.1", master.port(), identity, Duration::from_secs(1))
                    .await
            else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            w.send(b"probe".to_vec());
            tokio::select! {
                got = master.recv() => {
                    let got = got.expect("master socket closed");
                    assert_eq!(got.identity, identity);
                    assert_eq!(&got.payload[..], b"probe");
                    return (w, started.elapsed());
                }
                refused = w.recv() => {
                    assert!(refused.is_err(), "{refused:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ = tokio::time::sleep_until(end) => {}
            }
        }
    }

    /// A hand-made ZeroMQ peer that has completed its handshake with `identity` and said
    /// `hello` (which the master has received). Retried while the identity is still held.
    async fn raw_peer(master: &mut MasterSocket, identity: &[u8]) -> TcpStream {
        let end = tokio::time::Instant::now() + T;
        loop {
            assert!(tokio::time::Instant::now() < end, "raw peer never got in");
            let mut stream = TcpStream::connect(("127.0.0.1", master.port()))
                .await
                .unwrap();
            let mut hello = greeting();
            hello.extend_from_slice(&ready_command(identity));
            hello.extend_from_slice(&[0, 5]);
            hello.extend_from_slice(b"hello");
            stream.write_all(&hello).await.unwrap();
            tokio::select! {
                got = master.recv() => {
                    let got = got.expect("master socket closed");
                    assert_eq!(&got.payload[..], b"hello");
                    if !identity.is_empty() {
                        assert_eq!(got.identity.as_bytes(), identity);
                    }
                    return stream;
                }
                // Refused: the guard closed the connection.
                _ = closed_by_peer(&mut stream, T) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_connection_with_a_live_identity_is_refused_and_the_first_is_undisturbed() {
        let identity = "dup_0123456789abcdef0123456789abcdef";
        let mut m = master().await;
        let mut first = worker(m.port(), identity).await;
        exchange(&mut m, &mut first, identity, "before").await;

        for attempt in 0..3 {
            // The crate's ROUTER would hand the identity to this socket and drop `first`.
            match WorkerSocket::connect("127.0.0.1", m.port(), identity, Duration::from_secs(2))
                .await
            {
                // Cut off before its handshake completed.
                Err(e) => assert!(
                    matches!(e, TransportError::Connect { .. }),
                    "attempt {attempt}: {e:?}"
                ),
                // Or right after it: the connection is closed and nothing gets through.
                Ok(mut second) => {
                    second.send(format!("duplicate {attempt}").into_bytes());
                    let err = timeout(T, second.recv())
                        .await
                        .expect("the duplicate was not cut off")
                        .expect_err("the duplicate must not receive anything");
                    assert!(
                        matches!(err, TransportError::ConnectionLost { .. }),
                        "attempt {attempt}: {err:?}"
                    );
                }
            }
            // `first` still owns the identity: its messages reach the master (and the
            // duplicate's did not, or they would come first) and answers come back to it.
            exchange(&mut m, &mut first, identity, &format!("after {attempt}")).await;
        }

        // Same with a peer that sends its READY byte by byte: refused before the ROUTER sees
        // the end of it.
        let mut slow = TcpStream::connect(("127.0.0.1", m.port())).await.unwrap();
        slow.write_all(&greeting()).await.unwrap();
        for byte in ready_command(identity.as_bytes()) {
            if slow.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(closed_by_peer(&mut slow, T).await, "duplicate left open");
        exchange(&mut m, &mut first, identity, "after the slow one").await;

        // Other identities are not affected.
        round_trip(&mut m, "dup_other").await;
        exchange(&mut m, &mut first, identity, "at the end").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_identity_is_free_again_once_its_connection_ends() {
        let identity = "again_0123456789abcdef0123456789abcdef";
        let mut m = master().await;
        let mut first = worker(m.port(), identity).await;
        exchange(&mut m, &mut first, identity, "first").await;

        // The worker closes its socket; a new one with the same identity gets in (at once, or
        // after a retry if it beats the old connection's teardown) and works.
        drop(first);
        let (mut second, took) = connect_until_accepted(&mut m, identity).await;
        assert!(
            took < ROUTER_RELEASE_TIMEOUT,
            "the identity was only freed by the fallback timeout ({took:?})"
        );
        exchange(&mut m, &mut second, identity, "second").await;
        // Still routed a while later: the old connection's teardown did not take the
        // identity away from the new one inside the ROUTER.
        tokio::time::sleep(Duration::from_millis(200)).await;
        exchange(&mut m, &mut second, identity, "second, later").await;

        // A peer that vanishes without a goodbye frees its identity too...
        drop(second);
        let (third, _) = connect_until_accepted(&mut m, identity).await;
        drop(third);
        let raw = raw_peer(&mut m, identity.as_bytes()).await;
        drop(raw);
        let (mut fourth, _) = connect_until_accepted(&mut m, identity).await;
        exchange(&mut m, &mut fourth, identity, "fourth").await;

        // ...and so does one the guard cuts off for breaking the rules.
        drop(fourth);
        let (fifth, _) = connect_until_accepted(&mut m, identity).await;
        drop(fifth);
        let mut fat = raw_peer(&mut m, identity.as_bytes()).await;
        let mut header = vec![FLAG_LONG];
        header.extend_from_slice(&(64u64 << 20).to_be_bytes());
        let _ = fat.write_all(&header).await;
        assert!(
            closed_by_peer(&mut fat, T).await,
            "oversized peer left open"
        );
        let (mut sixth, _) = connect_until_accepted(&mut m, identity).await;
        exchange(&mut m, &mut sixth, identity, "sixth").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_identity_is_held_until_the_router_has_let_go_of_the_old_peer() {
        // The crate's ROUTER forgets a peer by identity when it notices the connection ended.
        // Had the guard freed the identity before that, a newcomer's READY could reach the
        // ROUTER first, and the late cleanup would then throw the newcomer out.
        let identity = "held_0123456789abcdef0123456789abcdef";
        let mut m = master().await;
        let mut old = worker(m.port(), identity).await;
        exchange(&mut m, &mut old, identity, "old").await;

        // Stall the ROUTER: the master stops reading, the incoming queue fills up, and the
        // ROUTER stops reading its connections (so it cannot notice one ending either).
        let filler = worker(m.port(), "filler").await;
        let flood = INCOMING_CAPACITY + 1000;
        for i in 0..flood {
            filler.send(i.to_string().into_bytes());
        }
        let end = tokio::time::Instant::now() + T;
        while m.incoming.len() < INCOMING_CAPACITY {
            assert!(
                tokio::time::Instant::now() < end,
                "the ROUTER never stalled"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        drop(old);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The ROUTER still has the old peer, so the identity is still held.
        match WorkerSocket::connect("127.0.0.1", m.port(), identity, Duration::from_secs(2)).await {
            Err(e) => assert!(matches!(e, TransportError::Connect { .. }), "{e:?}"),
            Ok(mut early) => {
                let lost = timeout(Duration::from_secs(2), early.recv()).await;
                assert!(
                    matches!(lost, Ok(Err(TransportError::ConnectionLost { .. }))),
                    "a newcomer got in while the ROUTER still had the old peer: {lost:?}"
                );
            }
        }

        // The master reads again: the ROUTER lets go of the old peer, the identity is freed.
        for i in 0..flood {
            let got = next(&mut m).await;
            assert_eq!(got.identity, "filler");
            assert_eq!(&got.payload[..], i.to_string().as_bytes());
        }
        let (mut new, _) = connect_until_accepted(&mut m, identity).await;
        exchange(&mut m, &mut new, identity, "new").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        exchange(&mut m, &mut new, identity, "new, later").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn anonymous_peers_are_not_limited() {
        let mut m = master().await;
        let mut a = raw_peer(&mut m, b"").await;
        let mut b = raw_peer(&mut m, b"").await;
        for peer in [&mut a, &mut b] {
            peer.write_all(&[0, 5]).await.unwrap();
            peer.write_all(b"again").await.unwrap();
            assert_eq!(&next(&mut m).await.payload[..], b"again");
        }
        assert!(!closed_by_peer(&mut a, Duration::from_millis(200)).await);
        assert!(!closed_by_peer(&mut b, Duration::from_millis(200)).await);
    }

    #[test]
    fn live_identities_are_held_until_the_claim_is_dropped() {
        let live = LiveIdentities::default();
        let claim = live.claim(b"w1").expect("free");
        assert!(live.is_live(b"w1"));
        assert!(
            matches!(live.claim(b"w1"), Err(true)),
            "first refusal warns"
        );
        assert!(
            matches!(live.claim(b"w1"), Err(false)),
            "later ones are quieter"
        );
        let other = live.claim(b"w2").expect("another identity");
        drop(claim);
        assert!(!live.is_live(b"w1"));
        let again = live.claim(b"w1").expect("free again");
        assert!(
            matches!(live.claim(b"w1"), Err(true)),
            "a new holder, a new warning"
        );
        drop((again, other));
        assert!(!live.is_live(b"w1") && !live.is_live(b"w2"));
    }

    #[test]
    fn checker_reads_the_identity_of_the_ready_command() {
        let identity_of = |body: &[u8]| {
            let mut c = ZmtpChecker::default();
            let mut bytes = greeting();
            bytes.extend_from_slice(&command_frame(body));
            // One byte at a time, as a slow peer would send it.
            for b in &bytes {
                c.feed(std::slice::from_ref(b))?;
            }
            assert!(c.handshake_done);
            Ok::<_, GuardError>(c.ready_identity.take().expect("READY seen"))
        };
        let id = identity_of(&ready_body(&[
            (b"Socket-Type", b"DEALER"),
            (b"Identity", b"host_1"),
        ]))
        .unwrap();
        assert_eq!(id, b"host_1");
        // Names are case-insensitive; other properties are skipped.
        let id = identity_of(&ready_body(&[
            (b"identity", b"host_2"),
            (b"Socket-Type", b"DEALER"),
            (b"X-Other", b""),
        ]))
        .unwrap();
        assert_eq!(id, b"host_2");
        assert_eq!(
            identity_of(&ready_body(&[(b"Socket-Type", b"DEALER")])).unwrap(),
            b""
        );
        assert_eq!(
            identity_of(&ready_body(&[(b"IDENTITY", b"")])).unwrap(),
            b""
        );
        assert_eq!(
            identity_of(&ready_body(&[(b"Identity", &[b'x'; 255])])).unwrap(),
            vec![b'x'; 255]
        );

        for (what, body) in [
            (
                "two identities",
                ready_body(&[(b"Identity", b"a"), (b"IDENTITY", b"b")]),
            ),
            (
                "a 256-byte identity",
                ready_body(&[(b"Identity", &[b'x'; 256])]),
            ),
            ("not READY", b"\x05HELLO".to_vec()),
            ("empty", Vec::new()),
            ("truncated name", b"\x05REA".to_vec()),
            ("truncated property", {
                let mut body = ready_body(&[(b"Identity", b"abc")]);
                body.pop();
                body
            }),
            ("a stray byte", {
                let mut body = ready_body(&[(b"Identity", b"abc")]);
                body.push(1);
                body
            }),
        ] {
            assert!(
                matches!(identity_of(&body), Err(GuardError::Handshake(_))),
                "{what}"
            );
        }

        // Only the first command counts.
        let mut c = ZmtpChecker::default();
        c.feed(&greeting()).unwrap();
        c.feed(&ready_command(b"w1")).unwrap();
        assert_eq!(c.ready_identity.take().unwrap(), b"w1");
        c.feed(&ready_command(b"w2")).unwrap();
        assert!(c.ready_identity.is_none());
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
