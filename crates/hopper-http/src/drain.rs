//! Letting a killed user's requests land: requests already on the wire finish and are
//! recorded, no new ones start.
//!
//! When a user is killed (stop timeout expired, or `-s 0`), its task is abandoned. A request
//! the target has already answered would then be served but never recorded, and the target's
//! count and Hopper's would disagree. So the runner first asks the client to [`Drain::close`]
//! (a `send` that has not started yet waits forever and is dropped with the task), waits
//! for [`Drain::settled`] (every request in flight has finished and been recorded), drops the
//! task, and [`Drain::reopen`]s the client so `on_stop` can still make requests.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    in_flight: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

/// Shared between a user's client and the loop that runs the user.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    state: Arc<State>,
}

/// Counts one request as in flight until dropped.
pub(crate) struct InFlight<'a> {
    state: &'a State,
}

impl Drain {
    /// Stops new requests from starting.
    pub fn close(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
    }

    /// Lets requests start again.
    pub fn reopen(&self) {
        self.state.closed.store(false, Ordering::SeqCst);
    }

    /// Resolves once no request is in flight.
    pub async fn settled(&self) {
        loop {
            let notified = self.state.idle.notified();
            if self.state.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Marks a request as started, or waits forever when the client is closed (the task
    /// holding this future is about to be dropped).
    pub(crate) async fn begin(&self) -> InFlight<'_> {
        if self.state.closed.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.track()
    }

    /// Marks a request as started even when the client is closed: for waiting on the
    /// answer to something already sent (a WebSocket receive), which must still land.
    pub(crate) fn track(&self) -> InFlight<'_> {
        self.state.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight { state: &self.state }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::SeqCst);
        // Only a closing drain waits; skip the wake-up on the hot path otherwise.
        if self.state.closed.load(Ordering::SeqCst) {
            self.state.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn settles_when_requests_finish_and_blocks_new_ones() {
        let drain = Drain::default();
        let guard = drain.begin().await;
        drain.close();
        let waiter = {
            let d = drain.clone();
            tokio::spawn(async move { d.settled().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(guard);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        // Closed: a new request never starts.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), drain.begin())
                .await
                .is_err()
        );
        drain.reopen();
        let _g = drain.begin().await;
    }
}
