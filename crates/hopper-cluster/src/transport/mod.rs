//! The ZeroMQ sockets of master/worker mode: bytes in, bytes out.
//!
//! Locust's master binds a ROUTER socket and its workers connect DEALER sockets whose routing
//! identity is their client id (reference §6.1). A worker sends one frame (the payload); the
//! master sees `[identity, payload]` and answers `[identity, payload]`. This module moves those
//! payloads; encoding them is [`crate::wire`]'s job.
//!
//! * [`MasterSocket`] binds the ROUTER and hands out an [`Incoming`] stream plus a cloneable
//!   [`MasterSender`] (`router.rs`).
//! * [`WorkerSocket`] connects a DEALER with a given identity and splits into a cloneable
//!   [`WorkerSender`] and a [`WorkerReceiver`] (`dealer.rs`). When the master goes away the
//!   receiver reports [`TransportError::ConnectionLost`]; the caller then builds a new
//!   `WorkerSocket` with the same identity (the `zeromq` crate's DEALER never reconnects by
//!   itself).
//!
//! # Why the master speaks ZMTP itself
//!
//! The master's port faces the network, and a master serves thousands of workers. The
//! `zeromq` 0.7 crate's ROUTER fits neither: it trusts the length a peer announces in a frame
//! header and reserves that much memory before reading (73 bytes from any TCP client, a
//! greeting plus a header announcing 4 TiB, abort the process), it has no cap on message
//! size, and it hands an identity over to a newcomer where libzmq (Locust) keeps the old peer.
//! Guarding it meant a checking proxy in front of it: three file descriptors and two extra
//! copies per worker. So the ROUTER side is written here (`zmtp.rs` parses, `router.rs` serves):
//! one connection, one task, one file descriptor per worker, every limit checked on a frame's
//! header before its body is read. ZeroMQ peers (pyzmq, libzmq, the crate) see an ordinary
//! ROUTER. The worker side keeps the crate's DEALER: it only talks to a master it was pointed
//! at.

use std::fmt;
use std::time::Duration;

mod dealer;
mod router;
#[cfg(test)]
mod tests;
mod zmtp;

pub use dealer::{WorkerReceiver, WorkerSender, WorkerSocket};
pub use router::{Incoming, MasterSender, MasterSocket};

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

fn display_addr(host: &str, port: u16) -> String {
    let host = if host.is_empty() { "*" } else { host };
    if host.contains(':') && !host.starts_with('[') {
        format!("tcp://[{host}]:{port}")
    } else {
        format!("tcp://{host}:{port}")
    }
}
