//! The benchmark's example programs (see `bench/`), each run briefly on 127.0.0.1 and checked
//! against what the other side recorded:
//!
//! * `idle_users` against the demo target: every user makes exactly one request in a run
//!   shorter than its 10 s wait, and Hopper's counts equal the target's;
//! * `delay_target` loaded by the `throughput` example: the target served exactly the
//!   requests Hopper counted, split 60/35/5 over its delays by its fixed pattern;
//! * `simulated_workers` on a real Hopper master: the master's totals equal what the
//!   simulated workers say they sent, over every request name;
//! * `hyper_baseline` (hopper-http's plain hyper loop) against the demo target: the target
//!   answered exactly the requests it reports.
//!
//! The hopper-cluster and hopper-http examples (`delay_target`, `simulated_workers`,
//! `hyper_baseline`) are built by `cargo build --workspace --all-targets` (as `scripts/test`
//! does) or `cargo build -p hopper-cluster -p hopper-http --examples`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The delay target's pattern (crates/hopper-cluster/examples/delay_target.rs), in ms.
const PATTERN_MS: [u64; 20] = [
    1, 10, 1, 1, 10, 1, 10, 1, 1, 10, 1, 100, 1, 10, 1, 1, 10, 1, 10, 1,
];

#[test]
fn idle_users_make_one_request_each_and_wait() {
    let target = Target::start();
    let dir = TempDir::new("idle-users");
    let out = run_in(
        &example_bin("idle_users"),
        dir.path(),
        &[
            "-H",
            target.url(),
            "--headless",
            "-u",
            "20",
            "-r",
            "20",
            "-t",
            "2s",
        ],
    );
    out.assert_code(0);
    let summary = assert_counts_match(&out, &target.finish(), &[], &[]);
    // The run ends long before any user's 10 s wait does.
    assert_eq!(summary.aggregated.reqs, 20, "{}", out.dump());
    assert_eq!(summary.names(), vec!["GET /fast"], "{}", out.dump());
    assert_eq!(users_spawned(&out.stderr).map(|u| u.1), Some(20));
}

#[test]
fn hyper_baseline_reports_what_the_target_served() {
    let target = Target::start();
    let dir = TempDir::new("hyper-baseline");
    let url = format!("{}/fast", target.url());
    let out = run_in(
        &example_bin("hyper_baseline"),
        dir.path(),
        &[&url, "4", "1"],
    );
    out.assert_code(0);
    let line = out.stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", out.dump()));
    let requests = report["requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("no request count: {}", out.dump()));
    assert!(requests > 0, "{}", out.dump());
    assert_eq!(report["failures"], 0, "{}", out.dump());
    for q in ["p50_ms", "p90_ms", "p99_ms"] {
        assert!(
            report[q].as_f64().is_some_and(|v| v > 0.0),
            "{q}: {}",
            out.dump()
        );
    }
    let counters = target.finish();
    assert_eq!(
        target_count(&counters.snapshot(), "GET", "/fast"),
        requests,
        "{}",
        out.dump()
    );
    // Bad arguments: a usage line and exit code 2, not a panic.
    let bad = run_in(
        &example_bin("hyper_baseline"),
        dir.path(),
        &["/fast", "x", "1"],
    );
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("usage: hyper_baseline"),
        "{}",
        bad.dump()
    );
}

/// The body of a one-shot HTTP/1.1 request to 127.0.0.1.
fn http(addr: &str, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the delay target");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[test]
fn delay_target_serves_exactly_what_hopper_counts_in_its_pattern() {
    let dir = TempDir::new("delay-target");
    let mut cmd = command(&example_bin("delay_target"), dir.path());
    cmd.args(["--bind", "127.0.0.1:0"]);
    let mut target = Running::spawn(cmd);
    let url = wait_for_url(&mut target);
    let addr = url.trim_start_matches("http://").to_string();
    http(&addr, "POST", "/__reset");

    let out = run_in(
        &example_bin("throughput"),
        dir.path(),
        &["-H", &url, "--headless", "-u", "5", "-r", "5", "-t", "2s"],
    );
    out.assert_code(0);
    let summary = out.summary();
    let stats: serde_json::Value =
        serde_json::from_str(&http(&addr, "GET", "/__stats")).expect("JSON from /__stats");
    let served = stats["count"].as_u64().expect("a count");
    assert_eq!(served, summary.aggregated.reqs, "{stats}\n{}", out.dump());
    assert!(served > 0, "{}", out.dump());
    let mut by_class = [0u64; 3];
    for ms in PATTERN_MS.iter().cycle().take(served as usize) {
        by_class[match ms {
            1 => 0,
            10 => 1,
            _ => 2,
        }] += 1;
    }
    let got = [
        stats["by_delay_ms"]["1"].as_u64(),
        stats["by_delay_ms"]["10"].as_u64(),
        stats["by_delay_ms"]["100"].as_u64(),
    ];
    assert_eq!(got, by_class.map(Some), "{stats}");
    for key in ["p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms"] {
        assert!(stats[key].is_f64(), "{key} missing: {stats}");
    }
    target.signal("TERM");
    target.wait();
}

/// The delay target's URL. It prints it on stdout, but `Running` hands stdout over only at
/// the end, so the port is read from the kernel: the socket the process listens on.
fn wait_for_url(target: &mut Running) -> String {
    let pid = target.pid();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        // The listening socket's port, from the process's own sockets.
        if let Some(port) = listening_port(pid) {
            return format!("http://127.0.0.1:{port}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delay target did not listen within 20 s: {}",
            target.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The port a process listens on (TCP, IPv4), found through /proc: the inode of each of its
/// sockets, matched against /proc/net/tcp's listening entries.
fn listening_port(pid: u32) -> Option<u16> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let inodes: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().to_string();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    tcp.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()
        } else {
            None
        }
    })
}

/// The port in "Master listening for workers on port N".
fn master_port_from_log(stderr: &str) -> Option<u16> {
    const MARK: &str = "Master listening for workers on port ";
    let line = stderr.lines().find(|l| l.contains(MARK))?;
    line[line.find(MARK)? + MARK.len()..].trim().parse().ok()
}

#[test]
fn simulated_workers_totals_equal_the_masters() {
    let target = Target::start();
    let dir = TempDir::new("simulated-workers");
    let mut cmd = command(&hopper_bin(), dir.path());
    cmd.args([
        "--master",
        "--headless",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        "0",
        "--expect-workers",
        "3",
        "-u",
        "3",
        "-r",
        "3",
        "-t",
        "5s",
        "-H",
        target.url(),
    ]);
    let mut master = Running::spawn(cmd);
    assert!(
        master.wait_for_stderr(Duration::from_secs(20), |s| master_port_from_log(s)
            .is_some()),
        "the master did not listen: {}",
        master.stderr_so_far()
    );
    let port = master_port_from_log(&master.stderr_so_far()).expect("the port");
    let mut sim = command(&example_bin("simulated_workers"), dir.path());
    sim.args([
        "--master-port",
        &port.to_string(),
        "--workers",
        "3",
        "--names",
        "20",
        "--run-time",
        "40",
    ]);
    let sim = Running::spawn(sim);
    let master = master.wait();
    let sim = sim.wait();
    assert_eq!(sim.code, Some(0), "{}", sim.dump());
    let sent: serde_json::Value = serde_json::from_str(
        sim.stdout
            .lines()
            .last()
            .expect("the simulator's summary line"),
    )
    .expect("JSON from the simulator");
    assert_eq!(sent["acked"], 3, "{sent}\n{}", master.dump());
    assert_eq!(sent["quit_by_master"], 3, "{sent}\n{}", master.dump());
    // Every worker got a Hopper master's ack, so every report carried HDR histograms.
    assert_eq!(sent["hdr_reports"], sent["reports"], "{sent}");
    let summary = master.summary();
    let requests = sent["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{sent}\n{}", master.dump());
    assert_eq!(
        summary.aggregated.reqs,
        requests,
        "{sent}\n{}",
        master.dump()
    );
    assert_eq!(
        summary.aggregated.fails,
        sent["failures"].as_u64().expect("failures"),
        "{sent}\n{}",
        master.dump()
    );
    assert_eq!(summary.rows.len(), 20, "{}", master.dump());
    drop(target);
}
