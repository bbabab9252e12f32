//! The last log lines, for `GET /logs` (Locust keeps the last 500 formatted lines).
//!
//! The logging setup writes every formatted line here as well as to stderr or the log file,
//! so the UI's Logs tab shows exactly what the terminal shows.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// How many lines are kept (Locust's `LOGGING_MAX_LINES`-style cap for the web UI).
pub const MAX_LOG_LINES: usize = 500;

/// Longer lines are cut, so the buffer stays small whatever a message carries.
pub const MAX_LINE_CHARS: usize = 2000;

/// A bounded, shared buffer of formatted log lines.
#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: Mutex<VecDeque<String>>,
}

impl LogBuffer {
    /// An empty buffer.
    pub fn new() -> LogBuffer {
        LogBuffer::default()
    }

    /// Adds formatted text; each line (without its line break) becomes one entry, the oldest
    /// dropped beyond [`MAX_LOG_LINES`].
    pub fn push(&self, text: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        for line in text.lines().filter(|l| !l.is_empty()) {
            if lines.len() == MAX_LOG_LINES {
                lines.pop_front();
            }
            lines.push_back(hopper_stats::text::clip(line, MAX_LINE_CHARS).into_owned());
        }
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_one_entry_each() {
        let buf = LogBuffer::new();
        buf.push("first\nsecond\n");
        for i in 0..MAX_LOG_LINES {
            buf.push(&format!("line {i}\n"));
        }
        let lines = buf.lines();
        assert_eq!(lines.len(), MAX_LOG_LINES);
        assert_eq!(lines[0], "line 0");
        assert_eq!(
            lines[MAX_LOG_LINES - 1],
            format!("line {}", MAX_LOG_LINES - 1)
        );
    }
}
