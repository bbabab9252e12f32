//! Test-only: the run of `testdata/gen_outputs.py`, logged the same way Locust logged it, and
//! access to the fixtures Locust produced for it.

use crate::history::history_point;
use crate::request_stats::RequestStats;

/// When the fixtures were read (epoch seconds).
pub const NOW: f64 = 1700000016.2;
/// Running users when the fixtures were read.
pub const USER_COUNT: u64 = 7;
/// The traceback of the scenario's task exception.
pub const TRACEBACK: &str =
    "  File \"/app/locustfile.py\", line 12, in checkout\n    raise ValueError(\"no, \\\"stock\\\"\")\n";

const NOT_FOUND: &str = "HTTPError('404 Client Error: Not Found for url: /missing')";
const SEARCH: &str = "/search?q=a,b \"c\"";
const CAFE: &str = "/caf\u{e9}/<b>&'x'";
const MULTILINE: &str = "line one\nline two, with \"quotes\"";

/// What happens at one instant of the scenario.
enum Ev {
    /// A request (method, name, response time, length, failure text).
    Req(
        &'static str,
        &'static str,
        Option<f64>,
        u64,
        Option<&'static str>,
    ),
    /// A failure logged without a request.
    FailOnly(&'static str, &'static str),
    /// A history point with this many users.
    Hist(u64),
}

/// The scenario's statistics as they stood at [`NOW`].
pub fn build() -> RequestStats {
    let mut events: Vec<(f64, Ev)> = vec![
        (1700000001.2, Ev::Req("GET", "/", Some(12.3456), 100, None)),
        (1700000001.7, Ev::Req("GET", "/", Some(145.0), 100, None)),
        (1700000002.1, Ev::Req("GET", "/", Some(3.5), 120, None)),
        (1700000003.4, Ev::Req("GET", "/", None, 0, None)),
        (
            1700000004.0,
            Ev::Req(
                "POST",
                "/login",
                Some(2500.0),
                0,
                Some("CatchResponseError('bad body')"),
            ),
        ),
        (
            1700000005.5,
            Ev::Req("POST", "/login", Some(58760.4), 10, None),
        ),
        (
            1700000006.25,
            Ev::Req("GET", "/missing", Some(1.86), 0, Some(NOT_FOUND)),
        ),
        (
            1700000007.0,
            Ev::Req(
                "GET",
                "/missing",
                Some(5.463743000007071),
                0,
                Some(NOT_FOUND),
            ),
        ),
        (1700000008.9, Ev::Req("WS", "chat", Some(0.4), 5, None)),
        (1700000009.3, Ev::Req("GET", SEARCH, Some(8.25), 42, None)),
        (
            1700000009.6,
            Ev::Req("GET", CAFE, Some(17.0), 3, Some(MULTILINE)),
        ),
        (
            1700000010.1,
            Ev::FailOnly("/only-fail", "ConnectionError('refused')"),
        ),
        (1700000010.4, Ev::Req("GET", "/async", None, 0, None)),
        (1700000012.3, Ev::Req("GET", "/long", Some(33.0), 0, None)),
    ];
    for s in 0..10 {
        events.push((
            1700000005.5 + s as f64,
            Ev::Req("GET", "/", Some(20.0 + s as f64), 50, None),
        ));
    }
    events.push((1700000015.5, Ev::Req("GET", "/", Some(7.0), 0, None)));
    events.push((1700000004.5, Ev::Hist(3)));
    events.push((1700000009.9, Ev::Hist(5)));
    events.push((1700000013.2, Ev::Hist(7)));
    // Stable, like Python's sort: equal times keep list order.
    events.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut stats = RequestStats::new(true, 1700000000.0);
    for (t, ev) in events {
        match ev {
            Ev::Req(method, name, rt, len, err) => {
                stats.log_request(method, name, rt, len, t);
                if let Some(err) = err {
                    stats.log_error(method, name, err, t);
                }
            }
            Ev::FailOnly(name, err) => stats.log_error("GET", name, err, t),
            Ev::Hist(users) => {
                let point = history_point(&stats, users, t);
                stats.history.push(point);
            }
        }
    }
    stats.log_exception("local", "no, \"stock\"", TRACEBACK);
    stats.log_exception("local", "no, \"stock\"", TRACEBACK);
    stats
}

/// A fixture's text.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Panics with both texts when they differ.
#[track_caller]
pub fn same(got: &str, fixture_name: &str) {
    let want = fixture(fixture_name);
    if got != want {
        panic!("{fixture_name} differs\n--- got ---\n{got}\n--- want ---\n{want}");
    }
}
