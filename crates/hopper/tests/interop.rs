//! Interop with real Locust 2.47.0: Hopper workers under a Locust master, Locust workers
//! under a Hopper master, both kinds of workers under one Hopper master (web UI on), and
//! how each side handles the other's version string.
//!
//! Every test runs the real programs (`locust` from a virtualenv, Hopper's `distributed`
//! example, whose classes `Api`, `Browser` and `Feed` match `tests/interop/locustfile.py`)
//! against a [`Target`] on 127.0.0.1, and compares what the master reports after a clean stop
//! with the target's exact per-route counters. Routes: `Api` requests `GET /`, `Browser`
//! `GET /fast`, `Feed` `GET /products`.
//!
//! Locust is found through `HOPPER_LOCUST`, else `<workspace>/.venv/bin/locust`, which
//! `bash scripts/test` installs. When it is missing the tests fail (they never skip).
//!
//! Processes: every child is a [`Running`], whose `Drop` kills it by its pid, so a failing
//! test leaves nothing behind; each runs under the harness's watchdog and with a bounded
//! `-t`; everything listens on 127.0.0.1; the Locust master's port is found free by binding
//! port 0, Hopper masters bind port 0 themselves and the test reads the port from their log.
//!
//! # What "equal" means
//!
//! * **Hopper workers: exact.** On `stop`/`quit` a Hopper worker lets the requests already
//!   on the wire finish and records them (hopper-http's `Drain`), then sends its final
//!   `stats` before its `quit`.
//! * **Locust master: exact, once it has merged both final reports.** Its `quit()`
//!   sends `quit` to the workers, waits 0.5 s for their final reports and then stops
//!   listening (`runners.py`, `MasterRunner.quit`). A worker's `quit` message travels after
//!   its final `stats` on the same connection, so the master's "Worker '…' quit." line proves
//!   the final report was merged: the test requires that line for both workers, then demands
//!   exact equality.
//! * **Locust workers: short by at most one request per Locust user of the class.** With the
//!   default `-s 0` a Locust worker kills each user greenlet at once on `stop`/`quit`
//!   (`User.stop(force=True)`). A user blocked waiting for a response that the target has
//!   already produced (and counted) dies without firing the request event, so that request
//!   is never reported. Each user has at most one request in flight, so per route:
//!   `reported <= target <= reported + (Locust users of the class requesting that route)`,
//!   with the users per Locust worker taken from Locust's own dispatcher. (With 1 ms
//!   responses and 200 ms waits this is rare: none was seen in dozens of runs.) With a stop
//!   timeout (`-s 2`) Locust lets each user finish the request it is in, so
//!   `locust_workers_quit_after_graceful_stop` demands exact totals.
//! * Failures must be 0 on both sides.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::web::{web_addr_from_log, Server};
use common::{
    command, example_bin, run, target_by_route, users_spawned, Output, Running, Summary, Target,
    TempDir,
};
use hopper::demo_target::CounterKey;

/// The version a Hopper worker announces in `client_ready`.
const HOPPER_WORKER_VERSION: &str = concat!("2.47.0+hopper.", env!("CARGO_PKG_VERSION"));

/// Longest wait for a process to get ready (Locust's start-up takes about a second).
const STARTUP: Duration = Duration::from_secs(30);

/// Longest wait for a worker to end after its master has.
const WORKER_EXIT: Duration = Duration::from_secs(15);

/// Class → route it requests.
const ROUTES: [(&str, &str); 3] = [("Api", "/"), ("Browser", "/fast"), ("Feed", "/products")];

/// (method, name) → (requests, failures).
type Totals = BTreeMap<(String, String), (u64, u64)>;

/// Worker id → class → users, as a dispatcher assigns them.
type Distribution = BTreeMap<String, BTreeMap<String, u64>>;

// ---------------------------------------------------------------------------
// Locust
// ---------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `locust` program: `HOPPER_LOCUST`, else the workspace's virtualenv. Fails the test
/// when it is not there.
fn locust_bin() -> PathBuf {
    let (path, source) = match std::env::var_os("HOPPER_LOCUST").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), "HOPPER_LOCUST"),
        None => (
            workspace_root().join(".venv/bin/locust"),
            "the workspace's virtualenv",
        ),
    };
    assert!(
        path.is_file(),
        "Locust 2.47.0 is not installed: {} (from {source}) does not exist. Run \
         `bash scripts/test`, which installs it into .venv, or point HOPPER_LOCUST at a \
         locust 2.47.0 executable.",
        path.display()
    );
    path
}

/// The Python interpreter that runs `locust` (its `#!` line), for asking Locust's own
/// dispatcher how it would spread users.
fn locust_python() -> PathBuf {
    let bin = locust_bin();
    let text = std::fs::read(&bin).unwrap_or_default();
    let first = String::from_utf8_lossy(&text[..text.len().min(512)])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let from_shebang = first
        .strip_prefix("#!")
        .and_then(|rest| rest.split_whitespace().next())
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    let sibling = ["python3", "python"]
        .iter()
        .map(|n| bin.with_file_name(n))
        .find(|p| p.is_file());
    from_shebang.or(sibling).unwrap_or_else(|| {
        panic!(
            "cannot find the Python interpreter of {} (no usable #! line, no python3 next to \
             it); run `bash scripts/test` to install Locust into .venv",
            bin.display()
        )
    })
}

fn locustfile() -> PathBuf {
    workspace_root().join("tests/interop/locustfile.py")
}

/// `locust -f tests/interop/locustfile.py ARGS` in `dir`.
fn locust_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command(&locust_bin(), dir);
    cmd.env("PYTHONUNBUFFERED", "1")
        .arg("-f")
        .arg(locustfile())
        .args(args);
    cmd
}

/// Hopper's `distributed` example with `args` in `dir`.
fn hopper_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command(&example_bin("distributed"), dir);
    cmd.args(args);
    cmd
}

/// Which implementation runs a node.
#[derive(Clone, Copy)]
enum Side {
    Locust,
    Hopper,
}

fn side_command(side: Side, dir: &Path, args: &[&str]) -> Command {
    match side {
        Side::Locust => locust_command(dir, args),
        Side::Hopper => hopper_command(dir, args),
    }
}

/// A master bound to 127.0.0.1:`port` ("0": a free one), with `rest` arguments.
fn spawn_master(side: Side, dir: &Path, port: &str, rest: &[&str]) -> Running {
    let mut args = vec![
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
    ];
    args.extend_from_slice(rest);
    Running::spawn(side_command(side, dir, &args))
}

/// A worker joining the master on 127.0.0.1:`port`.
fn spawn_worker(side: Side, dir: &Path, port: &str) -> Running {
    Running::spawn(side_command(
        side,
        dir,
        &[
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            port,
        ],
    ))
}

/// The last "workers reported N requests" a master's worker_report listener logged (both
/// `examples/distributed.rs` and `tests/interop/locustfile.py` log it).
fn last_reported_sum(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.split("workers reported ").nth(1))
        .filter_map(|rest| rest.strip_suffix(" requests")?.trim().parse().ok())
        .next_back()
}

/// p50 of the Aggregated row of the last "precise, HDR" percentile table a Hopper node
/// printed.
fn precise_aggregated_p50(log: &str) -> Option<f64> {
    let table = log
        .rsplit("Response time percentiles (precise, HDR, ms)")
        .next()?;
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some("Aggregated"))?;
    row.split_whitespace().nth(1)?.parse().ok()
}

/// Everything a cluster printed, for failure messages.
fn dump_cluster(master: &Output, kind: &str, workers: &[Output]) -> String {
    let mut s = master.dump();
    for (i, w) in workers.iter().enumerate() {
        s.push_str(&format!("\n=== {kind} {i}\n{}", w.dump()));
    }
    s
}

/// Everything a master with one Locust and one Hopper worker printed.
fn dump_mixed(master: &Output, locust: &Output, hopper: &Output) -> String {
    format!(
        "{}\n=== Locust worker\n{}\n=== Hopper worker\n{}",
        master.dump(),
        locust.dump(),
        hopper.dump()
    )
}

/// What Locust's `UsersDispatcher` assigns to each of `ids` for `users` users of the
/// locustfile's classes, ramping at once.
fn locust_dispatch(dir: &TempDir, users: u32, ids: &[String]) -> Distribution {
    const SCRIPT: &str = r#"
import importlib.util, json, sys
from locust.dispatch import UsersDispatcher
from locust.runners import WorkerNode
spec = importlib.util.spec_from_file_location("interop_locustfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
users = int(sys.argv[2])
dispatcher = UsersDispatcher(
    worker_nodes=[WorkerNode(i) for i in sys.argv[3:]],
    user_classes=[module.Api, module.Browser, module.Feed],
)
dispatcher.new_dispatch(target_user_count=users, spawn_rate=users)
last = None
for last in dispatcher:
    pass
print(json.dumps(last, sort_keys=True))
"#;
    let script = dir.write("dispatch.py", SCRIPT);
    let mut cmd = command(&locust_python(), dir.path());
    cmd.arg(&script)
        .arg(locustfile())
        .arg(users.to_string())
        .args(ids);
    let out = run(cmd);
    assert_eq!(
        out.code,
        Some(0),
        "Locust's dispatcher failed\n{}",
        out.dump()
    );
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("unreadable dispatcher output ({e})\n{}", out.dump()))
}

/// Users per class over all workers of a distribution.
fn class_totals(distribution: &Distribution) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for counts in distribution.values() {
        for (class, n) in counts {
            *out.entry(class.clone()).or_insert(0) += n;
        }
    }
    out
}

/// Route → users of the class requesting it, for the given workers of a distribution.
fn users_per_route(distribution: &Distribution, workers: &[String]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = ROUTES.iter().map(|(_, r)| (r.to_string(), 0)).collect();
    for id in workers {
        let counts = distribution
            .get(id)
            .unwrap_or_else(|| panic!("worker {id} is not in the distribution {distribution:?}"));
        for (class, route) in ROUTES {
            *out.get_mut(route).unwrap() += counts.get(class).copied().unwrap_or(0);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Processes and logs
// ---------------------------------------------------------------------------

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Waits until the process's stderr contains `needle`; fails the test (the process is killed
/// by its guard) when it does not within `timeout`.
fn expect_log(proc: &mut Running, what: &str, needle: &str, timeout: Duration) {
    if !proc.wait_for_stderr(timeout, |s| s.contains(needle)) {
        panic!(
            "{what} did not log {needle:?} within {timeout:?} (still running, or ended \
             without it)\n--- stderr so far:\n{}",
            proc.stderr_so_far()
        );
    }
}

/// Waits for a worker to end by itself after its master has: it must log `marker` within
/// [`WORKER_EXIT`] (a worker that never got `quit` would run on for a minute).
fn wait_worker(mut proc: Running, what: &str, marker: &str) -> Output {
    expect_log(&mut proc, what, marker, WORKER_EXIT);
    proc.wait()
}

/// The port in Hopper's "Master listening for workers on port N" line.
fn hopper_master_port(proc: &mut Running) -> u16 {
    const MARK: &str = "Master listening for workers on port ";
    expect_log(proc, "the Hopper master", MARK, STARTUP);
    let log = proc.stderr_so_far();
    let line = log.lines().find(|l| l.contains(MARK)).unwrap();
    let rest = &line[line.find(MARK).unwrap() + MARK.len()..];
    rest.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line:?}"))
}

/// The id in a Hopper worker's "Worker <id> connecting to master" line.
fn hopper_worker_id(proc: &mut Running) -> String {
    const MARK: &str = "hopper.worker: Worker ";
    expect_log(proc, "a Hopper worker", MARK, STARTUP);
    let log = proc.stderr_so_far();
    let line = log.lines().find(|l| l.contains(MARK)).unwrap();
    line[line.find(MARK).unwrap() + MARK.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Ids in a master's "<id> (index N) reported as ready. K workers connected." lines, in
/// order, without repeats.
fn ids_reported_ready(log: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for line in log.lines().filter(|l| l.contains(") reported as ready.")) {
        let Some(at) = line.find("runners: ") else {
            continue;
        };
        let rest = &line[at + "runners: ".len()..];
        if let Some(id) = rest.split(" (index ").next() {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

/// Lines logged at WARNING or ERROR (both programs use Locust's `host/LEVEL/logger:` form),
/// except Locust's CPU warnings: those say how busy the shared test machine was (a worker
/// reporting more than 90 % CPU), not how master and worker got on, and a CI run failed on
/// one.
fn warnings_and_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("/WARNING/") || l.contains("/ERROR/") || l.contains("/CRITICAL/"))
        .filter(|l| !l.contains("exceeded cpu threshold") && !l.contains("CPU usage above"))
        .collect()
}

/// The class counts of the last "All users spawned: {...} (N total users)" line.
fn spawned_classes(log: &str) -> (BTreeMap<String, u64>, u64) {
    let (map, total) = users_spawned(log)
        .unwrap_or_else(|| panic!("no \"All users spawned\" line\n--- log:\n{log}"));
    let classes = serde_json::from_str(&map)
        .unwrap_or_else(|e| panic!("unreadable class counts {map:?}: {e}"));
    (classes, total)
}

// ---------------------------------------------------------------------------
// Reported totals
// ---------------------------------------------------------------------------

/// Totals of Locust's `--json` output (one serialized StatsEntry per name, no Aggregated).
fn json_totals(stdout: &str) -> Totals {
    let rows: Vec<serde_json::Value> = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the --json output is not a JSON array ({e}):\n{stdout}"));
    let mut out = Totals::new();
    for row in rows {
        let text = |k: &str| row[k].as_str().unwrap_or_default().to_string();
        let num = |k: &str| {
            row[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{k} is not a count in {row}"))
        };
        let e = out.entry((text("method"), text("name"))).or_default();
        e.0 += num("num_requests");
        e.1 += num("num_failures");
    }
    out
}

/// Totals of a console summary's rows.
fn summary_totals(summary: &Summary) -> Totals {
    summary
        .rows
        .iter()
        .map(|r| ((r.method.clone(), r.name.clone()), (r.reqs, r.fails)))
        .collect()
}

/// Totals of a `PREFIX_stats.csv` file, and its Aggregated row.
fn csv_totals(path: &Path) -> (Totals, (u64, u64)) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("Type,Name,Request Count,Failure Count,"),
        "unexpected CSV header {header:?}"
    );
    let mut rows = Totals::new();
    let mut aggregated = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let count = |i: usize| -> u64 {
            fields[i]
                .parse()
                .unwrap_or_else(|_| panic!("bad count in CSV line {line:?}"))
        };
        if fields[0].is_empty() && fields[1] == "Aggregated" {
            aggregated = Some((count(2), count(3)));
        } else {
            rows.insert(
                (fields[0].to_string(), fields[1].to_string()),
                (count(2), count(3)),
            );
        }
    }
    let aggregated = aggregated.unwrap_or_else(|| panic!("no Aggregated row in\n{text}"));
    (rows, aggregated)
}

fn sum(totals: &Totals) -> (u64, u64) {
    totals
        .values()
        .fold((0, 0), |(r, f), (dr, df)| (r + dr, f + df))
}

/// Compares a master's totals with the target's counters: the same (method, route) keys
/// (every route of the three classes, each requested), no failures anywhere, and per route
/// `reported <= target <= reported + missable[route]` (`missable`: requests the workers may
/// legitimately have left unreported, see the module docs; all zero means exact).
/// Returns the total of requests the target served but the master did not report.
fn assert_matches_target(
    what: &str,
    reported: &Totals,
    snapshot: &BTreeMap<CounterKey, u64>,
    missable: &BTreeMap<String, u64>,
    context: &dyn Fn() -> String,
) -> u64 {
    let target = target_by_route(snapshot);
    let info = || {
        format!(
            "{what}: master (method, name) -> (reqs, fails): {reported:?}\n\
             target (method, route) -> (reqs, status >= 400): {target:?}\n\
             requests the workers may leave unreported, per route: {missable:?}\n{}",
            context()
        )
    };
    let expected_keys: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(_, r)| ("GET".to_string(), r.to_string()))
        .collect();
    assert_eq!(
        target.keys().cloned().collect::<Vec<_>>(),
        expected_keys,
        "the target did not serve exactly the three routes\n{}",
        info()
    );
    assert_eq!(
        reported.keys().cloned().collect::<Vec<_>>(),
        expected_keys,
        "the master does not report exactly the three request names\n{}",
        info()
    );
    let mut missing = 0;
    for (key, (t_reqs, t_errors)) in &target {
        let (r_reqs, r_fails) = reported[key];
        assert_eq!(*t_errors, 0, "the target answered errors\n{}", info());
        assert_eq!(r_fails, 0, "the master reports failures\n{}", info());
        assert!(*t_reqs > 0, "{key:?} was never requested\n{}", info());
        let slack = missable.get(&key.1).copied().unwrap_or(0);
        assert!(
            r_reqs <= *t_reqs && *t_reqs - r_reqs <= slack,
            "{key:?}: the master reports {r_reqs} requests, the target served {t_reqs} \
             (allowed shortfall {slack})\n{}",
            info()
        );
        missing += t_reqs - r_reqs;
    }
    if missing > 0 {
        eprintln!(
            "{what}: the target served {missing} request(s) that Locust workers killed \
             mid-request never reported (allowed, see the module docs)"
        );
    }
    missing
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Two Hopper workers under a real Locust master: Locust counts every request the target
/// served, sees both workers, and spreads users as its own dispatcher says.
#[test]
fn hopper_workers_under_locust_master() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("interop-locust-master");
    let port = free_port().to_string();

    let mut master = spawn_master(
        Side::Locust,
        dir.path(),
        &port,
        &[
            "--headless",
            "-u",
            "8",
            "-r",
            "8",
            "-t",
            "8s",
            "--expect-workers",
            "2",
            "-H",
            target.url(),
            "--json",
        ],
    );
    expect_log(
        &mut master,
        "the Locust master",
        "Starting Locust 2.47.0",
        STARTUP,
    );
    let mut workers: Vec<Running> = (0..2)
        .map(|_| spawn_worker(Side::Hopper, dir.path(), &port))
        .collect();
    let ids: Vec<String> = workers.iter_mut().map(hopper_worker_id).collect();

    let master = master.wait();
    let worker_outputs: Vec<Output> = workers
        .into_iter()
        .map(|w| wait_worker(w, "a Hopper worker", "Got quit message from master"))
        .collect();
    let snapshot = target.finish().snapshot();
    let context = || dump_cluster(&master, "Hopper worker", &worker_outputs);

    master.assert_code(0);
    for w in &worker_outputs {
        assert_eq!(w.code, Some(0), "a Hopper worker failed\n{}", context());
    }

    // Both workers connected, and both said goodbye (their final report came first).
    let ready = ids_reported_ready(&master.stderr);
    for id in &ids {
        assert!(
            ready.contains(id),
            "the Locust master never logged worker {id} as ready\n{}",
            context()
        );
        assert!(
            master.stderr.contains(&format!("Worker '{id}' (index ")),
            "the Locust master did not get worker {id}'s quit (so not necessarily its final \
             report) within its 0.5 s wait\n{}",
            context()
        );
    }
    assert!(
        master.stderr.contains("2 workers connected."),
        "{}",
        context()
    );

    // Users per class as Locust's own dispatcher spreads 8 users over these two workers.
    let expected = locust_dispatch(&dir, 8, &ids);
    let (spawned, total) = spawned_classes(&master.stderr);
    assert_eq!(total, 8, "{}", context());
    assert_eq!(spawned, class_totals(&expected), "{}", context());

    // Final totals: --json rows (per name), and the console Aggregated row (Locust's --json
    // resets the per-name rows before the console summary, not the total).
    let totals = json_totals(&master.stdout);
    assert_matches_target(
        "Locust master",
        &totals,
        &snapshot,
        &BTreeMap::new(),
        &context,
    );
    let aggregated = master.summary().aggregated;
    assert_eq!(
        (aggregated.reqs, aggregated.fails),
        sum(&totals),
        "the console's Aggregated row differs from the --json rows\n{}",
        context()
    );
    // The Hopper workers' report_to_master data reached the Locust master's worker_report
    // listener: it counted every request.
    assert_eq!(
        last_reported_sum(&master.stderr),
        Some(aggregated.reqs),
        "{}",
        context()
    );
    eprintln!(
        "hopper_workers_under_locust_master: {} requests, {:?}",
        aggregated.reqs,
        started.elapsed()
    );
}

/// Two Locust workers under a Hopper master: Hopper's summary and CSV count what the target
/// served, and the workers exit cleanly when the master quits.
#[test]
fn locust_workers_under_hopper_master() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("interop-hopper-master");
    let prefix = dir.path().join("run");
    let prefix = prefix.to_str().unwrap();

    let mut master = spawn_master(
        Side::Hopper,
        dir.path(),
        "0",
        &[
            "--headless",
            "-u",
            "8",
            "-r",
            "8",
            "-t",
            "8s",
            "--expect-workers",
            "2",
            "-H",
            target.url(),
            "--csv",
            prefix,
        ],
    );
    let port = hopper_master_port(&mut master).to_string();
    let workers: Vec<Running> = (0..2)
        .map(|_| spawn_worker(Side::Locust, dir.path(), &port))
        .collect();

    let master = master.wait();
    let worker_outputs: Vec<Output> = workers
        .into_iter()
        .map(|w| wait_worker(w, "a Locust worker", "Shutting down (exit code"))
        .collect();
    let snapshot = target.finish().snapshot();
    let context = || dump_cluster(&master, "Locust worker", &worker_outputs);

    master.assert_code(0);
    for w in &worker_outputs {
        assert_eq!(w.code, Some(0), "a Locust worker failed\n{}", context());
        assert!(
            w.stderr
                .contains("Got quit message from master, shutting down...")
                && w.stderr.contains("Shutting down (exit code 0)"),
            "a Locust worker did not quit on the master's word\n{}",
            context()
        );
    }

    let ids = ids_reported_ready(&master.stderr);
    assert_eq!(ids.len(), 2, "expected two workers\n{}", context());
    let expected = locust_dispatch(&dir, 8, &ids);
    let (spawned, total) = spawned_classes(&master.stderr);
    assert_eq!(total, 8, "{}", context());
    assert_eq!(spawned, class_totals(&expected), "{}", context());

    // Every user ran on a Locust worker.
    let missable = users_per_route(&expected, &ids);
    let summary = master.summary();
    let console = summary_totals(&summary);
    assert_matches_target("Hopper master", &console, &snapshot, &missable, &context);
    assert_eq!(
        (summary.aggregated.reqs, summary.aggregated.fails),
        sum(&console),
        "{}",
        context()
    );
    let (csv, csv_aggregated) = csv_totals(Path::new(&format!("{prefix}_stats.csv")));
    assert_eq!(
        csv,
        console,
        "the CSV differs from the console summary\n{}",
        context()
    );
    assert_eq!(csv_aggregated, sum(&console), "{}", context());
    // Locust workers send only rounded buckets; the master's precise (HDR) table is built
    // from them, so it is filled in, not zero.
    let precise_p50 = precise_aggregated_p50(&master.stderr);
    assert!(
        precise_p50.is_some_and(|p| p > 0.0),
        "no precise percentiles from Locust workers' buckets\n{}",
        context()
    );
    // And the Locust workers' custom data reached the Hopper master's listener.
    assert_eq!(
        last_reported_sum(&master.stderr),
        Some(summary.aggregated.reqs),
        "{}",
        context()
    );
    eprintln!(
        "locust_workers_under_hopper_master: {} requests, {:?}",
        summary.aggregated.reqs,
        started.elapsed()
    );
}

/// One Locust worker and one Hopper worker under a Hopper master with its web UI: while the
/// test runs the API lists both workers with Locust's distribution, and at the end the
/// totals match the target.
#[test]
fn mixed_workers_under_hopper_master_with_web_ui() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("interop-mixed");

    let mut master = spawn_master(
        Side::Hopper,
        dir.path(),
        "0",
        &[
            "--web-host",
            "127.0.0.1",
            "--web-port",
            "0",
            "--autostart",
            "-u",
            "8",
            "-r",
            "8",
            "-t",
            "8s",
            "--autoquit",
            "0",
            "--expect-workers",
            "2",
            "-H",
            target.url(),
        ],
    );
    let port = hopper_master_port(&mut master).to_string();
    expect_log(
        &mut master,
        "the Hopper master",
        "Starting web interface at ",
        STARTUP,
    );
    let web = Server::plain(&web_addr_from_log(&master.stderr_so_far()).expect("web address"));
    let locust_worker = spawn_worker(Side::Locust, dir.path(), &port);
    let mut hopper_worker = spawn_worker(Side::Hopper, dir.path(), &port);
    let hopper_id = hopper_worker_id(&mut hopper_worker);
    expect_log(
        &mut master,
        "the Hopper master",
        "All users spawned: ",
        STARTUP,
    );

    // While running: both workers, running, with Locust's distribution of the 8 users.
    let ids = ids_reported_ready(&master.stderr_so_far());
    assert_eq!(
        ids.len(),
        2,
        "expected two workers\n{}",
        master.stderr_so_far()
    );
    assert!(ids.contains(&hopper_id), "{ids:?} lacks {hopper_id}");
    let locust_id = ids.iter().find(|i| **i != hopper_id).unwrap().clone();
    let expected = locust_dispatch(&dir, 8, &ids);
    let expected_users: BTreeMap<String, u64> = expected
        .iter()
        .map(|(id, c)| (id.clone(), c.values().sum()))
        .collect();
    let until = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats = web.get("/stats/requests").json();
        let workers: BTreeMap<String, (String, u64)> = stats["workers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|w| {
                        (
                            w["id"].as_str().unwrap_or_default().to_string(),
                            (
                                w["state"].as_str().unwrap_or_default().to_string(),
                                w["user_count"].as_u64().unwrap_or(0),
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let settled = workers.len() == 2
            && workers.values().all(|(state, _)| state == "running")
            && workers
                .iter()
                .all(|(id, (_, n))| expected_users.get(id) == Some(n));
        if settled || Instant::now() >= until {
            break (stats, workers, settled);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stats, workers, settled) = stats;
    assert!(
        settled,
        "GET /stats/requests never showed both workers running with Locust's distribution \
         {expected:?}; last workers: {workers:?}\n{stats:#}"
    );
    assert_eq!(
        workers.values().map(|(_, n)| n).sum::<u64>(),
        8,
        "{stats:#}"
    );
    assert_eq!(stats["worker_count"], 2, "{stats:#}");
    assert_eq!(stats["user_count"], 8, "{stats:#}");
    assert_eq!(
        web.get("/worker-count").json(),
        serde_json::json!({"worker_count": 2})
    );

    let master = master.wait();
    let locust_out = wait_worker(
        locust_worker,
        "the Locust worker",
        "Shutting down (exit code",
    );
    let hopper_out = wait_worker(
        hopper_worker,
        "the Hopper worker",
        "Got quit message from master",
    );
    let snapshot = target.finish().snapshot();
    let context = || dump_mixed(&master, &locust_out, &hopper_out);
    master.assert_code(0);
    assert_eq!(locust_out.code, Some(0), "{}", context());
    assert_eq!(hopper_out.code, Some(0), "{}", context());
    let (spawned, total) = spawned_classes(&master.stderr);
    assert_eq!(total, 8, "{}", context());
    assert_eq!(spawned, class_totals(&expected), "{}", context());

    let missable = users_per_route(&expected, std::slice::from_ref(&locust_id));
    let summary = master.summary();
    let console = summary_totals(&summary);
    assert_matches_target("Hopper master", &console, &snapshot, &missable, &context);
    assert_eq!(
        (summary.aggregated.reqs, summary.aggregated.fails),
        sum(&console),
        "{}",
        context()
    );
    eprintln!(
        "mixed_workers_under_hopper_master_with_web_ui: {} requests, {:?}",
        summary.aggregated.reqs,
        started.elapsed()
    );
}

/// A Locust master accepts a Hopper worker's `2.47.0+hopper.<v>` silently: only its DEBUG
/// "different patch version" line, no warning.
#[test]
fn locust_master_takes_hopper_version_without_warning() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("interop-version-locust");
    let port = free_port().to_string();

    let mut master = spawn_master(
        Side::Locust,
        dir.path(),
        &port,
        &[
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
            "--expect-workers",
            "1",
            "-H",
            target.url(),
            "--json",
            "--loglevel",
            "DEBUG",
        ],
    );
    expect_log(
        &mut master,
        "the Locust master",
        "Starting Locust 2.47.0",
        STARTUP,
    );
    let mut worker = spawn_worker(Side::Hopper, dir.path(), &port);
    let id = hopper_worker_id(&mut worker);
    let master = master.wait();
    let worker = wait_worker(worker, "the Hopper worker", "Got quit message from master");
    let snapshot = target.finish().snapshot();
    let context = || format!("{}\n=== Hopper worker\n{}", master.dump(), worker.dump());

    master.assert_code(0);
    assert_eq!(worker.code, Some(0), "{}", context());
    let expected_line = format!(
        "A worker ({id}) running a different patch version ('{HOPPER_WORKER_VERSION}') \
         connected, master version is '2.47.0'"
    );
    assert!(
        master.stderr.contains(&expected_line),
        "the Locust master did not log {expected_line:?}\n{}",
        context()
    );
    assert_eq!(
        warnings_and_errors(&master.stderr),
        Vec::<&str>::new(),
        "the Locust master logged warnings or errors\n{}",
        context()
    );
    assert!(
        master
            .stderr
            .contains(&format!("Worker '{id}' (index 0) quit.")),
        "the Locust master did not get the worker's quit within its 0.5 s wait\n{}",
        context()
    );
    let totals = json_totals(&master.stdout);
    assert_matches_target(
        "Locust master",
        &totals,
        &snapshot,
        &BTreeMap::new(),
        &context,
    );
    eprintln!(
        "locust_master_takes_hopper_version_without_warning: {:?}",
        started.elapsed()
    );
}

/// A Hopper master takes a Locust 2.47.0 worker without any message about versions, and a
/// Hopper worker's `2.47.0+hopper.<v>` with only a DEBUG line.
#[test]
fn hopper_master_takes_both_versions_without_warning() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("interop-version-hopper");

    let mut master = spawn_master(
        Side::Hopper,
        dir.path(),
        "0",
        &[
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
            "--expect-workers",
            "2",
            "-H",
            target.url(),
            "--loglevel",
            "DEBUG",
        ],
    );
    let port = hopper_master_port(&mut master).to_string();
    let locust_worker = spawn_worker(Side::Locust, dir.path(), &port);
    let mut hopper_worker = spawn_worker(Side::Hopper, dir.path(), &port);
    let hopper_id = hopper_worker_id(&mut hopper_worker);
    let master = master.wait();
    let locust_out = wait_worker(
        locust_worker,
        "the Locust worker",
        "Shutting down (exit code",
    );
    let hopper_out = wait_worker(
        hopper_worker,
        "the Hopper worker",
        "Got quit message from master",
    );
    let snapshot = target.finish().snapshot();
    let context = || dump_mixed(&master, &locust_out, &hopper_out);
    master.assert_code(0);
    assert_eq!(locust_out.code, Some(0), "{}", context());
    assert_eq!(hopper_out.code, Some(0), "{}", context());

    let ids = ids_reported_ready(&master.stderr);
    assert_eq!(ids.len(), 2, "expected two workers\n{}", context());
    assert!(ids.contains(&hopper_id), "{}", context());
    let locust_id = ids.iter().find(|i| **i != hopper_id).unwrap().clone();

    assert_eq!(
        warnings_and_errors(&master.stderr),
        Vec::<&str>::new(),
        "the Hopper master logged warnings or errors\n{}",
        context()
    );
    let version_lines: Vec<&str> = master
        .stderr
        .lines()
        .filter(|l| l.contains("running a different"))
        .collect();
    let hopper_line = format!(
        "/DEBUG/hopper.runners: A worker ({hopper_id}) running a different patch version \
         ({HOPPER_WORKER_VERSION}) connected, master version is 2.47.0"
    );
    // One line per client_ready: at connection and again after the stop before quitting.
    assert!(
        !version_lines.is_empty() && version_lines.iter().all(|l| l.contains(&hopper_line)),
        "expected only {hopper_line:?} lines about versions (the Hopper worker announces \
         itself at connection and after the stop), none about the Locust worker \
         {locust_id}: {version_lines:#?}\n{}",
        context()
    );

    let expected = locust_dispatch(&dir, 4, &ids);
    let (spawned, total) = spawned_classes(&master.stderr);
    assert_eq!(total, 4, "{}", context());
    assert_eq!(spawned, class_totals(&expected), "{}", context());
    let missable = users_per_route(&expected, std::slice::from_ref(&locust_id));
    let summary = master.summary();
    assert_matches_target(
        "Hopper master",
        &summary_totals(&summary),
        &snapshot,
        &missable,
        &context,
    );
    eprintln!(
        "hopper_master_takes_both_versions_without_warning: {:?}",
        started.elapsed()
    );
}

/// A headless Hopper master with a stop timeout (`-s 2`) and two Locust workers: at the run
/// time limit the workers must still get `quit`, send their final reports and exit, and
/// with a stop timeout Locust lets every user finish its request, so the totals are exact.
///
/// Locust's own headless master never sends `stop` before `quit` (`MasterRunner.quit()`
/// calls `stop(send_stop_to_client=False)`). A Locust worker answers `stop` with
/// `client_stopped` and then sleeps for the stop timeout before its next `client_ready`;
/// the master forgets it in between, so a master that sends `stop` and then `quit` to the
/// workers it knows misses every Locust worker still asleep.
#[test]
fn locust_workers_quit_after_graceful_stop() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("interop-graceful");
    let prefix = dir.path().join("run");
    let prefix = prefix.to_str().unwrap();

    let mut master = spawn_master(
        Side::Hopper,
        dir.path(),
        "0",
        &[
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
            "-s",
            "2",
            "--expect-workers",
            "2",
            "-H",
            target.url(),
            "--csv",
            prefix,
        ],
    );
    let port = hopper_master_port(&mut master).to_string();
    let workers: Vec<Running> = (0..2)
        .map(|_| spawn_worker(Side::Locust, dir.path(), &port))
        .collect();
    let master = master.wait();
    let mut worker_outputs = Vec::new();
    for w in workers {
        let mut w = w;
        if !w.wait_for_stderr(WORKER_EXIT, |s| s.contains("Shutting down (exit code")) {
            panic!(
                "a Locust worker was still running {WORKER_EXIT:?} after the Hopper master \
                 (-s 2) had ended: it never got `quit`. The master sent `stop` first; the \
                 worker answered `client_stopped`, was dropped from the master's table, and \
                 slept the stop timeout before its `client_ready`, so the master's `quit` \
                 (sent only to the workers in its table) never reached it, and its final \
                 report was lost.\n--- worker stderr:\n{}\n=== master\n{}",
                w.stderr_so_far(),
                master.dump()
            );
        }
        worker_outputs.push(w.wait());
    }
    let snapshot = target.finish().snapshot();
    let context = || dump_cluster(&master, "Locust worker", &worker_outputs);
    master.assert_code(0);
    for w in &worker_outputs {
        assert_eq!(w.code, Some(0), "a Locust worker failed\n{}", context());
    }
    let summary = master.summary();
    assert_matches_target(
        "Hopper master",
        &summary_totals(&summary),
        &snapshot,
        &BTreeMap::new(),
        &context,
    );
    eprintln!(
        "locust_workers_quit_after_graceful_stop: {} requests, {:?}",
        summary.aggregated.reqs,
        started.elapsed()
    );
}
