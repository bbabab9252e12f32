//! Whole runs: the run time, exit codes, the console tables, --reset-stats, and a clean
//! shutdown on SIGTERM and Ctrl-C (SIGINT).

mod common;

use common::*;
use std::time::Duration;

/// Runs the quickstart example against a fresh target; returns the output and counters.
fn quickstart(
    host_suffix: &str,
    args: &[&str],
) -> (Output, std::sync::Arc<hopper::demo_target::Counters>) {
    let dir = TempDir::new("run");
    let target = Target::start();
    let host = format!("{}{host_suffix}", target.url());
    let mut cmd = command(&example_bin("quickstart"), dir.path());
    cmd.args(["-H", &host, "--headless"]).args(args);
    let out = run(cmd);
    (out, target.finish())
}

// ---- Run time -------------------------------------------------------------------------

fn assert_run_time_honoured(t: &str) {
    let (out, counters) = quickstart("", &["-u", "3", "-r", "3", "-t", t]);
    out.assert_code(0)
        .assert_stderr_contains("Run time limit set to 3 seconds")
        .assert_stderr_contains("--run-time limit reached");
    let summary = assert_counts_match(&out, &counters, &[], &[]);
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    // Generous sanity bounds only: the run lasted at least its run time and ended by itself
    // well before the watchdog.
    assert!(
        out.elapsed >= Duration::from_secs(3),
        "the process ended after {:?}, before its 3 s run time\n{}",
        out.elapsed,
        out.dump()
    );
    assert!(
        out.elapsed < Duration::from_secs(33),
        "the process took {:?} for a 3 s run\n{}",
        out.elapsed,
        out.dump()
    );
}

#[test]
fn run_time_with_unit_is_honoured() {
    assert_run_time_honoured("3s");
}

#[test]
fn run_time_in_plain_seconds_is_honoured() {
    assert_run_time_honoured("3");
}

// ---- Exit codes ------------------------------------------------------------------------

#[test]
fn no_failures_exit_0() {
    let (out, counters) = quickstart("", &["-u", "5", "-r", "5", "-t", "2s"]);
    out.assert_code(0)
        .assert_stderr_contains("Shutting down (exit code 0)");
    let summary = out.summary();
    assert_eq!(summary.aggregated.fails, 0, "{}", out.dump());
    assert!(counters.total() > 0);
    assert!(counters.snapshot().keys().all(|k| k.status < 400));
}

#[test]
fn failures_exit_1_by_default() {
    let (out, counters) = quickstart("/missing", &["-u", "3", "-r", "3", "-t", "2s"]);
    out.assert_code(1)
        .assert_stderr_contains("Shutting down (exit code 1)");
    assert_all_failed_with_404(&out, &counters);
}

#[test]
fn exit_code_on_error_is_used_when_requests_fail() {
    let (out, _) = quickstart(
        "/missing",
        &[
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "2s",
            "--exit-code-on-error",
            "3",
        ],
    );
    out.assert_code(3)
        .assert_stderr_contains("Shutting down (exit code 3)");
    assert!(out.summary().aggregated.fails > 0, "{}", out.dump());
}

#[test]
fn exit_code_on_error_is_not_used_without_failures() {
    let (out, _) = quickstart(
        "",
        &[
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "2s",
            "--exit-code-on-error",
            "3",
        ],
    );
    out.assert_code(0);
    assert_eq!(out.summary().aggregated.fails, 0, "{}", out.dump());
}

#[test]
fn demo_users_with_failures_exit_1() {
    // The demo users hit /flaky (500 about 10 % of the time) and products that do not exist
    // (404 for 2 ids in 12). Pointed at a base path the target does not know, every request
    // fails, so the outcome does not depend on luck.
    let dir = TempDir::new("demo-fail");
    let target = Target::start();
    let host = format!("{}/nowhere", target.url());
    let out = run_in(
        &hopper_bin(),
        dir.path(),
        &["-H", &host, "--headless", "-u", "4", "-r", "4", "-t", "2s"],
    );
    let counters = target.finish();
    out.assert_code(1);
    assert_all_failed_with_404(&out, &counters);
}

#[test]
fn demo_binary_with_its_own_target() {
    // `--demo` starts the built-in target in the process; nothing else is needed.
    let dir = TempDir::new("demo");
    let out = run_in(
        &hopper_bin(),
        dir.path(),
        &["--demo", "--headless", "-u", "4", "-r", "4", "-t", "2s"],
    );
    out.assert_stderr_contains("Demo target listening at http://127.0.0.1:");
    let summary = out.summary();
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    let expected = if summary.aggregated.fails > 0 { 1 } else { 0 };
    out.assert_code(expected);
}

// ---- Console tables ------------------------------------------------------------------------

#[test]
fn only_summary_prints_no_periodic_table() {
    let (out, _) = quickstart("", &["-u", "3", "-r", "3", "-t", "3s", "--only-summary"]);
    out.assert_code(0);
    assert_eq!(
        periodic_tables(&out.stderr).len(),
        0,
        "--only-summary printed a periodic table\n{}",
        out.dump()
    );
    assert_eq!(final_tables(&out.stderr), 1, "{}", out.dump());
    assert!(out.summary().aggregated.reqs > 0, "{}", out.dump());
}

#[test]
fn periodic_tables_are_printed_by_default() {
    let (out, _) = quickstart("", &["-u", "3", "-r", "3", "-t", "3s"]);
    out.assert_code(0);
    let periodic = periodic_tables(&out.stderr);
    assert!(
        !periodic.is_empty(),
        "no periodic table during a 3 s run\n{}",
        out.dump()
    );
    assert_eq!(final_tables(&out.stderr), 1, "{}", out.dump());
    // The live tables count up to the final one.
    let summary = out.summary();
    for (_, aggregated) in &periodic {
        assert!(aggregated.reqs <= summary.aggregated.reqs, "{}", out.dump());
    }
}

#[test]
fn reset_stats_resets_when_spawning_completes() {
    let (out, counters) = quickstart("", &["-u", "5", "-r", "100", "-t", "2s", "--reset-stats"]);
    out.assert_code(0);
    let spawned = out
        .stderr
        .find("All users spawned")
        .unwrap_or_else(|| panic!("no 'All users spawned'\n{}", out.dump()));
    let reset = out
        .stderr
        .find("Resetting stats")
        .unwrap_or_else(|| panic!("no 'Resetting stats'\n{}", out.dump()));
    assert!(
        reset > spawned,
        "stats reset before spawning completed\n{}",
        out.dump()
    );
    let summary = out.summary();
    assert!(
        summary.aggregated.reqs <= counters.total(),
        "{}",
        out.dump()
    );
    assert_eq!(final_tables(&out.stderr), 1, "{}", out.dump());
}

#[test]
fn no_reset_stats_without_the_option() {
    let (out, _) = quickstart("", &["-u", "2", "-r", "100", "-t", "2s"]);
    out.assert_code(0).assert_stderr_lacks("Resetting stats");
}

// ---- Signals --------------------------------------------------------------------------

/// Starts quickstart without a run time, waits for the first stats table (and for spawning to
/// complete), sends `signal`, and returns the output of the process ending by itself.
fn run_until_signal(signal: &str, host_suffix: &str, extra: &[&str]) -> Output {
    let dir = TempDir::new("signal");
    let target = Target::start();
    let host = format!("{}{host_suffix}", target.url());
    let mut cmd = command(&example_bin("quickstart"), dir.path());
    cmd.args(["-H", &host, "--headless", "-u", "3", "-r", "3"])
        .args(extra);
    let mut child = Running::spawn(cmd);
    let ready = child.wait_for_stderr(Duration::from_secs(30), |s| {
        s.contains("All users spawned") && s.lines().any(is_stats_header)
    });
    assert!(
        ready,
        "no stats table within 30 s\n{}",
        child.stderr_so_far()
    );
    // The run is up; give the main loop a moment past its first poll before signalling.
    std::thread::sleep(Duration::from_millis(300));
    child.signal(signal);
    let out = child.wait();
    drop(target);
    assert!(
        out.elapsed < Duration::from_secs(40),
        "the process took {:?} to stop after {signal}\n{}",
        out.elapsed,
        out.dump()
    );
    out.assert_stderr_lacks("Run time limit set to");
    out
}

#[test]
fn sigterm_shuts_down_cleanly_with_summary() {
    let out = run_until_signal("TERM", "", &[]);
    out.assert_code(0);
    let summary = out.summary();
    assert_eq!(summary.logged_exit_code, 0);
    assert_eq!(summary.aggregated.fails, 0, "{}", out.dump());
}

#[test]
fn sigint_shuts_down_cleanly_with_summary() {
    let out = run_until_signal("INT", "", &[]);
    out.assert_code(0);
    let summary = out.summary();
    assert_eq!(summary.logged_exit_code, 0);
}

#[test]
fn sigterm_keeps_locusts_exit_code_rules() {
    let out = run_until_signal("TERM", "/missing", &["--exit-code-on-error", "3"]);
    out.assert_code(3);
    let summary = out.summary();
    assert_eq!(summary.logged_exit_code, 3);
    assert!(summary.aggregated.fails > 0, "{}", out.dump());
}

#[test]
fn run_time_zero_means_no_limit() {
    // Locust reads `-t 0` as "no limit": the run goes on until it is stopped.
    let out = run_until_signal("TERM", "", &["-t", "0"]);
    out.assert_code(0)
        .assert_stderr_contains("No run time limit set");
    assert!(out.summary().aggregated.reqs > 0, "{}", out.dump());
}

// ---- Logging ----------------------------------------------------------------------------

#[test]
fn logfile_takes_the_log_and_stats_stay_on_stderr() {
    let dir = TempDir::new("logfile");
    let log = dir.path().join("logs/hopper.log");
    let (out, _counters) = quickstart(
        "",
        &[
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "1s",
            "--logfile",
            log.to_str().unwrap(),
        ],
    );
    out.assert_code(0)
        // The tables are not log lines: they stay on stderr, as Locust's stats logger does.
        .assert_stderr_contains("Response time percentiles (approximated)")
        .assert_stderr_lacks("Run time limit set to");
    let text = std::fs::read_to_string(&log).expect("the log file (and its directory) exist");
    assert!(
        text.contains("/INFO/hopper.main: Run time limit set to 1 seconds"),
        "{text}"
    );
    // Locust's line layout: [date time,ms] host/LEVEL/logger: message
    let first = text.lines().next().unwrap();
    assert!(first.starts_with('[') && first.contains("] "), "{first}");
}

#[test]
fn loglevel_warning_hides_info_lines() {
    let (out, _counters) = quickstart("", &["-u", "1", "-r", "1", "-t", "1s", "-L", "warning"]);
    out.assert_code(0)
        .assert_stderr_lacks("Run time limit set to")
        .assert_stderr_contains("Response time percentiles (approximated)");
}

#[test]
fn sigterm_while_users_finish_their_tasks_ends_the_wait() {
    // A target that accepts connections and never answers: every user stays in its request,
    // so with -s 60 the stop would wait a minute for them. A SIGTERM during that wait must
    // end it, print the summary and exit.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", listener.local_addr().unwrap());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let holder = held.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            holder.lock().unwrap().push(sock);
        }
    });
    let dir = TempDir::new("sigterm-stop");
    let mut cmd = command(&hopper_bin(), dir.path());
    cmd.args([
        "-H",
        &host,
        "--headless",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "1s",
        "-s",
        "60",
    ]);
    let mut child = Running::spawn(cmd);
    let stopping = child.wait_for_stderr(Duration::from_secs(30), |s| {
        s.contains("--run-time limit reached, shutting down")
    });
    assert!(stopping, "{}", child.stderr_so_far());
    child.signal("TERM");
    let out = child.wait();
    out.assert_stderr_contains("SIGTERM while stopping");
    let summary = out.summary();
    assert_eq!(Some(summary.logged_exit_code), out.code, "{}", out.dump());
    // Far less than the 60 s stop timeout (a generous bound, not a timing measurement).
    assert!(out.elapsed < Duration::from_secs(40), "{}", out.dump());
    drop(held);
}
