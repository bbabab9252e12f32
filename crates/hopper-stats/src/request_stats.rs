//! The merged statistics of a run: every entry, the Aggregated total, failures and task
//! exceptions (Locust's `RequestStats` plus the runner's exception table).
//!
//! This is the one view that console, CSV, JSON, web UI, HTML report and worker reports all read.
//! Its methods take the wall time as an argument so that tests, and a master replaying worker
//! reports, control the clock.

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::{next_creation_order, StatsEntry};
use crate::errors::{error_key, exception_key, StatsError, TaskException};
use crate::history::HistoryPoint;

/// Name of the total row.
pub const AGGREGATED_NAME: &str = "Aggregated";

/// All statistics of a run.
#[derive(Debug, Clone)]
pub struct RequestStats {
    /// Entries keyed by (name, method); the map's order is Locust's `sorted(entries)`.
    pub entries: BTreeMap<(String, String), StatsEntry>,
    /// The total: name `"Aggregated"`, method `""`, fed by every request.
    pub total: StatsEntry,
    /// Failures keyed by Locust's error key ([`error_key`]).
    pub errors: BTreeMap<String, StatsError>,
    /// Task exceptions keyed by [`exception_key`] of the traceback.
    pub exceptions: BTreeMap<u64, TaskException>,
    /// Chart points, oldest first (Locust's `stats.history`; see [`crate::history_point`]).
    pub history: Vec<HistoryPoint>,
    /// Whether entries keep per-second snapshots for the "current" percentiles (Locust turns
    /// them off on workers, which only ship deltas). Applies to entries created afterwards and
    /// to the total at the next reset or clear.
    pub use_response_times_cache: bool,
}

/// What a worker ships to its master every report interval: the entries that saw requests, the
/// total and the failures, all counted since the previous report.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// Entries with requests or failures since the last report.
    pub stats: Vec<StatsEntry>,
    /// The total since the last report.
    pub stats_total: StatsEntry,
    /// Failures since the last report, by key.
    pub errors: BTreeMap<String, StatsError>,
}

impl RequestStats {
    /// Empty statistics whose clock starts at `now` (epoch seconds).
    pub fn new(use_response_times_cache: bool, now: f64) -> Self {
        RequestStats {
            entries: BTreeMap::new(),
            total: StatsEntry::new(AGGREGATED_NAME, "", use_response_times_cache, now),
            errors: BTreeMap::new(),
            exceptions: BTreeMap::new(),
            history: Vec::new(),
            use_response_times_cache,
        }
    }

    /// The entry for `(name, method)`, if it exists.
    pub fn get(&self, name: &str, method: &str) -> Option<&StatsEntry> {
        // The map is keyed by owned pairs; a borrowed lookup would need a custom key type, and
        // this is not a hot path.
        self.entries.get(&(name.to_string(), method.to_string()))
    }

    /// The entry for `(name, method)`, created empty (clock at `now`) on first use.
    pub fn entry_mut(&mut self, name: &str, method: &str, now: f64) -> &mut StatsEntry {
        let cache = self.use_response_times_cache;
        self.entries
            .entry((name.to_string(), method.to_string()))
            .or_insert_with(|| StatsEntry::new(name, method, cache, now))
    }

    /// Logs one request in its entry and the total (Locust's `log_request`).
    pub fn log_request(
        &mut self,
        method: &str,
        name: &str,
        response_time_ms: Option<f64>,
        content_length: u64,
        now: f64,
    ) {
        self.total.log(response_time_ms, content_length, now);
        self.entry_mut(name, method, now)
            .log(response_time_ms, content_length, now);
    }

    /// Counts one failure in its entry, the total and the failure table (Locust's `log_error`).
    /// `error` is the text in `parse_error` form.
    pub fn log_error(&mut self, method: &str, name: &str, error: &str, now: f64) {
        self.total.log_error(now);
        self.entry_mut(name, method, now).log_error(now);
        self.errors
            .entry(error_key(method, name, error))
            .or_insert_with(|| StatsError::new(method, name, error))
            .occurred(now);
    }

    /// Counts one task exception reported by `node` (Locust's `runner.log_exception`).
    pub fn log_exception(&mut self, node: &str, msg: &str, traceback: &str) {
        let row = self
            .exceptions
            .entry(exception_key(traceback))
            .or_insert_with(|| TaskException {
                count: 0,
                msg: msg.to_string(),
                traceback: traceback.to_string(),
                nodes: BTreeSet::new(),
                creation_order: next_creation_order(),
            });
        row.count += 1;
        if !row.nodes.contains(node) {
            row.nodes.insert(node.to_string());
        }
    }

    /// Entries in the order Locust's insertion-ordered dict holds them (the order of `--json`):
    /// by creation time, then by creation ([`StatsEntry::creation_order`]), which after a reset
    /// (all clocks equal) is the order they were first created in.
    pub fn entries_in_creation_order(&self) -> Vec<&StatsEntry> {
        let mut v: Vec<&StatsEntry> = self.entries.values().collect();
        v.sort_by(|a, b| {
            a.start_time
                .total_cmp(&b.start_time)
                .then(a.creation_order.cmp(&b.creation_order))
        });
        v
    }

    /// Failures in the order Locust's dict holds them (the web API's order): first occurrence
    /// first, which is insertion order; rows without a first sighting last; ties by key.
    pub fn errors_in_insertion_order(&self) -> Vec<&StatsError> {
        let mut v: Vec<(&String, &StatsError)> = self.errors.iter().collect();
        v.sort_by(|a, b| {
            let first = |e: &StatsError| e.first_seen.unwrap_or(f64::INFINITY);
            first(a.1).total_cmp(&first(b.1)).then(a.0.cmp(b.0))
        });
        v.into_iter().map(|(_, e)| e).collect()
    }

    /// Task exceptions in first-seen order, as Locust's `runner.exceptions` dict lists them.
    pub fn exceptions_in_insertion_order(&self) -> Vec<&TaskException> {
        let mut v: Vec<&TaskException> = self.exceptions.values().collect();
        v.sort_by_key(|x| x.creation_order);
        v
    }

    /// Locust's `reset_all()`: every entry and the total zeroed in place (names stay listed),
    /// failures and chart history cleared. Task exceptions stay, as in Locust (the web UI's
    /// reset clears them separately).
    pub fn reset_all(&mut self, now: f64) {
        self.total.use_response_times_cache = self.use_response_times_cache;
        self.total.reset(now);
        for e in self.entries.values_mut() {
            e.reset(now);
        }
        self.errors.clear();
        self.history.clear();
    }

    /// Locust's `clear_all()` plus the runner's `exceptions = {}`: a new test starts from
    /// nothing.
    pub fn clear_all(&mut self, now: f64) {
        self.total = StatsEntry::new(AGGREGATED_NAME, "", self.use_response_times_cache, now);
        self.entries.clear();
        self.errors.clear();
        self.exceptions.clear();
        self.history.clear();
    }

    /// A worker's report (Locust's `on_report_to_master`): copies of the entries that saw
    /// requests or failures and of the total, after which those and the total are reset (clock
    /// at `now`), and the failures handed over. Every report is a delta.
    pub fn take_worker_report(&mut self, now: f64) -> WorkerReport {
        let mut stats = Vec::new();
        for e in self.entries.values_mut() {
            if e.num_requests == 0 && e.num_failures == 0 {
                continue;
            }
            stats.push(e.clone());
            e.reset(now);
        }
        let stats_total = self.total.clone();
        self.total.reset(now);
        WorkerReport {
            stats,
            stats_total,
            errors: std::mem::take(&mut self.errors),
        }
    }

    /// A master folding in a worker's report (Locust's `on_worker_report`): each entry extended
    /// into its own (created on first sight with the cache on), the failures merged by key and
    /// the total extended.
    pub fn merge_worker_report(&mut self, report: &WorkerReport) {
        self.merge_worker_report_with(report, |_, _| {});
    }

    /// [`RequestStats::merge_worker_report`], then `also(Some(i), entry)` with the merged
    /// entry of `report.stats[i]` and `also(None, total)`: how a master adds what travelled
    /// beside the entries (their precise histograms) without looking the entries up again.
    pub fn merge_worker_report_with(
        &mut self,
        report: &WorkerReport,
        mut also: impl FnMut(Option<usize>, &mut StatsEntry),
    ) {
        let mut key = (String::new(), String::new());
        for (i, e) in report.stats.iter().enumerate() {
            self.merge_into_entry(&mut key, &e.name, &e.method, e.start_time, |entry| {
                entry.extend(e);
                also(Some(i), entry);
            });
        }
        for (key, err) in &report.errors {
            self.merge_error(key, err);
        }
        self.total.extend(&report.stats_total);
        also(None, &mut self.total);
    }

    /// Runs `merge` on the entry a worker's entry `(name, method)` merges into, created (with
    /// the cache as set, started at `start_time`) on first sight. `key` is scratch space the
    /// caller keeps between calls: a master merges about 30,000 entries a second at 1,000
    /// workers, and cloning both strings of each to look it up was two allocations apiece.
    pub fn merge_into_entry<R>(
        &mut self,
        key: &mut (String, String),
        name: &str,
        method: &str,
        start_time: f64,
        merge: impl FnOnce(&mut StatsEntry) -> R,
    ) -> R {
        key.0.clear();
        key.0.push_str(name);
        key.1.clear();
        key.1.push_str(method);
        match self.entries.get_mut(key) {
            Some(entry) => merge(entry),
            None => {
                let entry =
                    StatsEntry::new(name, method, self.use_response_times_cache, start_time);
                merge(self.entries.entry(key.clone()).or_insert(entry))
            }
        }
    }

    /// Folds one failure row into the table under `key`: a new row is taken as it is, an
    /// existing one sums occurrences and widens first/last seen.
    pub fn merge_error(&mut self, key: &str, err: &StatsError) {
        match self.errors.get_mut(key) {
            Some(existing) => existing.merge(err.occurrences, err.first_seen, err.last_seen),
            None => {
                self.errors.insert(key.to_string(), err.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RequestStats {
        let mut s = RequestStats::new(true, 1000.0);
        s.log_request("GET", "/", Some(12.0), 100, 1001.2);
        s.log_request("GET", "/", Some(3.0), 100, 1002.2);
        s.log_request("POST", "/login", Some(250.0), 0, 1002.5);
        s.log_error("POST", "/login", "CatchResponseError('bad body')", 1002.5);
        s.log_request("GET", "/missing", None, 0, 1003.0);
        s.log_error(
            "GET",
            "/missing",
            "HTTPError('404 Client Error: Not Found for url: /missing')",
            1003.0,
        );
        s
    }

    #[test]
    fn logs_into_entry_total_and_errors() {
        let s = sample();
        assert_eq!(s.total.num_requests, 4);
        assert_eq!(s.total.num_failures, 2);
        assert_eq!(s.total.num_none_requests, 1);
        let keys: Vec<_> = s.entries.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                ("/".to_string(), "GET".to_string()),
                ("/login".to_string(), "POST".to_string()),
                ("/missing".to_string(), "GET".to_string())
            ]
        );
        assert_eq!(s.get("/", "GET").map(|e| e.num_requests), Some(2));
        let err = &s.errors["b662e1d6e13e22a67d0b329c184fe1d00394e7718b9316e3a7815820fca3bb88"];
        assert_eq!(err.occurrences, 1);
        assert_eq!(err.first_seen, Some(1003.0));
    }

    #[test]
    fn reset_keeps_names_clear_drops_them() {
        let mut s = sample();
        s.log_exception("local", "boom", "  File \"x\", line 1\n");
        let point = crate::history_point(&s, 3, 1004.0);
        s.history.push(point.clone());
        s.reset_all(2000.0);
        assert!(s.history.is_empty());
        s.history.push(point);
        assert_eq!(s.entries.len(), 3);
        assert!(s
            .entries
            .values()
            .all(|e| e.num_requests == 0 && e.start_time == 2000.0));
        assert_eq!(s.total.num_requests, 0);
        assert!(s.errors.is_empty());
        assert_eq!(s.exceptions.len(), 1);
        s.clear_all(3000.0);
        assert!(s.entries.is_empty() && s.exceptions.is_empty() && s.history.is_empty());
        assert_eq!(s.total.start_time, 3000.0);
        assert_eq!(s.total.name, "Aggregated");
    }

    #[test]
    fn exceptions_count_per_traceback() {
        let mut s = RequestStats::new(true, 0.0);
        s.log_exception("local", "boom", "tb-a");
        s.log_exception("w1", "boom again", "tb-a");
        s.log_exception("local", "other", "tb-b");
        let row = &s.exceptions[&exception_key("tb-a")];
        assert_eq!(row.count, 2);
        assert_eq!(row.msg, "boom");
        assert_eq!(row.nodes.iter().collect::<Vec<_>>(), ["local", "w1"]);
        assert_eq!(s.exceptions.len(), 2);
    }

    #[test]
    fn worker_report_round_trip() {
        let mut worker = sample();
        let report = worker.take_worker_report(5000.0);
        assert_eq!(report.stats.len(), 3);
        assert_eq!(report.stats_total.num_requests, 4);
        assert_eq!(report.errors.len(), 2);
        // The worker starts over: deltas only.
        assert_eq!(worker.total.num_requests, 0);
        assert!(worker.errors.is_empty());
        assert!(worker.take_worker_report(5001.0).stats.is_empty());

        let mut master = RequestStats::new(true, 900.0);
        master.merge_worker_report(&report);
        master.merge_worker_report(&report);
        assert_eq!(master.total.num_requests, 8);
        assert_eq!(master.total.start_time, 900.0);
        assert_eq!(master.get("/", "GET").map(|e| e.num_requests), Some(4));
        assert_eq!(
            master.get("/", "GET").unwrap().response_times.get(&12),
            Some(&2)
        );
        assert!(master.errors.values().all(|e| e.occurrences == 2));
        assert_eq!(master.total.last_request_timestamp, Some(1003.0));
    }
}
