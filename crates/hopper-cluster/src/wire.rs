//! Locust 2.47's wire format: the msgpack messages a master and its workers exchange over
//! ZeroMQ, and the payloads of the messages Hopper acts on.
//!
//! * [`Message`] is one ZeroMQ payload: the msgpack array `[type, data, node_id]` that Locust's
//!   `locust.rpc.protocol.Message` serializes. [`Message::encode`] writes it with Python
//!   msgpack's conventions, so a Hopper peer produces the very bytes a Locust peer would;
//!   [`Message::decode`] reads anything a Locust peer sends and rejects everything else with a
//!   [`WireError`] (it never panics, whatever the bytes).
//! * The typed payloads ([`Heartbeat`], [`Spawn`], [`SpawningComplete`], [`Ack`],
//!   [`ClientReady`], [`ExceptionReport`], [`Logs`], [`StatsReport`]) convert to and from the
//!   message's `data` value, as lenient as Locust is when reading (ints where floats are
//!   expected, nil where Locust tolerates it) and no more.
//! * [`StatsReport`] is the worker's `stats` message: every request entry serialized as
//!   Locust's 14-key dict, plus an optional Hopper extension (`"hopper_hdr"`) that carries the
//!   HDR histograms so a Hopper master can show exact precise percentiles over all workers.
//!
//! * [`FeedLease`] and [`FeedRows`] are Hopper's own messages (`hopper_feed_lease`,
//!   `hopper_feed_rows`) by which a worker leases rows of a queue feeder from a Hopper master.
//!
//! Message type names are in [`kind`]. Everything here is plain data conversion; sockets live in
//! the transport module.

mod codec;
mod control;
mod error;
mod fast;
mod feed;
mod fields;
mod hdr;
mod json;
mod message;
mod stats;

#[cfg(test)]
mod fixture_tests;

pub use codec::{decode_value, encode_value, special_object, SpecialObject};
pub use control::{
    client_ready_version, is_hopper_version, spawning_complete_for_worker,
    spawning_complete_user_count, Ack, ClientReady, ExceptionReport, Heartbeat, Logs, Spawn,
    SpawningComplete, VersionMatch, PROTOCOL_VERSION, WORKER_VERSION,
};
pub use error::WireError;
pub use fast::{decode_hot, decode_hot_at, read_hot, FlatReport, HotMessage, HotRead};
pub use feed::{FeedLease, FeedRows, FEED_LEASE, FEED_ROWS};
pub use hdr::{
    approximate_hdr_from_buckets, record_buckets, record_samples, HdrPayload, HdrSamples,
    HOPPER_HDR_KEY,
};
pub use json::{from_json, to_json};
pub use message::{kind, Message};
pub use stats::{entry_from_value, entry_to_value, error_from_value, error_to_value, StatsReport};

/// The largest ZeroMQ payload [`Message::decode`] accepts: 32 MiB.
///
/// Locust sets no limit. Its largest messages are `stats` reports: 1–2 KB per request name
/// with a full histogram (a few hundred buckets, a few seconds of per-second counts), so even
/// 10,000 distinct names in one 3-second report stay near 20 MB, and Hopper's HDR extension
/// adds a few bytes per distinct recorded value. 32 MiB leaves that headroom while bounding
/// what one corrupt or hostile frame can cost (see [`MAX_VALUES`]).
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// The most msgpack values (scalars, arrays, maps, map keys) one frame may hold: 8 Mi.
///
/// Each decoded value is a 40-byte `rmpv::Value`, so a frame costs at most 320 MiB however it
/// is built (containers reserve only what the remaining input can fill; without this bound a
/// 32 MiB frame of nils would take 1.3 GB). Real messages take two to eight bytes per value
/// (dense histograms about two), so only a report of more than about 16 MiB could reach it.
pub const MAX_VALUES: usize = MAX_FRAME_BYTES / 4;

/// The deepest nesting of arrays and maps [`Message::decode`] accepts: 1024, as Python's
/// msgpack unpacker (it fails with `StackError` one level deeper). Locust's own messages nest
/// at most five levels (`parsed_options` values inside a `spawn`). Decoding and encoding are
/// iterative; the bound protects code that recurses over a decoded value (`rmpv::Value`'s
/// `Drop`, `Clone`, `PartialEq`, `Debug`) from overflowing a thread's stack.
pub const MAX_DEPTH: usize = 1024;
