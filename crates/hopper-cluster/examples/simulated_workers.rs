//! Many simulated workers in one light process, to measure what a master costs per worker.
//!
//! Each simulated worker speaks the worker side of Locust 2.47's protocol over its own ZeroMQ
//! DEALER connection, through this crate's [`transport`](hopper_cluster::transport) and
//! [`wire`](hopper_cluster::wire) modules, exactly as a real worker would:
//!
//! * `client_ready` (Hopper's worker version), re-sent every 5 s until the `ack`;
//! * a `heartbeat` every second with its state, a CPU and a memory figure;
//! * a `stats` report every 3 s (each worker at its own phase): while it has no users an
//!   empty report, as an idle worker sends; once it runs users, `--names` request entries, each
//!   with `--requests-per-name` requests spread over the last 3 s (response times, content
//!   lengths, about 1 % failures with their error rows), serialized as Locust's 14-key entries,
//!   plus Hopper's HDR histograms when the master's `ack` says it is a Hopper master (as a
//!   Hopper worker does; `--no-hdr` never sends them);
//! * `spawn` is answered with `spawning` and `spawning_complete` for the counts asked (the
//!   users are imaginary); `stop` with `client_stopped` and a new `client_ready`; `quit` with a
//!   final report and `quit`.
//!
//! The reports are cheap to make: a few report bodies (variants of the same names with
//! different figures) are built once a second with fresh timestamps and shared by all workers;
//! each worker only adds its own user counts and node id around them. At the start the
//! program checks that the bytes it assembles equal what `StatsReport::to_value` and
//! `Message::encode` produce for the same report.
//!
//! When every worker is done (the master told it to quit, or its connection ended), or after
//! `--run-time`, or on Ctrl-C/SIGTERM, it prints one JSON line on stdout with what it sent:
//! `{"workers", "connected", "acked", "spawned", "quit_by_master", "lost", "reports",
//! "full_reports", "hdr_reports", "requests", "failures", "names", ...}`. `requests` and
//! `failures` are the sums over every report sent, which a master that merged all of them
//! shows as its Aggregated totals.
//!
//! ```text
//! hopper --master --headless --expect-workers 1000 -u 1000 -r 1000 -t 60s --master-bind-port 5557 &
//! cargo run --release -p hopper-cluster --example simulated_workers -- --workers 1000 --names 100
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use clap::Parser;
use hopper_cluster::transport::WorkerSocket;
use hopper_cluster::wire::{
    self, encode_value, kind, Ack, Heartbeat, Message, Spawn, SpawningComplete, StatsReport,
};
use hopper_stats::{RequestStats, WorkerReport};
use rmpv::Value;

#[derive(Parser, Debug, Clone)]
#[command(about = "Simulated Locust-protocol workers that load a master with heartbeats and stats")]
struct Args {
    /// The master's host.
    #[arg(long, default_value = "127.0.0.1")]
    master_host: String,
    /// The master's port.
    #[arg(long, default_value_t = 5557)]
    master_port: u16,
    /// How many workers to simulate.
    #[arg(long, default_value_t = 100)]
    workers: usize,
    /// Request names in each report of a running worker.
    #[arg(long, default_value_t = 20)]
    names: usize,
    /// Requests per name in each report (spread over its 3 s).
    #[arg(long, default_value_t = 10)]
    requests_per_name: u64,
    /// New connections per second while the workers connect.
    #[arg(long, default_value_t = 1000.0)]
    connect_rate: f64,
    /// Seconds after which every worker quits, whatever the master does.
    #[arg(long, default_value_t = 120.0)]
    run_time: f64,
    /// Never send Hopper's HDR histograms, even to a Hopper master.
    #[arg(long)]
    no_hdr: bool,
    /// The machine name in the workers' ids (`<name>_<32 hex>`), which the master's
    /// dispatcher uses to spread users over machines.
    #[arg(long, default_value = "simhost")]
    host_name: String,
}

/// Report bodies differing in their figures; worker i uses variant i % VARIANTS.
const VARIANTS: usize = 8;
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const REPORT_INTERVAL: Duration = Duration::from_secs(3);
const CLIENT_READY_RETRY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// What the heartbeats claim (a worker of a few users).
const CLAIMED_CPU_PERCENT: f64 = 2.0;
const CLAIMED_MEMORY_BYTES: u64 = 60 * 1024 * 1024;

/// One report body, encoded: everything but the worker's own user counts and node id.
struct Body {
    /// The encoded `stats`, `stats_total` and `errors` key-value pairs.
    pairs: Vec<u8>,
    /// The encoded `hopper_hdr` key-value pair.
    hdr_pair: Vec<u8>,
    requests: u64,
    failures: u64,
}

/// The bodies of the current second: full ones per variant, and the empty one of an idle
/// worker.
struct Bodies {
    full: Vec<Arc<Body>>,
    empty: Arc<Body>,
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    connect_failures: AtomicU64,
    acked: AtomicU64,
    spawned: AtomicU64,
    quit_by_master: AtomicU64,
    lost: AtomicU64,
    heartbeats: AtomicU64,
    reports: AtomicU64,
    full_reports: AtomicU64,
    hdr_reports: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn now_epoch() -> f64 {
    hopper_stats::now_epoch()
}

/// The request names: REST-like paths, every fifth a POST.
fn request_names(n: usize) -> Vec<(String, &'static str)> {
    (0..n)
        .map(|i| {
            let method = if i % 5 == 4 { "POST" } else { "GET" };
            (format!("/api/v1/resource{i:03}/[id]"), method)
        })
        .collect()
}

/// The statistics of one report of variant `variant`, ending at `now`: every name with
/// `per_name` requests spread over the 3 s before `now`.
fn report_stats(
    names: &[(String, &'static str)],
    per_name: u64,
    variant: u64,
    now: f64,
) -> WorkerReport {
    let window = REPORT_INTERVAL.as_secs_f64();
    let mut stats = RequestStats::new(false, now - window);
    let mut rng = fastrand::Rng::with_seed(variant);
    for (i, (name, method)) in names.iter().enumerate() {
        // Each name has its own typical time: 2 ms to 300 ms, log-uniform.
        let typical = 2.0 * 150f64.powf((i as f64 * 0.618_033_988_7).fract());
        for j in 0..per_name {
            let at = now - window + window * (j as f64 + 0.5) / per_name as f64;
            let tail = if rng.f64() < 0.02 { 5.0 } else { 1.0 };
            let rt = typical * (0.5 + rng.f64()) * tail;
            stats.log_request(method, name, Some(rt), 200 + rng.u64(0..5000), at);
            if rng.f64() < 0.01 {
                let error =
                    format!("HTTPError('500 Server Error: Internal Server Error for url: {name}')");
                stats.log_error(method, name, &error, at);
            }
        }
    }
    stats.take_worker_report(now)
}

/// Encodes one key-value pair of a msgpack map.
fn encode_pair(key: &Value, value: &Value, out: &mut Vec<u8>) {
    encode_value(key, out);
    encode_value(value, out);
}

/// The body of `report` (see [`Body`]).
fn body_of(report: WorkerReport) -> Body {
    let requests = report.stats_total.num_requests;
    let failures = report.stats_total.num_failures;
    let full = StatsReport {
        report,
        user_classes_count: BTreeMap::new(),
        user_count: 0,
        extra: Vec::new(),
        hdr: None,
        hdr_samples: None,
    }
    .to_value(true);
    let mut pairs = Vec::new();
    let mut hdr_pair = Vec::new();
    if let Value::Map(entries) = &full {
        for (k, v) in entries {
            match k.as_str() {
                Some("stats" | "stats_total" | "errors") => encode_pair(k, v, &mut pairs),
                Some(wire::HOPPER_HDR_KEY) => encode_pair(k, v, &mut hdr_pair),
                _ => {}
            }
        }
    }
    Body {
        pairs,
        hdr_pair,
        requests,
        failures,
    }
}

/// A worker's `stats` message: the body with the worker's own counts and id around it, the
/// same bytes as `Message::new("stats", StatsReport{..}.to_value(hdr), id).encode()`.
fn stats_message(body: &Body, counts: &BTreeMap<String, u64>, id: &str, hdr: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.pairs.len() + body.hdr_pair.len() + 128);
    out.push(0x93);
    encode_value(&Value::from(kind::STATS), &mut out);
    // A fixmap of 5 pairs (stats, stats_total, errors, user_classes_count, user_count), 6
    // with the HDR extension, in StatsReport::to_value's order.
    out.push(0x80 | if hdr { 6 } else { 5 });
    out.extend_from_slice(&body.pairs);
    let class_counts = Value::Map(
        counts
            .iter()
            .map(|(k, &v)| (Value::from(k.as_str()), Value::from(v)))
            .collect(),
    );
    encode_pair(&Value::from("user_classes_count"), &class_counts, &mut out);
    let users: u64 = counts.values().sum();
    encode_pair(&Value::from("user_count"), &Value::from(users), &mut out);
    if hdr {
        out.extend_from_slice(&body.hdr_pair);
    }
    encode_value(&Value::from(id), &mut out);
    out
}

fn build_bodies(args: &Args, names: &[(String, &'static str)]) -> Bodies {
    let now = now_epoch();
    let full = (0..VARIANTS as u64)
        .map(|v| Arc::new(body_of(report_stats(names, args.requests_per_name, v, now))))
        .collect();
    let empty = Arc::new(body_of(
        RequestStats::new(false, now - 3.0).take_worker_report(now),
    ));
    Bodies { full, empty }
}

/// Checks that the assembled bytes equal the crate's own encoding, and that they read back.
fn self_check(args: &Args, names: &[(String, &'static str)]) -> Result<(), String> {
    let now = now_epoch();
    let counts: BTreeMap<String, u64> = [("Api".to_string(), 2), ("Feed".to_string(), 1)].into();
    for hdr in [false, true] {
        let report = report_stats(names, args.requests_per_name, 0, now);
        let expected = Message::new(
            kind::STATS,
            StatsReport {
                report: report.clone(),
                user_classes_count: counts.clone(),
                user_count: 3,
                extra: Vec::new(),
                hdr: None,
                hdr_samples: None,
            }
            .to_value(hdr),
            "check_0",
        )
        .encode();
        let got = stats_message(&body_of(report), &counts, "check_0", hdr);
        if got != expected {
            return Err(format!(
                "the assembled stats message (hdr: {hdr}) differs from the wire module's encoding"
            ));
        }
        let message = Message::decode(&got).map_err(|e| format!("own message unreadable: {e}"))?;
        let read = StatsReport::from_value(&message.data)
            .map_err(|e| format!("own report unreadable: {e}"))?;
        if read.report.stats.len() != names.len() || read.hdr.is_some() != hdr {
            return Err("own report reads back with other entries".to_string());
        }
    }
    Ok(())
}

/// A random 32-hex-digit id, as Locust's `uuid4().hex`.
fn hex_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// What ended a worker.
enum End {
    QuitByMaster,
    Lost,
    Deadline,
}

async fn worker(
    index: usize,
    args: Arc<Args>,
    bodies: Arc<RwLock<Arc<Bodies>>>,
    counters: Arc<Counters>,
    deadline: tokio::time::Instant,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let id = format!("{}_{}", args.host_name, hex_id());
    let socket = match WorkerSocket::connect(
        &args.master_host,
        args.master_port,
        &id,
        CONNECT_TIMEOUT,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            add(&counters.connect_failures, 1);
            eprintln!("worker {index}: {e}");
            return;
        }
    };
    add(&counters.connected, 1);
    let (tx, mut rx) = socket.split();
    let send = |kind: &str, data: Value| tx.send(Message::new(kind, data, id.as_str()).encode());
    let client_ready = wire::ClientReady::Version(wire::WORKER_VERSION.to_string());
    send(kind::CLIENT_READY, client_ready.to_value());

    let mut acked = false;
    let mut hdr = false;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut state = "ready";
    let mut last_spawn = f64::MIN;
    let start = tokio::time::Instant::now();
    let mut ready_retry = tokio::time::interval_at(start + CLIENT_READY_RETRY, CLIENT_READY_RETRY);
    let mut heartbeat = tokio::time::interval_at(start + HEARTBEAT_INTERVAL, HEARTBEAT_INTERVAL);
    // Each worker reports at its own phase, as workers started at different times do.
    let phase = REPORT_INTERVAL.mul_f64(fastrand::f64());
    let mut report = tokio::time::interval_at(start + phase, REPORT_INTERVAL);
    for timer in [&mut ready_retry, &mut heartbeat, &mut report] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }

    let send_report = |counts: &BTreeMap<String, u64>, hdr: bool, running: bool| {
        let current = Arc::clone(&bodies.read().unwrap_or_else(|e| e.into_inner()));
        let body = if running {
            &current.full[index % VARIANTS]
        } else {
            &current.empty
        };
        tx.send(stats_message(body, counts, &id, hdr));
        add(&counters.reports, 1);
        if running {
            add(&counters.full_reports, 1);
        }
        if hdr {
            add(&counters.hdr_reports, 1);
        }
        add(&counters.requests, body.requests);
        add(&counters.failures, body.failures);
    };

    let end = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break End::Deadline,
            _ = shutdown.changed() => break End::Deadline,
            _ = ready_retry.tick(), if !acked => send(kind::CLIENT_READY, client_ready.to_value()),
            _ = heartbeat.tick() => {
                let beat = Heartbeat {
                    state: state.to_string(),
                    current_cpu_usage: CLAIMED_CPU_PERCENT,
                    current_memory_usage: CLAIMED_MEMORY_BYTES,
                };
                send(kind::HEARTBEAT, beat.to_value());
                add(&counters.heartbeats, 1);
            }
            _ = report.tick(), if acked => send_report(&counts, hdr, state == "running"),
            received = rx.recv() => {
                let payload = match received {
                    Ok(p) => p,
                    Err(_) => break End::Lost,
                };
                let message = match Message::decode(&payload) {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("worker {index}: unreadable message from the master: {e}");
                        continue;
                    }
                };
                match message.kind.as_str() {
                    kind::ACK => {
                        if !acked {
                            acked = true;
                            add(&counters.acked, 1);
                        }
                        hdr = !args.no_hdr
                            && Ack::from_value(&message.data).is_ok_and(|a| a.hopper.is_some());
                    }
                    kind::SPAWN => match Spawn::from_value(&message.data) {
                        Ok(spawn) if spawn.timestamp > last_spawn => {
                            last_spawn = spawn.timestamp;
                            send(kind::SPAWNING, Value::Nil);
                            counts = spawn.user_classes_count;
                            let user_count = counts.values().sum();
                            let complete = SpawningComplete {
                                user_classes_count: counts.clone(),
                                user_count,
                            };
                            send(kind::SPAWNING_COMPLETE, complete.to_value());
                            if state != "running" {
                                add(&counters.spawned, 1);
                            }
                            state = "running";
                        }
                        Ok(_) => {}
                        Err(e) => eprintln!("worker {index}: unreadable spawn: {e}"),
                    },
                    kind::STOP => {
                        // The users' last seconds, then ready again.
                        if state == "running" {
                            send_report(&counts, hdr, true);
                        }
                        counts.clear();
                        state = "ready";
                        send(kind::CLIENT_STOPPED, Value::Nil);
                        send(kind::CLIENT_READY, client_ready.to_value());
                    }
                    kind::QUIT => break End::QuitByMaster,
                    kind::RECONNECT => {
                        eprintln!("worker {index}: the master asked for a reconnect; leaving");
                        break End::Lost;
                    }
                    // Heartbeat replies, the master's spawning_complete, anything custom.
                    _ => {}
                }
            }
        }
    };
    match end {
        End::QuitByMaster | End::Deadline => {
            // A worker's goodbye: its last statistics, then quit.
            if acked {
                send_report(&counts, hdr, state == "running");
            }
            send(kind::QUIT, Value::Nil);
            if matches!(end, End::QuitByMaster) {
                add(&counters.quit_by_master, 1);
            }
        }
        End::Lost => add(&counters.lost, 1),
    }
    // The last report and quit count as sent: wait until they are written (the master may
    // be reading late), up to a bound.
    tx.close_and_wait(Duration::from_secs(10)).await;
}

/// Raises the soft limit of open files to the hard limit: each worker holds one socket.
fn raise_open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

fn main() {
    let args = Args::parse();
    if args.workers == 0 || args.names == 0 || args.requests_per_name == 0 {
        eprintln!("error: --workers, --names and --requests-per-name must be at least 1");
        std::process::exit(2);
    }
    if args.connect_rate <= 0.0 || args.run_time <= 0.0 {
        eprintln!("error: --connect-rate and --run-time must be positive");
        std::process::exit(2);
    }
    let limit = raise_open_files_limit();
    if (args.workers as u64) + 64 > limit {
        eprintln!(
            "error: {} workers need {} open files, but the limit is {limit}",
            args.workers,
            args.workers + 64
        );
        std::process::exit(2);
    }
    let names = request_names(args.names);
    if let Err(e) = self_check(&args, &names) {
        eprintln!("error: self-check failed: {e}");
        std::process::exit(1);
    }
    // One thread: the simulator shares the machine with the master it measures, and must not
    // take more than one core from it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let summary = runtime.block_on(run(Arc::new(args), names));
    println!("{summary}");
}

async fn run(args: Arc<Args>, names: Vec<(String, &'static str)>) -> serde_json::Value {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.run_time);
    let counters = Arc::new(Counters::default());
    let bodies = Arc::new(RwLock::new(Arc::new(build_bodies(&args, &names))));
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);

    // Fresh timestamps every second.
    let refresher = {
        let (args, bodies, names) = (Arc::clone(&args), Arc::clone(&bodies), names.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let fresh = Arc::new(build_bodies(&args, &names));
                *bodies.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
        })
    };
    let signals = {
        let shutdown_tx = shutdown_tx.clone();
        tokio::spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = shutdown_tx.send(true);
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    let gap = Duration::from_secs_f64(1.0 / args.connect_rate);
    let mut next = tokio::time::Instant::now();
    for index in 0..args.workers {
        if *shutdown_rx.borrow() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep_until(next).await;
        next += gap;
        tasks.spawn(worker(
            index,
            Arc::clone(&args),
            Arc::clone(&bodies),
            Arc::clone(&counters),
            deadline,
            shutdown_rx.clone(),
        ));
    }
    let connecting = started.elapsed().as_secs_f64();
    eprintln!(
        "started {} workers in {connecting:.1} s ({} connected so far)",
        tasks.len(),
        counters.connected.load(Ordering::Relaxed)
    );
    while tasks.join_next().await.is_some() {}
    refresher.abort();
    signals.abort();

    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    serde_json::json!({
        "workers": args.workers,
        "names": args.names,
        "requests_per_name": args.requests_per_name,
        "connected": c(&counters.connected),
        "connect_failures": c(&counters.connect_failures),
        "acked": c(&counters.acked),
        "spawned": c(&counters.spawned),
        "quit_by_master": c(&counters.quit_by_master),
        "lost": c(&counters.lost),
        "heartbeats": c(&counters.heartbeats),
        "reports": c(&counters.reports),
        "full_reports": c(&counters.full_reports),
        "hdr_reports": c(&counters.hdr_reports),
        "requests": c(&counters.requests),
        "failures": c(&counters.failures),
        "elapsed_s": started.elapsed().as_secs_f64(),
    })
}
