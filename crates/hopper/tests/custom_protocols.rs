//! Custom protocols (`hopper::request::measure` / `measure_with`): the two worked examples
//! run end to end against real servers on 127.0.0.1, and what Hopper recorded — request
//! types, names, counts, response lengths, failure texts — is checked against what the
//! servers themselves counted.
//!
//! * `tcp_lines` against the example's own line server (included below from
//!   `examples/tcp_lines/server.rs`), started here with a limit of commands per connection
//!   so reconnects happen; and against the server the example starts itself.
//! * `redis_kv` against Debian's `redis-server` on a free port, compared with Redis's own
//!   `INFO commandstats`, `INFO stats`, `DBSIZE` and the value of its counter key.
//!
//! Every run ends gracefully (`-s 10`): users finish the call in progress, so a command the
//! server answered is always one Hopper recorded.

mod common;

#[path = "../../../examples/tcp_lines/server.rs"]
mod line_server;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Load-run arguments shared by every run: few users, bounded, graceful stop, `--json`.
const RUN: [&str; 10] = [
    "--headless",
    "-u",
    "4",
    "-r",
    "4",
    "-t",
    "3s",
    "-s",
    "10",
    "--json",
];

/// Users in [`RUN`].
const USERS: u64 = 4;

// ---------------------------------------------------------------------------------------
// Reading a run's output
// ---------------------------------------------------------------------------------------

/// The final "Error report" (after "Shutting down"): occurrences by `"TYPE name: error"`.
fn error_report(out: &Output) -> BTreeMap<String, u64> {
    let stderr = &out.stderr;
    let after = stderr
        .rfind("Shutting down (exit code ")
        .unwrap_or_else(|| panic!("no final summary\n{}", out.dump()));
    let mut rows = BTreeMap::new();
    let Some(report) = stderr[after..].find("Error report\n") else {
        return rows;
    };
    let mut separators = 0;
    for line in stderr[after + report..].lines().skip(2) {
        if line.starts_with("------------------|") {
            separators += 1;
            if separators == 2 {
                break;
            }
            continue;
        }
        let (count, text) = line
            .trim_end()
            .split_once(' ')
            .unwrap_or_else(|| panic!("not an error report row: {line:?}\n{}", out.dump()));
        let count: u64 = count.parse().unwrap_or_else(|_| panic!("{line:?}"));
        rows.insert(text.trim_start().to_string(), count);
    }
    rows
}

/// `--json` entries by (type, name): (requests, failures, total content length).
fn json_entries(out: &Output) -> BTreeMap<(String, String), (u64, u64, u64)> {
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--json did not print JSON: {e}\n{}", out.dump()));
    json.as_array()
        .expect("an array of entries")
        .iter()
        .map(|e| {
            let n = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("{k} in {e}"));
            (
                (
                    e["method"].as_str().unwrap().to_string(),
                    e["name"].as_str().unwrap().to_string(),
                ),
                (
                    n("num_requests"),
                    n("num_failures"),
                    n("total_content_length"),
                ),
            )
        })
        .collect()
}

/// (requests, failures) of a summary row that must exist.
fn row(out: &Output, request_type: &str, name: &str) -> (u64, u64) {
    let summary = out.summary();
    let r = summary
        .row(request_type, name)
        .unwrap_or_else(|| panic!("no row {request_type} {name}\n{}", out.dump()));
    (r.reqs, r.fails)
}

/// Asserts that no task raised (a value read back wrong would be one) and nothing panicked.
fn assert_no_exceptions(out: &Output) {
    out.assert_stderr_lacks("Exception report")
        .assert_stderr_lacks("panicked");
}

// ---------------------------------------------------------------------------------------
// tcp_lines
// ---------------------------------------------------------------------------------------

/// The three command names the example records, besides `connect`.
const LINE_COMMANDS: [&str; 3] = ["GET", "PING", "SET"];

/// Checks a `tcp_lines` run against what its server counted: every connect recorded, every
/// command answered or dropped by the server recorded under its name, failures exactly the
/// `ERR` replies and the commands sent on a connection the server had closed, each with its
/// text, and response lengths those of the reply lines.
fn assert_line_run_matches(out: &Output, counts: &line_server::Counts) {
    let context = || format!("server counts: {counts:?}\n{}", out.dump());
    out.assert_code(1);
    assert_no_exceptions(out);
    assert_eq!(
        out.summary().names(),
        ["TCP GET", "TCP PING", "TCP SET", "TCP connect"],
        "{}",
        context()
    );
    assert_eq!(
        row(out, "TCP", "connect"),
        (counts.connections, 0),
        "{}",
        context()
    );
    let report = error_report(out);
    let json = json_entries(out);
    for name in LINE_COMMANDS {
        let c = counts.commands.get(name).cloned().unwrap_or_default();
        assert_eq!(
            row(out, "TCP", name),
            (c.ok + c.errors + c.dropped, c.errors + c.dropped),
            "TCP {name}\n{}",
            context()
        );
        let closed = report
            .get(&format!(
                "TCP {name}: ConnectionError('the server closed the connection')"
            ))
            .copied()
            .unwrap_or(0);
        assert_eq!(closed, c.dropped, "TCP {name} closed\n{}", context());
        // Lengths are the reply lines' bytes, newline included; failures have none.
        let length = json[&("TCP".to_string(), name.to_string())].2;
        match name {
            "PING" => assert_eq!(length, 5 * c.ok, "PONG\\n\n{}", context()),
            "SET" => assert_eq!(length, 3 * c.ok, "OK\\n\n{}", context()),
            _ => assert!(length > 0, "{}", context()),
        }
    }
    // Every ERR reply was a read of the missing key.
    let get = &counts.commands["GET"];
    assert!(get.errors > 0, "{}", context());
    assert_eq!(
        report.get("TCP GET: ServerError('not found')"),
        Some(&get.errors),
        "{}",
        context()
    );
    assert_eq!(counts.commands.get("other"), None, "{}", context());
    // No other kind of failure.
    let dropped: u64 = counts.commands.values().map(|c| c.dropped).sum();
    let kinds =
        usize::from(get.errors > 0) + counts.commands.values().filter(|c| c.dropped > 0).count();
    assert_eq!(report.len(), kinds, "{report:?}\n{}", context());
    assert!(dropped <= counts.closed_by_server, "{}", context());
}

#[test]
fn tcp_lines_counts_match_the_server_and_a_closed_connection_is_a_failure_then_a_reconnect() {
    // A connection serves 3 commands, then the server closes it.
    let server = line_server::Server::start("127.0.0.1:0", Some(3)).expect("start the server");
    let dir = TempDir::new("tcp-lines");
    let host = format!("tcp://{}", server.addr());
    let mut args = vec!["-H", host.as_str()];
    args.extend(RUN);
    let out = run_in(&example_bin("tcp_lines"), dir.path(), &args);
    assert!(
        server.wait_idle(Duration::from_secs(10)),
        "the example left connections open\n{}",
        out.dump()
    );
    let counts = server.counts();
    assert_line_run_matches(&out, &counts);
    // With 3 commands a connection, every user had its connection closed and went on.
    let dropped: u64 = counts.commands.values().map(|c| c.dropped).sum();
    assert!(dropped > 0, "{counts:?}\n{}", out.dump());
    assert!(
        counts.connections > USERS,
        "reconnects: {counts:?}\n{}",
        out.dump()
    );
    // A user reconnects on its next call after each dropped command, unless the run
    // ended first.
    assert!(
        counts.connections <= USERS + dropped,
        "{counts:?}\n{}",
        out.dump()
    );
}

#[test]
fn tcp_lines_without_a_host_serves_itself_and_logs_what_its_server_counted() {
    let dir = TempDir::new("tcp-lines");
    let out = run_in(&example_bin("tcp_lines"), dir.path(), &RUN);
    out.assert_stderr_contains(
        "No -H tcp://HOST:PORT given: serving the line protocol on 127.0.0.1:",
    );
    const MARK: &str = "Line server counts: ";
    let line = out
        .stderr
        .lines()
        .find_map(|l| l.split_once(MARK).map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no {MARK:?} line\n{}", out.dump()));
    let counts: line_server::Counts =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{}", out.dump()));
    assert_line_run_matches(&out, &counts);
    assert_eq!(counts.connections, USERS, "{}", out.dump());
}

#[test]
fn tcp_lines_refused_connections_are_recorded_failures() {
    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = TempDir::new("tcp-lines");
    let host = format!("tcp://127.0.0.1:{port}");
    let out = run_in(
        &example_bin("tcp_lines"),
        dir.path(),
        &["-H", &host, "--headless", "-u", "2", "-r", "2", "-t", "1s"],
    );
    out.assert_code(1);
    assert_no_exceptions(&out);
    // Nothing is sent without a connection: only the connects are recorded, all failed.
    assert_eq!(out.summary().names(), ["TCP connect"], "{}", out.dump());
    let (reqs, fails) = row(&out, "TCP", "connect");
    assert!(reqs > 0 && fails == reqs, "{}", out.dump());
    assert_eq!(
        error_report(&out),
        BTreeMap::from([(
            "TCP connect: ConnectionRefusedError(111, 'Connection refused')".to_string(),
            reqs
        )]),
        "{}",
        out.dump()
    );
}

#[test]
fn tcp_lines_refuses_a_host_that_is_not_tcp() {
    let dir = TempDir::new("tcp-lines");
    for (host, message) in [
        (
            "http://127.0.0.1:8080",
            "-H must be tcp://HOST:PORT, got \"http://127.0.0.1:8080\"",
        ),
        (
            "tcp://127.0.0.1",
            "-H \"tcp://127.0.0.1\" has no port: use tcp://HOST:PORT",
        ),
    ] {
        let out = run_in(
            &example_bin("tcp_lines"),
            dir.path(),
            &["--headless", "-t", "1s", "--host", host],
        );
        // The example's init listener refuses it: Locust's exit code 1 for a failing init.
        out.assert_code(1)
            .assert_stderr_contains(message)
            .assert_stderr_contains("an init event listener failed");
    }
}

// ---------------------------------------------------------------------------------------
// redis_kv
// ---------------------------------------------------------------------------------------

/// A `redis-server` on a free port of 127.0.0.1, without persistence, stopped (by its pid)
/// when dropped.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        match Command::new("redis-server").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("redis-server --version failed: {o:?}"),
            Err(e) => panic!(
                "redis-server is needed by this test and could not be run ({e}): run \
                 `bash scripts/test`, which installs it (Debian package redis-server)"
            ),
        }
        // Redis cannot listen on port 0; a port just freed by the system is very likely
        // still free. If another process took it, the server exits and we try another.
        for _ in 0..5 {
            let dir = TempDir::new("redis");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let mut server = RedisServer {
                child,
                port,
                _dir: dir,
            };
            if server.wait_until_ready() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port of 127.0.0.1 in 5 tries");
    }

    /// Waits until the server answers, or has exited (port taken).
    fn wait_until_ready(&mut self) -> bool {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection of the test's own, to read the server's counters.
    fn connect(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn redis_query<T: redis::FromRedisValue>(conn: &mut redis::Connection, cmd: &redis::Cmd) -> T {
    cmd.query(conn)
        .unwrap_or_else(|e| panic!("{cmd:?} failed: {e}"))
}

/// `field: value` pairs of an `INFO` section (`cmdstat_set` → `calls=3,usec=…`).
fn info(conn: &mut redis::Connection, section: &str) -> BTreeMap<String, String> {
    let text: String = redis_query(conn, redis::cmd("INFO").arg(section));
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// (calls, failed_calls) of one command from `INFO commandstats`; (0, 0) if never called.
fn command_calls(stats: &BTreeMap<String, String>, command: &str) -> (u64, u64) {
    let Some(line) = stats.get(&format!("cmdstat_{command}")) else {
        return (0, 0);
    };
    let field = |name: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    (field("calls"), field("failed_calls"))
}

/// Connections the test itself makes to Redis: the readiness probe and [`RedisServer::connect`].
const TEST_CONNECTIONS: u64 = 2;

const WRONGTYPE: &str =
    "REDIS LPUSH: ResponseError('WRONGTYPE Operation against a key holding the wrong kind of value')";

/// Checks a `redis_kv` run against the server's own counters; `test_connections` is how many
/// connections the test itself opened. Returns the failures other than `WRONGTYPE`: those of
/// commands whose connection was dropped.
///
/// A command that failed with its connection most likely never reached Redis, but it may
/// have run just before the connection went; so with `n` such failures for a name, Redis's
/// counts may exceed Hopper's successes by up to `n`. With none, they must be equal.
fn assert_redis_run_matches(
    out: &Output,
    conn: &mut redis::Connection,
    test_connections: u64,
) -> BTreeMap<String, u64> {
    let commandstats = info(conn, "commandstats");
    let stats = info(conn, "stats");
    let dbsize: u64 = redis_query(conn, &redis::cmd("DBSIZE"));
    let visits: Option<u64> = redis_query(conn, redis::cmd("GET").arg("visits"));
    let context = || {
        format!(
            "commandstats: {commandstats:?}\nDBSIZE {dbsize}, visits {visits:?}\n{}",
            out.dump()
        )
    };
    out.assert_code(1);
    assert_no_exceptions(out);
    assert_eq!(
        out.summary().names(),
        [
            "REDIS GET",
            "REDIS INCR",
            "REDIS LPUSH",
            "REDIS SET",
            "REDIS connect"
        ],
        "{}",
        context()
    );
    let report = error_report(out);
    let lost = |name: &str| -> u64 {
        report
            .iter()
            .filter(|(text, _)| text.starts_with(&format!("REDIS {name}: ")) && *text != WRONGTYPE)
            .map(|(_, n)| n)
            .sum()
    };
    // Redis ran every command Hopper recorded as answered, and failed those Hopper recorded
    // as failed by Redis.
    for (name, command) in [
        ("GET", "get"),
        ("INCR", "incr"),
        ("LPUSH", "lpush"),
        ("SET", "set"),
    ] {
        let (reqs, fails) = row(out, "REDIS", name);
        let lost = lost(name);
        let (calls, failed) = command_calls(&commandstats, command);
        assert!(
            (reqs - lost..=reqs).contains(&calls) && (fails - lost..=fails).contains(&failed),
            "REDIS {name}: Hopper's (requests, failures) = {:?} with {lost} lost with their \
             connection, Redis's (calls, failed_calls) = {:?}\n{}",
            (reqs, fails),
            (calls, failed),
            context()
        );
    }
    let (lpush, lpush_fails) = row(out, "REDIS", "LPUSH");
    assert_eq!(
        report.get(WRONGTYPE).copied().unwrap_or(0),
        lpush_fails - lost("LPUSH"),
        "{}",
        context()
    );
    assert_eq!(lpush, lpush_fails, "every LPUSH fails\n{}", context());
    let (connects, connect_fails) = row(out, "REDIS", "connect");
    assert_eq!(connect_fails, 0, "{}", context());
    assert_eq!(
        stats["total_connections_received"].parse::<u64>().unwrap(),
        connects + test_connections,
        "{}",
        context()
    );
    // Each SET wrote a new key; INCR counts in one more key.
    let (sets, set_fails) = row(out, "REDIS", "SET");
    let (incrs, incr_fails) = row(out, "REDIS", "INCR");
    let set_keys = dbsize - u64::from(visits.is_some());
    assert!(
        (sets - set_fails..=sets - set_fails + lost("SET")).contains(&set_keys),
        "{}",
        context()
    );
    assert!(
        (incrs - incr_fails..=incrs - incr_fails + lost("INCR")).contains(&visits.unwrap_or(0)),
        "{}",
        context()
    );
    // Lengths: `OK` per SET, nothing for INCR's integers.
    let json = json_entries(out);
    assert_eq!(
        json[&("REDIS".to_string(), "SET".to_string())].2,
        2 * (sets - set_fails),
        "{}",
        context()
    );
    assert_eq!(json[&("REDIS".to_string(), "INCR".to_string())].2, 0);
    report
        .into_iter()
        .filter(|(text, _)| text != WRONGTYPE)
        .collect()
}

#[test]
fn redis_kv_counts_match_what_redis_counted() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let dir = TempDir::new("redis-kv");
    let url = redis.url();
    let mut args = vec!["-H", url.as_str()];
    args.extend(RUN);
    let out = run_in(&example_bin("redis_kv"), dir.path(), &args);
    // Nothing was lost, so Redis's counts and Hopper's are equal.
    let lost = assert_redis_run_matches(&out, &mut conn, TEST_CONNECTIONS);
    assert_eq!(lost, BTreeMap::new(), "{}", out.dump());
    assert_eq!(row(&out, "REDIS", "connect"), (USERS, 0), "{}", out.dump());
    let (lpush, _) = row(&out, "REDIS", "LPUSH");
    assert!(lpush > 0, "{}", out.dump());
}

#[test]
fn redis_kv_records_dropped_connections_and_connects_again() {
    let redis = RedisServer::start();
    let mut conn = redis.connect();
    let dir = TempDir::new("redis-kv");
    let url = redis.url();
    let mut cmd = command(&example_bin("redis_kv"), dir.path());
    cmd.args(["-H", url.as_str()]).args(RUN);
    let running = Running::spawn(cmd);
    // Once every user has connected and written its own key (users are numbered from 1),
    // the server drops their connections (not this one).
    let mut user_keys = redis::cmd("EXISTS");
    for id in 1..=USERS {
        user_keys.arg(format!("user:{id}"));
    }
    let until = Instant::now() + Duration::from_secs(20);
    while redis_query::<u64>(&mut conn, &user_keys) < USERS {
        assert!(
            Instant::now() < until,
            "the users did not start\n{}",
            running.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed: u64 = redis_query(
        &mut conn,
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal"),
    );
    assert_eq!(killed, USERS);
    let out = running.wait();
    let lost = assert_redis_run_matches(&out, &mut conn, TEST_CONNECTIONS);
    // Each user's next command failed with the connection, then the user connected again.
    let failures: u64 = lost.values().sum();
    assert_eq!(failures, killed, "{lost:?}\n{}", out.dump());
    for text in lost.keys() {
        let error = text.split_once(": ").map_or("", |(_, e)| e);
        assert!(
            [
                "ConnectionError(",
                "ConnectionResetError(",
                "BrokenPipeError("
            ]
            .iter()
            .any(|p| error.starts_with(p)),
            "{text}\n{}",
            out.dump()
        );
    }
    assert_eq!(
        row(&out, "REDIS", "connect"),
        (USERS + killed, 0),
        "{}",
        out.dump()
    );
}
