//! The `stats` report a worker sends every 3 seconds (§6.6 of the reference): the entries that
//! saw requests since the previous report, the total, the failures, the worker's user counts
//! and any custom keys, each entry as Locust's `StatsEntry.serialize()` dict.
//!
//! A serialized entry is exactly Locust's 14 keys, in Locust's order: `name, method,
//! last_request_timestamp, start_time, num_requests, num_none_requests, num_failures,
//! total_response_time, max_response_time, min_response_time, total_content_length,
//! response_times, num_reqs_per_sec, num_fail_per_sec`. The three histograms have msgpack
//! integer keys (a Python master sorts and compares them). Numbers take Python's types: an
//! entry without timed requests writes the int `0` for `total_response_time` and
//! `max_response_time`, as Locust does, so Hopper's bytes equal Locust's for the same figures.
//!
//! Reading follows Locust's `StatsEntry.unserialize`: `name` and `method` are required, a
//! missing key keeps the value of a fresh entry (zero, nil, and `start_time` = now), unknown
//! keys are ignored, numbers may be ints or floats (integral floats where Hopper keeps
//! integers). Values Locust could not merge either (a string count, a nil `start_time`) and
//! values Hopper's types cannot hold (a negative count, a negative or fractional histogram
//! key) are errors.

use std::collections::BTreeMap;

use hopper_stats::{StatsEntry, StatsError, WorkerReport};
use rmpv::Value;

use super::fields::{describe, join, to_f64, to_i64, to_str, to_u64, MapView};
use super::hdr::{self, HdrPayload, HdrSamples};
use super::WireError;

const WHAT: &str = "stats data";

/// The top-level keys of a report that are not custom keys.
const KNOWN_KEYS: [&str; 6] = [
    "stats",
    "stats_total",
    "errors",
    "user_classes_count",
    "user_count",
    hdr::HOPPER_HDR_KEY,
];

fn s(v: &str) -> Value {
    Value::from(v)
}

fn py_num(n: hopper_stats::PyNum) -> Value {
    match n {
        hopper_stats::PyNum::Int(i) => Value::from(i),
        hopper_stats::PyNum::Float(f) => Value::F64(f),
    }
}

fn opt_f64(v: Option<f64>) -> Value {
    v.map_or(Value::Nil, Value::F64)
}

fn counts<K: Copy + Into<Value>>(m: &BTreeMap<K, u64>) -> Value {
    Value::Map(
        m.iter()
            .map(|(&k, &v)| (k.into(), Value::from(v)))
            .collect(),
    )
}

/// An entry as Locust's `StatsEntry.serialize()` dict (see the module docs).
pub fn entry_to_value(e: &StatsEntry) -> Value {
    Value::Map(vec![
        (s("name"), s(&e.name)),
        (s("method"), s(&e.method)),
        (
            s("last_request_timestamp"),
            opt_f64(e.last_request_timestamp),
        ),
        (s("start_time"), Value::F64(e.start_time)),
        (s("num_requests"), Value::from(e.num_requests)),
        (s("num_none_requests"), Value::from(e.num_none_requests)),
        (s("num_failures"), Value::from(e.num_failures)),
        (s("total_response_time"), py_num(e.total_response_time_py())),
        (s("max_response_time"), py_num(e.max_response_time_py())),
        (s("min_response_time"), opt_f64(e.min_response_time)),
        (
            s("total_content_length"),
            Value::from(e.total_content_length),
        ),
        (s("response_times"), counts(&e.response_times)),
        (s("num_reqs_per_sec"), counts(&e.num_reqs_per_sec)),
        (s("num_fail_per_sec"), counts(&e.num_fail_per_sec)),
    ])
}

/// Reads a serialized entry (see the module docs); a missing `start_time` is `now`. The entry
/// has an empty HDR histogram and no response-times cache.
pub fn entry_from_value(v: &Value, now: f64) -> Result<StatsEntry, WireError> {
    read_entry(v, String::new(), now)
}

fn read_entry(v: &Value, at: String, now: f64) -> Result<StatsEntry, WireError> {
    let m = MapView::new(WHAT, at, v)?;
    let name = m.conv("name", to_str)?;
    let method = m.conv("method", to_str)?;
    let mut e = StatsEntry::new_carrier(name, method, now);
    e.last_request_timestamp = m.opt("last_request_timestamp", to_f64)?;
    e.start_time = m.or("start_time", now, to_f64)?;
    e.num_requests = m.or("num_requests", 0, to_u64)?;
    e.num_none_requests = m.or("num_none_requests", 0, to_u64)?;
    e.num_failures = m.or("num_failures", 0, to_u64)?;
    e.total_response_time = m.or("total_response_time", 0.0, to_f64)?;
    e.max_response_time = m.or("max_response_time", 0.0, to_f64)?;
    e.min_response_time = m.opt("min_response_time", to_f64)?;
    e.total_content_length = m.or("total_content_length", 0, to_u64)?;
    let histogram = |key: &str| match m.get(key) {
        None => Ok(BTreeMap::new()),
        Some(_) => m.counts(key, to_u64),
    };
    e.response_times = histogram("response_times")?;
    let per_second = |key: &str| match m.get(key) {
        None => Ok(BTreeMap::new()),
        Some(_) => m.counts(key, to_i64),
    };
    e.num_reqs_per_sec = per_second("num_reqs_per_sec")?;
    e.num_fail_per_sec = per_second("num_fail_per_sec")?;
    Ok(e)
}

/// A failure as Locust's `StatsError.serialize()`: `{name, method, error, occurrences,
/// first_seen, last_seen}`.
pub fn error_to_value(e: &StatsError) -> Value {
    Value::Map(vec![
        (s("name"), s(&e.name)),
        (s("method"), s(&e.method)),
        (s("error"), s(&e.error)),
        (s("occurrences"), Value::from(e.occurrences)),
        (s("first_seen"), opt_f64(e.first_seen)),
        (s("last_seen"), opt_f64(e.last_seen)),
    ])
}

/// Reads a serialized failure: `name`, `method`, `error` and `occurrences` are required (Locust
/// indexes them), `first_seen` and `last_seen` may be nil or missing.
pub fn error_from_value(v: &Value) -> Result<StatsError, WireError> {
    read_error(v, String::new())
}

fn read_error(v: &Value, at: String) -> Result<StatsError, WireError> {
    let m = MapView::new(WHAT, at, v)?;
    let mut e = StatsError::new(
        m.conv("method", to_str)?,
        m.conv("name", to_str)?,
        m.conv("error", to_str)?,
    );
    e.occurrences = m.conv("occurrences", to_u64)?;
    e.first_seen = m.opt("first_seen", to_f64)?;
    e.last_seen = m.opt("last_seen", to_f64)?;
    Ok(e)
}

/// A worker's `stats` report.
#[derive(Debug, Clone)]
pub struct StatsReport {
    /// The statistics since the previous report (entries, total, failures by key).
    pub report: WorkerReport,
    /// The worker's users per class now.
    pub user_classes_count: BTreeMap<String, u64>,
    /// The worker's users now.
    pub user_count: u64,
    /// Keys added by `report_to_master` listeners, in order, kept as sent. Keys that collide
    /// with the report's own are not written.
    pub extra: Vec<(String, Value)>,
    /// Set by [`StatsReport::from_value`] when the report carried Hopper's HDR histograms
    /// ([`super::HOPPER_HDR_KEY`]) and they were attached: then every entry's and the total's
    /// `hdr` holds exactly their timed requests. `None` for Locust workers, whose entries all
    /// have an empty `hdr`: a master merging them only knows their rounded buckets (see
    /// [`super::approximate_hdr_from_buckets`]). [`StatsReport::to_value`] ignores this field:
    /// its `include_hdr` argument decides, and the histograms come from the entries.
    pub hdr: Option<HdrPayload>,
    /// The precise times themselves, when `hdr` is set: read and checked, but not in the
    /// entries (see [`StatsReport::attach_hdr`] and [`StatsReport::record_hdr`]).
    pub hdr_samples: Option<HdrSamples>,
}

impl StatsReport {
    /// The report's data: `{"stats", "stats_total", "errors", "user_classes_count",
    /// "user_count", custom keys...}` as Locust's listeners build it, plus
    /// [`super::HOPPER_HDR_KEY`] when `include_hdr` (only ever for a Hopper master: the ack
    /// said so).
    pub fn to_value(&self, include_hdr: bool) -> Value {
        let r = &self.report;
        let mut pairs = vec![
            (
                s("stats"),
                Value::Array(r.stats.iter().map(entry_to_value).collect()),
            ),
            (s("stats_total"), entry_to_value(&r.stats_total)),
            (
                s("errors"),
                Value::Map(
                    r.errors
                        .iter()
                        .map(|(k, e)| (s(k), error_to_value(e)))
                        .collect(),
                ),
            ),
            (
                s("user_classes_count"),
                Value::Map(
                    self.user_classes_count
                        .iter()
                        .map(|(k, &v)| (s(k), Value::from(v)))
                        .collect(),
                ),
            ),
            (s("user_count"), Value::from(self.user_count)),
        ];
        for (k, v) in &self.extra {
            if !KNOWN_KEYS.contains(&k.as_str()) {
                pairs.push((s(k), v.clone()));
            }
        }
        if include_hdr {
            pairs.push((s(hdr::HOPPER_HDR_KEY), hdr::to_value(r)));
        }
        Value::Map(pairs)
    }

    /// Reads a report; entries missing `start_time` get the current wall time, as in Locust
    /// (see [`StatsReport::from_value_at`]).
    pub fn from_value(v: &Value) -> Result<Self, WireError> {
        Self::from_value_at(v, hopper_stats::now_epoch())
    }

    /// Reads a report with `now` (epoch seconds) as the current time.
    ///
    /// `stats`, `stats_total`, `errors` and `user_classes_count` are required (a Locust master
    /// indexes each); a missing `user_count` (which the Locust master never reads) is the sum
    /// of the class counts. Custom keys with non-string names are dropped. A malformed
    /// [`super::HOPPER_HDR_KEY`] does not fail the report: it is logged and the report reads as
    /// a Locust worker's (`hdr` is `None`, every entry's histogram empty).
    pub fn from_value_at(v: &Value, now: f64) -> Result<Self, WireError> {
        let m = MapView::new(WHAT, String::new(), v)?;
        let stats = match m.req("stats")? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| read_entry(item, format!("stats[{i}]"), now))
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(m.error(
                    "stats",
                    format!("expected an array of entries, got {}", describe(other)),
                ))
            }
        };
        let stats_total = read_entry(m.req("stats_total")?, "stats_total".into(), now)?;
        let mut errors = BTreeMap::new();
        let errs = m.map("errors")?;
        for (k, v) in errs.pairs() {
            let key = to_str(k).map_err(|p| m.error("errors", format!("a key: {p}")))?;
            errors.insert(key.to_string(), read_error(v, join("errors", key))?);
        }
        let user_classes_count =
            m.counts("user_classes_count", |k| to_str(k).map(str::to_string))?;
        let user_count = match m.get("user_count") {
            None => user_classes_count
                .values()
                .fold(0u64, |a, &b| a.saturating_add(b)),
            Some(_) => m.conv("user_count", to_u64)?,
        };
        let mut extra: Vec<(String, Value)> = Vec::new();
        for (k, v) in m.pairs() {
            match k.as_str() {
                Some(key) if KNOWN_KEYS.contains(&key) => {}
                Some(key) => {
                    // A repeated key keeps its last value (and first position), as a dict.
                    match extra.iter_mut().find(|(e, _)| e == key) {
                        Some(slot) => slot.1 = v.clone(),
                        None => extra.push((key.to_string(), v.clone())),
                    }
                }
                None => {
                    tracing::debug!(key = %describe(k), "dropping a stats report key that is not a string")
                }
            }
        }
        let report = WorkerReport {
            stats,
            stats_total,
            errors,
        };
        let (hdr, hdr_samples) = match m.get(hdr::HOPPER_HDR_KEY) {
            None => (None, None),
            Some(h) => match hdr::read(h, &report) {
                Ok((payload, samples)) => (Some(payload), Some(samples)),
                Err(problem) => {
                    tracing::warn!(%problem, "ignoring the HDR histograms of a Hopper worker's stats report");
                    (None, None)
                }
            },
        };
        Ok(StatsReport {
            report,
            user_classes_count,
            user_count,
            extra,
            hdr,
            hdr_samples,
        })
    }

    /// Puts the precise times the report carried into its own entries' histograms (each
    /// entry read off the wire holds only an empty placeholder until then).
    pub fn attach_hdr(&mut self) {
        if let Some(samples) = self.hdr_samples.take() {
            hdr::apply(&samples, &mut self.report);
        }
    }

    /// Adds the report to a master's statistics: its entries, failures and total, and
    /// their precise times into the merged entries' histograms. A Locust worker sends only
    /// the rounded buckets: the precise histograms get their share from those (see
    /// [`super::approximate_hdr_from_buckets`]), so percentiles over mixed workers stay whole.
    pub fn merge_into(&self, stats: &mut hopper_stats::RequestStats) {
        let r = &self.report;
        stats.merge_worker_report_with(r, |i, merged| {
            if self.hdr.is_none() {
                let sent = i.map_or(&r.stats_total, |i| &r.stats[i]);
                hdr::record_buckets(sent, &mut merged.hdr);
            } else {
                self.record_hdr(i, merged);
            }
        });
    }

    /// Records the precise times the report carried into the master's entries, as
    /// [`hopper_stats::RequestStats::merge_worker_report_with`] hands them over: `index`
    /// is the report entry's (`None` for the total). A report without them adds nothing.
    pub fn record_hdr(&self, index: Option<usize>, into: &mut StatsEntry) {
        let Some(samples) = &self.hdr_samples else {
            return;
        };
        let buckets = match index {
            None => Some(&samples.total),
            Some(i) => samples.entries.get(i),
        };
        if let Some(buckets) = buckets {
            hdr::record_samples(buckets, &mut into.hdr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopper_stats::RequestStats;

    fn sample_report() -> StatsReport {
        let mut st = RequestStats::new(false, 1000.25);
        st.log_request("GET", "/", Some(2.5), 10, 1000.5);
        st.log_request("GET", "/", Some(147.0), 10, 1001.5);
        st.log_request("POST", "/api", None, 0, 1001.75);
        st.log_error("POST", "/api", "CatchResponseError('bad')", 1001.75);
        StatsReport {
            report: st.take_worker_report(1003.0),
            user_classes_count: [("A".to_string(), 2)].into(),
            user_count: 2,
            extra: vec![("custom".into(), Value::Array(vec![Value::from(1u64)]))],
            hdr: None,
            hdr_samples: None,
        }
    }

    fn same_entry(a: &StatsEntry, b: &StatsEntry) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn round_trip_without_and_with_hdr() {
        let sent = sample_report();
        for include_hdr in [false, true] {
            let mut got = StatsReport::from_value_at(&sent.to_value(include_hdr), 5.0).unwrap();
            assert_eq!(got.hdr.is_some(), include_hdr);
            assert_eq!(got.hdr_samples.is_some(), include_hdr);
            got.attach_hdr();
            assert_eq!(got.report.stats.len(), 2);
            for (a, b) in sent.report.stats.iter().zip(&got.report.stats) {
                if include_hdr {
                    same_entry(a, b);
                    assert_eq!(a.hdr, b.hdr);
                } else {
                    assert!(b.hdr.is_empty());
                    assert_eq!(a.response_times, b.response_times);
                }
            }
            assert_eq!(got.report.errors, sent.report.errors);
            assert_eq!(got.user_classes_count, sent.user_classes_count);
            assert_eq!(got.user_count, 2);
            assert_eq!(got.extra, sent.extra);
            // Re-encoding gives the same bytes.
            let mut a = Vec::new();
            let mut b = Vec::new();
            super::super::encode_value(&sent.to_value(include_hdr), &mut a);
            super::super::encode_value(&got.to_value(include_hdr), &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn hdr_merge_makes_master_percentiles_exact() {
        // Two workers with different latencies; the master's precise p50/p99 equal those of
        // one entry that saw every request.
        let mut all = RequestStats::new(false, 0.0);
        let mut master = RequestStats::new(true, 0.0);
        for (w, base) in [(0, 1.0), (1, 40.0)] {
            let mut st = RequestStats::new(false, 0.0);
            for i in 0..500 {
                let t = base + (i * (w + 1)) as f64 * 0.173;
                st.log_request("GET", "/", Some(t), 0, 1.0);
                all.log_request("GET", "/", Some(t), 0, 1.0);
            }
            let r = StatsReport {
                report: st.take_worker_report(2.0),
                user_classes_count: BTreeMap::new(),
                user_count: 0,
                extra: vec![],
                hdr: None,
                hdr_samples: None,
            };
            let mut bytes = Vec::new();
            super::super::encode_value(&r.to_value(true), &mut bytes);
            let got = StatsReport::from_value_at(&super::super::decode_value(&bytes).unwrap(), 2.0)
                .unwrap();
            // The master's way: the precise times go straight into its entries.
            master.merge_worker_report_with(&got.report, |i, e| got.record_hdr(i, e));
        }
        let (m, a) = (
            master.get("/", "GET").unwrap(),
            all.get("/", "GET").unwrap(),
        );
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(m.precise_percentile(q), a.precise_percentile(q), "q={q}");
            assert_eq!(master.total.precise_percentile(q), a.precise_percentile(q));
        }
        assert_eq!(m.hdr.len(), 1000);
    }

    #[test]
    fn missing_keys_take_fresh_entry_values() {
        let v = Value::Map(vec![(s("name"), s("/x")), (s("method"), s("GET"))]);
        let e = entry_from_value(&v, 77.5).unwrap();
        assert_eq!(
            (e.start_time, e.num_requests, e.max_response_time),
            (77.5, 0, 0.0)
        );
        assert_eq!(
            (e.min_response_time, e.last_request_timestamp),
            (None, None)
        );
        assert!(e.response_times.is_empty() && e.hdr.is_empty());
        let v = Value::Map(vec![(s("name"), s("/x"))]);
        assert_eq!(
            entry_from_value(&v, 0.0).unwrap_err().to_string(),
            "invalid stats data at `method`: missing (Locust always sends it)"
        );
    }

    #[test]
    fn garbage_is_an_error_with_a_path() {
        // Replaces field `field` of the second entry and reads the report.
        let read_with = |field: usize, value: Value| {
            let mut v = sample_report().to_value(false);
            if let Value::Map(pairs) = &mut v {
                if let Value::Array(stats) = &mut pairs[0].1 {
                    if let Value::Map(entry) = &mut stats[1] {
                        entry[field].1 = value;
                    }
                }
            }
            StatsReport::from_value_at(&v, 0.0).unwrap_err().to_string()
        };
        assert_eq!(
            read_with(11, Value::Map(vec![(s("12"), Value::from(1u64))])),
            "invalid stats data at `stats[1].response_times`: a key: expected a non-negative integer, got \"12\""
        );
        assert_eq!(
            read_with(11, Value::Nil),
            "invalid stats data at `stats[1].response_times`: expected a map, got nil"
        );
        assert_eq!(
            read_with(3, Value::Nil),
            "invalid stats data at `stats[1].start_time`: expected a number, got nil"
        );
        assert_eq!(
            read_with(4, Value::from(-2i64)),
            "invalid stats data at `stats[1].num_requests`: expected a non-negative integer, got -2"
        );
        let v = Value::Map(vec![(s("stats"), Value::Array(vec![]))]);
        assert_eq!(
            StatsReport::from_value_at(&v, 0.0).unwrap_err().to_string(),
            "invalid stats data at `stats_total`: missing (Locust always sends it)"
        );
    }

    #[test]
    fn extras_skip_reserved_names() {
        let mut r = sample_report();
        r.extra.push(("user_count".into(), Value::from(99u64)));
        let got = StatsReport::from_value_at(&r.to_value(false), 0.0).unwrap();
        assert_eq!(got.user_count, 2);
        assert_eq!(got.extra.len(), 1);
    }
}
