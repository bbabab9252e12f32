//! How many users are alive in this process and whether the ramp has finished: what a
//! rendezvous for "every user" waits on, and what a user may ask to end the whole test.
//!
//! The runner counts a user alive from the moment it spawns the user's task until the task
//! ends, whatever the way out (stopped, killed, `StopUser`, a failed `on_start`). Every change bumps a
//! version number on a watch channel, so a waiter re-checks its condition without missing a
//! change that happened between its check and its wait.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::LazyLock;
use tokio::sync::watch;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static SPAWNING_COMPLETE: AtomicBool = AtomicBool::new(false);
static CHANGES: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);
static QUIT: LazyLock<watch::Sender<Option<String>>> = LazyLock::new(|| watch::channel(None).0);

/// Users alive in this process now.
pub fn live_users() -> usize {
    LIVE.load(Ordering::Acquire)
}

/// True once the current ramp has reached its target (until the next ramp or stop).
pub fn spawning_complete() -> bool {
    SPAWNING_COMPLETE.load(Ordering::Acquire)
}

/// A receiver that changes whenever [`live_users`] or [`spawning_complete`] does.
pub fn subscribe() -> watch::Receiver<u64> {
    CHANGES.subscribe()
}

fn changed() {
    CHANGES.send_modify(|v| *v = v.wrapping_add(1));
}

/// Sets whether the ramp is complete (the runners do: a local runner at the end of its ramp,
/// a worker when its master says so).
pub fn set_spawning_complete(complete: bool) {
    if SPAWNING_COMPLETE.swap(complete, Ordering::AcqRel) != complete {
        changed();
    }
}

/// Counts one user alive while it exists.
pub(crate) struct LiveUser(());

impl LiveUser {
    pub(crate) fn new() -> LiveUser {
        LIVE.fetch_add(1, Ordering::AcqRel);
        changed();
        LiveUser(())
    }
}

impl Drop for LiveUser {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
        changed();
    }
}

/// Ends the whole test, as Locust's `environment.runner.quit()` does from a task: the
/// program stops its users, writes its results and exits (a worker says goodbye to its
/// master). The first reason given is the one logged.
pub fn quit_test(reason: impl Into<String>) {
    let reason = reason.into();
    QUIT.send_if_modified(|r| {
        if r.is_some() {
            return false;
        }
        *r = Some(reason);
        true
    });
}

/// Resolves with the reason once some code called [`quit_test`].
pub async fn quit_requested() -> String {
    let mut rx = QUIT.subscribe();
    let reason = match rx.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone().unwrap_or_default(),
        // The sender lives in a static: it is never dropped.
        Err(_) => return std::future::pending().await,
    };
    reason
}
