//! Recording requests that are not HTTP: Locust's `events.request.fire` and
//! `events.request.measure`, for wrapping any client (a TCP protocol, Redis, SQL, gRPC).
//!
//! Whatever is recorded here appears in the same statistics, tables, reports and exit code
//! as HTTP requests, under its own request type (`TCP`, `REDIS`, …) and name.
//!
//! * [`measure`] times a call whose response length is known before it starts (or does not
//!   matter);
//! * [`measure_with`] times a call that reports its response length itself, once it has the
//!   answer: the common case when wrapping a client;
//! * [`fire`] records a request timed (or not timed) by other means.
//!
//! A call that returns `Err` is recorded as a failure whose text is the error's `Display`
//! (Locust records `repr(exception)`), cut to [`MAX_ERROR_CHARS`] characters because the text
//! becomes the failure's key. [`io_error`] and [`exception`] give socket errors and your own
//! errors the texts Locust would record, so failure tables read the same for every protocol.
//!
//! A measured call that never finishes — its task is dropped because the user was killed
//! (`-s` expired at the end of a run or when users are removed) — records nothing, the way a
//! killed HTTP request that has not been answered yet records nothing.
//!
//! ```no_run
//! # async fn demo(stream: &mut tokio::net::TcpStream) -> Result<(), std::io::Error> {
//! use hopper::request::measure_with;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let mut reply = [0u8; 64];
//! let read = measure_with("TCP", "PING", async {
//!     stream.write_all(b"PING\n").await?;
//!     let n = stream.read(&mut reply).await?;
//!     Ok::<_, std::io::Error>((n, n as u64)) // (value handed back, response length)
//! })
//! .await?;
//! # Ok(()) }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

pub use hopper_http::errors::{exception, io_error};
pub use hopper_stats::RequestRecord;

/// The longest failure text [`measure`] and [`measure_with`] record; longer texts end in
/// `...`. The text is the failure's key and a row of the failures table, so an error that
/// quotes a whole server reply must not make it unreadable.
pub const MAX_ERROR_CHARS: usize = 200;

/// Records one request (Locust's `events.request.fire`). `error: None` is a success;
/// otherwise the text is what the failures table shows, exactly as given.
/// `response_time: None` counts the request without a time (Locust's `num_none_requests`).
pub fn fire(
    request_type: &str,
    name: &str,
    response_time: Option<Duration>,
    response_length: u64,
    error: Option<&str>,
) {
    hopper_stats::record(&RequestRecord {
        request_type,
        name,
        response_time,
        response_length,
        error,
    });
}

/// Times `operation` and records it (Locust's `events.request.measure`) with a response
/// length known up front: an `Err` is recorded as a failure with the error's text and handed
/// back unchanged.
pub async fn measure<T, E, F>(
    request_type: &str,
    name: &str,
    response_length: u64,
    operation: F,
) -> Result<T, E>
where
    E: Display,
    F: Future<Output = Result<T, E>>,
{
    measure_with(request_type, name, async move {
        operation.await.map(|value| (value, response_length))
    })
    .await
}

/// Times `operation`, which yields its value together with the response length, and
/// records it (Locust's `events.request.measure` with `meta["response_length"]` set inside
/// the block). `Ok((value, length))` is a success of that length and gives back `value`; an
/// `Err` is a failure of length 0 with the error's text, handed back unchanged.
///
/// The clock runs from the first poll of `operation` to its end, so everything inside the
/// `async` block is timed and nothing outside it is. A dropped `operation` records nothing.
pub async fn measure_with<T, E, F>(request_type: &str, name: &str, operation: F) -> Result<T, E>
where
    E: Display,
    F: Future<Output = Result<(T, u64), E>>,
{
    let started = Instant::now();
    let result = operation.await;
    let elapsed = started.elapsed();
    match result {
        Ok((value, length)) => {
            fire(request_type, name, Some(elapsed), length, None);
            Ok(value)
        }
        Err(e) => {
            let text = e.to_string();
            let text = hopper_stats::text::clip_with(&text, MAX_ERROR_CHARS, "...");
            fire(request_type, name, Some(elapsed), 0, Some(&text));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopper_stats::StatsEntry;

    /// Runs `f` on a fresh runtime, then waits until what it recorded is in the global stats.
    fn run<F: Future<Output = ()>>(f: F) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f);
        assert!(hopper_stats::global().sync(Duration::from_secs(5)));
    }

    fn entry(request_type: &str, name: &str) -> StatsEntry {
        hopper_stats::global().lock().entries[&(name.to_string(), request_type.to_string())].clone()
    }

    fn errors_of(name: &str) -> Vec<(String, u64)> {
        let stats = hopper_stats::global().lock();
        let mut found: Vec<(String, u64)> = stats
            .errors
            .values()
            .filter(|e| e.name == name)
            .map(|e| (e.error.clone(), e.occurrences))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn measure_with_records_the_length_it_reports_and_hands_back_the_value() {
        run(async {
            let reply: Result<&str, std::io::Error> = measure_with("UNIT", "with ok", async {
                tokio::time::sleep(Duration::from_millis(15)).await;
                Ok(("PONG", 5))
            })
            .await;
            assert_eq!(reply.unwrap(), "PONG");
            let reply: Result<u8, std::io::Error> =
                measure_with("UNIT", "with ok", async { Ok((1, 7)) }).await;
            assert_eq!(reply.unwrap(), 1);
        });
        let e = entry("UNIT", "with ok");
        assert_eq!((e.num_requests, e.num_failures), (2, 0));
        assert_eq!(e.total_content_length, 12);
        // The sleep is inside the block, so it is timed.
        assert!(e.max_response_time >= 15.0, "{}", e.max_response_time);
    }

    #[test]
    fn a_failure_records_the_errors_text_and_length_zero() {
        run(async {
            let refused = std::io::Error::from_raw_os_error(111);
            let err: Result<(), std::io::Error> =
                measure_with("UNIT", "with err", async { Err(refused) }).await;
            assert_eq!(err.unwrap_err().raw_os_error(), Some(111));
            let err: Result<(), String> =
                measure_with("UNIT", "with err", async { Err("ERR not found".into()) }).await;
            assert_eq!(err.unwrap_err(), "ERR not found");
        });
        let e = entry("UNIT", "with err");
        assert_eq!((e.num_requests, e.num_failures), (2, 2));
        assert_eq!(e.total_content_length, 0);
        assert_eq!(
            errors_of("with err"),
            [
                ("Connection refused (os error 111)".to_string(), 1),
                ("ERR not found".to_string(), 1)
            ]
        );
    }

    #[test]
    fn measure_keeps_its_up_front_length_and_long_error_texts_are_cut() {
        run(async {
            let ok: Result<u32, String> = measure("UNIT", "up front", 40, async { Ok(3) }).await;
            assert_eq!(ok.unwrap(), 3);
            let long = "x".repeat(1000);
            let err: Result<u32, String> =
                measure("UNIT", "up front", 40, async { Err(long.clone()) }).await;
            // The caller gets the whole error back; only the recorded text is cut.
            assert_eq!(err.unwrap_err().len(), 1000);
        });
        let e = entry("UNIT", "up front");
        assert_eq!((e.num_requests, e.num_failures), (2, 1));
        assert_eq!(e.total_content_length, 40, "a failure records length 0");
        let errors = errors_of("up front");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, format!("{}...", "x".repeat(MAX_ERROR_CHARS)));
    }

    #[test]
    fn a_dropped_measurement_records_nothing() {
        run(async {
            let never = measure_with("UNIT", "dropped", async {
                std::future::pending::<Result<((), u64), String>>().await
            });
            assert!(tokio::time::timeout(Duration::from_millis(10), never)
                .await
                .is_err());
        });
        assert!(!hopper_stats::global()
            .lock()
            .entries
            .contains_key(&("dropped".to_string(), "UNIT".to_string())));
    }

    #[test]
    fn locust_texts_for_socket_errors_and_own_exceptions() {
        let reset = std::io::Error::from_raw_os_error(104);
        assert_eq!(
            io_error(&reset),
            "ConnectionResetError(104, 'Connection reset by peer')"
        );
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(
            io_error(&eof),
            "RemoteDisconnected('Remote end closed connection without response')"
        );
        assert_eq!(
            exception("ServerError", "not found"),
            "ServerError('not found')"
        );
        assert_eq!(exception("E", "it's"), "E(\"it's\")");
    }
}
