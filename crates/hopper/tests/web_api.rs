//! The web API, end to end: the real `hopper` binary with its web UI on 127.0.0.1, driven
//! the way Locust's own tooling drives Locust (`/swarm`, `/stats/requests`, `/stop`, ...),
//! against the demo target it starts itself. Replies are checked for Locust's shapes and
//! messages; the target's own counters show that the requests really happened.

mod common;

use common::web::{web_addr_from_log, Reply, Server};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Starts `hopper --demo` with the web UI on a free port and returns it with its address.
fn start_web(dir: &TempDir, args: &[&str]) -> (Running, String) {
    let mut cmd = command(&hopper_bin(), dir.path());
    cmd.args(["--demo", "--web-host", "127.0.0.1", "--web-port", "0"]);
    cmd.args(args);
    let mut running = Running::spawn(cmd);
    let up = running.wait_for_stderr(Duration::from_secs(20), |s| {
        s.contains("Starting web interface at ")
    });
    assert!(up, "the web UI did not start\n{}", running.stderr_so_far());
    let addr = web_addr_from_log(&running.stderr_so_far()).expect("address in the log line");
    (running, addr)
}

/// Polls `/stats/requests` until `done` holds (or fails after 20 s).
fn wait_for_stats(server: &Server, base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let v = server.get(&format!("{base}/stats/requests")).json();
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn assert_swarm_error(server: &Server, form: &str, message: &str) {
    let r = server.post_form("/swarm", form);
    assert_eq!(r.status, 200, "Locust replies 200 even to a bad form");
    let v = r.json();
    assert_eq!(v["success"], false, "{form}: {v}");
    assert_eq!(v["message"], message, "{form}");
    assert_eq!(keys(&v), ["host", "message", "success"]);
}

#[test]
fn a_test_driven_through_locusts_api() {
    let dir = TempDir::new("web");
    let (running, addr) = start_web(&dir, &["-u", "7", "-r", "3"]);
    let server = Server::plain(&addr);

    // Before any test: ready, nothing counted, Locust's keys.
    let v = server.get("/stats/requests").json();
    assert_eq!(v["state"], "ready");
    assert_eq!(v["user_count"], 0);
    for key in [
        "current_fail_per_sec",
        "current_response_time_percentiles",
        "current_rps",
        "errors",
        "fail_ratio",
        "state",
        "stats",
        "total_fail_per_sec",
        "total_rps",
        "user_count",
    ] {
        assert!(v.get(key).is_some(), "/stats/requests lacks {key}: {v}");
    }
    assert!(v.get("workers").is_none(), "workers only on a master");

    // The page carries the form defaults from -u/-r.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("window.templateArgs"), "{html}");
    assert!(html.contains("\"num_users\":7"), "form default from -u");
    assert!(!html.contains("/*APP_JS*/"), "script inlined");

    // Bad forms: Locust's messages, and nothing starts.
    assert_swarm_error(
        &server,
        "user_count=abc&spawn_rate=1",
        "Invalid user_count value: 'abc' (must be an integer)",
    );
    assert_swarm_error(
        &server,
        "user_count=1&spawn_rate=x",
        "Invalid spawn_rate value: 'x' (must be a number)",
    );
    assert_swarm_error(
        &server,
        "user_count=-1&spawn_rate=1",
        "Missing or invalid user_count or spawn_rate from /swarm request",
    );
    assert_swarm_error(
        &server,
        "spawn_rate=1",
        "Missing or invalid user_count or spawn_rate from /swarm request",
    );
    assert_swarm_error(
        &server,
        "user_count=1&spawn_rate=1&run_time=later",
        "Valid run_time formats are : 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc.",
    );
    let r = server.post_form(
        "/swarm",
        "user_count=1&spawn_rate=1&host=http%3A%2F%2Fx%3Cscript%3E",
    );
    assert_eq!(r.json()["success"], false);
    std::thread::sleep(Duration::from_millis(300));
    let v = server.get("/stats/requests").json();
    assert_eq!(v["state"], "ready", "a bad form must change nothing");
    assert_eq!(v["user_count"], 0);

    // Wrong methods and unknown routes.
    assert_eq!(server.get("/stop").status, 405);
    assert_eq!(server.get("/stats/reset").status, 405);
    assert_eq!(server.get("/swarm").status, 405);
    assert_eq!(server.get("/no/such/route").status, 404);

    // Start 4 users at 4/s.
    let v = server
        .post_form("/swarm", "user_count=4&spawn_rate=4")
        .json();
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["message"], "Swarming started");
    let v = wait_for_stats(&server, "", "4 running users with requests", |v| {
        v["state"] == "running"
            && v["user_count"] == 4
            && v["stats"]
                .as_array()
                .and_then(|rows| rows.last())
                .is_some_and(|agg| agg["num_requests"].as_u64().unwrap_or(0) > 0)
    });
    let rows = v["stats"].as_array().unwrap();
    let agg = rows.last().unwrap();
    assert_eq!(agg["name"], "Aggregated");
    for key in [
        "avg_content_length",
        "avg_response_time",
        "current_fail_per_sec",
        "current_rps",
        "max_response_time",
        "median_response_time",
        "method",
        "min_response_time",
        "name",
        "num_failures",
        "num_requests",
        "response_time_percentile_0.95",
        "response_time_percentile_0.99",
        "total_fail_per_sec",
        "total_rps",
    ] {
        assert!(agg.get(key).is_some(), "row lacks {key}: {agg}");
    }
    assert_eq!(keys(agg), {
        let mut k = keys(agg);
        k.sort();
        k
    });

    // Edit the running test: down to 2 users, continuing from the current count.
    let v = server
        .post_form("/swarm", "user_count=2&spawn_rate=10")
        .json();
    assert_eq!(v["success"], true);
    wait_for_stats(&server, "", "2 users after the edit", |v| {
        v["user_count"] == 2 && v["state"] == "running"
    });

    // The other routes, with Locust's shapes.
    let tasks = server.get("/tasks").json();
    assert!(
        tasks["per_class"].is_object() && tasks["total"].is_object(),
        "{tasks}"
    );
    let visitor = tasks["per_class"]["Visitor"]["ratio"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&visitor), "{tasks}");
    assert!(server.get("/exceptions").json()["exceptions"].is_array());
    let logs = server.get("/logs").json();
    let master = logs["master"].as_array().expect("master log lines");
    assert!(
        master.iter().any(|l| l
            .as_str()
            .is_some_and(|l| l.contains("Starting web interface"))),
        "{logs}"
    );
    assert_eq!(server.get("/worker-count").json()["worker_count"], 0);
    assert_eq!(server.get("/health").status, 200);
    assert_eq!(server.get("/ready").status, 200);
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains("hopper_users"),
        "{}",
        metrics.text()
    );

    // Downloads: Locust's headers and file names.
    let csv = server.get("/stats/requests/csv");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv"));
    let disposition = csv.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.starts_with("attachment;filename=Locust_"),
        "{disposition}"
    );
    assert!(disposition.ends_with("_requests.csv"), "{disposition}");
    assert!(csv
        .text()
        .starts_with("Type,Name,Request Count,Failure Count,Median Response Time,"));
    assert!(csv.text().contains(",Aggregated,"));
    let failures = server.get("/stats/failures/csv");
    assert!(failures
        .text()
        .starts_with("Method,Name,Error,Occurrences,First Seen,Last Seen"));
    let exceptions = server.get("/exceptions/csv");
    assert!(exceptions
        .text()
        .starts_with("Count,Message,Traceback,Nodes"));
    let history = server.get("/stats/requests_full_history/csv");
    assert_eq!(history.status, 404);
    assert_eq!(
        history.text(),
        "Error: Server was not started with option to generate full history."
    );
    let report = server.get("/stats/report");
    assert_eq!(report.status, 200);
    assert!(report.text().contains("\"is_report\":true"));
    let download = server.get("/stats/report?download=1");
    assert!(download
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment;filename=Locust_") && d.ends_with(".html")));
    assert!(download.text().contains("\"show_download_link\":false"));

    // CORS as in Locust.
    assert_eq!(
        server
            .get("/stats/requests")
            .header("access-control-allow-origin"),
        Some("*")
    );

    // Reset: the counts start over but the names stay listed.
    let r = server.request("POST", "/stats/reset", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let v = server.get("/stats/requests").json();
    let total_after_reset = v["stats"].as_array().unwrap().last().unwrap()["num_requests"]
        .as_u64()
        .unwrap();
    assert!(total_after_reset < agg["num_requests"].as_u64().unwrap() + 1000);

    // Stop: every user ends, the state says so.
    let v = server.request("POST", "/stop", &[], b"").json();
    assert_eq!(
        v,
        serde_json::json!({"message": "Test stopped", "success": true})
    );
    wait_for_stats(&server, "", "stopped", |v| {
        v["state"] == "stopped" && v["user_count"] == 0
    });

    // A new test after the stop, with a run time: it stops by itself.
    let v = server
        .post_form("/swarm", "user_count=1&spawn_rate=5&run_time=2s")
        .json();
    assert_eq!(v["run_time"], 2, "{v}");
    wait_for_stats(&server, "", "the run time to stop the test", |v| {
        v["state"] == "stopped"
    });

    // SIGTERM ends the process with the summary.
    running.signal("TERM");
    let out = running.wait();
    assert!(parse_summary(&out.stderr).is_some(), "{}", out.dump());
}

#[test]
fn garbage_on_the_web_port_does_not_hurt_the_server() {
    use std::io::{Read, Write};
    let dir = TempDir::new("web");
    let (running, addr) = start_web(&dir, &[]);
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /swarm HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nuser",
        &[0xffu8; 4096][..],
    ] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let server = Server::plain(&addr);
    assert_eq!(server.get("/stats/requests").json()["state"], "ready");
    running.signal("TERM");
    running.wait();
}

#[test]
fn access_control_with_a_login_and_a_base_path() {
    let dir = TempDir::new("web");
    let (running, addr) = start_web(
        &dir,
        &["--web-auth", "admin:secret", "--web-base-path", "/hopper/"],
    );
    let server = Server::plain(&addr);

    // No credentials: 401 and no data, for the API and the probes alike.
    for path in [
        "/hopper/stats/requests",
        "/hopper/metrics",
        "/hopper/tasks",
        "/hopper/health",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 401, "{path}");
        assert!(!r.text().contains("user_count"), "{path} leaked data");
        assert!(r
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic")));
    }
    let r = server.request("POST", "/hopper/swarm", &[], b"user_count=1&spawn_rate=1");
    assert_eq!(r.status, 401);
    // The UI's own requests get no Basic challenge (no browser password dialog).
    let r = server.request(
        "GET",
        "/hopper/stats/requests",
        &[("X-Requested-With", "XMLHttpRequest")],
        b"",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_none());
    // A browser opening the UI is sent to the login page, which needs no login.
    let r = server.get("/hopper/");
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/hopper/login"));
    assert_eq!(server.get("/hopper/login").status, 200);
    // Outside the base path there is nothing.
    assert_eq!(server.get("/stats/requests").status, 404);

    // Basic auth for scripts (curl -u admin:secret).
    let basic = [("Authorization", "Basic YWRtaW46c2VjcmV0")];
    let r = server.request("GET", "/hopper/stats/requests", &basic, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["state"], "ready");
    let wrong = [("Authorization", "Basic YWRtaW46d3Jvbmc=")];
    assert_eq!(
        server
            .request("GET", "/hopper/stats/requests", &wrong, b"")
            .status,
        401
    );

    // The login form: a wrong password is refused, the right one gives a session cookie.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = server.request(
        "POST",
        "/hopper/login",
        &form,
        b"username=admin&password=nope",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    assert!(r.text().contains("Invalid username or password"));
    let r = server.request(
        "POST",
        "/hopper/login",
        &form,
        b"username=admin&password=secret",
    );
    assert_eq!(r.status, 303);
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string();
    let with_cookie = [("Cookie", cookie.as_str())];
    let r = server.request("GET", "/hopper/stats/requests", &with_cookie, b"");
    assert_eq!(r.status, 200);
    let r = server.request("GET", "/hopper", &with_cookie, b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains(r#""base_path":"\/hopper""#));
    // Logging out ends the session.
    server.request("GET", "/hopper/logout", &with_cookie, b"");
    let r = server.request("GET", "/hopper/stats/requests", &with_cookie, b"");
    assert_eq!(r.status, 401);

    running.signal("TERM");
    running.wait();
}

#[test]
fn https_with_the_given_certificate() {
    let dir = TempDir::new("web");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.write("cert.pem", &cert.cert.pem());
    let key_path = dir.write("key.pem", &cert.signing_key.serialize_pem());
    let (running, addr) = start_web(
        &dir,
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(running
        .stderr_so_far()
        .contains("Starting web interface at https://"));
    let server = Server {
        addr: addr.clone(),
        tls_root: Some(cert.cert.der().to_vec()),
    };
    assert_eq!(server.get("/stats/requests").json()["state"], "ready");
    // Plain HTTP on the TLS port gets no data.
    let plain = std::panic::catch_unwind(|| Server::plain(&addr).get("/stats/requests"));
    assert!(plain.map_or(true, |r: Reply| r.status != 200));
    running.signal("TERM");
    running.wait();
}

#[test]
fn bad_tls_files_are_a_clear_startup_error() {
    let dir = TempDir::new("web");
    let cert = dir.write("cert.pem", "not a certificate");
    let key = dir.write("key.pem", "not a key");
    let mut cmd = command(&hopper_bin(), dir.path());
    cmd.args(["--demo", "--web-host", "127.0.0.1", "--web-port", "0"]);
    cmd.args([
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let out = run(cmd);
    out.assert_code(1).assert_stderr_contains("--tls-cert");
}

#[test]
fn autostart_and_autoquit_run_a_test_and_quit() {
    let dir = TempDir::new("web");
    let mut cmd = command(&hopper_bin(), dir.path());
    cmd.args(["--demo", "--web-host", "127.0.0.1", "--web-port", "0"]);
    cmd.args([
        "--autostart",
        "--autoquit",
        "1",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "2s",
    ]);
    let out = run(cmd);
    out.assert_stderr_contains("Starting web interface at http://127.0.0.1:")
        .assert_stderr_contains("--autoquit time reached");
    assert!(out.summary().aggregated.reqs > 0, "{}", out.dump());
}

#[test]
fn headless_run_writes_csv_html_and_json() {
    let dir = TempDir::new("web");
    let mut cmd = command(&hopper_bin(), dir.path());
    cmd.args(["--demo", "--headless", "-u", "3", "-r", "3", "-t", "6s"]);
    cmd.args(["--csv", "out/run", "--csv-full-history"]);
    cmd.args(["--html", "reports/report_{u}_{r}_{t}.html", "--json"]);
    let out = run(cmd);
    let summary = out.summary();
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    let read = |name: &str| {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", out.dump()))
    };
    let stats = read("out/run_stats.csv");
    assert!(
        stats.starts_with("Type,Name,Request Count,Failure Count,"),
        "{stats}"
    );
    let agg_line = stats
        .lines()
        .find(|l| l.starts_with(",Aggregated,"))
        .expect("Aggregated row");
    let count: u64 = agg_line.split(',').nth(2).unwrap().parse().unwrap();
    assert_eq!(
        count, summary.aggregated.reqs,
        "CSV total equals the console total"
    );
    assert!(
        stats.contains("\r\n"),
        "Python's csv module ends lines with CRLF"
    );
    let history = read("out/run_stats_history.csv");
    assert!(history.starts_with("Timestamp,User Count,Type,Name,Requests/s,"));
    assert!(
        history.lines().count() > 2,
        "history rows appended every second:\n{history}"
    );
    assert!(read("out/run_failures.csv").starts_with("Method,Name,Error,Occurrences,"));
    assert!(read("out/run_exceptions.csv").starts_with("Count,Message,Traceback,Nodes"));
    let html = read("reports/report_3_3_6.html");
    assert!(html.contains("window.templateArgs"));
    assert!(html.contains("\"is_report\":true"));
    assert!(
        !html.contains("http://") || !html.contains("<script src="),
        "no external scripts"
    );
    let json: Value = serde_json::from_str(&out.stdout).expect("--json prints JSON on stdout");
    let entries = json.as_array().expect("an array of entries");
    let total: u64 = entries
        .iter()
        .map(|e| e["num_requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        total, summary.aggregated.reqs,
        "--json totals equal the console's"
    );
}

#[test]
fn six_hundred_names_are_capped_at_locusts_500_rows() {
    let target = Target::start();
    let dir = TempDir::new("web");
    let mut cmd = command(&example_bin("many_names"), dir.path());
    cmd.args([
        "-H",
        target.url(),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        "0",
    ]);
    cmd.args(["--autostart", "-u", "20", "-r", "20"]);
    let mut running = Running::spawn(cmd);
    assert!(running.wait_for_stderr(Duration::from_secs(20), |s| s
        .contains("Starting web interface at ")));
    let addr = web_addr_from_log(&running.stderr_so_far()).unwrap();
    let server = Server::plain(&addr);
    let until = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let v = server.get("/stats/requests").json();
        let rows = v["stats"].as_array().map_or(0, Vec::len);
        if rows == 501 {
            break v;
        }
        assert!(Instant::now() < until, "never reached 500 rows: {rows}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let rows = v["stats"].as_array().unwrap();
    assert_eq!(rows.last().unwrap()["name"], "Aggregated");
    // The CSV download is not capped: every name is there once they have all been seen.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let csv = server.get("/stats/requests/csv").text();
        // Header, 600 pages, the example's 4 names with markup in them, Aggregated.
        if csv.lines().count() == 606 {
            break;
        }
        assert!(Instant::now() < until, "CSV rows: {}", csv.lines().count());
        std::thread::sleep(Duration::from_millis(300));
    }
    running.signal("TERM");
    let out = running.wait();
    assert!(parse_summary(&out.stderr).is_some(), "{}", out.dump());
}

#[test]
fn hostile_swarm_forms_leave_the_session_working() {
    let dir = TempDir::new("web");
    let (running, addr) = start_web(&dir, &[]);
    let server = Server::plain(&addr);
    // A run time too long for any clock is no limit, not a crash.
    let v = server
        .post_form(
            "/swarm",
            "user_count=2&spawn_rate=10&run_time=18446744073709551615",
        )
        .json();
    assert_eq!(v["success"], true, "{v}");
    wait_for_stats(&server, "", "2 users", |v| v["user_count"] == 2);
    // Far too many users: refused before anything is allocated.
    let v = server
        .post_form("/swarm", "user_count=100000000&spawn_rate=100000000")
        .json();
    assert_eq!(v["success"], false, "{v}");
    // A host that smuggles a template placeholder cannot break the page.
    let v = server
        .post_form(
            "/swarm",
            "user_count=2&spawn_rate=10&host=http%3A%2F%2F127.0.0.1%3A1%2F%2A%2FAPP_JS%2A%2F",
        )
        .json();
    assert_eq!(v["success"], true, "{v}");
    let page = server.get("/").text();
    let args = page
        .split("window.templateArgs = ")
        .nth(1)
        .and_then(|rest| rest.split(";</script>").next())
        .expect("templateArgs in the page");
    let args: Value = serde_json::from_str(args).expect("templateArgs is intact JSON");
    assert_eq!(args["host"], "http://127.0.0.1:1/*/APP_JS*/");
    // A body beyond any form's size is refused outright.
    let huge = "9".repeat(200_000);
    let r = server.post_form("/swarm", &format!("user_count={huge}&spawn_rate=1"));
    assert_eq!(r.status, 413);
    // A long field is refused with a short message, and the log keeps short lines.
    let long = "9".repeat(20_000) + "x";
    let v = server
        .post_form("/swarm", &format!("user_count={long}&spawn_rate=1"))
        .json();
    assert!(v["message"].as_str().unwrap().len() < 400, "{v}");
    let logs = server.get("/logs").json();
    assert!(logs["master"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l.as_str().unwrap().chars().count() <= 2001));
    // The session still obeys.
    let v = server.request("POST", "/stop", &[], b"").json();
    assert_eq!(v["success"], true);
    wait_for_stats(&server, "", "stopped", |v| v["state"] == "stopped");
    // CORS preflight is answered as flask-cors does.
    let r = server.request(
        "OPTIONS",
        "/swarm",
        &[
            ("Origin", "http://elsewhere.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));
    running.signal("TERM");
    running.wait();
}

#[test]
fn the_command_line_run_time_survives_edits_from_the_ui() {
    // Locust's -t with --autostart is its own timer: editing the test in the UI does not
    // cancel it, and --autoquit then ends the process.
    let dir = TempDir::new("web");
    let (mut running, addr) = start_web(
        &dir,
        &[
            "--autostart",
            "-u",
            "1",
            "-r",
            "5",
            "-t",
            "3s",
            "--autoquit",
            "0",
        ],
    );
    let server = Server::plain(&addr);
    let v = server
        .post_form("/swarm", "user_count=3&spawn_rate=10")
        .json();
    assert_eq!(v["success"], true);
    let quit = running.wait_for_stderr(Duration::from_secs(30), |s| {
        s.contains("--autoquit time reached")
    });
    assert!(quit, "{}", running.stderr_so_far());
    let out = running.wait();
    assert!(parse_summary(&out.stderr).is_some(), "{}", out.dump());
}

#[test]
fn unusable_base_paths_are_refused_at_startup() {
    let dir = TempDir::new("web");
    for bad in ["hopper", "/{id}", "/a b"] {
        let mut cmd = command(&hopper_bin(), dir.path());
        cmd.args(["--demo", "--web-host", "127.0.0.1", "--web-port", "0"]);
        cmd.args(["--web-base-path", bad]);
        let out = run(cmd);
        out.assert_code(1).assert_stderr_contains("--web-base-path");
    }
}

#[test]
fn cross_site_posts_with_a_login_are_refused() {
    let dir = TempDir::new("web");
    let (running, addr) = start_web(&dir, &["--web-auth", "admin:secret"]);
    let server = Server::plain(&addr);
    let basic = ("Authorization", "Basic YWRtaW46c2VjcmV0");
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let r = server.request(
        "POST",
        "/swarm",
        &[basic, form, ("Origin", "http://evil.example")],
        b"user_count=1&spawn_rate=1",
    );
    assert_eq!(r.status, 403);
    let same = format!("http://{addr}");
    let r = server.request("POST", "/stop", &[basic, ("Origin", same.as_str())], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        server
            .request("GET", "/stats/requests", &[basic], b"")
            .json()["state"],
        "ready"
    );
    running.signal("TERM");
    running.wait();
}
