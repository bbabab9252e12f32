//! The master's fast path for its two hot messages, `stats` and `heartbeat`: read straight
//! from the msgpack bytes into a [`StatsReport`] / [`Heartbeat`], without building an
//! [`rmpv::Value`] tree first (1,000 workers send 1,000 heartbeats a second and a report of
//! ~100 entries every 3 s each; building and dropping the tree was about a third of the
//! master's time).
//!
//! The reference reading stays [`Message::decode`] followed by [`StatsReport::from_value`] /
//! [`Heartbeat::from_value`]. This reader accepts only the shapes Locust and Hopper workers
//! write (known keys, each once; strings as UTF-8 str; numbers as ints or floats) and gives up
//! (`None`) on anything else: bytes that are not a message, another message type, unknown or
//! repeated keys (inside entries; custom `report_to_master` keys of the report are read whole
//! into [`Value`]s, as they are rare), a malformed value anywhere, a Hopper HDR
//! extension that does not check out. The caller then takes the reference path, which gives
//! the same result or the same error with its path, so no input is read differently: whatever
//! this accepts, the reference path accepts with the same result (the tests compare both).
//!
//! The security properties of [`super::decode_value`] hold: nothing recurses (the walk has a
//! fixed depth of five containers; a custom key's value goes to the reference decoder, with the
//! depth already open counted), nothing is allocated from a declared length (containers
//! are read element by element; a string is borrowed from the input before it is copied),
//! every read checks the bytes left, and at most [`MAX_VALUES`] values are read. A report is
//! read whole and checked before the master merges anything, so a report that fails half-way
//! merges nothing.
//!
//! A master reads each report into a [`FlatReport`] it keeps: flat vectors of `(key, count)`
//! pairs and entries whose strings are reused from report to report, so reading allocates
//! next to nothing, and [`FlatReport::merge_into`] adds it to the master's statistics straight
//! from those pairs. Building a [`StatsEntry`] per report entry (three small maps each, made
//! and freed 33,000 times a second at 1,000 workers × 100 names) cost more than the reading.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use hopper_stats::{EntryFigures, RequestStats, StatsEntry, StatsError, WorkerReport, HDR_MAX_US};
use rmp::Marker;
use rmpv::Value;

use super::codec::decode_prefix;
use super::control::Heartbeat;
use super::hdr::{record_bucket_pairs, record_samples, HdrPayload, HdrSamples, HOPPER_HDR_KEY};
use super::message::kind;
use super::stats::StatsReport;
use super::{MAX_FRAME_BYTES, MAX_VALUES};

/// A hot message read by [`decode_hot`].
#[derive(Debug)]
pub enum HotMessage {
    /// A `stats` report.
    Stats {
        /// The node id the message names.
        node_id: String,
        /// The report, as [`StatsReport::from_value`] reads it (boxed: it is far larger than
        /// a heartbeat).
        report: Box<StatsReport>,
    },
    /// A `heartbeat`.
    Heartbeat {
        /// The node id the message names.
        node_id: String,
        /// The heartbeat, as [`Heartbeat::from_value`] reads it.
        beat: Heartbeat,
    },
}

/// What [`read_hot`] read: a report (into the caller's [`FlatReport`]) or a heartbeat.
#[derive(Debug, PartialEq)]
pub enum HotRead {
    /// A `stats` report, now in the [`FlatReport`].
    Stats {
        /// The node id the message names.
        node_id: String,
    },
    /// A `heartbeat`.
    Heartbeat {
        /// The node id the message names.
        node_id: String,
        /// The heartbeat, as [`Heartbeat::from_value`] reads it.
        beat: Heartbeat,
    },
}

/// Reads a `stats` or `heartbeat` message; `None` for anything else or anything unusual (see
/// the module docs): then [`super::Message::decode`] is the way to read it.
pub fn decode_hot(bytes: &[u8]) -> Option<HotMessage> {
    decode_hot_at(bytes, hopper_stats::now_epoch())
}

/// [`decode_hot`] with `now` (epoch seconds) for entries that carry no `start_time`.
pub fn decode_hot_at(bytes: &[u8], now: f64) -> Option<HotMessage> {
    let mut report = FlatReport::default();
    Some(match read_hot(bytes, now, &mut report)? {
        HotRead::Stats { node_id } => HotMessage::Stats {
            node_id,
            report: Box::new(report.to_stats_report()),
        },
        HotRead::Heartbeat { node_id, beat } => HotMessage::Heartbeat { node_id, beat },
    })
}

/// [`decode_hot_at`] for a master: a report is read into `report` (what it held before is
/// replaced), to be merged with [`FlatReport::merge_into`]. When this gives `None`, `report`
/// holds nothing usable.
pub fn read_hot(bytes: &[u8], now: f64, report: &mut FlatReport) -> Option<HotRead> {
    if bytes.len() > MAX_FRAME_BYTES {
        return None;
    }
    let mut c = Cursor {
        buf: bytes,
        pos: 0,
        values: 0,
    };
    if c.next()? != Tok::Array(3) {
        return None;
    }
    let Tok::Str(k) = c.next()? else {
        return None;
    };
    let message = if k == kind::STATS {
        c.report(now, report)?;
        HotRead::Stats {
            node_id: c.str()?.to_string(),
        }
    } else if k == kind::HEARTBEAT {
        let beat = c.heartbeat()?;
        HotRead::Heartbeat {
            node_id: c.str()?.to_string(),
            beat,
        }
    } else {
        return None;
    };
    (c.pos == bytes.len()).then_some(message)
}

/// Entries a [`FlatReport`] keeps for the next report (their name and method buffers); past
/// this, a report with more entries gives the extra ones back, so one huge report does not
/// stay in memory.
const KEPT_ENTRIES: usize = 1024;

/// Pairs a [`FlatReport`] keeps room for between reports, per kind (16 bytes each).
const KEPT_PAIRS: usize = 1 << 16;

/// A `stats` report read by [`read_hot`], in buffers reused from report to report.
#[derive(Debug, Default)]
pub struct FlatReport {
    /// The report's entries: the first `len` of these (the rest are kept for their buffers).
    entries: Vec<FlatEntry>,
    len: usize,
    total: FlatEntry,
    /// Every entry's rounded-millisecond buckets, `(ms, count)`, by ranges in [`FlatEntry`].
    times: Vec<(u64, u64)>,
    /// Every entry's requests and failures per second, `(epoch second, count)`.
    per_sec: Vec<(i64, u64)>,
    /// Every entry's precise buckets, `(µs, count)`, when the report carried them.
    hdr: Vec<(u64, u64)>,
    hdr_payload: Option<HdrPayload>,
    errors: BTreeMap<String, StatsError>,
    /// The worker's users per class now.
    pub user_classes_count: BTreeMap<String, u64>,
    /// The worker's users now.
    pub user_count: u64,
    /// Keys added by the worker's `report_to_master` listeners, as sent.
    pub extra: Vec<(String, Value)>,
}

/// One entry of a [`FlatReport`]: its name, method and figures, and where its pairs are.
#[derive(Debug, Default, Clone)]
struct FlatEntry {
    name: String,
    method: String,
    figures: EntryFigures,
    times: Range<usize>,
    reqs_per_sec: Range<usize>,
    fail_per_sec: Range<usize>,
    /// In [`FlatReport::hdr`]; empty for an entry without timed requests.
    hdr: Range<usize>,
}

impl FlatReport {
    /// Empties the report for the next one, keeping bounded room.
    fn clear(&mut self, now: f64) {
        self.entries.truncate(KEPT_ENTRIES);
        self.len = 0;
        self.total.reset(now);
        for v in [&mut self.times, &mut self.hdr] {
            v.clear();
            v.shrink_to(KEPT_PAIRS);
        }
        self.per_sec.clear();
        self.per_sec.shrink_to(KEPT_PAIRS);
        self.hdr_payload = None;
        self.errors.clear();
        self.user_classes_count.clear();
        self.user_count = 0;
        self.extra.clear();
    }

    /// The report's entries (its total aside).
    fn entries(&self) -> &[FlatEntry] {
        &self.entries[..self.len]
    }

    /// Whether the report carried Hopper's precise histograms.
    pub fn has_hdr(&self) -> bool {
        self.hdr_payload.is_some()
    }

    /// Adds the report to a master's statistics exactly as [`StatsReport::merge_into`] adds
    /// the same report read by [`StatsReport::from_value`].
    pub fn merge_into(&self, stats: &mut RequestStats) {
        let mut key = (String::new(), String::new());
        for e in self.entries() {
            let f = &e.figures;
            stats.merge_into_entry(&mut key, &e.name, &e.method, f.start_time, |merged| {
                self.merge_entry(e, merged);
            });
        }
        for (key, err) in &self.errors {
            stats.merge_error(key, err);
        }
        self.merge_entry(&self.total, &mut stats.total);
    }

    fn merge_entry(&self, e: &FlatEntry, into: &mut StatsEntry) {
        let times = &self.times[e.times.clone()];
        into.extend_parts(
            &e.figures,
            times.iter().copied(),
            self.per_sec[e.reqs_per_sec.clone()].iter().copied(),
            self.per_sec[e.fail_per_sec.clone()].iter().copied(),
        );
        if self.has_hdr() {
            record_samples(&self.hdr[e.hdr.clone()], &mut into.hdr);
        } else {
            record_bucket_pairs(times.iter().copied(), &mut into.hdr);
        }
    }

    /// The report as [`StatsReport::from_value`] reads it.
    pub fn to_stats_report(&self) -> StatsReport {
        let entry = |e: &FlatEntry| {
            let mut out = StatsEntry::new_carrier(&e.name, &e.method, e.figures.start_time);
            out.set_figures(&e.figures);
            out.response_times = self.times[e.times.clone()].iter().copied().collect();
            out.num_reqs_per_sec = self.per_sec[e.reqs_per_sec.clone()]
                .iter()
                .copied()
                .collect();
            out.num_fail_per_sec = self.per_sec[e.fail_per_sec.clone()]
                .iter()
                .copied()
                .collect();
            out
        };
        let hdr_samples = self.hdr_payload.map(|_| HdrSamples {
            entries: self
                .entries()
                .iter()
                .map(|e| self.hdr[e.hdr.clone()].to_vec())
                .collect(),
            total: self.hdr[self.total.hdr.clone()].to_vec(),
        });
        StatsReport {
            report: WorkerReport {
                stats: self.entries().iter().map(entry).collect(),
                stats_total: entry(&self.total),
                errors: self.errors.clone(),
            },
            user_classes_count: self.user_classes_count.clone(),
            user_count: self.user_count,
            extra: self.extra.clone(),
            hdr: self.hdr_payload,
            hdr_samples,
        }
    }
}

impl FlatEntry {
    /// No name, no figures (started at `now`), no pairs.
    fn reset(&mut self, now: f64) {
        self.name.clear();
        self.method.clear();
        self.figures = EntryFigures::empty(now);
        self.times = 0..0;
        self.reqs_per_sec = 0..0;
        self.fail_per_sec = 0..0;
        self.hdr = 0..0;
    }
}

/// One msgpack item: a scalar, or the header of an array or map.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Nil,
    Bool,
    /// A non-negative integer, whatever its encoding.
    Uint(u64),
    /// A negative integer.
    Neg(i64),
    Float(f64),
    Str(&'a str),
    Array(usize),
    Map(usize),
}

impl Tok<'_> {
    /// Python's `float(x)` for a number (what `fields::to_f64` accepts).
    fn f64(self) -> Option<f64> {
        match self {
            Tok::Uint(u) => Some(u as f64),
            Tok::Neg(i) => Some(i as f64),
            Tok::Float(f) => Some(f),
            _ => None,
        }
    }

    /// A non-negative integer or an integral float that fits (`fields::to_u64`).
    fn u64(self) -> Option<u64> {
        match self {
            Tok::Uint(u) => Some(u),
            Tok::Float(f) if f.is_finite() && f.fract() == 0.0 => (0.0
                ..18_446_744_073_709_551_616.0)
                .contains(&f)
                .then_some(f as u64),
            _ => None,
        }
    }

    /// An integer or an integral float that fits `i64` (`fields::to_i64`).
    fn i64(self) -> Option<i64> {
        match self {
            Tok::Uint(u) => i64::try_from(u).ok(),
            Tok::Neg(i) => Some(i),
            Tok::Float(f) if f.is_finite() && f.fract() == 0.0 => (-9_223_372_036_854_775_808.0
                ..9_223_372_036_854_775_808.0)
                .contains(&f)
                .then_some(f as i64),
            _ => None,
        }
    }

    /// Nil, or a number.
    fn opt_f64(self) -> Option<Option<f64>> {
        match self {
            Tok::Nil => Some(None),
            t => t.f64().map(Some),
        }
    }
}

/// The known keys of a serialized entry, as bits for spotting repeats.
const ENTRY_KEYS: [&str; 14] = [
    "name",
    "method",
    "last_request_timestamp",
    "start_time",
    "num_requests",
    "num_none_requests",
    "num_failures",
    "total_response_time",
    "max_response_time",
    "min_response_time",
    "total_content_length",
    "response_times",
    "num_reqs_per_sec",
    "num_fail_per_sec",
];

/// Marks key `i` seen; `None` when it was already (a repeat goes to the reference path).
fn first_time(seen: &mut u32, i: usize) -> Option<()> {
    let bit = 1u32 << i;
    if *seen & bit != 0 {
        return None;
    }
    *seen |= bit;
    Some(())
}

/// A cursor over the input; every read checks the bytes left.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Values read so far, bounded by [`MAX_VALUES`] as in the reference reader.
    values: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn len(&mut self, m: Marker) -> Option<usize> {
        Some(match m {
            Marker::Str8 => usize::from(self.be::<1>()?[0]),
            Marker::Str16 | Marker::Array16 | Marker::Map16 => {
                usize::from(u16::from_be_bytes(self.be()?))
            }
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    /// The next item. Binary data, extension values, strings that are not UTF-8 and the
    /// reserved marker are `None`: no hot message carries them.
    fn next(&mut self) -> Option<Tok<'a>> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return None;
        }
        let m = Marker::from_u8(self.be::<1>()?[0]);
        Some(match m {
            Marker::FixPos(u) => Tok::Uint(u64::from(u)),
            Marker::FixNeg(i) => Tok::Neg(i64::from(i)),
            Marker::Null => Tok::Nil,
            Marker::True | Marker::False => Tok::Bool,
            Marker::U8 => Tok::Uint(u64::from(self.be::<1>()?[0])),
            Marker::U16 => Tok::Uint(u64::from(u16::from_be_bytes(self.be()?))),
            Marker::U32 => Tok::Uint(u64::from(u32::from_be_bytes(self.be()?))),
            Marker::U64 => Tok::Uint(u64::from_be_bytes(self.be()?)),
            Marker::I8 => int(i64::from(i8::from_be_bytes(self.be()?))),
            Marker::I16 => int(i64::from(i16::from_be_bytes(self.be()?))),
            Marker::I32 => int(i64::from(i32::from_be_bytes(self.be()?))),
            Marker::I64 => int(i64::from_be_bytes(self.be()?)),
            Marker::F32 => Tok::Float(f64::from(f32::from_be_bytes(self.be()?))),
            Marker::F64 => Tok::Float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(n) => self.str_body(usize::from(n))?,
            Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let n = self.len(m)?;
                self.str_body(n)?
            }
            Marker::FixArray(n) => Tok::Array(usize::from(n)),
            Marker::FixMap(n) => Tok::Map(usize::from(n)),
            Marker::Array16 | Marker::Array32 => Tok::Array(self.len(m)?),
            Marker::Map16 | Marker::Map32 => Tok::Map(self.len(m)?),
            _ => return None,
        })
    }

    /// `self.next()?.u64()`, with the commonest case, a positive fixint (one byte), read
    /// without the general dispatch: most counts and HDR steps are below 128, and a report
    /// of 100 names has thousands of them.
    fn count(&mut self) -> Option<u64> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 && self.values < MAX_VALUES => {
                self.values += 1;
                self.pos += 1;
                Some(u64::from(b))
            }
            _ => self.next()?.u64(),
        }
    }

    fn str_body(&mut self, n: usize) -> Option<Tok<'a>> {
        std::str::from_utf8(self.take(n)?).ok().map(Tok::Str)
    }

    /// A string's bytes, not yet checked to be UTF-8.
    fn raw_str(&mut self) -> Option<&'a [u8]> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return None;
        }
        let m = Marker::from_u8(self.be::<1>()?[0]);
        let n = match m {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 | Marker::Str16 | Marker::Str32 => self.len(m)?,
            _ => return None,
        };
        self.take(n)
    }

    /// A map key: `Ok` with its index in `keys`, or `Err` with another string. `keys[guess]`
    /// is tried first: workers write keys in a fixed order, so one comparison usually does,
    /// and a known key needs no UTF-8 check (it equals an ASCII constant).
    fn key(&mut self, keys: &[&str], guess: usize) -> Option<Result<usize, &'a str>> {
        let raw = self.raw_str()?;
        if keys.get(guess).is_some_and(|k| k.as_bytes() == raw) {
            return Some(Ok(guess));
        }
        match keys.iter().position(|k| k.as_bytes() == raw) {
            Some(i) => Some(Ok(i)),
            None => std::str::from_utf8(raw).ok().map(Err),
        }
    }

    fn str(&mut self) -> Option<&'a str> {
        match self.next()? {
            Tok::Str(s) => Some(s),
            _ => None,
        }
    }

    fn map(&mut self) -> Option<usize> {
        match self.next()? {
            Tok::Map(n) => Some(n),
            _ => None,
        }
    }

    fn array(&mut self) -> Option<usize> {
        match self.next()? {
            Tok::Array(n) => Some(n),
            _ => None,
        }
    }

    /// `{state, current_cpu_usage, current_memory_usage}` (the last optional).
    fn heartbeat(&mut self) -> Option<Heartbeat> {
        let n = self.map()?;
        let (mut state, mut cpu, mut mem, mut seen) = (None, None, None, 0u32);
        for _ in 0..n {
            match self.str()? {
                "state" => {
                    first_time(&mut seen, 0)?;
                    state = Some(self.str()?);
                }
                "current_cpu_usage" => {
                    first_time(&mut seen, 1)?;
                    cpu = Some(self.next()?.f64()?);
                }
                "current_memory_usage" => {
                    first_time(&mut seen, 2)?;
                    mem = match self.next()?.opt_f64()? {
                        None => None,
                        Some(f) if f >= 0.0 && f.is_finite() => Some(f as u64),
                        Some(_) => return None,
                    };
                }
                _ => return None,
            }
        }
        Some(Heartbeat {
            state: state?.to_string(),
            current_cpu_usage: cpu?,
            current_memory_usage: mem.unwrap_or(0),
        })
    }

    /// `{K: count}` with keys read by `key`, appended to `out` sorted by key; `None` for a
    /// key given twice (the reference keeps its last count: left to it, as it never happens).
    fn pairs<K: Ord + Copy>(
        &mut self,
        key: impl Fn(&mut Self) -> Option<K>,
        out: &mut Vec<(K, u64)>,
    ) -> Option<Range<usize>> {
        let n = self.map()?;
        let start = out.len();
        for _ in 0..n {
            let k = key(self)?;
            out.push((k, self.count()?));
        }
        let read = &mut out[start..];
        read.sort_unstable_by_key(|&(k, _)| k);
        if read.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        Some(start..out.len())
    }

    /// `{K: count}` with keys read by `key` into a map; a repeated key keeps its last count,
    /// as in `MapView::counts`.
    fn counts<K: Ord>(
        &mut self,
        key: impl Fn(Tok<'a>) -> Option<K>,
        out: &mut BTreeMap<K, u64>,
    ) -> Option<()> {
        let n = self.map()?;
        for _ in 0..n {
            let k = key(self.next()?)?;
            out.insert(k, self.next()?.u64()?);
        }
        Some(())
    }

    /// A serialized entry, as `stats::read_entry` reads it, into `e` and the report's pair
    /// vectors.
    fn entry(
        &mut self,
        now: f64,
        e: &mut FlatEntry,
        times: &mut Vec<(u64, u64)>,
        per_sec: &mut Vec<(i64, u64)>,
    ) -> Option<()> {
        let n = self.map()?;
        e.reset(now);
        let f = &mut e.figures;
        let (mut seen, mut guess) = (0u32, 0usize);
        for _ in 0..n {
            let i = self.key(&ENTRY_KEYS, guess)?.ok()?;
            guess = i + 1;
            first_time(&mut seen, i)?;
            match i {
                0 => e.name.push_str(self.str()?),
                1 => e.method.push_str(self.str()?),
                2 => f.last_request_timestamp = self.next()?.opt_f64()?,
                3 => f.start_time = self.next()?.f64()?,
                4 => f.num_requests = self.next()?.u64()?,
                5 => f.num_none_requests = self.next()?.u64()?,
                6 => f.num_failures = self.next()?.u64()?,
                7 => f.total_response_time = self.next()?.f64()?,
                8 => f.max_response_time = self.next()?.f64()?,
                9 => f.min_response_time = self.next()?.opt_f64()?,
                10 => f.total_content_length = self.next()?.u64()?,
                11 => e.times = self.pairs(Self::count, times)?,
                12 => e.reqs_per_sec = self.pairs(|c| c.next()?.i64(), per_sec)?,
                _ => e.fail_per_sec = self.pairs(|c| c.next()?.i64(), per_sec)?,
            }
        }
        // `name` and `method` are required.
        (seen & 0b11 == 0b11).then_some(())
    }

    /// A serialized failure, as `stats::read_error` reads it.
    fn error(&mut self) -> Option<StatsError> {
        const KEYS: [&str; 6] = [
            "name",
            "method",
            "error",
            "occurrences",
            "first_seen",
            "last_seen",
        ];
        let n = self.map()?;
        let mut e = StatsError::new("", "", "");
        let (mut seen, mut guess) = (0u32, 0usize);
        for _ in 0..n {
            let i = self.key(&KEYS, guess)?.ok()?;
            guess = i + 1;
            first_time(&mut seen, i)?;
            match i {
                0 => e.name = self.str()?.to_string(),
                1 => e.method = self.str()?.to_string(),
                2 => e.error = self.str()?.to_string(),
                3 => e.occurrences = self.next()?.u64()?,
                4 => e.first_seen = self.next()?.opt_f64()?,
                _ => e.last_seen = self.next()?.opt_f64()?,
            }
        }
        (seen & 0b1111 == 0b1111).then_some(e)
    }

    /// A whole report, as [`StatsReport::from_value_at`] reads it, into `r`.
    fn report(&mut self, now: f64, r: &mut FlatReport) -> Option<()> {
        const KEYS: [&str; 6] = [
            "stats",
            "stats_total",
            "errors",
            "user_classes_count",
            "user_count",
            HOPPER_HDR_KEY,
        ];
        r.clear(now);
        let n = self.map()?;
        let mut seen = 0u32;
        let mut user_count = None;
        for _ in 0..n {
            let i = match self.key(&KEYS, 0)? {
                Ok(i) => i,
                Err(key) => {
                    // A custom key (`report_to_master`): rare, read whole as the reference does.
                    // The message array and the report map are open around it.
                    if r.extra.iter().any(|(k, _)| k == key) {
                        return None;
                    }
                    let (v, len) =
                        decode_prefix(&self.buf[self.pos..], 2, &mut self.values).ok()?;
                    self.pos += len;
                    r.extra.push((key.to_string(), v));
                    continue;
                }
            };
            first_time(&mut seen, i)?;
            match i {
                0 => {
                    for _ in 0..self.array()? {
                        // Entries are added as they are read: no reservation from the
                        // declared length.
                        if r.len == r.entries.len() {
                            r.entries.push(FlatEntry::default());
                        }
                        self.entry(now, &mut r.entries[r.len], &mut r.times, &mut r.per_sec)?;
                        r.len += 1;
                    }
                }
                1 => self.entry(now, &mut r.total, &mut r.times, &mut r.per_sec)?,
                2 => {
                    for _ in 0..self.map()? {
                        let key = self.str()?.to_string();
                        r.errors.insert(key, self.error()?);
                    }
                }
                3 => self.counts(
                    |t| match t {
                        Tok::Str(s) => Some(s.to_string()),
                        _ => None,
                    },
                    &mut r.user_classes_count,
                )?,
                4 => user_count = Some(self.next()?.u64()?),
                _ => {
                    // The extension is checked against the entries: they must come first
                    // (Hopper writes it last).
                    if seen & 0b11 != 0b11 {
                        return None;
                    }
                    r.hdr_payload = Some(self.hdr(r)?);
                }
            }
        }
        if seen & 0b1111 != 0b1111 {
            return None;
        }
        r.user_count = user_count.unwrap_or_else(|| {
            r.user_classes_count
                .values()
                .fold(0u64, |a, &b| a.saturating_add(b))
        });
        Some(())
    }

    /// Hopper's HDR extension, checked as `hdr::read` checks it, its buckets added to
    /// `r.hdr` and located in `r`'s entries; any problem gives up (the reference path then
    /// logs it and reads the report without it).
    fn hdr(&mut self, r: &mut FlatReport) -> Option<HdrPayload> {
        let n = self.map()?;
        let mut seen = 0u32;
        let mut given: Vec<Option<Range<usize>>> = vec![None; r.len];
        let mut histograms = 0usize;
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        let entries = &r.entries[..r.len];
        for _ in 0..n {
            match self.str()? {
                "v" => {
                    first_time(&mut seen, 0)?;
                    (self.next()?.u64()? == 1).then_some(())?;
                }
                "stats" => {
                    first_time(&mut seen, 1)?;
                    let len = self.array()?;
                    // Each listed entry is found by hashing rather than a scan of the report
                    // (quadratic in names); the first of equal entries, as `hdr::read` finds.
                    if index.is_empty() {
                        index.reserve(entries.len());
                        for (i, e) in entries.iter().enumerate() {
                            index
                                .entry((e.name.as_str(), e.method.as_str()))
                                .or_insert(i);
                        }
                    }
                    for _ in 0..len {
                        (self.array()? == 3).then_some(())?;
                        let (name, method) = (self.str()?, self.str()?);
                        let i = *index.get(&(name, method))?;
                        if given[i].is_some() {
                            return None;
                        }
                        given[i] = Some(self.hdr_counts(&entries[i].figures, &mut r.hdr)?);
                    }
                    histograms = len + 1;
                }
                "total" => {
                    first_time(&mut seen, 2)?;
                    r.total.hdr = self.hdr_counts(&r.total.figures, &mut r.hdr)?;
                }
                _ => return None,
            }
        }
        if seen != 0b111 {
            return None;
        }
        for (e, g) in r.entries[..r.len].iter_mut().zip(given) {
            match g {
                Some(range) => e.hdr = range,
                None if e.figures.num_timed_requests() > 0 => return None,
                None => {}
            }
        }
        Some(HdrPayload {
            version: 1,
            histograms,
        })
    }

    /// One `[v0, c0, d1, c1, ...]` array, checked against the entry as `hdr::read_counts`.
    fn hdr_counts(&mut self, e: &EntryFigures, out: &mut Vec<(u64, u64)>) -> Option<Range<usize>> {
        let len = self.array()?;
        if len % 2 != 0 {
            return None;
        }
        let max_us = (e.max_response_time * 1000.0)
            .round()
            .clamp(0.0, HDR_MAX_US as f64) as u64
            + 1;
        let start = out.len();
        let (mut value, mut total) = (0u64, 0u64);
        for i in 0..len / 2 {
            let step = self.count()?;
            let count = self.count()?;
            if i > 0 && step == 0 {
                return None;
            }
            value = value.checked_add(step)?;
            if value > max_us {
                return None;
            }
            total = total.checked_add(count)?;
            out.push((value, count));
        }
        (total == e.num_timed_requests()).then_some(start..out.len())
    }
}

fn int(i: i64) -> Tok<'static> {
    match u64::try_from(i) {
        Ok(u) => Tok::Uint(u),
        Err(_) => Tok::Neg(i),
    }
}

/// The reference reading of a hot message, and comparison with the fast one: shared by these
/// tests and the fixture tests.
#[cfg(test)]
pub(crate) mod check {
    use super::*;
    use crate::wire::{encode_value, Message, WireError};

    /// What [`super::Message::decode`] and the typed `from_value`s make of `bytes`: `Ok(None)`
    /// for a message that is neither `stats` nor `heartbeat`.
    pub(crate) fn reference(bytes: &[u8], now: f64) -> Result<Option<HotMessage>, WireError> {
        let m = Message::decode(bytes)?;
        Ok(match m.kind.as_str() {
            kind::STATS => Some(HotMessage::Stats {
                report: Box::new(StatsReport::from_value_at(&m.data, now)?),
                node_id: m.node_id,
            }),
            kind::HEARTBEAT => Some(HotMessage::Heartbeat {
                beat: Heartbeat::from_value(&m.data)?,
                node_id: m.node_id,
            }),
            _ => None,
        })
    }

    /// Everything a master uses of a report, as comparable bytes and values (entries read off
    /// the wire differ only in their creation counter).
    fn report_parts(r: &StatsReport) -> impl PartialEq + std::fmt::Debug {
        let mut bytes = Vec::new();
        encode_value(&r.to_value(false), &mut bytes);
        (
            bytes,
            r.hdr,
            r.hdr_samples.clone(),
            r.user_count,
            r.user_classes_count.clone(),
            r.extra.clone(),
        )
    }

    /// Panics unless the two readings are the same message.
    pub(crate) fn same(fast: &HotMessage, reference: &HotMessage) {
        match (fast, reference) {
            (
                HotMessage::Stats { node_id, report },
                HotMessage::Stats {
                    node_id: n2,
                    report: r2,
                },
            ) => {
                assert_eq!(node_id, n2);
                assert_eq!(report_parts(report), report_parts(r2));
                for (a, b) in report
                    .report
                    .stats
                    .iter()
                    .chain([&report.report.stats_total])
                    .zip(r2.report.stats.iter().chain([&r2.report.stats_total]))
                {
                    // Fields `to_value` writes in Python's types only.
                    assert_eq!(
                        (
                            a.total_response_time.to_bits(),
                            a.max_response_time.to_bits()
                        ),
                        (
                            b.total_response_time.to_bits(),
                            b.max_response_time.to_bits()
                        )
                    );
                    assert!(a.hdr.is_empty() && b.hdr.is_empty());
                }
            }
            (
                HotMessage::Heartbeat { node_id, beat },
                HotMessage::Heartbeat {
                    node_id: n2,
                    beat: b2,
                },
            ) => {
                assert_eq!((node_id, beat), (n2, b2));
            }
            other => panic!("different messages: {other:?}"),
        }
    }

    /// Reads `bytes` both ways: whatever the fast reader accepts, the reference reads the
    /// same. Returns whether the fast reader accepted it.
    pub(crate) fn agree(bytes: &[u8]) -> bool {
        let now = 1_700_000_000.5;
        match decode_hot_at(bytes, now) {
            None => false,
            Some(fast) => {
                match reference(bytes, now) {
                    Ok(Some(r)) => same(&fast, &r),
                    other => {
                        panic!("the fast reader accepted what the reference reads as {other:?}")
                    }
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check::{agree, reference};
    use super::*;
    use crate::wire::{encode_value, Message};
    use hopper_stats::RequestStats;

    const NOW: f64 = 1_700_000_000.5;

    /// A report of `names` entries with varied times, failures and sizes.
    fn generated(seed: u64, names: usize, with_hdr: bool) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut st = RequestStats::new(false, 1000.25);
        for i in 0..names {
            let name = format!("/item/{i}?q={}", "x".repeat(rng.usize(0..40)));
            let method = ["GET", "POST", "PUT"][rng.usize(0..3)];
            for _ in 0..rng.usize(1..30) {
                let t = match rng.u8(..10) {
                    0 => None,
                    1 => Some(rng.f64() * 60_000.0),
                    _ => Some(rng.f64() * 300.0),
                };
                let now = 1000.5 + rng.f64() * 3.0;
                st.log_request(method, &name, t, rng.u64(0..100_000), now);
                if rng.u8(..10) == 0 {
                    st.log_error(method, &name, &format!("HTTPError('{}')", rng.u8(..3)), now);
                }
            }
        }
        let report = StatsReport {
            report: st.take_worker_report(1003.0),
            user_classes_count: [("A".to_string(), 3), ("B".to_string(), 1)].into(),
            user_count: 4,
            extra: Vec::new(),
            hdr: None,
            hdr_samples: None,
        };
        Message::new("stats", report.to_value(with_hdr), "worker_1").encode()
    }

    fn encode(kind: &str, data: Value) -> Vec<u8> {
        Message::new(kind, data, "worker_1").encode()
    }

    /// A generated report's data with `edit` applied.
    fn edited(edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
        let m = Message::decode(&generated(1, 3, true)).unwrap();
        let Value::Map(mut pairs) = m.data else {
            panic!("not a map")
        };
        edit(&mut pairs);
        encode("stats", Value::Map(pairs))
    }

    #[test]
    fn generated_reports_read_as_the_reference_reads_them() {
        for seed in 0..40 {
            for with_hdr in [false, true] {
                let bytes = generated(seed, seed as usize * 3, with_hdr);
                assert!(agree(&bytes), "seed {seed} hdr {with_hdr} not read fast");
                let Some(HotMessage::Stats { report, .. }) = decode_hot_at(&bytes, NOW) else {
                    panic!("not a report")
                };
                assert_eq!(report.hdr.is_some(), with_hdr);
            }
        }
    }

    #[test]
    fn reused_buffers_read_as_fresh_ones() {
        let mut flat = FlatReport::default();
        // Sizes go down and up, with and without histograms, and a heartbeat in between:
        // nothing of an earlier report may show in a later one.
        for seed in 0..12 {
            let bytes = generated(seed, [20, 3, 0, 11][seed as usize % 4], seed % 3 != 0);
            let fresh = decode_hot_at(&bytes, NOW).unwrap();
            let Some(HotRead::Stats { node_id }) = read_hot(&bytes, NOW, &mut flat) else {
                panic!("not read fast")
            };
            let reused = HotMessage::Stats {
                node_id,
                report: Box::new(flat.to_stats_report()),
            };
            super::check::same(&reused, &fresh);
            let beat = encode(
                "heartbeat",
                Value::Map(vec![
                    ("state".into(), "running".into()),
                    ("current_cpu_usage".into(), 1.5.into()),
                ]),
            );
            assert!(matches!(
                read_hot(&beat, NOW, &mut flat),
                Some(HotRead::Heartbeat { .. })
            ));
        }
    }

    /// Everything merging puts in a master's statistics, comparable.
    fn merged_parts(s: &RequestStats) -> Vec<impl PartialEq + std::fmt::Debug> {
        let part = |e: &StatsEntry| {
            let hdr: Vec<(u64, u64)> = e
                .hdr
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            (
                e.name.clone(),
                e.method.clone(),
                format!("{:?}", e.figures()),
                e.response_times.clone(),
                e.num_reqs_per_sec.clone(),
                e.num_fail_per_sec.clone(),
                hdr,
                e.response_times_cache.len(),
            )
        };
        let mut parts: Vec<_> = s.entries.values().map(part).collect();
        parts.push(part(&s.total));
        parts.push((
            format!("{:?}", s.errors),
            String::new(),
            String::new(),
            BTreeMap::new(),
            BTreeMap::new(),
            BTreeMap::new(),
            Vec::new(),
            0,
        ));
        parts
    }

    #[test]
    fn merging_from_the_buffers_equals_merging_the_reference_reading() {
        let mut fast = RequestStats::new(true, 1000.0);
        let mut reference = RequestStats::new(true, 1000.0);
        let mut flat = FlatReport::default();
        for seed in 0..30 {
            // Locust's reports (no histograms) and Hopper's, with names seen before and new.
            let bytes = generated(seed % 7, 2 + seed as usize % 9, seed % 2 == 0);
            assert!(matches!(
                read_hot(&bytes, NOW, &mut flat),
                Some(HotRead::Stats { .. })
            ));
            flat.merge_into(&mut fast);
            let Ok(Some(HotMessage::Stats { report, .. })) = check::reference(&bytes, NOW) else {
                panic!("the reference did not read a report")
            };
            report.merge_into(&mut reference);
        }
        assert!(fast.total.num_requests > 0 && !fast.total.hdr.is_empty());
        assert_eq!(merged_parts(&fast), merged_parts(&reference));
    }

    #[test]
    fn heartbeats_read_as_the_reference_reads_them() {
        let beat = |pairs: Vec<(&str, Value)>| {
            encode(
                "heartbeat",
                Value::Map(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (Value::from(k), v))
                        .collect(),
                ),
            )
        };
        let ok = [
            beat(vec![
                ("state", Value::from("running")),
                ("current_cpu_usage", Value::F64(12.5)),
                ("current_memory_usage", Value::from(123_456_789u64)),
            ]),
            beat(vec![
                ("current_cpu_usage", Value::from(3u64)),
                ("state", Value::from("ready")),
                ("current_memory_usage", Value::Nil),
            ]),
            beat(vec![
                ("state", Value::from("spawning")),
                ("current_cpu_usage", Value::from(-1i64)),
                ("current_memory_usage", Value::F64(1e6 + 0.5)),
            ]),
            beat(vec![
                ("state", Value::from("ready")),
                ("current_cpu_usage", Value::F32(0.25)),
            ]),
        ];
        for b in &ok {
            assert!(agree(b));
        }
        // Not read fast, and the reference has its say.
        for b in [
            beat(vec![("state", Value::from("ready"))]),
            beat(vec![
                ("state", Value::from(1u64)),
                ("current_cpu_usage", Value::from(3u64)),
            ]),
            beat(vec![
                ("state", Value::from("ready")),
                ("current_cpu_usage", Value::from(3u64)),
                ("current_memory_usage", Value::from(-5i64)),
            ]),
            encode("heartbeat", Value::Nil),
        ] {
            assert!(!agree(&b));
            assert!(reference(&b, NOW).is_err());
        }
    }

    #[test]
    fn other_messages_are_left_to_the_reference() {
        for b in [
            encode("spawning", Value::Nil),
            encode("client_ready", Value::from("2.47.0")),
            encode("stat", Value::Map(vec![])),
        ] {
            assert!(decode_hot_at(&b, NOW).is_none());
        }
    }

    #[test]
    fn custom_keys_reach_the_report_as_values() {
        let b = edited(|p| {
            p.insert(
                1,
                (Value::from("custom"), Value::Array(vec![Value::from(1u64)])),
            );
            p.push((
                Value::from("more"),
                Value::Map(vec![(Value::Nil, Value::F64(0.5))]),
            ));
        });
        assert!(agree(&b));
        let Some(HotMessage::Stats { report, .. }) = decode_hot_at(&b, NOW) else {
            panic!("read fast")
        };
        assert_eq!(report.extra.len(), 2);
        assert_eq!(report.extra[0].0, "custom");
        // A repeated custom key is left to the reference (which keeps the last value).
        let b = edited(|p| {
            p.push((Value::from("custom"), Value::from(1u64)));
            p.push((Value::from("custom"), Value::from(2u64)));
        });
        assert!(!agree(&b));
        let Ok(Some(HotMessage::Stats { report, .. })) = reference(&b, NOW) else {
            panic!("the reference reads it")
        };
        assert_eq!(
            report.extra,
            vec![("custom".to_string(), Value::from(2u64))]
        );
    }

    #[test]
    fn unusual_but_valid_reports_are_never_read_differently() {
        // Each is either read fast and equal, or left to the reference.
        let cases = [
            // A repeated key: the reference keeps the last.
            edited(|p| p.push((Value::from("user_count"), Value::from(9u64)))),
            // No user_count: the sum of the class counts.
            edited(|p| p.retain(|(k, _)| k.as_str() != Some("user_count"))),
            // The extension before the entries.
            edited(|p| p.reverse()),
            // A malformed extension: the reference drops it and reads the rest.
            edited(|p| {
                for (k, v) in p.iter_mut() {
                    if k.as_str() == Some(HOPPER_HDR_KEY) {
                        *v = Value::from(3u64);
                    }
                }
            }),
            // An unknown extension version.
            edited(|p| {
                for (k, v) in p.iter_mut() {
                    if k.as_str() == Some(HOPPER_HDR_KEY) {
                        if let Value::Map(h) = v {
                            h[0].1 = Value::from(2u64);
                        }
                    }
                }
            }),
        ];
        let fast: Vec<bool> = cases.iter().map(|b| agree(b)).collect();
        assert_eq!(fast, [false, true, false, false, false]);
        for b in &cases {
            assert!(matches!(reference(b, NOW), Ok(Some(_))));
        }
    }

    #[test]
    fn wrong_types_are_errors_with_a_path() {
        // Replaces field `field` of the second entry.
        let with = |field: usize, value: Value| {
            edited(|p| {
                if let Value::Array(stats) = &mut p[0].1 {
                    if let Value::Map(entry) = &mut stats[1] {
                        entry[field].1 = value;
                    }
                }
            })
        };
        for (field, value, error) in [
            (4, Value::from("3"), "invalid stats data at `stats[1].num_requests`: expected a non-negative integer, got \"3\""),
            (4, Value::from(-2i64), "invalid stats data at `stats[1].num_requests`: expected a non-negative integer, got -2"),
            (3, Value::Nil, "invalid stats data at `stats[1].start_time`: expected a number, got nil"),
            (11, Value::Nil, "invalid stats data at `stats[1].response_times`: expected a map, got nil"),
            (0, Value::from(5u64), "invalid stats data at `stats[1].name`: expected a string, got 5"),
        ] {
            let b = with(field, value);
            assert!(decode_hot_at(&b, NOW).is_none());
            assert_eq!(reference(&b, NOW).unwrap_err().to_string(), error);
        }
    }

    #[test]
    fn truncated_and_corrupted_bytes_are_never_misread() {
        let bytes = generated(3, 12, true);
        for cut in 0..bytes.len() {
            assert!(decode_hot_at(&bytes[..cut], NOW).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0xc0);
        assert!(decode_hot_at(&longer, NOW).is_none());
        // Single-byte corruptions: whatever is still read fast must be what the reference
        // reads.
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..3000 {
            let mut b = bytes.clone();
            let i = rng.usize(..b.len());
            b[i] = rng.u8(..);
            agree(&b);
        }
    }

    #[test]
    fn hostile_lengths_allocate_nothing_and_fail() {
        // A report claiming 2^32-1 entries, a histogram claiming as many pairs, and a 4 GB
        // string, each with almost nothing behind it.
        let head = |data: &[u8]| {
            let mut b = vec![0x93, 0xa5];
            b.extend_from_slice(b"stats");
            b.extend_from_slice(data);
            b
        };
        let mut stats_key = vec![0x81, 0xa5];
        stats_key.extend_from_slice(b"stats");
        for tail in [
            [&stats_key[..], &[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0][..]].concat(),
            [&stats_key[..], &[0x91, 0xdf, 0xff, 0xff, 0xff, 0xff][..]].concat(),
            [
                &stats_key[..],
                &[0x91, 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff][..],
            ]
            .concat(),
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        ] {
            let b = head(&tail);
            assert!(decode_hot_at(&b, NOW).is_none());
            assert!(reference(&b, NOW).is_err());
        }
        // The extension claiming a huge counts array.
        let b = edited(|p| {
            for (k, v) in p.iter_mut() {
                if k.as_str() == Some(HOPPER_HDR_KEY) {
                    if let Value::Map(h) = v {
                        h[2].1 = Value::Binary(vec![0xdd, 0xff, 0xff, 0xff, 0xff]);
                    }
                }
            }
        });
        assert!(!agree(&b));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        // A custom key nested far deeper than Python's limit, and an entry field nested a
        // little: neither is read fast, and the reference rejects the first.
        let mut deep = Vec::new();
        let mut data = vec![0x81, 0xa6];
        data.extend_from_slice(b"custom");
        data.extend(std::iter::repeat_n(0x91, 100_000));
        data.push(0xc0);
        deep.push(0x93);
        encode_value(&Value::from("stats"), &mut deep);
        deep.extend_from_slice(&data);
        encode_value(&Value::from("w"), &mut deep);
        assert!(decode_hot_at(&deep, NOW).is_none());
        assert!(reference(&deep, NOW).is_err());
        // At the limit, both read it; one level deeper, neither.
        let nested = |levels: usize| {
            edited(|p| {
                let mut v = Value::Nil;
                for _ in 0..levels {
                    v = Value::Array(vec![v]);
                }
                p.push((Value::from("custom"), v));
            })
        };
        let limit = crate::wire::MAX_DEPTH - 2;
        assert!(agree(&nested(limit)));
        assert!(!agree(&nested(limit + 1)));
        assert!(reference(&nested(limit + 1), NOW).is_err());
        let b = edited(|p| {
            if let Value::Array(stats) = &mut p[0].1 {
                if let Value::Map(entry) = &mut stats[0] {
                    entry[4].1 = Value::Array(vec![Value::Array(vec![Value::Nil])]);
                }
            }
        });
        assert!(decode_hot_at(&b, NOW).is_none());
    }
}
