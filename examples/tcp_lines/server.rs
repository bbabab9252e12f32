//! The server side of the `tcp_lines` example: a tiny key-value store speaking a line
//! protocol on TCP, which counts what it serves so a load test can be checked against it.
//!
//! The protocol: one command per line, one reply line per command, UTF-8, `\n`-terminated,
//! at most [`MAX_LINE`] bytes a line.
//!
//! | command           | reply                                        |
//! |-------------------|----------------------------------------------|
//! | `PING`            | `PONG`                                       |
//! | `SET key value`   | `OK` (the value is the rest of the line)     |
//! | `GET key`         | `VALUE value`, or `ERR not found`            |
//! | anything else     | `ERR unknown command`, `ERR wrong arguments` |
//!
//! A server may close each connection after a fixed number of commands (as HTTP servers
//! limit keep-alive requests): it answers the last one, then shuts down its sending side, so
//! the client's next read ends at once. Commands that still arrive on such a connection get
//! no reply and are counted as `dropped`.
//!
//! The example runs one inside its own process when no `-H` is given; the integration tests
//! include this file to run one they can read the counts of.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest line either side accepts, without its `\n`.
pub const MAX_LINE: usize = 64 * 1024;

/// How long a connection the server has closed waits for the client to go away, counting
/// what it still sends.
const LINGER: Duration = Duration::from_secs(30);

/// What the server did with one kind of command.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCounts {
    /// Answered with anything but `ERR`.
    pub ok: u64,
    /// Answered with `ERR …`.
    pub errors: u64,
    /// Received after the server closed the connection: never answered.
    pub dropped: u64,
}

/// Everything the server counted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Connections accepted.
    pub connections: u64,
    /// Connections the server closed after its limit of commands.
    pub closed_by_server: u64,
    /// Per command word as received (`PING`, `SET`, `GET`; `other` for the rest).
    pub commands: BTreeMap<String, CommandCounts>,
}

#[derive(Default)]
struct Shared {
    counts: Mutex<Counts>,
    store: Mutex<HashMap<String, String>>,
    open: AtomicUsize,
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Runs one command line and returns its reply (without the newline).
    fn execute(&self, line: &str) -> String {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let reply = match (word, rest) {
            ("PING", "") => "PONG".to_string(),
            ("SET", args) => match args.split_once(' ') {
                Some((key, value)) if !key.is_empty() => {
                    store.insert(key.to_string(), value.to_string());
                    "OK".to_string()
                }
                _ => "ERR wrong arguments".to_string(),
            },
            ("GET", key) if !key.is_empty() && !key.contains(' ') => match store.get(key) {
                Some(value) => format!("VALUE {value}"),
                None => "ERR not found".to_string(),
            },
            ("PING" | "GET", _) => "ERR wrong arguments".to_string(),
            _ => "ERR unknown command".to_string(),
        };
        drop(store);
        let failed = reply.starts_with("ERR ");
        self.count(|c| {
            let e = c.commands.entry(command_word(word)).or_default();
            if failed {
                e.errors += 1;
            } else {
                e.ok += 1;
            }
        });
        reply
    }
}

/// The counting key of a command word: the known commands, or `other`.
fn command_word(word: &str) -> String {
    match word {
        "PING" | "SET" | "GET" => word.to_string(),
        _ => "other".to_string(),
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes and returns it without its `\n` (or `\r\n`),
/// with the number of bytes read. `Ok(None)` when the stream ends before a line starts; a
/// line cut short by the end of the stream is `UnexpectedEof`, one too long or not UTF-8 is
/// `InvalidData`.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> io::Result<Option<(String, usize)>> {
    let mut buf = Vec::new();
    let read = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_LINE {
            io::Error::new(io::ErrorKind::InvalidData, "line longer than 64 KiB")
        } else {
            io::Error::from(io::ErrorKind::UnexpectedEof)
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(|line| Some((line, read)))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not UTF-8"))
}

/// A running server with its own runtime (one thread), so it keeps serving while the load
/// test's runtime starts and stops. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// Listens on `addr` (e.g. `127.0.0.1:0`). With `commands_per_connection`, each
    /// connection is closed after answering that many commands.
    pub fn start(addr: &str, commands_per_connection: Option<u64>) -> io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("line-server")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::default());
        let listener = {
            // Registering the socket needs the server's runtime as the current one.
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            commands_per_connection,
        ));
        Ok(Server {
            addr,
            shared,
            runtime: Some(runtime),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has counted so far.
    pub fn counts(&self) -> Counts {
        self.shared
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until no connection is open (every client has gone and everything they sent
    /// is counted); false if some are still open after `timeout`.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while self.shared.open.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Not `drop`: that blocks, which is refused inside another runtime.
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, limit: Option<u64>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                shared.count(|c| c.connections += 1);
                shared.open.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    serve(stream, &shared, limit).await;
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // Out of file descriptors and the like: wait rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Serves one connection until the client closes it, sends something unreadable, or the
/// limit of commands is reached.
async fn serve(stream: TcpStream, shared: &Shared, limit: Option<u64>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut served = 0u64;
    loop {
        let reply = match read_line(&mut reader).await {
            Ok(Some((line, _))) => shared.execute(&line),
            Ok(None) => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                // The stream cannot be trusted any more: say why, then hang up.
                let _ = write.write_all(format!("ERR {e}\n").as_bytes()).await;
                return;
            }
            Err(_) => return,
        };
        if write
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        served += 1;
        if limit == Some(served) {
            break;
        }
    }
    shared.count(|c| c.closed_by_server += 1);
    let _ = write.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(Some((line, _))) = read_line(&mut reader).await {
            let word = line.split(' ').next().unwrap_or_default();
            shared.count(|c| c.commands.entry(command_word(word)).or_default().dropped += 1);
        }
    })
    .await;
}
