//! The worker's side: the `zeromq` crate's DEALER, connected with the worker's identity, its
//! sends and receives driven by one background task that reports a lost connection.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use zeromq::util::PeerIdentity;
use zeromq::{
    DealerSocket, Socket, SocketEvent, SocketOptions, SocketRecv, SocketSend, ZmqError, ZmqMessage,
};

use super::{display_addr, TransportError, LOG_TARGET};

/// How long one outgoing worker message may wait for room before the connection counts as lost.
const WORKER_SEND_TIMEOUT: Duration = Duration::from_secs(2);

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

    /// Closes the socket like [`WorkerSender::close`] and waits, at most `limit`, until the
    /// socket task has handed the messages queued before it to the socket and ended (or the
    /// connection is gone). The `zeromq` crate may still be writing them in the background
    /// then, so a process that must be sure of its last messages keeps running a moment
    /// longer. False when `limit` ran out first.
    pub async fn close_and_wait(&self, limit: Duration) -> bool {
        self.close();
        // The socket task drops its end of the command channel when it ends, after the
        // queued messages went out and the socket was dropped.
        tokio::time::timeout(limit, self.commands.closed())
            .await
            .is_ok()
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
