//! Test data feeders: rows of a CSV file handed to users, in one of four orders.
//!
//! Locust users do this by hand (`csv.DictReader` with `itertools.cycle` or a shared
//! iterator, or locust-plugins' `CSVReader`); k6 uses `SharedArray` with papaparse. Here a
//! [`Feeder`] is declared once, registered with the program (`Hopper::new().feeder(&f)`),
//! which loads and checks the file at start-up on every node, and kept by users in their
//! state (it is a cheap handle):
//!
//! ```no_run
//! # use hopper_core::feeder::{Feeder, FeedMode, Exhausted};
//! # use hopper_core::TaskError;
//! let accounts = Feeder::csv("examples/data/accounts.csv")
//!     .mode(FeedMode::Queue)
//!     .when_exhausted(Exhausted::StopTest)
//!     .require(["username", "password"]);
//! # async fn task(accounts: &Feeder) -> Result<(), TaskError> {
//! let row = accounts.next().await?; // Err(StopUser) once the queue is empty
//! let username = row.field("username")?;
//! # Ok(()) }
//! ```
//!
//! # Modes
//!
//! * [`FeedMode::Queue`]: each row is handed out once, in file order; when none is left the
//!   user that asks is stopped and, with [`Exhausted::StopTest`] (the default), the whole
//!   test ends ([`crate::population::quit_test`]). In master/worker mode with a Hopper master
//!   the master owns the queue and leases rows to workers in batches, so each row is used
//!   once across the whole cluster (see [`cluster`]).
//! * [`FeedMode::Circular`] (the default): file order, starting over after the last row.
//! * [`FeedMode::Random`]: a uniformly random row each time.
//! * [`FeedMode::Shuffle`]: every row once per pass, in a fresh random order each pass.
//!
//! Circular, random and shuffle feeders work on each process's own copy of the file.
//!
//! # The file
//!
//! RFC 4180 CSV read by the `csv` crate: comma-separated, fields quoted with `"` (a quoted
//! field may hold commas, line breaks and `""` for a quote), LF or CRLF line ends, blank lines
//! skipped, a UTF-8 byte order mark ignored, fields kept as written (no trimming). The first
//! line is the header: it names the columns, each name non-empty and unique. Every row must
//! have as many fields as the header; the file must be UTF-8 and have at least one row; a
//! quote that is never closed is an error (the `csv` crate would silently read to the end of
//! the file). Each problem is a start-up error naming the file and line:
//! `examples/data/accounts.csv line 7: expected 2 fields (username, password), found 3`.
//!
//! Rows stay in memory (one copy per process, shared by its users). Rows are consumed across
//! tests: a new test started from the web UI continues the queue where the last one stopped;
//! restart the program to start over (a shared Python iterator behaves the same).

use crate::population::quit_test;
use crate::task::TaskError;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// In which order a feeder hands out its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedMode {
    /// Each row once, in file order, then [`Exhausted`] decides (cluster-wide under a
    /// Hopper master).
    Queue,
    /// File order, wrapping around after the last row.
    #[default]
    Circular,
    /// A uniformly random row each call.
    Random,
    /// Each row once per pass, in a fresh random order every pass.
    Shuffle,
}

impl FeedMode {
    fn name(self) -> &'static str {
        match self {
            FeedMode::Queue => "queue",
            FeedMode::Circular => "circular",
            FeedMode::Random => "random",
            FeedMode::Shuffle => "shuffle",
        }
    }
}

/// What happens when a queue feeder has no rows left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exhausted {
    /// End the whole test, as Locust's `environment.runner.quit()` does (users that ask for a
    /// row meanwhile stop). Under a Hopper master, the master ends it once every worker has
    /// used up the rows it leased.
    #[default]
    StopTest,
    /// Stop each user that asks for a row (Locust's `StopUser`); the test goes on.
    StopUser,
}

/// A start-up problem with a feeder: its file (and line), or its registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedError {
    file: Option<String>,
    line: Option<u64>,
    message: String,
}

impl FeedError {
    fn in_file(path: &Path, line: Option<u64>, message: impl Into<String>) -> FeedError {
        FeedError {
            file: Some(path.display().to_string()),
            line,
            message: message.into(),
        }
    }

    /// The file, as the program named it.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The 1-based line of the file, when the problem is on one.
    pub fn line(&self) -> Option<u64> {
        self.line
    }
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file} line {line}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FeedError {}

/// The column names of one file, shared by its rows.
#[derive(Debug)]
struct Columns {
    feeder: String,
    names: Vec<String>,
}

/// One row of a feeder's file: values by column name.
///
/// [`Row::field`] is what tasks normally use: an unknown column fails the task with a
/// message naming the feeder and its columns (a typo shows up as a task exception, not a
/// panic). A row serializes as a JSON object `{column: value}`, so `.json(&row)` posts it.
#[derive(Clone)]
pub struct Row {
    columns: Arc<Columns>,
    values: Arc<[String]>,
}

impl Row {
    /// The value in `column`, if the file has that column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let at = self.columns.names.iter().position(|n| n == column)?;
        self.values.get(at).map(String::as_str)
    }

    /// The value in `column`; an unknown column fails the task (recorded as a task exception
    /// where `field` was called), e.g. `feeder accounts has no column "usr" (columns:
    /// username, password)`.
    #[track_caller]
    pub fn field(&self, column: &str) -> Result<&str, TaskError> {
        match self.get(column) {
            Some(v) => Ok(v),
            None => Err(TaskError::failed(format!(
                "feeder {} has no column {column:?} (columns: {})",
                self.columns.feeder,
                self.columns.names.join(", ")
            ))),
        }
    }

    /// The column names, in file order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.names.iter().map(String::as_str)
    }

    /// The values, in column order.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// `(column, value)` pairs, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.columns().zip(self.values.iter().map(String::as_str))
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Row {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A loaded file.
struct Table {
    columns: Arc<Columns>,
    rows: Vec<Row>,
}

/// How a feeder was declared.
#[derive(Debug, Clone)]
struct Config {
    name: String,
    path: PathBuf,
    mode: FeedMode,
    exhausted: Exhausted,
    required: Vec<String>,
}

/// Rows leased from a Hopper master, not yet handed to a user.
#[derive(Default)]
struct Leased {
    rows: VecDeque<Row>,
    /// The master said it has no rows left.
    exhausted: bool,
}

/// Rows asked of the master at first, and the bounds the lease size adapts within.
const FIRST_LEASE: usize = 10;
const MAX_LEASE: usize = 1000;
/// A lease used up faster than this doubles the next one; one lasting longer than
/// [`SLOW_LEASE`] halves it. About a second of rows per lease keeps round trips rare and
/// leftovers small.
const FAST_LEASE: Duration = Duration::from_secs(1);
const SLOW_LEASE: Duration = Duration::from_secs(10);
/// How long a user waits for the master's answer to a lease.
const LEASE_TIMEOUT: Duration = Duration::from_secs(10);

struct Inner {
    config: Config,
    table: OnceLock<Table>,
    /// Queue and circular: the next row's position (counted past the end for a queue).
    next: AtomicU64,
    /// Shuffle: the current pass's order and position in it.
    shuffle: Mutex<(Vec<usize>, usize)>,
    /// Queue under a Hopper master.
    leased: Mutex<Leased>,
    /// Held while a lease is asked for: waiting users share one outstanding lease.
    fetching: tokio::sync::Mutex<()>,
    lease_size: AtomicUsize,
    last_lease: Mutex<Option<Instant>>,
    /// Logged once: running out, or reading the worker's own copy under a Locust master.
    noted_exhausted: AtomicBool,
    noted_own_copy: AtomicBool,
}

/// A source of test data rows: a cheap-to-clone handle (clones share the rows and the
/// position), declared once and kept by users in their state.
#[derive(Clone)]
pub struct Feeder {
    inner: Arc<Inner>,
}

impl fmt::Debug for Feeder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.config;
        f.debug_struct("Feeder")
            .field("name", &c.name)
            .field("path", &c.path)
            .field("mode", &c.mode)
            .field("exhausted", &c.exhausted)
            .field("rows", &self.len())
            .finish()
    }
}

impl Feeder {
    /// A feeder over the CSV file at `path` (relative paths are relative to the working
    /// directory, as Python's `open`), named after the file's stem (`accounts` for
    /// `data/accounts.csv`), in [`FeedMode::Circular`] order. Nothing is read until the
    /// feeder is registered (`Hopper::new().feeder(&f)`), which loads and checks the file
    /// before any user starts.
    pub fn csv(path: impl Into<PathBuf>) -> Feeder {
        let path = path.into();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Feeder::from_config(Config {
            name,
            path,
            mode: FeedMode::default(),
            exhausted: Exhausted::default(),
            required: Vec::new(),
        })
    }

    fn from_config(config: Config) -> Feeder {
        Feeder {
            inner: Arc::new(Inner {
                config,
                table: OnceLock::new(),
                next: AtomicU64::new(0),
                shuffle: Mutex::new((Vec::new(), 0)),
                leased: Mutex::new(Leased::default()),
                fetching: tokio::sync::Mutex::new(()),
                lease_size: AtomicUsize::new(FIRST_LEASE),
                last_lease: Mutex::new(None),
                noted_exhausted: AtomicBool::new(false),
                noted_own_copy: AtomicBool::new(false),
            }),
        }
    }

    /// A builder step: the same declaration with one change, and nothing loaded yet.
    fn with(self, change: impl FnOnce(&mut Config)) -> Feeder {
        let mut config = self.inner.config.clone();
        change(&mut config);
        Feeder::from_config(config)
    }

    /// Names the feeder (in messages, and on the wire between master and workers); names
    /// must be unique within a program.
    pub fn name(self, name: impl Into<String>) -> Feeder {
        let name = name.into();
        self.with(|c| c.name = name)
    }

    /// The order rows are handed out in.
    pub fn mode(self, mode: FeedMode) -> Feeder {
        self.with(|c| c.mode = mode)
    }

    /// What a queue does when it runs out (ignored by the other modes, which never do).
    pub fn when_exhausted(self, exhausted: Exhausted) -> Feeder {
        self.with(|c| c.exhausted = exhausted)
    }

    /// Columns the header must have: a file without them is a start-up error (which also
    /// catches a file whose first line is data rather than a header).
    pub fn require<I, C>(self, columns: I) -> Feeder
    where
        I: IntoIterator<Item = C>,
        C: Into<String>,
    {
        let columns: Vec<String> = columns.into_iter().map(Into::into).collect();
        self.with(|c| c.required = columns)
    }

    /// The feeder's name.
    pub fn feeder_name(&self) -> &str {
        &self.inner.config.name
    }

    /// The file, as given.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The order rows are handed out in.
    pub fn feed_mode(&self) -> FeedMode {
        self.inner.config.mode
    }

    /// What a queue does when it runs out.
    pub fn exhausted_policy(&self) -> Exhausted {
        self.inner.config.exhausted
    }

    /// Rows in this process's copy of the file (`None` until loaded).
    pub fn len(&self) -> Option<usize> {
        self.inner.table.get().map(|t| t.rows.len())
    }

    /// True when loaded and the file has no rows (never: such a file fails to load).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Reads and checks the file (once; later calls return at once). Registration does
    /// this at start-up.
    pub fn load(&self) -> Result<(), FeedError> {
        if self.inner.table.get().is_some() {
            return Ok(());
        }
        let config = &self.inner.config;
        let bytes = std::fs::read(&config.path).map_err(|e| {
            FeedError::in_file(&config.path, None, format!("cannot read the file: {e}"))
        })?;
        let (names, rows) = parse(&bytes, &config.required)
            .map_err(|(line, message)| FeedError::in_file(&config.path, line, message))?;
        let columns = Arc::new(Columns {
            feeder: config.name.clone(),
            names,
        });
        let rows = rows
            .into_iter()
            .map(|values| Row {
                columns: columns.clone(),
                values: values.into(),
            })
            .collect();
        // Two threads loading at once read the same file; the first result is kept.
        let _ = self.inner.table.set(Table { columns, rows });
        Ok(())
    }

    /// A one-line description for the start-up log.
    pub fn describe(&self) -> String {
        let c = &self.inner.config;
        let rows = self.len().map_or("not loaded".to_string(), |n| {
            format!("{n} {}", if n == 1 { "row" } else { "rows" })
        });
        let policy = match (c.mode, c.exhausted) {
            (FeedMode::Queue, Exhausted::StopTest) => ", then the test stops",
            (FeedMode::Queue, Exhausted::StopUser) => ", then users stop",
            _ => "",
        };
        format!(
            "Feeder {}: {rows} from {} ({} order{policy})",
            c.name,
            c.path.display(),
            c.mode.name()
        )
    }

    /// The next row, in the feeder's order.
    ///
    /// * `Err(TaskError::StopUser)` when a queue is exhausted (with [`Exhausted::StopTest`]
    ///   the test is also asked to end), so `?` stops the user as Locust's `StopUser` does;
    /// * a failed task (a task exception) when the feeder was never registered, or a worker
    ///   cannot lease rows from its master.
    ///
    /// Async because a worker may have to lease rows from its master; every other case
    /// answers without waiting.
    #[track_caller]
    pub fn next(&self) -> impl Future<Output = Result<Row, TaskError>> + Send + '_ {
        let at = Location::caller();
        async move { self.next_row(at).await }
    }

    async fn next_row(&self, at: &'static Location<'static>) -> Result<Row, TaskError> {
        let inner = &*self.inner;
        let Some(table) = inner.table.get() else {
            return Err(failed_at(
                at,
                format!(
                    "feeder {} ({}) is not registered: add .feeder(&feeder) to Hopper::new() so the file is loaded and checked at start-up",
                    inner.config.name,
                    inner.config.path.display()
                ),
            ));
        };
        let len = table.rows.len();
        match inner.config.mode {
            FeedMode::Circular => {
                let i = inner.next.fetch_add(1, Ordering::Relaxed) % len as u64;
                Ok(table.rows[i as usize].clone())
            }
            FeedMode::Random => Ok(table.rows[fastrand::usize(..len)].clone()),
            FeedMode::Shuffle => {
                let mut guard = lock(&inner.shuffle);
                let (order, pos) = &mut *guard;
                if *pos >= order.len() {
                    *order = (0..len).collect();
                    fastrand::shuffle(order);
                    *pos = 0;
                }
                let row = table.rows[order[*pos]].clone();
                *pos += 1;
                Ok(row)
            }
            FeedMode::Queue => match source() {
                Source::Local => self.next_local(table),
                Source::OwnCopy => {
                    if !inner.noted_own_copy.swap(true, Ordering::Relaxed) {
                        tracing::warn!(target: "hopper.feeder", "Feeder {}: the master is not Hopper, so this worker reads its own copy of {}: each row is used once on this worker only", inner.config.name, inner.config.path.display());
                    }
                    self.next_local(table)
                }
                Source::Master(tx) => self.next_leased(tx, at).await,
                Source::NoMaster => Err(failed_at(
                    at,
                    format!(
                        "feeder {}: not connected to the master, which hands out the rows",
                        inner.config.name
                    ),
                )),
            },
        }
    }

    /// A queue over this process's own copy.
    fn next_local(&self, table: &Table) -> Result<Row, TaskError> {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed);
        match table.rows.get(usize::try_from(i).unwrap_or(usize::MAX)) {
            Some(row) => Ok(row.clone()),
            None => Err(self.exhausted(true)),
        }
    }

    /// Out of rows: stop the user and, when this process owns the queue and the policy says
    /// so, the test.
    fn exhausted(&self, owns_queue: bool) -> TaskError {
        let c = &self.inner.config;
        let first = !self.inner.noted_exhausted.swap(true, Ordering::Relaxed);
        match c.exhausted {
            Exhausted::StopTest if owns_queue => {
                quit_test(format!("feeder {} ran out of rows", c.name));
            }
            Exhausted::StopTest => {
                if first {
                    tracing::info!(target: "hopper.feeder", "Feeder {} ran out of rows here; the master ends the test once every worker has", c.name);
                }
            }
            Exhausted::StopUser => {
                if first {
                    tracing::info!(target: "hopper.feeder", "Feeder {} ran out of rows: users that ask for one stop", c.name);
                }
            }
        }
        TaskError::StopUser
    }

    /// A queue whose rows a Hopper master leases out.
    async fn next_leased(
        &self,
        tx: mpsc::UnboundedSender<LeaseRequest>,
        at: &'static Location<'static>,
    ) -> Result<Row, TaskError> {
        let inner = &*self.inner;
        let name = &inner.config.name;
        loop {
            {
                let mut leased = lock(&inner.leased);
                if let Some(row) = leased.rows.pop_front() {
                    return Ok(row);
                }
                if leased.exhausted {
                    return Err(self.exhausted(false));
                }
            }
            let _turn = inner.fetching.lock().await;
            {
                // Another user's lease may have arrived while this one waited its turn.
                let leased = lock(&inner.leased);
                if !leased.rows.is_empty() || leased.exhausted {
                    continue;
                }
            }
            let count = self.lease_size();
            let (done, answer) = oneshot::channel();
            let request = LeaseRequest {
                feeder: name.clone(),
                count,
                done,
            };
            let lost = || {
                failed_at(
                    at,
                    format!("feeder {name}: lost the master while leasing rows"),
                )
            };
            if tx.send(request).is_err() {
                return Err(lost());
            }
            match tokio::time::timeout(LEASE_TIMEOUT, answer).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(message))) => return Err(failed_at(at, message)),
                Ok(Err(_)) => return Err(lost()),
                Err(_) => {
                    return Err(failed_at(
                        at,
                        format!(
                            "feeder {name}: the master did not answer a lease of {count} rows within {} s",
                            LEASE_TIMEOUT.as_secs()
                        ),
                    ))
                }
            }
        }
    }

    /// How many rows to ask for now: about a second's worth, adapting to how long the
    /// previous lease lasted.
    fn lease_size(&self) -> usize {
        let inner = &*self.inner;
        let mut last = lock(&inner.last_lease);
        let mut size = inner.lease_size.load(Ordering::Relaxed);
        if let Some(at) = *last {
            let lasted = at.elapsed();
            if lasted < FAST_LEASE {
                size = (size * 2).min(MAX_LEASE);
            } else if lasted > SLOW_LEASE {
                size = (size / 2).max(FIRST_LEASE);
            }
        }
        inner.lease_size.store(size, Ordering::Relaxed);
        *last = Some(Instant::now());
        size
    }
}

/// A failed task located where the task called [`Feeder::next`].
fn failed_at(at: &'static Location<'static>, message: String) -> TaskError {
    TaskError::Failed {
        message,
        file: at.file().to_string(),
        line: at.line(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// A problem in the file: the line (when known) and what is wrong there.
type Problem = (Option<u64>, String);

/// The header and rows of a CSV file, or the first problem in it.
fn parse(bytes: &[u8], required: &[String]) -> Result<(Vec<String>, Vec<Vec<String>>), Problem> {
    // Spreadsheet programs often start UTF-8 files with a byte order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Some(line) = unterminated_quote(bytes) {
        return Err((
            Some(line),
            "a quoted field starts on this line and is never closed (a missing \")".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header = reader.byte_headers().map_err(csv_problem)?.clone();
    let header_line = line_at(bytes, header.position());
    if header.is_empty() {
        return Err((
            Some(1),
            "the file is empty: its first line must be a header row naming the columns".into(),
        ));
    }
    let mut names = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw).map_err(|_| {
            (
                Some(header_line),
                format!("column {} of the header row is not valid UTF-8", i + 1),
            )
        })?;
        if name.is_empty() {
            return Err((
                Some(header_line),
                format!(
                    "column {} of the header row has no name (the first line must name every column)",
                    i + 1
                ),
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err((
                Some(header_line),
                format!("the header row names column {name:?} twice"),
            ));
        }
        names.push(name.to_string());
    }
    for want in required {
        if !names.contains(want) {
            return Err((
                Some(header_line),
                format!(
                    "the header row has no column {want:?} (it names: {}); the first line must name the columns",
                    names.join(", ")
                ),
            ));
        }
    }
    let mut rows = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| match e.kind() {
            // Name the columns, and say why a row may have too many fields.
            csv::ErrorKind::UnequalLengths { pos, len, .. } => {
                let hint = if *len as usize > names.len() {
                    "; a field containing a comma must be quoted"
                } else {
                    ""
                };
                (
                    Some(line_at(bytes, pos.as_ref())),
                    format!(
                        "expected {} fields ({}), found {len}{hint}",
                        names.len(),
                        names.join(", ")
                    ),
                )
            }
            _ => csv_problem(e),
        })?;
        let mut values = Vec::with_capacity(record.len());
        for (i, raw) in record.iter().enumerate() {
            let value = std::str::from_utf8(raw).map_err(|_| {
                (
                    Some(line_at(bytes, record.position())),
                    format!("the value in column {:?} is not valid UTF-8", names[i]),
                )
            })?;
            values.push(value.to_string());
        }
        rows.push(values);
    }
    if rows.is_empty() {
        return Err((
            Some(header_line),
            "the file has a header row but no data rows".into(),
        ));
    }
    Ok((names, rows))
}

/// The 1-based line a record starts on. The `csv` crate's own line is where it started
/// reading, before the blank lines it skips; only error messages need this, so counting
/// from the start of the file costs nothing otherwise.
fn line_at(bytes: &[u8], pos: Option<&csv::Position>) -> u64 {
    let Some(pos) = pos else { return 1 };
    let from = usize::try_from(pos.byte())
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let start = bytes[from..]
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .map_or(bytes.len(), |skip| from + skip);
    1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64
}

/// Turns the `csv` crate's error into a line and a message (reading from memory, only an
/// I/O-free error such as a row of the wrong length can happen; those get their own text).
fn csv_problem(e: csv::Error) -> Problem {
    (e.position().map(|p| p.line()), e.to_string())
}

/// The line where a quoted field opens and never closes, read as the `csv` crate reads
/// fields (a field is quoted when it starts with `"`; `""` inside is a quote). The crate
/// itself ends such a field at the end of the file without an error, which would turn a
/// missing quote into one long, wrong value.
fn unterminated_quote(bytes: &[u8]) -> Option<u64> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut line = 1u64;
    let mut opened = 1u64;
    for &b in bytes {
        state = match (state, b) {
            (State::FieldStart, b'"') => {
                opened = line;
                State::Quoted
            }
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (_, b',' | b'\n' | b'\r') => State::FieldStart,
            _ => State::Unquoted,
        };
        if b == b'\n' {
            line += 1;
        }
    }
    matches!(state, State::Quoted).then_some(opened)
}

// ---------------------------------------------------------------------------------------------
// Registration and the cluster
// ---------------------------------------------------------------------------------------------

/// Registered feeders by name: what the master hands out and where leased rows go.
static REGISTRY: LazyLock<Mutex<BTreeMap<String, Feeder>>> = LazyLock::new(Default::default);

/// Loads and checks every feeder of a program and makes them known by name (the master
/// serves leases by name; a worker files leased rows by name). Names must be unique.
pub fn register(feeders: &[Feeder]) -> Result<(), FeedError> {
    for (i, f) in feeders.iter().enumerate() {
        if let Some(other) = feeders[..i]
            .iter()
            .find(|o| o.feeder_name() == f.feeder_name() && !Arc::ptr_eq(&o.inner, &f.inner))
        {
            return Err(FeedError {
                file: None,
                line: None,
                message: format!(
                    "two feeders are named {:?} ({} and {}): give one another name with .name(...)",
                    f.feeder_name(),
                    other.path().display(),
                    f.path().display()
                ),
            });
        }
    }
    for f in feeders {
        f.load()?;
    }
    let mut registry = lock(&REGISTRY);
    for f in feeders {
        registry.insert(f.feeder_name().to_string(), f.clone());
    }
    Ok(())
}

fn registered(name: &str) -> Option<Feeder> {
    lock(&REGISTRY).get(name).cloned()
}

/// Where queue feeders get their rows in this process.
#[derive(Clone)]
enum Source {
    /// A local run, or a master: the process's own copy.
    Local,
    /// A worker under a Locust master (which knows nothing of leases): its own copy.
    OwnCopy,
    /// A worker under a Hopper master: leased from it.
    Master(mpsc::UnboundedSender<LeaseRequest>),
    /// A worker between masters.
    NoMaster,
}

static SOURCE: LazyLock<Mutex<Source>> = LazyLock::new(|| Mutex::new(Source::Local));

fn source() -> Source {
    lock(&SOURCE).clone()
}

fn set_source(source: Source) {
    *lock(&SOURCE) = source;
}

/// A worker's user asking for rows of a queue feeder: the worker sends `hopper_feed_lease`
/// to its master and, when `hopper_feed_rows` comes back, files the rows with
/// [`cluster::deliver`] and answers `done` (with the master's error message, if any).
#[derive(Debug)]
pub struct LeaseRequest {
    /// The feeder's name.
    pub feeder: String,
    /// How many rows to ask for.
    pub count: usize,
    /// Answered once the rows are filed (or could not be had).
    pub done: oneshot::Sender<Result<(), String>>,
}

/// The cluster's side of queue feeders, used by the master and the worker (hopper-cluster).
///
/// Under a Hopper master each queue feeder's rows are handed out by the master: a worker
/// leases them in batches (10 at first, then about a second's worth, at most 1000) by
/// feeder name, and users on the worker share one outstanding lease per feeder. Rows leased
/// to a worker that vanishes, or that reconnects, are lost, never handed out again: each row
/// is used at most once, and exactly once while workers stay connected. With
/// [`Exhausted::StopTest`] the master ends the test once its queue is empty and every
/// worker that leased rows has come back for more and been told there are none left.
///
/// Under a Locust master each worker reads its own copy, so a row is used once per worker.
pub mod cluster {
    use super::*;

    /// Rows a master hands out for one lease.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct HandOut {
        /// The rows, each in the header's column order; empty once the queue is exhausted.
        pub rows: Vec<Vec<String>>,
        /// The feeder ends the test when exhausted ([`Exhausted::StopTest`]).
        pub stop_test: bool,
    }

    /// The most rows one lease may take.
    pub const MAX_LEASE_ROWS: usize = MAX_LEASE;

    /// Master: the next `count` rows (at least 1, at most [`MAX_LEASE_ROWS`]) of the
    /// registered queue feeder `feeder`, each handed out once.
    pub fn hand_out(feeder: &str, count: usize) -> Result<HandOut, String> {
        let f = registered(feeder).ok_or_else(|| {
            format!("the master has no feeder named {feeder:?}: master and workers must run the same program")
        })?;
        if f.feed_mode() != FeedMode::Queue {
            return Err(format!(
                "feeder {feeder} is a {} feeder on the master, not a queue: master and workers must run the same program",
                f.feed_mode().name()
            ));
        }
        let table = f
            .inner
            .table
            .get()
            .ok_or_else(|| format!("feeder {feeder} is not loaded on the master"))?;
        let count = count.clamp(1, MAX_LEASE);
        let len = table.rows.len();
        let start = f.inner.next.fetch_add(count as u64, Ordering::Relaxed);
        let start = usize::try_from(start).unwrap_or(usize::MAX).min(len);
        let end = start.saturating_add(count).min(len);
        Ok(HandOut {
            rows: table.rows[start..end]
                .iter()
                .map(|r| r.values.to_vec())
                .collect(),
            stop_test: f.exhausted_policy() == Exhausted::StopTest,
        })
    }

    /// Worker: files rows the master leased for `feeder`; `exhausted` says the master has
    /// none left. Rows must have this worker's column count (same program, same file).
    pub fn deliver(feeder: &str, rows: Vec<Vec<String>>, exhausted: bool) -> Result<(), String> {
        let f = registered(feeder)
            .ok_or_else(|| format!("the master sent rows for an unknown feeder {feeder:?}"))?;
        let table = f
            .inner
            .table
            .get()
            .ok_or_else(|| format!("feeder {feeder} is not loaded on this worker"))?;
        let width = table.columns.names.len();
        if let Some(bad) = rows.iter().find(|r| r.len() != width) {
            return Err(format!(
                "feeder {feeder}: the master sent a row of {} fields, but {} has {width} columns here: master and workers must use the same file",
                bad.len(),
                f.path().display()
            ));
        }
        let mut leased = lock(&f.inner.leased);
        leased.rows.extend(rows.into_iter().map(|values| Row {
            columns: table.columns.clone(),
            values: values.into(),
        }));
        if exhausted {
            leased.exhausted = true;
        }
        Ok(())
    }

    /// Worker: connected to a Hopper master; queue feeders lease rows through `requests`.
    /// Rows leased from an earlier connection are dropped (a restarted master starts its
    /// queue over, and the rows must not be used twice).
    pub fn lease_from_master(requests: mpsc::UnboundedSender<LeaseRequest>) {
        forget_leases();
        set_source(Source::Master(requests));
    }

    /// Worker: connected to a Locust master; queue feeders read this worker's own copy.
    pub fn use_own_copy() {
        forget_leases();
        set_source(Source::OwnCopy);
    }

    /// Worker: not connected to a master; queue feeders fail the task until it is.
    pub fn no_master() {
        set_source(Source::NoMaster);
    }

    fn forget_leases() {
        let feeders: Vec<Feeder> = lock(&REGISTRY).values().cloned().collect();
        for f in feeders {
            let mut leased = lock(&f.inner.leased);
            leased.rows.clear();
            leased.exhausted = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn parsed(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>), Problem> {
        parse(text.as_bytes(), &[])
    }

    fn problem(text: &[u8]) -> (Option<u64>, String) {
        parse(text, &[]).unwrap_err()
    }

    /// A loaded feeder over `text`, in a file of its own.
    fn feeder(tag: &str, text: &str, mode: FeedMode, exhausted: Exhausted) -> Feeder {
        let dir = std::env::temp_dir().join(format!("hopper-feeder-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{tag}.csv"));
        std::fs::write(&path, text).unwrap();
        let f = Feeder::csv(&path).mode(mode).when_exhausted(exhausted);
        f.load().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        f
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn take(f: &Feeder, n: usize) -> Vec<String> {
        block_on(async {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(f.next().await.unwrap().field("id").unwrap().to_string());
            }
            out
        })
    }

    const IDS: &str = "id\n1\n2\n3\n4\n5\n";

    #[test]
    fn reads_quoted_fields_crlf_blank_lines_and_a_bom() {
        let text = "\u{feff}user,note\r\n\"smith, j\",\"says \"\"hi\"\"\"\r\n\r\nbob,\"two\nlines\"\r\nann,\r\n";
        let (names, rows) = parsed(text).unwrap();
        assert_eq!(names, ["user", "note"]);
        assert_eq!(
            rows,
            [
                vec!["smith, j", "says \"hi\""],
                vec!["bob", "two\nlines"],
                vec!["ann", ""]
            ]
        );
        // A quote inside an unquoted field, or after a closing quote, is a literal quote.
        let (_, rows) = parsed("a,b\nx\"y,\"p\"q\n").unwrap();
        assert_eq!(rows, [vec!["x\"y", "pq"]]);
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_names_its_line() {
        let (line, message) = problem(b"username,password\nalice,a\nbob,b,extra\n");
        assert_eq!(line, Some(3));
        assert_eq!(
            message,
            "expected 2 fields (username, password), found 3; a field containing a comma must be quoted"
        );
        let (line, message) = problem(b"username,password\n\nalice,a\n\ncarol\n");
        assert_eq!(line, Some(5));
        assert_eq!(message, "expected 2 fields (username, password), found 1");
    }

    #[test]
    fn an_unterminated_quote_names_the_line_it_opens_on() {
        let (line, message) = problem(b"id,name\n1,a\n2,\"never closed\n3,c\n4,d\n");
        assert_eq!(line, Some(3));
        assert!(message.contains("never closed"), "{message}");
        // A closed multi-line field and escaped quotes are fine.
        assert!(parsed("id,name\n1,\"a\nb\"\"c\"\n").is_ok());
    }

    #[test]
    fn empty_files_and_bad_headers_are_errors() {
        assert_eq!(
            problem(b""),
            (
                Some(1),
                "the file is empty: its first line must be a header row naming the columns".into()
            )
        );
        assert_eq!(problem(b"\n\n").0, Some(1));
        assert_eq!(
            problem(b"id,name\n"),
            (Some(1), "the file has a header row but no data rows".into())
        );
        assert_eq!(
            problem(b"id,,name\n1,2,3\n"),
            (
                Some(1),
                "column 2 of the header row has no name (the first line must name every column)"
                    .into()
            )
        );
        assert_eq!(
            problem(b"id,id\n1,2\n"),
            (Some(1), "the header row names column \"id\" twice".into())
        );
        let no_header = parse(
            b"alice,secret\nbob,hunter2\n",
            &["username".to_string(), "password".to_string()],
        );
        assert_eq!(
            no_header.unwrap_err(),
            (
                Some(1),
                "the header row has no column \"username\" (it names: alice, secret); the first line must name the columns".into()
            )
        );
    }

    #[test]
    fn invalid_utf8_names_the_line_and_column() {
        assert_eq!(
            problem(b"id,name\n1,ok\n2,caf\xe9\n"),
            (
                Some(3),
                "the value in column \"name\" is not valid UTF-8".into()
            )
        );
    }

    #[test]
    fn load_errors_name_the_file() {
        let missing = Feeder::csv("no/such/dir/accounts.csv");
        let e = missing.load().unwrap_err();
        assert_eq!(e.file(), Some("no/such/dir/accounts.csv"));
        assert_eq!(e.line(), None);
        assert!(
            e.to_string()
                .starts_with("no/such/dir/accounts.csv: cannot read the file: "),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("hopper-feeder-{}-bad", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.csv");
        std::fs::write(&path, "a,b\n1,2\n3\n").unwrap();
        let e = Feeder::csv(&path).load().unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "{} line 3: expected 2 fields (a, b), found 1",
                path.display()
            )
        );
    }

    #[test]
    fn rows_by_column() {
        let f = feeder(
            "columns",
            "username,password\nalice,s1\n",
            FeedMode::Circular,
            Exhausted::StopTest,
        );
        let row = block_on(f.next()).unwrap();
        assert_eq!(row.get("username"), Some("alice"));
        assert_eq!(row.get("nope"), None);
        assert_eq!(row.field("password").unwrap(), "s1");
        match row.field("usr") {
            Err(TaskError::Failed { message, file, .. }) => {
                assert_eq!(
                    message,
                    "feeder columns has no column \"usr\" (columns: username, password)"
                );
                assert!(file.ends_with("feeder.rs"), "{file}");
            }
            other => panic!("expected a failed task, got {other:?}"),
        }
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"username":"alice","password":"s1"}"#
        );
        assert_eq!(
            format!("{row:?}"),
            r#"{"username": "alice", "password": "s1"}"#
        );
    }

    #[test]
    fn queue_hands_out_each_row_once_then_stops_the_user() {
        let f = feeder("queue", IDS, FeedMode::Queue, Exhausted::StopUser);
        assert_eq!(take(&f, 5), ["1", "2", "3", "4", "5"]);
        for _ in 0..3 {
            assert!(matches!(block_on(f.next()), Err(TaskError::StopUser)));
        }
    }

    #[test]
    fn queue_rows_are_unique_across_threads() {
        let f = feeder(
            "threads",
            &format!(
                "id\n{}",
                (0..1000).map(|i| format!("{i}\n")).collect::<String>()
            ),
            FeedMode::Queue,
            Exhausted::StopUser,
        );
        let got: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let f = f.clone();
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        block_on(async {
                            while let Ok(row) = f.next().await {
                                mine.push(row.field("id").unwrap().to_string());
                            }
                        });
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let all: Vec<&String> = got.iter().flatten().collect();
        let unique: BTreeSet<&String> = all.iter().copied().collect();
        assert_eq!(all.len(), 1000);
        assert_eq!(unique.len(), 1000);
    }

    #[test]
    fn circular_wraps_in_file_order() {
        let f = feeder("circular", IDS, FeedMode::Circular, Exhausted::StopTest);
        assert_eq!(
            take(&f, 12),
            ["1", "2", "3", "4", "5", "1", "2", "3", "4", "5", "1", "2"]
        );
    }

    #[test]
    fn shuffle_uses_every_row_once_per_pass_in_fresh_orders() {
        let f = feeder("shuffle", IDS, FeedMode::Shuffle, Exhausted::StopTest);
        let mut orders = BTreeSet::new();
        for _ in 0..40 {
            let pass = take(&f, 5);
            let mut sorted = pass.clone();
            sorted.sort();
            assert_eq!(sorted, ["1", "2", "3", "4", "5"], "one pass: {pass:?}");
            orders.insert(pass);
        }
        // 40 passes over 120 possible orders: a feeder reusing one order would show 1.
        assert!(orders.len() > 1, "{orders:?}");
    }

    #[test]
    fn random_draws_rows_of_the_file() {
        let f = feeder("random", IDS, FeedMode::Random, Exhausted::StopTest);
        let drawn = take(&f, 300);
        let seen: BTreeSet<&str> = drawn.iter().map(String::as_str).collect();
        assert!(seen.iter().all(|id| ["1", "2", "3", "4", "5"].contains(id)));
        // Not file order: 300 draws repeating 1..5 in order would be circular.
        assert_ne!(
            drawn[..10],
            ["1", "2", "3", "4", "5", "1", "2", "3", "4", "5"]
        );
        assert!(seen.len() > 1);
    }

    #[test]
    fn an_unregistered_feeder_fails_the_task_where_next_was_called() {
        let f = Feeder::csv("examples/data/accounts.csv").name("lonely");
        match block_on(f.next()) {
            Err(TaskError::Failed { message, file, .. }) => {
                assert!(
                    message.starts_with(
                        "feeder lonely (examples/data/accounts.csv) is not registered"
                    ),
                    "{message}"
                );
                assert!(file.ends_with("feeder.rs"), "{file}");
            }
            other => panic!("expected a failed task, got {other:?}"),
        }
    }

    #[test]
    fn builder_steps_and_names() {
        let f = Feeder::csv("data/accounts.csv");
        assert_eq!(f.feeder_name(), "accounts");
        assert_eq!(f.feed_mode(), FeedMode::Circular);
        assert_eq!(f.exhausted_policy(), Exhausted::StopTest);
        let f = f
            .name("logins")
            .mode(FeedMode::Queue)
            .when_exhausted(Exhausted::StopUser);
        assert_eq!(f.feeder_name(), "logins");
        assert_eq!(f.feed_mode(), FeedMode::Queue);
        assert_eq!(f.exhausted_policy(), Exhausted::StopUser);
        assert_eq!(f.len(), None);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let a = Feeder::csv("x/dupe.csv");
        let b = Feeder::csv("y/dupe.csv");
        let e = register(&[a.clone(), b]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "two feeders are named \"dupe\" (x/dupe.csv and y/dupe.csv): give one another name with .name(...)"
        );
        // The same feeder twice is one feeder; it then fails to load (no such file).
        let e = register(&[a.clone(), a]).unwrap_err();
        assert_eq!(e.file(), Some("x/dupe.csv"));
    }

    #[test]
    fn the_master_hands_out_each_row_once_and_workers_file_them() {
        let f = feeder("leased", IDS, FeedMode::Queue, Exhausted::StopTest);
        register(std::slice::from_ref(&f)).unwrap();
        let first = cluster::hand_out("leased", 2).unwrap();
        assert_eq!(first.rows, [vec!["1"], vec!["2"]]);
        assert!(first.stop_test);
        let rest = cluster::hand_out("leased", 10).unwrap();
        assert_eq!(rest.rows, [vec!["3"], vec!["4"], vec!["5"]]);
        assert!(cluster::hand_out("leased", 10).unwrap().rows.is_empty());
        assert!(cluster::hand_out("nope", 1)
            .unwrap_err()
            .contains("no feeder named"));
        // Worker side: rows of the wrong width are refused; good ones are filed.
        assert!(
            cluster::deliver("leased", vec![vec!["a".into(), "b".into()]], false)
                .unwrap_err()
                .contains("a row of 2 fields")
        );
        cluster::deliver("leased", vec![vec!["9".into()]], true).unwrap();
        let leased = lock(&f.inner.leased);
        assert_eq!(leased.rows.len(), 1);
        assert!(leased.exhausted);
    }

    #[test]
    fn unterminated_quote_scanner_agrees_with_the_csv_crate_on_field_starts() {
        assert_eq!(unterminated_quote(b"a,b\n\"x\",\"y\"\n"), None);
        assert_eq!(unterminated_quote(b"a,b\nx\"y,z\n"), None);
        assert_eq!(unterminated_quote(b"a,b\n\"x\"\"\n"), Some(2));
        assert_eq!(unterminated_quote(b"a,b\n1,2\n\"open\n"), Some(3));
        assert_eq!(unterminated_quote(b"a\r\n\"x\r\ny\"\r\n"), None);
    }
}
