//! The master: runs no users, hands them to workers with Locust's dispatcher, merges their
//! statistics, and tracks them by heartbeat, speaking Locust 2.47's protocol so Python
//! `locust --worker` processes and Hopper workers can join alike.
//!
//! Two parts share the worker table: [`MasterRunner`] (driven by the session: start, stop)
//! and a background task that handles every message from workers and checks heartbeats
//! once a second. Neither holds the table's lock across an `.await`.

use crate::transport::{Incoming, MasterSender, MasterSocket};
use crate::wire::{self, Message};
use hopper_core::dispatch::{UserClassSpec, UsersDispatcher};
use hopper_core::events::{self, environment, events, SpawningComplete, WorkerReport};
use hopper_core::{AnyUserClass, Runner, RunnerObserver, RunnerState, SessionHandle};
use hopper_stats::web_json::WorkerRow;
use rmpv::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Heartbeats a worker may miss before it is marked missing (Locust's HEARTBEAT_LIVENESS).
const HEARTBEAT_LIVENESS: i32 = 3;
/// A missing worker is forgotten at this count (Locust's HEARTBEAT_DEAD_INTERNAL).
const HEARTBEAT_DEAD: i32 = -60;
/// How long the master waits after a ramp for the workers' reported counts to match.
const SPAWN_REPORT_WAIT: Duration = Duration::from_secs(1);
/// How long the master waits for workers to confirm a stop, beyond the stop timeout.
const STOP_CONFIRM_SLACK: Duration = Duration::from_secs(10);
/// How long after `client_stopped` a worker's reports still count.
const STOPPED_REPORTS_ACCEPTED: Duration = Duration::from_secs(120);
/// How long the master waits for workers to confirm a quit, beyond the stop timeout.
const QUIT_SLACK: Duration = Duration::from_secs(3);
/// The longest the master waits for quit confirmations that keep coming, beyond the stop
/// timeout.
const QUIT_SLACK_MAX: Duration = Duration::from_secs(30);
/// Worker log lines kept per worker for `/logs`.
const WORKER_LOG_LINES: usize = 500;

/// How long changes from workers' messages gather before the session hears of them. Telling
/// it walks every worker, and while thousands ramp up, each of their messages changes
/// something: published at once, that is quadratic in workers (10,000 workers' spawn
/// messages alone were 10^8 steps). The runner's own state changes are told at once.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// A worker as the master sees it.
#[derive(Debug, Clone)]
struct Node {
    state: NodeState,
    heartbeat: i32,
    cpu_usage: f64,
    memory_usage: u64,
    user_classes_count: BTreeMap<String, u64>,
    user_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Ready,
    Spawning,
    Running,
    Missing,
}

impl NodeState {
    fn name(self) -> &'static str {
        match self {
            NodeState::Ready => "ready",
            NodeState::Spawning => "spawning",
            NodeState::Running => "running",
            NodeState::Missing => "missing",
        }
    }

    fn from_report(state: &str) -> Option<NodeState> {
        match state {
            "ready" => Some(NodeState::Ready),
            "spawning" => Some(NodeState::Spawning),
            "running" => Some(NodeState::Running),
            _ => None,
        }
    }

    fn live(self) -> bool {
        self != NodeState::Missing
    }
}

/// What the message task and the runner share.
struct Shared {
    nodes: BTreeMap<String, Node>,
    /// Indexes handed out, never reused while the master lives (Locust's `ack` index).
    indexes: BTreeMap<String, u64>,
    state: RunnerState,
    observer: Option<RunnerObserver>,
    class_names: Vec<String>,
    worker_logs: BTreeMap<String, Vec<String>>,
    /// Workers that sent `client_stopped` and have not registered again, and when: a Locust
    /// worker keeps reporting while it sleeps out the stop timeout, and those statistics
    /// count (Locust merges them too).
    stopped: BTreeMap<String, Instant>,
    /// Workers' messages changed what the session shows since it was last told.
    publish_pending: bool,
    /// Wakes the publisher task (see [`PUBLISH_INTERVAL`]).
    publish_due: Arc<tokio::sync::Notify>,
}

impl Shared {
    /// The workers that count (not missing), with their ids.
    fn live_nodes(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter().filter(|(_, n)| n.state.live())
    }

    /// Users per class over the workers that count (not missing).
    fn class_counts(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> =
            self.class_names.iter().map(|c| (c.clone(), 0)).collect();
        for (_, node) in self.live_nodes() {
            for (class, n) in &node.user_classes_count {
                *counts.entry(class.clone()).or_default() += *n as usize;
            }
        }
        counts
    }

    fn user_count(&self) -> u64 {
        self.live_nodes().map(|(_, n)| n.user_count).sum()
    }

    /// Tells the session the state and users per class now.
    fn publish(&mut self) {
        self.publish_pending = false;
        if let Some(observer) = &self.observer {
            observer(self.state, &self.class_counts());
        }
    }

    /// Notes a change from a worker's message, for the publisher task to tell the session
    /// within [`PUBLISH_INTERVAL`], together with any others that come meanwhile.
    fn publish_soon(&mut self) {
        if !self.publish_pending {
            self.publish_pending = true;
            self.publish_due.notify_one();
        }
    }

    /// Workers that count (not missing).
    fn live_count(&self) -> usize {
        self.live_nodes().count()
    }

    fn live_workers(&self) -> Vec<String> {
        self.live_nodes().map(|(id, _)| id.clone()).collect()
    }
}

/// How the master was started.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// `--master-bind-host` (`*` or empty: every interface).
    pub bind_host: String,
    /// `--master-bind-port` (0 picks a free port).
    pub bind_port: u16,
    /// `-s`, sent to workers with every spawn.
    pub stop_timeout: Duration,
    /// `--reset-stats`: reset after each completed ramp.
    pub reset_stats: bool,
    /// `-T` and `-E`, passed to workers in every spawn's options (Locust's workers apply them).
    pub tags: Option<Vec<String>>,
    pub exclude_tags: Option<Vec<String>>,
    /// Headless: the process ends when the last worker quits (Locust quits then too).
    pub quit_when_last_worker_quits: bool,
}

/// The view the web UI needs of the workers.
#[derive(Clone)]
pub struct MasterView {
    shared: Arc<Mutex<Shared>>,
}

impl MasterView {
    /// The Workers tab and `/stats/requests` rows, every known worker (missing ones too).
    pub fn workers(&self) -> Vec<WorkerRow> {
        let shared = lock(&self.shared);
        shared
            .nodes
            .iter()
            .map(|(id, n)| WorkerRow {
                id: id.clone(),
                state: n.state.name().to_string(),
                user_count: n.user_count,
                cpu_usage: n.cpu_usage,
                memory_usage: n.memory_usage,
                user_classes_count: n.user_classes_count.clone(),
            })
            .collect()
    }

    /// Workers that are ready, spawning or running (Locust's `worker_count`).
    pub fn worker_count(&self) -> usize {
        lock(&self.shared)
            .nodes
            .values()
            .filter(|n| n.state.live())
            .count()
    }

    /// Workers in state `ready` (what `--expect-workers` counts).
    pub fn ready_count(&self) -> usize {
        lock(&self.shared)
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Ready)
            .count()
    }

    /// The last log lines each worker sent.
    pub fn worker_logs(&self) -> BTreeMap<String, Vec<String>> {
        lock(&self.shared).worker_logs.clone()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock_feeds(
    feeds: &Mutex<BTreeMap<String, FeedLedger>>,
) -> MutexGuard<'_, BTreeMap<String, FeedLedger>> {
    feeds.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The master's runner.
pub struct MasterRunner {
    shared: Arc<Mutex<Shared>>,
    sender: MasterSender,
    classes: Vec<Arc<dyn AnyUserClass>>,
    dispatcher: Option<UsersDispatcher>,
    host: Option<String>,
    options: MasterOptions,
    port: u16,
    /// Set once the session exists: the message task asks it to redistribute users.
    session: Arc<OnceLock<SessionHandle>>,
    /// See [`MessageHandler::messages_read`].
    messages_read: Arc<AtomicU64>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MasterRunner {
    /// Binds the master port and starts handling workers.
    pub async fn bind(
        classes: Vec<Arc<dyn AnyUserClass>>,
        host: Option<String>,
        options: MasterOptions,
    ) -> Result<MasterRunner, String> {
        let socket = MasterSocket::bind(&options.bind_host, options.bind_port)
            .await
            .map_err(|e| e.to_string())?;
        let port = socket.port();
        let (sender, incoming) = socket.split();
        events::set_role(events::Role::Master);
        events::set_host(host.as_deref());
        let shared = Arc::new(Mutex::new(Shared {
            nodes: BTreeMap::new(),
            indexes: BTreeMap::new(),
            state: RunnerState::Ready,
            observer: None,
            class_names: classes.iter().map(|c| c.name().to_string()).collect(),
            worker_logs: BTreeMap::new(),
            stopped: BTreeMap::new(),
            publish_pending: false,
            publish_due: Arc::default(),
        }));
        let session = Arc::new(OnceLock::new());
        let messages_read = Arc::new(AtomicU64::new(0));
        let handler = MessageHandler {
            shared: shared.clone(),
            sender: sender.clone(),
            session: session.clone(),
            feeds: Arc::default(),
            quit_when_last_worker_quits: options.quit_when_last_worker_quits,
            messages_read: messages_read.clone(),
        };
        let tasks = vec![
            tokio::spawn(handler.clone().receive(incoming)),
            tokio::spawn(handler.clone().check_heartbeats()),
            tokio::spawn(handler.publish_changes()),
        ];
        Ok(MasterRunner {
            shared,
            sender,
            classes,
            dispatcher: None,
            host: host.filter(|h| !h.is_empty()),
            options,
            port,
            session,
            messages_read,
            _tasks: tasks,
        })
    }

    /// The port workers connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the web UI shows of the workers.
    pub fn view(&self) -> MasterView {
        MasterView {
            shared: self.shared.clone(),
        }
    }

    /// Where the session goes once it exists (the runner moves into it): worker arrivals
    /// and departures during a test then redistribute users.
    pub fn session_slot(&self) -> SessionSlot {
        SessionSlot(self.session.clone())
    }

    /// Tells every worker to quit and waits for their goodbyes (each sends its final
    /// statistics first): as long as their users may take to stop, plus a little. Locust
    /// only sleeps 0.5 s.
    async fn quit_workers(&self) {
        let ids: Vec<String> = lock(&self.shared).nodes.keys().cloned().collect();
        for id in &ids {
            send(&self.sender, "quit", Value::Nil, id);
        }
        // Thousands of workers take a while to confirm, and a master that fell behind reads
        // their confirmations only after the reports queued before them: the wait goes on
        // while confirmations come or messages are still being read (each extends it by
        // QUIT_SLACK), up to QUIT_SLACK_MAX in all.
        let started = Instant::now();
        let cap = started + self.options.stop_timeout + QUIT_SLACK_MAX;
        let mut until = started + self.options.stop_timeout + QUIT_SLACK;
        let mut left = lock(&self.shared).live_count();
        let mut read = self.messages_read.load(Ordering::Relaxed);
        while Instant::now() < until && left > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now_left = lock(&self.shared).live_count();
            let now_read = self.messages_read.load(Ordering::Relaxed);
            if now_left < left || now_read > read {
                until = until.max((Instant::now() + QUIT_SLACK).min(cap));
            }
            (left, read) = (now_left, now_read);
        }
        if left > 0 {
            tracing::warn!(target: "hopper.runners", "{left} workers did not confirm the quit; their last statistics may be missing");
        }
    }

    fn set_state(&self, state: RunnerState) {
        let mut shared = lock(&self.shared);
        shared.state = state;
        shared.publish();
    }

    fn specs(&self) -> Vec<UserClassSpec> {
        self.classes
            .iter()
            .map(|c| UserClassSpec {
                name: c.name().to_string(),
                weight: c.weight(),
                fixed_count: c.fixed_count(),
            })
            .collect()
    }

    /// Makes the dispatcher's workers match the live ones.
    fn sync_workers(&mut self, live: &[String]) {
        let specs = self.specs();
        let dispatcher = self
            .dispatcher
            .get_or_insert_with(|| UsersDispatcher::new(live, &specs));
        let known: Vec<String> = dispatcher.workers().map(str::to_string).collect();
        for id in known.iter().filter(|id| !live.contains(id)) {
            dispatcher.remove_worker(id);
        }
        for id in live.iter().filter(|id| !known.contains(id)) {
            dispatcher.add_worker(id);
        }
    }

    /// The options a worker takes from its master (Locust sends all of them; workers read
    /// `tags`, `exclude_tags` and the ones they did not set themselves).
    fn parsed_options(&self) -> Value {
        let list = |v: &Option<Vec<String>>| match v {
            Some(items) => Value::Array(items.iter().map(|t| Value::from(t.as_str())).collect()),
            None => Value::Nil,
        };
        Value::Map(vec![
            (Value::from("tags"), list(&self.options.tags)),
            (
                Value::from("exclude_tags"),
                list(&self.options.exclude_tags),
            ),
            (
                Value::from("stop_timeout"),
                Value::from(self.options.stop_timeout.as_secs_f64()),
            ),
        ])
    }

    fn send_spawn(&self, worker: &str, counts: &BTreeMap<String, u32>) {
        let mut all: BTreeMap<String, u64> = self
            .classes
            .iter()
            .map(|c| (c.name().to_string(), 0))
            .collect();
        for (class, n) in counts {
            all.insert(class.clone(), u64::from(*n));
        }
        let spawn = wire::Spawn {
            timestamp: hopper_stats::now_epoch(),
            user_classes_count: all,
            host: self.host.clone(),
            stop_timeout: self.options.stop_timeout.as_secs_f64(),
            parsed_options: self.parsed_options(),
        };
        send(&self.sender, "spawn", spawn.to_value(), worker);
    }
}

impl Runner for MasterRunner {
    async fn start(&mut self, user_count: u32, spawn_rate: f64) {
        let (state, live) = {
            let shared = lock(&self.shared);
            (shared.state, shared.live_workers())
        };
        if live.is_empty() {
            tracing::warn!(target: "hopper.runners", "You can't start a distributed test before at least one worker processes has connected");
            return;
        }
        if matches!(state, RunnerState::Ready | RunnerState::Stopped) {
            hopper_stats::global().clear_all();
            self.dispatcher = None;
            events().test_start.fire(&environment());
        }
        let workers = live.len() as f64;
        if spawn_rate / workers > 100.0 {
            tracing::warn!(target: "hopper.runners", "Your selected spawn rate is very high (>100/worker), and this is known to sometimes cause issues. Do you really need to ramp up that fast?");
        }
        self.set_state(RunnerState::Spawning);
        tracing::info!(
            target: "hopper.runners",
            "Sending spawn jobs of {user_count} users at {spawn_rate:.2} spawn rate to {} ready workers",
            live.len()
        );
        self.sync_workers(&live);
        let Some(dispatcher) = self.dispatcher.as_mut() else {
            return;
        };
        if let Err(e) = dispatcher.new_dispatch(user_count, spawn_rate, None) {
            tracing::error!(target: "hopper.runners", "Cannot start: {e}");
            return;
        }
        while let Some(distribution) = self
            .dispatcher
            .as_mut()
            .and_then(UsersDispatcher::next_iteration)
        {
            for (worker, counts) in &distribution {
                self.send_spawn(worker, counts);
            }
            let delay = self
                .dispatcher
                .as_ref()
                .map_or(Duration::ZERO, UsersDispatcher::delay_before_next);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        // Give the workers a moment to report the counts they now run.
        let until = Instant::now() + SPAWN_REPORT_WAIT;
        while Instant::now() < until && lock(&self.shared).user_count() != u64::from(user_count) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (counts, total, ids) = {
            let shared = lock(&self.shared);
            (
                shared.class_counts(),
                shared.user_count(),
                shared.live_workers(),
            )
        };
        self.set_state(RunnerState::Running);
        for id in &ids {
            send(
                &self.sender,
                "spawning_complete",
                wire::spawning_complete_for_worker(user_count.into()),
                id,
            );
        }
        let listed: Vec<String> = counts
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        if total == u64::from(user_count) {
            tracing::info!(target: "hopper.runners", "All users spawned: {{{}}} ({total} total users)", listed.join(", "));
        } else {
            tracing::info!(target: "hopper.runners", "Spawning is complete and report waittime is expired, but not all reports received from workers: {{{}}} ({total} total users)", listed.join(", "));
        }
        if self.options.reset_stats {
            tracing::info!(target: "hopper.runners", "Resetting stats");
            hopper_stats::global().reset_all();
        }
        events().spawning_complete.fire(&SpawningComplete {
            user_count: u64::from(user_count),
        });
    }

    async fn stop(&mut self) {
        let ids = {
            let shared = lock(&self.shared);
            if matches!(shared.state, RunnerState::Ready | RunnerState::Stopped) {
                return;
            }
            shared.nodes.keys().cloned().collect::<Vec<_>>()
        };
        events().test_stopping.fire(&environment());
        self.set_state(RunnerState::Stopping);
        self.dispatcher = None;
        for id in &ids {
            send(&self.sender, "stop", Value::Nil, id);
        }
        // Workers confirm with client_stopped (and come back with client_ready); wait until
        // none runs users any more.
        let until = Instant::now() + self.options.stop_timeout + STOP_CONFIRM_SLACK;
        while Instant::now() < until && lock(&self.shared).user_count() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.set_state(RunnerState::Stopped);
        events().test_stop.fire(&environment());
    }

    fn state(&self) -> RunnerState {
        lock(&self.shared).state
    }

    fn refresh(&mut self) {
        lock(&self.shared).publish();
    }

    fn set_host(&mut self, host: Option<&str>) {
        self.host = host.filter(|h| !h.is_empty()).map(str::to_string);
        hopper_core::events::set_host(host);
    }

    fn all_classes(&self) -> &[Arc<dyn AnyUserClass>] {
        &self.classes
    }

    fn set_observer(&mut self, observer: RunnerObserver) {
        lock(&self.shared).observer = Some(observer);
    }

    async fn quit(&mut self) {
        let running = !matches!(
            lock(&self.shared).state,
            RunnerState::Ready | RunnerState::Stopped
        );
        if running {
            events().test_stopping.fire(&environment());
            self.set_state(RunnerState::Stopping);
        }
        self.dispatcher = None;
        self.quit_workers().await;
        self.set_state(RunnerState::Stopped);
        if running {
            events().test_stop.fire(&environment());
        }
    }
}

impl Drop for MasterRunner {
    fn drop(&mut self) {
        // The message and heartbeat tasks would otherwise keep the port and the session alive.
        for task in &self._tasks {
            task.abort();
        }
        self.sender.close();
    }
}

/// See [`MasterRunner::session_slot`].
pub struct SessionSlot(Arc<OnceLock<SessionHandle>>);

impl SessionSlot {
    /// Hands over the session driving the master.
    pub fn set(&self, session: SessionHandle) {
        let _ = self.0.set(session);
    }
}

/// Encodes and queues one message; a worker that vanished just misses it.
fn send(sender: &MasterSender, kind: &str, data: Value, node_id: &str) {
    let message = Message {
        kind: kind.to_string(),
        data,
        node_id: node_id.to_string(),
    };
    sender.send(node_id, message.encode());
}

/// Handles what workers send, and their heartbeats.
#[derive(Clone)]
struct MessageHandler {
    shared: Arc<Mutex<Shared>>,
    sender: MasterSender,
    session: Arc<OnceLock<SessionHandle>>,
    /// Queue feeders whose rows this master leased out, by feeder name.
    feeds: Arc<Mutex<BTreeMap<String, FeedLedger>>>,
    /// See [`MasterOptions::quit_when_last_worker_quits`].
    quit_when_last_worker_quits: bool,
    /// Messages read from workers so far: while a master that fell behind still works
    /// through what they sent, their quit confirmations are yet to come.
    messages_read: Arc<AtomicU64>,
}

/// What the master knows of one queue feeder's leases.
#[derive(Debug, Default)]
struct FeedLedger {
    /// Workers holding leased rows they may not have used yet: each got rows and has not
    /// come back to be told the queue is empty.
    holders: BTreeSet<String>,
    /// The queue has no rows left.
    empty: bool,
    /// The feeder ends the test once exhausted.
    stop_test: bool,
    /// The master asked for the test to end.
    ended: bool,
}

impl MessageHandler {
    async fn receive(self, mut incoming: tokio::sync::mpsc::Receiver<Incoming>) {
        // Reports are read into one set of buffers, reused for the next report.
        let mut flat = wire::FlatReport::default();
        while let Some(Incoming { identity, payload }) = incoming.recv().await {
            self.messages_read.fetch_add(1, Ordering::Relaxed);
            // Reports and heartbeats are nearly all the traffic: read them straight from the
            // bytes; anything else, or anything unusual, takes the reference path.
            let now = hopper_stats::now_epoch();
            match wire::read_hot(&payload, now, &mut flat) {
                Some(wire::HotRead::Stats { node_id }) => {
                    self.check_node_id(&identity, &node_id);
                    self.stats_read(&identity, &mut flat);
                    continue;
                }
                Some(wire::HotRead::Heartbeat { node_id, beat }) => {
                    self.check_node_id(&identity, &node_id);
                    self.heartbeat(&identity, Ok(beat));
                    continue;
                }
                None => {}
            }
            match Message::decode(&payload) {
                Ok(message) => self.handle(&identity, message),
                Err(e) => {
                    let known = lock(&self.shared).nodes.contains_key(&identity);
                    tracing::warn!(target: "hopper.runners", "Dropped a message from {} that could not be read: {e}", clip(&identity));
                    if known {
                        // Locust asks a known worker with a garbled frame to reconnect.
                        send(&self.sender, "reconnect", Value::Nil, &identity);
                    }
                }
            }
        }
    }

    /// Redistributes users if a test is on (Locust calls `start` again in that case).
    fn rebalance(&self) {
        let running = matches!(
            lock(&self.shared).state,
            RunnerState::Spawning | RunnerState::Running
        );
        if running {
            if let Some(session) = self.session.get() {
                session.rebalance();
            }
        }
    }

    fn handle(&self, identity: &str, message: Message) {
        let id = identity;
        self.check_node_id(id, &message.node_id);
        match message.kind.as_str() {
            "client_ready" => self.client_ready(id, &message.data),
            "heartbeat" => self.heartbeat(id, wire::Heartbeat::from_value(&message.data)),
            "spawning" => self.with_known(id, |n| n.state = NodeState::Spawning),
            "spawning_complete" => {
                let report = wire::SpawningComplete::from_value(&message.data);
                self.with_known(id, |n| {
                    n.state = NodeState::Running;
                    if let Ok(r) = report {
                        n.user_classes_count = r.user_classes_count;
                        n.user_count = r.user_count;
                    }
                });
            }
            "stats" => {
                self.stats(id, wire::StatsReport::from_value(&message.data));
            }
            "exception" => {
                if let Ok(e) = wire::ExceptionReport::from_value(&message.data) {
                    if lock(&self.shared).nodes.contains_key(id) {
                        hopper_stats::global()
                            .lock()
                            .log_exception(id, &e.msg, &e.traceback);
                    }
                }
            }
            "logs" => {
                if let Ok(logs) = wire::Logs::from_value(&message.data) {
                    let mut shared = lock(&self.shared);
                    if shared.nodes.contains_key(id) {
                        let mut lines = logs.logs;
                        let excess = lines.len().saturating_sub(WORKER_LOG_LINES);
                        lines.drain(..excess);
                        shared.worker_logs.insert(id.to_string(), lines);
                    }
                }
            }
            wire::FEED_LEASE => self.feed_lease(id, &message.data),
            "client_stopped" => {
                let removed = {
                    let mut shared = lock(&self.shared);
                    let removed = shared.nodes.remove(id).is_some();
                    if removed {
                        shared.stopped.insert(id.to_string(), Instant::now());
                    }
                    removed
                };
                if removed {
                    tracing::debug!(target: "hopper.runners", "Removing {id} worker from running workers");
                    self.after_departure();
                }
            }
            "quit" => {
                let removed = lock(&self.shared).nodes.remove(id).is_some();
                if removed {
                    tracing::info!(target: "hopper.runners", "Worker {id} quit. Remaining workers: {}", lock(&self.shared).live_count());
                    self.after_departure();
                }
            }
            other => {
                tracing::warn!(target: "hopper.runners", "Unknown message type '{}' from worker {}", clip(other), clip(id));
            }
        }
    }

    /// Locust routes by the message's node id; a peer claiming another's id is suspect.
    fn check_node_id(&self, identity: &str, node_id: &str) {
        if node_id != identity {
            tracing::debug!(target: "hopper.runners", "Message from {} names node {}", clip(identity), clip(node_id));
        }
    }

    fn with_known(&self, id: &str, update: impl FnOnce(&mut Node)) {
        let mut shared = lock(&self.shared);
        match shared.nodes.get_mut(id) {
            Some(node) => {
                update(node);
                shared.publish_soon();
            }
            None => {
                drop(shared);
                // Locust tells an unknown worker that claims to spawn to quit.
                send(&self.sender, "quit", Value::Nil, id);
            }
        }
    }

    fn client_ready(&self, id: &str, data: &Value) {
        let version = match wire::client_ready_version(data) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(target: "hopper.runners", "A worker ({}) running a pre 2.0 version or sending no version connected: {e}. It is ignored.", clip(id));
                return;
            }
        };
        let ours = wire::PROTOCOL_VERSION;
        match version.as_deref() {
            None => {}
            Some(v) if v == ours => {}
            Some(v) if v.get(..4) == ours.get(..4) => {
                tracing::debug!(target: "hopper.runners", "A worker ({id}) running a different patch version ({v}) connected, master version is {ours}");
            }
            Some(v) => {
                tracing::warn!(target: "hopper.runners", "A worker ({id}) running a different version ({}) connected, master version is {ours}", clip(v));
            }
        }
        let hopper = version.as_deref().is_some_and(wire::is_hopper_version);
        if !hopper {
            tracing::debug!(target: "hopper.runners", "Worker {id} is not a Hopper worker: its precise percentiles are approximated from Locust's buckets");
        }
        let (index, count) = {
            let mut shared = lock(&self.shared);
            let next = shared.indexes.len() as u64;
            let index = *shared.indexes.entry(id.to_string()).or_insert(next);
            shared.stopped.remove(id);
            // A known id connecting again replaces its node, as in Locust.
            shared.nodes.insert(
                id.to_string(),
                Node {
                    state: NodeState::Ready,
                    heartbeat: HEARTBEAT_LIVENESS,
                    cpu_usage: 0.0,
                    memory_usage: 0,
                    user_classes_count: BTreeMap::new(),
                    user_count: 0,
                },
            );
            shared.publish_soon();
            (index, shared.live_count())
        };
        let ack = wire::Ack {
            index,
            hopper: Some(env!("CARGO_PKG_VERSION").to_string()),
        };
        send(&self.sender, "ack", ack.to_value(), id);
        tracing::info!(target: "hopper.runners", "{id} (index {index}) reported as ready. {count} workers connected.");
        self.rebalance();
    }

    fn heartbeat(&self, id: &str, beat: Result<wire::Heartbeat, wire::WireError>) {
        let healed = {
            let mut shared = lock(&self.shared);
            let Some(node) = shared.nodes.get_mut(id) else {
                return;
            };
            let was_missing = node.state == NodeState::Missing;
            let before = node.state;
            node.heartbeat = HEARTBEAT_LIVENESS;
            if let Ok(beat) = beat {
                if let Some(state) = NodeState::from_report(&beat.state) {
                    node.state = state;
                }
                node.cpu_usage = beat.current_cpu_usage;
                node.memory_usage = beat.current_memory_usage;
            } else if was_missing {
                node.state = NodeState::Ready;
            }
            // Most heartbeats change nothing the session shows; publishing walks every
            // worker, so only a change is worth it (1000 workers beat 1000 times a second).
            if node.state != before {
                shared.publish_soon();
            }
            was_missing
        };
        send(&self.sender, "heartbeat", Value::Nil, id);
        if healed {
            tracing::info!(target: "hopper.runners", "Worker {id} self-healed with heartbeat, setting state to {}.", lock(&self.shared).nodes.get(id).map_or("ready", |n| n.state.name()));
            self.rebalance();
        }
    }

    /// Merges a report read by the reference path.
    fn stats(&self, id: &str, report: Result<wire::StatsReport, wire::WireError>) {
        if !self.accepts_report(id) {
            return;
        }
        let mut report = match report {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "hopper.runners", "Dropped a stats report from {} that could not be read: {e}", clip(id));
                return;
            }
        };
        report.merge_into(&mut hopper_stats::global().lock());
        let r = &mut report;
        self.after_report(id, &r.extra, &mut r.user_classes_count, r.user_count);
    }

    /// [`MessageHandler::stats`] for a report read by the fast path: merged straight from
    /// its buffers.
    fn stats_read(&self, id: &str, r: &mut wire::FlatReport) {
        if self.accepts_report(id) {
            r.merge_into(&mut hopper_stats::global().lock());
            self.after_report(id, &r.extra, &mut r.user_classes_count, r.user_count);
        }
    }

    /// Whether a report from `id` counts: from a known worker, or one that stopped lately.
    fn accepts_report(&self, id: &str) -> bool {
        let accepted = {
            let mut shared = lock(&self.shared);
            shared
                .stopped
                .retain(|_, at| at.elapsed() < STOPPED_REPORTS_ACCEPTED);
            shared.nodes.contains_key(id) || shared.stopped.contains_key(id)
        };
        if !accepted {
            tracing::warn!(target: "hopper.runners", "Discarded a stats report from unrecognized worker {} (it has not sent client_ready)", clip(id));
        }
        accepted
    }

    /// What follows a merged report: the `worker_report` event with the report's custom
    /// keys, and the worker's user counts (taken from `user_classes_count` when they moved).
    fn after_report(
        &self,
        id: &str,
        extra: &[(String, Value)],
        user_classes_count: &mut BTreeMap<String, u64>,
        user_count: u64,
    ) {
        let worker_report = &events().worker_report;
        if worker_report.has_listeners() {
            worker_report.fire(&WorkerReport {
                client_id: id.to_string(),
                data: extra
                    .iter()
                    .map(|(k, v)| (k.clone(), wire::to_json(v)))
                    .collect(),
            });
        }
        let mut shared = lock(&self.shared);
        let changed = match shared.nodes.get_mut(id) {
            Some(node)
                if node.user_classes_count != *user_classes_count
                    || node.user_count != user_count =>
            {
                node.user_classes_count = std::mem::take(user_classes_count);
                node.user_count = user_count;
                true
            }
            _ => false,
        };
        // Steady reports repeat the same counts: publish (a walk over every worker) only
        // when they moved.
        if changed {
            shared.publish_soon();
        }
    }

    /// A worker leases rows of a queue feeder: the next ones of the master's copy, each
    /// handed out once. An empty answer marks the queue empty and the worker as having used
    /// its rows (it asks only once those are gone).
    fn feed_lease(&self, id: &str, data: &Value) {
        let known = lock(&self.shared)
            .nodes
            .get(id)
            .is_some_and(|n| n.state.live());
        if !known {
            tracing::warn!(target: "hopper.runners", "Ignored a feeder lease from unrecognized worker {} (it has not sent client_ready)", clip(id));
            return;
        }
        let lease = match wire::FeedLease::from_value(data) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(target: "hopper.runners", "Dropped a feeder lease from {} that could not be read: {e}", clip(id));
                return;
            }
        };
        let count = usize::try_from(lease.count).unwrap_or(usize::MAX);
        let answer = match hopper_core::feeder::cluster::hand_out(&lease.feeder, count) {
            Ok(hand_out) => {
                let mut feeds = lock_feeds(&self.feeds);
                let ledger = feeds.entry(lease.feeder.clone()).or_default();
                ledger.stop_test = hand_out.stop_test;
                if hand_out.rows.is_empty() {
                    ledger.empty = true;
                    ledger.holders.remove(id);
                } else {
                    ledger.holders.insert(id.to_string());
                }
                tracing::debug!(target: "hopper.runners", "Leased {} rows of feeder {} to {id}", hand_out.rows.len(), clip(&lease.feeder));
                wire::FeedRows {
                    feeder: lease.feeder,
                    id: lease.id,
                    exhausted: hand_out.rows.is_empty(),
                    rows: hand_out.rows,
                    error: None,
                }
            }
            Err(e) => {
                tracing::warn!(target: "hopper.runners", "Cannot lease rows to {id}: {e}");
                wire::FeedRows {
                    feeder: lease.feeder,
                    id: lease.id,
                    rows: Vec::new(),
                    exhausted: false,
                    error: Some(e),
                }
            }
        };
        send(&self.sender, wire::FEED_ROWS, answer.to_value(), id);
        self.check_feeds();
    }

    /// Ends the test once a stop-the-test queue is empty and no live worker still holds rows
    /// of it (workers that left took their rows with them: those are lost, never re-issued).
    fn check_feeds(&self) {
        if lock_feeds(&self.feeds).is_empty() {
            return;
        }
        let live: BTreeSet<String> = lock(&self.shared).live_workers().into_iter().collect();
        let mut ended = Vec::new();
        for (name, ledger) in lock_feeds(&self.feeds).iter_mut() {
            if ledger.empty
                && ledger.stop_test
                && !ledger.ended
                && ledger.holders.is_disjoint(&live)
            {
                ledger.ended = true;
                ended.push(name.clone());
            }
        }
        for name in ended {
            tracing::info!(target: "hopper.runners", "Feeder {} ran out of rows on every worker", clip(&name));
            hopper_core::population::quit_test(format!("feeder {name} ran out of rows"));
        }
    }

    fn after_departure(&self) {
        self.check_feeds();
        let (running, live) = {
            let mut shared = lock(&self.shared);
            shared.publish_soon();
            (
                matches!(shared.state, RunnerState::Spawning | RunnerState::Running),
                shared.live_count(),
            )
        };
        if running {
            self.workers_left(live, "quit");
        }
    }

    /// After workers left a running test: the others take their users, or, when none is
    /// left, the test stops (Locust: "The last worker quit/went missing, stopping test.").
    fn workers_left(&self, live: usize, how: &str) {
        if live > 0 {
            self.rebalance();
            return;
        }
        tracing::info!(target: "hopper.runners", "The last worker {how}, stopping test.");
        if how == "quit" && self.quit_when_last_worker_quits {
            // Locust's headless master quits here; a missing worker may still come back.
            hopper_core::population::quit_test("The last worker quit");
            return;
        }
        if let Some(session) = self.session.get().cloned() {
            tokio::spawn(async move {
                let _ = session.stop().await;
            });
        }
    }

    /// Tells the session about changes from workers' messages, at most once per
    /// [`PUBLISH_INTERVAL`] (see there).
    async fn publish_changes(self) {
        let due = lock(&self.shared).publish_due.clone();
        loop {
            due.notified().await;
            tokio::time::sleep(PUBLISH_INTERVAL).await;
            let mut shared = lock(&self.shared);
            if shared.publish_pending {
                shared.publish();
            }
        }
    }

    /// Once a second: count down every worker's heartbeat credit, mark silent ones missing
    /// (their users go to the others at once: Hopper rebalances without waiting 60 s) and
    /// forget those missing for a minute.
    async fn check_heartbeats(self) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        // After a stall (the process was paused, the machine overloaded), count one second,
        // not every missed one: queued heartbeats have not been read yet.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let mut went_missing = Vec::new();
            let (running, live) = {
                let mut shared = lock(&self.shared);
                let mut dead = Vec::new();
                for (id, node) in shared.nodes.iter_mut() {
                    if node.heartbeat < 0 && node.state != NodeState::Missing {
                        node.state = NodeState::Missing;
                        node.user_count = 0;
                        node.user_classes_count.clear();
                        went_missing.push(id.clone());
                    }
                    node.heartbeat -= 1;
                    if node.heartbeat <= HEARTBEAT_DEAD {
                        dead.push(id.clone());
                    }
                }
                for id in &dead {
                    shared.nodes.remove(id);
                }
                if !went_missing.is_empty() || !dead.is_empty() {
                    shared.publish_soon();
                }
                (
                    matches!(shared.state, RunnerState::Spawning | RunnerState::Running),
                    shared.live_count(),
                )
            };
            for id in &went_missing {
                tracing::info!(target: "hopper.runners", "Worker {id} failed to send heartbeat, setting state to missing.");
            }
            if !went_missing.is_empty() {
                self.check_feeds();
                if running {
                    self.workers_left(live, "went missing");
                }
            }
        }
    }
}

/// A peer-supplied string shortened for log lines.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    hopper_stats::text::clip(text, 80)
}
