//! Locust's CSV output (`--csv PREFIX`, `--csv-full-history`, and the web UI's CSV downloads),
//! byte for byte.
//!
//! The text builders are pure: [`requests_csv`], [`failures_csv`] and [`exceptions_csv`] are
//! whole files (what `/stats/requests/csv`, `/stats/failures/csv` and `/exceptions/csv`
//! serve); [`history_csv_header`] and [`history_csv_rows`] are the history file's header and
//! the rows one tick appends. [`CsvWriter`] drives the four files as Locust's `stats_writer`
//! loop does.
//!
//! Formatting follows Python's `csv` module with its default dialect: comma separated, `\r\n`
//! after every row, a field quoted (with `"` doubled) only when it holds a comma, a quote, `\r`
//! or `\n`, and a row made of one empty field written as `""`. Numbers are Python's `str()`:
//! ints plain, floats in `repr` form (`145.0`, `0.967741935483871`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::entry::{percentile_label, StatsEntry, PERCENTILES_TO_REPORT};
use crate::errors::parse_error;
use crate::pyfmt::{py_float, utc_iso, PyNum};
use crate::request_stats::RequestStats;

/// Seconds between two writes of the files (`CSV_STATS_INTERVAL_SEC`).
pub const CSV_STATS_INTERVAL_SEC: u64 = 1;
/// Seconds between two flushes of the history file (`CSV_STATS_FLUSH_INTERVAL_SEC`).
pub const CSV_STATS_FLUSH_INTERVAL_SEC: f64 = 5.0;

/// One field of a row, as Python's `csv.writer` turns a value into text.
enum Field<'a> {
    Text(&'a str),
    Owned(String),
}

impl Field<'_> {
    fn as_str(&self) -> &str {
        match self {
            Field::Text(s) => s,
            Field::Owned(s) => s,
        }
    }
}

fn int(v: impl ToString) -> Field<'static> {
    Field::Owned(v.to_string())
}

fn float(v: f64) -> Field<'static> {
    Field::Owned(py_float(v))
}

fn num(v: PyNum) -> Field<'static> {
    Field::Owned(v.to_string())
}

/// Appends one row in Python's `csv` default dialect (`QUOTE_MINIMAL`, `\r\n`).
fn write_row(out: &mut String, fields: &[Field<'_>]) {
    if let [only] = fields {
        if only.as_str().is_empty() {
            // A lone empty field would read back as an empty row; Python quotes it.
            out.push_str("\"\"\r\n");
            return;
        }
    }
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let s = f.as_str();
        if s.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(s);
        }
    }
    out.push_str("\r\n");
}

fn header(out: &mut String, names: &[&str]) {
    let fields: Vec<Field<'_>> = names.iter().map(|s| Field::Text(s)).collect();
    write_row(out, &fields);
}

fn percentile_labels() -> Vec<String> {
    PERCENTILES_TO_REPORT
        .iter()
        .map(|&p| percentile_label(p))
        .collect()
}

/// Locust's `_percentile_fields`: `N/A` for a row without requests; else the whole-run
/// percentiles, or with `current_at` the 10 s-window ones at that time (0 without a window).
fn percentile_fields(e: &StatsEntry, current_at: Option<f64>) -> Vec<Field<'static>> {
    if e.num_requests == 0 {
        return PERCENTILES_TO_REPORT
            .iter()
            .map(|_| Field::Text("N/A"))
            .collect();
    }
    PERCENTILES_TO_REPORT
        .iter()
        .map(|&p| match current_at {
            Some(now) if e.use_response_times_cache => {
                int(e.get_current_response_time_percentile(p, now).unwrap_or(0))
            }
            _ => int(e.get_response_time_percentile(p)),
        })
        .collect()
}

/// The whole-run figures both `_stats.csv` and the history rows carry, in their order:
/// requests, failures, median, average, min, max, average size.
fn whole_run_fields(e: &StatsEntry) -> [Field<'static>; 7] {
    [
        int(e.num_requests),
        int(e.num_failures),
        num(e.median_response_time()),
        float(e.avg_response_time()),
        num(e.min_response_time_or_zero()),
        num(e.max_response_time_py()),
        num(e.avg_content_length()),
    ]
}

/// The `_stats.csv` file: header, one row per entry sorted by (name, method), then the
/// Aggregated row (empty Type). Rates are whole-run; min/max are the raw times.
pub fn requests_csv(stats: &RequestStats) -> String {
    let mut out = String::new();
    let labels = percentile_labels();
    let mut names = vec![
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ];
    names.extend(labels.iter().map(String::as_str));
    header(&mut out, &names);
    let total = &stats.total;
    for e in stats.entries.values().chain([total]) {
        let mut row = vec![Field::Text(&e.method), Field::Text(&e.name)];
        row.extend(whole_run_fields(e));
        row.extend([
            float(e.total_rps(total)),
            float(e.total_fail_per_sec(total)),
        ]);
        row.extend(percentile_fields(e, None));
        write_row(&mut out, &row);
    }
    out
}

/// The `_failures.csv` file: header, then one row per failure kind ordered by its key, with
/// first and last sighting as `YYYY-MM-DDTHH:MM:SSZ` (empty when unknown).
pub fn failures_csv(stats: &RequestStats) -> String {
    let mut out = String::new();
    header(
        &mut out,
        &[
            "Method",
            "Name",
            "Error",
            "Occurrences",
            "First Seen",
            "Last Seen",
        ],
    );
    let when = |t: Option<f64>| Field::Owned(t.map(utc_iso).unwrap_or_default());
    for e in stats.errors.values() {
        let row = [
            Field::Text(&e.method),
            Field::Text(&e.name),
            Field::Owned(parse_error(&e.error).into_owned()),
            int(e.occurrences),
            when(e.first_seen),
            when(e.last_seen),
        ];
        write_row(&mut out, &row);
    }
    out
}

/// The `_exceptions.csv` file: header, then one row per exception in first-seen order, nodes
/// joined with `", "`.
pub fn exceptions_csv(stats: &RequestStats) -> String {
    let mut out = String::new();
    header(&mut out, &["Count", "Message", "Traceback", "Nodes"]);
    for x in stats.exceptions_in_insertion_order() {
        let nodes: Vec<&str> = x.nodes.iter().map(String::as_str).collect();
        let row = [
            int(x.count),
            Field::Text(&x.msg),
            Field::Text(&x.traceback),
            Field::Owned(nodes.join(", ")),
        ];
        write_row(&mut out, &row);
    }
    out
}

/// The `_stats_history.csv` header row.
pub fn history_csv_header() -> String {
    let mut out = String::new();
    let labels = percentile_labels();
    let mut names = vec![
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
    ];
    names.extend(labels.iter().map(String::as_str));
    names.extend([
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]);
    header(&mut out, &names);
    out
}

/// The rows one tick appends to `_stats_history.csv` at wall time `now`: the Aggregated row
/// alone with whole-run percentiles, or with `full_history` a row per entry (sorted) and then
/// the Aggregated row, all with the current 10 s-window percentiles. Timestamp is `int(now)`;
/// the current rates are written with six decimals (`f"{x:2f}"`).
pub fn history_csv_rows(
    stats: &RequestStats,
    user_count: u64,
    now: f64,
    full_history: bool,
) -> String {
    let mut out = String::new();
    let total = &stats.total;
    let entries: Vec<&StatsEntry> = if full_history {
        stats.entries.values().collect()
    } else {
        Vec::new()
    };
    let timestamp = now.trunc() as i64;
    for e in entries.into_iter().chain([total]) {
        let mut row = vec![
            int(timestamp),
            int(user_count),
            Field::Text(&e.method),
            Field::Text(&e.name),
            Field::Owned(format!("{:.6}", e.current_rps(total).as_f64())),
            Field::Owned(format!("{:.6}", e.current_fail_per_sec(total).as_f64())),
        ];
        row.extend(percentile_fields(e, full_history.then_some(now)));
        row.extend(whole_run_fields(e));
        write_row(&mut out, &row);
    }
    out
}

/// What one pass of the CSV writer puts in the files (see [`CsvWriter::render`]).
#[derive(Debug, Clone)]
pub struct CsvPass {
    stats: String,
    failures: String,
    exceptions: String,
    history_rows: Option<String>,
    now: f64,
}

/// The four `--csv` files, kept up to date as Locust's `StatsCSVFileWriter.stats_writer` does.
///
/// Call [`CsvWriter::tick`] every [`CSV_STATS_INTERVAL_SEC`] and [`CsvWriter::finish`] at
/// shutdown.
#[derive(Debug)]
pub struct CsvWriter {
    stats_path: PathBuf,
    history_path: PathBuf,
    failures_path: PathBuf,
    exceptions_path: PathBuf,
    stats_file: File,
    history_file: BufWriter<File>,
    failures_file: File,
    exceptions_file: File,
    full_history: bool,
    last_flush: f64,
}

fn io_error(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

fn create_file(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_error(path, e))
}

/// Replaces a file's whole content (Locust seeks back to just after the header, writes the
/// rows and truncates; writing the header again from the start gives the same bytes).
fn rewrite(file: &mut File, path: &Path, text: &str) -> Result<(), String> {
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(text.as_bytes()))
        .and_then(|_| file.set_len(text.len() as u64))
        .map_err(|e| io_error(path, e))
}

impl CsvWriter {
    /// Creates (truncating) `PREFIX_stats.csv`, `PREFIX_stats_history.csv`,
    /// `PREFIX_failures.csv` and `PREFIX_exceptions.csv`, after creating the prefix's
    /// directory as Locust's `main` does, and writes their headers. The error names the file
    /// and the OS error.
    pub fn create(prefix: &str, full_history: bool) -> Result<CsvWriter, String> {
        let dir = Path::new(prefix)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        let path = |suffix: &str| PathBuf::from(format!("{prefix}{suffix}"));
        let stats_path = path("_stats.csv");
        let history_path = path("_stats_history.csv");
        let failures_path = path("_failures.csv");
        let exceptions_path = path("_exceptions.csv");
        // Locust opens them in this order, so a failure names the same file.
        let stats_file = create_file(&stats_path)?;
        let history_file = BufWriter::new(create_file(&history_path)?);
        let failures_file = create_file(&failures_path)?;
        let exceptions_file = create_file(&exceptions_path)?;
        let mut w = CsvWriter {
            stats_path,
            history_path,
            failures_path,
            exceptions_path,
            stats_file,
            history_file,
            failures_file,
            exceptions_file,
            full_history,
            last_flush: 0.0,
        };
        let empty = RequestStats::new(false, 0.0);
        w.write_snapshots(&empty)?;
        w.history_file
            .write_all(history_csv_header().as_bytes())
            .map_err(|e| io_error(&w.history_path, e))?;
        Ok(w)
    }

    /// The history file, which `GET /stats/requests_full_history/csv` serves.
    pub fn history_file_path(&self) -> &Path {
        &self.history_path
    }

    /// One pass of Locust's loop at wall time `now`: the stats, failures and exceptions files
    /// rewritten, history rows appended when `history_active`, the history file flushed when
    /// more than [`CSV_STATS_FLUSH_INTERVAL_SEC`] passed since the last flush (the first tick
    /// always flushes).
    ///
    /// Locust 2.47 appends history rows on every tick whatever the runner's state (`ready` and
    /// `stopped` included, with the frozen figures), so pass `true` to match it exactly;
    /// `false` skips the rows, for callers that want no rows while idle.
    pub fn tick(
        &mut self,
        stats: &RequestStats,
        user_count: u64,
        history_active: bool,
        now: f64,
    ) -> Result<(), String> {
        let pass = self.render(stats, user_count, history_active, now);
        self.write(pass)
    }

    /// The text of one [`CsvWriter::tick`], built from `stats` without touching the files, so
    /// a caller can release the statistics lock before [`CsvWriter::write`] does the I/O.
    pub fn render(
        &self,
        stats: &RequestStats,
        user_count: u64,
        history_active: bool,
        now: f64,
    ) -> CsvPass {
        CsvPass {
            stats: requests_csv(stats),
            failures: failures_csv(stats),
            exceptions: exceptions_csv(stats),
            history_rows: history_active
                .then(|| history_csv_rows(stats, user_count, now, self.full_history)),
            now,
        }
    }

    /// Writes a pass made by [`CsvWriter::render`].
    pub fn write(&mut self, pass: CsvPass) -> Result<(), String> {
        self.write_snapshot_texts(&pass.stats, &pass.failures, &pass.exceptions)?;
        if let Some(rows) = &pass.history_rows {
            self.history_file
                .write_all(rows.as_bytes())
                .map_err(|e| io_error(&self.history_path, e))?;
        }
        if pass.now - self.last_flush > CSV_STATS_FLUSH_INTERVAL_SEC {
            self.history_file
                .flush()
                .map_err(|e| io_error(&self.history_path, e))?;
            self.last_flush = pass.now;
        }
        Ok(())
    }

    /// The shutdown write. Locust only closes the files there (flushing the history file), so
    /// they hold what the last tick wrote, up to a second old; Hopper also rewrites the stats,
    /// failures and exceptions files from the final `stats`, so they agree with the final
    /// console summary. No history row is added. Dropping the writer afterwards closes the
    /// files.
    pub fn finish(&mut self, stats: &RequestStats) -> Result<(), String> {
        self.write_snapshots(stats)?;
        self.history_file
            .flush()
            .map_err(|e| io_error(&self.history_path, e))
    }

    fn write_snapshots(&mut self, stats: &RequestStats) -> Result<(), String> {
        self.write_snapshot_texts(
            &requests_csv(stats),
            &failures_csv(stats),
            &exceptions_csv(stats),
        )
    }

    fn write_snapshot_texts(
        &mut self,
        stats: &str,
        failures: &str,
        exceptions: &str,
    ) -> Result<(), String> {
        rewrite(&mut self.stats_file, &self.stats_path, stats)?;
        rewrite(&mut self.failures_file, &self.failures_path, failures)?;
        rewrite(&mut self.exceptions_file, &self.exceptions_path, exceptions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{self, same, NOW, USER_COUNT};

    #[test]
    fn files_match_locust() {
        let stats = scenario::build();
        same(&requests_csv(&stats), "csv_requests.csv.txt");
        same(&failures_csv(&stats), "csv_failures.csv.txt");
        same(&exceptions_csv(&stats), "csv_exceptions.csv.txt");
    }

    #[test]
    fn history_rows_match_locust() {
        let stats = scenario::build();
        let got = history_csv_header() + &history_csv_rows(&stats, USER_COUNT, NOW, false);
        same(&got, "csv_history.csv.txt");
        let got = history_csv_header() + &history_csv_rows(&stats, USER_COUNT, NOW, true);
        same(&got, "csv_history_full.csv.txt");
    }

    #[test]
    fn quoting_like_python_csv() {
        // csv.writer(f).writerow(...) for each of these rows.
        let cases: [(&[&str], &str); 6] = [
            (&[""], "\"\"\r\n"),
            (&["", ""], ",\r\n"),
            (&["a b", " lead", "tab\there"], "a b, lead,tab\there\r\n"),
            (&["x,y", "say \"hi\""], "\"x,y\",\"say \"\"hi\"\"\"\r\n"),
            (&["cr\r", "lf\n"], "\"cr\r\",\"lf\n\"\r\n"),
            (&["caf\u{e9}", "N/A"], "caf\u{e9},N/A\r\n"),
        ];
        for (row, want) in cases {
            let mut out = String::new();
            let fields: Vec<Field<'_>> = row.iter().map(|s| Field::Text(s)).collect();
            write_row(&mut out, &fields);
            assert_eq!(out, want, "{row:?}");
        }
    }

    fn temp_prefix(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        std::env::temp_dir().join(format!(
            "hopper-csv-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn writer_keeps_files_like_locust() {
        let dir = temp_prefix("dir");
        let prefix = dir.join("sub").join("run");
        let prefix_str = prefix.to_str().unwrap();
        let mut w = CsvWriter::create(prefix_str, true).unwrap();
        let file = |suffix: &str| PathBuf::from(format!("{prefix_str}{suffix}"));
        assert_eq!(w.history_file_path(), file("_stats_history.csv"));
        // Headers are there at once (the history header is flushed with the first tick).
        assert_eq!(
            read(&file("_stats.csv")),
            requests_csv(&RequestStats::new(false, 0.0))
        );
        assert_eq!(
            read(&file("_failures.csv")),
            "Method,Name,Error,Occurrences,First Seen,Last Seen\r\n"
        );
        assert_eq!(
            read(&file("_exceptions.csv")),
            "Count,Message,Traceback,Nodes\r\n"
        );

        let stats = scenario::build();
        w.tick(&stats, USER_COUNT, true, NOW).unwrap();
        same(&read(&file("_stats.csv")), "csv_requests.csv.txt");
        same(&read(&file("_failures.csv")), "csv_failures.csv.txt");
        same(&read(&file("_exceptions.csv")), "csv_exceptions.csv.txt");
        same(
            &read(&file("_stats_history.csv")),
            "csv_history_full.csv.txt",
        );

        // Within 5 s of the last flush the rows stay buffered; an inactive tick adds none.
        w.tick(&stats, USER_COUNT, true, NOW + 1.0).unwrap();
        w.tick(&stats, USER_COUNT, false, NOW + 2.0).unwrap();
        same(
            &read(&file("_stats_history.csv")),
            "csv_history_full.csv.txt",
        );
        w.tick(&stats, USER_COUNT, true, NOW + 6.0).unwrap();
        let rows = read(&file("_stats_history.csv"));
        assert_eq!(rows.matches("Aggregated").count(), 3);

        // The stats file shrinks when the rows do (a reset), as Locust truncates it.
        let mut small = RequestStats::new(true, NOW);
        small.log_request("GET", "/", Some(1.0), 0, NOW);
        w.finish(&small).unwrap();
        assert_eq!(read(&file("_stats.csv")), requests_csv(&small));
        assert_eq!(read(&file("_failures.csv")), failures_csv(&small));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn create_names_the_file_on_error() {
        let dir = temp_prefix("file");
        std::fs::write(&dir, "not a directory").unwrap();
        let prefix = dir.join("run");
        let err = CsvWriter::create(prefix.to_str().unwrap(), false).unwrap_err();
        assert!(err.starts_with(&dir.display().to_string()), "{err}");
        let _ = std::fs::remove_file(&dir);
    }
}
