//! `GET /metrics`: the run's statistics for Prometheus, in the OpenMetrics 1.0 text format.
//!
//! [`render`] copies what it needs out of the [`RequestStats`] into an owned snapshot, hands
//! the snapshot to a `prometheus-client` [`Collector`] registered in a throw-away [`Registry`],
//! and lets the library's text encoder write it out. A fresh registry per scrape means every
//! scrape encodes the figures as they are at that moment, and no metric state lives outside
//! the statistics themselves.
//!
//! # Why OpenMetrics and not the classic `text/plain; version=0.0.4`
//!
//! `prometheus-client` has one text encoder, and it writes OpenMetrics: a counter family
//! `hopper_requests` gets `# TYPE hopper_requests counter` and samples named
//! `hopper_requests_total`, plus a closing `# EOF`. In the classic format the `# TYPE` line
//! must carry the sample name itself (`hopper_requests_total`), and the encoder offers no way
//! to write that (naming the family `requests_total` would give `requests_total_total`
//! samples). Served as `text/plain; version=0.0.4` the counters would therefore lose their
//! type, so the server must send [`CONTENT_TYPE`], for which Prometheus picks its OpenMetrics
//! parser.
//!
//! # Metrics
//!
//! | Samples | Type | Labels | Rows |
//! |---|---|---|---|
//! | `hopper_users` | gauge | | |
//! | `hopper_users_per_class` | gauge | `user_class` | |
//! | `hopper_workers` | gauge | | 0 unless master |
//! | `hopper_state` | gauge | `state` | 1 for the current state, 0 for the others |
//! | `hopper_requests_total` | counter | `name`, `method` | endpoints |
//! | `hopper_failures_total` | counter | `name`, `method` | endpoints |
//! | `hopper_response_time_seconds_{bucket,sum,count}` | histogram | `name`, `method` | endpoints |
//! | `hopper_response_size_bytes_total` | counter | `name`, `method` | endpoints |
//! | `hopper_fail_ratio` | gauge | `name`, `method` | endpoints and Aggregated |
//! | `hopper_current_rps` | gauge | | Aggregated |
//! | `hopper_current_fail_per_sec` | gauge | | Aggregated |
//! | `hopper_error_kinds` | gauge | | distinct failure rows |
//!
//! The Aggregated row appears only in `hopper_fail_ratio`. The counters and the histogram
//! would just repeat the sum of the endpoint series, so including it would double every
//! `sum(...)` over them; `sum by (le) (...)` reproduces it exactly. A ratio cannot be summed, so
//! there the Aggregated row (`name="Aggregated", method=""`, as in Locust's table) is exported.
//! The current rates are whole-run figures only, as in Locust's header; per endpoint,
//! `rate(hopper_requests_total[1m])` does better.
//!
//! `hopper_requests_total` counts every request, failed ones and ones without a response time
//! included (Locust's "# Requests"). The histogram counts only requests with a response time,
//! so its `_count` can be lower.
//!
//! # Counters and resets
//!
//! The counters and histogram series only grow while a test runs: the statistics only ever
//! add. "Reset stats" zeroes them (and a new test drops the endpoint series altogether);
//! Prometheus sees that as a counter reset, which `rate()` and `increase()` handle. The
//! figures are meaningful on a standalone or master process; a worker's statistics restart at
//! every report, so a worker should not be scraped.
//!
//! # Cardinality
//!
//! Per endpoint: three counters, one ratio and a histogram of 16 buckets plus `_sum` and
//! `_count`, 22 series in all. 500 endpoints make about 11 000 lines, 0.9 MB, rendered in
//! about 20 ms in a release build. The bucket ladder is fixed, so the count does not grow with
//! the spread of response times.

use std::fmt;

use hopper_stats::{PyNum, RequestStats, StatsEntry, AGGREGATED_NAME};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`render`]'s output (OpenMetrics text 1.0; see the module docs for why
/// not the classic Prometheus format).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one scrape exports.
pub struct MetricsInput<'a> {
    /// The run's statistics.
    pub stats: &'a RequestStats,
    /// Runner state: `"ready"`, `"spawning"`, `"running"`, `"cleanup"`, `"stopping"` or
    /// `"stopped"`.
    pub state: &'a str,
    /// Users running now.
    pub user_count: u64,
    /// Users running now, per user class.
    pub class_counts: &'a std::collections::BTreeMap<String, u64>,
    /// Connected workers; 0 unless this is a master.
    pub worker_count: u64,
    /// Wall time of the scrape, epoch seconds.
    pub now: f64,
}

/// The runner states, each of which always has a `hopper_state` series so that a query for
/// one of them finds a 0 rather than nothing.
const STATES: [&str; 6] = [
    "ready", "spawning", "running", "cleanup", "stopping", "stopped",
];

/// Upper bounds of the response-time buckets, microseconds (the HDR histograms' unit): 1 ms to
/// 60 s in 1-2.5-5 steps, with 30 s and 60 s for timeouts. Integers so that the comparison with
/// HDR values is exact; the `le` labels are these divided by 10^6.
const BUCKET_BOUNDS_US: [u64; 15] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Locust's current rates look at ten seconds ending two seconds before the last request, at
/// most twelve seconds back from it. Once the scrape is further than that past the last
/// request, the same window anchored at the scrape would be empty: the rate is 0. Locust keeps
/// showing the last figure after traffic stops; a gauge doing that would report load that is
/// not there.
const CURRENT_RATE_STALE_AFTER_S: f64 = 12.0;

/// The statistics as Prometheus text (OpenMetrics 1.0, ending in `# EOF`), to be served with
/// [`CONTENT_TYPE`]. (The server takes the snapshot under the statistics lock and encodes
/// after releasing it; this one-call form is for tests.)
#[cfg(test)]
pub fn render(input: &MetricsInput<'_>) -> String {
    encode_snapshot(snapshot(input))
}

/// Copies what a scrape exports, so the statistics lock can be released before encoding.
pub fn snapshot(input: &MetricsInput<'_>) -> Snapshot {
    Snapshot::take(input)
}

/// Encodes a [`snapshot`] as OpenMetrics text.
pub fn encode_snapshot(snapshot: Snapshot) -> String {
    let mut registry = Registry::with_prefix("hopper");
    registry.register_collector(Box::new(SnapshotCollector(snapshot)));
    let mut out = String::new();
    // The text encoder fails only when its writer does (a String never does) or on a native
    // histogram without buckets (none here), and the collector adds no failure of its own.
    encode(&mut out, &registry).expect("encoding metrics into a String cannot fail");
    out
}

/// Everything one scrape exports, owned: a [`Collector`] must be `'static`, so it cannot
/// borrow the statistics.
#[derive(Debug)]
pub struct Snapshot {
    users: u64,
    class_users: Vec<(String, u64)>,
    workers: u64,
    state: String,
    endpoints: Vec<Endpoint>,
    /// `None` when an endpoint of its own is called `("Aggregated", "")`: a second series with
    /// the same labels would make Prometheus reject the whole scrape.
    total_fail_ratio: Option<f64>,
    current_rps: f64,
    current_fail_per_sec: f64,
    error_kinds: u64,
}

/// One (name, method) row.
#[derive(Debug)]
struct Endpoint {
    name: String,
    method: String,
    requests: u64,
    failures: u64,
    content_bytes: u64,
    fail_ratio: f64,
    response_time: TimeHistogram,
}

/// A response-time histogram in the shape the encoder takes.
#[derive(Debug)]
struct TimeHistogram {
    sum_seconds: f64,
    count: u64,
    /// `(upper bound in seconds, requests in this bucket alone)`, ending with `+Inf`: the
    /// encoder makes the counts cumulative.
    buckets: Vec<(f64, u64)>,
}

impl Snapshot {
    fn take(input: &MetricsInput<'_>) -> Self {
        let stats = input.stats;
        let total = &stats.total;
        Snapshot {
            users: input.user_count,
            class_users: input
                .class_counts
                .iter()
                .map(|(class, &n)| (class.clone(), n))
                .collect(),
            workers: input.worker_count,
            state: input.state.to_string(),
            endpoints: stats
                .entries
                .values()
                .map(|e| Endpoint {
                    name: e.name.clone(),
                    method: e.method.clone(),
                    requests: e.num_requests,
                    failures: e.num_failures,
                    content_bytes: e.total_content_length,
                    fail_ratio: e.fail_ratio(),
                    response_time: TimeHistogram::of(e),
                })
                .collect(),
            total_fail_ratio: stats
                .get(AGGREGATED_NAME, "")
                .is_none()
                .then(|| total.fail_ratio()),
            current_rps: current_rate(total.current_rps(total), total, input.now),
            current_fail_per_sec: current_rate(total.current_fail_per_sec(total), total, input.now),
            error_kinds: stats.errors.len() as u64,
        }
    }
}

/// Locust's windowed rate, or 0 once the scrape is past the window (see
/// [`CURRENT_RATE_STALE_AFTER_S`]). A master's last request comes from a worker's clock, which
/// may run ahead of ours; that only makes the difference negative, which keeps the figure.
fn current_rate(rate: PyNum, total: &StatsEntry, now: f64) -> f64 {
    match total.last_request_timestamp {
        Some(last) if now - last <= CURRENT_RATE_STALE_AFTER_S => rate.as_f64(),
        _ => 0.0,
    }
}

impl TimeHistogram {
    fn of(e: &StatsEntry) -> Self {
        // Index of the first bucket whose bound is at least `us`; the last slot is +Inf.
        let slot = |us: u64| {
            BUCKET_BOUNDS_US
                .iter()
                .position(|&bound| us <= bound)
                .unwrap_or(BUCKET_BOUNDS_US.len())
        };
        let mut counts = [0u64; BUCKET_BOUNDS_US.len() + 1];
        if e.hdr.len() == e.num_timed_requests() {
            // Each HDR bin stands for a range of values about 0.1 % wide. The bin counts toward
            // a bound when its lowest value is within it: a request at or under a bound is then
            // always counted there (a custom client reporting a whole 250 ms lands in
            // le="0.25"), at the price that one up to 0.1 % over a bound may be too.
            for bin in e.hdr.iter_recorded() {
                let lowest = e.hdr.lowest_equivalent(bin.value_iterated_to());
                counts[slot(lowest)] += bin.count_at_value();
            }
        } else {
            // The HDR histogram misses some timed requests: the row was merged from workers
            // that send only Locust's rounded buckets (Python Locust workers). Those buckets
            // cover every timed request, at about two significant digits. If a row switches
            // from HDR to rounded buckets mid-run, a bucket's count can step down once, which
            // Prometheus takes for a counter reset of that one series.
            for (&ms, &n) in &e.response_times {
                counts[slot(ms.saturating_mul(1_000))] += n;
            }
        }
        let bounds = BUCKET_BOUNDS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain(std::iter::once(f64::INFINITY));
        TimeHistogram {
            // The exact sum of the raw times, rather than one rebuilt from HDR bins.
            sum_seconds: e.total_response_time / 1_000.0,
            // From the buckets themselves, so that `_count` always equals the +Inf bucket.
            count: counts.iter().sum(),
            buckets: bounds.zip(counts).collect(),
        }
    }
}

/// The collector registered for one scrape.
#[derive(Debug)]
struct SnapshotCollector(Snapshot);

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        single_gauge(&mut enc, "users", "Users running now", s.users)?;
        if !s.class_users.is_empty() {
            family(
                &mut enc,
                "users_per_class",
                "Users running now, per user class",
                None,
                MetricType::Gauge,
                |m| {
                    for (class, n) in &s.class_users {
                        let labels = [("user_class", class.as_str())];
                        ConstGauge::new(*n).encode(m.encode_family(&labels)?)?;
                    }
                    Ok(())
                },
            )?;
        }
        single_gauge(
            &mut enc,
            "workers",
            "Connected workers (0 unless master)",
            s.workers,
        )?;
        family(
            &mut enc,
            "state",
            "Runner state: 1 for the current one",
            None,
            MetricType::Gauge,
            |m| {
                // An unexpected state still gets its 1, after the known ones.
                let extra = (!STATES.contains(&s.state.as_str())).then_some(s.state.as_str());
                for state in STATES.into_iter().chain(extra) {
                    let labels = [("state", state)];
                    let value = u64::from(state == s.state);
                    ConstGauge::new(value).encode(m.encode_family(&labels)?)?;
                }
                Ok(())
            },
        )?;

        if !s.endpoints.is_empty() {
            endpoint_family(
                &mut enc,
                "requests",
                "Requests, failed ones included",
                None,
                MetricType::Counter,
                &s.endpoints,
                |e, m| ConstCounter::new(e.requests).encode(m),
            )?;
            endpoint_family(
                &mut enc,
                "failures",
                "Failed requests",
                None,
                MetricType::Counter,
                &s.endpoints,
                |e, m| ConstCounter::new(e.failures).encode(m),
            )?;
            endpoint_family(
                &mut enc,
                "response_time",
                "Response times of requests that have one",
                Some(&Unit::Seconds),
                MetricType::Histogram,
                &s.endpoints,
                |e, mut m| {
                    let h = &e.response_time;
                    m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)
                },
            )?;
            endpoint_family(
                &mut enc,
                "response_size",
                "Response body bytes received",
                Some(&Unit::Bytes),
                MetricType::Counter,
                &s.endpoints,
                |e, m| ConstCounter::new(e.content_bytes).encode(m),
            )?;
        }
        family(
            &mut enc,
            "fail_ratio",
            "Failures per request since the start or the last reset",
            None,
            MetricType::Gauge,
            |m| {
                for e in &s.endpoints {
                    let labels = [("name", e.name.as_str()), ("method", e.method.as_str())];
                    ConstGauge::new(e.fail_ratio).encode(m.encode_family(&labels)?)?;
                }
                if let Some(ratio) = s.total_fail_ratio {
                    let labels = [("name", AGGREGATED_NAME), ("method", "")];
                    ConstGauge::new(ratio).encode(m.encode_family(&labels)?)?;
                }
                Ok(())
            },
        )?;
        single_gauge(
            &mut enc,
            "current_rps",
            "Requests per second over the last ten seconds, all endpoints",
            s.current_rps,
        )?;
        single_gauge(
            &mut enc,
            "current_fail_per_sec",
            "Failures per second over the last ten seconds, all endpoints",
            s.current_fail_per_sec,
        )?;
        single_gauge(
            &mut enc,
            "error_kinds",
            "Distinct failures (rows of the failures table)",
            s.error_kinds,
        )
    }
}

/// Writes one family: its descriptor, then whatever series `body` adds.
fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    body: impl FnOnce(&mut MetricEncoder<'_>) -> fmt::Result,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, metric_type)?;
    body(&mut m)
}

/// A family with one unlabelled gauge.
fn single_gauge<V>(enc: &mut DescriptorEncoder, name: &str, help: &str, value: V) -> fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(m)
}

/// A family with one series per endpoint, labelled `name` and `method`. The library escapes
/// the label values (`\`, `"`, newline) from 0.25.2 on; earlier 0.25 releases wrote them raw,
/// which the `label_values_are_escaped` test would catch.
fn endpoint_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    endpoints: &[Endpoint],
    series: impl Fn(&Endpoint, MetricEncoder<'_>) -> fmt::Result,
) -> fmt::Result {
    family(enc, name, help, unit, metric_type, |m| {
        for e in endpoints {
            let labels = [("name", e.name.as_str()), ("method", e.method.as_str())];
            series(e, m.encode_family(&labels)?)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    /// One sample line, label values unescaped.
    #[derive(Debug, Clone)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    fn is_metric_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    fn is_label_name(s: &str) -> bool {
        is_metric_name(s) && !s.contains(':')
    }

    /// A small OpenMetrics text parser: checks that every line is a well-formed descriptor or
    /// `name{labels} value` sample, that samples sit under their family's `# TYPE` with a
    /// suffix that type allows, that no series repeats and that the text ends with `# EOF`.
    fn parse(text: &str) -> Vec<Sample> {
        let body = text
            .strip_suffix("# EOF\n")
            .unwrap_or_else(|| panic!("no final # EOF in:\n{text}"));
        let mut family: Option<(String, String)> = None;
        let mut seen = HashSet::new();
        let mut samples = Vec::new();
        // `split_terminator`, not `lines`: a stray `\r` must stay visible.
        for line in body.split_terminator('\n') {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (kind, name, arg) = (
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                assert!(is_metric_name(name), "bad family name in {line:?}");
                assert!(name.starts_with("hopper_"), "unprefixed family {line:?}");
                match kind {
                    "HELP" => assert!(!arg.is_empty(), "empty help: {line:?}"),
                    "TYPE" => {
                        assert!(
                            ["gauge", "counter", "histogram"].contains(&arg),
                            "type {line:?}"
                        );
                        family = Some((name.to_string(), arg.to_string()));
                    }
                    "UNIT" => assert!(name.ends_with(&format!("_{arg}")), "unit {line:?}"),
                    _ => panic!("unexpected comment {line:?}"),
                }
                continue;
            }
            let sample = parse_sample(line);
            let (fam, ty) = family
                .as_ref()
                .unwrap_or_else(|| panic!("sample before any TYPE: {line:?}"));
            let suffix = sample
                .name
                .strip_prefix(fam.as_str())
                .unwrap_or_else(|| panic!("{line:?} outside its family {fam}"));
            let allowed: &[&str] = match ty.as_str() {
                "gauge" => &[""],
                "counter" => &["_total"],
                _ => &["_bucket", "_sum", "_count"],
            };
            assert!(allowed.contains(&suffix), "{line:?} in a {ty}");
            let mut key = sample.labels.clone();
            key.sort();
            assert!(
                seen.insert((sample.name.clone(), key)),
                "repeated series {line:?}"
            );
            samples.push(sample);
        }
        samples
    }

    fn parse_sample(line: &str) -> Sample {
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let name = &line[..name_end];
        assert!(is_metric_name(name), "bad metric name in {line:?}");
        let mut rest = line[name_end..].chars().peekable();
        let mut labels = Vec::new();
        if rest.peek() == Some(&'{') {
            rest.next();
            loop {
                let mut key = String::new();
                while let Some(c) = rest.next_if(|&c| c != '=') {
                    key.push(c);
                }
                assert!(is_label_name(&key), "bad label name {key:?} in {line:?}");
                assert_eq!(rest.next(), Some('='), "{line:?}");
                assert_eq!(rest.next(), Some('"'), "{line:?}");
                let mut value = String::new();
                loop {
                    match rest.next() {
                        Some('\\') => match rest.next() {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line:?}"),
                        },
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => panic!("unterminated label value in {line:?}"),
                    }
                }
                labels.push((key, value));
                match rest.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    other => panic!("expected , or }} but got {other:?} in {line:?}"),
                }
            }
        }
        assert_eq!(
            rest.next(),
            Some(' '),
            "one space before the value: {line:?}"
        );
        let value: String = rest.collect();
        let value = match value.as_str() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}")),
        };
        Sample {
            name: name.to_string(),
            labels,
            value,
        }
    }

    /// The value of the one sample with this name and exactly these labels.
    fn get(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        let found: Vec<&Sample> = samples
            .iter()
            .filter(|s| {
                let mut have = s.labels.clone();
                have.sort();
                s.name == name && have == want
            })
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    fn has_family(samples: &[Sample], prefix: &str) -> bool {
        samples.iter().any(|s| s.name.starts_with(prefix))
    }

    fn ep<'a>(name: &'a str, method: &'a str) -> [(&'a str, &'a str); 2] {
        [("name", name), ("method", method)]
    }

    /// Six timed GETs on `/` (two of them exactly on bucket bounds), one without a response
    /// time, and two failing endpoints with distinct errors.
    fn sample_stats() -> RequestStats {
        let mut s = RequestStats::new(true, 1000.0);
        let times = [
            (0.5, 1001.0),
            (1.0, 1001.1),
            (3.0, 1001.2),
            (12.0, 1002.0),
            (250.0, 1002.5),
            (70_000.0, 1003.0),
        ];
        for (ms, t) in times {
            s.log_request("GET", "/", Some(ms), 100, t);
        }
        s.log_request("GET", "/", None, 0, 1003.1);
        s.log_request("POST", "/login", Some(40.0), 7, 1003.2);
        s.log_error("POST", "/login", "CatchResponseError('bad body')", 1003.2);
        s.log_request("GET", "/missing", Some(5.0), 0, 1003.3);
        s.log_error("GET", "/missing", "HTTPError('404 Not Found')", 1003.3);
        s
    }

    fn render_with(stats: &RequestStats, state: &str, classes: &[(&str, u64)], now: f64) -> String {
        let class_counts: BTreeMap<String, u64> =
            classes.iter().map(|&(c, n)| (c.to_string(), n)).collect();
        render(&MetricsInput {
            stats,
            state,
            user_count: class_counts.values().sum(),
            class_counts: &class_counts,
            worker_count: 0,
            now,
        })
    }

    fn scrape(stats: &RequestStats) -> Vec<Sample> {
        parse(&render_with(stats, "running", &[("WebUser", 3)], 1004.0))
    }

    #[test]
    fn counters_per_endpoint() {
        let s = scrape(&sample_stats());
        assert_eq!(get(&s, "hopper_requests_total", &ep("/", "GET")), 7.0);
        assert_eq!(get(&s, "hopper_failures_total", &ep("/", "GET")), 0.0);
        assert_eq!(get(&s, "hopper_requests_total", &ep("/login", "POST")), 1.0);
        assert_eq!(get(&s, "hopper_failures_total", &ep("/login", "POST")), 1.0);
        assert_eq!(
            get(&s, "hopper_response_size_bytes_total", &ep("/", "GET")),
            600.0
        );
        assert_eq!(
            get(
                &s,
                "hopper_response_size_bytes_total",
                &ep("/login", "POST")
            ),
            7.0
        );
        assert_eq!(get(&s, "hopper_error_kinds", &[]), 2.0);
        // No Aggregated row where it would double a sum.
        assert!(!s
            .iter()
            .any(|x| x.name != "hopper_fail_ratio"
                && x.labels.iter().any(|(_, v)| v == AGGREGATED_NAME)));
    }

    #[test]
    fn exact_lines() {
        let text = render_with(&sample_stats(), "running", &[("WebUser", 3)], 1004.0);
        for line in [
            "# TYPE hopper_requests counter",
            "hopper_requests_total{name=\"/\",method=\"GET\"} 7",
            "# TYPE hopper_response_time_seconds histogram",
            "# UNIT hopper_response_time_seconds seconds",
            // The encoder writes `le` before the family's labels; order does not matter.
            "hopper_response_time_seconds_bucket{le=\"0.001\",name=\"/\",method=\"GET\"} 2",
            "hopper_response_time_seconds_bucket{le=\"+Inf\",name=\"/\",method=\"GET\"} 6",
            "hopper_response_time_seconds_count{name=\"/\",method=\"GET\"} 6",
            "hopper_response_size_bytes_total{name=\"/\",method=\"GET\"} 600",
            "hopper_fail_ratio{name=\"Aggregated\",method=\"\"} 0.2222222222222222",
            "hopper_users 3",
            "hopper_users_per_class{user_class=\"WebUser\"} 3",
            "hopper_state{state=\"running\"} 1",
            "hopper_state{state=\"ready\"} 0",
            "hopper_workers 0",
        ] {
            assert!(
                text.split('\n').any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(text.ends_with("\n# EOF\n"));
    }

    #[test]
    fn histogram_buckets() {
        let s = scrape(&sample_stats());
        let name = "hopper_response_time_seconds_bucket";
        let bucket = |le: &str| get(&s, name, &[("name", "/"), ("method", "GET"), ("le", le)]);
        // 0.5 and 1.0 ms (on the bound), 3, 12, 250 (on the bound) and 70 000 ms.
        let want = [
            ("0.001", 2.0),
            ("0.0025", 2.0),
            ("0.005", 3.0),
            ("0.01", 3.0),
            ("0.025", 4.0),
            ("0.05", 4.0),
            ("0.1", 4.0),
            ("0.25", 5.0),
            ("0.5", 5.0),
            ("1.0", 5.0),
            ("2.5", 5.0),
            ("5.0", 5.0),
            ("10.0", 5.0),
            ("30.0", 5.0),
            ("60.0", 5.0),
            ("+Inf", 6.0),
        ];
        for (le, n) in want {
            assert_eq!(bucket(le), n, "le={le}");
        }
        // The request without a response time is in the counter, not the histogram.
        assert_eq!(
            get(&s, "hopper_response_time_seconds_count", &ep("/", "GET")),
            6.0
        );
        let sum = get(&s, "hopper_response_time_seconds_sum", &ep("/", "GET"));
        assert!((sum - 70.2665).abs() < 1e-9, "{sum}");

        // Every endpoint: 16 buckets, cumulative, ending at +Inf = _count.
        for (n, m) in [("/", "GET"), ("/login", "POST"), ("/missing", "GET")] {
            let label = |x: &Sample, key: &str| {
                x.labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            // In output order, which must be ascending `le`.
            let buckets: Vec<&Sample> = s
                .iter()
                .filter(|x| x.name == name && label(x, "name") == n && label(x, "method") == m)
                .collect();
            assert_eq!(buckets.len(), BUCKET_BOUNDS_US.len() + 1);
            let les: Vec<f64> = buckets
                .iter()
                .map(|b| match label(b, "le").as_str() {
                    "+Inf" => f64::INFINITY,
                    v => v.parse().unwrap(),
                })
                .collect();
            assert!(les.windows(2).all(|w| w[0] < w[1]), "{les:?}");
            assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
            assert_eq!(les.last(), Some(&f64::INFINITY));
            assert_eq!(
                buckets.last().unwrap().value,
                get(&s, "hopper_response_time_seconds_count", &ep(n, m))
            );
        }
    }

    #[test]
    fn hdr_bin_edges() {
        // Just over a bound: 250.1 ms shares the HDR bin of 250 ms ([249.984, 250.111] ms,
        // 128 µs wide there), so counts as <= 0.25 s; 250.2 ms does not.
        let mut stats = RequestStats::new(false, 0.0);
        stats.log_request("GET", "/a", Some(250.1), 0, 1.0);
        stats.log_request("GET", "/b", Some(250.2), 0, 1.0);
        stats.log_request("GET", "/c", Some(60_000.0), 0, 1.0);
        stats.log_request("GET", "/d", Some(0.0), 0, 1.0);
        let s = scrape(&stats);
        let le = |n: &str, le: &str| {
            get(
                &s,
                "hopper_response_time_seconds_bucket",
                &[("name", n), ("method", "GET"), ("le", le)],
            )
        };
        assert_eq!(le("/a", "0.25"), 1.0);
        assert_eq!(le("/b", "0.25"), 0.0);
        assert_eq!(le("/b", "0.5"), 1.0);
        assert_eq!(le("/c", "30.0"), 0.0);
        assert_eq!(le("/c", "60.0"), 1.0);
        assert_eq!(le("/d", "0.001"), 1.0);
    }

    #[test]
    fn rounded_buckets_without_hdr() {
        // A row merged from Python workers has Locust's rounded buckets but no HDR data.
        let mut stats = RequestStats::new(false, 0.0);
        for ms in [1.4, 2.6, 40.0] {
            stats.log_request("GET", "/", Some(ms), 0, 1.0);
        }
        for e in stats.entries.values_mut() {
            e.hdr.reset();
        }
        let s = scrape(&stats);
        let le = |le: &str| {
            get(
                &s,
                "hopper_response_time_seconds_bucket",
                &[("name", "/"), ("method", "GET"), ("le", le)],
            )
        };
        // 1.4 → bucket 1 ms, 2.6 → 3 ms, 40 → 40 ms.
        assert_eq!(le("0.001"), 1.0);
        assert_eq!(le("0.0025"), 1.0);
        assert_eq!(le("0.005"), 2.0);
        assert_eq!(le("0.05"), 3.0);
        assert_eq!(le("+Inf"), 3.0);
        assert_eq!(
            get(&s, "hopper_response_time_seconds_count", &ep("/", "GET")),
            3.0
        );
    }

    #[test]
    fn counters_never_go_down_until_reset() {
        let mut stats = sample_stats();
        let before = scrape(&stats);
        stats.log_request("GET", "/", Some(0.2), 10, 1003.5);
        stats.log_request("GET", "/", Some(90_000.0), 10, 1003.6);
        stats.log_request("GET", "/new", Some(7.0), 10, 1003.7);
        stats.log_error("GET", "/", "boom", 1003.7);
        let after = scrape(&stats);
        let monotonic = |name: &str| {
            name.ends_with("_total")
                || name.ends_with("_bucket")
                || name.ends_with("_count")
                || name.ends_with("_sum")
        };
        let mut checked = 0;
        for b in before.iter().filter(|b| monotonic(&b.name)) {
            let labels: Vec<(&str, &str)> = b
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let a = get(&after, &b.name, &labels);
            assert!(
                a >= b.value,
                "{} {:?}: {} -> {a}",
                b.name,
                b.labels,
                b.value
            );
            checked += 1;
        }
        assert!(checked > 50, "{checked}");
        assert_eq!(get(&after, "hopper_requests_total", &ep("/", "GET")), 9.0);
        assert_eq!(
            get(&after, "hopper_requests_total", &ep("/new", "GET")),
            1.0
        );

        // A reset restarts them (Prometheus sees a counter reset); the names stay listed.
        stats.reset_all(2000.0);
        let reset = scrape(&stats);
        assert_eq!(get(&reset, "hopper_requests_total", &ep("/", "GET")), 0.0);
        assert_eq!(
            get(
                &reset,
                "hopper_response_time_seconds_count",
                &ep("/", "GET")
            ),
            0.0
        );
        assert_eq!(get(&reset, "hopper_error_kinds", &[]), 0.0);
    }

    #[test]
    fn label_values_are_escaped() {
        let tricky = "/a \"quoted\" \\path\nnext";
        let mut stats = RequestStats::new(true, 0.0);
        stats.log_request("GET", tricky, Some(5.0), 0, 1.0);
        let class = "Class \"B\" \\ new\nline";
        let text = render_with(&stats, "running", &[(class, 2)], 2.0);
        assert!(
            text.contains("hopper_requests_total{name=\"/a \\\"quoted\\\" \\\\path\\nnext\",method=\"GET\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("{user_class=\"Class \\\"B\\\" \\\\ new\\nline\"} 2\n"),
            "{text}"
        );
        // Round trip through the parser gives the original strings back.
        let s = parse(&text);
        assert_eq!(get(&s, "hopper_requests_total", &ep(tricky, "GET")), 1.0);
        assert_eq!(
            get(&s, "hopper_users_per_class", &[("user_class", class)]),
            2.0
        );
    }

    #[test]
    fn state_gauges() {
        let stats = RequestStats::new(true, 0.0);
        for current in STATES {
            let s = parse(&render_with(&stats, current, &[], 1.0));
            for state in STATES {
                let want = if state == current { 1.0 } else { 0.0 };
                assert_eq!(get(&s, "hopper_state", &[("state", state)]), want);
            }
        }
        // An unknown state is not lost.
        let s = parse(&render_with(&stats, "missing", &[], 1.0));
        assert_eq!(get(&s, "hopper_state", &[("state", "missing")]), 1.0);
        let states: Vec<&Sample> = s.iter().filter(|x| x.name == "hopper_state").collect();
        assert_eq!(states.len(), 7);
        assert_eq!(states.iter().map(|x| x.value).sum::<f64>(), 1.0);
    }

    #[test]
    fn user_and_worker_gauges() {
        let stats = RequestStats::new(true, 0.0);
        let class_counts: BTreeMap<String, u64> =
            [("Admin".to_string(), 2), ("WebUser".to_string(), 5)].into();
        let s = parse(&render(&MetricsInput {
            stats: &stats,
            state: "spawning",
            user_count: 7,
            class_counts: &class_counts,
            worker_count: 4,
            now: 1.0,
        }));
        assert_eq!(get(&s, "hopper_users", &[]), 7.0);
        assert_eq!(
            get(&s, "hopper_users_per_class", &[("user_class", "Admin")]),
            2.0
        );
        assert_eq!(
            get(&s, "hopper_users_per_class", &[("user_class", "WebUser")]),
            5.0
        );
        assert_eq!(get(&s, "hopper_workers", &[]), 4.0);
    }

    #[test]
    fn empty_stats_are_well_formed() {
        let stats = RequestStats::new(true, 0.0);
        let s = parse(&render_with(&stats, "ready", &[], 1.0));
        // No endpoints, so no per-endpoint families; the rest is there.
        assert!(!has_family(&s, "hopper_requests"));
        assert!(!has_family(&s, "hopper_response_time"));
        assert!(!has_family(&s, "hopper_users_per_class"));
        assert_eq!(get(&s, "hopper_users", &[]), 0.0);
        assert_eq!(get(&s, "hopper_current_rps", &[]), 0.0);
        assert_eq!(get(&s, "hopper_current_fail_per_sec", &[]), 0.0);
        assert_eq!(get(&s, "hopper_error_kinds", &[]), 0.0);
        assert_eq!(get(&s, "hopper_fail_ratio", &ep(AGGREGATED_NAME, "")), 0.0);
    }

    #[test]
    fn endpoint_named_aggregated_does_not_repeat_a_series() {
        let mut stats = RequestStats::new(true, 0.0);
        stats.log_request("", AGGREGATED_NAME, Some(5.0), 0, 1.0);
        stats.log_error("", AGGREGATED_NAME, "boom", 1.0);
        stats.log_request("GET", "/", Some(5.0), 0, 1.0);
        // `parse` rejects repeated series; the endpoint's own ratio is the one exported.
        let s = scrape(&stats);
        assert_eq!(get(&s, "hopper_fail_ratio", &ep(AGGREGATED_NAME, "")), 1.0);
    }

    #[test]
    fn fail_ratios() {
        let s = scrape(&sample_stats());
        assert_eq!(get(&s, "hopper_fail_ratio", &ep("/", "GET")), 0.0);
        assert_eq!(get(&s, "hopper_fail_ratio", &ep("/login", "POST")), 1.0);
        assert_eq!(
            get(&s, "hopper_fail_ratio", &ep(AGGREGATED_NAME, "")),
            2.0 / 9.0
        );
    }

    #[test]
    fn current_rates_match_locust_then_decay() {
        // Five requests a second from 1000 to 1019, one failure a second from 1010.
        let mut stats = RequestStats::new(true, 1000.0);
        for sec in 1000..1020 {
            for i in 0..5 {
                let t = f64::from(sec) + 0.1 * f64::from(i);
                stats.log_request("GET", "/", Some(10.0), 0, t);
                if sec >= 1010 && i == 0 {
                    stats.log_error("GET", "/", "boom", t);
                }
            }
        }
        let total = &stats.total;
        assert_eq!(total.current_rps(total), PyNum::Float(5.0));
        let at = |now: f64| parse(&render_with(&stats, "running", &[], now));
        let s = at(1020.0);
        assert_eq!(get(&s, "hopper_current_rps", &[]), 5.0);
        // Window [1007, 1017): seven seconds with one failure each.
        assert_eq!(get(&s, "hopper_current_fail_per_sec", &[]), 0.7);
        // Within twelve seconds of the last request Locust's figure stands; after, it is 0.
        assert_eq!(get(&at(1031.0), "hopper_current_rps", &[]), 5.0);
        let stale = at(1032.0);
        assert_eq!(get(&stale, "hopper_current_rps", &[]), 0.0);
        assert_eq!(get(&stale, "hopper_current_fail_per_sec", &[]), 0.0);
    }

    #[test]
    fn content_type_matches_the_format() {
        assert!(CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
        let text = render_with(&sample_stats(), "running", &[], 1004.0);
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
