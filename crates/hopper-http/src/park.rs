//! Parking: an idle HTTP/1.1 keep-alive connection shrunk to its bare socket while its user
//! waits.
//!
//! A live hyper HTTP/1.1 connection costs about 17 KB of resident memory (read and write
//! buffers, the request channel, the task that drives the socket), all of it useless while
//! the user sleeps between requests. Parking gives that back through hyper's public API:
//! drop the connection's [`http1::SendRequest`], let the connection task finish with
//! [`http1::Connection::without_shutdown`] and send the socket back, and keep only the socket
//! (the `TcpStream`, or the TLS stream with its session) until the next request, which runs
//! a new HTTP/1.1 handshake on it. That handshake is hyper's local setup, not a network
//! round trip: the server sees one keep-alive connection throughout. A parked connection
//! costs the socket and nothing else.
//!
//! Two details make it safe and actually free the memory:
//!
//! * Only a connection that hyper reports ready for its next request is parked, so the
//!   socket is at a message boundary; bytes hyper read past the response mean the connection
//!   is dropped instead, as hyper would have dropped it.
//! * The finished connection task registered its waker with the socket when it last read,
//!   and that waker keeps the task's whole allocation alive. A plain TCP socket leaves
//!   tokio's reactor while parked (`into_std`, and `from_std` to resume: two `epoll_ctl`
//!   calls), which frees its registration, waker and all, and leaves a bare file descriptor.
//!   A TLS stream cannot be taken apart that way, so it is polled once from the user's own
//!   task (alive anyway), whose waker replaces the old one.
//!
//! Freed memory only lowers the process's resident size if the allocator gives it back to
//! the system. glibc keeps freed chunks that are not at the top of its heaps, and users
//! that start together (a fast ramp) leave their freed connection buffers scattered between
//! memory that lives on, so on glibc a trim (`malloc_trim`) follows parking: at most one a
//! second, a second after the first park that needed one, on a thread of its own.
//!
//! On resumption the socket is polled once more: one the server closed while the user
//! waited is dropped without a failure and the request goes out on a new connection, the
//! same as when a live connection is found closed. (A server closing it between that check
//! and the request is the race every keep-alive client has; `conn` retries a request that
//! never reached the wire once.) HTTP/2 connections are not parked: one carries all of a
//! user's requests to its origin and hyper cannot hand an HTTP/2 socket back.

use crate::conn::ReqBody;
use crate::errors;
use crate::tcp_or::TcpOr;
use crate::tls::Watched;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::mpsc::{self, SyncSender};
use std::sync::OnceLock;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The socket under an HTTP/1.1 connection: plain TCP, or TLS (boxed: a TLS session is
/// large, and a plain connection should not pay for it).
pub(crate) type H1Io = TcpOr<Box<Watched>>;

/// What a finished connection task hands back: the socket and any bytes hyper read past
/// the last response.
type Returned = http1::Parts<TokioIo<H1Io>>;

/// A live HTTP/1.1 connection: its request side, and where its task returns the socket.
pub(crate) struct Live {
    pub(crate) send: http1::SendRequest<ReqBody>,
    back: oneshot::Receiver<Returned>,
}

impl Live {
    /// Starts HTTP/1.1 on a connected socket (hyper's handshake is local: nothing is sent)
    /// and spawns the task that drives it.
    pub(crate) async fn start(io: H1Io) -> Result<Live, String> {
        let (send, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| errors::hyper_error(&e))?;
        let (tx, back) = oneshot::channel();
        tokio::spawn(async move {
            // Errors surface on the request side; the task only drives the socket. It ends
            // without shutting the socket down, so that a parking user can take it back.
            if let Ok(parts) = conn.without_shutdown().await {
                if let Err(parts) = tx.send(parts) {
                    // Nobody takes it back (the connection was dropped, not parked): close it
                    // the way hyper's own connection future would have.
                    let _ = parts.io.into_inner().shutdown().await;
                }
            }
        });
        Ok(Live { send, back })
    }

    /// Takes the socket back for parking, or `None` when the connection cannot be kept
    /// (closed, or not at a message boundary).
    pub(crate) async fn park(mut self) -> Option<Parked> {
        // Ready means hyper is idle, waiting for the next request: nothing is half-sent or
        // half-read. (Right after a response hyper may still be finishing its bookkeeping,
        // hence waiting rather than asking once.) An error means it closed.
        self.send.ready().await.ok()?;
        // With its request side gone, an idle connection task ends at once and sends the
        // socket back.
        drop(self.send);
        let parts = self.back.await.ok()?;
        if !parts.read_buf.is_empty() {
            return None;
        }
        let parked = match parts.io.into_inner() {
            // Out of tokio's reactor: its registration, and the finished task's waker in it,
            // are freed, and what is left is a file descriptor. (Whether the server closed it
            // is asked when it is resumed.)
            H1Io::Tcp(tcp) => Parked::Tcp(tcp.into_std().ok()?),
            H1Io::Wrapped(mut tls) => {
                // Also moves the socket's read waker from the finished task to this one.
                still_open(&mut tls).await.then_some(Parked::Tls(tls))?
            }
        };
        release_freed_memory();
        Some(parked)
    }
}

/// A parked connection's socket.
pub(crate) enum Parked {
    /// Plain TCP, out of tokio's reactor: a bare file descriptor.
    Tcp(std::net::TcpStream),
    /// TLS keeps its session, and with it the TCP stream's place in the reactor.
    Tls(Box<Watched>),
}

/// How long after a park the allocator is asked to give freed memory back: long enough
/// for a whole ramp of users to park first, short enough that idle users are soon cheap.
const TRIM_DELAY: Duration = Duration::from_secs(1);

/// Asks for one trim of the allocator's free memory, [`TRIM_DELAY`] from now, unless one is
/// already due. The trims run on a thread of their own (one per process, as the allocator
/// is), started on first use: a trim walks every arena under its lock, which is no work
/// for the runtime's threads, and the thread outlives any one runtime.
fn release_freed_memory() {
    static TRIMMER: OnceLock<Option<SyncSender<()>>> = OnceLock::new();
    if !trim::AVAILABLE {
        return;
    }
    let trimmer = TRIMMER.get_or_init(|| {
        // Room for one request: a full channel means a trim is due already.
        let (due, requests) = mpsc::sync_channel::<()>(1);
        let started = std::thread::Builder::new()
            .name("hopper-trim".to_string())
            .spawn(move || {
                while requests.recv().is_ok() {
                    std::thread::sleep(TRIM_DELAY);
                    // Parks from here on ask for the next trim: at most one a second.
                    while requests.try_recv().is_ok() {}
                    trim::trim();
                }
            });
        // Without the thread, memory is simply not trimmed.
        started.ok().map(|_| due)
    });
    if let Some(due) = trimmer {
        let _ = due.try_send(());
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod trim {
    /// glibc's allocator is in use (the default for Rust programs on GNU/Linux).
    pub(super) const AVAILABLE: bool = true;

    /// Returns the whole free pages of every arena to the system.
    pub(super) fn trim() {
        // SAFETY: malloc_trim only reorganises the allocator's own free lists; it takes the
        // arenas' locks itself and is safe to call from any thread at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod trim {
    /// Other allocators return memory by their own rules.
    pub(super) const AVAILABLE: bool = false;

    pub(super) fn trim() {}
}

/// A parked connection brought back to life for the next request, or `None` when the
/// server closed it (or sent something) while it was parked.
pub(crate) async fn resume(parked: Parked) -> Option<Live> {
    let io = match parked {
        Parked::Tcp(tcp) => {
            if !tcp_open(&tcp) {
                return None;
            }
            H1Io::Tcp(TcpStream::from_std(tcp).ok()?)
        }
        Parked::Tls(mut tls) => {
            if !still_open(&mut tls).await {
                return None;
            }
            H1Io::Wrapped(tls)
        }
    };
    Live::start(io).await.ok()
}

/// Whether a parked TCP socket is still open and silent: a non-blocking peek that would
/// block. (`into_std` leaves the socket non-blocking.) End of file, bytes no request asked
/// for (such as a server's `408` before it closes) or an error all mean it is finished.
fn tcp_open(tcp: &std::net::TcpStream) -> bool {
    matches!(tcp.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Polls a parked TLS stream once from the current task. Pending, the normal case, means
/// the server has neither closed it nor sent anything, and registers this task's waker in
/// place of the previous one. Anything else (end of file, bytes no request asked for, an
/// error) means the connection is finished. TLS records without application data (a TLS 1.3
/// session ticket) are absorbed by the TLS layer and still give pending.
async fn still_open(tls: &mut Watched) -> bool {
    poll_fn(|cx| {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        Poll::Ready(Pin::new(&mut *tls).poll_read(cx, &mut buf).is_pending())
    })
    .await
}
