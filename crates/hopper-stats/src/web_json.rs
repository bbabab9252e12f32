//! The JSON Locust's web UI serves (`/stats/requests`, `/exceptions`), the rows its HTML report
//! embeds, and the `--json` dump of the entries.
//!
//! Every figure keeps Python's type, because the text differs: `min_response_time` is the int
//! `0` when unset but a float otherwise, `current_rps` is `0` before any request and `0.0` over
//! an empty window, a clamped median is a float while a bucketed one is an int. Objects are
//! built with sorted keys, the order Flask's `jsonify` and Jinja's `tojson` write; serialize
//! them with [`crate::pyjson`] for Python's exact text.

use serde_json::{json, Map, Value};

use crate::entry::{StatsEntry, PERCENTILES_TO_CHART, PERCENTILES_TO_STATISTICS};
use crate::errors::{parse_error, StatsError, TaskException};
use crate::history::py_num_json;
use crate::pyfmt::{proper_round, py_float};
use crate::pyjson::dumps;
use crate::request_stats::RequestStats;

/// Percentiles of the HTML report's response-time table (`PERCENTILES_FOR_HTML_REPORT`).
pub const PERCENTILES_FOR_HTML_REPORT: [f64; 8] = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0];

/// Rows and failures the web API lists at most (the Aggregated row comes on top).
pub const WEB_MAX_ROWS: usize = 500;

/// An object with its keys sorted, as `sort_keys=True` writes it.
pub(crate) fn sorted_object(mut pairs: Vec<(String, Value)>) -> Value {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(pairs.into_iter().collect::<Map<String, Value>>())
}

/// `response_time_percentile_<str(p)>`, e.g. `response_time_percentile_0.95`.
fn percentile_key(p: f64) -> String {
    format!("response_time_percentile_{}", py_float(p))
}

/// Locust's `StatsEntry.to_dict()`: one row of the web UI's table and of the HTML report. The
/// windowed rates are anchored on `total` (the Aggregated entry), as Locust's are on
/// `stats.total`, so the row does not depend on the clock.
pub fn entry_to_dict(e: &StatsEntry, total: &StatsEntry) -> Value {
    let min = match e.min_response_time {
        None => Value::from(0),
        Some(m) => Value::from(proper_round(m, 0)),
    };
    let mut pairs = vec![
        ("method".to_string(), Value::from(e.method.as_str())),
        ("name".to_string(), Value::from(e.name.as_str())),
        ("num_requests".to_string(), Value::from(e.num_requests)),
        ("num_failures".to_string(), Value::from(e.num_failures)),
        ("min_response_time".to_string(), min),
        (
            "max_response_time".to_string(),
            Value::from(proper_round(e.max_response_time, 0)),
        ),
        ("current_rps".to_string(), py_num_json(e.current_rps(total))),
        (
            "current_fail_per_sec".to_string(),
            py_num_json(e.current_fail_per_sec(total)),
        ),
        (
            "avg_response_time".to_string(),
            Value::from(e.avg_response_time()),
        ),
        (
            "median_response_time".to_string(),
            py_num_json(e.median_response_time()),
        ),
        ("total_rps".to_string(), Value::from(e.total_rps(total))),
        (
            "total_fail_per_sec".to_string(),
            Value::from(e.total_fail_per_sec(total)),
        ),
        (
            "avg_content_length".to_string(),
            py_num_json(e.avg_content_length()),
        ),
    ];
    for p in PERCENTILES_TO_STATISTICS {
        pairs.push((
            percentile_key(p),
            Value::from(e.get_response_time_percentile(p)),
        ));
    }
    sorted_object(pairs)
}

/// Locust's `StatsError.to_dict()` / `serialize()` (the same keys): `error` in `parse_error`
/// form, first and last sighting as epoch floats (`null` when unknown).
pub fn error_to_dict(e: &StatsError) -> Value {
    sorted_object(vec![
        ("method".into(), Value::from(e.method.as_str())),
        ("name".into(), Value::from(e.name.as_str())),
        ("error".into(), Value::from(parse_error(&e.error).as_ref())),
        ("occurrences".into(), Value::from(e.occurrences)),
        ("first_seen".into(), json!(e.first_seen)),
        ("last_seen".into(), json!(e.last_seen)),
    ])
}

/// One exception row as `/exceptions` and the HTML report list it: nodes joined with `", "`.
pub fn exception_to_dict(x: &TaskException) -> Value {
    let nodes: Vec<&str> = x.nodes.iter().map(String::as_str).collect();
    sorted_object(vec![
        ("count".into(), Value::from(x.count)),
        ("msg".into(), Value::from(x.msg.as_str())),
        ("traceback".into(), Value::from(x.traceback.as_str())),
        ("nodes".into(), Value::from(nodes.join(", "))),
    ])
}

/// A worker as the master's `/stats/requests` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    /// The worker's client id (`hostname_hex`).
    pub id: String,
    /// Its state as the master sees it (`ready`, `spawning`, `running`, `stopped`, `missing`…).
    pub state: String,
    /// Users it reported running.
    pub user_count: u64,
    /// CPU percentage from its last heartbeat.
    pub cpu_usage: f64,
    /// Resident memory from its last heartbeat, bytes.
    pub memory_usage: u64,
    /// Hopper extra: the users it runs per class (sent as `user_classes_count` when not
    /// empty; Locust's rows lack it and its clients ignore unknown keys).
    pub user_classes_count: std::collections::BTreeMap<String, u64>,
}

/// The whole `GET /stats/requests` reply, at wall time `now` (which only the current
/// percentiles read).
///
/// Locust's keys: `stats` (up to 500 entry rows sorted by name and method, then the Aggregated
/// row), `errors` (up to 500, in first-seen order), `current_rps`, `current_fail_per_sec`,
/// `total_rps`, `total_fail_per_sec` (copied from the Aggregated row), `fail_ratio`,
/// `current_response_time_percentiles` (the total's 10 s-window 50th and 95th percentiles, int
/// or `null` without a window), `state`, `user_count`, and on a master (`workers` is `Some`)
/// `workers` plus `worker_count` (workers that are `ready`, `spawning` or `running`).
///
/// Hopper extra: `precise_current_response_time_percentiles`, an object with the same two
/// keys holding `precise_current` (ms, from a windowed HDR histogram the caller keeps), or
/// `null`s without one. The rows themselves stay exactly Locust's.
pub fn stats_requests_body(
    stats: &RequestStats,
    now: f64,
    state: &str,
    user_count: u64,
    workers: Option<&[WorkerRow]>,
    precise_current: Option<(f64, f64)>,
) -> Value {
    let total = &stats.total;
    let mut rows: Vec<Value> = stats
        .entries
        .values()
        .take(WEB_MAX_ROWS)
        .map(|e| entry_to_dict(e, total))
        .collect();
    let total_row = entry_to_dict(total, total);
    let errors: Vec<Value> = stats
        .errors_in_insertion_order()
        .into_iter()
        .take(WEB_MAX_ROWS)
        .map(error_to_dict)
        .collect();
    let current: Vec<(String, Value)> = PERCENTILES_TO_CHART
        .iter()
        .map(|&p| {
            (
                percentile_key(p),
                json!(total.get_current_response_time_percentile(p, now)),
            )
        })
        .collect();
    let (p50, p95) = match precise_current {
        Some((a, b)) => (json!(a), json!(b)),
        None => (Value::Null, Value::Null),
    };
    let precise = vec![
        (percentile_key(PERCENTILES_TO_CHART[0]), p50),
        (percentile_key(PERCENTILES_TO_CHART[1]), p95),
    ];
    let mut pairs = vec![
        ("current_rps".into(), total_row["current_rps"].clone()),
        (
            "current_fail_per_sec".into(),
            total_row["current_fail_per_sec"].clone(),
        ),
        ("total_rps".into(), total_row["total_rps"].clone()),
        (
            "total_fail_per_sec".into(),
            total_row["total_fail_per_sec"].clone(),
        ),
        ("fail_ratio".into(), Value::from(total.fail_ratio())),
        (
            "current_response_time_percentiles".into(),
            sorted_object(current),
        ),
        (
            "precise_current_response_time_percentiles".into(),
            sorted_object(precise),
        ),
        ("errors".into(), Value::Array(errors)),
        ("state".into(), Value::from(state)),
        ("user_count".into(), Value::from(user_count)),
    ];
    rows.push(total_row);
    pairs.push(("stats".into(), Value::Array(rows)));
    if let Some(workers) = workers {
        let counted = workers
            .iter()
            .filter(|w| matches!(w.state.as_str(), "ready" | "spawning" | "running"))
            .count();
        let list = workers
            .iter()
            .map(|w| {
                let mut row = vec![
                    ("id".into(), Value::from(w.id.as_str())),
                    ("state".into(), Value::from(w.state.as_str())),
                    ("user_count".into(), Value::from(w.user_count)),
                    ("cpu_usage".into(), Value::from(w.cpu_usage)),
                    ("memory_usage".into(), Value::from(w.memory_usage)),
                ];
                if !w.user_classes_count.is_empty() {
                    let classes: serde_json::Map<String, Value> = w
                        .user_classes_count
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::from(*v)))
                        .collect();
                    row.push(("user_classes_count".into(), Value::Object(classes)));
                }
                sorted_object(row)
            })
            .collect();
        pairs.push(("workers".into(), Value::Array(list)));
        pairs.push(("worker_count".into(), Value::from(counted)));
    }
    sorted_object(pairs)
}

/// The `GET /exceptions` reply: `{"exceptions": [{count, msg, traceback, nodes}]}` in
/// first-seen order.
pub fn exceptions_body(stats: &RequestStats) -> Value {
    let rows = stats
        .exceptions_in_insertion_order()
        .into_iter()
        .map(exception_to_dict)
        .collect();
    json!({ "exceptions": Value::Array(rows) })
}

/// The HTML report's `response_time_statistics`: per entry (sorted) and then the Aggregated
/// row, `name`, `method` and the whole-run percentiles of [`PERCENTILES_FOR_HTML_REPORT`] keyed
/// by Python's `str(p)` (`"0.5"` … `"1.0"`).
pub fn response_time_statistics(stats: &RequestStats) -> Value {
    let rows = stats
        .entries
        .values()
        .chain([&stats.total])
        .map(|e| {
            let mut pairs = vec![
                ("name".to_string(), Value::from(e.name.as_str())),
                ("method".to_string(), Value::from(e.method.as_str())),
            ];
            for p in PERCENTILES_FOR_HTML_REPORT {
                pairs.push((py_float(p), Value::from(e.get_response_time_percentile(p))));
            }
            sorted_object(pairs)
        })
        .collect();
    Value::Array(rows)
}

/// One entry as Locust's `StatsEntry.serialize()` returns it (the worker wire format and the
/// `--json` element), keys in Locust's order; histogram and per-second keys become strings.
pub fn serialized_entry(e: &StatsEntry) -> Value {
    fn counts<K: ToString>(m: impl Iterator<Item = (K, u64)>) -> Value {
        Value::Object(m.map(|(k, v)| (k.to_string(), Value::from(v))).collect())
    }
    let mut m = Map::new();
    m.insert("name".into(), Value::from(e.name.as_str()));
    m.insert("method".into(), Value::from(e.method.as_str()));
    m.insert(
        "last_request_timestamp".into(),
        json!(e.last_request_timestamp),
    );
    m.insert("start_time".into(), Value::from(e.start_time));
    m.insert("num_requests".into(), Value::from(e.num_requests));
    m.insert("num_none_requests".into(), Value::from(e.num_none_requests));
    m.insert("num_failures".into(), Value::from(e.num_failures));
    m.insert(
        "total_response_time".into(),
        py_num_json(e.total_response_time_py()),
    );
    m.insert(
        "max_response_time".into(),
        py_num_json(e.max_response_time_py()),
    );
    m.insert("min_response_time".into(), json!(e.min_response_time));
    m.insert(
        "total_content_length".into(),
        Value::from(e.total_content_length),
    );
    m.insert(
        "response_times".into(),
        counts(e.response_times.iter().map(|(&k, &v)| (k, v))),
    );
    m.insert(
        "num_reqs_per_sec".into(),
        counts(e.num_reqs_per_sec.iter().map(|(&k, &v)| (k, v))),
    );
    m.insert(
        "num_fail_per_sec".into(),
        counts(e.num_fail_per_sec.iter().map(|(&k, &v)| (k, v))),
    );
    Value::Object(m)
}

/// The `--json` / `--json-file` text: Python's `json.dumps(stats.serialize_stats(), indent=4)`,
/// one element per entry with requests or failures (no Aggregated row, no failures table), in
/// Locust's insertion order ([`RequestStats::entries_in_creation_order`]).
///
/// Without a trailing newline: Locust's `print` adds one on stdout, its `json.dump` to
/// `X.json` does not. Locust's serializing also resets the entries (so `--json` together with
/// `--json-file` writes `[]` to the file); this function only reads.
///
/// One difference remains: Locust writes a histogram's buckets in the order they were first
/// hit, Hopper in ascending order (same JSON object, different text when a smaller bucket was
/// first hit later).
pub fn serialized_entries_json(stats: &RequestStats) -> String {
    let rows: Vec<Value> = stats
        .entries_in_creation_order()
        .into_iter()
        .filter(|e| !(e.num_requests == 0 && e.num_failures == 0))
        .map(serialized_entry)
        .collect();
    dumps(&Value::Array(rows), Some(4), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyjson::flask_jsonify;
    use crate::scenario::{self, same, NOW, USER_COUNT};

    #[test]
    fn stats_requests_matches_locust() {
        let stats = scenario::build();
        let mut body = stats_requests_body(&stats, NOW, "running", USER_COUNT, None, None);
        // The Hopper extra is the only key Locust lacks.
        let extra = body
            .as_object_mut()
            .unwrap()
            .remove("precise_current_response_time_percentiles")
            .unwrap();
        assert_eq!(
            extra,
            json!({"response_time_percentile_0.5": null, "response_time_percentile_0.95": null})
        );
        same(&flask_jsonify(&body), "web_stats_requests.json");
    }

    #[test]
    fn stats_requests_on_a_master_matches_locust() {
        let stats = scenario::build();
        let workers = [
            ("host-a_1f2e", "running", 4, 12.5, 123456789),
            ("host-b_3c4d", "missing", 1, 0.25, 987654),
            ("host-c_5e6f", "ready", 0, 3.0, 1024),
        ]
        .map(
            |(id, state, user_count, cpu_usage, memory_usage)| WorkerRow {
                id: id.into(),
                state: state.into(),
                user_count,
                cpu_usage,
                memory_usage,
                user_classes_count: Default::default(),
            },
        );
        let mut body = stats_requests_body(
            &stats,
            NOW,
            "running",
            USER_COUNT,
            Some(&workers),
            Some((21.5, 30.25)),
        );
        let extra = body
            .as_object_mut()
            .unwrap()
            .remove("precise_current_response_time_percentiles")
            .unwrap();
        assert_eq!(
            extra,
            json!({"response_time_percentile_0.5": 21.5, "response_time_percentile_0.95": 30.25})
        );
        same(&flask_jsonify(&body), "web_stats_requests_master.json");
    }

    #[test]
    fn exceptions_match_locust() {
        let stats = scenario::build();
        same(
            &flask_jsonify(&exceptions_body(&stats)),
            "web_exceptions.json",
        );
    }

    #[test]
    fn exceptions_keep_first_seen_order_and_join_nodes() {
        let mut stats = RequestStats::new(true, 0.0);
        // Hash keys would order these arbitrarily; Locust lists them as they first happened.
        for i in 0..20 {
            stats.log_exception("local", &format!("m{i}"), &format!("tb{i}"));
        }
        stats.log_exception("worker-b", "m0", "tb0");
        let body = exceptions_body(&stats);
        let msgs: Vec<&str> = body["exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["msg"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        assert_eq!(msgs, want);
        assert_eq!(body["exceptions"][0]["nodes"], "local, worker-b");
        assert_eq!(body["exceptions"][0]["count"], 2);
    }

    #[test]
    fn fresh_rows_use_python_ints() {
        let stats = RequestStats::new(true, 1000.0);
        let row = entry_to_dict(&stats.total, &stats.total);
        assert_eq!(
            crate::pyjson::dumps(&row, None, true),
            "{\"avg_content_length\": 0, \"avg_response_time\": 0.0, \
             \"current_fail_per_sec\": 0, \"current_rps\": 0, \"max_response_time\": 0.0, \
             \"median_response_time\": 0, \"method\": \"\", \"min_response_time\": 0, \
             \"name\": \"Aggregated\", \"num_failures\": 0, \"num_requests\": 0, \
             \"response_time_percentile_0.95\": 0, \"response_time_percentile_0.99\": 0, \
             \"total_fail_per_sec\": 0.0, \"total_rps\": 0.0}"
        );
        // The snapshot taken at creation (second 1000) serves windows starting 2 to 18 s before.
        let body = stats_requests_body(&stats, 1010.0, "ready", 0, None, None);
        assert_eq!(
            body["current_response_time_percentiles"],
            json!({"response_time_percentile_0.5": 0, "response_time_percentile_0.95": 0})
        );
        // Without a snapshot near the window start (too early or too late): null.
        let body = stats_requests_body(&stats, 1001.0, "ready", 0, None, None);
        assert_eq!(
            body["current_response_time_percentiles"]["response_time_percentile_0.5"],
            Value::Null
        );
        let body = stats_requests_body(&stats, 5000.0, "ready", 0, None, None);
        assert_eq!(
            body["current_response_time_percentiles"]["response_time_percentile_0.5"],
            Value::Null
        );
    }

    #[test]
    fn rows_and_errors_are_capped_at_500() {
        let mut stats = RequestStats::new(true, 0.0);
        for i in 0..510 {
            let name = format!("/{i:04}");
            stats.log_request("GET", &name, Some(1.0), 0, 1.0 + i as f64);
            stats.log_error("GET", &name, "boom", 1.0 + i as f64);
        }
        let body = stats_requests_body(&stats, 600.0, "running", 1, None, None);
        let rows = body["stats"].as_array().unwrap();
        assert_eq!(rows.len(), 501);
        assert_eq!(rows[499]["name"], "/0499");
        assert_eq!(rows[500]["name"], "Aggregated");
        let errors = body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 500);
        // First-seen order, not key order.
        assert_eq!(errors[0]["name"], "/0000");
        assert_eq!(errors[499]["name"], "/0499");
        assert!(body.get("workers").is_none() && body.get("worker_count").is_none());
    }

    #[test]
    fn json_dump_matches_locust_byte_for_byte() {
        // A run whose buckets were first hit in ascending order: Locust's text exactly.
        let mut stats = RequestStats::new(true, 1700000100.0);
        for (i, (t, name, rt)) in [
            (1700000100.5, "/a", 1.5),
            (1700000101.25, "/a", 25.0),
            (1700000101.75, "/b", 0.123),
            (1700000103.0, "/a", 1234.5),
        ]
        .into_iter()
        .enumerate()
        {
            stats.log_request("GET", name, Some(rt), 10 * i as u64, t);
            if i == 2 {
                stats.log_error("GET", name, "boom", t);
            }
        }
        stats.log_request("GET", "/none", None, 0, 1700000103.5);
        stats.log_error("DELETE", "/gone", "gone", 1700000103.5);
        same(
            &format!("{}\n", serialized_entries_json(&stats)),
            "stats_json_ascending.txt",
        );
        same(
            &format!(
                "{}\n",
                serialized_entries_json(&RequestStats::new(true, 0.0))
            ),
            "stats_json_empty.txt",
        );
    }

    #[test]
    fn json_dump_matches_locust_up_to_bucket_order() {
        let stats = scenario::build();
        let got = serialized_entries_json(&stats);
        let want = scenario::fixture("stats_json.txt");
        // Same values (serde_json's map equality ignores key order)…
        let parse = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
        assert_eq!(parse(&got), parse(&want));
        // …and the same text once each histogram's lines are put in one order.
        let normalize = |s: &str| {
            let mut out: Vec<String> = Vec::new();
            let mut block: Vec<String> = Vec::new();
            for line in s.lines() {
                if line.starts_with("            \"") {
                    block.push(line.trim_end_matches(',').to_string());
                } else {
                    block.sort();
                    out.append(&mut block);
                    out.push(line.to_string());
                }
            }
            out
        };
        assert_eq!(normalize(&got), normalize(&want));
    }
}
