//! Hopper's master/worker mode, speaking Locust 2.47's wire protocol (ZeroMQ + msgpack), so
//! Hopper workers join Locust masters and Locust workers join Hopper masters.
//!
//! * [`wire`]: the messages and their msgpack encoding, byte-compatible with Locust's;
//! * [`transport`]: the ZeroMQ ROUTER (master) and DEALER (worker) sockets;
//! * [`master`]: hands users to workers with Locust's dispatcher, merges their statistics,
//!   tracks them by heartbeat;
//! * [`worker`]: runs the users a master asks for and reports back, reconnecting by itself.

pub mod master;
mod proc_stats;
pub mod transport;
pub mod wire;
pub mod worker;

pub use master::{MasterOptions, MasterRunner, MasterView};
pub use worker::{run_worker, WorkerExit, WorkerOptions};
