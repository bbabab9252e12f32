//! How the runner tells a user to stop: Locust's `stopping` state and greenlet kill.
//!
//! A waiting user stops at once on [`Signal::Stop`]; a user in a task finishes the task
//! first. [`Signal::Kill`] abandons the running task immediately (its `on_stop` still runs,
//! as on Locust's `GreenletExit`). Dropping the sender counts as a kill, so a user can never
//! outlive the runner that owns it.
//!
//! Every user holds one of these for its whole life, so the shared part is kept small: the
//! signal as one atomic byte and one [`Notify`] (one small allocation, about 64 bytes),
//! rather than a `tokio::sync::watch` channel, whose shared state is several times larger.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// The runner's wish for one user, in increasing order of urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    Run,
    Stop,
    Kill,
}

impl Signal {
    fn from_u8(v: u8) -> Signal {
        match v {
            0 => Signal::Run,
            1 => Signal::Stop,
            _ => Signal::Kill,
        }
    }
}

/// What the runner and the user share.
#[derive(Debug)]
struct Shared {
    signal: AtomicU8,
    /// Woken (all waiters) whenever the signal is raised.
    raised: Notify,
}

/// The runner's side: one per user. Dropping it raises [`Signal::Kill`].
#[derive(Debug)]
pub struct ControlHandle {
    shared: Arc<Shared>,
}

/// The user's side.
#[derive(Debug, Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

/// A linked pair for one new user.
pub fn control() -> (ControlHandle, Control) {
    let shared = Arc::new(Shared {
        signal: AtomicU8::new(Signal::Run as u8),
        raised: Notify::new(),
    });
    (
        ControlHandle {
            shared: shared.clone(),
        },
        Control { shared },
    )
}

impl ControlHandle {
    /// Raises the signal (never lowers it).
    pub fn send(&self, signal: Signal) {
        let previous = self.shared.signal.fetch_max(signal as u8, Ordering::SeqCst);
        if previous < signal as u8 {
            self.shared.raised.notify_waiters();
        }
    }
}

impl Drop for ControlHandle {
    /// A dropped runner reads as a kill.
    fn drop(&mut self) {
        self.send(Signal::Kill);
    }
}

impl Control {
    /// The current signal.
    pub fn signal(&self) -> Signal {
        Signal::from_u8(self.shared.signal.load(Ordering::SeqCst))
    }

    /// True once the user should stop at the next opportunity.
    pub fn stopping(&self) -> bool {
        self.signal() >= Signal::Stop
    }

    /// Resolves when the signal reaches `level`.
    pub async fn reached(&mut self, level: Signal) {
        loop {
            // Registered before the signal is read, so a raise in between is not missed.
            let raised = self.shared.raised.notified();
            tokio::pin!(raised);
            raised.as_mut().enable();
            if self.signal() >= level {
                return;
            }
            raised.await;
        }
    }
}
