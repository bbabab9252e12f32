//! Recording requests that are not HTTP: Locust's `events.request.fire` and
//! `events.request.measure` for custom protocols.
//!
//! Any code can time an operation and record it with a type and a name; it then appears in
//! the same statistics, tables and exit code as HTTP requests.
//!
//! ```no_run
//! # async fn demo() {
//! use hopper::request::measure;
//! let reply: Result<String, std::io::Error> =
//!     measure("TCP", "ping", 4, async { Ok::<_, std::io::Error>("pong".to_string()) }).await;
//! # }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

pub use hopper_stats::RequestRecord;

/// Records one request (Locust's `events.request.fire`). `error: None` is a success;
/// otherwise the text is what the failures table shows.
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

/// Times `operation` and records it (Locust's `events.request.measure`): an `Err` is
/// recorded as a failure with the error's text, and handed back unchanged.
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
    let started = Instant::now();
    let result = operation.await;
    let elapsed = started.elapsed();
    let error = result.as_ref().err().map(ToString::to_string);
    fire(
        request_type,
        name,
        Some(elapsed),
        response_length,
        error.as_deref(),
    );
    result
}
