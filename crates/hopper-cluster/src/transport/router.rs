//! The master's ROUTER, spoken directly on tokio: one task and one file descriptor per peer.
//!
//! Each accepted connection exchanges ZMTP 3 greetings (NULL mechanism) and READY commands
//! (ours says ROUTER; the peer must be a DEALER, or what else libzmq lets talk to a ROUTER),
//! then its messages go into the one [`Incoming`] channel tagged with the peer's routing
//! identity. [`MasterSender::send`] puts a payload into the bounded queue of the connection
//! holding that identity, which writes it as one frame: a DEALER receives just the payload, as
//! from libzmq's ROUTER (`[identity, payload]` in, the identity taken off as the address).
//!
//! Everything a peer sends goes through `zmtp::Decoder`, which checks each
//! frame header against the limits before waiting for its body, and buffers only bytes that
//! have arrived. A peer breaking the rules, or not finishing its handshake within
//! `HANDSHAKE_TIMEOUT`, is disconnected; nobody else notices.
//!
//! Identities follow libzmq's ROUTER (`ZMQ_ROUTER_HANDOVER` off): a newcomer announcing an
//! identity that a live connection holds is refused and the old connection kept; a peer
//! announcing none gets a generated one. The identity is free again the moment its
//! connection's task ends.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch, Semaphore};

use super::zmtp::{self, Decoder, Event, ProtocolError};
use super::{display_addr, TransportError, HANDSHAKE_TIMEOUT, LOG_TARGET};

/// Most peer connections the master serves at once (each costs one file descriptor, a task
/// and its buffers).
const MAX_CONNECTIONS: usize = 32 * 1024;

/// Messages buffered between the peers' tasks and the master's reader. When it is full the
/// peers' tasks stop reading (TCP pushes back on the workers) until the master catches up.
pub(super) const INCOMING_CAPACITY: usize = 4096;

/// Messages queued for one peer. A worker that does not read its messages fills it, and
/// further messages for it are dropped (with a warning) rather than holding up anyone else.
/// At Locust's one heartbeat a second that takes many minutes of not reading.
pub(super) const OUTGOING_QUEUE: usize = 1024;

/// Bytes of encoded frames a peer's task keeps ready to write; beyond this it leaves messages
/// in the queue, so a worker that does not read costs at most this plus its queue.
const OUTGOING_BUFFER: usize = 256 * 1024;

/// Least room made in a connection's read buffer for a read: a heartbeat fits, and an idle
/// connection holds no more. Once a frame's header says how long it is, the buffer grows to
/// what is missing, at most [`READ_MAX`] per read.
const READ_MIN: usize = 2 * 1024;
const READ_MAX: usize = 64 * 1024;

/// How long a closing master keeps writing what was queued for a peer before it hangs up.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Refused connections for one live identity are logged as warnings at most this often (a
/// libzmq worker retries every 100 ms); the others at debug level.
const DUPLICATE_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// One message a worker sent to the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender's routing identity (its client id), as lossy UTF-8.
    pub identity: String,
    /// The single payload frame.
    pub payload: Bytes,
}

/// Sends to workers by identity. Cheap to clone; every method returns at once.
#[derive(Clone)]
pub struct MasterSender {
    handle: Arc<SenderHandle>,
}

/// Shared by every clone of one [`MasterSender`]: when the last one goes, the socket closes.
struct SenderHandle {
    shared: Arc<Shared>,
}

impl Drop for SenderHandle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl fmt::Debug for MasterSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterSender")
            .field("local_addr", &self.handle.shared.local_addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl MasterSender {
    /// Queues `payload` for the worker whose routing identity is `identity`. Like Locust's
    /// ROUTER, a message for an identity that is not (or no longer) connected is dropped
    /// silently, and so is everything sent after [`close`](Self::close). A message for a
    /// worker that has not read its earlier ones for a long while is dropped with a warning.
    pub fn send(&self, identity: &str, payload: Vec<u8>) {
        let mut table = self.handle.shared.table();
        let Some(peer) = table.peers.get_mut(identity.as_bytes()) else {
            tracing::debug!(target: LOG_TARGET, "no worker {identity:?} is connected; dropped a message for it");
            return;
        };
        match peer.queue.try_send(payload) {
            Ok(()) => peer.dropping = false,
            Err(TrySendError::Full(_)) => {
                if peer.dropping {
                    tracing::debug!(target: LOG_TARGET, "dropped another message for {identity}");
                } else {
                    tracing::warn!(
                        target: LOG_TARGET,
                        "dropped a message for {identity}: the worker has not read its messages \
                         for a while ({OUTGOING_QUEUE} are waiting)"
                    );
                    peer.dropping = true;
                }
            }
            Err(TrySendError::Closed(_)) => {
                tracing::debug!(target: LOG_TARGET, "worker {identity} is disconnecting; dropped a message for it");
            }
        }
    }

    /// Closes the socket: messages queued before this call are still written (for up to a
    /// second), then the port is released, the connections are closed and the [`Incoming`]
    /// stream ends.
    pub fn close(&self) {
        self.handle.shared.close();
    }

    /// Whether the socket has been closed.
    pub fn is_closed(&self) -> bool {
        *self.handle.shared.shutdown.borrow()
    }
}

/// The master's ROUTER socket, bound and served by background tasks.
///
/// They live until [`MasterSender::close`] is called or every [`MasterSender`] (including the
/// one inside this value) is dropped.
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
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_CAPACITY);
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            table: Mutex::new(Table {
                peers: HashMap::new(),
                incoming: Some(incoming_tx),
                next_anonymous: fastrand::u32(..),
                next_connection: 0,
            }),
            shutdown,
            local_addr,
        });
        tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::debug!(target: LOG_TARGET, "master socket bound on {local_addr}");
        Ok(MasterSocket {
            sender: MasterSender {
                handle: Arc::new(SenderHandle { shared }),
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

    /// Messages waiting in the incoming channel.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.incoming.len()
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

/// What the socket's tasks share.
struct Shared {
    table: Mutex<Table>,
    /// Becomes true when the socket closes.
    shutdown: watch::Sender<bool>,
    local_addr: SocketAddr,
}

/// The connected peers by identity, and what a newly registered peer needs.
struct Table {
    peers: HashMap<Vec<u8>, Peer>,
    /// Taken when the socket closes, so that the incoming stream can end.
    incoming: Option<mpsc::Sender<Incoming>>,
    /// Counter behind the identities given to anonymous peers.
    next_anonymous: u32,
    next_connection: u64,
}

struct Peer {
    /// Which connection holds the identity.
    connection: u64,
    queue: mpsc::Sender<Vec<u8>>,
    /// Whether the last message for it was dropped (only the first drop in a row warns).
    dropping: bool,
    /// When a refused newcomer with this identity was last logged as a warning.
    refusal_warned: Option<Instant>,
}

/// A registered connection's hold on its identity; dropping it frees the identity.
struct Claim {
    shared: Arc<Shared>,
    identity: Vec<u8>,
    connection: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut table = self.shared.table();
        if table
            .peers
            .get(&self.identity)
            .is_some_and(|peer| peer.connection == self.connection)
        {
            table.peers.remove(&self.identity);
        }
    }
}

/// What a connection gets when its identity is registered.
struct Registered {
    claim: Claim,
    /// The identity as the master sees it.
    name: String,
    outgoing: mpsc::Receiver<Vec<u8>>,
    incoming: mpsc::Sender<Incoming>,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        let peers = {
            let mut table = self.table();
            table.incoming = None;
            std::mem::take(&mut table.peers)
        };
        // Dropping the queues' senders: each connection writes what is left, then ends.
        drop(peers);
        if !self.shutdown.send_replace(true) {
            tracing::debug!(target: LOG_TARGET, "master socket on {} closed", self.local_addr);
        }
    }

    /// Registers a connection under `identity` (generated when empty), unless a live
    /// connection holds it or the socket is closed.
    fn register(self: &Arc<Self>, identity: &[u8]) -> Result<Registered, ConnectionEnd> {
        let mut table = self.table();
        let Some(incoming) = table.incoming.clone() else {
            return Err(ConnectionEnd::Closed);
        };
        let identity = if identity.is_empty() {
            // libzmq gives anonymous peers a 0 byte and a counter; written here as hex, so
            // the identity is valid UTF-8 and the master can answer it. Peers do not announce
            // identities starting with 0 (libzmq refuses to set one), and a clash is skipped.
            loop {
                let n = table.next_anonymous;
                table.next_anonymous = n.wrapping_add(1);
                let generated = format!("\0{n:08x}").into_bytes();
                if !table.peers.contains_key(&generated) {
                    break generated;
                }
            }
        } else if let Some(peer) = table.peers.get_mut(identity) {
            let now = Instant::now();
            let warn = peer
                .refusal_warned
                .is_none_or(|last| now.duration_since(last) >= DUPLICATE_WARN_INTERVAL);
            if warn {
                peer.refusal_warned = Some(now);
            }
            return Err(ConnectionEnd::Duplicate {
                identity: identity.to_vec(),
                warn,
            });
        } else {
            identity.to_vec()
        };
        let connection = table.next_connection;
        table.next_connection += 1;
        let (queue, outgoing) = mpsc::channel(OUTGOING_QUEUE);
        table.peers.insert(
            identity.clone(),
            Peer {
                connection,
                queue,
                dropping: false,
                refusal_warned: None,
            },
        );
        Ok(Registered {
            name: String::from_utf8_lossy(&identity).into_owned(),
            claim: Claim {
                shared: self.clone(),
                identity,
                connection,
            },
            outgoing,
            incoming,
        })
    }

    #[cfg(test)]
    fn is_live(&self, identity: &[u8]) -> bool {
        self.table().peers.contains_key(identity)
    }
}

/// Accepts peers until the socket closes, then releases the port.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|closed| *closed) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(
                        target: LOG_TARGET,
                        "refused a connection from {peer}: already serving {MAX_CONNECTIONS}"
                    );
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    serve(stream, peer, shared).await;
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

/// Why a connection ended.
#[derive(Debug)]
enum ConnectionEnd {
    /// The peer hung up.
    Disconnected,
    /// The socket was closed.
    Closed,
    /// A ZMTP rule broken, or no handshake in time.
    Protocol(ProtocolError),
    /// The peer's identity belongs to another live connection.
    Duplicate {
        identity: Vec<u8>,
        /// Whether to log the refusal as a warning (else at debug level).
        warn: bool,
    },
    Io(std::io::Error),
}

impl From<ProtocolError> for ConnectionEnd {
    fn from(e: ProtocolError) -> Self {
        ConnectionEnd::Protocol(e)
    }
}

impl From<std::io::Error> for ConnectionEnd {
    fn from(e: std::io::Error) -> Self {
        ConnectionEnd::Io(e)
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    match connection(stream, &shared).await {
        ConnectionEnd::Disconnected => tracing::debug!(target: LOG_TARGET, "{peer} disconnected"),
        ConnectionEnd::Closed => {
            tracing::debug!(target: LOG_TARGET, "closed the connection from {peer}: the socket closed");
        }
        ConnectionEnd::Protocol(ProtocolError { handshake, reason }) => {
            if handshake {
                tracing::debug!(target: LOG_TARGET, "closed the connection from {peer}: {reason}");
            } else {
                tracing::warn!(target: LOG_TARGET, "closed the connection from {peer}: {reason}");
            }
        }
        ConnectionEnd::Duplicate { identity, warn } => {
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
        ConnectionEnd::Io(e) => {
            tracing::debug!(target: LOG_TARGET, "connection from {peer} failed: {e}");
        }
    }
}

/// Serves one peer from its greeting to its end.
async fn connection(mut stream: TcpStream, shared: &Arc<Shared>) -> ConnectionEnd {
    let _ = stream.set_nodelay(true);
    let mut decoder = Decoder::default();
    let mut inbuf = BytesMut::new();
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut shutdown = shared.shutdown.subscribe();
    let identity = tokio::select! {
        handshake = handshake(&mut stream, &mut decoder, &mut inbuf) => match handshake {
            Ok(identity) => identity,
            Err(end) => return end,
        },
        _ = tokio::time::sleep_until(deadline) => {
            return ConnectionEnd::Protocol(ProtocolError {
                handshake: true,
                reason: format!("no ZeroMQ handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
            });
        }
        _ = shutdown.wait_for(|closed| *closed) => return ConnectionEnd::Closed,
    };
    let registered = match shared.register(&identity) {
        Ok(registered) => registered,
        Err(end) => return end,
    };
    traffic(stream, decoder, inbuf, registered, &mut shutdown).await
}

/// Greetings and READY both ways; the peer's routing identity (empty: none).
async fn handshake(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    inbuf: &mut BytesMut,
) -> Result<Bytes, ConnectionEnd> {
    // Sent at once, whole: libzmq peers send theirs in parts and wait for our signature.
    stream.write_all(&zmtp::greeting()).await?;
    loop {
        while let Some(event) = decoder.decode(inbuf)? {
            match event {
                // As libzmq does with NULL, READY goes out right after the greetings.
                Event::Greeting => stream.write_all(&zmtp::ready_frame(b"ROUTER")).await?,
                Event::Ready { identity, .. } => return Ok(identity),
                // The decoder yields nothing else before READY.
                other => {
                    return Err(ConnectionEnd::Protocol(ProtocolError {
                        handshake: true,
                        reason: format!("unexpected {other:?} during the handshake"),
                    }))
                }
            }
        }
        reserve_for(decoder, inbuf);
        if stream.read_buf(inbuf).await? == 0 {
            return Err(ConnectionEnd::Disconnected);
        }
    }
}

/// Room for the next read: what the decoder waits for, in chunks (so a large frame only
/// grows the buffer as its bytes arrive).
fn reserve_for(decoder: &Decoder, inbuf: &mut BytesMut) {
    let missing = decoder.want().saturating_sub(inbuf.len());
    inbuf.reserve(missing.clamp(READ_MIN, READ_MAX));
}

/// Moves messages both ways until the peer leaves, breaks a rule or the socket closes.
async fn traffic(
    mut stream: TcpStream,
    mut decoder: Decoder,
    mut inbuf: BytesMut,
    registered: Registered,
    shutdown: &mut watch::Receiver<bool>,
) -> ConnectionEnd {
    let Registered {
        claim,
        name,
        mut outgoing,
        incoming,
    } = registered;
    let (mut reader, mut writer) = stream.split();
    let mut out = BytesMut::new();
    // A message the incoming channel had no room for; reading pauses until it is delivered.
    let mut pending: Option<Incoming> = None;
    let end = loop {
        if pending.is_none() {
            let mut decoded = false;
            loop {
                let event = match decoder.decode(&mut inbuf) {
                    Ok(Some(event)) => event,
                    Ok(None) => break,
                    Err(e) => return e.into(),
                };
                decoded = true;
                match event {
                    Event::Message(payload) => {
                        let message = Incoming {
                            identity: name.clone(),
                            payload,
                        };
                        match incoming.try_send(message) {
                            Ok(()) => {}
                            Err(TrySendError::Full(message)) => {
                                pending = Some(message);
                                break;
                            }
                            // Nobody reads any more; keep draining the peer.
                            Err(TrySendError::Closed(_)) => {}
                        }
                    }
                    Event::MultiFrame { frames } => tracing::debug!(
                        target: LOG_TARGET,
                        "dropped a message of {frames} frames from {name} (expected one)"
                    ),
                    // A peer that does not read its messages does not get its PONGs either.
                    Event::Ping { context } if out.len() < OUTGOING_BUFFER => {
                        zmtp::put_pong(&mut out, &context);
                    }
                    Event::Ping { .. } => {}
                    Event::Command { name: command } => tracing::debug!(
                        target: LOG_TARGET,
                        "ignored a {:?} command from {name}",
                        String::from_utf8_lossy(&command)
                    ),
                    Event::Greeting | Event::Ready { .. } => {}
                }
            }
            if decoded && inbuf.is_empty() {
                // What is left of the buffer shares its memory with the payloads just handed
                // over; a fresh small one lets that go when the master is done with them.
                inbuf = BytesMut::new();
            }
            reserve_for(&decoder, &mut inbuf);
        }
        if out.is_empty() && out.capacity() > OUTGOING_BUFFER {
            out = BytesMut::new();
        }
        tokio::select! {
            read = reader.read_buf(&mut inbuf), if pending.is_none() => match read {
                Ok(0) => break ConnectionEnd::Disconnected,
                Ok(_) => {}
                Err(e) => break ConnectionEnd::Io(e),
            },
            permit = incoming.reserve(), if pending.is_some() => {
                if let (Ok(permit), Some(message)) = (permit, pending.take()) {
                    permit.send(message);
                }
            },
            written = writer.write(&out), if !out.is_empty() => match written {
                Ok(0) => break ConnectionEnd::Disconnected,
                Ok(n) => {
                    let _ = out.split_to(n);
                }
                Err(e) => break ConnectionEnd::Io(e),
            },
            message = outgoing.recv(), if out.len() < OUTGOING_BUFFER => match message {
                Some(payload) => {
                    zmtp::put_frame(&mut out, 0, &payload);
                    while out.len() < OUTGOING_BUFFER {
                        let Ok(payload) = outgoing.try_recv() else { break };
                        zmtp::put_frame(&mut out, 0, &payload);
                    }
                }
                // The socket closed (it dropped the queue's sender).
                None => break ConnectionEnd::Closed,
            },
            _ = shutdown.wait_for(|closed| *closed) => break ConnectionEnd::Closed,
        }
    };
    // Free the identity and stop holding the incoming stream open right away.
    drop((claim, incoming));
    if matches!(end, ConnectionEnd::Closed) {
        // Write what was queued before the close, as a ROUTER flushes its pipes.
        while let Ok(payload) = outgoing.try_recv() {
            zmtp::put_frame(&mut out, 0, &payload);
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, async {
            writer.write_all(&out).await?;
            writer.shutdown().await
        })
        .await;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn identities_are_held_until_the_claim_is_dropped() {
        let socket = MasterSocket::bind("127.0.0.1", 0).await.unwrap();
        let shared = socket.sender.handle.shared.clone();
        let duplicate = |result: Result<Registered, ConnectionEnd>| match result {
            Err(ConnectionEnd::Duplicate { warn, .. }) => warn,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a live identity was registered twice"),
        };
        let first = shared.register(b"w1").expect("free");
        assert!(shared.is_live(b"w1"));
        assert!(duplicate(shared.register(b"w1")), "the first refusal warns");
        assert!(!duplicate(shared.register(b"w1")), "later ones are quieter");
        let other = shared.register(b"w2").expect("another identity");
        drop(first);
        assert!(!shared.is_live(b"w1"));
        let again = shared.register(b"w1").expect("free again");
        assert!(
            duplicate(shared.register(b"w1")),
            "a new holder, a new warning"
        );

        // Generated identities never clash with each other or with announced ones.
        let anonymous: Vec<Registered> = (0..3).map(|_| shared.register(b"").unwrap()).collect();
        let mut names: Vec<&str> = anonymous.iter().map(|r| r.name.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 3);
        let taken = anonymous[0].claim.identity.clone();
        assert!(duplicate(shared.register(&taken)));

        // After closing, nothing registers and the table is empty.
        socket.sender.close();
        assert!(matches!(shared.register(b"w3"), Err(ConnectionEnd::Closed)));
        assert!(!shared.is_live(b"w2"));
        drop((again, other, anonymous));
    }
}
