//! Exact request counts: what Hopper reports in its final summary must be exactly what the
//! target served, in total and per method and route, and its failures must be exactly the
//! responses with an error status.

mod common;

use common::*;

/// Runs `program` against a fresh target with `args` (after `-H URL --headless`) and checks
/// Hopper's summary against the target's counters.
fn exact_run(
    program: &std::path::Path,
    args: &[&str],
    renames: &[(&str, &str)],
    extra_failures_ok: &[&str],
) -> (Output, Summary) {
    let dir = TempDir::new("counts");
    let target = Target::start();
    let mut cmd = command(program, dir.path());
    cmd.args(["-H", target.url(), "--headless"]).args(args);
    let out = run(cmd);
    let counters = target.finish();
    let summary = assert_counts_match(&out, &counters, renames, extra_failures_ok);
    assert!(
        summary.aggregated.reqs > 0,
        "no requests were made\n{}",
        out.dump()
    );
    // The process exit code is the one it logged, and Locust's rule decides it.
    let expected = if summary.aggregated.fails > 0 { 1 } else { 0 };
    assert_eq!(summary.logged_exit_code, expected, "{}", out.dump());
    out.assert_code(expected);
    (out, summary)
}

#[test]
fn demo_users_counts_match_the_target() {
    let (out, summary) = exact_run(
        &hopper_bin(),
        &["-u", "10", "-r", "10", "-t", "3s"],
        &[("/products/[id]", "/products/{id}")],
        &[],
    );
    // Every shopper logs in once in on_start, before anything else.
    let (_, users) = users_spawned(&out.stderr).expect("All users spawned line");
    assert_eq!(users, 10, "{}", out.dump());
    let logins = summary.row("POST", "/login").expect("POST /login row");
    assert!(logins.reqs >= 1 && logins.fails == 0, "{}", out.dump());
    // Only names the demo users use, with their methods.
    let known = [
        "GET /",
        "GET /products",
        "GET /products/[id]",
        "GET /slow",
        "GET /flaky",
        "POST /login",
        "GET /account",
        "POST /purchase",
        "POST /upload",
    ];
    for name in summary.names() {
        assert!(
            known.contains(&name.as_str()),
            "unexpected row {name}\n{}",
            out.dump()
        );
    }
}

#[test]
fn quickstart_counts_match_the_target() {
    let (out, summary) = exact_run(
        &example_bin("quickstart"),
        &["-u", "10", "-r", "10", "-t", "3s"],
        &[],
        &[],
    );
    assert_eq!(summary.aggregated.fails, 0, "{}", out.dump());
    let mut names = summary.names();
    names.sort();
    assert!(
        names.iter().all(|n| n == "GET /" || n == "GET /products"),
        "{names:?}"
    );
}

#[test]
fn shop_counts_match_the_target() {
    // `home` also fails a 200 response that took over 500 ms (catch_response), so it may
    // report more failures than error statuses on a very busy machine.
    let (out, summary) = exact_run(
        &example_bin("shop"),
        &["-u", "10", "-r", "10", "-t", "3s"],
        &[("home", "/")],
        &["home"],
    );
    let logins = summary.row("POST", "/login").expect("POST /login row");
    assert_eq!(logins.reqs, 10, "one login per shopper\n{}", out.dump());
    assert!(
        summary.row("GET", "home").is_some(),
        "the home page is recorded under the name 'home'\n{}",
        out.dump()
    );
}

#[test]
fn throughput_counts_match_the_target_exactly() {
    // No wait time: tens of thousands of requests in 2 s, and the count must still be exact,
    // including the requests in flight when the run time ends.
    let (out, summary) = exact_run(
        &example_bin("throughput"),
        &["-u", "5", "-r", "5", "-t", "2s", "--only-summary"],
        &[],
        &[],
    );
    assert_eq!(
        summary.names(),
        vec!["GET /fast".to_string()],
        "{}",
        out.dump()
    );
    assert!(summary.aggregated.reqs > 100, "{}", out.dump());
}

#[test]
fn throughput_counts_match_with_a_stop_timeout() {
    // With --stop-timeout the users finish the request they are in before stopping.
    let (out, summary) = exact_run(
        &example_bin("throughput"),
        &[
            "-u",
            "5",
            "-r",
            "5",
            "-t",
            "2s",
            "-s",
            "5s",
            "--only-summary",
        ],
        &[],
        &[],
    );
    assert_eq!(
        summary.names(),
        vec!["GET /fast".to_string()],
        "{}",
        out.dump()
    );
    assert_eq!(summary.aggregated.fails, 0, "{}", out.dump());
}

#[test]
fn http_errors_are_counted_as_failures() {
    // A base path the target does not know: every request answers 404.
    let dir = TempDir::new("fail404");
    let target = Target::start();
    let host = format!("{}/missing", target.url());
    let out = run_in(
        &example_bin("quickstart"),
        dir.path(),
        &["-H", &host, "--headless", "-u", "3", "-r", "3", "-t", "2s"],
    );
    let counters = target.finish();
    assert_all_failed_with_404(&out, &counters);
    out.assert_code(1)
        .assert_stderr_contains("Error report")
        .assert_stderr_contains("404 Client Error");
}
