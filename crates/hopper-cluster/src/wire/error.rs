//! The error of every decoding step: a frame that is not msgpack, msgpack that is not a Locust
//! message, or a message whose data does not have the shape its type needs.

use std::fmt;

/// What was wrong with bytes or a value received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The frame is longer than [`super::MAX_FRAME_BYTES`].
    FrameTooLarge {
        /// The frame's length in bytes.
        len: usize,
    },
    /// The bytes are not one well-formed msgpack value.
    Msgpack {
        /// Byte offset in the frame where decoding failed.
        offset: usize,
        /// What was found there.
        problem: String,
    },
    /// Well-formed msgpack that is not a Locust message `[type, data, node_id]`.
    NotAMessage(String),
    /// A message's data (or a part of it) does not have the shape Locust gives it.
    Payload {
        /// What was being read, e.g. `heartbeat data` or `stats data`.
        what: &'static str,
        /// Where inside it, e.g. `stats[2].num_requests`; empty for the data itself.
        at: String,
        /// What was wrong there.
        problem: String,
    },
}

impl WireError {
    /// A payload error at `at` (empty for the whole value).
    pub(crate) fn payload(
        what: &'static str,
        at: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        WireError::Payload {
            what,
            at: at.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::FrameTooLarge { len } => write!(
                f,
                "frame of {len} bytes is larger than the {} bytes a message may have",
                super::MAX_FRAME_BYTES
            ),
            WireError::Msgpack { offset, problem } => {
                write!(f, "invalid msgpack at byte {offset}: {problem}")
            }
            WireError::NotAMessage(problem) => write!(
                f,
                "not a Locust message (expected the array [type, data, node_id]): {problem}"
            ),
            WireError::Payload { what, at, problem } if at.is_empty() => {
                write!(f, "invalid {what}: {problem}")
            }
            WireError::Payload { what, at, problem } => {
                write!(f, "invalid {what} at `{at}`: {problem}")
            }
        }
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_was_wrong() {
        assert_eq!(
            WireError::FrameTooLarge { len: 40_000_000 }.to_string(),
            "frame of 40000000 bytes is larger than the 33554432 bytes a message may have"
        );
        assert_eq!(
            WireError::Msgpack {
                offset: 3,
                problem: "the reserved marker 0xc1".into()
            }
            .to_string(),
            "invalid msgpack at byte 3: the reserved marker 0xc1"
        );
        assert_eq!(
            WireError::payload(
                "heartbeat data",
                "current_cpu_usage",
                "expected a number, got \"x\""
            )
            .to_string(),
            "invalid heartbeat data at `current_cpu_usage`: expected a number, got \"x\""
        );
        assert_eq!(
            WireError::payload("ack data", "", "expected a map, got nil").to_string(),
            "invalid ack data: expected a map, got nil"
        );
    }
}
