//! Hopper's engine: the user model, Locust's users dispatcher and the local runner.
//!
//! Load tests are written against this crate through the `hopper` facade
//! (`use hopper::prelude::*`): [`UserClass`] declares a kind of user, [`task!`] turns an
//! async function into a [`Task`], [`TaskSet`] groups tasks, and the wait-time functions
//! ([`between`], [`constant`], ...) pace users exactly as Locust's do.

pub mod control;
pub mod dispatch;
pub mod events;
pub mod feeder;
pub mod health;
pub mod panic_hook;
pub mod population;
pub mod rendezvous;
pub mod runner;
pub mod session;
pub mod task;
pub mod task_ratio;
pub mod timespan;
pub mod user;
mod user_loop;
pub mod wait;

pub use runner::{LocalRunner, Runner, RunnerObserver, RunnerOptions, RunnerState};
pub use session::{
    spawn_session, SessionGone, SessionHandle, SessionStatus, StopCause, SwarmRequest,
};
pub use task::{fail, interrupt, stop_user, BoxFuture, Task, TaskError, TaskResult, TaskSet};
pub use user::{AnyUserClass, User, UserClass};
pub use wait::{between, constant, constant_pacing, constant_throughput, poisson, WaitTime};
