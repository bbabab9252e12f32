//! Errors outside tasks, which Locust counts as unhandled greenlet exceptions.
//!
//! A failing user `on_stop` or a user that died of a panic outside its tasks is not a task
//! exception (nothing is recorded in the statistics), but Locust remembers that it happened
//! and exits with code 2 when no request failed. This counter carries that fact to the exit
//! code.

use std::sync::atomic::{AtomicUsize, Ordering};

static UNHANDLED: AtomicUsize = AtomicUsize::new(0);

/// Notes one unhandled error (already logged by the caller).
pub fn note_unhandled() {
    UNHANDLED.fetch_add(1, Ordering::Relaxed);
}

/// How many unhandled errors this process has seen.
pub fn unhandled_count() -> usize {
    UNHANDLED.load(Ordering::Relaxed)
}
