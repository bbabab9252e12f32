//! A test session: one [`Runner`] (local, or a master) driven by commands from anywhere (the headless
//! driver, the web UI's `/swarm` and `/stop`, `--autostart`), with its status published for
//! every reader.
//!
//! The runner needs `&mut` access for a whole ramp, so it lives in one task (the actor) and
//! everyone else talks to it through a [`SessionHandle`]. A new command interrupts a ramp in
//! progress: the users started so far keep running and the next ramp starts from them, which
//! is how Locust's `/swarm` edits a running test. The run-time limit is a deadline inside the
//! actor, so it is cancelled by every `/swarm` and `/stop` as in Locust.

use crate::runner::{Runner, RunnerState};
use crate::task_ratio;
use crate::user::AnyUserClass;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What `/swarm` (or the command line) asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmRequest {
    /// Target number of users.
    pub user_count: u32,
    /// Users started (or stopped) per second.
    pub spawn_rate: f64,
    /// `Some(host)` replaces the host of users spawned from now on (empty: class hosts).
    pub host: Option<String>,
    /// Stop the test after this long.
    pub run_time: Option<Duration>,
}

/// Why the last test stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// A stop was asked for (`/stop`, Ctrl-C, quitting).
    Requested,
    /// The run-time limit was reached.
    RunTime,
}

/// Everything readers want to know about the session, published on every change.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStatus {
    /// Locust's runner state.
    pub state: RunnerState,
    /// Users running now.
    pub user_count: u64,
    /// Users running now, per class (every class listed).
    pub class_counts: BTreeMap<String, u64>,
    /// The host given by `-H` or the last `/swarm` (`None`: class hosts).
    pub host: Option<String>,
    /// Users per class when the last test began to stop: the report's "final ratio".
    pub final_class_counts: Option<BTreeMap<String, u64>>,
    /// The last requested target and rate.
    pub target_users: Option<u32>,
    pub spawn_rate: Option<f64>,
    /// The run-time limit of the current test, seconds.
    pub run_time: Option<u64>,
    /// When the current (or last) test started and stopped, epoch seconds.
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    /// Why the last test stopped (`None` while one runs or before the first).
    pub stop_cause: Option<StopCause>,
    /// Incremented each time a new test starts (readers notice restarts).
    pub test_number: u64,
    /// True once the session has quit; no command is accepted after that.
    pub quit: bool,
}

enum Command {
    Swarm(SwarmRequest, oneshot::Sender<()>),
    Rebalance,
    Stop(oneshot::Sender<()>),
    Quit(oneshot::Sender<()>),
}

/// A cheap, clonable way to drive and watch the session.
#[derive(Clone)]
pub struct SessionHandle {
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<SessionStatus>,
    classes: Arc<Vec<Arc<dyn AnyUserClass>>>,
}

/// The session has ended (it quit, or its task failed): commands go nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionGone;

impl std::fmt::Display for SessionGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the test session has ended")
    }
}

impl SessionHandle {
    /// Starts a test, or changes the target of the running one. Returns once the command
    /// has been taken (the ramp goes on in the background); while a stop is in progress the
    /// command waits its turn.
    pub async fn swarm(&self, request: SwarmRequest) -> Result<(), SessionGone> {
        self.ask(|reply| Command::Swarm(request, reply)).await
    }

    /// Redistributes the current target after workers joined or left (a master calls it);
    /// nothing happens unless a test is spawning or running. Does not wait.
    pub fn rebalance(&self) {
        let _ = self.tx.try_send(Command::Rebalance);
    }

    /// Stops the test and waits until every user has ended (honouring `--stop-timeout`).
    pub async fn stop(&self) -> Result<(), SessionGone> {
        self.ask(Command::Stop).await
    }

    /// Stops the test and ends the session.
    pub async fn quit(&self) -> Result<(), SessionGone> {
        self.ask(Command::Quit).await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<()>) -> Command,
    ) -> Result<(), SessionGone> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send(command(reply))
            .await
            .map_err(|_| SessionGone)?;
        done.await.map_err(|_| SessionGone)
    }

    /// The status now.
    pub fn status(&self) -> SessionStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn subscribe(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// The user classes of this session.
    pub fn classes(&self) -> &[Arc<dyn AnyUserClass>] {
        &self.classes
    }

    /// `/tasks`: Locust's ratio JSON for the users running now.
    pub fn tasks_json(&self) -> serde_json::Value {
        let counts = self.status.borrow().class_counts.clone();
        self.ratio_json(&counts)
    }

    /// The report's "final ratio": the counts when the test began to stop, once it is
    /// stopping or stopped (Locust's `final_user_classes_count`), else the running users.
    pub fn final_tasks_json(&self) -> serde_json::Value {
        let status = self.status.borrow().clone();
        let stopped = matches!(
            status.state,
            RunnerState::Cleanup | RunnerState::Stopping | RunnerState::Stopped
        );
        let counts = match status.final_class_counts {
            Some(counts) if stopped => counts,
            _ => status.class_counts,
        };
        self.ratio_json(&counts)
    }

    fn ratio_json(&self, counts: &BTreeMap<String, u64>) -> serde_json::Value {
        let counts: Vec<f64> = self
            .classes
            .iter()
            .map(|c| counts.get(c.name()).copied().unwrap_or(0) as f64)
            .collect();
        serde_json::json!({
            "per_class": task_ratio::ratio_json_for_counts(&self.classes, &counts, false),
            "total": task_ratio::ratio_json_for_counts(&self.classes, &counts, true),
        })
    }
}

/// Starts the session actor on the current tokio runtime, driving `runner` (a local runner
/// or a master). `host` is `-H` (already checked).
pub fn spawn_session<R: Runner>(
    mut runner: R,
    host: Option<String>,
) -> (SessionHandle, JoinHandle<()>) {
    let classes = Arc::new(runner.all_classes().to_vec());
    let initial = SessionStatus {
        state: RunnerState::Ready,
        user_count: 0,
        class_counts: classes.iter().map(|c| (c.name().to_string(), 0)).collect(),
        host: host.filter(|h| !h.is_empty()),
        final_class_counts: None,
        target_users: None,
        spawn_rate: None,
        run_time: None,
        start_time: None,
        end_time: None,
        stop_cause: None,
        test_number: 0,
        quit: false,
    };
    let (status_tx, status_rx) = watch::channel(initial);
    let status_tx = Arc::new(status_tx);
    let observed = status_tx.clone();
    runner.set_observer(Box::new(move |state, counts| {
        observed.send_if_modified(|s| {
            let class_counts: BTreeMap<String, u64> =
                counts.iter().map(|(k, v)| (k.clone(), *v as u64)).collect();
            let user_count = class_counts.values().sum();
            let changed =
                s.state != state || s.class_counts != class_counts || s.user_count != user_count;
            s.state = state;
            s.class_counts = class_counts;
            s.user_count = user_count;
            changed
        });
    }));
    let (tx, rx) = mpsc::channel(16);
    let actor = Actor {
        runner,
        rx,
        status: status_tx,
        ramp: None,
        deadline: None,
    };
    let join = tokio::spawn(actor.run());
    (
        SessionHandle {
            tx,
            status: status_rx,
            classes,
        },
        join,
    )
}

struct Actor<R> {
    runner: R,
    rx: mpsc::Receiver<Command>,
    status: Arc<watch::Sender<SessionStatus>>,
    /// The ramp still to finish: target users and rate.
    ramp: Option<(u32, f64)>,
    /// When the run-time limit stops the test.
    deadline: Option<Instant>,
}

/// What woke the actor up.
enum Wake {
    Command(Option<Command>),
    RampDone,
    Deadline,
    Refresh,
}

/// How often counts are refreshed while no ramp runs (users may stop by themselves).
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

impl<R: Runner> Actor<R> {
    async fn run(mut self) {
        loop {
            let wake = self.next_wake().await;
            match wake {
                Wake::Command(None) => {
                    self.stop(StopCause::Requested).await;
                    break;
                }
                Wake::Command(Some(Command::Swarm(request, reply))) => {
                    self.swarm(request);
                    let _ = reply.send(());
                }
                Wake::Command(Some(Command::Rebalance)) => {
                    let ramping = matches!(
                        self.runner.state(),
                        RunnerState::Spawning | RunnerState::Running
                    );
                    // One borrow: two at once could deadlock behind a waiting writer.
                    let target = {
                        let status = self.status.borrow();
                        status.target_users.zip(status.spawn_rate)
                    };
                    if let (true, Some(target)) = (ramping, target) {
                        self.ramp = Some(target);
                    }
                }
                Wake::Command(Some(Command::Stop(reply))) => {
                    self.stop(StopCause::Requested).await;
                    let _ = reply.send(());
                }
                Wake::Command(Some(Command::Quit(reply))) => {
                    self.end_test(StopCause::Requested, true).await;
                    self.status.send_modify(|s| s.quit = true);
                    let _ = reply.send(());
                    break;
                }
                Wake::RampDone => self.ramp = None,
                Wake::Deadline => {
                    tracing::info!(target: "hopper.runners", "Run time limit reached, stopping the test");
                    self.stop(StopCause::RunTime).await;
                }
                Wake::Refresh => self.runner.refresh(),
            }
        }
    }

    /// Waits for a command, the end of the ramp, the deadline or a refresh tick. The ramp
    /// future is dropped when something else wakes us; the users it started keep running.
    async fn next_wake(&mut self) -> Wake {
        let deadline = self.deadline;
        let until_deadline = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        match self.ramp {
            Some((users, rate)) => {
                tokio::select! {
                    c = self.rx.recv() => Wake::Command(c),
                    _ = self.runner.start(users, rate) => Wake::RampDone,
                    _ = until_deadline => Wake::Deadline,
                }
            }
            None => {
                tokio::select! {
                    c = self.rx.recv() => Wake::Command(c),
                    _ = until_deadline => Wake::Deadline,
                    _ = tokio::time::sleep(REFRESH_INTERVAL) => Wake::Refresh,
                }
            }
        }
    }

    fn swarm(&mut self, request: SwarmRequest) {
        let new_test = matches!(
            self.runner.state(),
            RunnerState::Ready | RunnerState::Stopped
        );
        if let Some(host) = &request.host {
            self.runner.set_host(Some(host));
        }
        self.ramp = Some((request.user_count, request.spawn_rate));
        // Every /swarm cancels the previous run-time timer, as in Locust. A run time too
        // long to represent is no limit at all.
        self.deadline = request.run_time.and_then(|t| Instant::now().checked_add(t));
        let now = hopper_stats::now_epoch();
        self.status.send_modify(|s| {
            if let Some(host) = &request.host {
                s.host = Some(host.clone()).filter(|h| !h.is_empty());
            }
            s.target_users = Some(request.user_count);
            s.spawn_rate = Some(request.spawn_rate);
            s.run_time = request.run_time.map(|t| t.as_secs());
            if new_test {
                s.final_class_counts = None;
                s.start_time = Some(now);
                s.end_time = None;
                s.stop_cause = None;
                s.test_number += 1;
            }
        });
    }

    async fn stop(&mut self, cause: StopCause) {
        self.end_test(cause, false).await;
    }

    /// Stops the test (`quit`: for good, the process is ending) and records how it ended.
    async fn end_test(&mut self, cause: StopCause, quit: bool) {
        self.ramp = None;
        self.deadline = None;
        let was_running = !matches!(
            self.runner.state(),
            RunnerState::Ready | RunnerState::Stopped
        );
        if was_running {
            let counts = self.status.borrow().class_counts.clone();
            self.status
                .send_modify(|s| s.final_class_counts = Some(counts));
        }
        if quit {
            self.runner.quit().await;
        } else {
            self.runner.stop().await;
        }
        if was_running {
            let now = hopper_stats::now_epoch();
            self.status.send_modify(|s| {
                s.end_time = Some(now);
                s.stop_cause = Some(cause);
            });
        }
    }
}
