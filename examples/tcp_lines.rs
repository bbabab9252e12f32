//! A custom protocol: users that speak a line-based key-value protocol over TCP (`PING`,
//! `SET key value`, `GET key`), each call timed and recorded as a request of type `TCP`.
//!
//! The recipe, as in Locust's "Testing other systems": wrap the protocol's client in a type
//! whose methods time each call with [`measure_with`] (name, response length, error text),
//! and give each user one in its state. `LineClient` below wraps `tokio::net::TcpStream`;
//! every connect is recorded too (`TCP connect`), and a connection that fails — refused,
//! reset, timed out, closed by the server — is a recorded failure after which the next call
//! connects again. The protocol and its server are in `tcp_lines/server.rs`.
//!
//! The Locust equivalent:
//!
//! ```python
//! import socket, time
//! from locust import User, task, between
//!
//! class ServerError(Exception): pass
//!
//! class LineClient:
//!     def __init__(self, address, request_event):
//!         self.address, self.request_event, self.sock = address, request_event, None
//!
//!     def call(self, name, command):
//!         if self.sock is None:
//!             with self.request_event.measure("TCP", "connect"):
//!                 self.sock = socket.create_connection(self.address, timeout=5)
//!                 self.file = self.sock.makefile("rb")
//!         with self.request_event.measure("TCP", name) as meta:
//!             try:
//!                 self.sock.sendall(command.encode() + b"\n")
//!                 line = self.file.readline()
//!                 if not line:
//!                     raise ConnectionError("the server closed the connection")
//!             except OSError:
//!                 self.sock = None
//!                 raise
//!             reply = line.decode().rstrip("\n")
//!             if reply.startswith("ERR "):
//!                 raise ServerError(reply[4:])
//!             meta["response_length"] = len(line)
//!             return reply
//!
//! class LineUser(User):
//!     wait_time = between(0.1, 0.3)
//!
//!     def on_start(self):
//!         host, port = self.host.removeprefix("tcp://").rsplit(":", 1)
//!         self.lines = LineClient((host, int(port)), self.environment.events.request)
//!         self.written = 0
//!
//!     @task(3)
//!     def write_then_read(self):
//!         key = f"user{id(self)}:{self.written}"
//!         self.lines.call("SET", f"SET {key} value {self.written}")
//!         self.written += 1
//!         self.lines.call("GET", f"GET {key}")
//!
//!     @task
//!     def ping(self):
//!         self.lines.call("PING", "PING")
//!
//!     @task
//!     def read_missing(self):
//!         self.lines.call("GET", f"GET missing:{id(self)}")  # ServerError('not found')
//! ```
//!
//! Run it with nothing else (it then serves the protocol itself on 127.0.0.1, closing each
//! connection after 100 commands, and logs what the server counted when the test ends):
//!
//! ```text
//! cargo run --example tcp_lines -- --headless -u 10 -r 10 -t 10s
//! ```
//!
//! or against a server of your own with `-H tcp://HOST:PORT`.

#[path = "tcp_lines/server.rs"]
mod server;

use hopper::prelude::*;
use hopper::request::{exception, io_error};
use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The request type of every call.
const TCP: &str = "TCP";

/// How long a connect, or a command and its reply, may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The in-process server closes each connection after this many commands, so the test
/// shows reconnects (as a server limiting keep-alive requests would).
const COMMANDS_PER_CONNECTION: u64 = 100;

// ---------------------------------------------------------------------------------------
// The client: every call timed and recorded
// ---------------------------------------------------------------------------------------

/// Why a call failed. Its `Display` is the failure text Hopper records, written as Locust
/// records the Python exception the same client would raise (`repr(exception)`), so the
/// failures table reads like Locust's.
#[derive(Debug)]
enum LineError {
    /// The socket failed: refused, reset, …
    Io(io::Error),
    /// The server closed the connection instead of replying.
    Closed,
    /// No reply within [`CALL_TIMEOUT`].
    Timeout,
    /// The server answered `ERR reason`.
    Server(String),
    /// The server answered something this client does not expect.
    Unexpected(String),
    /// The caller asked for something the protocol cannot carry (not sent, not recorded).
    Invalid(&'static str),
}

impl LineError {
    /// After these the connection cannot be trusted: the next call connects again.
    fn breaks_connection(&self) -> bool {
        !matches!(self, LineError::Server(_) | LineError::Invalid(_))
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            LineError::Io(e) => io_error(e),
            LineError::Closed => exception("ConnectionError", "the server closed the connection"),
            LineError::Timeout => exception("TimeoutError", "timed out"),
            LineError::Server(reason) => exception("ServerError", reason),
            LineError::Unexpected(reply) => {
                exception("ProtocolError", &format!("unexpected reply {reply:?}"))
            }
            LineError::Invalid(why) => exception("ValueError", why),
        };
        f.write_str(&text)
    }
}

impl std::error::Error for LineError {}

/// One user's connection to the line server, opened on first use and again after a
/// failure broke it.
struct LineClient {
    address: String,
    conn: Option<BufReader<TcpStream>>,
}

impl LineClient {
    fn new(address: String) -> LineClient {
        LineClient {
            address,
            conn: None,
        }
    }

    /// The open connection, connecting first (recorded as `TCP connect`) when there is none.
    async fn connection(&mut self) -> Result<&mut BufReader<TcpStream>, LineError> {
        if self.conn.is_none() {
            let address = self.address.as_str();
            let stream = measure(TCP, "connect", 0, async {
                match tokio::time::timeout(CALL_TIMEOUT, TcpStream::connect(address)).await {
                    Ok(Ok(stream)) => Ok(stream),
                    Ok(Err(e)) => Err(LineError::Io(e)),
                    Err(_) => Err(LineError::Timeout),
                }
            })
            .await?;
            // One small write per command: do not let Nagle hold it back.
            stream.set_nodelay(true).map_err(LineError::Io)?;
            self.conn = Some(BufReader::new(stream));
        }
        Ok(self.conn.as_mut().expect("connected just above"))
    }

    /// Sends `command` and returns the reply line, recorded as `TCP name` with the reply's
    /// length (its bytes, newline included); `ERR …` replies and broken connections are
    /// recorded failures.
    async fn call(&mut self, name: &str, command: &str) -> Result<String, LineError> {
        let conn = self.connection().await?;
        let result = measure_with(TCP, name, async {
            match tokio::time::timeout(CALL_TIMEOUT, exchange(conn, command)).await {
                Ok(result) => result,
                Err(_) => Err(LineError::Timeout),
            }
        })
        .await;
        if let Err(e) = &result {
            if e.breaks_connection() {
                self.conn = None;
            }
        }
        result
    }

    /// `PING`, which must answer `PONG`.
    async fn ping(&mut self) -> Result<(), LineError> {
        match self.call("PING", "PING").await?.as_str() {
            "PONG" => Ok(()),
            other => Err(LineError::Unexpected(other.to_string())),
        }
    }

    /// `SET key value`.
    async fn set(&mut self, key: &str, value: &str) -> Result<(), LineError> {
        check_key(key)?;
        if value.contains(['\n', '\r']) {
            return Err(LineError::Invalid("a value cannot contain a line break"));
        }
        match self
            .call("SET", &format!("SET {key} {value}"))
            .await?
            .as_str()
        {
            "OK" => Ok(()),
            other => Err(LineError::Unexpected(other.to_string())),
        }
    }

    /// `GET key`: the value, or a recorded `ServerError('not found')`.
    async fn get(&mut self, key: &str) -> Result<String, LineError> {
        check_key(key)?;
        let reply = self.call("GET", &format!("GET {key}")).await?;
        match reply.strip_prefix("VALUE ") {
            Some(value) => Ok(value.to_string()),
            None => Err(LineError::Unexpected(reply)),
        }
    }
}

fn check_key(key: &str) -> Result<(), LineError> {
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(LineError::Invalid("a key must be a non-empty word"));
    }
    Ok(())
}

/// Writes one command and reads its reply: `Ok((reply, length))` for [`measure_with`].
async fn exchange(
    conn: &mut BufReader<TcpStream>,
    command: &str,
) -> Result<(String, u64), LineError> {
    conn.get_mut()
        .write_all(format!("{command}\n").as_bytes())
        .await
        .map_err(LineError::Io)?;
    match server::read_line(conn).await {
        Ok(Some((reply, length))) => match reply.strip_prefix("ERR ") {
            Some(reason) => Err(LineError::Server(reason.to_string())),
            None => Ok((reply, length as u64)),
        },
        Ok(None) => Err(LineError::Closed),
        Err(e) => Err(LineError::Io(e)),
    }
}

// ---------------------------------------------------------------------------------------
// Where to connect: -H tcp://HOST:PORT, or a server in this process
// ---------------------------------------------------------------------------------------

/// The server this process starts when no `-H` is given (on first use).
static LOCAL_SERVER: OnceLock<Result<server::Server, String>> = OnceLock::new();

fn local_server() -> Result<&'static server::Server, String> {
    LOCAL_SERVER
        .get_or_init(|| {
            let s = server::Server::start("127.0.0.1:0", Some(COMMANDS_PER_CONNECTION))
                .map_err(|e| format!("cannot start the line server on 127.0.0.1: {e}"))?;
            tracing::info!(
                target: "tcp_lines",
                "No -H tcp://HOST:PORT given: serving the line protocol on {}",
                s.addr()
            );
            Ok(s)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `HOST:PORT` from `tcp://HOST:PORT` (a trailing `/` allowed).
fn tcp_address(host: &str) -> Result<String, String> {
    let address = host
        .strip_prefix("tcp://")
        .map(|a| a.strip_suffix('/').unwrap_or(a))
        .filter(|a| !a.is_empty() && !a.contains(['/', '?', '#']))
        .ok_or_else(|| format!("-H must be tcp://HOST:PORT, got {host:?}"))?;
    match address.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(address.to_string())
        }
        _ => Err(format!("-H {host:?} has no port: use tcp://HOST:PORT")),
    }
}

// ---------------------------------------------------------------------------------------
// The users
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct LineUser {
    lines: Option<LineClient>,
    /// Keys written so far (each write uses a new key).
    written: u64,
}

/// `on_start`: a client for the server (it connects on its first call): `-H tcp://HOST:PORT`
/// (checked at start-up by the `init` listener in `main`), or the in-process server.
async fn open_client(user: &mut User<LineUser>) -> TaskResult {
    let address = match user.host() {
        Some(host) => tcp_address(host).map_err(TaskError::failed)?,
        None => local_server()
            .map_err(TaskError::failed)?
            .addr()
            .to_string(),
    };
    user.lines = Some(LineClient::new(address));
    Ok(())
}

fn client(user: &mut User<LineUser>) -> Result<&mut LineClient, TaskError> {
    user.lines
        .as_mut()
        .ok_or_else(|| TaskError::failed("on_start did not open a client"))
}

/// Writes a new key and reads it back. A failed call is already recorded; the task just
/// ends. A value read back wrong is a failure of the task.
async fn write_then_read(user: &mut User<LineUser>) -> TaskResult {
    let key = format!("user{}:{}", user.id(), user.written);
    let value = format!("value {} of user {}", user.written, user.id());
    let lines = client(user)?;
    if lines.set(&key, &value).await.is_err() {
        return Ok(());
    }
    let read = lines.get(&key).await;
    user.written += 1;
    match read {
        Ok(got) if got != value => fail(format!("GET {key} returned {got:?}, not {value:?}")),
        _ => Ok(()),
    }
}

async fn ping(user: &mut User<LineUser>) -> TaskResult {
    let _ = client(user)?.ping().await;
    Ok(())
}

/// Reads a key nobody writes: the server answers `ERR not found`, recorded as a failure
/// of `TCP GET` with the text `ServerError('not found')`.
async fn read_missing(user: &mut User<LineUser>) -> TaskResult {
    let key = format!("missing:user{}", user.id());
    let _ = client(user)?.get(&key).await;
    Ok(())
}

fn main() {
    // A host that is not tcp://HOST:PORT stops the program before the test (exit code 1).
    hopper::events().init.add(|init| match &init.env.host {
        Some(host) => tcp_address(host).map(drop).map_err(Into::into),
        None => Ok(()),
    });
    let code = Hopper::new()
        .user(
            UserClass::new("LineUser", LineUser::default)
                .wait_time(between(0.1, 0.3))
                .on_start(hook!(open_client))
                .task(task!(write_then_read, 3))
                .task(task!(ping))
                .task(task!(read_missing)),
        )
        .run(std::env::args_os().collect());
    if let Some(Ok(server)) = LOCAL_SERVER.get() {
        // The users are gone; let the server count what they sent last.
        server.wait_idle(Duration::from_secs(5));
        let counts = serde_json::to_string(&server.counts()).unwrap_or_default();
        tracing::info!(target: "tcp_lines", "Line server counts: {counts}");
    }
    std::process::exit(code)
}
