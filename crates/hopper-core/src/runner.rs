//! The local runner: starts and stops users as Locust's `LocalRunner` does.
//!
//! A test starts from `ready` or `stopped` by clearing the statistics and filtering tasks by
//! tags; the [`UsersDispatcher`] then says, iteration by iteration, how many users of each
//! class should be running, and the runner spawns the missing ones and retires the surplus
//! (newest first). Retiring honours `--stop-timeout`: waiting users stop at once, busy users
//! may finish their task until the timeout, then they are killed; `on_stop` always runs.
//! The runner fires `test_start`, `spawning_complete`, `test_stopping` and `test_stop`
//! ([`crate::events`]) where Locust's does.

use crate::control::{control, ControlHandle, Signal};
use crate::dispatch::{UserClassSpec, UsersDispatcher};
use crate::events::{environment, events, SpawningComplete};
use crate::population;
use crate::user::{AnyUserClass, SpawnUser};
use futures_util::FutureExt;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The single pseudo-worker a local runner dispatches to (as Locust's LocalRunner does).
const LOCAL: &str = "local";

/// How long a killed user may take to end: its requests already on the wire get
/// `user_loop::KILL_REQUEST_GRACE`, then its `on_stop` this much more.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// What the runner needs besides the classes.
#[derive(Debug, Clone, Default)]
pub struct RunnerOptions {
    /// `-H`: replaces every class's host when set.
    pub host: Option<String>,
    /// `-s`: how long busy users may finish their task when stopped.
    pub stop_timeout: Duration,
    /// `-T`: only tasks with one of these tags run.
    pub tags: Option<BTreeSet<String>>,
    /// `-E`: tasks with any of these tags never run.
    pub exclude_tags: Option<BTreeSet<String>>,
    /// `--reset-stats`: reset statistics when spawning completes.
    pub reset_stats: bool,
}

/// Runner states with Locust's names (`Stopping` is a master's, `Cleanup` a local runner's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerState {
    Ready,
    Spawning,
    Running,
    Cleanup,
    Stopping,
    Stopped,
}

impl fmt::Display for RunnerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunnerState::Ready => "ready",
            RunnerState::Spawning => "spawning",
            RunnerState::Running => "running",
            RunnerState::Cleanup => "cleanup",
            RunnerState::Stopping => "stopping",
            RunnerState::Stopped => "stopped",
        })
    }
}

/// Called whenever the runner's state or user counts change (the session publishes them).
pub type RunnerObserver = Box<dyn Fn(RunnerState, &BTreeMap<String, usize>) + Send + Sync>;

/// What a session drives: the local runner, or a master that hands users to workers.
pub trait Runner: Send + 'static {
    /// Ramps to `user_count` at `spawn_rate` from what runs now (a new test from ready or
    /// stopped). Dropping the future mid-ramp leaves what was started so far.
    fn start(&mut self, user_count: u32, spawn_rate: f64) -> impl Future<Output = ()> + Send;
    /// Stops every user and waits until they have ended.
    fn stop(&mut self) -> impl Future<Output = ()> + Send;
    /// Locust's state.
    fn state(&self) -> RunnerState;
    /// Publishes state and counts again (users may have stopped by themselves).
    fn refresh(&mut self);
    /// Host for users started from now on (`None`/empty: class hosts).
    fn set_host(&mut self, host: Option<&str>);
    /// Every class given to the runner.
    fn all_classes(&self) -> &[Arc<dyn AnyUserClass>];
    /// Registers the state/count observer.
    fn set_observer(&mut self, observer: RunnerObserver);
    /// Stops for good: the process is ending. A local runner just stops; a master tells its
    /// workers to quit (without a stop first, as Locust does, so none is left out) and waits
    /// for their final reports.
    fn quit(&mut self) -> impl Future<Output = ()> + Send {
        self.stop()
    }
}

impl Runner for LocalRunner {
    fn start(&mut self, user_count: u32, spawn_rate: f64) -> impl Future<Output = ()> + Send {
        LocalRunner::start(self, user_count, spawn_rate)
    }
    fn stop(&mut self) -> impl Future<Output = ()> + Send {
        LocalRunner::stop(self)
    }
    fn state(&self) -> RunnerState {
        self.state
    }
    fn refresh(&mut self) {
        self.publish();
    }
    fn set_host(&mut self, host: Option<&str>) {
        LocalRunner::set_host(self, host);
    }
    fn all_classes(&self) -> &[Arc<dyn AnyUserClass>] {
        &self.all_classes
    }
    fn set_observer(&mut self, observer: RunnerObserver) {
        LocalRunner::set_observer(self, observer);
    }
}

struct RunningUser {
    control: ControlHandle,
    join: JoinHandle<()>,
}

/// Runs users in this process.
pub struct LocalRunner {
    all_classes: Vec<Arc<dyn AnyUserClass>>,
    classes: Vec<Arc<dyn AnyUserClass>>,
    options: RunnerOptions,
    users: BTreeMap<String, Vec<RunningUser>>,
    retiring: Vec<JoinHandle<bool>>,
    dispatcher: Option<UsersDispatcher>,
    state: RunnerState,
    next_id: u64,
    host_override: Option<Arc<str>>,
    observer: Option<RunnerObserver>,
}

impl LocalRunner {
    /// A runner for these classes (already restricted to the ones chosen on the command line).
    pub fn new(classes: Vec<Arc<dyn AnyUserClass>>, options: RunnerOptions) -> LocalRunner {
        let host_override = options
            .host
            .as_deref()
            .filter(|h| !h.is_empty())
            .map(Arc::from);
        crate::events::set_host(options.host.as_deref());
        LocalRunner {
            classes: classes.clone(),
            all_classes: classes,
            options,
            users: BTreeMap::new(),
            retiring: Vec::new(),
            dispatcher: None,
            state: RunnerState::Ready,
            next_id: 0,
            host_override,
            observer: None,
        }
    }

    /// Registers the function told about every state change and every change of the user
    /// counts (once per dispatcher iteration while ramping).
    pub fn set_observer(&mut self, observer: RunnerObserver) {
        self.observer = Some(observer);
    }

    /// Replaces the host of users spawned from now on (the web form's host, Locust's
    /// `environment.host`); `None` or an empty string lets each class use its own host.
    pub fn set_host(&mut self, host: Option<&str>) {
        self.host_override = host.filter(|h| !h.is_empty()).map(Arc::from);
        crate::events::set_host(host);
    }

    /// The classes this runner was given (before tag filtering).
    pub fn all_classes(&self) -> &[Arc<dyn AnyUserClass>] {
        &self.all_classes
    }

    /// Tells the observer the current state and counts.
    fn publish(&mut self) {
        if self.observer.is_none() {
            return;
        }
        let counts = self.user_classes_count();
        if let Some(observer) = &self.observer {
            observer(self.state, &counts);
        }
    }

    fn set_state(&mut self, state: RunnerState) {
        self.state = state;
        self.publish();
    }

    /// Publishes the counts again after users may have stopped by themselves.
    pub fn refresh(&mut self) {
        self.publish();
    }

    /// The current state.
    pub fn state(&self) -> RunnerState {
        self.state
    }

    /// Users currently running (those that stopped by themselves are not counted).
    pub fn user_count(&mut self) -> usize {
        self.prune();
        self.users.values().map(Vec::len).sum()
    }

    /// Running users per class, every class listed.
    pub fn user_classes_count(&mut self) -> BTreeMap<String, usize> {
        self.prune();
        self.classes
            .iter()
            .map(|c| {
                let n = self.users.get(c.name()).map_or(0, Vec::len);
                (c.name().to_string(), n)
            })
            .collect()
    }

    /// Ramps to `user_count` users at `spawn_rate` users per second, from whatever is
    /// running now (a new test when the runner is ready or stopped). Returns when the
    /// ramp is complete. Dropping the future mid-ramp leaves the users started so far
    /// running, so a caller may race it against a deadline.
    pub async fn start(&mut self, user_count: u32, spawn_rate: f64) {
        if matches!(self.state, RunnerState::Ready | RunnerState::Stopped) {
            self.begin_test();
        }
        population::set_spawning_complete(false);
        self.set_state(RunnerState::Spawning);
        tracing::info!(
            target: "hopper.runners",
            "Ramping to {user_count} users at a rate of {spawn_rate:.2} per second"
        );
        let dispatcher = self.dispatcher.get_or_insert_with(|| {
            let specs: Vec<UserClassSpec> = self
                .classes
                .iter()
                .map(|c| UserClassSpec {
                    name: c.name().to_string(),
                    weight: c.weight(),
                    fixed_count: c.fixed_count(),
                })
                .collect();
            UsersDispatcher::new(&[LOCAL.to_string()], &specs)
        });
        if let Err(e) = dispatcher.new_dispatch(user_count, spawn_rate, None) {
            tracing::error!(target: "hopper.runners", "Cannot start: {e}");
            return;
        }
        while let Some(distribution) = self
            .dispatcher
            .as_mut()
            .and_then(UsersDispatcher::next_iteration)
        {
            if let Some(counts) = distribution.get(LOCAL) {
                self.apply(counts);
                self.publish();
            }
            // The dispatcher knows Locust's cadence: the interval minus the time this
            // iteration took, and no sleep after the last one.
            let delay = self
                .dispatcher
                .as_ref()
                .map_or(Duration::ZERO, UsersDispatcher::delay_before_next);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        let counts = self.user_classes_count();
        let total: usize = counts.values().sum();
        let listed: Vec<String> = counts
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        tracing::info!(
            target: "hopper.runners",
            "All users spawned: {{{}}} ({total} total users)",
            listed.join(", ")
        );
        self.set_state(RunnerState::Running);
        if self.options.reset_stats {
            tracing::info!(target: "hopper.runners", "Resetting stats");
            hopper_stats::global().reset_all();
        }
        population::set_spawning_complete(true);
        events().spawning_complete.fire(&SpawningComplete {
            user_count: total as u64,
        });
    }

    /// Sets `-T`/`-E` for the next test (a worker takes its master's).
    pub fn set_tags(
        &mut self,
        tags: Option<BTreeSet<String>>,
        exclude_tags: Option<BTreeSet<String>>,
    ) {
        self.options.tags = tags;
        self.options.exclude_tags = exclude_tags;
    }

    /// Sets `--stop-timeout` for users retired from now on (a worker gets it from its master).
    pub fn set_stop_timeout(&mut self, timeout: Duration) {
        self.options.stop_timeout = timeout;
    }

    /// Makes the running users match absolute per-class counts at once, as a worker does with
    /// each `spawn` message from its master (the master paces the ramp). Starts a new test
    /// first when none is running.
    pub fn apply_counts(&mut self, counts: &BTreeMap<String, u32>) {
        if matches!(self.state, RunnerState::Ready | RunnerState::Stopped) {
            self.begin_test();
        }
        self.set_state(RunnerState::Spawning);
        self.apply(counts);
        self.set_state(RunnerState::Running);
    }

    /// Stops every user (honouring the stop timeout) and waits until they have all ended.
    pub async fn stop(&mut self) {
        if matches!(self.state, RunnerState::Ready | RunnerState::Stopped) {
            return;
        }
        events().test_stopping.fire(&environment());
        population::set_spawning_complete(false);
        self.set_state(RunnerState::Cleanup);
        self.dispatcher = None;
        let users: Vec<RunningUser> = std::mem::take(&mut self.users)
            .into_values()
            .flatten()
            .collect();
        for user in users.into_iter().rev() {
            self.retire(user);
        }
        let mut killed = 0usize;
        for handle in self.retiring.drain(..) {
            if handle.await.unwrap_or(false) {
                killed += 1;
            }
        }
        if killed > 0 {
            tracing::info!(
                target: "hopper.runners",
                "Not all users finished their tasks & terminated in {} seconds. Stopping them...",
                self.options.stop_timeout.as_secs()
            );
        }
        self.set_state(RunnerState::Stopped);
        events().test_stop.fire(&environment());
    }

    fn begin_test(&mut self) {
        hopper_stats::global().clear_all();
        events().test_start.fire(&environment());
        let tags = self.options.tags.as_ref();
        let exclude = self.options.exclude_tags.as_ref();
        self.classes = if tags.is_some() || exclude.is_some() {
            self.all_classes
                .iter()
                .map(|c| c.filtered(tags, exclude))
                .collect()
        } else {
            self.all_classes.clone()
        };
        for c in &self.classes {
            if !c.has_tasks() {
                tracing::warn!(
                    target: "hopper.runners",
                    "User class {} has no tasks{}; its users will stop at once",
                    c.name(),
                    if tags.is_some() || exclude.is_some() { " after tag filtering" } else { "" }
                );
            }
        }
        self.dispatcher = None;
    }

    /// Makes the running users match one dispatcher iteration: spawn first, then retire.
    fn apply(&mut self, counts: &BTreeMap<String, u32>) {
        self.prune();
        for class in self.classes.clone() {
            let want = counts.get(class.name()).copied().unwrap_or(0) as usize;
            let running = self.users.entry(class.name().to_string()).or_default();
            while running.len() < want {
                self.next_id += 1;
                let (handle, ctl) = control();
                let future = class.clone().run_user(SpawnUser {
                    id: self.next_id,
                    host_override: self.host_override.clone(),
                    seed: fastrand::u64(..),
                    control: ctl,
                });
                // Counted alive from now, not from its first poll: a rendezvous of all users
                // must not see the ramp complete before the last users have started.
                let alive = population::LiveUser::new();
                running.push(RunningUser {
                    control: handle,
                    join: tokio::spawn(async move {
                        let _alive = alive;
                        future.await
                    }),
                });
            }
        }
        for class in self.classes.clone() {
            let want = counts.get(class.name()).copied().unwrap_or(0) as usize;
            let running = self.users.entry(class.name().to_string()).or_default();
            let surplus: Vec<RunningUser> = if running.len() > want {
                running.drain(want..).rev().collect()
            } else {
                Vec::new()
            };
            for user in surplus {
                self.retire(user);
            }
        }
        self.retiring.retain(|h| !h.is_finished());
    }

    /// Stops one user in the background; the handle yields true if it had to be killed.
    fn retire(&mut self, user: RunningUser) {
        let timeout = self.options.stop_timeout;
        self.retiring.push(tokio::spawn(async move {
            let RunningUser { control, mut join } = user;
            if timeout.is_zero() {
                control.send(Signal::Kill);
            } else {
                control.send(Signal::Stop);
                if let Ok(result) = tokio::time::timeout(timeout, &mut join).await {
                    note_if_panicked(result);
                    return false;
                }
                control.send(Signal::Kill);
            }
            let budget = crate::user_loop::KILL_REQUEST_GRACE + KILL_GRACE;
            match tokio::time::timeout(budget, &mut join).await {
                Err(_) => join.abort(),
                Ok(result) => note_if_panicked(result),
            }
            !timeout.is_zero()
        }));
    }

    /// Forgets users that ended by themselves (StopUser, failed on_start, a panic).
    fn prune(&mut self) {
        for users in self.users.values_mut() {
            users.retain_mut(|u| {
                if !u.join.is_finished() {
                    return true;
                }
                if let Some(result) = (&mut u.join).now_or_never() {
                    note_if_panicked(result);
                }
                false
            });
        }
    }
}

/// A user whose task panicked outside its tasks (a panic in a task is caught and recorded):
/// logged and counted, as Locust counts a greenlet that died of an exception.
fn note_if_panicked(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        if e.is_panic() {
            tracing::error!(target: "hopper.runners", "A user ended with an unhandled panic: {e}");
            crate::health::note_unhandled();
        }
    }
}
