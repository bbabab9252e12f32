//! Shared helpers for Hopper's end-to-end tests.
//!
//! The tests run the real programs (the `hopper` binary and the example programs built by
//! cargo) as child processes against a real HTTP server on 127.0.0.1 (the crate's
//! [`DemoTarget`]), started in a tokio runtime the test owns. Every child runs under a
//! watchdog that kills it by its pid if it outlives [`WATCHDOG`], and fails the test.
//!
//! Each child gets a fresh temporary directory as its working directory and `HOME`, and no
//! `LOCUST_*` variables, so the developer's own `locust.conf`, `~/.locust.conf` or
//! environment never leak into a test.

#![allow(dead_code)]

pub mod http_servers;
pub mod web;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hopper::demo_target::{CounterKey, Counters, DemoTarget};

/// The longest any child process may run before the watchdog kills it.
pub const WATCHDOG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

/// The `hopper` binary (the built-in demo users).
pub fn hopper_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hopper"))
}

/// An example program built by cargo: `target/<profile>/examples/<name>`, found from this
/// test binary's own path (`target/<profile>/deps/<test>`).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the example program {} is missing: run `cargo build --examples` (or \
         `cargo build -p hopper --examples` with the same profile as the tests) first",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty, uniquely named directory.
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "hopper-it-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates (or replaces) a file relative to the directory, creating parent directories.
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let p = self.path.join(relative);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&p, contents).expect("write file");
        p
    }

    /// Creates a subdirectory and returns its path.
    pub fn subdir(&self, relative: &str) -> PathBuf {
        let p = self.path.join(relative);
        std::fs::create_dir_all(&p).expect("create subdir");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// The HTTP target
// ---------------------------------------------------------------------------

/// A [`DemoTarget`] on 127.0.0.1 with its own tokio runtime, alive as long as this value.
pub struct Target {
    // Declared before the runtime so it is dropped first.
    server: Option<DemoTarget>,
    counters: Arc<Counters>,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl Target {
    pub fn start() -> Target {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime for the target");
        let server = runtime
            .block_on(DemoTarget::start("127.0.0.1:0".parse().unwrap()))
            .expect("start the demo target on 127.0.0.1");
        Target {
            counters: server.counters(),
            url: server.base_url(),
            server: Some(server),
            runtime,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Stops the server gracefully (requests in flight finish first, so every request the
    /// server received is counted) and returns the final counters.
    pub fn finish(mut self) -> Arc<Counters> {
        if let Some(server) = self.server.take() {
            let stopped = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(15), server.shutdown()).await
            });
            assert!(
                stopped.is_ok(),
                "the demo target did not shut down within 15 s"
            );
        }
        Arc::clone(&self.counters)
    }
}

/// Per (method, route) totals of a counters snapshot: (all requests, requests answered with
/// a status >= 400).
pub fn target_by_route(
    snapshot: &BTreeMap<CounterKey, u64>,
) -> BTreeMap<(String, String), (u64, u64)> {
    let mut out: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for (k, n) in snapshot {
        let e = out
            .entry((k.method.to_string(), k.route.to_string()))
            .or_default();
        e.0 += n;
        if k.status >= 400 {
            e.1 += n;
        }
    }
    out
}

/// Number of requests the target answered for this method and route (any status).
pub fn target_count(snapshot: &BTreeMap<CounterKey, u64>, method: &str, route: &str) -> u64 {
    snapshot
        .iter()
        .filter(|(k, _)| k.method == method && k.route == route)
        .map(|(_, n)| n)
        .sum()
}

/// Number of requests to this route, any method and status.
pub fn target_route_count(snapshot: &BTreeMap<CounterKey, u64>, route: &str) -> u64 {
    snapshot
        .iter()
        .filter(|(k, _)| k.route == route)
        .map(|(_, n)| n)
        .sum()
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/// A command for `program` with `dir` as its working directory and `HOME`, no `LOCUST_*`
/// variables, and stdin closed.
pub fn command(program: &Path, dir: &Path) -> Command {
    command_with_home(program, dir, dir)
}

/// Like [`command`], with a separate `HOME`.
pub fn command_with_home(program: &Path, cwd: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd).env("HOME", home).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LOCUST_") {
            cmd.env_remove(&key);
        }
    }
    // Keep the output format independent of the developer's terminal.
    cmd.env_remove("COLUMNS");
    cmd
}

/// What a finished child produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code, `None` if it was ended by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From spawning to the end of the process.
    pub elapsed: Duration,
}

impl Output {
    /// Asserts the exit code, showing the output when it differs.
    pub fn assert_code(&self, expected: i32) -> &Output {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n{}",
            self.dump()
        );
        self
    }

    /// Stdout and stderr, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- exit code: {:?}, elapsed {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// The final summary; fails the test when there is none.
    pub fn summary(&self) -> Summary {
        match parse_summary(&self.stderr) {
            Some(s) => s,
            None => panic!("no final summary found on stderr\n{}", self.dump()),
        }
    }

    /// Asserts that stderr contains `needle`.
    pub fn assert_stderr_contains(&self, needle: &str) -> &Output {
        assert!(
            self.stderr.contains(needle),
            "stderr does not contain {needle:?}\n{}",
            self.dump()
        );
        self
    }

    /// Asserts that stderr does not contain `needle`.
    pub fn assert_stderr_lacks(&self, needle: &str) -> &Output {
        assert!(
            !self.stderr.contains(needle),
            "stderr unexpectedly contains {needle:?}\n{}",
            self.dump()
        );
        self
    }
}

/// A child process under a watchdog, whose stderr is read line by line as it comes.
pub struct Running {
    child: Child,
    pid: u32,
    started: Instant,
    deadline: Instant,
    lines: Receiver<String>,
    stderr: Vec<String>,
    stderr_done: bool,
    stdout: Option<JoinHandle<Vec<u8>>>,
    exited: bool,
}

impl Running {
    /// Spawns the command with piped stdout and stderr.
    pub fn spawn(mut cmd: Command) -> Running {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
        let pid = child.id();
        let mut out = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Running {
            child,
            pid,
            started,
            deadline: started + WATCHDOG,
            lines,
            stderr: Vec::new(),
            stderr_done: false,
            stdout: Some(stdout),
            exited: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The stderr lines read so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.concat()
    }

    /// Reads stderr until `done(all lines so far)` is true. False if the process closed its
    /// stderr (ended) or `timeout` passed first.
    pub fn wait_for_stderr(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let until = (Instant::now() + timeout).min(self.deadline);
        loop {
            if done(&self.stderr_so_far()) {
                return true;
            }
            if self.stderr_done {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stderr.push(line),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => self.stderr_done = true,
            }
        }
    }

    /// Sends a signal to the child by its pid with the `kill` command, e.g. `"TERM"`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run the kill command");
        assert!(status.success(), "kill -{name} {} failed", self.pid);
    }

    fn kill_by_pid(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(self.pid.to_string())
            .status();
        let _ = self.child.wait();
        self.exited = true;
    }

    /// Waits for the process to end by itself (the watchdog kills it and fails the test if
    /// it runs past [`WATCHDOG`]) and returns what it printed.
    pub fn wait(mut self) -> Output {
        let status = loop {
            match self.child.try_wait().expect("poll the child") {
                Some(status) => break status,
                None => {
                    if Instant::now() >= self.deadline {
                        self.kill_by_pid();
                        self.drain_stderr(Duration::from_secs(2));
                        panic!(
                            "watchdog: the process did not end within {WATCHDOG:?}; killed it \
                             (pid {})\n--- stderr so far:\n{}",
                            self.pid,
                            self.stderr_so_far()
                        );
                    }
                    // Keep the stderr pipe flowing while waiting.
                    match self.lines.recv_timeout(Duration::from_millis(20)) {
                        Ok(line) => self.stderr.push(line),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            self.stderr_done = true;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            }
        };
        let elapsed = self.started.elapsed();
        self.exited = true;
        self.drain_stderr(Duration::from_secs(10));
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        Output {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: self.stderr_so_far(),
            elapsed,
        }
    }

    fn drain_stderr(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        while !self.stderr_done {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stderr.push(line),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => self.stderr_done = true,
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that fails while the child runs must not leave it behind.
        if !self.exited {
            if let Ok(None) = self.child.try_wait() {
                self.kill_by_pid();
            }
        }
    }
}

/// Runs the command to completion under the watchdog.
pub fn run(cmd: Command) -> Output {
    Running::spawn(cmd).wait()
}

/// Runs `program` with `args` in `dir` (also its `HOME`) under the watchdog.
pub fn run_in<S: AsRef<OsStr>>(program: &Path, dir: &Path, args: &[S]) -> Output {
    let mut cmd = command(program, dir);
    cmd.args(args);
    run(cmd)
}

// ---------------------------------------------------------------------------
// Console output parsing
// ---------------------------------------------------------------------------

/// One row of a stats table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Empty for the Aggregated row.
    pub method: String,
    pub name: String,
    pub reqs: u64,
    pub fails: u64,
}

/// The final summary: the stats table printed after "Shutting down (exit code N)".
#[derive(Debug, Clone)]
pub struct Summary {
    /// N from the "Shutting down (exit code N)" log line.
    pub logged_exit_code: i32,
    /// Per-name rows, in table order.
    pub rows: Vec<Row>,
    pub aggregated: Row,
}

impl Summary {
    pub fn row(&self, method: &str, name: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.method == method && r.name == name)
    }

    /// Names of all rows, as "METHOD name".
    pub fn names(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| format!("{} {}", r.method, r.name))
            .collect()
    }
}

/// True for the header line of a request stats table (not the percentile tables).
pub fn is_stats_header(line: &str) -> bool {
    line.starts_with("Type ") && line.contains("# reqs") && line.contains("# fails")
}

fn is_separator(line: &str) -> bool {
    line.starts_with("--------|")
}

/// Parses a stats row: `GET      /path     12     3(25.00%) | ...`.
pub fn parse_row(line: &str) -> Option<Row> {
    let left = line.split('|').next()?;
    let method = if left.starts_with(char::is_whitespace) {
        String::new()
    } else {
        left.split_whitespace().next()?.to_string()
    };
    let mut tokens: Vec<&str> = left.split_whitespace().collect();
    if !method.is_empty() {
        tokens.remove(0);
    }
    if tokens.len() < 3 {
        return None;
    }
    let fails_tok = tokens.pop()?;
    let reqs: u64 = tokens.pop()?.parse().ok()?;
    let fails: u64 = fails_tok.split('(').next()?.parse().ok()?;
    if !fails_tok.ends_with("%)") {
        return None;
    }
    Some(Row {
        method,
        name: tokens.join(" "),
        reqs,
        fails,
    })
}

/// Parses the stats table whose header is at `lines[start]`: (rows, aggregated row).
fn parse_table(lines: &[&str], start: usize) -> Option<(Vec<Row>, Row)> {
    let mut i = start + 1;
    if !is_separator(lines.get(i)?) {
        return None;
    }
    i += 1;
    let mut rows = Vec::new();
    while !is_separator(lines.get(i)?) {
        rows.push(parse_row(lines[i])?);
        i += 1;
    }
    let aggregated = parse_row(lines.get(i + 1)?)?;
    if aggregated.name != "Aggregated" || !aggregated.method.is_empty() {
        return None;
    }
    Some((rows, aggregated))
}

/// Index of the (last) "Shutting down (exit code N)" line and N.
fn shutdown_line(lines: &[&str]) -> Option<(usize, i32)> {
    const MARK: &str = "Shutting down (exit code ";
    lines.iter().enumerate().rev().find_map(|(i, l)| {
        let at = l.find(MARK)?;
        let rest = &l[at + MARK.len()..];
        let code = rest[..rest.find(')')?].trim().parse().ok()?;
        Some((i, code))
    })
}

/// The final summary in a run's stderr.
pub fn parse_summary(stderr: &str) -> Option<Summary> {
    let lines: Vec<&str> = stderr.lines().collect();
    let (at, code) = shutdown_line(&lines)?;
    let header = (at + 1..lines.len()).find(|&i| is_stats_header(lines[i]))?;
    let (rows, aggregated) = parse_table(&lines, header)?;
    Some(Summary {
        logged_exit_code: code,
        rows,
        aggregated,
    })
}

/// Stats tables (request tables, not percentile tables) printed before the "Shutting down"
/// line, i.e. the periodic ones; with no such line, all of them.
pub fn periodic_tables(stderr: &str) -> Vec<(Vec<Row>, Row)> {
    let lines: Vec<&str> = stderr.lines().collect();
    let end = shutdown_line(&lines).map_or(lines.len(), |(i, _)| i);
    (0..end)
        .filter(|&i| is_stats_header(lines[i]))
        .filter_map(|i| parse_table(&lines, i))
        .collect()
}

/// Number of stats tables after the "Shutting down" line.
pub fn final_tables(stderr: &str) -> usize {
    let lines: Vec<&str> = stderr.lines().collect();
    match shutdown_line(&lines) {
        Some((at, _)) => lines[at..].iter().filter(|l| is_stats_header(l)).count(),
        None => 0,
    }
}

/// The `{...}` map and total of the last "All users spawned: {...} (N total users)" line.
pub fn users_spawned(stderr: &str) -> Option<(String, u64)> {
    const MARK: &str = "All users spawned: ";
    let line = stderr.lines().rev().find(|l| l.contains(MARK))?;
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let close = rest.rfind(" (")?;
    let map = rest[..close].to_string();
    let total = rest[close + 2..].split_whitespace().next()?.parse().ok()?;
    Some((map, total))
}

// ---------------------------------------------------------------------------
// Hopper vs target
// ---------------------------------------------------------------------------

/// The target's route label for a Hopper request name: the route `renames` gives for the
/// name (e.g. `("/products/[id]", "/products/{id}")`), else the one given for `"*"` (e.g.
/// `("*", "(unmatched)")` when every request goes to a path the target does not know), else
/// the name itself.
pub fn route_for<'a>(renames: &[(&'a str, &'a str)], name: &'a str) -> &'a str {
    renames
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| renames.iter().find(|(n, _)| *n == "*"))
        .map_or(name, |(_, route)| route)
}

/// For a run pointed at a base path the target does not know: the counts match, the target
/// served only 404s (at least one), and Hopper counted every request as a failure, per name
/// and in total.
pub fn assert_all_failed_with_404(out: &Output, counters: &Counters) -> Summary {
    let summary = assert_counts_match(out, counters, &[("*", "(unmatched)")], &[]);
    let snapshot = counters.snapshot();
    assert!(
        snapshot
            .keys()
            .all(|k| k.route == "(unmatched)" && k.status == 404),
        "the target served something other than 404s: {snapshot:?}\n{}",
        out.dump()
    );
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    assert_eq!(
        summary.aggregated.fails,
        summary.aggregated.reqs,
        "{}",
        out.dump()
    );
    for row in &summary.rows {
        assert_eq!(
            row.fails,
            row.reqs,
            "{} {}\n{}",
            row.method,
            row.name,
            out.dump()
        );
    }
    summary
}

/// Compares Hopper's summary with the target's counters, per (method, route) and in total:
/// requests must match exactly, and failures must equal the responses with status >= 400.
///
/// `renames` maps Hopper request names to the target's route labels where they differ (see
/// [`route_for`]).
/// Names in `extra_failures_ok` may report more failures than 4xx/5xx responses (their task
/// also fails responses by content or time with `catch_response`).
pub fn assert_counts_match(
    out: &Output,
    counters: &Counters,
    renames: &[(&str, &str)],
    extra_failures_ok: &[&str],
) -> Summary {
    let summary = out.summary();
    let snapshot = counters.snapshot();
    let target = target_by_route(&snapshot);

    let mut hopper: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for r in &summary.rows {
        let route = route_for(renames, &r.name);
        let e = hopper
            .entry((r.method.clone(), route.to_string()))
            .or_default();
        e.0 += r.reqs;
        e.1 += r.fails;
    }

    let context = || {
        format!(
            "Hopper (method, route) -> (reqs, fails): {hopper:?}\n\
             target (method, route) -> (requests, status >= 400): {target:?}\n\
             target snapshot: {snapshot:?}\n{}",
            out.dump()
        )
    };

    let target_total = counters.total();
    assert_eq!(
        summary.aggregated.reqs,
        target_total,
        "Hopper's Aggregated # reqs differs from the number of requests the target served\n{}",
        context()
    );
    let reqs_of = |m: &BTreeMap<(String, String), (u64, u64)>| -> BTreeMap<(String, String), u64> {
        m.iter().map(|(k, v)| (k.clone(), v.0)).collect()
    };
    assert_eq!(
        reqs_of(&hopper),
        reqs_of(&target),
        "requests per method and route differ between Hopper and the target\n{}",
        context()
    );
    // Failures per (method, route): several request names may share one target route.
    let relaxed: Vec<(String, String)> = summary
        .rows
        .iter()
        .filter(|r| extra_failures_ok.contains(&r.name.as_str()))
        .map(|r| (r.method.clone(), route_for(renames, &r.name).to_string()))
        .collect();
    for (key, (_, fails)) in &hopper {
        let errors = target.get(key).map_or(0, |v| v.1);
        if relaxed.contains(key) {
            assert!(
                *fails >= errors,
                "{key:?}: Hopper reports {fails} failures but the target answered {errors} \
                 with status >= 400\n{}",
                context()
            );
        } else {
            assert_eq!(
                *fails,
                errors,
                "{key:?}: failures reported by Hopper differ from the target's responses with \
                 status >= 400\n{}",
                context()
            );
        }
    }
    let target_errors: u64 = target.values().map(|v| v.1).sum();
    if relaxed.is_empty() {
        assert_eq!(
            summary.aggregated.fails,
            target_errors,
            "Aggregated # fails differs from the target's responses with status >= 400\n{}",
            context()
        );
    } else {
        assert!(summary.aggregated.fails >= target_errors, "{}", context());
    }
    summary
}

// ---------------------------------------------------------------------------------------------
// In-process client tests
// ---------------------------------------------------------------------------------------------

/// Runs `f` with a fresh demo target on 127.0.0.1, a client based on it and its base URL, on
/// a runtime whose threads hand over their statistics when idle; the test fails if `f` takes
/// more than 30 s.
pub fn with_demo_target<F, Fut>(f: F)
where
    F: FnOnce(hopper::HttpClient, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_park(hopper_stats::flush_thread)
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let target = DemoTarget::start("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("the demo target starts");
        let base = target.base_url();
        let client = hopper::HttpClient::new(Some(&base));
        tokio::time::timeout(Duration::from_secs(30), f(client, base))
            .await
            .expect("test finished in time");
        target.shutdown().await;
    });
}

/// The process's merged statistics after every thread has handed over what it recorded.
pub fn synced_stats() -> std::sync::MutexGuard<'static, hopper_stats::RequestStats> {
    assert!(hopper_stats::global().sync(Duration::from_secs(5)));
    hopper_stats::global().lock()
}

/// The failure texts recorded for requests named `name`.
pub fn error_texts(name: &str) -> Vec<String> {
    synced_stats()
        .errors
        .values()
        .filter(|e| e.name == name)
        .map(|e| e.error.clone())
        .collect()
}
