//! Locust's configuration precedence, end to end (highest first): command line > LOCUST_*
//! environment variables > --config FILE > ./pyproject.toml > ./locust.conf >
//! ~/.locust.conf > defaults.
//!
//! Each test has its own working directory and its own HOME, so only the files it writes
//! take part.

mod common;

use common::*;
use std::path::PathBuf;

/// ./locust.conf as the issue describes it: 3 users at 3/s for 2 s, headless.
const LOCUST_CONF: &str = "\
# ./locust.conf
users = 3
headless = true
run-time = 2s
spawn-rate = 3
";

struct Setup {
    root: TempDir,
    cwd: PathBuf,
    home: PathBuf,
    target: Target,
}

impl Setup {
    fn new() -> Setup {
        let root = TempDir::new("config");
        let cwd = root.subdir("work");
        let home = root.subdir("home");
        Setup {
            root,
            cwd,
            home,
            target: Target::start(),
        }
    }

    fn cwd_file(&self, name: &str, text: &str) {
        self.root.write(&format!("work/{name}"), text);
    }

    fn home_file(&self, name: &str, text: &str) {
        self.root.write(&format!("home/{name}"), text);
    }

    /// Runs quickstart (with `-H` unless `host` is false) and returns its output.
    fn run(&self, env: &[(&str, &str)], args: &[&str], host: bool) -> Output {
        let mut cmd = command_with_home(&example_bin("quickstart"), &self.cwd, &self.home);
        if host {
            cmd.args(["-H", self.target.url()]);
        }
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd)
    }
}

/// Asserts a completed run with `users` users.
fn assert_ran_with(out: &Output, users: u64) {
    out.assert_code(0);
    let (_, total) = users_spawned(&out.stderr)
        .unwrap_or_else(|| panic!("no 'All users spawned' line\n{}", out.dump()));
    assert_eq!(total, users, "wrong number of users\n{}", out.dump());
    out.assert_stderr_contains(&format!("({users} total users)"));
    assert!(out.summary().aggregated.reqs > 0, "{}", out.dump());
}

#[test]
fn locust_conf_in_the_working_directory_configures_the_run() {
    let s = Setup::new();
    // Everything from the file, the host too: no arguments at all.
    s.cwd_file(
        "locust.conf",
        &format!("{LOCUST_CONF}host = {}\n", s.target.url()),
    );
    let out = s.run(&[], &[], false);
    assert_ran_with(&out, 3);
    out.assert_stderr_contains("Ramping to 3 users at a rate of 3.00 per second")
        .assert_stderr_contains("Run time limit set to 2 seconds");
    let counters = s.target.finish();
    assert_counts_match(&out, &counters, &[], &[]);
}

#[test]
fn environment_beats_locust_conf() {
    let s = Setup::new();
    s.cwd_file("locust.conf", LOCUST_CONF);
    let out = s.run(&[("LOCUST_USERS", "4")], &[], true);
    assert_ran_with(&out, 4);
    // The other settings still come from the file.
    out.assert_stderr_contains("at a rate of 3.00 per second")
        .assert_stderr_contains("Run time limit set to 2 seconds");
}

#[test]
fn command_line_beats_environment_and_locust_conf() {
    let s = Setup::new();
    s.cwd_file("locust.conf", LOCUST_CONF);
    let out = s.run(&[("LOCUST_USERS", "4")], &["-u", "5"], true);
    assert_ran_with(&out, 5);
    out.assert_stderr_contains("Ramping to 5 users at a rate of 3.00 per second");
}

#[test]
fn config_option_file_beats_locust_conf() {
    let s = Setup::new();
    s.cwd_file("locust.conf", LOCUST_CONF);
    s.cwd_file("other.conf", "users = 2\nspawn-rate = 2\n");
    let out = s.run(&[], &["--config", "other.conf"], true);
    assert_ran_with(&out, 2);
    out.assert_stderr_contains("Ramping to 2 users at a rate of 2.00 per second")
        .assert_stderr_contains("Run time limit set to 2 seconds");
}

#[test]
fn environment_beats_config_option_file() {
    let s = Setup::new();
    s.cwd_file(
        "other.conf",
        "users = 2\nheadless = true\nrun-time = 2s\nspawn-rate = 5\n",
    );
    let out = s.run(&[("LOCUST_USERS", "4")], &["--config", "other.conf"], true);
    assert_ran_with(&out, 4);
}

#[test]
fn pyproject_toml_beats_locust_conf() {
    let s = Setup::new();
    s.cwd_file("locust.conf", LOCUST_CONF);
    s.cwd_file(
        "pyproject.toml",
        "[project]\nname = \"x\"\n\n[tool.locust]\nusers = 4\n",
    );
    let out = s.run(&[], &[], true);
    assert_ran_with(&out, 4);
    out.assert_stderr_contains("at a rate of 3.00 per second");
}

#[test]
fn home_locust_conf_is_the_lowest_layer() {
    let s = Setup::new();
    s.home_file(
        ".locust.conf",
        "users = 6\nheadless = true\nrun-time = 2s\nspawn-rate = 6\nloglevel = INFO\n",
    );
    // Alone, ~/.locust.conf configures the run.
    let out = s.run(&[], &[], true);
    assert_ran_with(&out, 6);
    out.assert_stderr_contains("Ramping to 6 users at a rate of 6.00 per second");
    // ./locust.conf overrides it.
    s.cwd_file("locust.conf", LOCUST_CONF);
    let out = s.run(&[], &[], true);
    assert_ran_with(&out, 3);
    out.assert_stderr_contains("Ramping to 3 users at a rate of 3.00 per second");
}

#[test]
fn false_flag_in_a_higher_layer_hides_a_true_one() {
    // headless = true in ./locust.conf, LOCUST_HEADLESS=false: no --headless, so the web UI
    // starts; --autostart and --autoquit 0 end the run after the config file's run time.
    let s = Setup::new();
    s.cwd_file("locust.conf", LOCUST_CONF);
    let out = s.run(
        &[("LOCUST_HEADLESS", "false")],
        &[
            "--web-host",
            "127.0.0.1",
            "--web-port",
            "0",
            "--autostart",
            "--autoquit",
            "0",
        ],
        true,
    );
    out.assert_stderr_contains("Starting web interface at http://127.0.0.1:");
}

#[test]
fn invalid_environment_value_is_an_error() {
    let s = Setup::new();
    s.cwd_file("locust.conf", LOCUST_CONF);
    let out = s.run(&[("LOCUST_HEADLESS", "maybe")], &[], true);
    assert_ne!(out.code, Some(0), "{}", out.dump());
    out.assert_stderr_contains("LOCUST_HEADLESS");
}
