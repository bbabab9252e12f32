//! Hopper's extension of the `stats` report: the entries' HDR histograms, so a Hopper master's
//! precise percentiles are exact over all its Hopper workers.
//!
//! Locust's report carries each entry's response times only as rounded-millisecond buckets
//! (about two significant digits). A Hopper worker also records every timed request in
//! microseconds in an HDR histogram (three significant digits); when its master is Hopper
//! (the `ack` carried `"hopper"`), it adds one top-level key to the report:
//!
//! ```text
//! "hopper_hdr": {"v": 1,
//!                "stats": [[name, method, counts], ...],   // entries with timed requests
//!                "total": counts}
//! counts = [v0, c0, d1, c1, d2, c2, ...]   // v0: first value (µs), d_i = v_i - v_(i-1) > 0
//! ```
//!
//! Each `v_i` is the lowest value of one recorded HDR bucket and `c_i` its count, in rising
//! order, so the master records exactly the buckets the worker had (same configuration on both
//! sides). Deltas keep most numbers under 128, one byte each in msgpack.
//!
//! A Python master never sees the key: the worker only adds it when asked
//! ([`super::StatsReport::to_value`]), and a Python master would ignore it anyway.
//!
//! Reports from Python workers carry no histograms: their entries decode with an empty `hdr`,
//! and a master merging them only knows the rounded buckets for those requests. A master that
//! mixes both kinds can fill the gap with [`approximate_hdr_from_buckets`] (the rounded values,
//! so precise percentiles degrade to Locust's precision for that share of requests) or fall
//! back to Locust's bucket percentiles; otherwise its HDR would silently describe only the
//! Hopper workers' requests.

use hdrhistogram::Histogram;
use hopper_stats::{StatsEntry, WorkerReport};
use rmpv::Value;

use super::fields::{describe, to_str, to_u64};

/// The report key of the extension.
pub const HOPPER_HDR_KEY: &str = "hopper_hdr";

/// The format version written under `"v"`; reports with another version are read without
/// their histograms.
const FORMAT_VERSION: u64 = 1;

use hopper_stats::HDR_MAX_US;

/// What a report's [`HOPPER_HDR_KEY`] carried. The histograms themselves are attached to the
/// report's entries (their `hdr` fields) when it is read, so a master's
/// `merge_worker_report` folds them in like every other figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HdrPayload {
    /// The extension's format version.
    pub version: u64,
    /// Histograms attached: one per entry with timed requests, plus the total's.
    pub histograms: usize,
}

/// The extension's value for a report.
pub(crate) fn to_value(report: &WorkerReport) -> Value {
    let stats = report
        .stats
        .iter()
        .filter(|e| !e.hdr.is_empty())
        .map(|e| {
            Value::Array(vec![
                Value::from(e.name.as_str()),
                Value::from(e.method.as_str()),
                counts_to_value(&e.hdr),
            ])
        })
        .collect();
    Value::Map(vec![
        (Value::from("v"), Value::from(FORMAT_VERSION)),
        (Value::from("stats"), Value::Array(stats)),
        (
            Value::from("total"),
            counts_to_value(&report.stats_total.hdr),
        ),
    ])
}

fn counts_to_value(h: &Histogram<u64>) -> Value {
    let mut out = Vec::new();
    let mut prev = 0u64;
    for (i, it) in h.iter_recorded().enumerate() {
        let v = h.lowest_equivalent(it.value_iterated_to());
        out.push(Value::from(if i == 0 { v } else { v - prev }));
        out.push(Value::from(it.count_at_value()));
        prev = v;
    }
    Value::Array(out)
}

/// A report's precise times as read off the wire and checked, not yet recorded anywhere:
/// a master records them straight into its own histograms
/// ([`super::StatsReport::record_hdr`]), which costs in proportion to the buckets sent,
/// where a histogram per report entry would cost 16 KB and a walk over it per merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HdrSamples {
    /// Per entry of the report's stats, in the same order: its `(µs, count)` buckets,
    /// rising (none for an entry without timed requests).
    pub entries: Vec<Vec<(u64, u64)>>,
    /// The total's buckets.
    pub total: Vec<(u64, u64)>,
}

/// Records `(µs, count)` buckets into a histogram (values past [`HDR_MAX_US`] clamped).
pub fn record_samples(samples: &[(u64, u64)], h: &mut Histogram<u64>) {
    for &(value, count) in samples {
        // Cannot fail on an auto-resizing histogram with a clamped value.
        let _ = h.record_n(value.min(HDR_MAX_US), count);
    }
}

/// Records the extension's histograms into the report's entries (matched by name and
/// method) and total: [`read`], then [`apply`].
#[cfg(test)]
pub(crate) fn attach(v: &Value, report: &mut WorkerReport) -> Result<HdrPayload, String> {
    let (payload, samples) = read(v, report)?;
    apply(&samples, report);
    Ok(payload)
}

/// Gives every entry (and the total) a real histogram, made from its samples.
pub(crate) fn apply(samples: &HdrSamples, report: &mut WorkerReport) {
    for (i, e) in report.stats.iter_mut().enumerate() {
        e.hdr = hopper_stats::new_hdr();
        if let Some(buckets) = samples.entries.get(i) {
            record_samples(buckets, &mut e.hdr);
        }
    }
    report.stats_total.hdr = hopper_stats::new_hdr();
    record_samples(&samples.total, &mut report.stats_total.hdr);
}

/// Reads and checks the extension against the report's entries.
///
/// On any problem (an unknown format version, a malformed value, an entry not in the report,
/// one given twice or a timed entry missing, counts that do not add up to the entry's timed
/// requests, values above its max) the reason is returned: the Locust part of the report
/// stays usable.
pub(crate) fn read(v: &Value, report: &WorkerReport) -> Result<(HdrPayload, HdrSamples), String> {
    let Value::Map(pairs) = v else {
        return Err(format!("expected a map, got {}", describe(v)));
    };
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    match get("v").map(to_u64).transpose()? {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unsupported format version {v} (this Hopper reads {FORMAT_VERSION})"
            ))
        }
        None => return Err("no format version".into()),
    }
    let Some(Value::Array(stats)) = get("stats") else {
        return Err("`stats` is missing or not an array".into());
    };
    let mut seen = vec![false; report.stats.len()];
    let mut samples = HdrSamples {
        entries: vec![Vec::new(); report.stats.len()],
        total: Vec::new(),
    };
    for (i, item) in stats.iter().enumerate() {
        let Value::Array(parts) = item else {
            return Err(format!(
                "stats[{i}]: expected [name, method, counts], got {}",
                describe(item)
            ));
        };
        let [name, method, counts] = parts.as_slice() else {
            return Err(format!("stats[{i}]: expected [name, method, counts]"));
        };
        let (name, method) = (to_str(name)?, to_str(method)?);
        let index = report
            .stats
            .iter()
            .position(|e| e.name == name && e.method == method)
            .ok_or_else(|| {
                format!("stats[{i}]: {method} {name} is not among the report's entries")
            })?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(format!(
                "stats[{i}] ({method} {name}): histogram given twice"
            ));
        }
        let buckets = read_counts(counts, &report.stats[index])
            .map_err(|p| format!("stats[{i}] ({method} {name}): {p}"))?;
        samples.entries[index] = buckets;
    }
    if let Some((_, e)) = report
        .stats
        .iter()
        .enumerate()
        .find(|(i, e)| !seen[*i] && e.num_timed_requests() > 0)
    {
        return Err(format!(
            "no histogram for {} {} ({} timed requests)",
            e.method,
            e.name,
            e.num_timed_requests()
        ));
    }
    let total = get("total").ok_or("`total` is missing")?;
    samples.total = read_counts(total, &report.stats_total).map_err(|p| format!("total: {p}"))?;
    Ok((
        HdrPayload {
            version: FORMAT_VERSION,
            histograms: stats.len() + 1,
        },
        samples,
    ))
}

/// Reads one `[v0, c0, d1, c1, ...]` array, checking it against the entry's figures.
fn read_counts(v: &Value, e: &StatsEntry) -> Result<Vec<(u64, u64)>, String> {
    let Value::Array(items) = v else {
        return Err(format!("expected an array of counts, got {}", describe(v)));
    };
    if items.len() % 2 != 0 {
        return Err("the counts array has an odd length".into());
    }
    // Values are rounded microseconds of times no larger than the max (plus rounding).
    let max_us = (e.max_response_time * 1000.0)
        .round()
        .clamp(0.0, HDR_MAX_US as f64) as u64
        + 1;
    let mut buckets = Vec::with_capacity(items.len() / 2);
    let mut value = 0u64;
    let mut total = 0u64;
    for (i, pair) in items.chunks_exact(2).enumerate() {
        let step = to_u64(&pair[0])?;
        let count = to_u64(&pair[1])?;
        if i > 0 && step == 0 {
            return Err("values are not rising".into());
        }
        value = value.checked_add(step).ok_or("a value overflows")?;
        if value > max_us {
            return Err(format!(
                "the value {value} µs is above the entry's max of {} ms",
                e.max_response_time
            ));
        }
        total = total.checked_add(count).ok_or("the counts overflow")?;
        buckets.push((value, count));
    }
    if total != e.num_timed_requests() {
        return Err(format!(
            "{total} samples for {} timed requests",
            e.num_timed_requests()
        ));
    }
    Ok(buckets)
}

/// An HDR histogram made from an entry's rounded-millisecond buckets: each bucket's count at
/// the bucket's value. For entries merged from Python workers, which send no HDR data: the
/// result has Locust's precision (about two significant digits), not Hopper's.
pub fn approximate_hdr_from_buckets(e: &StatsEntry) -> Histogram<u64> {
    let mut h = hopper_stats::new_hdr();
    record_buckets(e, &mut h);
    h
}

/// Records an entry's rounded-millisecond buckets into `h`, each bucket's count at the
/// bucket's value: what [`approximate_hdr_from_buckets`] builds, added straight into a
/// master's own histogram (no histogram per report entry).
pub fn record_buckets(e: &StatsEntry, h: &mut Histogram<u64>) {
    record_bucket_pairs(e.response_times.iter().map(|(&ms, &count)| (ms, count)), h);
}

/// [`record_buckets`] from `(ms, count)` pairs.
pub(crate) fn record_bucket_pairs(
    buckets: impl IntoIterator<Item = (u64, u64)>,
    h: &mut Histogram<u64>,
) {
    for (bucket_ms, count) in buckets {
        let _ = h.record_n(bucket_ms.saturating_mul(1000).min(HDR_MAX_US), count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopper_stats::RequestStats;

    fn report(times_ms: &[f64]) -> WorkerReport {
        let mut s = RequestStats::new(false, 1000.0);
        for &t in times_ms {
            s.log_request("GET", "/a", Some(t), 0, 1001.0);
        }
        s.log_request("GET", "/b", None, 0, 1001.0);
        s.take_worker_report(1002.0)
    }

    fn cleared(r: &WorkerReport) -> WorkerReport {
        let mut r = r.clone();
        for e in r.stats.iter_mut().chain([&mut r.stats_total]) {
            e.hdr.reset();
        }
        r
    }

    #[test]
    fn histograms_travel_exactly() {
        let times: Vec<f64> = (0..2000).map(|i| 0.05 + i as f64 * 1.37).collect();
        let sent = report(&times);
        let v = to_value(&sent);
        let mut got = cleared(&sent);
        assert_eq!(
            attach(&v, &mut got),
            Ok(HdrPayload {
                version: 1,
                histograms: 2
            })
        );
        for (a, b) in sent
            .stats
            .iter()
            .zip(&got.stats)
            .chain([(&sent.stats_total, &got.stats_total)])
        {
            assert_eq!(a.hdr, b.hdr, "{}", a.name);
            assert_eq!(a.hdr.len(), a.num_timed_requests());
        }
        // Deltas keep it compact: here samples lie ~1.4 ms apart (3-byte deltas, 1-byte
        // counts); denser histograms have smaller deltas.
        let mut bytes = Vec::new();
        super::super::encode_value(&v, &mut bytes);
        let buckets = 2 * sent.stats_total.hdr.iter_recorded().count();
        assert!(
            bytes.len() <= 4 * buckets + 40,
            "{} bytes for {buckets} buckets",
            bytes.len()
        );
    }

    #[test]
    fn problems_drop_every_histogram() {
        let sent = report(&[1.0, 2.0]);
        let good = to_value(&sent);
        let with = |key: &str, val: Value| {
            let Value::Map(mut pairs) = good.clone() else {
                unreachable!()
            };
            pairs.retain(|(k, _)| k.as_str() != Some(key));
            pairs.push((Value::from(key), val));
            Value::Map(pairs)
        };
        let cases = [
            (
                with("v", Value::from(2u64)),
                "unsupported format version 2 (this Hopper reads 1)",
            ),
            (
                with("total", Value::Array(vec![Value::from(1000u64)])),
                "total: the counts array has an odd length",
            ),
            (
                with(
                    "total",
                    Value::Array(vec![Value::from(1000u64), Value::from(1u64)]),
                ),
                "total: 1 samples for 2 timed requests",
            ),
            (
                with(
                    "total",
                    Value::Array(vec![Value::from(9_000_000u64), Value::from(2u64)]),
                ),
                "total: the value 9000000 µs is above the entry's max of 2 ms",
            ),
            (
                with(
                    "stats",
                    Value::Array(vec![Value::Array(vec![
                        Value::from("/zzz"),
                        Value::from("GET"),
                        Value::Array(vec![]),
                    ])]),
                ),
                "stats[0]: GET /zzz is not among the report's entries",
            ),
            (
                with("stats", Value::Array(vec![])),
                "no histogram for GET /a (2 timed requests)",
            ),
            (Value::Nil, "expected a map, got nil"),
        ];
        for (v, want) in cases {
            let mut got = cleared(&sent);
            assert_eq!(attach(&v, &mut got).unwrap_err(), want);
            assert!(got.stats.iter().all(|e| e.hdr.is_empty()) && got.stats_total.hdr.is_empty());
        }
    }

    #[test]
    fn approximation_uses_bucket_values() {
        let r = report(&[1.2, 147.0, 3432.0]);
        let h = approximate_hdr_from_buckets(&r.stats_total);
        assert_eq!(h.len(), 3);
        assert_eq!(h.min(), 1000);
        assert_eq!(h.lowest_equivalent(h.max()), h.lowest_equivalent(3_400_000));
    }
}
