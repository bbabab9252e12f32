//! Remembers where a panic happened so a panicking task is reported with its location.
//!
//! `catch_unwind` hands back only the panic's payload; the location is known only to the
//! panic hook, which runs on the panicking thread just before unwinding. The hook stores it
//! in a thread-local for the user loop to pick up, then calls the previous hook as usual.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
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
            previous(info);
        }));
    });
}

/// The location of the latest panic on this thread, if the hook saw one.
pub(crate) fn take_last_location() -> Option<(String, u32)> {
    LAST.with(|l| l.borrow_mut().take())
}
