//! Master/worker mode end to end: a real Hopper master and real Hopper workers (the
//! `distributed` example: classes Api weight 3, Browser weight 1, Feed fixed_count 2) on
//! 127.0.0.1, against the demo target whose exact counters show what really happened.
//!
//! * users are spread over workers exactly as Locust 2.47's `UsersDispatcher` spreads them
//!   (the reference's verified example, §6.9);
//! * a worker killed with SIGKILL goes `missing` and the survivors take its users, with no
//!   statistics lost;
//! * workers find a restarted master by themselves;
//! * garbage on the master port (raw bytes, HTTP, broken ZMTP, non-msgpack messages, stats
//!   from an identity that never said `client_ready`) neither stops the master nor corrupts
//!   its totals;
//! * after a clean stop the master's summary equals the target's counters exactly;
//! * `--expect-workers` gives up as Locust does.
//!
//! Every process is killed by its pid when a test ends or fails ([`Procs`]); on failure the
//! tail of each one's stderr is printed.

mod common;

use common::web::{web_addr_from_log, Server};
use common::*;
use rmpv::Value as Mp;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// Every interface the tests use.
const LOCALHOST: &str = "127.0.0.1";

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// The processes of one test, by name. Dropping it (at the end of the test, or while a
/// failed test unwinds) kills every process still held with SIGKILL by its pid; a failing
/// test also prints the end of each one's stderr.
#[derive(Default)]
struct Procs {
    list: Vec<(String, Running)>,
}

impl Procs {
    fn add(&mut self, name: &str, running: Running) {
        assert!(
            self.list.iter().all(|(n, _)| n != name),
            "two processes named {name}"
        );
        self.list.push((name.to_string(), running));
    }

    fn get(&mut self, name: &str) -> &mut Running {
        self.list
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("no process named {name}"))
    }

    /// Hands the process over (to wait for it); the guard no longer kills it.
    fn take(&mut self, name: &str) -> Running {
        let at = self
            .list
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no process named {name}"));
        self.list.remove(at).1
    }

    /// SIGKILL by pid. The process stays in the guard (a zombie until the guard reaps it, so
    /// its pid cannot be reused meanwhile).
    fn kill(&mut self, name: &str) {
        let pid = self.get(name).pid();
        kill_pid(pid);
    }
}

fn kill_pid(pid: u32) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
}

impl Drop for Procs {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        for (name, running) in &mut self.list {
            kill_pid(running.pid());
            if failing {
                // Killed: its stderr closes, so this returns quickly with everything it wrote.
                running.wait_for_stderr(Duration::from_secs(3), |_| false);
                eprintln!(
                    "--- {name} (pid {}), last lines of stderr:\n{}",
                    running.pid(),
                    tail(&running.stderr_so_far(), 60)
                );
            }
        }
        // `Running`'s own drop reaps each child.
        self.list.clear();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The port in "Master listening for workers on port N".
fn master_port_from_log(stderr: &str) -> Option<u16> {
    const MARK: &str = "Master listening for workers on port ";
    let line = stderr.lines().find(|l| l.contains(MARK))?;
    line[line.find(MARK)? + MARK.len()..].trim().parse().ok()
}

/// `distributed --master` bound to 127.0.0.1:`port` (0: a free port), with `extra`
/// arguments; waits until it listens for workers (and, unless headless, serves its web UI).
/// Returns the port workers connect to. A port still held by a killed predecessor is retried
/// for a few seconds.
fn start_master(procs: &mut Procs, dir: &TempDir, name: &str, port: u16, extra: &[&str]) -> u16 {
    let headless = extra.contains(&"--headless");
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let mut cmd = command(&example_bin("distributed"), dir.path());
        cmd.args([
            "--master",
            "--master-bind-host",
            LOCALHOST,
            "--master-bind-port",
            &port.to_string(),
        ]);
        cmd.args(extra);
        let mut running = Running::spawn(cmd);
        let up = running.wait_for_stderr(Duration::from_secs(20), |s| {
            master_port_from_log(s).is_some()
                && (headless || s.contains("Starting web interface at "))
        });
        if up {
            let bound = master_port_from_log(&running.stderr_so_far()).unwrap();
            if port != 0 {
                assert_eq!(bound, port);
            }
            procs.add(name, running);
            return bound;
        }
        let out = running.wait();
        assert!(
            out.stderr.contains("could not bind") && Instant::now() < give_up,
            "the master did not start\n{}",
            out.dump()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A master with its web UI on a free port, as in the brief: `--master --master-bind-host
/// 127.0.0.1 --master-bind-port P --web-host 127.0.0.1 --web-port 0 -H <target>`.
fn start_web_master(
    procs: &mut Procs,
    dir: &TempDir,
    name: &str,
    port: u16,
    target: &str,
) -> (u16, Server) {
    let port = start_master(
        procs,
        dir,
        name,
        port,
        &["--web-host", LOCALHOST, "--web-port", "0", "-H", target],
    );
    let addr = web_addr_from_log(&procs.get(name).stderr_so_far()).expect("web UI address");
    (port, Server::plain(&addr))
}

/// `distributed --worker` with identity `id`, connecting to 127.0.0.1:`port`.
fn start_worker(procs: &mut Procs, dir: &TempDir, port: u16, id: &str) {
    let mut cmd = command(&example_bin("distributed"), dir.path());
    cmd.args([
        "--worker",
        "--master-host",
        LOCALHOST,
        "--master-port",
        &port.to_string(),
        "--worker-id",
        id,
    ]);
    procs.add(id, Running::spawn(cmd));
}

// ---------------------------------------------------------------------------------------------
// The master's web API
// ---------------------------------------------------------------------------------------------

/// One row of `workers` in `/stats/requests`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WorkerView {
    state: String,
    user_count: u64,
    /// Hopper's `user_classes_count`, zero counts left out.
    classes: BTreeMap<String, u64>,
}

fn stats(server: &Server) -> Value {
    let reply = server.get("/stats/requests");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// The `workers` rows by id.
fn workers(v: &Value) -> BTreeMap<String, WorkerView> {
    let rows = v["workers"]
        .as_array()
        .unwrap_or_else(|| panic!("no workers array on a master: {v}"));
    rows.iter()
        .map(|w| {
            let classes = w
                .get("user_classes_count")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().expect("a count")))
                        .filter(|(_, n)| *n > 0)
                        .collect()
                })
                .unwrap_or_default();
            (
                w["id"].as_str().expect("worker id").to_string(),
                WorkerView {
                    state: w["state"].as_str().expect("worker state").to_string(),
                    user_count: w["user_count"].as_u64().expect("worker user_count"),
                    classes,
                },
            )
        })
        .collect()
}

/// The Aggregated row's request count.
fn total_requests(v: &Value) -> u64 {
    v["stats"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "Aggregated"))
        .and_then(|r| r["num_requests"].as_u64())
        .unwrap_or_else(|| panic!("no Aggregated row: {v}"))
}

/// Polls `/stats/requests` every 100 ms until `check` gives a value; fails after `limit`
/// showing `what` and the last reply.
fn poll<T>(
    server: &Server,
    limit: Duration,
    what: &str,
    mut check: impl FnMut(&Value) -> Option<T>,
) -> T {
    let until = Instant::now() + limit;
    loop {
        let v = stats(server);
        if let Some(t) = check(&v) {
            return t;
        }
        assert!(
            Instant::now() < until,
            "timed out after {limit:?} waiting for {what}; last /stats/requests:\n{v:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until exactly the workers `ids` are connected and ready.
fn wait_for_ready_workers(server: &Server, ids: &[&str], limit: Duration) {
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    poll(server, limit, &format!("workers {want:?} ready"), |v| {
        let w = workers(v);
        let ready = w.keys().cloned().collect::<Vec<_>>() == want
            && w.values().all(|n| n.state == "ready")
            && v["worker_count"] == want.len();
        ready.then_some(())
    });
}

fn swarm(server: &Server, users: u32, rate: u32) {
    let reply = server.post_form("/swarm", &format!("user_count={users}&spawn_rate={rate}"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    assert_eq!(v["success"], true, "/swarm refused: {v}");
}

type Distribution = BTreeMap<String, BTreeMap<String, u64>>;

fn distribution(expected: &[(&str, &[(&str, u64)])]) -> Distribution {
    expected
        .iter()
        .map(|(id, classes)| {
            (
                id.to_string(),
                classes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            )
        })
        .collect()
}

/// The non-zero class counts of every worker, if all of them run as many users as their
/// classes add up to and the master's state is `running`.
fn settled_distribution(v: &Value) -> Option<Distribution> {
    let w = workers(v);
    let consistent = v["state"] == "running"
        && w.values()
            .all(|n| n.state == "running" && n.user_count == n.classes.values().sum::<u64>());
    consistent.then(|| {
        w.into_iter()
            .map(|(id, n)| (id, n.classes))
            .collect::<Distribution>()
    })
}

/// Waits until the workers run exactly `expected` (and `total` users in all), then checks
/// that it stays so across a worker statistics report (3 s).
fn expect_distribution(server: &Server, expected: &Distribution, total: u64) {
    let mut last = None;
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let v = stats(server);
        let seen = settled_distribution(&v);
        if seen.as_ref() == Some(expected) && v["user_count"] == total {
            break;
        }
        last = seen.or(last);
        assert!(
            Instant::now() < until,
            "the workers' users never matched Locust's dispatch\nexpected: {expected:?}\n\
             last settled: {last:?}\n/stats/requests: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(3300));
    let v = stats(server);
    assert_eq!(
        settled_distribution(&v).as_ref(),
        Some(expected),
        "the distribution changed after a report: {v:#}"
    );
    assert_eq!(v["user_count"], total, "{v:#}");
}

// ---------------------------------------------------------------------------------------------
// Raw peers on the master port
// ---------------------------------------------------------------------------------------------

const ZMTP_MORE: u8 = 0x01;
const ZMTP_LONG: u8 = 0x02;
const ZMTP_COMMAND: u8 = 0x04;

/// A ZMTP 3.0 greeting with the NULL mechanism, as a client.
fn zmtp_greeting() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 0;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// The READY command of a DEALER with this routing identity.
fn zmtp_ready(identity: &[u8]) -> Vec<u8> {
    let mut body = vec![5u8];
    body.extend_from_slice(b"READY");
    for (name, value) in [
        (&b"Socket-Type"[..], &b"DEALER"[..]),
        (b"Identity", identity),
    ] {
        body.push(name.len() as u8);
        body.extend_from_slice(name);
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut frame = vec![ZMTP_COMMAND, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

/// One single-frame message.
fn zmtp_message(body: &[u8]) -> Vec<u8> {
    let mut frame = match u8::try_from(body.len()) {
        Ok(short) => vec![0, short],
        Err(_) => {
            let mut f = vec![ZMTP_LONG];
            f.extend_from_slice(&(body.len() as u64).to_be_bytes());
            f
        }
    };
    frame.extend_from_slice(body);
    frame
}

fn connect_raw(port: u16) -> TcpStream {
    let stream = TcpStream::connect((LOCALHOST, port)).expect("connect to the master port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// True if the peer closed the connection (end of stream or reset) within `within`, reading
/// and discarding whatever it sends meanwhile.
fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    let until = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// A hand-written ZeroMQ DEALER: a completed ZMTP handshake with the given identity.
struct ZmtpPeer {
    stream: TcpStream,
}

impl ZmtpPeer {
    fn connect(port: u16, identity: &str) -> ZmtpPeer {
        let mut stream = connect_raw(port);
        stream.write_all(&zmtp_greeting()).unwrap();
        let mut greeting = [0u8; 64];
        stream
            .read_exact(&mut greeting)
            .expect("the master's ZMTP greeting");
        assert_eq!(greeting[0], 0xff, "not a ZMTP greeting: {greeting:?}");
        assert_eq!(greeting[10], 3, "not ZMTP 3: {greeting:?}");
        stream.write_all(&zmtp_ready(identity.as_bytes())).unwrap();
        let mut peer = ZmtpPeer { stream };
        let (flags, body) = peer.read_frame().expect("the master's READY command");
        assert!(
            flags & ZMTP_COMMAND != 0 && body.starts_with(b"\x05READY"),
            "expected READY, got flags {flags:#x} {body:?}"
        );
        peer
    }

    fn send(&mut self, payload: &[u8]) {
        self.stream.write_all(&zmtp_message(payload)).unwrap();
    }

    fn read_frame(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut flags = [0u8; 1];
        self.stream.read_exact(&mut flags)?;
        let len = if flags[0] & ZMTP_LONG != 0 {
            let mut n = [0u8; 8];
            self.stream.read_exact(&mut n)?;
            u64::from_be_bytes(n)
        } else {
            let mut n = [0u8; 1];
            self.stream.read_exact(&mut n)?;
            u64::from(n[0])
        };
        assert!(len < 1 << 20, "a {len}-byte frame from the master");
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body)?;
        Ok((flags[0], body))
    }
}

/// `msgpack([type, data, node_id])`, written with `rmpv` as a Python worker would.
fn locust_message(kind: &str, data: Mp, node_id: &str) -> Vec<u8> {
    let value = Mp::Array(vec![Mp::from(kind), data, Mp::from(node_id)]);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).unwrap();
    out
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn map(pairs: Vec<(&str, Mp)>) -> Mp {
    Mp::Map(pairs.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
}

/// A serialized StatsEntry (Locust's 14 keys) with `n` successful 10 ms requests.
fn stats_entry(name: &str, method: &str, n: u64) -> Mp {
    let now = now_epoch();
    map(vec![
        ("name", Mp::from(name)),
        ("method", Mp::from(method)),
        ("last_request_timestamp", Mp::F64(now)),
        ("start_time", Mp::F64(now - 1.0)),
        ("num_requests", Mp::from(n)),
        ("num_none_requests", Mp::from(0)),
        ("num_failures", Mp::from(0)),
        ("total_response_time", Mp::F64(10.0 * n as f64)),
        ("max_response_time", Mp::F64(10.0)),
        ("min_response_time", Mp::F64(10.0)),
        ("total_content_length", Mp::from(100 * n)),
        ("response_times", Mp::Map(vec![(Mp::from(10), Mp::from(n))])),
        (
            "num_reqs_per_sec",
            Mp::Map(vec![(Mp::from(now as u64), Mp::from(n))]),
        ),
        ("num_fail_per_sec", Mp::Map(Vec::new())),
    ])
}

/// A `stats` message from `node_id` claiming 1000 requests to `GET /` and 500 to
/// `GET /products`, none of which the target ever served.
fn forged_stats(node_id: &str) -> Vec<u8> {
    let data = map(vec![
        (
            "stats",
            Mp::Array(vec![
                stats_entry("/", "GET", 1000),
                stats_entry("/products", "GET", 500),
            ]),
        ),
        ("stats_total", stats_entry("Aggregated", "", 1500)),
        ("errors", Mp::Map(Vec::new())),
        (
            "user_classes_count",
            map(vec![("Api", Mp::from(7)), ("Feed", Mp::from(2))]),
        ),
        ("user_count", Mp::from(9)),
    ]);
    let bytes = locust_message("stats", data, node_id);
    // The forgery is a well-formed report: were it accepted, the totals would show it.
    let message = hopper_cluster::wire::Message::decode(&bytes).expect("a Locust message");
    let report = hopper_cluster::wire::StatsReport::from_value(&message.data)
        .expect("a stats report a master would merge");
    assert_eq!(report.report.stats_total.num_requests, 1500);
    bytes
}

/// Connections the master must close at once: raw bytes, an HTTP request, a ZMTP frame
/// header announcing 4 TiB before and after the handshake. Each is checked to be closed.
fn hostile_connections(port: u16) {
    let mut garbage = connect_raw(port);
    let noise: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = garbage.write_all(&[0x13, 0x37, 0x00, 0x01, 0xfe]);
    let _ = garbage.write_all(&noise);

    let mut http = connect_raw(port);
    let _ = http
        .write_all(b"GET /stats/requests HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");

    // A greeting, then a command frame announcing 4 TiB.
    let mut huge_command = connect_raw(port);
    let mut bytes = zmtp_greeting();
    bytes.push(ZMTP_COMMAND | ZMTP_LONG);
    bytes.extend_from_slice(&(1u64 << 42).to_be_bytes());
    let _ = huge_command.write_all(&bytes);

    // A full handshake, then a message frame announcing 4 TiB.
    let mut huge_message = ZmtpPeer::connect(port, "hostile_huge");
    let mut header = vec![ZMTP_LONG | ZMTP_MORE];
    header.extend_from_slice(&(1u64 << 42).to_be_bytes());
    let _ = huge_message.stream.write_all(&header);
    let _ = huge_message.stream.write_all(&[0u8; 4096]);

    for (what, stream) in [
        ("raw garbage", &mut garbage),
        ("an HTTP request", &mut http),
        ("a 4 TiB command frame header", &mut huge_command),
        ("a 4 TiB message frame header", &mut huge_message.stream),
    ] {
        assert!(
            closed_by_peer(stream, Duration::from_secs(5)),
            "the master left a connection sending {what} open"
        );
    }
}

/// Well-formed ZMTP peers sending what is not a Locust message, or a Locust message from an
/// identity the master does not know. Returns the peers (kept open until the test ends).
fn hostile_messages(port: u16, round: &str, real_worker: &str) -> Vec<ZmtpPeer> {
    let mut peers = Vec::new();

    let mut not_msgpack = ZmtpPeer::connect(port, &format!("garbage_{round}"));
    not_msgpack.send(b"\xc1\xc1 this is not msgpack \xff\x00");
    // msgpack, but not [type, data, node_id].
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &map(vec![("stats", Mp::Nil)])).unwrap();
    not_msgpack.send(&bytes);
    // An empty frame and a two-frame message.
    not_msgpack.send(b"");
    not_msgpack
        .stream
        .write_all(&[ZMTP_MORE, 1, b'a', 0, 1, b'b'])
        .unwrap();
    peers.push(not_msgpack);

    // Statistics before (and without) client_ready, under its own id...
    let id = format!("intruder_{round}");
    let mut intruder = ZmtpPeer::connect(port, &id);
    intruder.send(&forged_stats(&id));
    peers.push(intruder);
    // ...and naming a real worker's id from another identity.
    let mut impostor = ZmtpPeer::connect(port, &format!("impostor_{round}"));
    impostor.send(&forged_stats(real_worker));
    peers.push(impostor);

    // A truncated greeting, left open: the master must not wait for it.
    let mut truncated = connect_raw(port);
    truncated.write_all(&zmtp_greeting()[..10]).unwrap();
    peers.push(ZmtpPeer { stream: truncated });
    peers
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Reference §6.9's verified example: workers hostB_2, hostA_1, hostA_0, hostB_9; classes A
/// (weight 3), B (weight 1), F (fixed 2) — here Api, Browser, Feed.
#[test]
fn users_are_spread_over_workers_as_locusts_dispatcher_spreads_them() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("cluster-dispatch");
    let mut procs = Procs::default();
    let (port, web) = start_web_master(&mut procs, &dir, "master", 0, target.url());
    let ids = ["hostB_2", "hostA_1", "hostA_0", "hostB_9"];
    for id in ids {
        start_worker(&mut procs, &dir, port, id);
    }
    wait_for_ready_workers(&web, &ids, Duration::from_secs(20));

    swarm(&web, 10, 100);
    expect_distribution(
        &web,
        &distribution(&[
            ("hostA_0", &[("Api", 2), ("Feed", 1)]),
            ("hostB_2", &[("Api", 2), ("Feed", 1)]),
            ("hostA_1", &[("Api", 2)]),
            ("hostB_9", &[("Browser", 2)]),
        ]),
        10,
    );
    let spawned = r#"All users spawned: {"Api": 6, "Browser": 2, "Feed": 2} (10 total users)"#;
    assert!(
        procs
            .get("master")
            .wait_for_stderr(Duration::from_secs(5), |s| s.contains(spawned)),
        "the master did not log {spawned:?}"
    );

    // Ramping down removes the newest users first.
    swarm(&web, 4, 100);
    expect_distribution(
        &web,
        &distribution(&[
            ("hostA_0", &[("Feed", 1)]),
            ("hostB_2", &[("Feed", 1)]),
            ("hostA_1", &[("Api", 1)]),
            ("hostB_9", &[("Browser", 1)]),
        ]),
        4,
    );
    let spawned = r#"All users spawned: {"Api": 1, "Browser": 1, "Feed": 2} (4 total users)"#;
    assert!(
        procs
            .get("master")
            .wait_for_stderr(Duration::from_secs(5), |s| s.contains(spawned)),
        "the master did not log {spawned:?}"
    );
    // The workers really run those users.
    let products = target.counters().get("GET", "/products", 200);
    assert!(products > 0, "no Feed user reached the target");
    eprintln!("dispatch test took {:?}", started.elapsed());
}

#[test]
fn a_killed_worker_goes_missing_and_the_others_take_its_users() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("cluster-kill");
    let mut procs = Procs::default();
    let (port, web) = start_web_master(&mut procs, &dir, "master", 0, target.url());
    let ids = ["hostA_0", "hostB_0", "hostC_0"];
    for id in ids {
        start_worker(&mut procs, &dir, port, id);
    }
    wait_for_ready_workers(&web, &ids, Duration::from_secs(20));
    swarm(&web, 9, 100);

    // Running, and the victim's requests are in the totals.
    let victim = "hostB_0";
    // Locust's dispatch of 9 users over three machines.
    let before = distribution(&[
        ("hostA_0", &[("Api", 1), ("Browser", 1), ("Feed", 1)]),
        ("hostB_0", &[("Api", 1), ("Browser", 1), ("Feed", 1)]),
        ("hostC_0", &[("Api", 3)]),
    ]);
    let mut last_total = poll(
        &web,
        Duration::from_secs(15),
        &format!("9 users running as {before:?}"),
        |v| {
            let total = total_requests(v);
            (settled_distribution(v).as_ref() == Some(&before) && total > 0).then_some(total)
        },
    );
    std::thread::sleep(Duration::from_millis(3200));
    let v = stats(&web);
    assert!(total_requests(&v) >= last_total);
    last_total = total_requests(&v);
    let victim_users = workers(&v)[victim].user_count;
    assert!(victim_users > 0, "{v:#}");

    // Locust's dispatch of the same 9 users over the two survivors.
    let after = distribution(&[
        ("hostA_0", &[("Api", 4), ("Feed", 1)]),
        ("hostC_0", &[("Api", 1), ("Browser", 2), ("Feed", 1)]),
    ]);
    procs.kill(victim);
    let killed = Instant::now();
    let mut polls = 0u32;
    let (recovered_after, total_at_recovery) = loop {
        let v = stats(&web);
        polls += 1;
        let total = total_requests(&v);
        assert!(
            total >= last_total,
            "the total number of requests went down from {last_total} to {total} after the \
             worker was killed: {v:#}"
        );
        last_total = total;
        let w = workers(&v);
        let live: Distribution = w
            .iter()
            .filter(|(id, _)| id.as_str() != victim)
            .map(|(id, n)| (id.clone(), n.classes.clone()))
            .collect();
        let done = w.get(victim).is_some_and(|n| n.state == "missing")
            && live == after
            && w.iter().all(|(id, n)| {
                id == victim
                    || (n.state == "running" && n.user_count == n.classes.values().sum::<u64>())
            })
            && v["user_count"] == 9
            && v["worker_count"] == 2
            && v["state"] == "running";
        if done {
            break (killed.elapsed(), total);
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "10 s after {victim} was killed the survivors had not taken its {victim_users} \
             users as {after:?}: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(workers(&stats(&web))[victim].user_count, 0);

    // The test goes on: the totals keep growing and never shrink.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let v = stats(&web);
        let total = total_requests(&v);
        assert!(total >= last_total, "{last_total} -> {total}: {v:#}");
        last_total = total;
        assert_eq!(v["state"], "running", "{v:#}");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        last_total > total_at_recovery,
        "no new requests counted after the survivors took over ({last_total})"
    );
    eprintln!(
        "kill test: survivors took over {recovered_after:?} after SIGKILL ({polls} polls); \
         took {:?} in all",
        started.elapsed()
    );
}

#[test]
fn workers_reconnect_to_a_restarted_master() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("cluster-restart");
    let mut procs = Procs::default();
    let (port, web) = start_web_master(&mut procs, &dir, "master-1", 0, target.url());
    let ids = ["hostA_0", "hostB_0"];
    for id in ids {
        start_worker(&mut procs, &dir, port, id);
    }
    wait_for_ready_workers(&web, &ids, Duration::from_secs(20));
    swarm(&web, 4, 100);
    poll(&web, Duration::from_secs(15), "4 users running", |v| {
        (v["user_count"] == 4 && v["state"] == "running").then_some(())
    });

    procs.kill("master-1");
    let killed = Instant::now();
    let (_, web) = start_web_master(&mut procs, &dir, "master-2", port, target.url());
    let restarted = Instant::now();
    poll(
        &web,
        Duration::from_secs(15),
        "both workers in the new master's list, ready and idle",
        |v| {
            // The users of the old master were stopped before the workers registered again:
            // to the new master they are idle until it hands out users itself.
            let w = workers(v);
            let both = ids.iter().all(|id| {
                w.get(*id)
                    .is_some_and(|n| n.state == "ready" && n.user_count == 0)
            });
            (both && v["worker_count"] == 2 && v["user_count"] == 0).then_some(())
        },
    );
    let rejoined = (restarted.elapsed(), killed.elapsed());

    // A new test on the new master runs on both, dispatched as Locust would.
    let expected = distribution(&[
        ("hostA_0", &[("Api", 2), ("Feed", 1)]),
        ("hostB_0", &[("Api", 1), ("Browser", 1), ("Feed", 1)]),
    ]);
    let before = target.counters().total();
    swarm(&web, 6, 100);
    let v = poll(
        &web,
        Duration::from_secs(15),
        "6 users over both workers and their requests counted",
        |v| {
            let ok = settled_distribution(v).as_ref() == Some(&expected)
                && v["user_count"] == 6
                && total_requests(v) > 0;
            ok.then(|| v.clone())
        },
    );
    assert!(
        target.counters().total() > before,
        "no requests reached the target"
    );
    let joined = procs
        .get("master-2")
        .wait_for_stderr(Duration::from_secs(5), |log| {
            ids.iter().all(|id| log.contains(&format!("{id} (index")))
        });
    assert!(joined, "the new master did not log both workers joining");
    eprintln!(
        "restart test: workers back {:?} after the new master started ({:?} after the kill); \
         {} requests on the new master; took {:?} in all\n{}",
        rejoined.0,
        rejoined.1,
        total_requests(&v),
        started.elapsed(),
        v["workers"]
    );
}

#[test]
fn garbage_on_the_master_port_neither_stops_the_master_nor_corrupts_its_totals() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("cluster-garbage");
    let mut procs = Procs::default();
    let port = start_master(
        &mut procs,
        &dir,
        "master",
        0,
        &[
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "14s",
            "--expect-workers",
            "1",
            "--expect-workers-max-wait",
            "40",
            "-H",
            target.url(),
        ],
    );
    let worker = "hostA_0";

    // Before any worker: connections that must be cut, and messages that must be dropped.
    hostile_connections(port);
    let mut peers = hostile_messages(port, "0", worker);
    assert!(
        procs
            .get("master")
            .wait_for_stderr(Duration::from_secs(5), |s| {
                s.contains("Dropped a message from garbage_0 that could not be read")
            }),
        "the master did not report the unreadable message"
    );

    // A real worker still joins and a test runs.
    start_worker(&mut procs, &dir, port, worker);
    assert!(
        procs
            .get("master")
            .wait_for_stderr(Duration::from_secs(20), |s| s
                .contains("All users spawned: ")),
        "the test did not start"
    );
    // During the test, the same again, now that the worker's id is known.
    hostile_connections(port);
    peers.extend(hostile_messages(port, "1", worker));
    let truncated_at = Instant::now();
    // The master answers nothing to an unknown identity's statistics (a reply would mean it
    // took the sender for a worker).
    for i in [0, 1, 2, 4, 5, 6] {
        let peer = &mut peers[i];
        peer.stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if let Ok((_, body)) = peer.read_frame() {
            panic!("the master answered a hostile peer: {body:?}");
        }
    }
    // A second worker still joins the running test.
    let second = "hostB_0";
    start_worker(&mut procs, &dir, port, second);
    assert!(
        procs
            .get("master")
            .wait_for_stderr(Duration::from_secs(10), |s| s
                .contains(&format!("{second} (index"))),
        "the second worker did not join"
    );

    // The truncated greetings are cut off once the handshake deadline (10 s) passes, while
    // the master still runs (its exit would close them too).
    for i in [3, 7] {
        let left =
            (truncated_at + Duration::from_secs(12)).saturating_duration_since(Instant::now());
        assert!(
            closed_by_peer(&mut peers[i].stream, left.max(Duration::from_millis(100))),
            "truncated greeting #{i} still open 12 s after it was sent"
        );
    }
    assert!(
        !procs
            .get("master")
            .wait_for_stderr(Duration::from_millis(50), |s| s.contains("shutting down")),
        "the master ended before the truncated greetings timed out"
    );

    let out = procs.take("master").wait();
    out.assert_code(0);
    out.assert_stderr_contains("Dropped a message from garbage_1 that could not be read")
        .assert_stderr_lacks("panicked");
    for id in [worker, second] {
        procs.take(id).wait().assert_code(0);
    }
    let counters = target.finish();
    let summary = assert_counts_match(&out, &counters, &[], &[]);
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    eprintln!(
        "garbage test: {} requests, totals exact; took {:?}",
        summary.aggregated.reqs,
        started.elapsed()
    );
}

#[test]
fn a_clean_stop_leaves_the_masters_totals_equal_to_the_targets_counters() {
    let started = Instant::now();
    let target = Target::start();
    let dir = TempDir::new("cluster-clean-stop");
    let mut procs = Procs::default();
    let port = start_master(
        &mut procs,
        &dir,
        "master",
        0,
        &[
            "--headless",
            "-u",
            "6",
            "-r",
            "6",
            "-t",
            "6s",
            "--expect-workers",
            "2",
            "--expect-workers-max-wait",
            "30",
            "-H",
            target.url(),
        ],
    );
    let ids = ["hostA_0", "hostB_0"];
    for id in ids {
        start_worker(&mut procs, &dir, port, id);
    }
    let out = procs.take("master").wait();
    out.assert_code(0);
    assert_eq!(
        users_spawned(&out.stderr),
        Some((r#"{"Api": 3, "Browser": 1, "Feed": 2}"#.to_string(), 6)),
        "{}",
        out.dump()
    );
    for id in ids {
        let w = procs.take(id).wait();
        w.assert_code(0);
        w.assert_stderr_contains("Got quit message from master");
    }
    let counters = target.finish();
    let summary = assert_counts_match(&out, &counters, &[], &[]);
    assert_eq!(summary.logged_exit_code, 0);
    for route in ["/", "/fast", "/products"] {
        assert!(
            summary.row("GET", route).is_some_and(|r| r.reqs > 0),
            "no requests to {route}\n{}",
            out.dump()
        );
    }
    eprintln!(
        "clean-stop test: {} requests, master ran {:?}; took {:?}",
        summary.aggregated.reqs,
        out.elapsed,
        started.elapsed()
    );
}

#[test]
fn a_headless_master_gives_up_waiting_for_workers() {
    let target = Target::start();
    let dir = TempDir::new("cluster-expect");
    let mut cmd = command(&example_bin("distributed"), dir.path());
    cmd.args([
        "--master",
        "--master-bind-host",
        LOCALHOST,
        "--master-bind-port",
        "0",
        "--headless",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "5s",
        "--expect-workers",
        "2",
        "--expect-workers-max-wait",
        "2",
        "-H",
        target.url(),
    ]);
    let mut procs = Procs::default();
    procs.add("master", Running::spawn(cmd));
    let out = procs.take("master").wait();
    out.assert_code(1)
        .assert_stderr_contains("Gave up waiting for workers to connect");
    assert!(
        out.elapsed >= Duration::from_secs(2) && out.elapsed < Duration::from_secs(10),
        "gave up after {:?}\n{}",
        out.elapsed,
        out.dump()
    );
    assert_eq!(target.finish().total(), 0);
}

#[test]
fn a_headless_master_waits_for_one_worker_by_default() {
    // Locust's --expect-workers defaults to 1: a worker that starts after its master still
    // gets the test, instead of the master ramping to nobody.
    let target = Target::start();
    let dir = TempDir::new("cluster-default-expect");
    let mut procs = Procs::default();
    let port = start_master(
        &mut procs,
        &dir,
        "master",
        0,
        &[
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "3s",
            "-H",
            target.url(),
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    start_worker(&mut procs, &dir, port, "late_0");
    let out = procs.take("master").wait();
    out.assert_code(0);
    let summary = out.summary();
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    assert_eq!(
        summary.aggregated.reqs,
        target.counters().total(),
        "{}",
        out.dump()
    );
}

#[test]
fn a_worker_stopped_by_sigterm_says_goodbye_with_its_last_statistics() {
    let target = Target::start();
    let dir = TempDir::new("cluster-worker-sigterm");
    let mut procs = Procs::default();
    let (port, web) = start_web_master(&mut procs, &dir, "master", 0, target.url());
    for id in ["keep_0", "leave_0"] {
        start_worker(&mut procs, &dir, port, id);
    }
    wait_for_ready_workers(&web, &["keep_0", "leave_0"], Duration::from_secs(20));
    swarm(&web, 4, 100);
    poll(&web, Duration::from_secs(15), "4 users running", |v| {
        (v["user_count"] == 4 && v["state"] == "running").then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    procs.get("leave_0").signal("TERM");
    let worker = procs.take("leave_0").wait();
    worker.assert_code(0);
    // The master hears `quit` (not silence): the worker is gone at once, never `missing`,
    // and the survivor takes all 4 users.
    poll(
        &web,
        Duration::from_secs(10),
        "the survivor runs all 4 users",
        |v| {
            let w = workers(v);
            (!w.contains_key("leave_0") && w.get("keep_0").is_some_and(|n| n.user_count == 4))
                .then_some(())
        },
    );
    let said_quit = procs
        .get("master")
        .wait_for_stderr(Duration::from_secs(5), |s| {
            s.contains("Worker leave_0 quit.")
        });
    let log = procs.get("master").stderr_so_far();
    assert!(said_quit, "{}", tail(&log, 30));
    assert!(
        !log.contains("leave_0 failed to send heartbeat"),
        "{}",
        tail(&log, 30)
    );
    // Stop cleanly: every request the leaving worker made was reported before it left.
    let stopped = web.request("POST", "/stop", &[], b"");
    assert_eq!(stopped.status, 200);
    poll(&web, Duration::from_secs(15), "stopped", |v| {
        (v["state"] == "stopped").then_some(())
    });
    std::thread::sleep(Duration::from_millis(3500));
    let v = stats(&web);
    assert_eq!(total_requests(&v), target.counters().total(), "{v}");
}

#[test]
fn a_headless_master_quits_when_its_last_worker_quits() {
    // Locust: "The last worker quit, stopping test." and, headless, the master quits too,
    // with the statistics the worker sent on its way out.
    let target = Target::start();
    let dir = TempDir::new("cluster-last-worker-quits");
    let mut procs = Procs::default();
    let port = start_master(
        &mut procs,
        &dir,
        "master",
        0,
        &[
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "60s",
            "-H",
            target.url(),
        ],
    );
    start_worker(&mut procs, &dir, port, "only_0");
    let running = procs
        .get("master")
        .wait_for_stderr(Duration::from_secs(20), |s| s.contains("All users spawned"));
    assert!(
        running,
        "{}",
        tail(&procs.get("master").stderr_so_far(), 30)
    );
    std::thread::sleep(Duration::from_millis(1000));
    procs.get("only_0").signal("TERM");
    procs.take("only_0").wait().assert_code(0);
    let out = procs.take("master").wait();
    out.assert_code(0)
        .assert_stderr_contains("The last worker quit, stopping test.");
    assert!(out.elapsed < Duration::from_secs(50), "{}", out.dump());
    let summary = out.summary();
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    assert_eq!(
        summary.aggregated.reqs,
        target.counters().total(),
        "{}",
        out.dump()
    );
}
