//! The command line: usage errors, informational options, and what is not available yet.
//! None of these runs load, but every run is still bounded (`-t`) and under the watchdog.

mod common;

use common::*;
use std::path::Path;

fn hopper_in(dir: &Path, args: &[&str]) -> Output {
    run_in(&hopper_bin(), dir, args)
}

// ---- Usage errors: exit 2 --------------------------------------------------------------

#[test]
fn unknown_option_exits_2_and_suggests_the_right_one() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--headless", "--userz", "3", "-t", "1s"]);
    out.assert_code(2)
        .assert_stderr_contains("--userz")
        .assert_stderr_contains("--users");
    assert!(out.summary_absent(), "{}", out.dump());
}

#[test]
fn bad_timespan_exits_2_with_locusts_message() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--headless", "-t", "5x"]);
    out.assert_code(2).assert_stderr_contains(
        "Invalid time span format. Valid formats: 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc.",
    );
}

#[test]
fn bad_timespan_order_exits_2() {
    // Locust only accepts h, m, s in that order.
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--headless", "-t", "5m1h"]);
    out.assert_code(2)
        .assert_stderr_contains("Invalid time span format");
}

#[test]
fn config_file_with_unknown_option_names_file_and_line() {
    let dir = TempDir::new("cli");
    dir.write("bad.conf", "# a comment\nheadless = true\nuzers = 3\n");
    let out = hopper_in(dir.path(), &["--config", "bad.conf", "-t", "1s"]);
    out.assert_code(2)
        .assert_stderr_contains("bad.conf:3")
        .assert_stderr_contains("uzers");
}

#[test]
fn config_file_with_bad_flag_value_names_file_and_line() {
    let dir = TempDir::new("cli");
    dir.write("bad.conf", "headless = maybe\n");
    let out = hopper_in(dir.path(), &["--config", "bad.conf", "-t", "1s"]);
    out.assert_code(2)
        .assert_stderr_contains("bad.conf:1")
        .assert_stderr_contains("maybe");
}

#[test]
fn malformed_default_locust_conf_is_reported() {
    let dir = TempDir::new("cli");
    dir.write("locust.conf", "users = 2\nspawnrate = 2\n");
    let out = hopper_in(dir.path(), &["--headless", "-t", "1s"]);
    assert_ne!(out.code, Some(0), "{}", out.dump());
    out.assert_stderr_contains("locust.conf:2")
        .assert_stderr_contains("spawnrate");
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = TempDir::new("cli");
    let out = hopper_in(
        dir.path(),
        &["--config", "nope.conf", "--headless", "-t", "1s"],
    );
    assert_ne!(out.code, Some(0), "{}", out.dump());
    out.assert_stderr_contains("nope.conf");
}

#[test]
fn bad_number_of_users_exits_2() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--headless", "-u", "many", "-t", "1s"]);
    out.assert_code(2).assert_stderr_contains("many");
}

#[test]
fn zero_spawn_rate_exits_2() {
    // Locust: the spawn rate must be finite and > 0.
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--headless", "-r", "0", "-t", "1s"]);
    out.assert_code(2);
}

// ---- Setup errors: exit 1 ----------------------------------------------------------------

#[test]
fn unknown_user_class_exits_1() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--headless", "-t", "1s", "Nobody"]);
    out.assert_code(1)
        .assert_stderr_contains("Unknown User(s): Nobody");
    assert!(out.summary_absent(), "{}", out.dump());
}

#[test]
fn unknown_user_class_of_an_example_exits_1() {
    let dir = TempDir::new("cli");
    let out = run_in(
        &example_bin("tagged"),
        dir.path(),
        &["--headless", "-t", "1s", "Admin", "Writer"],
    );
    out.assert_code(1)
        .assert_stderr_contains("Unknown User(s): Writer");
}

#[test]
fn option_not_available_yet_exits_1() {
    let dir = TempDir::new("cli");
    let out = hopper_in(
        dir.path(),
        &["--headless", "--processes", "2", "--csv", "out", "-t", "1s"],
    );
    out.assert_code(1)
        .assert_stderr_contains("not available")
        .assert_stderr_contains("--processes");
    assert!(
        !dir.path().join("out_stats.csv").exists(),
        "no CSV file may be written"
    );
    assert!(out.summary_absent(), "{}", out.dump());
}

#[test]
fn autoquit_without_autostart_exits_1_as_in_locust() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--autoquit", "3", "--web-port", "0"]);
    out.assert_code(1)
        .assert_stderr_contains("--autoquit is only meaningful in combination with --autostart");
}

#[test]
fn tls_cert_without_key_exits_1() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--tls-cert", "cert.pem", "--web-port", "0"]);
    out.assert_code(1)
        .assert_stderr_contains("--tls-cert and --tls-key must be given together");
}

#[test]
fn web_login_without_credentials_exits_1() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--web-login", "--web-port", "0"]);
    out.assert_code(1).assert_stderr_contains("--web-auth");
}

#[test]
fn demo_option_is_only_for_the_hopper_binary() {
    let dir = TempDir::new("cli");
    let out = run_in(
        &example_bin("quickstart"),
        dir.path(),
        &["--demo", "--headless", "-t", "1s"],
    );
    out.assert_code(1).assert_stderr_contains("--demo");
}

// ---- Informational options: exit 0 --------------------------------------------------------

#[test]
fn list_prints_the_user_classes() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["-l"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "Available Users:\n    Visitor\n    Shopper\n",
        "{}",
        out.dump()
    );
}

#[test]
fn list_long_form_on_an_example() {
    let dir = TempDir::new("cli");
    let out = run_in(&example_bin("tagged"), dir.path(), &["--list"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        "Available Users:\n    Reader\n    Admin\n",
        "{}",
        out.dump()
    );
}

#[test]
fn version_prints_hopper_and_its_version() {
    let dir = TempDir::new("cli");
    for flag in ["-V", "--version"] {
        let out = hopper_in(dir.path(), &[flag]);
        out.assert_code(0);
        let expected = format!("hopper {}", env!("CARGO_PKG_VERSION"));
        assert!(
            out.stdout.starts_with(&expected),
            "{flag}: expected stdout to start with {expected:?}\n{}",
            out.dump()
        );
    }
}

#[test]
fn help_exits_0() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--help"]);
    out.assert_code(0);
    for opt in [
        "--users",
        "--spawn-rate",
        "--run-time",
        "--headless",
        "--tags",
    ] {
        assert!(
            out.stdout.contains(opt),
            "--help lacks {opt}\n{}",
            out.dump()
        );
    }
}

#[test]
fn show_task_ratio_lists_classes_and_tasks() {
    let dir = TempDir::new("cli");
    let out = hopper_in(dir.path(), &["--show-task-ratio"]);
    out.assert_code(0);
    for name in [
        "Visitor",
        "Shopper",
        "home",
        "Catalogue",
        "products",
        "product",
        "leave_catalogue",
        "slow",
        "flaky",
        "account",
        "purchase",
        "upload",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.split_whitespace().last() == Some(name)),
            "--show-task-ratio does not list {name}\n{}",
            out.dump()
        );
    }
    // Visitor:Shopper is 3:1, and home is 4 of Visitor's 9 task weights.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["75.0", "Visitor"])),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["44.4", "home"])),
        "{}",
        out.dump()
    );
}

#[test]
fn show_task_ratio_of_an_example() {
    let dir = TempDir::new("cli");
    let out = run_in(&example_bin("tagged"), dir.path(), &["--show-task-ratio"]);
    out.assert_code(0);
    for name in ["Reader", "Admin", "browse", "report", "reindex"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.split_whitespace().last() == Some(name)),
            "--show-task-ratio does not list {name}\n{}",
            out.dump()
        );
    }
}

#[test]
fn show_task_ratio_json_has_locusts_shape() {
    // Locust: {"per_class": {Class: {"ratio": r, "tasks": {...}}}, "total": {...}}.
    let dir = TempDir::new("cli");
    let out = run_in(
        &example_bin("tagged"),
        dir.path(),
        &["--show-task-ratio-json"],
    );
    out.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}\n{}", out.dump()));
    let ratio = |class: &str| v["per_class"][class]["ratio"].as_f64();
    assert_eq!(ratio("Reader"), Some(0.75), "{v}");
    assert_eq!(ratio("Admin"), Some(0.25), "{v}");
    assert_eq!(
        v["per_class"]["Admin"]["tasks"]["report"]["ratio"].as_f64(),
        Some(0.5),
        "{v}"
    );
    assert!(
        v.get("total").is_some(),
        "Locust's task-ratio JSON also has a \"total\" object\n{v}"
    );
}

trait SummaryAbsent {
    fn summary_absent(&self) -> bool;
}

impl SummaryAbsent for Output {
    fn summary_absent(&self) -> bool {
        parse_summary(&self.stderr).is_none()
    }
}

#[test]
fn an_unusable_host_is_a_setup_error() {
    let dir = TempDir::new("badhost");
    let out = run_in(
        &hopper_bin(),
        dir.path(),
        &["-H", "127.0.0.1:8080", "--headless", "-t", "1s"],
    );
    out.assert_code(1)
        .assert_stderr_contains("-H/--host is not a usable base URL")
        .assert_stderr_contains("No scheme supplied");
    let out = run_in(
        &hopper_bin(),
        dir.path(),
        &["-H", "http://u:%aé@127.0.0.1:1", "--headless", "-t", "1s"],
    );
    // Odd credentials are not a reason to panic: the run starts (and its requests fail).
    assert_ne!(out.code, Some(101), "{}", out.dump());
}
