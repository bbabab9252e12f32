//! The worker: connects to a master (Hopper's or Locust's), runs the users it is given and
//! reports statistics, heartbeats, task exceptions and log lines, speaking Locust 2.47's
//! protocol.
//!
//! Unlike Locust's workers it survives its master: when the connection breaks or the
//! master stops answering heartbeats it reconnects with the same identity and announces
//! itself again. Its users keep running while it has no master, for 60 s at most; when it
//! registers again it stops them first (a registering worker is idle to a master, which
//! hands users out again if a test is on).

use crate::proc_stats::ProcessUsage;
use crate::transport::{WorkerReceiver, WorkerSender, WorkerSocket};
use crate::wire::{self, Message};
use hopper_core::events::{events, ReportToMaster, SpawningComplete};
use hopper_core::feeder::{cluster as feeds, LeaseRequest};
use hopper_core::{LocalRunner, RunnerState};
use rmpv::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Heartbeats to the master (Locust's HEARTBEAT_INTERVAL).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Statistics reports (Locust's WORKER_REPORT_INTERVAL).
const REPORT_INTERVAL: Duration = Duration::from_secs(3);
/// Log line shipments (Locust's 10 s).
const LOGS_INTERVAL: Duration = Duration::from_secs(10);
/// How long one connection attempt may take, and the wait for `ack` (Locust's 5 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection attempts before giving up (Locust's CONNECT_RETRY_COUNT).
const CONNECT_RETRIES: u32 = 60;
/// Without a master heartbeat for this long the users are stopped (Locust's
/// MASTER_HEARTBEAT_TIMEOUT); Locust's worker quits instead.
const MASTER_SILENCE_STOP: Duration = Duration::from_secs(60);
/// Without a master heartbeat for this long the worker reconnects and announces itself
/// again: a restarted master does not know it and ignores its heartbeats.
const MASTER_SILENCE_RECONNECT: Duration = Duration::from_secs(5);
/// The longest stop timeout a master can ask for (a day).
const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(86_400);
/// Task exceptions sent per report at most (one message per occurrence, as in Locust).
const MAX_EXCEPTION_MESSAGES: u64 = 100;
/// How long a quitting worker keeps its socket open after its last report and `quit`.
const LAST_MESSAGES_WAIT: Duration = Duration::from_millis(200);

/// How to reach the master.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `--master-host`.
    pub master_host: String,
    /// `--master-port`.
    pub master_port: u16,
    /// `--worker-id`: the identity to use instead of a fresh [`client_id`].
    pub identity: Option<String>,
}

/// Where the worker's log lines come from (the process's recent-lines buffer).
pub type LogSource = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Why the worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    /// The master said `quit`.
    Quit,
    /// The master could not be reached.
    NoMaster(String),
}

/// `<hostname>_<32 hex>`, as Locust names its workers (the dispatcher reads the host part).
pub fn client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    // The host part ends at the first '_', so a host name must not contain one.
    let host = host.replace('_', "-");
    format!(
        "{host}_{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// Runs the worker until the master says `quit` (or cannot be reached, or `shutdown` fires).
pub async fn run_worker(
    mut runner: LocalRunner,
    options: WorkerOptions,
    logs: LogSource,
    shutdown: impl std::future::Future<Output = ()>,
) -> WorkerExit {
    let identity = options
        .identity
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(client_id);
    hopper_core::events::set_role(hopper_core::events::Role::Worker);
    // Queue feeders wait for a master to lease rows from (or to learn it is Locust's).
    feeds::no_master();
    tracing::info!(target: "hopper.worker", "Worker {identity} connecting to master {}:{}", options.master_host, options.master_port);
    let mut worker = Worker {
        identity,
        options,
        logs,
        usage: ProcessUsage::new(),
        last_spawn: f64::NEG_INFINITY,
        hopper_master: false,
        exceptions_sent: BTreeMap::new(),
        last_logs: Vec::new(),
        stop_timeout: Duration::ZERO,
    };
    // Ctrl-C or SIGTERM: the worker says goodbye properly (final statistics, then `quit`,
    // as Locust's worker does) rather than vanishing into "missing".
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let exit = {
        let serve = worker.serve(&mut runner, stop_rx);
        tokio::pin!(serve);
        tokio::pin!(shutdown);
        tokio::select! {
            exit = &mut serve => exit,
            _ = &mut shutdown => {
                let _ = stop_tx.send(true);
                serve.await
            }
        }
    };
    runner.stop().await;
    exit
}

struct Worker {
    identity: String,
    options: WorkerOptions,
    logs: LogSource,
    usage: ProcessUsage,
    /// Timestamp of the last spawn applied; older ones are dropped, as in Locust.
    last_spawn: f64,
    /// The master acked with Hopper's marker: reports may carry HDR histograms.
    hopper_master: bool,
    /// Occurrences of each task exception already sent.
    exceptions_sent: BTreeMap<u64, u64>,
    /// The lines sent last time, to send only when something new was logged.
    last_logs: Vec<String>,
    stop_timeout: Duration,
}

/// What ended one connection.
enum Ended {
    Quit,
    Lost(String),
}

/// One connection's feeder leases: users' requests for rows, and the leases sent to the
/// master and not yet answered.
struct FeedLink {
    requests: mpsc::UnboundedReceiver<LeaseRequest>,
    pending: BTreeMap<u64, oneshot::Sender<Result<(), String>>>,
    next_id: u64,
}

impl FeedLink {
    /// Queue feeders lease from a Hopper master; under a Locust master, which knows no
    /// leases, they read this worker's own copy.
    fn open(hopper_master: bool) -> FeedLink {
        let (tx, requests) = mpsc::unbounded_channel();
        if hopper_master {
            feeds::lease_from_master(tx);
        } else {
            feeds::use_own_copy();
        }
        FeedLink {
            requests,
            pending: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Sends a user's request to the master as `hopper_feed_lease`.
    fn ask(&mut self, worker: &Worker, tx: &WorkerSender, request: LeaseRequest) {
        self.next_id += 1;
        let lease = wire::FeedLease {
            feeder: request.feeder,
            count: request.count as u64,
            id: self.next_id,
        };
        self.pending.insert(self.next_id, request.done);
        worker.send(tx, wire::FEED_LEASE, lease.to_value());
    }

    /// Files the rows of a `hopper_feed_rows` answer and wakes the user waiting for them.
    /// Rows are filed even if that user is gone, so another one takes them.
    fn answered(&mut self, data: &Value) {
        let rows = match wire::FeedRows::from_value(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "hopper.worker", "Dropped a feeder answer from the master that could not be read: {e}");
                // Its lease cannot be told apart: fail them all rather than leave users waiting.
                for (_, done) in std::mem::take(&mut self.pending) {
                    let _ = done.send(Err(format!("the master's answer could not be read: {e}")));
                }
                return;
            }
        };
        let result = match rows.error {
            Some(e) => Err(e),
            None => feeds::deliver(&rows.feeder, rows.rows, rows.exhausted),
        };
        match self.pending.remove(&rows.id) {
            Some(done) => {
                let _ = done.send(result);
            }
            None => {
                if let Err(e) = result {
                    tracing::warn!(target: "hopper.worker", "{e}");
                }
            }
        }
    }
}

impl Worker {
    /// Connects, serves, and reconnects while the master can be found.
    async fn serve(
        &mut self,
        runner: &mut LocalRunner,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> WorkerExit {
        let mut failures = 0u32;
        let mut silent_since: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                return WorkerExit::Quit;
            }
            match self.connect(runner).await {
                Ok((tx, rx, index)) => {
                    failures = 0;
                    tracing::info!(target: "hopper.worker", "Connected to master {}:{} as worker {} (index {index})", self.options.master_host, self.options.master_port, self.identity);
                    // A new master (or the same one again) starts from its own clock, and what
                    // was recorded while disconnected is delivered before any new test clears it.
                    self.last_spawn = f64::NEG_INFINITY;
                    self.report(runner, &tx).await;
                    let mut link = FeedLink::open(self.hopper_master);
                    let ended = self
                        .session(runner, &tx, rx, &mut shutdown, &mut link)
                        .await;
                    if self.hopper_master {
                        feeds::no_master();
                    }
                    match ended {
                        Ended::Quit => return WorkerExit::Quit,
                        Ended::Lost(why) => {
                            tracing::warn!(target: "hopper.worker", "Lost the master ({why}); reconnecting");
                            silent_since = Some(Instant::now());
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures >= CONNECT_RETRIES {
                        let message = format!(
                            "gave up on master {}:{} after {failures} attempts: {e}",
                            self.options.master_host, self.options.master_port
                        );
                        tracing::error!(target: "hopper.worker", "{message}");
                        return WorkerExit::NoMaster(message);
                    }
                    tracing::info!(target: "hopper.worker", "Cannot reach master {}:{} yet (attempt {failures} of {CONNECT_RETRIES}): {e}", self.options.master_host, self.options.master_port);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            if let Some(since) = silent_since {
                if since.elapsed() >= MASTER_SILENCE_STOP
                    && runner.state() != RunnerState::Stopped
                    && runner.state() != RunnerState::Ready
                {
                    tracing::warn!(target: "hopper.worker", "No master for {} s: stopping the users", MASTER_SILENCE_STOP.as_secs());
                    runner.stop().await;
                }
            }
        }
    }

    /// Opens the socket and registers: `client_ready` until `ack`. Users still running from
    /// a lost master are stopped first: `client_ready` tells a master this worker is idle,
    /// and a new master would otherwise count on users it never asked for.
    async fn connect(
        &mut self,
        runner: &mut LocalRunner,
    ) -> Result<(WorkerSender, WorkerReceiver, u64), String> {
        let socket = WorkerSocket::connect(
            &self.options.master_host,
            self.options.master_port,
            &self.identity,
            CONNECT_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
        if !matches!(runner.state(), RunnerState::Ready | RunnerState::Stopped) {
            tracing::info!(target: "hopper.worker", "Stopping the users of the lost master before registering again");
            runner.stop().await;
        }
        let (tx, mut rx) = socket.split();
        self.send(&tx, "client_ready", Value::from(wire::WORKER_VERSION));
        let until = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let payload = tokio::time::timeout(left, rx.recv())
                .await
                .map_err(|_| "no ack from the master within 5 s".to_string())?
                .map_err(|e| e.to_string())?;
            let Ok(message) = Message::decode(&payload) else {
                continue;
            };
            if message.kind == "ack" {
                let ack = wire::Ack::from_value(&message.data).map_err(|e| e.to_string())?;
                self.hopper_master = ack.hopper.is_some();
                return Ok((tx, rx, ack.index));
            }
        }
    }

    fn send(&self, tx: &WorkerSender, kind: &str, data: Value) {
        let message = Message {
            kind: kind.to_string(),
            data,
            node_id: self.identity.clone(),
        };
        tx.send(message.encode());
    }

    /// One connected session: serves the master's commands and sends heartbeats, reports
    /// and logs, until the master says quit or goes away.
    async fn session(
        &mut self,
        runner: &mut LocalRunner,
        tx: &WorkerSender,
        mut rx: WorkerReceiver,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        link: &mut FeedLink,
    ) -> Ended {
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut report = tokio::time::interval(REPORT_INTERVAL);
        let mut logs = tokio::time::interval(LOGS_INTERVAL);
        // After a stall, one tick rather than a burst of them.
        for ticker in [&mut heartbeat, &mut report, &mut logs] {
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        report.reset();
        logs.reset();
        let mut last_master_heartbeat = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    tracing::info!(target: "hopper.worker", "Shutting down: stopping the users and sending the last statistics to the master");
                    runner.stop().await;
                    self.say_goodbye(runner, tx).await;
                    return Ended::Quit;
                }
                received = rx.recv() => {
                    let payload = match received {
                        Ok(p) => p,
                        Err(e) => return Ended::Lost(e.to_string()),
                    };
                    let message = match Message::decode(&payload) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(target: "hopper.worker", "Dropped a message from the master that could not be read: {e}");
                            continue;
                        }
                    };
                    match message.kind.as_str() {
                        "heartbeat" => last_master_heartbeat = Instant::now(),
                        "spawn" => self.spawn(runner, tx, &message.data),
                        "spawning_complete" => spawning_complete(&message.data),
                        "stop" => {
                            if let Some(ended) = self
                                .stop_keeping_contact(runner, tx, &mut rx, &mut last_master_heartbeat, link)
                                .await
                            {
                                return ended;
                            }
                            // The last seconds of the test go to the master before it moves on.
                            self.report(runner, tx).await;
                            self.send(tx, "client_stopped", Value::Nil);
                            self.send(tx, "client_ready", Value::from(wire::WORKER_VERSION));
                        }
                        "quit" => {
                            tracing::info!(target: "hopper.worker", "Got quit message from master, shutting down...");
                            runner.stop().await;
                            self.say_goodbye(runner, tx).await;
                            return Ended::Quit;
                        }
                        "reconnect" => return Ended::Lost("the master asked for a reconnect".into()),
                        wire::FEED_ROWS => link.answered(&message.data),
                        "ack" => {}
                        other => tracing::warn!(target: "hopper.worker", "Unknown message type '{other}' from the master"),
                    }
                }
                _ = heartbeat.tick() => {
                    if last_master_heartbeat.elapsed() >= MASTER_SILENCE_RECONNECT {
                        return Ended::Lost(format!("no heartbeat from the master for {} s", MASTER_SILENCE_RECONNECT.as_secs()));
                    }
                    let (cpu, memory) = self.usage.sample();
                    let state = match runner.state() {
                        RunnerState::Spawning => "spawning",
                        RunnerState::Running | RunnerState::Cleanup | RunnerState::Stopping => "running",
                        RunnerState::Ready | RunnerState::Stopped => "ready",
                    };
                    let beat = wire::Heartbeat {
                        state: state.to_string(),
                        current_cpu_usage: cpu,
                        current_memory_usage: memory,
                    };
                    self.send(tx, "heartbeat", beat.to_value());
                }
                Some(request) = link.requests.recv() => link.ask(self, tx, request),
                _ = report.tick() => self.report(runner, tx).await,
                _ = logs.tick() => self.ship_logs(tx),
            }
        }
    }

    /// Stops the users (which may take the stop timeout) while still sending heartbeats and
    /// hearing the master's, so the master does not take a slow stop for a dead worker.
    /// Returns how the session ended if the connection was lost meanwhile.
    async fn stop_keeping_contact(
        &mut self,
        runner: &mut LocalRunner,
        tx: &WorkerSender,
        rx: &mut WorkerReceiver,
        last_master_heartbeat: &mut Instant,
        link: &mut FeedLink,
    ) -> Option<Ended> {
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut quit = false;
        {
            let stopping = runner.stop();
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    _ = &mut stopping => break,
                    _ = heartbeat.tick() => {
                        // Locust's workers report `running` until they register again.
                        let (cpu, memory) = self.usage.sample();
                        let beat = wire::Heartbeat {
                            state: "running".to_string(),
                            current_cpu_usage: cpu,
                            current_memory_usage: memory,
                        };
                        self.send(tx, "heartbeat", beat.to_value());
                    }
                    // Users finishing their last task may still lease rows.
                    Some(request) = link.requests.recv() => link.ask(self, tx, request),
                    received = rx.recv() => match received {
                        Ok(payload) => match Message::decode(&payload) {
                            Ok(m) if m.kind == "heartbeat" => *last_master_heartbeat = Instant::now(),
                            // A quit while stopping is honoured once the users have ended.
                            Ok(m) if m.kind == "quit" => quit = true,
                            Ok(m) if m.kind == wire::FEED_ROWS => link.answered(&m.data),
                            _ => {}
                        },
                        Err(e) => {
                            stopping.await;
                            return Some(Ended::Lost(e.to_string()));
                        }
                    },
                }
            }
        }
        if quit {
            tracing::info!(target: "hopper.worker", "Got quit message from master, shutting down...");
            self.say_goodbye(runner, tx).await;
            return Some(Ended::Quit);
        }
        None
    }

    fn spawn(&mut self, runner: &mut LocalRunner, tx: &WorkerSender, data: &Value) {
        let spawn = match wire::Spawn::from_value(data) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(target: "hopper.worker", "Dropped a spawn message that could not be read: {e}");
                return;
            }
        };
        self.send(tx, "spawning", Value::Nil);
        // The ramp goes on until the master says it is complete.
        hopper_core::population::set_spawning_complete(false);
        if spawn.timestamp <= self.last_spawn {
            tracing::warn!(target: "hopper.worker", "Discarded a spawn message older than the last one");
            return;
        }
        self.last_spawn = spawn.timestamp;
        if let Some(host) = spawn.host.as_deref().filter(|h| !h.is_empty()) {
            runner.set_host(Some(host));
        }
        // Locust's workers take the master's tags (they apply when a test starts).
        if let Some((tags, exclude)) = tags_from_options(&spawn.parsed_options) {
            runner.set_tags(tags, exclude);
        }
        // Whatever number a master sends (NaN, infinite, huge) becomes a usable timeout.
        self.stop_timeout = Duration::try_from_secs_f64(spawn.stop_timeout.max(0.0))
            .unwrap_or(MAX_STOP_TIMEOUT)
            .min(MAX_STOP_TIMEOUT);
        runner.set_stop_timeout(self.stop_timeout);
        let counts: BTreeMap<String, u32> = spawn
            .user_classes_count
            .iter()
            .map(|(k, v)| (k.clone(), u32::try_from(*v).unwrap_or(u32::MAX)))
            .collect();
        if matches!(runner.state(), RunnerState::Ready | RunnerState::Stopped) {
            // A new test starts from cleared statistics: count its exceptions from zero.
            self.exceptions_sent.clear();
        }
        runner.apply_counts(&counts);
        let running = runner.user_classes_count();
        let complete = wire::SpawningComplete {
            user_classes_count: running
                .iter()
                .map(|(k, v)| (k.clone(), *v as u64))
                .collect(),
            user_count: running.values().sum::<usize>() as u64,
        };
        self.send(tx, "spawning_complete", complete.to_value());
    }

    /// Sends the statistics recorded since the last report (every report is a delta), and
    /// one `exception` message per new task exception.
    /// A quitting worker's last words: its final statistics, then `quit`. The socket stays
    /// open a moment after them: the `zeromq` crate writes in the background, and closing
    /// the socket at once can drop what it has not written yet (a CI run lost a worker's
    /// last report and quit that way).
    async fn say_goodbye(&mut self, runner: &mut LocalRunner, tx: &WorkerSender) {
        self.report(runner, tx).await;
        self.send(tx, "quit", Value::Nil);
        tokio::time::sleep(LAST_MESSAGES_WAIT).await;
    }

    async fn report(&mut self, runner: &mut LocalRunner, tx: &WorkerSender) {
        let _ =
            tokio::task::spawn_blocking(|| hopper_stats::global().sync(Duration::from_millis(200)))
                .await;
        let counts = runner.user_classes_count();
        let (report, exceptions) = {
            let mut stats = hopper_stats::global().lock();
            let report = stats.take_worker_report(hopper_stats::now_epoch());
            let exceptions: Vec<(u64, u64, String, String)> = stats
                .exceptions
                .iter()
                .map(|(k, e)| (*k, e.count, e.msg.clone(), e.traceback.clone()))
                .collect();
            (report, exceptions)
        };
        let custom = ReportToMaster::new(self.identity.clone());
        events().report_to_master.fire(&custom);
        let payload = wire::StatsReport {
            report,
            user_classes_count: counts.iter().map(|(k, v)| (k.clone(), *v as u64)).collect(),
            user_count: counts.values().sum::<usize>() as u64,
            extra: custom
                .into_data()
                .iter()
                .map(|(k, v)| (k.clone(), wire::from_json(v)))
                .collect(),
            hdr: None,
            hdr_samples: None,
        };
        self.send(tx, "stats", payload.to_value(self.hopper_master));
        for (key, count, msg, traceback) in exceptions {
            let sent = self.exceptions_sent.entry(key).or_insert(0);
            let new = count.saturating_sub(*sent).min(MAX_EXCEPTION_MESSAGES);
            *sent = count;
            for _ in 0..new {
                let e = wire::ExceptionReport {
                    msg: msg.clone(),
                    traceback: traceback.clone(),
                };
                self.send(tx, "exception", e.to_value());
            }
        }
    }

    /// Every 10 s, the recent log lines when there are new ones.
    fn ship_logs(&mut self, tx: &WorkerSender) {
        let lines = (self.logs)();
        if lines.is_empty() || lines == self.last_logs {
            return;
        }
        self.last_logs = lines.clone();
        let logs = wire::Logs {
            worker_id: self.identity.clone(),
            logs: lines,
        };
        self.send(tx, "logs", logs.to_value());
    }
}

/// The master's word that the whole ramp is complete: the worker's users may now meet at
/// an all-users rendezvous, and `spawning_complete` listeners hear the test's total.
fn spawning_complete(data: &Value) {
    match wire::spawning_complete_user_count(data) {
        Ok(user_count) => {
            hopper_core::population::set_spawning_complete(true);
            events()
                .spawning_complete
                .fire(&SpawningComplete { user_count });
        }
        Err(e) => {
            tracing::warn!(target: "hopper.worker", "Dropped a spawning_complete message that could not be read: {e}");
        }
    }
}

/// `tags` and `exclude_tags` from a spawn's options, when the master sent them (a list, or
/// nil for none).
#[allow(clippy::type_complexity)]
fn tags_from_options(
    options: &Value,
) -> Option<(
    Option<std::collections::BTreeSet<String>>,
    Option<std::collections::BTreeSet<String>>,
)> {
    let map = options.as_map()?;
    let get = |name: &str| {
        map.iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
    };
    let list = |v: Option<&Value>| -> Option<std::collections::BTreeSet<String>> {
        v?.as_array().map(|items| {
            items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
    };
    if get("tags").is_none() && get("exclude_tags").is_none() {
        return None;
    }
    Some((list(get("tags")), list(get("exclude_tags"))))
}
