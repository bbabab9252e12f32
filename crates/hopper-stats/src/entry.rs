//! One row of statistics (a request name and method, or the "Aggregated" total), with Locust's
//! fields and formulas plus an HDR histogram for precise percentiles.
//!
//! Locust keeps response times as float milliseconds in a histogram of rounded buckets (about two
//! significant digits); that histogram travels on the wire and drives every Locust-visible
//! percentile, so it is reproduced exactly here. Next to it each entry records the same samples
//! in microseconds in an HDR histogram (3 significant digits), which Hopper shows wherever Locust
//! compatibility does not force the rounded figures.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use crate::pyfmt::PyNum;

/// Percentiles in the console table and CSV files (`PERCENTILES_TO_REPORT`).
pub const PERCENTILES_TO_REPORT: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];
/// Percentiles in the web UI's table and the JSON rows (`PERCENTILES_TO_STATISTICS`).
pub const PERCENTILES_TO_STATISTICS: [f64; 2] = [0.95, 0.99];
/// Percentiles charted in the web UI and the HTML report (`PERCENTILES_TO_CHART`).
pub const PERCENTILES_TO_CHART: [f64; 2] = [0.5, 0.95];
/// Width of the window for the "current" percentiles, seconds.
pub const CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW: i64 = 10;
/// Snapshots kept in the response-times cache: the window plus 10 s of slack, so a window can
/// still be found when some seconds had no snapshot.
pub const RESPONSE_TIMES_CACHE_SIZE: usize = CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW as usize + 10;

/// Significant digits of the HDR histograms.
const HDR_SIGFIG: u8 = 3;

/// Locust's rounded histogram key for a response time in milliseconds: whole milliseconds below
/// 100, then the nearest 10, 100 and 1000 (about two significant digits, ~310 keys at most).
///
/// Python's `round` rounds the exact binary value half to even, so `2.5 → 2`, `145 → 140` and
/// `1250 → 1200`. Negative and NaN inputs (which Hopper never produces) map to 0.
pub fn bucket_response_time(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        return 0;
    }
    if ms < 100.0 {
        ms.round_ties_even() as u64
    } else if ms < 1_000.0 {
        round_to_multiple(ms, 10.0) as u64
    } else if ms < 10_000.0 {
        round_to_multiple(ms, 100.0) as u64
    } else {
        round_to_multiple(ms, 1_000.0) as u64
    }
}

/// Rounds `x` to a multiple of `step`, ties to the even multiple, judged on the exact value.
///
/// Dividing first and rounding the quotient could turn a value just off a tie into an exact tie;
/// here the tie point `lo + step/2` is an integer, so comparing `x` with it is exact. If the
/// division rounds up to the next integer, `x` lies within an ulp of that multiple and the
/// comparison still picks it.
fn round_to_multiple(x: f64, step: f64) -> f64 {
    let q = (x / step).floor();
    let lo = q * step;
    let mid = lo + step / 2.0;
    if x < mid || (x == mid && q % 2.0 == 0.0) {
        lo
    } else {
        lo + step
    }
}

/// Locust's `calculate_response_time_percentile`: with `k = int(num_requests * percent)`, walk
/// the buckets from the largest down and return the first key where the requests not yet
/// counted (those in smaller buckets) are at most `k`. 0 when nothing matches.
pub fn calculate_response_time_percentile(
    response_times: &BTreeMap<u64, u64>,
    num_requests: u64,
    percent: f64,
) -> u64 {
    let k = (num_requests as f64 * percent) as u64;
    let mut processed = 0u64;
    for (&bucket, &count) in response_times.iter().rev() {
        processed += count;
        if num_requests.saturating_sub(processed) <= k {
            return bucket;
        }
    }
    0
}

/// The buckets that grew between an old snapshot and now (Locust's `diff_response_time_dicts`).
pub fn diff_response_time_dicts(
    latest: &BTreeMap<u64, u64>,
    old: &BTreeMap<u64, u64>,
) -> BTreeMap<u64, u64> {
    latest
        .iter()
        .filter_map(|(&k, &v)| {
            let d = v.saturating_sub(old.get(&k).copied().unwrap_or(0));
            (d != 0).then_some((k, d))
        })
        .collect()
}

/// A percentile's column label: `int(p*100)%` when whole, else `round(100p, 6)%`
/// (`50%`, `99.9%`, `99.99%`, `100%`).
pub fn percentile_label(p: f64) -> String {
    let v = p * 100.0;
    if v.fract() == 0.0 {
        format!("{}%", v as i64)
    } else {
        format!("{}%", crate::pyfmt::py_float(crate::pyfmt::py_round(v, 6)))
    }
}

/// A snapshot of an entry's histogram, taken once per second, for the "current" percentiles.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResponseTimes {
    /// The rounded histogram at that moment.
    pub response_times: BTreeMap<u64, u64>,
    /// `num_requests` at that moment.
    pub num_requests: u64,
    /// `num_none_requests` at that moment.
    pub num_none_requests: u64,
}

/// One row of statistics: Locust's `StatsEntry`, plus an HDR histogram.
#[derive(Clone)]
pub struct StatsEntry {
    /// Request name (URL or the `name=` given).
    pub name: String,
    /// Request type: `GET`, `POST`, or a custom type. Empty for the Aggregated row.
    pub method: String,
    /// All requests, failures and requests without a response time included.
    pub num_requests: u64,
    /// Requests reported without a response time (excluded from every time statistic).
    pub num_none_requests: u64,
    /// Failed requests.
    pub num_failures: u64,
    /// Sum of the raw response times, ms.
    pub total_response_time: f64,
    /// Smallest raw response time, ms; `None` before the first timed request.
    pub min_response_time: Option<f64>,
    /// Largest raw response time, ms; 0 before the first timed request.
    pub max_response_time: f64,
    /// Rounded-millisecond histogram (keys from [`bucket_response_time`]).
    pub response_times: BTreeMap<u64, u64>,
    /// Requests per wall-clock second (key: whole epoch second).
    pub num_reqs_per_sec: BTreeMap<i64, u64>,
    /// Failures per wall-clock second; seconds without failures have no key.
    pub num_fail_per_sec: BTreeMap<i64, u64>,
    /// Sum of response body lengths, bytes.
    pub total_content_length: u64,
    /// Epoch seconds of creation or of the last reset.
    pub start_time: f64,
    /// Epoch seconds of the latest request; `None` before the first.
    pub last_request_timestamp: Option<f64>,
    /// The same response times in microseconds, 3 significant digits, auto-resizing so an entry
    /// that only ever sees fast requests stays small.
    pub hdr: Histogram<u64>,
    /// Whether per-second snapshots are kept (Locust disables them on workers).
    pub use_response_times_cache: bool,
    /// Per-second snapshots, oldest first, at most [`RESPONSE_TIMES_CACHE_SIZE`]; the order is
    /// insertion order, as Locust's `OrderedDict`.
    pub response_times_cache: VecDeque<(i64, CachedResponseTimes)>,
    /// When this entry was created relative to every other ([`next_creation_order`]); a reset
    /// keeps it. Locust's entries live in an insertion-ordered dict, and `--json` lists them in
    /// that order, which the sorted map here cannot tell.
    pub creation_order: u64,
}

/// An entry's counters and extremes: what [`StatsEntry::extend`] merges besides its
/// histograms and per-second counts. A master that reads a worker's report straight from its
/// bytes merges it with [`StatsEntry::extend_parts`] from these and borrowed counts, without
/// building a [`StatsEntry`] per report entry.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EntryFigures {
    /// See [`StatsEntry::num_requests`].
    pub num_requests: u64,
    /// See [`StatsEntry::num_none_requests`].
    pub num_none_requests: u64,
    /// See [`StatsEntry::num_failures`].
    pub num_failures: u64,
    /// See [`StatsEntry::total_response_time`].
    pub total_response_time: f64,
    /// See [`StatsEntry::min_response_time`].
    pub min_response_time: Option<f64>,
    /// See [`StatsEntry::max_response_time`].
    pub max_response_time: f64,
    /// See [`StatsEntry::total_content_length`].
    pub total_content_length: u64,
    /// See [`StatsEntry::start_time`].
    pub start_time: f64,
    /// See [`StatsEntry::last_request_timestamp`].
    pub last_request_timestamp: Option<f64>,
}

impl EntryFigures {
    /// Zero counts, started at `start_time`: what an entry without any figures has.
    pub fn empty(start_time: f64) -> Self {
        EntryFigures {
            start_time,
            ..EntryFigures::default()
        }
    }

    /// Requests with a response time (see [`StatsEntry::num_timed_requests`]).
    pub fn num_timed_requests(&self) -> u64 {
        self.num_requests.saturating_sub(self.num_none_requests)
    }
}

/// A process-wide increasing number, so rows created later sort after rows created earlier
/// (Python dicts keep insertion order; Hopper's maps are sorted by key instead).
pub fn next_creation_order() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl fmt::Debug for StatsEntry {
    // The HDR counts array has thousands of slots; show its summary instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsEntry")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("num_requests", &self.num_requests)
            .field("num_none_requests", &self.num_none_requests)
            .field("num_failures", &self.num_failures)
            .field("total_response_time", &self.total_response_time)
            .field("min_response_time", &self.min_response_time)
            .field("max_response_time", &self.max_response_time)
            .field("response_times", &self.response_times)
            .field("num_reqs_per_sec", &self.num_reqs_per_sec)
            .field("num_fail_per_sec", &self.num_fail_per_sec)
            .field("total_content_length", &self.total_content_length)
            .field("start_time", &self.start_time)
            .field("last_request_timestamp", &self.last_request_timestamp)
            .field("hdr_len", &self.hdr.len())
            .field("cached_seconds", &self.response_times_cache.len())
            .finish()
    }
}

/// A new empty auto-resizing HDR histogram in microseconds.
pub fn new_hdr() -> Histogram<u64> {
    // 3 significant digits is always a valid configuration.
    Histogram::new(HDR_SIGFIG).expect("valid HDR configuration")
}

/// The smallest histogram there is (one significant digit, 32 counters): what a carrier
/// entry holds instead of a real one. Empty, so merging it adds nothing.
fn placeholder_hdr() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 2, 1).expect("valid HDR configuration")
}

/// Milliseconds to the HDR's whole microseconds, rounded to nearest.
fn ms_to_us(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        0
    } else {
        (ms * 1000.0).round() as u64
    }
}

/// Nanoseconds to the HDR's whole microseconds, rounded to nearest.
pub(crate) fn ns_to_us(ns: u64) -> u64 {
    ns / 1000 + u64::from(ns % 1000 >= 500)
}

/// HDR values past what an auto-resizing histogram can hold (`i64::MAX / 2`) are clamped, so
/// a corrupt time cannot make recording fail.
/// The largest response time an HDR histogram records (a day, in µs): an auto-resizing
/// histogram grows with its largest value, so a worker reporting absurd times must not make
/// the master allocate for them. Longer times are recorded as a day.
pub const HDR_MAX_US: u64 = 86_400_000_000;

/// Records into an HDR histogram without failing.
pub(crate) fn hdr_record(h: &mut Histogram<u64>, us: u64) {
    let _ = h.record(us.min(HDR_MAX_US));
}

impl StatsEntry {
    /// A fresh entry whose `start_time` is `now` (epoch seconds). With the cache on, an empty
    /// snapshot for the current second is stored right away, as Locust's `reset()` does.
    pub fn new(name: &str, method: &str, use_response_times_cache: bool, now: f64) -> Self {
        let mut e = StatsEntry {
            hdr: new_hdr(),
            use_response_times_cache,
            ..StatsEntry::new_bare(name, method, now)
        };
        if use_response_times_cache {
            e.cache_response_times(now as i64);
        }
        e
    }

    /// An entry that only carries figures read from elsewhere (a worker's report off the
    /// wire), never recorded into: its histogram is a tiny empty placeholder rather than a
    /// full microsecond one (16 KB), because a report's precise times travel apart from its
    /// entries and go straight into the master's own histograms. The reference reading of a
    /// worker's report builds these (a master's fast path merges without them).
    pub fn new_carrier(name: &str, method: &str, now: f64) -> Self {
        StatsEntry::new_bare(name, method, now)
    }

    /// Zero figures, no cache, a placeholder histogram.
    fn new_bare(name: &str, method: &str, now: f64) -> Self {
        StatsEntry {
            name: name.to_string(),
            method: method.to_string(),
            num_requests: 0,
            num_none_requests: 0,
            num_failures: 0,
            total_response_time: 0.0,
            min_response_time: None,
            max_response_time: 0.0,
            response_times: BTreeMap::new(),
            num_reqs_per_sec: BTreeMap::new(),
            num_fail_per_sec: BTreeMap::new(),
            total_content_length: 0,
            start_time: now,
            last_request_timestamp: None,
            hdr: placeholder_hdr(),
            use_response_times_cache: false,
            response_times_cache: VecDeque::new(),
            creation_order: next_creation_order(),
        }
    }

    /// Zeroes every figure and restarts the clock at `now` (Locust's `reset()`); name, method and
    /// the cache setting stay.
    pub fn reset(&mut self, now: f64) {
        self.start_time = now;
        self.num_requests = 0;
        self.num_none_requests = 0;
        self.num_failures = 0;
        self.total_response_time = 0.0;
        self.response_times.clear();
        self.min_response_time = None;
        self.max_response_time = 0.0;
        self.last_request_timestamp = None;
        self.num_reqs_per_sec.clear();
        self.num_fail_per_sec.clear();
        self.total_content_length = 0;
        // A fresh small histogram rather than `Histogram::reset`, which would keep a grown
        // counts array alive.
        self.hdr = new_hdr();
        self.response_times_cache.clear();
        if self.use_response_times_cache {
            self.cache_response_times(now as i64);
        }
    }

    /// Logs one request at wall time `now` (Locust's `log()`): `None` response time counts the
    /// request but leaves the time statistics alone.
    pub fn log(&mut self, response_time_ms: Option<f64>, content_length: u64, now: f64) {
        let t = now as i64;
        if self.use_response_times_cache {
            if let Some(last) = self.last_request_timestamp {
                // Entering a new second: the histogram as it stood is the snapshot for `t - 1`.
                if last != 0.0 && t > last as i64 {
                    self.cache_response_times(t - 1);
                }
            }
        }
        self.num_requests += 1;
        *self.num_reqs_per_sec.entry(t).or_insert(0) += 1;
        self.last_request_timestamp = Some(now);
        match response_time_ms {
            None => self.num_none_requests += 1,
            Some(rt) => {
                self.total_response_time += rt;
                self.min_response_time = Some(self.min_response_time.map_or(rt, |m| m.min(rt)));
                self.max_response_time = self.max_response_time.max(rt);
                *self
                    .response_times
                    .entry(bucket_response_time(rt))
                    .or_insert(0) += 1;
                hdr_record(&mut self.hdr, ms_to_us(rt));
            }
        }
        self.total_content_length += content_length;
    }

    /// Counts one failure at wall time `now` (Locust's `log_error()`; the request itself is
    /// logged separately with [`StatsEntry::log`]).
    pub fn log_error(&mut self, now: f64) {
        self.num_failures += 1;
        *self.num_fail_per_sec.entry(now as i64).or_insert(0) += 1;
    }

    /// Requests with a response time: the population of every time statistic.
    pub fn num_timed_requests(&self) -> u64 {
        self.num_requests.saturating_sub(self.num_none_requests)
    }

    /// Failures per request; 1.0 when there are failures but no requests.
    pub fn fail_ratio(&self) -> f64 {
        if self.num_requests == 0 {
            if self.num_failures > 0 {
                1.0
            } else {
                0.0
            }
        } else {
            self.num_failures as f64 / self.num_requests as f64
        }
    }

    /// `max_response_time` as Python holds it: it starts as the int `0` and `max(0, rt)` keeps
    /// the int until a positive time arrives, so an entry without timed requests writes `0`
    /// where one with them writes `145.0`.
    pub fn max_response_time_py(&self) -> PyNum {
        if self.max_response_time == 0.0 {
            PyNum::Int(0)
        } else {
            PyNum::Float(self.max_response_time)
        }
    }

    /// `total_response_time` as Python holds it: the int `0` until the first timed request adds
    /// a float.
    pub fn total_response_time_py(&self) -> PyNum {
        if self.num_timed_requests() == 0 {
            PyNum::Int(0)
        } else {
            PyNum::Float(self.total_response_time)
        }
    }

    /// Locust's `min_response_time or 0` (CSV files): the int `0` when unset (or zero).
    pub fn min_response_time_or_zero(&self) -> PyNum {
        match self.min_response_time {
            Some(m) if m != 0.0 => PyNum::Float(m),
            _ => PyNum::Int(0),
        }
    }

    /// Mean raw response time, ms; 0.0 without timed requests.
    pub fn avg_response_time(&self) -> f64 {
        match self.num_timed_requests() {
            0 => 0.0,
            n => self.total_response_time / n as f64,
        }
    }

    /// The bucketed median clamped into `[min, max]`: an int bucket, or the raw float bound when
    /// clamped (a single 5.46 ms request has median `5.46`, not bucket 5). `0` when empty.
    pub fn median_response_time(&self) -> PyNum {
        if self.response_times.is_empty() {
            return PyNum::Int(0);
        }
        let median = calculate_response_time_percentile(
            &self.response_times,
            self.num_timed_requests(),
            0.5,
        );
        let m = median as f64;
        if m > self.max_response_time {
            PyNum::Float(self.max_response_time)
        } else if self.min_response_time.is_some_and(|min| m < min) {
            PyNum::Float(self.min_response_time.unwrap_or_default())
        } else {
            PyNum::Int(median as i64)
        }
    }

    /// Locust's whole-run percentile (`percent` in 0.0–1.0) from the rounded buckets; not clamped,
    /// so 99 % can exceed the max.
    pub fn get_response_time_percentile(&self, percent: f64) -> u64 {
        calculate_response_time_percentile(&self.response_times, self.num_timed_requests(), percent)
    }

    /// The percentile over roughly the last 10 seconds, at wall time `now`: the histogram minus
    /// the snapshot from `now - 10` (or the nearest of `now - 11`, `now - 9`, … `now - 18`,
    /// `now - 2`). `None` without a usable snapshot or with the cache off.
    pub fn get_current_response_time_percentile(&self, percent: f64, now: f64) -> Option<u64> {
        let t = now as i64;
        let w = CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW;
        let candidates = std::iter::once(t - w).chain((1..9).flat_map(|i| [t - w - i, t - w + i]));
        let cached = candidates.filter_map(|ts| self.cached_at(ts)).next()?;
        let n = self
            .num_timed_requests()
            .saturating_sub(cached.num_requests.saturating_sub(cached.num_none_requests));
        Some(calculate_response_time_percentile(
            &diff_response_time_dicts(&self.response_times, &cached.response_times),
            n,
            percent,
        ))
    }

    fn cached_at(&self, second: i64) -> Option<&CachedResponseTimes> {
        self.response_times_cache
            .iter()
            .find(|(s, _)| *s == second)
            .map(|(_, c)| c)
    }

    /// Requests per second over the ten whole seconds ending three seconds before the latest
    /// request anywhere: `[max(int(G.last) - 12, int(G.start)), int(G.last) - 2)` where `G` is
    /// the total (Aggregated) entry, even for per-name rows. `0` (int) before any request, `0.0`
    /// for an empty window. Anchored on the last request, so it freezes once traffic stops.
    pub fn current_rps(&self, total: &StatsEntry) -> PyNum {
        windowed_rate(&self.num_reqs_per_sec, total)
    }

    /// Failures per second over the same window as [`StatsEntry::current_rps`].
    pub fn current_fail_per_sec(&self, total: &StatsEntry) -> PyNum {
        windowed_rate(&self.num_fail_per_sec, total)
    }

    /// Requests per second over the whole run, timed by the total entry: `num_requests /
    /// (G.last - G.start)`, 0.0 when either is unset or zero.
    pub fn total_rps(&self, total: &StatsEntry) -> f64 {
        whole_run_rate(self.num_requests, total)
    }

    /// Failures per second over the whole run (see [`StatsEntry::total_rps`]).
    pub fn total_fail_per_sec(&self, total: &StatsEntry) -> f64 {
        whole_run_rate(self.num_failures, total)
    }

    /// Mean body length per request; `0` (int) without requests.
    pub fn avg_content_length(&self) -> PyNum {
        if self.num_requests == 0 {
            PyNum::Int(0)
        } else {
            PyNum::Float(self.total_content_length as f64 / self.num_requests as f64)
        }
    }

    /// Precise percentile from the HDR histogram, ms (`q` in 0.0–1.0); 0.0 when the histogram is
    /// empty (for instance an entry merged from Python Locust workers, which send no HDR data).
    pub fn precise_percentile(&self, q: f64) -> f64 {
        if self.hdr.is_empty() {
            return 0.0;
        }
        // HDR reports the top of a bucket (3 significant digits), which can lie just above
        // the exact max (or below the exact min): clamp into the observed range.
        let value = self.hdr.value_at_quantile(q) as f64 / 1000.0;
        let min = self.min_response_time.unwrap_or(0.0);
        value.clamp(min, self.max_response_time.max(min))
    }

    /// Merges another entry into this one (Locust's `extend`, the master's merge of a worker
    /// report): counters, histograms and per-second maps summed key-wise, min of mins, max of
    /// maxes, earliest start, latest last request. With the cache on, a snapshot is taken when
    /// the merged last request enters a new second.
    pub fn extend(&mut self, other: &StatsEntry) {
        // Only fails if the counts array cannot be indexed by usize; the HDR view is advisory.
        // An empty one (a carrier's placeholder) adds nothing, and walking it costs.
        if !other.hdr.is_empty() {
            let _ = self.hdr.add(&other.hdr);
        }
        self.extend_parts(
            &other.figures(),
            pairs(&other.response_times),
            pairs(&other.num_reqs_per_sec),
            pairs(&other.num_fail_per_sec),
        );
    }

    /// [`StatsEntry::extend`] from an entry's parts, the HDR histogram aside: its figures,
    /// rounded-millisecond buckets and per-second requests and failures as `(key, count)`
    /// pairs (any order; a key given twice counts twice).
    pub fn extend_parts(
        &mut self,
        other: &EntryFigures,
        response_times: impl IntoIterator<Item = (u64, u64)>,
        num_reqs_per_sec: impl IntoIterator<Item = (i64, u64)>,
        num_fail_per_sec: impl IntoIterator<Item = (i64, u64)>,
    ) {
        let old_last = self.last_request_timestamp;
        self.last_request_timestamp =
            match (self.last_request_timestamp, other.last_request_timestamp) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        self.start_time = self.start_time.min(other.start_time);
        self.num_requests += other.num_requests;
        self.num_none_requests += other.num_none_requests;
        self.num_failures += other.num_failures;
        self.total_response_time += other.total_response_time;
        self.max_response_time = self.max_response_time.max(other.max_response_time);
        self.min_response_time = match (self.min_response_time, other.min_response_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.total_content_length += other.total_content_length;
        add_pairs(&mut self.response_times, response_times);
        add_pairs(&mut self.num_reqs_per_sec, num_reqs_per_sec);
        add_pairs(&mut self.num_fail_per_sec, num_fail_per_sec);
        self.cache_after_merge(old_last);
    }

    /// The entry's counters and extremes.
    pub fn figures(&self) -> EntryFigures {
        EntryFigures {
            num_requests: self.num_requests,
            num_none_requests: self.num_none_requests,
            num_failures: self.num_failures,
            total_response_time: self.total_response_time,
            min_response_time: self.min_response_time,
            max_response_time: self.max_response_time,
            total_content_length: self.total_content_length,
            start_time: self.start_time,
            last_request_timestamp: self.last_request_timestamp,
        }
    }

    /// Sets the entry's counters and extremes to `f`.
    pub fn set_figures(&mut self, f: &EntryFigures) {
        self.num_requests = f.num_requests;
        self.num_none_requests = f.num_none_requests;
        self.num_failures = f.num_failures;
        self.total_response_time = f.total_response_time;
        self.min_response_time = f.min_response_time;
        self.max_response_time = f.max_response_time;
        self.total_content_length = f.total_content_length;
        self.start_time = f.start_time;
        self.last_request_timestamp = f.last_request_timestamp;
    }

    /// Takes the snapshot `extend` takes: keyed by the merged last second, when it moved on.
    pub(crate) fn cache_after_merge(&mut self, old_last: Option<f64>) {
        if !self.use_response_times_cache {
            return;
        }
        let Some(last) = self.last_request_timestamp else {
            return;
        };
        let last_time = last as i64;
        let old_time = old_last.map_or(0, |o| o as i64);
        if last_time != 0 && last_time > old_time {
            self.cache_response_times(last_time);
        }
    }

    /// Stores a snapshot for second `t`, replacing one already there, and keeps the newest
    /// [`RESPONSE_TIMES_CACHE_SIZE`] by insertion order.
    pub fn cache_response_times(&mut self, t: i64) {
        let snapshot = CachedResponseTimes {
            response_times: self.response_times.clone(),
            num_requests: self.num_requests,
            num_none_requests: self.num_none_requests,
        };
        if let Some(slot) = self.response_times_cache.iter_mut().find(|(s, _)| *s == t) {
            slot.1 = snapshot;
        } else {
            self.response_times_cache.push_back((t, snapshot));
        }
        while self.response_times_cache.len() > RESPONSE_TIMES_CACHE_SIZE {
            self.response_times_cache.pop_front();
        }
    }
}

/// Adds `(key, count)` pairs into `dst` key by key.
fn add_pairs<K: Ord>(dst: &mut BTreeMap<K, u64>, src: impl IntoIterator<Item = (K, u64)>) {
    for (k, v) in src {
        *dst.entry(k).or_insert(0) += v;
    }
}

/// A map's `(key, count)` pairs by value.
fn pairs<K: Copy>(m: &BTreeMap<K, u64>) -> impl Iterator<Item = (K, u64)> + '_ {
    m.iter().map(|(&k, &v)| (k, v))
}

fn windowed_rate(per_sec: &BTreeMap<i64, u64>, total: &StatsEntry) -> PyNum {
    let Some(last) = total.last_request_timestamp else {
        return PyNum::Int(0);
    };
    let last = last as i64;
    let start = (last - 12).max(total.start_time as i64);
    let end = last - 2;
    if start >= end {
        return PyNum::Float(0.0);
    }
    let sum: u64 = per_sec.range(start..end).map(|(_, &v)| v).sum();
    PyNum::Float(sum as f64 / (end - start) as f64)
}

fn whole_run_rate(count: u64, total: &StatsEntry) -> f64 {
    match total.last_request_timestamp {
        Some(last) if last != 0.0 && total.start_time != 0.0 => {
            let span = last - total.start_time;
            if span == 0.0 {
                0.0
            } else {
                count as f64 / span
            }
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(u64, u64)]) -> BTreeMap<u64, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn buckets_round_half_even() {
        let cases: [(f64, u64); 17] = [
            (2.5, 2),
            (3.5, 4),
            (0.4, 0),
            (99.4, 99),
            (99.5, 100),
            (145.0, 140),
            (155.0, 160),
            (147.0, 150),
            (144.9999, 140),
            (145.00000000000003, 150),
            (1250.0, 1200),
            (1350.0, 1400),
            (3432.0, 3400),
            (58760.0, 59000),
            (10500.0, 10000),
            (11500.0, 12000),
            (999.5, 1000),
        ];
        for (ms, want) in cases {
            assert_eq!(bucket_response_time(ms), want, "bucket({ms})");
        }
        assert_eq!(bucket_response_time(-1.0), 0);
        assert_eq!(bucket_response_time(f64::NAN), 0);
    }

    #[test]
    fn percentile_worked_example() {
        let h = hist(&[(2, 4), (3, 5), (4, 1), (15, 2), (16, 1)]);
        assert_eq!(calculate_response_time_percentile(&h, 13, 0.95), 16);
        assert_eq!(calculate_response_time_percentile(&h, 13, 0.5), 3);
        assert_eq!(calculate_response_time_percentile(&h, 13, 1.0), 16);
        assert_eq!(calculate_response_time_percentile(&h, 13, 0.0), 2);
        assert_eq!(
            calculate_response_time_percentile(&BTreeMap::new(), 0, 0.5),
            0
        );
    }

    #[test]
    fn percentile_labels() {
        let labels: Vec<String> = PERCENTILES_TO_REPORT
            .iter()
            .map(|&p| percentile_label(p))
            .collect();
        assert_eq!(
            labels,
            ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
        );
    }

    fn entry_with(times: &[f64]) -> StatsEntry {
        let mut e = StatsEntry::new("/", "GET", false, 1000.0);
        for &t in times {
            e.log(Some(t), 0, 1001.0);
        }
        e
    }

    #[test]
    fn median_is_clamped() {
        // A single 5.46 ms request: bucket 5 is below the min, so the median is the raw min.
        let e = entry_with(&[5.463743000007071]);
        assert_eq!(e.median_response_time(), PyNum::Float(5.463743000007071));
        // A single 4.6 ms request: bucket 5 is above the max.
        let e = entry_with(&[4.6]);
        assert_eq!(e.median_response_time(), PyNum::Float(4.6));
        // Enough spread that the bucket lies within [min, max].
        let e = entry_with(&[1.2, 3.0, 3.2, 9.7]);
        assert_eq!(e.median_response_time(), PyNum::Int(3));
        // Nothing timed.
        let mut e = StatsEntry::new("/", "GET", false, 1000.0);
        assert_eq!(e.median_response_time(), PyNum::Int(0));
        e.log(None, 0, 1001.0);
        assert_eq!(e.median_response_time(), PyNum::Int(0));
        assert_eq!(e.get_response_time_percentile(0.5), 0);
    }

    #[test]
    fn percentiles_exclude_none_requests() {
        let mut e = entry_with(&[2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.0, 15.0, 15.0, 16.0]);
        e.log(None, 0, 1001.0);
        // 11 timed requests: k = int(11 * 0.95) = 10 → 16 would need 11 - 1 <= 10, yes.
        assert_eq!(e.get_response_time_percentile(0.95), 16);
        assert_eq!(e.num_timed_requests(), 11);
        assert_eq!(e.avg_response_time(), 69.0 / 11.0);
    }

    fn total_at(start: f64, last: Option<f64>) -> StatsEntry {
        let mut t = StatsEntry::new("Aggregated", "", false, start);
        t.last_request_timestamp = last;
        t
    }

    #[test]
    fn current_rps_window() {
        let mut e = StatsEntry::new("/", "GET", false, 0.0);
        // Seconds 988..=1000 each carry (second - 980) requests.
        for s in 988..=1000i64 {
            e.num_reqs_per_sec.insert(s, (s - 980) as u64);
        }
        e.num_fail_per_sec.insert(990, 4);
        e.num_fail_per_sec.insert(997, 6);
        e.num_fail_per_sec.insert(998, 100);

        // No request yet anywhere: int 0.
        let g = total_at(900.0, None);
        assert_eq!(e.current_rps(&g), PyNum::Int(0));
        assert_eq!(e.current_fail_per_sec(&g), PyNum::Int(0));

        // last = 1000.7 → window [988, 998): (8 + … + 17) / 10 = 12.5; failures (4+6)/10.
        let g = total_at(900.0, Some(1000.7));
        assert_eq!(e.current_rps(&g), PyNum::Float(12.5));
        assert_eq!(e.current_fail_per_sec(&g), PyNum::Float(1.0));

        // Start clamps the window: start 995.9 → [995, 998): (15 + 16 + 17) / 3.
        let g = total_at(995.9, Some(1000.7));
        assert_eq!(e.current_rps(&g), PyNum::Float(16.0));

        // Empty window (start too late): float 0.0.
        let g = total_at(999.0, Some(1000.7));
        assert_eq!(e.current_rps(&g), PyNum::Float(0.0));
        assert_eq!(e.current_fail_per_sec(&g), PyNum::Float(0.0));
    }

    #[test]
    fn whole_run_rates_and_ratios() {
        let mut e = StatsEntry::new("/", "GET", false, 100.0);
        for _ in 0..30 {
            e.log(Some(1.0), 10, 101.0);
        }
        for _ in 0..6 {
            e.log_error(101.0);
        }
        let g = total_at(100.0, Some(110.0));
        assert_eq!(e.total_rps(&g), 3.0);
        assert_eq!(e.total_fail_per_sec(&g), 0.6);
        assert_eq!(e.fail_ratio(), 0.2);
        assert_eq!(e.avg_content_length(), PyNum::Float(10.0));
        assert_eq!(e.total_rps(&total_at(100.0, None)), 0.0);
        assert_eq!(e.total_rps(&total_at(0.0, Some(110.0))), 0.0);
        assert_eq!(e.total_rps(&total_at(110.0, Some(110.0))), 0.0);

        let mut f = StatsEntry::new("/", "GET", false, 100.0);
        assert_eq!(f.fail_ratio(), 0.0);
        assert_eq!(f.avg_content_length(), PyNum::Int(0));
        f.log_error(101.0);
        assert_eq!(f.fail_ratio(), 1.0);
    }

    #[test]
    fn extend_merges_like_locust() {
        let mut a = StatsEntry::new("/", "GET", false, 100.0);
        a.log(Some(2.0), 5, 101.5);
        a.log(Some(150.0), 5, 102.5);
        a.log_error(102.5);
        let mut b = StatsEntry::new("/", "GET", false, 99.0);
        b.log(Some(1.0), 7, 102.2);
        b.log(None, 0, 103.9);
        b.log_error(103.9);

        a.extend(&b);
        assert_eq!(a.num_requests, 4);
        assert_eq!(a.num_none_requests, 1);
        assert_eq!(a.num_failures, 2);
        assert_eq!(a.total_response_time, 153.0);
        assert_eq!(a.min_response_time, Some(1.0));
        assert_eq!(a.max_response_time, 150.0);
        assert_eq!(a.total_content_length, 17);
        assert_eq!(a.start_time, 99.0);
        assert_eq!(a.last_request_timestamp, Some(103.9));
        assert_eq!(a.response_times, hist(&[(1, 1), (2, 1), (150, 1)]));
        assert_eq!(
            a.num_reqs_per_sec,
            [(101, 1), (102, 2), (103, 1)].into_iter().collect()
        );
        assert_eq!(
            a.num_fail_per_sec,
            [(102, 1), (103, 1)].into_iter().collect()
        );
        assert_eq!(a.hdr.len(), 3);

        // Merging into an empty entry takes the other's min and last.
        let mut c = StatsEntry::new("/", "GET", false, 200.0);
        c.extend(&b);
        assert_eq!(c.min_response_time, Some(1.0));
        assert_eq!(c.last_request_timestamp, Some(103.9));
        assert_eq!(c.start_time, 99.0);
    }

    #[test]
    fn extend_caches_on_new_second() {
        let mut a = StatsEntry::new("/", "GET", true, 100.0);
        assert_eq!(a.response_times_cache.len(), 1); // reset's snapshot at 100
        let mut b = StatsEntry::new("/", "GET", false, 100.0);
        b.log(Some(5.0), 0, 101.2);
        a.extend(&b);
        assert_eq!(a.response_times_cache.back().map(|(s, _)| *s), Some(101));
        assert_eq!(a.response_times_cache.back().unwrap().1.num_requests, 1);
        // Same second again: no new snapshot.
        a.extend(&b);
        assert_eq!(a.response_times_cache.len(), 2);
    }

    #[test]
    fn current_percentile_uses_snapshot() {
        let mut e = StatsEntry::new("/", "GET", true, 1000.0);
        // Slow requests long ago, then fast ones.
        for _ in 0..10 {
            e.log(Some(900.0), 0, 1000.5);
        }
        for s in 1001..1020 {
            e.log(Some(3.0), 0, s as f64 + 0.5);
        }
        // At 1020 the window starts from the snapshot for 1010 (state at the end of 1010).
        assert_eq!(e.get_current_response_time_percentile(1.0, 1020.3), Some(3));
        // Whole run still sees the slow ones.
        assert_eq!(e.get_response_time_percentile(1.0), 900);
        // Cache capped at 20 snapshots.
        assert!(e.response_times_cache.len() <= RESPONSE_TIMES_CACHE_SIZE);
        // Far in the future no snapshot is near enough.
        assert_eq!(e.get_current_response_time_percentile(0.5, 5000.0), None);
        let off = StatsEntry::new("/", "GET", false, 1000.0);
        assert_eq!(off.get_current_response_time_percentile(0.5, 1010.0), None);
    }

    #[test]
    fn hdr_precise_percentiles() {
        let mut e = StatsEntry::new("/", "GET", false, 0.0);
        // 1..=1000 ms in 1 ms steps: p50 = 500 ms, p99 = 990 ms, within 0.1 %.
        for i in 1..=1000 {
            e.log(Some(i as f64), 0, 1.0);
        }
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(
            close(e.precise_percentile(0.5), 500.0),
            "{}",
            e.precise_percentile(0.5)
        );
        assert!(
            close(e.precise_percentile(0.99), 990.0),
            "{}",
            e.precise_percentile(0.99)
        );
        assert!(
            close(e.precise_percentile(1.0), 1000.0),
            "{}",
            e.precise_percentile(1.0)
        );
        // Sub-millisecond values keep microsecond resolution (exact below 2048 µs).
        let mut f = StatsEntry::new("/", "GET", false, 0.0);
        f.log(Some(0.123), 0, 1.0);
        assert_eq!(f.precise_percentile(0.5), 0.123);
        assert_eq!(
            StatsEntry::new("/", "GET", false, 0.0).precise_percentile(0.5),
            0.0
        );
        assert_eq!(ns_to_us(1_499), 1);
        assert_eq!(ns_to_us(1_500), 2);
    }

    #[test]
    fn reset_zeroes_in_place() {
        let mut e = entry_with(&[3.0, 4.0]);
        e.log_error(1001.0);
        e.reset(2000.0);
        assert_eq!(e.num_requests, 0);
        assert_eq!(e.num_failures, 0);
        assert_eq!(e.min_response_time, None);
        assert_eq!(e.max_response_time, 0.0);
        assert!(e.response_times.is_empty() && e.num_reqs_per_sec.is_empty());
        assert!(e.hdr.is_empty());
        assert_eq!(e.start_time, 2000.0);
        assert_eq!(e.last_request_timestamp, None);
        assert_eq!((e.name.as_str(), e.method.as_str()), ("/", "GET"));
    }
}
