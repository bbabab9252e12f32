//! A headless run, start to finish, as Locust's `main()` does it: choose the classes, ramp
//! the users, print the table every 2 s, stop on `--run-time`, Ctrl-C or SIGTERM, print the
//! summary and return Locust's exit code.

use crate::cli::Cli;
use crate::demo_target::DemoTarget;
use hopper_core::{AnyUserClass, LocalRunner, RunnerOptions};
use hopper_stats::console;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// How often the live table is printed (Locust's CONSOLE_STATS_INTERVAL_SEC).
const CONSOLE_STATS_INTERVAL: Duration = Duration::from_secs(2);

/// A setup problem: message for the user and the exit code (Locust uses 1 for these).
pub struct SetupError {
    pub message: String,
    pub code: i32,
}

impl SetupError {
    fn new(message: impl Into<String>) -> SetupError {
        SetupError {
            message: message.into(),
            code: 1,
        }
    }
}

/// Applies Locust's class selection rules: positional names restrict the classes (unknown
/// ones are an error), classes with neither weight nor fixed count are dropped, and names
/// must be unique because they identify classes on the wire.
pub fn select_classes(
    all: &[Arc<dyn AnyUserClass>],
    wanted: &[String],
) -> Result<Vec<Arc<dyn AnyUserClass>>, SetupError> {
    let mut seen = BTreeSet::new();
    for c in all {
        if !seen.insert(c.name()) {
            return Err(SetupError::new(format!(
                "Duplicate user class names: {} is defined twice",
                c.name()
            )));
        }
    }
    let chosen: Vec<Arc<dyn AnyUserClass>> = if wanted.is_empty() {
        all.to_vec()
    } else {
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|w| !all.iter().any(|c| c.name() == w.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(SetupError::new(format!(
                "Unknown User(s): {}\nAvailable: {}",
                missing.join(", "),
                all.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        all.iter()
            .filter(|c| wanted.iter().any(|w| w == c.name()))
            .cloned()
            .collect()
    };
    let chosen: Vec<_> = chosen
        .into_iter()
        .filter(|c| c.weight() > 0.0 || c.fixed_count() > 0)
        .collect();
    if chosen.is_empty() {
        return Err(SetupError::new("No User class found!"));
    }
    Ok(chosen)
}

/// Width of the Name column, as Locust computes it before each table: the terminal width of
/// stdout minus 80, clamped to 0..=80, and 80 when stdout is not a terminal.
fn name_width() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: `winsize` is plain data; TIOCGWINSZ fills it or fails (stdout not a
        // terminal), and the struct is ours for the duration of the call.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 {
            return usize::from(ws.ws_col).saturating_sub(80).min(80);
        }
    }
    80
}

/// Runs a headless test and returns the process exit code.
pub fn headless(cli: &Cli, classes: Vec<Arc<dyn AnyUserClass>>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Each worker thread flushes its statistics shard when it goes idle, so the merged
        // view is complete without the hot path ever taking a lock.
        .on_thread_park(hopper_stats::flush_thread)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hopper: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(run_test(cli, classes));
    // Users and connections are gone; drop the runtime without waiting on stragglers.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn run_test(cli: &Cli, classes: Vec<Arc<dyn AnyUserClass>>) -> i32 {
    let mut host = cli.host.clone().filter(|h| !h.is_empty());
    let demo = if cli.demo {
        match DemoTarget::start(([127, 0, 0, 1], 0).into()).await {
            Ok(t) => {
                tracing::info!(target: "hopper.main", "Demo target listening at {}", t.base_url());
                if host.is_none() {
                    host = Some(t.base_url());
                }
                Some(t)
            }
            Err(e) => {
                eprintln!("hopper: cannot start the demo target on 127.0.0.1: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    // A class host only matters when -H does not override it.
    let class_hosts = classes.iter().filter(|_| host.is_none()).filter_map(|c| {
        Some((
            format!("the host of user class {}", c.name()),
            c.host()?.to_string(),
        ))
    });
    let hosts = host
        .iter()
        .map(|h| ("-H/--host".to_string(), h.clone()))
        .chain(class_hosts);
    for (what, h) in hosts {
        if let Err(e) = hopper_http::BaseUrl::parse(&h) {
            eprintln!("hopper: {what} is not a usable base URL: {e}");
            return 1;
        }
    }
    if host.is_none() {
        for c in classes.iter().filter(|c| c.host().is_none()) {
            tracing::warn!(
                target: "hopper.main",
                "User class {} has no host and none was given with -H/--host: relative URLs will fail",
                c.name()
            );
        }
    }
    tracing::info!(target: "hopper.main", "Starting Hopper {}", env!("CARGO_PKG_VERSION"));
    let mut runner = LocalRunner::new(
        classes,
        RunnerOptions {
            host,
            stop_timeout: Duration::from_secs(cli.stop_timeout),
            tags: cli.tags.as_ref().map(|t| t.iter().cloned().collect()),
            exclude_tags: cli
                .exclude_tags
                .as_ref()
                .map(|t| t.iter().cloned().collect()),
            reset_stats: cli.reset_stats,
        },
    );
    let printer = (!cli.only_summary).then(|| tokio::spawn(print_stats_forever()));
    let users = cli.users.unwrap_or(1);
    let rate = cli.spawn_rate.unwrap_or(1.0);
    // Locust reads `-t 0` as "no limit" (its check is `if options.run_time:`).
    let run_time = cli.run_time.filter(|t| *t > 0);
    match run_time {
        Some(t) => tracing::info!(target: "hopper.main", "Run time limit set to {t} seconds"),
        None => {
            tracing::info!(target: "hopper.main", "No run time limit set, use CTRL+C to interrupt")
        }
    }
    let run_time = run_time.map(Duration::from_secs);
    let mut terminate = sigterm_stream();
    let reason = tokio::select! {
        _ = async {
            runner.start(users, rate).await;
            std::future::pending::<()>().await
        } => unreachable!("the run future never completes"),
        _ = sleep_or_forever(run_time) => "--run-time limit reached",
        _ = tokio::signal::ctrl_c() => "Received Ctrl-C",
        _ = next_sigterm(&mut terminate) => "Got SIGTERM signal",
    };
    tracing::info!(target: "hopper.main", "{reason}, shutting down");
    tokio::select! {
        _ = runner.stop() => {}
        _ = tokio::signal::ctrl_c() => {
            tracing::warn!(target: "hopper.main", "Ctrl-C while stopping: not waiting for users to finish");
        }
        _ = next_sigterm(&mut terminate) => {
            tracing::warn!(target: "hopper.main", "SIGTERM while stopping: not waiting for users to finish");
        }
    }
    if let Some(p) = printer {
        // Wait for the abort to land so no live table can follow the summary.
        p.abort();
        let _ = p.await;
    }
    if let Some(t) = demo {
        t.shutdown().await;
    }
    finish(cli).await
}

/// Collects the final numbers, prints the summary and decides the exit code.
async fn finish(cli: &Cli) -> i32 {
    let width = name_width();
    let complete =
        tokio::task::spawn_blocking(|| hopper_stats::global().sync(Duration::from_secs(5)))
            .await
            .unwrap_or(false);
    if !complete {
        tracing::warn!(target: "hopper.main", "Some statistics could not be collected in time; the summary may miss the last requests");
    }
    let stats = hopper_stats::global().lock();
    // Locust's order: failures or task exceptions, then unhandled errors (exit code 2).
    let code = if !stats.errors.is_empty() || !stats.exceptions.is_empty() {
        cli.exit_code_on_error
    } else if hopper_core::health::unhandled_count() > 0 {
        2
    } else {
        0
    };
    tracing::info!(target: "hopper.main", "Shutting down (exit code {code})");
    // Each table ends with Locust's blank line already.
    let mut out = String::new();
    out.push_str(&console::stats_table(&stats, false, width));
    out.push_str(&console::percentiles_table(&stats, width));
    out.push_str(&console::precise_table(&stats, width));
    out.push_str(&console::error_report_with_width(&stats, width));
    if !stats.exceptions.is_empty() {
        out.push_str(&console::exceptions_report_with_width(&stats, width));
    }
    drop(stats);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
    code
}

/// Prints the live table now and every 2 s, as Locust's stats printer does.
async fn print_stats_forever() {
    let mut ticker = tokio::time::interval(CONSOLE_STATS_INTERVAL);
    loop {
        ticker.tick().await;
        // Let every thread hand over what it recorded, briefly; a slow thread shows up in
        // the next table instead of delaying this one.
        let _ =
            tokio::task::spawn_blocking(|| hopper_stats::global().sync(Duration::from_millis(200)))
                .await;
        let table = console::stats_table(&hopper_stats::global().lock(), true, name_width());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{table}");
        let _ = err.flush();
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The SIGTERM stream, installed once so that every SIGTERM is seen (a handler installed
/// and dropped would leave later signals swallowed).
#[cfg(unix)]
fn sigterm_stream() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
}

#[cfg(not(unix))]
fn sigterm_stream() -> Option<()> {
    None
}

#[cfg(unix)]
async fn next_sigterm(stream: &mut Option<tokio::signal::unix::Signal>) {
    match stream {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_sigterm(_stream: &mut Option<()>) {
    std::future::pending().await
}
