//! A custom protocol through a third-party client: users that talk to Redis with the
//! `redis` crate, each command timed and recorded as a request of type `REDIS`, named by
//! its command (`SET`, `GET`, `INCR`, `LPUSH`; the connect as `connect`).
//!
//! The recipe is the same as for any client (see `docs/custom-protocols.md`): a small
//! wrapper, `KvClient` below, runs each command inside [`measure_with`], which times it and
//! records its name, the size of the reply and, for an error, the error's text. A
//! connection the server drops is a recorded failure, and the next command connects again.
//!
//! One task fails on purpose: `LPUSH` on a key that holds a string, which Redis refuses with
//! `WRONGTYPE`, so the failures table and the exit code (1) show how errors are recorded.
//!
//! The Locust equivalent, with `redis-py`:
//!
//! ```python
//! import redis
//! from locust import User, task, between
//!
//! class KvUser(User):
//!     wait_time = between(0.1, 0.3)
//!
//!     def command(self, name, *args):
//!         with self.environment.events.request.measure("REDIS", name) as meta:
//!             reply = self.redis.execute_command(*args)
//!             meta["response_length"] = len(reply) if isinstance(reply, bytes) else 0
//!             return reply
//!
//!     def on_start(self):
//!         with self.environment.events.request.measure("REDIS", "connect"):
//!             self.redis = redis.Redis.from_url(self.host)
//!             self.redis.ping()
//!         self.written = 0
//!         self.command("SET", "SET", f"user:{id(self)}", "a string")
//!
//!     @task(3)
//!     def write_then_read(self):
//!         key = f"item:{id(self)}:{self.written}"
//!         self.command("SET", "SET", key, f"value {self.written}")
//!         self.written += 1
//!         self.command("GET", "GET", key)
//!
//!     @task(2)
//!     def count_visit(self):
//!         self.command("INCR", "INCR", "visits")
//!
//!     @task
//!     def push_to_a_string(self):
//!         self.command("LPUSH", "LPUSH", f"user:{id(self)}", "x")  # WRONGTYPE
//! ```
//!
//! Run it against a local Redis (`redis-server` from Debian's package of that name):
//!
//! ```text
//! redis-server --port 6379 --save '' --appendonly no &
//! cargo run --example redis_kv -- -H redis://127.0.0.1:6379 --headless -u 10 -r 10 -t 10s
//! ```
//!
//! Without `-H` it connects to `redis://127.0.0.1:6379`.

use hopper::prelude::*;
use hopper::request::{exception, io_error};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, RedisError, Value};
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The request type of every command.
const REDIS: &str = "REDIS";

/// Where to connect without `-H`.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Connect and reply timeouts. The crate's defaults (1 s, 0.5 s) would turn a slow moment
/// of a busy machine into failures that are not the server's.
const TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// The client: every command timed and recorded
// ---------------------------------------------------------------------------------------

/// A Redis error, displayed as the failure text Locust records for the same error with
/// redis-py: `ResponseError('WRONGTYPE Operation against a key …')` for an error reply, the
/// socket error in Python's words (`ConnectionRefusedError(111, 'Connection refused')`),
/// and the crate's own text for anything else.
#[derive(Debug)]
struct KvError(RedisError);

impl From<RedisError> for KvError {
    fn from(e: RedisError) -> KvError {
        KvError(e)
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        if let Some(code) = e.code() {
            let reply = match e.detail() {
                Some(detail) => format!("{code} {detail}"),
                None => code.to_string(),
            };
            return f.write_str(&exception("ResponseError", &reply));
        }
        match socket_error(e) {
            Some(io) => f.write_str(&io_error(io)),
            None => e.fmt(f),
        }
    }
}

impl Error for KvError {}

/// The socket error under a Redis error, if that is what it is. The crate keeps it behind
/// an `Arc`, so both layers are looked at.
fn socket_error(e: &RedisError) -> Option<&std::io::Error> {
    let source = e.source()?;
    source.downcast_ref::<std::io::Error>().or_else(|| {
        source
            .downcast_ref::<Arc<dyn Error + Send + Sync>>()
            .and_then(|inner| inner.downcast_ref::<std::io::Error>())
    })
}

/// One user's Redis connection, opened on first use and again after the server dropped it.
#[derive(Default)]
struct KvClient {
    /// Set in `on_start` from the user's host.
    client: Option<redis::Client>,
    conn: Option<MultiplexedConnection>,
}

/// The Redis URL from `-H`, or the default; a bad URL is refused at start-up by the `init`
/// listener in `main`.
fn redis_client(host: Option<&str>) -> Result<redis::Client, String> {
    let url = host.unwrap_or(DEFAULT_URL);
    redis::Client::open(url).map_err(|e| format!("-H {url:?} is not a usable Redis URL: {e}"))
}

impl KvClient {
    /// The open connection, connecting first (recorded as `REDIS connect`) when there is none.
    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, KvError> {
        if self.conn.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT));
            let Some(client) = &self.client else {
                return Err(KvError(RedisError::from((
                    redis::ErrorKind::Client,
                    "no client: on_start did not run",
                ))));
            };
            let conn = measure(REDIS, "connect", 0, async {
                Ok::<_, KvError>(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            })
            .await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected just above"))
    }

    /// Runs `cmd`, recorded as `REDIS name` with the size of the reply (see [`reply_size`]);
    /// an error reply or a failed connection is a recorded failure with the error's text.
    async fn query<T: FromRedisValue>(&mut self, name: &str, cmd: &Cmd) -> Result<T, KvError> {
        let conn = self.connection().await?;
        let result = measure_with(REDIS, name, async {
            let reply: Value = cmd.query_async(conn).await?;
            let size = reply_size(&reply);
            let value = redis::from_redis_value(reply).map_err(RedisError::from)?;
            Ok::<_, KvError>((value, size))
        })
        .await;
        if let Err(KvError(e)) = &result {
            if e.is_unrecoverable_error() || e.is_connection_dropped() {
                self.conn = None;
            }
        }
        result
    }
}

/// The response length of a reply: the bytes of its strings (a bulk string's value, `OK`
/// for a status), 0 for numbers and nil.
fn reply_size(reply: &Value) -> u64 {
    match reply {
        Value::BulkString(bytes) => bytes.len() as u64,
        Value::SimpleString(text) => text.len() as u64,
        Value::Okay => 2,
        Value::Array(items) | Value::Set(items) => items.iter().map(reply_size).sum(),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------
// The users
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct KvUser {
    redis: KvClient,
    /// Keys written so far (each write uses a new key).
    written: u64,
}

/// `on_start`: the user's own string key, which `push_to_a_string` then misuses. A failed
/// SET is recorded; the tasks connect again as they need.
async fn create_user_key(user: &mut User<KvUser>) -> TaskResult {
    user.redis.client = Some(redis_client(user.host()).map_err(TaskError::failed)?);
    let key = format!("user:{}", user.id());
    let _ = user
        .redis
        .query::<()>("SET", redis::cmd("SET").arg(&key).arg("a string"))
        .await;
    Ok(())
}

/// Writes a new key and reads it back; a value read back wrong fails the task. A failed
/// command is already recorded: the task just ends.
async fn write_then_read(user: &mut User<KvUser>) -> TaskResult {
    let key = format!("item:{}:{}", user.id(), user.written);
    let value = format!("value {}", user.written);
    let kv = &mut user.state.redis;
    if kv
        .query::<()>("SET", redis::cmd("SET").arg(&key).arg(&value))
        .await
        .is_err()
    {
        return Ok(());
    }
    user.state.written += 1;
    match kv
        .query::<Option<String>>("GET", redis::cmd("GET").arg(&key))
        .await
    {
        Ok(got) if got.as_deref() != Some(value.as_str()) => {
            fail(format!("GET {key} returned {got:?}, not {value:?}"))
        }
        _ => Ok(()),
    }
}

async fn count_visit(user: &mut User<KvUser>) -> TaskResult {
    let _ = user
        .redis
        .query::<i64>("INCR", redis::cmd("INCR").arg("visits"))
        .await;
    Ok(())
}

/// Fails by design: Redis answers `WRONGTYPE Operation against a key holding the wrong kind
/// of value`, recorded as a failure of `REDIS LPUSH`.
async fn push_to_a_string(user: &mut User<KvUser>) -> TaskResult {
    let key = format!("user:{}", user.id());
    let _ = user
        .redis
        .query::<i64>("LPUSH", redis::cmd("LPUSH").arg(&key).arg("x"))
        .await;
    Ok(())
}

fn main() {
    // A host that is not a Redis URL stops the program before the test (exit code 1).
    hopper::events().init.add(|init| {
        redis_client(init.env.host.as_deref())
            .map(drop)
            .map_err(Into::into)
    });
    Hopper::new()
        .user(
            UserClass::new("KvUser", KvUser::default)
                .wait_time(between(0.1, 0.3))
                .on_start(hook!(create_user_key))
                .task(task!(write_then_read, 3))
                .task(task!(count_visit, 2))
                .task(task!(push_to_a_string)),
        )
        .main()
}
