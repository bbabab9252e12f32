//! Stats history: the points behind the web UI's and the HTML report's charts (Locust's
//! `stats.history`, appended by `update_stats_history`).
//!
//! Locust's `stats_history` loop adds one point every [`HISTORY_STATS_INTERVAL_SEC`] seconds,
//! only where the response-times cache is on (not on workers) and only while the runner is
//! neither `ready` nor `stopped`; deciding when is the caller's job, this module computes a
//! point exactly as Locust does.

use serde_json::{json, Map, Value};

use crate::pyfmt::{proper_round, utc_iso, PyNum};
use crate::request_stats::RequestStats;

/// Seconds between history points (`HISTORY_STATS_INTERVAL_SEC`).
pub const HISTORY_STATS_INTERVAL_SEC: u64 = 5;

/// One history point. The percentile fields follow `PERCENTILES_TO_CHART` (0.5 and 0.95).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    /// `YYYY-MM-DDTHH:MM:SSZ` (UTC) of the point; every value is paired with it.
    pub time: String,
    /// The total's current (10 s window) median, whole ms bucket; 0 without a window.
    pub response_time_percentile_p50: u64,
    /// The total's current 95th percentile; 0 without a window.
    pub response_time_percentile_p95: u64,
    /// The total's current requests/s. Python's `x or 0` turns a float `0.0` into the int `0`.
    pub current_rps: PyNum,
    /// The total's current failures/s (same int-zero rule).
    pub current_fail_per_sec: PyNum,
    /// The total's whole-run mean response time, `proper_round(…, 2)`.
    pub total_avg_response_time: f64,
    /// Running users.
    pub user_count: u64,
    /// Hopper extra: precise median of the window from an HDR histogram, ms (set by the caller).
    pub precise_p50_ms: Option<f64>,
    /// Hopper extra: precise 95th percentile of the window, ms (set by the caller).
    pub precise_p95_ms: Option<f64>,
}

/// The point Locust's `update_stats_history` would append at wall time `now`, with
/// `user_count` running users. Precise percentiles are left `None` for the caller to fill.
pub fn history_point(stats: &RequestStats, user_count: u64, now: f64) -> HistoryPoint {
    history_point_stamped(stats, user_count, now, utc_iso(now))
}

/// [`history_point`] with a given timestamp: the HTML report stamps its extra last point with
/// the run's end time while computing the values at the current time.
pub(crate) fn history_point_stamped(
    stats: &RequestStats,
    user_count: u64,
    now: f64,
    time: String,
) -> HistoryPoint {
    let total = &stats.total;
    let current = |p: f64| {
        total
            .get_current_response_time_percentile(p, now)
            .unwrap_or(0)
    };
    // `value or 0`: a float zero becomes the int 0.
    let or_zero = |n: PyNum| if n.is_zero() { PyNum::Int(0) } else { n };
    HistoryPoint {
        response_time_percentile_p50: current(0.5),
        response_time_percentile_p95: current(0.95),
        current_rps: or_zero(total.current_rps(total)),
        current_fail_per_sec: or_zero(total.current_fail_per_sec(total)),
        total_avg_response_time: proper_round(total.avg_response_time(), 2),
        user_count,
        time,
        precise_p50_ms: None,
        precise_p95_ms: None,
    }
}

/// A Python number as a JSON number of the same kind.
pub(crate) fn py_num_json(n: PyNum) -> Value {
    match n {
        PyNum::Int(i) => Value::from(i),
        PyNum::Float(f) => Value::from(f),
    }
}

impl HistoryPoint {
    /// The point as Locust stores it, in its key order: `response_time_percentile_0.5`,
    /// `response_time_percentile_0.95`, `current_rps`, `current_fail_per_sec`,
    /// `total_avg_response_time`, `user_count` (each `[time, value]`), then `time`.
    ///
    /// Hopper extra: `precise_percentile_0.5` and `precise_percentile_0.95`, `[time, ms]`, after
    /// `time`, and only when set, so a point without precise data is exactly Locust's. Locust's
    /// web UI and report ignore keys they do not chart.
    pub fn to_json(&self) -> Value {
        let t = || Value::from(self.time.as_str());
        let mut m = Map::new();
        m.insert(
            "response_time_percentile_0.5".into(),
            json!([t(), self.response_time_percentile_p50]),
        );
        m.insert(
            "response_time_percentile_0.95".into(),
            json!([t(), self.response_time_percentile_p95]),
        );
        m.insert(
            "current_rps".into(),
            json!([t(), py_num_json(self.current_rps)]),
        );
        m.insert(
            "current_fail_per_sec".into(),
            json!([t(), py_num_json(self.current_fail_per_sec)]),
        );
        m.insert(
            "total_avg_response_time".into(),
            json!([t(), self.total_avg_response_time]),
        );
        m.insert("user_count".into(), json!([t(), self.user_count]));
        m.insert("time".into(), t());
        for (key, v) in [
            ("precise_percentile_0.5", self.precise_p50_ms),
            ("precise_percentile_0.95", self.precise_p95_ms),
        ] {
            if let Some(ms) = v {
                m.insert(key.into(), json!([t(), ms]));
            }
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyjson::dumps;
    use crate::scenario;

    #[test]
    fn points_match_locust() {
        // The scenario appends a point at each "HIST" event, as Locust's fixture run did.
        let stats = scenario::build();
        let got: Vec<Value> = stats.history.iter().map(HistoryPoint::to_json).collect();
        assert_eq!(
            dumps(&Value::Array(got), Some(1), false),
            scenario::fixture("history_points.json")
        );
    }

    #[test]
    fn empty_stats_point_uses_int_zeros() {
        let stats = RequestStats::new(true, 1000.0);
        let p = history_point(&stats, 0, 1003.0);
        assert_eq!(
            dumps(&p.to_json(), None, false),
            "{\"response_time_percentile_0.5\": [\"1970-01-01T00:16:43Z\", 0], \
             \"response_time_percentile_0.95\": [\"1970-01-01T00:16:43Z\", 0], \
             \"current_rps\": [\"1970-01-01T00:16:43Z\", 0], \
             \"current_fail_per_sec\": [\"1970-01-01T00:16:43Z\", 0], \
             \"total_avg_response_time\": [\"1970-01-01T00:16:43Z\", 0.0], \
             \"user_count\": [\"1970-01-01T00:16:43Z\", 0], \"time\": \"1970-01-01T00:16:43Z\"}"
        );
    }

    #[test]
    fn precise_extras_follow_time() {
        let stats = RequestStats::new(true, 1000.0);
        let mut p = history_point(&stats, 2, 1003.0);
        p.precise_p50_ms = Some(1.25);
        p.precise_p95_ms = Some(7.0);
        let v = p.to_json();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys[6..],
            ["time", "precise_percentile_0.5", "precise_percentile_0.95"]
        );
        assert_eq!(
            v["precise_percentile_0.95"],
            json!(["1970-01-01T00:16:43Z", 7.0])
        );
    }
}
