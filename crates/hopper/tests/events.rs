//! Events, hooks and rendezvous end to end: the `events` and `rendezvous` examples run as
//! real processes (alone, and as a Hopper master with Hopper workers) against the demo
//! target on 127.0.0.1, and their listeners' conclusions are checked against the recorded
//! statistics and the target's own counters.

mod common;

use common::*;
use std::time::Duration;

/// The number logged in "events example: N slow requests, M failed tasks".
fn logged_counts(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("events example: ") && l.contains(" slow requests, "))
        .unwrap_or_else(|| panic!("no counts logged\n{stderr}"));
    let after = &line[line.find("events example: ").unwrap() + "events example: ".len()..];
    let words: Vec<&str> = after.split_whitespace().collect();
    (
        words[0].parse().unwrap(),
        words[3].trim_end_matches(',').parse().unwrap(),
    )
}

fn events_run(target: &Target, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let dir = TempDir::new("events");
    let mut cmd = command(&example_bin("events"), dir.path());
    cmd.args([
        "-H",
        target.url(),
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "2s",
    ]);
    cmd.args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}

/// `example` as a headless master on a free port of 127.0.0.1 waiting for two workers,
/// with `load` (users, rate, run time) against `target`, and two `example` workers `ids`.
fn cluster(
    example: &str,
    dir: &TempDir,
    target: &Target,
    load: &[&str],
    ids: [&str; 2],
) -> (Running, Vec<Running>) {
    let mut cmd = command(&example_bin(example), dir.path());
    cmd.args([
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        "0",
        "--headless",
        "--expect-workers",
        "2",
        "-H",
        target.url(),
    ]);
    cmd.args(load);
    let mut master = Running::spawn(cmd);
    const MARK: &str = "Master listening for workers on port ";
    assert!(master.wait_for_stderr(Duration::from_secs(20), |s| s.contains(MARK)));
    let port = master
        .stderr_so_far()
        .lines()
        .find_map(|l| l.split(MARK).nth(1).map(|p| p.trim().to_string()))
        .expect("the master's port");
    let workers = ids
        .iter()
        .map(|id| {
            let mut cmd = command(&example_bin(example), dir.path());
            cmd.args([
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                &port,
                "--worker-id",
                id,
            ]);
            Running::spawn(cmd)
        })
        .collect();
    (master, workers)
}

#[test]
fn listeners_see_every_request_and_task_error_and_quitting_decides_the_exit_code() {
    let target = Target::start();
    // Requests failed, but the quitting listener finds the ratio acceptable: exit 0.
    let out = events_run(&target, &[("EVENTS_MAX_FAIL_RATIO", "0.9")], &[]);
    out.assert_code(0)
        .assert_stderr_contains("events example: init (Local, web UI: false)")
        .assert_stderr_contains("events example: all 4 users spawned")
        .assert_stderr_contains("events example: test ran ");
    let summary = out.summary();
    let slow = summary.row("GET", "/slow").expect("a /slow row");
    let failing = summary
        .row("GET", "/status/500")
        .expect("a /status/500 row");
    assert!(slow.reqs > 0 && failing.fails > 0, "{}", out.dump());
    // Every /slow request takes 60 ms: the request listener saw each one as slow, and no
    // other request (they take about a millisecond here).
    let (slow_seen, task_errors) = logged_counts(&out.stderr);
    assert_eq!(slow_seen, slow.reqs, "{}", out.dump());
    // user_error heard every failed task the exceptions table counts.
    let exceptions = out
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("Exception report"))
        .find(|l| l.contains("the check failed"))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no exception row\n{}", out.dump()));
    assert_eq!(task_errors, exceptions, "{}", out.dump());
    assert_eq!(summary.aggregated.reqs, target.counters().total());

    // The same run with a strict limit: the listener's own code.
    let strict = events_run(&target, &[("EVENTS_MAX_FAIL_RATIO", "0.01")], &[]);
    strict.assert_code(3);
    assert_eq!(strict.summary().logged_exit_code, 3);
}

#[test]
fn a_failing_listener_is_logged_and_exits_2() {
    let target = Target::start();
    // Without the failing tasks nothing else sets the code: the broken listener's 2 shows.
    let out = events_run(
        &target,
        &[("EVENTS_BROKEN_TEST_STOP", "1")],
        &["-E", "failing"],
    );
    out.assert_code(2).assert_stderr_contains(
        "Uncaught exception in event handler (test_stop): this listener is broken on purpose",
    );
    assert_eq!(out.summary().aggregated.fails, 0);
}

#[test]
fn custom_report_data_travels_from_workers_to_the_master() {
    let target = Target::start();
    let dir = TempDir::new("events-cluster");
    let (master, workers) = cluster(
        "events",
        &dir,
        &target,
        &["-u", "4", "-r", "4", "-t", "3s"],
        ["events_a", "events_b"],
    );
    let out = master.wait();
    // Requests failed and no limit was set: Locust's rule, exit 1.
    out.assert_code(1);
    let summary = out.summary();
    let slow = summary.row("GET", "/slow").expect("a /slow row").reqs;
    assert!(slow > 0, "{}", out.dump());
    // The master's worker_report listener added up what each worker's report_to_master
    // listener sent: every slow request of the test.
    let (slow_reported, _) = logged_counts(&out.stderr);
    assert_eq!(slow_reported, slow, "{}", out.dump());
    assert_eq!(summary.aggregated.reqs, target.counters().total());
    for w in workers {
        let w = w.wait();
        // The workers heard the master's spawning_complete with the test's total.
        w.assert_stderr_contains("events example: all 4 users spawned");
    }
}

#[test]
fn rendezvous_releases_every_user_together_then_groups_of_five() {
    let target = Target::start();
    let dir = TempDir::new("rendezvous");
    let mut cmd = command(&example_bin("rendezvous"), dir.path());
    cmd.args([
        "-H",
        target.url(),
        "--headless",
        "-u",
        "10",
        "-r",
        "5",
        "-t",
        "4s",
    ]);
    let out = run(cmd);
    out.assert_code(0);
    let summary = out.summary();
    // One group of all ten users, released once the two-second ramp was complete.
    let everyone = summary
        .row("RENDEZVOUS", "all users: 10 together")
        .unwrap_or_else(|| panic!("no release of all 10\n{}", out.dump()));
    assert_eq!(everyone.reqs, 10);
    assert_eq!(
        summary.row("GET", "/products (first wave)").map(|r| r.reqs),
        Some(10)
    );
    // Checkout rushes leave in fives; nothing timed out.
    let rushes = summary
        .row("RENDEZVOUS", "checkout rush: 5 together")
        .map_or(0, |r| r.reqs);
    assert!(rushes > 0 && rushes.is_multiple_of(5), "{}", out.dump());
    assert!(
        !summary.names().iter().any(|n| n.contains("timed out")),
        "{}",
        out.dump()
    );
    // A purchase follows each release (a user stopped right after its release may not get
    // to send it).
    let purchases = summary.row("POST", "/purchase").map_or(0, |r| r.reqs);
    assert!(
        purchases <= rushes && purchases + 10 >= rushes,
        "{}",
        out.dump()
    );
    assert_eq!(
        summary.aggregated.reqs - everyone.reqs - rushes,
        target.counters().total()
    );
}

#[test]
fn on_workers_all_users_means_each_workers_users_after_the_masters_ramp() {
    let target = Target::start();
    let dir = TempDir::new("rendezvous-cluster");
    let (master, workers) = cluster(
        "rendezvous",
        &dir,
        &target,
        &["-u", "10", "-r", "5", "-t", "4s"],
        ["rv_a", "rv_b"],
    );
    let out = master.wait();
    out.assert_code(0);
    let summary = out.summary();
    // Each worker released its own five users together once the master said the ramp was
    // complete: two groups of five, never a smaller one released early.
    let everyone = summary
        .row("RENDEZVOUS", "all users: 5 together")
        .unwrap_or_else(|| panic!("no release of 5 per worker\n{}", out.dump()));
    assert_eq!(everyone.reqs, 10, "{}", out.dump());
    assert_eq!(
        summary.row("GET", "/products (first wave)").map(|r| r.reqs),
        Some(10)
    );
    drop(workers);
}
