//! How the runner tells a user to stop: Locust's `stopping` state and greenlet kill.
//!
//! A waiting user stops at once on [`Signal::Stop`]; a user in a task finishes the task
//! first. [`Signal::Kill`] abandons the running task immediately (its `on_stop` still runs,
//! as on Locust's `GreenletExit`). Dropping the sender counts as a kill, so a user can never
//! outlive the runner that owns it.

use tokio::sync::watch;

/// The runner's wish for one user, in increasing order of urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    Run,
    Stop,
    Kill,
}

/// The runner's side: one per user.
#[derive(Debug)]
pub struct ControlHandle {
    tx: watch::Sender<Signal>,
}

/// The user's side.
#[derive(Debug, Clone)]
pub struct Control {
    rx: watch::Receiver<Signal>,
}

/// A linked pair for one new user.
pub fn control() -> (ControlHandle, Control) {
    let (tx, rx) = watch::channel(Signal::Run);
    (ControlHandle { tx }, Control { rx })
}

impl ControlHandle {
    /// Raises the signal (never lowers it).
    pub fn send(&self, signal: Signal) {
        self.tx.send_if_modified(|s| {
            let raise = signal > *s;
            if raise {
                *s = signal;
            }
            raise
        });
    }
}

impl Control {
    /// The current signal (a dropped runner reads as a kill).
    pub fn signal(&self) -> Signal {
        if self.rx.has_changed().is_err() {
            return Signal::Kill;
        }
        *self.rx.borrow()
    }

    /// True once the user should stop at the next opportunity.
    pub fn stopping(&self) -> bool {
        self.signal() >= Signal::Stop
    }

    /// Resolves when the signal reaches `level`.
    pub async fn reached(&mut self, level: Signal) {
        // An error means the sender is gone: treat as reached.
        let _ = self.rx.wait_for(|s| *s >= level).await;
    }
}
