//! The hot path: per-thread recording shards merged into one global [`Stats`].
//!
//! Every request is recorded by the thread that ran it into that thread's own shard: counters,
//! min/max/sum, per-second counts and raw response times appended to a vector. No lock, no
//! channel, no allocation beyond the first sighting of a name or error text. A shard folds its
//! deltas into the global statistics (one mutex) when:
//!
//! * the global *epoch* moved ([`Stats::tick`], [`Stats::sync`], resets) — checked on every
//!   record, so a busy thread flushes at most once per tick;
//! * its thread goes idle ([`flush_thread`], called from the runtime's park hook);
//! * its sample vector passed [`SAMPLE_FLUSH_THRESHOLD`] entries (bounded memory);
//! * its thread exits (the thread-local's destructor).
//!
//! The expensive per-sample work of a flush (bucketing) happens before the lock is taken; under
//! the lock each sample costs two HDR increments. Resets bump a *generation*: a shard whose
//! unflushed data predates the latest reset or clear throws it away instead of merging it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;

use crate::entry::{hdr_record, ns_to_us, StatsEntry};
use crate::errors::{error_key, StatsError};
use crate::request_stats::RequestStats;

/// A shard flushes by itself once it holds this many raw response times (512 KiB).
pub const SAMPLE_FLUSH_THRESHOLD: usize = 64 * 1024;

/// One finished request, as the HTTP client (or any custom client) reports it.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// Request type: `"GET"`, `"POST"`, or a custom type such as `"WS"`.
    pub request_type: &'a str,
    /// Stats name.
    pub name: &'a str,
    /// `None` counts the request in `num_none_requests` and leaves the time statistics alone.
    pub response_time: Option<Duration>,
    /// Response body length, bytes.
    pub response_length: u64,
    /// `None` for success; otherwise the error text in Locust's `parse_error` form, e.g.
    /// `HTTPError('404 Client Error: Not Found for url: /missing')`.
    pub error: Option<&'a str>,
}

/// Wall-clock time, epoch seconds.
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The process-wide statistics.
pub fn global() -> &'static Stats {
    static GLOBAL: OnceLock<Stats> = OnceLock::new();
    GLOBAL.get_or_init(Stats::new)
}

/// Someone outside the statistics who wants to see every request (the `request` event).
static OBSERVER: OnceLock<fn(&RequestRecord<'_>)> = OnceLock::new();

/// Registers the function shown every recorded request after it is counted (the engine's
/// `request` event). Only the first registration counts.
pub fn set_request_observer(observer: fn(&RequestRecord<'_>)) {
    let _ = OBSERVER.set(observer);
}

/// Records one request into the calling thread's shard.
pub fn record(r: &RequestRecord<'_>) {
    record_quietly(r);
    if let Some(observe) = OBSERVER.get() {
        observe(r);
    }
}

fn record_quietly(r: &RequestRecord<'_>) {
    let stats = global();
    let now = now_epoch();
    let done = SHARD
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut shard) => {
                shard.record(stats, r, now);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    if !done {
        // The thread-local is gone (thread teardown) or busy (a record from inside a flush,
        // which cannot happen today): merge this one request directly.
        stats.record_direct(r, now);
    }
}

/// Counts a task exception (a user's task raised) on node `"local"`. Rare, so it goes straight
/// to the global statistics under the lock.
pub fn record_exception(msg: &str, traceback: &str) {
    global().lock().log_exception("local", msg, traceback);
}

/// Flushes the calling thread's shard if it holds unflushed data, whatever the epoch.
///
/// Call it when a thread goes idle (tokio's `on_thread_park`): an idle thread records nothing,
/// so without this its last requests would wait for its next wake-up, and [`Stats::sync`] would
/// wait for them in vain. Cheap when there is nothing to flush.
pub fn flush_thread() {
    let stats = global();
    let _ = SHARD.try_with(|cell| {
        if let Ok(mut shard) = cell.try_borrow_mut() {
            let epoch = stats.epoch.load(Ordering::Acquire);
            shard.flush(stats, epoch);
        }
    });
}

/// The merged statistics, and the clock that tells shards when to flush.
pub struct Stats {
    data: Mutex<RequestStats>,
    /// Bumped by `tick`, `sync` and resets; a shard that sees a new value flushes first.
    epoch: AtomicU64,
    /// Bumped (under the `data` lock) by resets and clears; shard data tagged with an older
    /// generation is discarded.
    generation: AtomicU64,
    /// Every live shard's status, for `sync` to know whom to wait for.
    shards: Mutex<Vec<Arc<ShardStatus>>>,
}

/// What `sync` needs to know about a shard without touching its thread-local data.
#[derive(Debug, Default)]
struct ShardStatus {
    /// The shard holds data not merged yet. Set by the owner on its first record after a flush.
    dirty: AtomicBool,
    /// The epoch the shard saw at its latest flush.
    flushed_epoch: AtomicU64,
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves the statistics usable: losing the whole
    // run's results would be worse than a possibly half-merged flush.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stats {
    fn new() -> Self {
        Stats {
            data: Mutex::new(RequestStats::new(true, now_epoch())),
            epoch: AtomicU64::new(1),
            generation: AtomicU64::new(0),
            shards: Mutex::new(Vec::new()),
        }
    }

    /// The merged statistics: everything shards have flushed so far. Hold the guard briefly —
    /// flushing threads wait for it — and never call [`record`] while holding it on the same
    /// thread (a flush would wait for the guard forever).
    pub fn lock(&self) -> MutexGuard<'_, RequestStats> {
        lock_ignoring_poison(&self.data)
    }

    /// Bumped by every reset and clear: a reader that saw another value knows the numbers
    /// started over since.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Starts a new epoch: every shard flushes on its next record or [`flush_thread`].
    pub fn tick(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes everything recorded so far visible under [`Stats::lock`]: flushes the calling
    /// thread, starts a new epoch, then waits (in ~1 ms sleeps) until every shard holding data
    /// has flushed in this epoch. `true` if all did within `timeout`.
    ///
    /// Blocking: call it from a plain thread or `spawn_blocking`, never from async code. Shards
    /// flush when their threads record or go idle, so a thread stuck in a long computation
    /// without recording holds `sync` up to the timeout.
    pub fn sync(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        flush_thread();
        let target = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        loop {
            let pending = lock_ignoring_poison(&self.shards).iter().any(|s| {
                s.dirty.load(Ordering::Acquire) && s.flushed_epoch.load(Ordering::Acquire) < target
            });
            if !pending {
                return true;
            }
            if started.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Locust's `reset_all()`: entries zeroed in place (names stay), total zeroed, failures
    /// cleared; data still sitting in shards from before is discarded.
    pub fn reset_all(&self) {
        let mut data = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        data.reset_all(now_epoch());
        // After the generation, so a shard that sees the new epoch also sees the new generation.
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Locust's `clear_all()` (a new test): entries, failures and exceptions dropped; data
    /// still sitting in shards from before is discarded.
    pub fn clear_all(&self) {
        let mut data = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        data.clear_all(now_epoch());
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The slow path for a request that cannot go through a shard.
    fn record_direct(&self, r: &RequestRecord<'_>, now: f64) {
        let mut data = self.lock();
        let ms = r.response_time.map(|d| d.as_nanos() as f64 / 1e6);
        data.log_request(r.request_type, r.name, ms, r.response_length, now);
        if let Some(err) = r.error {
            data.log_error(r.request_type, r.name, err, now);
        }
    }

    fn register(&self, status: &Arc<ShardStatus>) {
        lock_ignoring_poison(&self.shards).push(Arc::clone(status));
    }

    fn unregister(&self, status: &Arc<ShardStatus>) {
        lock_ignoring_poison(&self.shards).retain(|s| !Arc::ptr_eq(s, status));
    }
}

thread_local! {
    static SHARD: RefCell<Shard> = const { RefCell::new(Shard::new()) };
}

/// A thread's unflushed statistics.
struct Shard {
    /// Registered with the global registry on first use.
    status: Option<Arc<ShardStatus>>,
    /// Mirror of `status.dirty`, so the hot path does not touch the atomic.
    dirty: bool,
    /// The global epoch as of this shard's latest flush.
    epoch: u64,
    /// The generation the held data belongs to.
    generation: u64,
    /// method → name → index into `deltas`; looked up by `&str`, allocating only for new names.
    index: FxHashMap<Box<str>, FxHashMap<Box<str>, usize>>,
    deltas: Vec<Delta>,
    /// Indices of the deltas holding data, so a flush skips names idle since the last one.
    touched: Vec<usize>,
    /// Raw response times held across all deltas.
    pending_samples: usize,
    /// Reused for bucketing at flush time.
    bucket_scratch: FxHashMap<u64, u64>,
}

/// Unflushed figures for one (method, name).
struct Delta {
    method: Box<str>,
    name: Box<str>,
    num_requests: u64,
    num_none: u64,
    num_failures: u64,
    total_ns: u64,
    /// `u64::MAX` while no timed request.
    min_ns: u64,
    max_ns: u64,
    content_length: u64,
    first_ts: f64,
    last_ts: f64,
    /// The second being counted, kept out of `seconds` so the common case (same second as the
    /// previous request) is two increments.
    cur_sec: i64,
    cur_reqs: u64,
    cur_fails: u64,
    /// Finished seconds: (second, requests, failures).
    seconds: Vec<(i64, u64, u64)>,
    /// Raw response times, ns.
    samples: Vec<u64>,
    /// Failures by error text.
    errors: FxHashMap<Box<str>, ErrorDelta>,
    /// (bucket, count) pairs prepared outside the lock.
    buckets: Vec<(u64, u64)>,
}

struct ErrorDelta {
    /// Computed once when the text is first seen by this shard: SHA-256 is not per-request work.
    key: Box<str>,
    occurrences: u64,
    first_seen: f64,
    last_seen: f64,
}

impl Delta {
    fn new(method: &str, name: &str) -> Self {
        Delta {
            method: method.into(),
            name: name.into(),
            num_requests: 0,
            num_none: 0,
            num_failures: 0,
            total_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            content_length: 0,
            first_ts: 0.0,
            last_ts: 0.0,
            cur_sec: i64::MIN,
            cur_reqs: 0,
            cur_fails: 0,
            seconds: Vec::new(),
            samples: Vec::new(),
            errors: FxHashMap::default(),
            buckets: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.num_requests = 0;
        self.num_none = 0;
        self.num_failures = 0;
        self.total_ns = 0;
        self.min_ns = u64::MAX;
        self.max_ns = 0;
        self.content_length = 0;
        self.cur_reqs = 0;
        self.cur_fails = 0;
        self.seconds.clear();
        self.samples.clear();
        self.buckets.clear();
        // Error texts stay known (with their keys) so a recurring failure allocates nothing.
        for e in self.errors.values_mut() {
            e.occurrences = 0;
        }
    }

    /// Adds this delta to an entry (or the total) of the merged statistics.
    fn apply(&self, e: &mut StatsEntry) {
        let old_last = e.last_request_timestamp;
        e.num_requests += self.num_requests;
        e.num_none_requests += self.num_none;
        e.num_failures += self.num_failures;
        if self.min_ns != u64::MAX {
            e.total_response_time += self.total_ns as f64 / 1e6;
            let min = self.min_ns as f64 / 1e6;
            e.min_response_time = Some(e.min_response_time.map_or(min, |m| m.min(min)));
            e.max_response_time = e.max_response_time.max(self.max_ns as f64 / 1e6);
        }
        e.total_content_length += self.content_length;
        e.last_request_timestamp = Some(old_last.map_or(self.last_ts, |l| l.max(self.last_ts)));
        for &(bucket, count) in &self.buckets {
            *e.response_times.entry(bucket).or_insert(0) += count;
        }
        let current = (self.cur_reqs > 0).then_some((self.cur_sec, self.cur_reqs, self.cur_fails));
        for (sec, reqs, fails) in self.seconds.iter().copied().chain(current) {
            *e.num_reqs_per_sec.entry(sec).or_insert(0) += reqs;
            if fails > 0 {
                *e.num_fail_per_sec.entry(sec).or_insert(0) += fails;
            }
        }
        for &ns in &self.samples {
            hdr_record(&mut e.hdr, ns_to_us(ns));
        }
        e.cache_after_merge(old_last);
    }
}

/// [`crate::bucket_response_time`] on integer nanoseconds: the same half-to-even rounding of
/// `ns / 1e6` ms, without floating point. (Exact ties exist only at whole nanosecond counts, so
/// the float and integer views agree.)
pub(crate) fn bucket_ns(ns: u64) -> u64 {
    const MS: u64 = 1_000_000;
    let (step_ms, step_ns) = if ns < 100 * MS {
        (1, MS)
    } else if ns < 1_000 * MS {
        (10, 10 * MS)
    } else if ns < 10_000 * MS {
        (100, 100 * MS)
    } else {
        (1_000, 1_000 * MS)
    };
    let (q, r) = (ns / step_ns, ns % step_ns);
    let half = step_ns / 2;
    let q = if r > half || (r == half && q % 2 == 1) {
        q + 1
    } else {
        q
    };
    q * step_ms
}

impl Shard {
    const fn new() -> Self {
        Shard {
            status: None,
            dirty: false,
            // Never a real epoch: the first record adopts the current epoch and generation.
            epoch: u64::MAX,
            generation: 0,
            index: FxHashMap::with_hasher(rustc_hash::FxBuildHasher),
            deltas: Vec::new(),
            touched: Vec::new(),
            pending_samples: 0,
            bucket_scratch: FxHashMap::with_hasher(rustc_hash::FxBuildHasher),
        }
    }

    fn record(&mut self, stats: &Stats, r: &RequestRecord<'_>, now: f64) {
        let epoch = stats.epoch.load(Ordering::Acquire);
        if epoch != self.epoch {
            self.flush(stats, epoch);
        }
        if !self.dirty {
            self.mark_dirty(stats);
        }

        let idx = self.delta_index(r.request_type, r.name);
        let d = &mut self.deltas[idx];
        let sec = now as i64;
        if d.num_requests == 0 {
            d.first_ts = now;
            self.touched.push(idx);
        }
        d.num_requests += 1;
        d.last_ts = now;
        if sec != d.cur_sec {
            if d.cur_reqs > 0 {
                d.seconds.push((d.cur_sec, d.cur_reqs, d.cur_fails));
            }
            d.cur_sec = sec;
            d.cur_reqs = 0;
            d.cur_fails = 0;
        }
        d.cur_reqs += 1;
        d.content_length += r.response_length;
        match r.response_time {
            None => d.num_none += 1,
            Some(rt) => {
                let ns = u64::try_from(rt.as_nanos()).unwrap_or(u64::MAX);
                d.total_ns = d.total_ns.saturating_add(ns);
                d.min_ns = d.min_ns.min(ns);
                d.max_ns = d.max_ns.max(ns);
                d.samples.push(ns);
                self.pending_samples += 1;
            }
        }
        if let Some(error) = r.error {
            d.num_failures += 1;
            d.cur_fails += 1;
            match d.errors.get_mut(error) {
                Some(e) => {
                    if e.occurrences == 0 {
                        e.first_seen = now;
                    }
                    e.occurrences += 1;
                    e.last_seen = now;
                }
                None => {
                    let key = error_key(r.request_type, r.name, error).into_boxed_str();
                    d.errors.insert(
                        error.into(),
                        ErrorDelta {
                            key,
                            occurrences: 1,
                            first_seen: now,
                            last_seen: now,
                        },
                    );
                }
            }
        }

        if self.pending_samples >= SAMPLE_FLUSH_THRESHOLD {
            self.flush(stats, self.epoch);
        }
    }

    fn delta_index(&mut self, method: &str, name: &str) -> usize {
        if let Some(&i) = self.index.get(method).and_then(|names| names.get(name)) {
            return i;
        }
        let i = self.deltas.len();
        self.deltas.push(Delta::new(method, name));
        self.index
            .entry(method.into())
            .or_default()
            .insert(name.into(), i);
        i
    }

    fn mark_dirty(&mut self, stats: &Stats) {
        let status = match &self.status {
            Some(s) => s,
            None => {
                let s = Arc::new(ShardStatus::default());
                stats.register(&s);
                self.status.insert(s)
            }
        };
        status.dirty.store(true, Ordering::Release);
        self.dirty = true;
    }

    /// Merges everything held into the global statistics (or drops it, if a reset happened
    /// since it was recorded), and adopts `epoch` and the current generation.
    fn flush(&mut self, stats: &Stats, epoch: u64) {
        if !self.dirty {
            // Nothing to merge. The epoch was read before the generation and resets bump the
            // generation first, so this generation is at least as new as that epoch.
            self.generation = stats.generation.load(Ordering::Acquire);
            self.epoch = epoch;
            return;
        }

        // Bucketing outside the lock.
        for &i in &self.touched {
            let d = &mut self.deltas[i];
            for &ns in &d.samples {
                *self.bucket_scratch.entry(bucket_ns(ns)).or_insert(0) += 1;
            }
            d.buckets.extend(self.bucket_scratch.drain());
        }

        {
            let mut guard = stats.lock();
            let generation = stats.generation.load(Ordering::Acquire);
            if generation == self.generation {
                let RequestStats {
                    entries,
                    total,
                    errors,
                    use_response_times_cache,
                    ..
                } = &mut *guard;
                for d in self.touched.iter().map(|&i| &self.deltas[i]) {
                    let entry = entries
                        .entry((d.name.to_string(), d.method.to_string()))
                        .or_insert_with(|| {
                            StatsEntry::new(
                                &d.name,
                                &d.method,
                                *use_response_times_cache,
                                d.first_ts.min(now_epoch()),
                            )
                        });
                    d.apply(entry);
                    d.apply(total);
                    for (text, e) in d.errors.iter().filter(|(_, e)| e.occurrences > 0) {
                        match errors.get_mut(&*e.key) {
                            Some(existing) => {
                                existing.merge(e.occurrences, Some(e.first_seen), Some(e.last_seen))
                            }
                            None => {
                                errors.insert(
                                    e.key.to_string(),
                                    StatsError {
                                        method: d.method.to_string(),
                                        name: d.name.to_string(),
                                        error: text.to_string(),
                                        occurrences: e.occurrences,
                                        first_seen: Some(e.first_seen),
                                        last_seen: Some(e.last_seen),
                                    },
                                );
                            }
                        }
                    }
                }
            }
            self.generation = generation;
        }

        for &i in &self.touched {
            self.deltas[i].clear();
        }
        self.touched.clear();
        self.pending_samples = 0;
        self.epoch = epoch;
        self.dirty = false;
        if let Some(status) = &self.status {
            status.flushed_epoch.store(epoch, Ordering::Release);
            status.dirty.store(false, Ordering::Release);
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        let Some(status) = self.status.clone() else {
            return;
        };
        let stats = global();
        let epoch = stats.epoch.load(Ordering::Acquire);
        self.flush(stats, epoch);
        stats.unregister(&status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::bucket_response_time;

    /// Tests touching the global statistics run one at a time (the test harness is threaded).
    fn global_lock() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        lock_ignoring_poison(&LOCK)
    }

    fn req<'a>(name: &'a str, ms: Option<u64>, error: Option<&'a str>) -> RequestRecord<'a> {
        RequestRecord {
            request_type: "GET",
            name,
            response_time: ms.map(Duration::from_millis),
            response_length: 10,
            error,
        }
    }

    #[test]
    fn integer_buckets_match_float_buckets() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let check = |ns: u64| {
            assert_eq!(
                bucket_ns(ns),
                bucket_response_time(ns as f64 / 1e6),
                "ns={ns}"
            );
        };
        for ns in [
            0,
            499_999,
            500_000,
            1_500_000,
            2_500_000,
            99_499_999,
            99_500_000,
            145_000_000,
            155_000_000,
            1_250_000_000,
            9_950_000_000,
            10_500_000_000,
            58_760_000_000,
        ] {
            check(ns);
        }
        for _ in 0..20_000 {
            // xorshift: values spread over 0..~100 s.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x % 100_000_000_000);
            check(x % 200_000_000);
        }
    }

    #[test]
    fn threads_then_sync_give_exact_totals() {
        let _g = global_lock();
        let stats = global();
        stats.clear_all();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..5_000u64 {
                        let fail = (i % 10 == 0).then_some("CatchResponseError('x')");
                        record(&req(
                            if i % 2 == 0 { "/a" } else { "/b" },
                            Some(1 + (i + t) % 50),
                            fail,
                        ));
                    }
                    record(&req("/none", None, None));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(stats.sync(Duration::from_secs(10)));
        let data = stats.lock();
        assert_eq!(data.total.num_requests, 4 * 5_001);
        assert_eq!(data.total.num_none_requests, 4);
        assert_eq!(data.total.num_failures, 4 * 500);
        assert_eq!(data.total.response_times.values().sum::<u64>(), 4 * 5_000);
        assert_eq!(data.total.hdr.len(), 4 * 5_000);
        assert_eq!(data.total.num_reqs_per_sec.values().sum::<u64>(), 4 * 5_001);
        assert_eq!(data.total.num_fail_per_sec.values().sum::<u64>(), 4 * 500);
        assert_eq!(data.total.total_content_length, 4 * 5_001 * 10);
        assert_eq!(data.total.min_response_time, Some(1.0));
        assert_eq!(data.total.max_response_time, 50.0);
        let a = data.get("/a", "GET").unwrap();
        assert_eq!(a.num_requests, 4 * 2_500);
        assert_eq!(a.num_failures, 4 * 500);
        assert_eq!(data.get("/b", "GET").unwrap().num_failures, 0);
        let err = &data.errors[&error_key("GET", "/a", "CatchResponseError('x')")];
        assert_eq!(err.occurrences, 4 * 500);
        assert_eq!(data.errors.len(), 1);
    }

    #[test]
    fn sync_waits_for_live_idle_threads() {
        let _g = global_lock();
        let stats = global();
        stats.clear_all();
        let recorded = Arc::new(std::sync::Barrier::new(3));
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let recorded = Arc::clone(&recorded);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        record(&req("/live", Some(2), None));
                    }
                    recorded.wait();
                    // An idle worker: its park hook flushes.
                    while !stop.load(Ordering::Acquire) {
                        flush_thread();
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        recorded.wait();
        assert!(stats.sync(Duration::from_secs(10)));
        assert_eq!(stats.lock().total.num_requests, 2_000);
        stop.store(true, Ordering::Release);
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn calling_thread_is_flushed_by_sync_and_tick_flushes_on_record() {
        let _g = global_lock();
        let stats = global();
        stats.clear_all();
        record(&req("/self", Some(3), None));
        // Still in this thread's shard.
        assert_eq!(stats.lock().total.num_requests, 0);
        stats.tick();
        record(&req("/self", Some(3), None));
        // The record after the tick flushed the earlier one first.
        assert_eq!(stats.lock().total.num_requests, 1);
        assert!(stats.sync(Duration::from_secs(5)));
        assert_eq!(stats.lock().total.num_requests, 2);
    }

    #[test]
    fn resets_discard_unflushed_shard_data() {
        let _g = global_lock();
        let stats = global();
        stats.clear_all();
        record(&req("/r", Some(5), Some("boom")));
        assert!(stats.sync(Duration::from_secs(5)));
        record(&req("/r", Some(5), Some("boom")));
        record(&req("/r", Some(5), None));
        // Two requests unflushed in this thread's shard when the reset happens.
        stats.reset_all();
        record(&req("/r", Some(7), None));
        assert!(stats.sync(Duration::from_secs(5)));
        {
            let data = stats.lock();
            let e = data.get("/r", "GET").unwrap();
            assert_eq!(e.num_requests, 1);
            assert_eq!(e.num_failures, 0);
            assert_eq!(e.min_response_time, Some(7.0));
            assert_eq!(data.total.num_requests, 1);
            assert!(data.errors.is_empty());
        }

        // Same for data on another, still running thread.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            record(&req("/r", Some(9), None));
            done_tx.send(()).unwrap();
            rx.recv().unwrap();
            record(&req("/r", Some(11), None));
        });
        done_rx.recv().unwrap();
        stats.clear_all();
        tx.send(()).unwrap();
        h.join().unwrap();
        assert!(stats.sync(Duration::from_secs(5)));
        let data = stats.lock();
        let e = data.get("/r", "GET").unwrap();
        assert_eq!(e.num_requests, 1);
        assert_eq!(e.min_response_time, Some(11.0));
    }

    #[test]
    fn large_batches_flush_by_themselves() {
        let _g = global_lock();
        let stats = global();
        stats.clear_all();
        let n = SAMPLE_FLUSH_THRESHOLD + 10;
        for _ in 0..n {
            record(&req("/bulk", Some(1), None));
        }
        assert_eq!(
            stats.lock().total.num_requests,
            SAMPLE_FLUSH_THRESHOLD as u64
        );
        assert!(stats.sync(Duration::from_secs(5)));
        assert_eq!(stats.lock().total.num_requests, n as u64);
    }

    #[test]
    fn exceptions_go_straight_in() {
        let _g = global_lock();
        let stats = global();
        stats.clear_all();
        record_exception("boom", "  File \"t.rs\", line 1, in task\n");
        record_exception("boom", "  File \"t.rs\", line 1, in task\n");
        let data = stats.lock();
        let row = data.exceptions.values().next().unwrap();
        assert_eq!(row.count, 2);
        assert!(row.nodes.contains("local"));
    }
}
