//! Remembers where a panic happened so a panicking task is reported with its location.
//!
//! `catch_unwind` hands back only the panic's payload; the location is known only to the
//! panic hook, which runs on the panicking thread just before unwinding. The hook stores it
//! in a thread-local for the user loop to pick up, then calls the previous hook as usual.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    static LAST: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
    /// True while a user task is being polled: its panics are reported as task exceptions,
    /// so the default "thread panicked" message (and backtrace) would only repeat them.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook once per process; later calls do nothing.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                LAST.with(|l| *l.borrow_mut() = Some((loc.file().to_string(), loc.line())));
            }
            if !IN_TASK.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// The location of the latest panic on this thread, if the hook saw one.
pub(crate) fn take_last_location() -> Option<(String, u32)> {
    LAST.with(|l| l.borrow_mut().take())
}

/// Polls a user task with the panic hook's default output silenced (see `IN_TASK`).
pub(crate) struct Quiet<F>(pub F);

impl<F: Future + Unpin> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = IN_TASK.with(|t| t.replace(true));
        let result = Pin::new(&mut self.0).poll(cx);
        IN_TASK.with(|t| t.set(before));
        result
    }
}
