//! Test data feeders end to end: the `feeders` example (classes `Login`: accounts in a queue
//! that ends the test; `Buyer`: orders in a queue that stops users; `Browse`,
//! `RandomBrowse`, `ShuffledBrowse`: product ids in circular, random and shuffled order)
//! run against the demo target on 127.0.0.1, with CSV files each test writes into the
//! program's working directory (`examples/data/*.csv`, the paths the example reads).
//!
//! * each mode shows in the recorded statistics: a queue's rows are used exactly once
//!   (Hopper's summary and the target's counters both count them), circular and shuffled
//!   feeders use every row equally often (within one), a random one only rows of the file;
//! * a queue that stops the test ends the run by itself, before `-t`; one that stops users
//!   leaves the run to `-t`;
//! * under a Hopper master with two Hopper workers, a queue of N rows is used exactly N
//!   times across both workers (each leases some), and the run ends by itself;
//! * under a Locust master (Locust 2.47 from the workspace's virtualenv, or
//!   `HOPPER_LOCUST`, as in `tests/interop.rs`), a Hopper worker's queue reads its own copy,
//!   says so, and ends the run by itself;
//! * broken files (wrong field count, unterminated quote, no header, empty, invalid UTF-8,
//!   missing) stop the program before any user starts: exit code 1 and a message naming
//!   the file and line, never a panic.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ACCOUNTS: &str = "examples/data/accounts.csv";
const ORDERS: &str = "examples/data/orders.csv";
const PRODUCTS: &str = "examples/data/products.csv";

/// `n` accounts `user0`… with password `secret`, except the ones in `wrong`.
fn accounts(n: usize, wrong: &[usize]) -> String {
    let mut text = String::from("username,password\n");
    for i in 0..n {
        let password = if wrong.contains(&i) {
            "wrong"
        } else {
            "secret"
        };
        text.push_str(&format!("user{i},{password}\n"));
    }
    text
}

/// A working directory holding valid files for every feeder of the example (each is loaded
/// at start-up, whichever classes run), with `overrides` written over them.
fn data_dir(tag: &str, overrides: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write(ACCOUNTS, &accounts(5, &[]));
    dir.write(ORDERS, "product_id,quantity\n1,1\n2,2\n");
    dir.write(
        PRODUCTS,
        "id,name\n1,Cup\n2,\"Teapot, large\"\n3,Jug\n4,Kettle\n",
    );
    for (path, text) in overrides {
        dir.write(path, text);
    }
    dir
}

/// The `feeders` example in `dir` against `target`, headless, with `args` after the host.
fn run_feeders(dir: &TempDir, target: &Target, args: &[&str]) -> Output {
    let mut cmd = command(&example_bin("feeders"), dir.path());
    cmd.args(["-H", target.url(), "--headless"]).args(args);
    run(cmd)
}

/// Requests per `/products/{id}` name in the summary (every row must be one of these).
fn product_counts(out: &Output) -> BTreeMap<String, u64> {
    let summary = out.summary();
    let mut counts = BTreeMap::new();
    for row in &summary.rows {
        assert_eq!(row.method, "GET", "unexpected row {row:?}\n{}", out.dump());
        assert!(
            row.name.starts_with("/products/"),
            "unexpected row {row:?}\n{}",
            out.dump()
        );
        counts.insert(row.name.clone(), row.reqs);
    }
    counts
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("/products/{i}")).collect()
}

#[test]
fn a_queue_that_stops_the_test_uses_each_row_once_and_ends_the_run() {
    let target = Target::start();
    let dir = data_dir("feed-queue-test", &[(ACCOUNTS, &accounts(30, &[7]))]);
    let out = run_feeders(&dir, &target, &["-u", "5", "-r", "5", "-t", "45s", "Login"]);
    // One account has the password `wrong`: a failure, so Locust's exit code 1.
    out.assert_code(1)
        .assert_stderr_contains("feeder accounts ran out of rows, shutting down")
        .assert_stderr_lacks("--run-time limit reached")
        .assert_stderr_lacks("panicked");
    let counters = target.finish();
    let summary = assert_counts_match(&out, &counters, &[], &[]);
    let login = summary.row("POST", "/login").expect("a /login row");
    assert_eq!((login.reqs, login.fails), (30, 1), "{}", out.dump());
    assert_eq!(target_count(&counters.snapshot(), "POST", "/login"), 30);
}

#[test]
fn a_queue_that_stops_users_uses_each_row_once_and_the_run_goes_on() {
    let target = Target::start();
    let orders: String = std::iter::once("product_id,quantity\n".to_string())
        .chain((0..12).map(|i| format!("{},1\n", i % 10 + 1)))
        .collect();
    let dir = data_dir("feed-queue-user", &[(ORDERS, &orders)]);
    let out = run_feeders(&dir, &target, &["-u", "3", "-r", "3", "-t", "3s", "Buyer"]);
    out.assert_code(0)
        .assert_stderr_contains("Feeder orders ran out of rows: users that ask for one stop")
        .assert_stderr_contains("--run-time limit reached")
        .assert_stderr_lacks("ran out of rows, shutting down");
    let counters = target.finish();
    let summary = assert_counts_match(&out, &counters, &[], &[]);
    // Each buyer logs in once (on_start), then places orders until none is left.
    assert_eq!(summary.row("POST", "/login").map(|r| r.reqs), Some(3));
    assert_eq!(summary.row("POST", "/purchase").map(|r| r.reqs), Some(12));
}

/// Runs one browsing class over products 1..=4 and returns requests per product.
fn browse(class: &str) -> (Output, BTreeMap<String, u64>) {
    let target = Target::start();
    let dir = data_dir(&format!("feed-{class}"), &[]);
    let out = run_feeders(&dir, &target, &["-u", "3", "-r", "3", "-t", "3s", class]);
    out.assert_code(0);
    let counters = target.finish();
    assert_counts_match(&out, &counters, &[("*", "/products/{id}")], &[]);
    let counts = product_counts(&out);
    (out, counts)
}

/// Every row used, and equally often to within one request (whole passes plus part of one).
fn assert_even(out: &Output, counts: &BTreeMap<String, u64>) {
    let names: Vec<String> = counts.keys().cloned().collect();
    let mut want = ids(4);
    want.sort();
    assert_eq!(names, want, "{}", out.dump());
    let min = counts.values().min().copied().unwrap_or(0);
    let max = counts.values().max().copied().unwrap_or(0);
    assert!(
        min >= 2,
        "fewer than two passes: {counts:?}\n{}",
        out.dump()
    );
    assert!(
        max - min <= 1,
        "rows used unevenly: {counts:?}\n{}",
        out.dump()
    );
}

#[test]
fn a_circular_feeder_uses_every_row_in_turn() {
    let (out, counts) = browse("Browse");
    assert_even(&out, &counts);
}

#[test]
fn a_shuffled_feeder_uses_every_row_once_per_pass() {
    let (out, counts) = browse("ShuffledBrowse");
    assert_even(&out, &counts);
}

#[test]
fn a_random_feeder_draws_rows_of_the_file() {
    let (out, counts) = browse("RandomBrowse");
    let known = ids(4);
    assert!(
        counts.keys().all(|name| known.contains(name)),
        "{counts:?}\n{}",
        out.dump()
    );
    // About 90 draws over 4 rows: the chance that one row is never drawn is below 1e-10.
    assert_eq!(counts.len(), 4, "{counts:?}\n{}", out.dump());
}

/// `Leased N rows of feeder F to W` lines of a master's debug log: rows per worker.
fn leased_rows(log: &str, feeder: &str) -> BTreeMap<String, u64> {
    let mark = format!(" rows of feeder {feeder} to ");
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let Some(at) = line.find("Leased ") else {
            continue;
        };
        let rest = &line[at + "Leased ".len()..];
        let Some((n, worker)) = rest.split_once(&mark) else {
            continue;
        };
        if let Ok(n) = n.parse::<u64>() {
            *out.entry(worker.trim().to_string()).or_default() += n;
        }
    }
    out
}

#[test]
fn a_hopper_master_hands_each_row_to_one_worker_and_ends_the_run() {
    let target = Target::start();
    let dir = data_dir("feed-cluster", &[(ACCOUNTS, &accounts(60, &[]))]);
    let mut master_cmd = command(&example_bin("feeders"), dir.path());
    master_cmd.args([
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        "0",
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "45s",
        "--expect-workers",
        "2",
        "--expect-workers-max-wait",
        "30",
        "--loglevel",
        "DEBUG",
        "-H",
        target.url(),
        "Login",
    ]);
    let mut master = Running::spawn(master_cmd);
    const MARK: &str = "Master listening for workers on port ";
    assert!(
        master.wait_for_stderr(Duration::from_secs(20), |s| s.contains(MARK)),
        "the master did not start\n{}",
        master.stderr_so_far()
    );
    let log = master.stderr_so_far();
    let line = log.lines().find(|l| l.contains(MARK)).unwrap();
    let port = line[line.find(MARK).unwrap() + MARK.len()..]
        .trim()
        .to_string();
    let ids = ["hostA_feed", "hostB_feed"];
    let workers: Vec<Running> = ids
        .iter()
        .map(|id| {
            let mut cmd = command(&example_bin("feeders"), dir.path());
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
    let out = master.wait();
    out.assert_code(0)
        .assert_stderr_contains("Feeder accounts ran out of rows on every worker")
        .assert_stderr_contains("feeder accounts ran out of rows, shutting down")
        .assert_stderr_lacks("--run-time limit reached");
    for w in workers {
        let w = w.wait();
        w.assert_code(0)
            .assert_stderr_contains("Got quit message from master")
            .assert_stderr_lacks("panicked");
    }
    let counters = target.finish();
    let summary = assert_counts_match(&out, &counters, &[], &[]);
    assert_eq!(summary.row("POST", "/login").map(|r| r.reqs), Some(60));
    assert_eq!(target_count(&counters.snapshot(), "POST", "/login"), 60);
    let leased = leased_rows(&out.stderr, "accounts");
    assert_eq!(
        leased.values().sum::<u64>(),
        60,
        "rows leased: {leased:?}\n{}",
        out.dump()
    );
    for id in ids {
        assert!(
            leased.get(id).is_some_and(|n| *n > 0),
            "worker {id} leased no rows: {leased:?}\n{}",
            out.dump()
        );
    }
}

#[test]
fn broken_files_stop_the_program_with_the_file_and_line() {
    let target = Target::start();
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "field-count",
            b"username,password\nalice,a\nbob,b\ncarol,c,extra\n",
            "hopper: examples/data/accounts.csv line 4: expected 2 fields (username, password), \
             found 3; a field containing a comma must be quoted",
        ),
        (
            "unterminated-quote",
            b"username,password\nalice,a\n\"bob,b\ncarol,c\n",
            "hopper: examples/data/accounts.csv line 3: a quoted field starts on this line and \
             is never closed (a missing \")",
        ),
        (
            "no-header",
            b"alice,a\nbob,b\n",
            "hopper: examples/data/accounts.csv line 1: the header row has no column \
             \"username\" (it names: alice, a); the first line must name the columns",
        ),
        (
            "empty",
            b"",
            "hopper: examples/data/accounts.csv line 1: the file is empty: its first line must \
             be a header row naming the columns",
        ),
        (
            "utf8",
            b"username,password\nalice,a\nb\xf6b,b\n",
            "hopper: examples/data/accounts.csv line 3: the value in column \"username\" is not \
             valid UTF-8",
        ),
        (
            "missing",
            b"",
            "hopper: examples/data/accounts.csv: cannot read the file: ",
        ),
    ];
    for (tag, contents, message) in cases {
        let dir = data_dir(&format!("feed-broken-{tag}"), &[]);
        let path = dir.path().join(ACCOUNTS);
        if tag == "missing" {
            std::fs::remove_file(&path).expect("remove the accounts file");
        } else {
            std::fs::write(&path, contents).expect("write the broken file");
        }
        let out = run_feeders(&dir, &target, &["-u", "1", "-r", "1", "-t", "5s", "Login"]);
        out.assert_code(1)
            .assert_stderr_contains(message)
            .assert_stderr_lacks("panicked")
            // Nothing started: the file is checked before the test.
            .assert_stderr_lacks("Starting Hopper");
    }
    let counters = target.finish();
    assert_eq!(counters.total(), 0, "{:?}", counters.snapshot());
}

/// `locust`: `HOPPER_LOCUST`, else the workspace's virtualenv (which `bash scripts/test`
/// installs); the test fails when neither is there, as the interop tests do.
fn locust_bin() -> PathBuf {
    let path = std::env::var_os("HOPPER_LOCUST")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/locust"));
    assert!(
        path.is_file(),
        "Locust 2.47.0 is not installed at {}: run `bash scripts/test` or set HOPPER_LOCUST",
        path.display()
    );
    path
}

#[test]
fn under_a_locust_master_a_worker_reads_its_own_copy_and_ends_the_run() {
    let target = Target::start();
    let dir = data_dir("feed-locust", &[(ACCOUNTS, &accounts(10, &[]))]);
    // The master only needs a class of the same name to hand out.
    dir.write(
        "locustfile.py",
        "from locust import HttpUser, task\n\n\nclass Login(HttpUser):\n    @task\n    def log_in(self):\n        pass\n",
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let mut master_cmd = command(&locust_bin(), dir.path());
    master_cmd.env("PYTHONUNBUFFERED", "1").args([
        "-f",
        "locustfile.py",
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        &port,
        "--headless",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "45s",
        "--expect-workers",
        "1",
        "-H",
        target.url(),
    ]);
    let master = Running::spawn(master_cmd);
    let mut worker_cmd = command(&example_bin("feeders"), dir.path());
    worker_cmd.args([
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        &port,
    ]);
    let worker = Running::spawn(worker_cmd);
    let w = worker.wait();
    w.assert_code(0)
        .assert_stderr_contains(
            "Feeder accounts: the master is not Hopper, so this worker reads its own copy",
        )
        .assert_stderr_contains("feeder accounts ran out of rows, shutting down")
        .assert_stderr_lacks("panicked");
    // Locust's headless master quits when its last worker has.
    let out = master.wait();
    out.assert_code(0)
        .assert_stderr_lacks("--run-time limit reached");
    let counters = target.finish();
    assert_eq!(
        target_count(&counters.snapshot(), "POST", "/login"),
        10,
        "{}\n=== worker\n{}",
        out.dump(),
        w.dump()
    );
    assert_eq!(
        out.summary().row("POST", "/login").map(|r| r.reqs),
        Some(10),
        "{}",
        out.dump()
    );
}
