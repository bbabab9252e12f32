//! Console tables: Locust 2.47's stats, percentile and error tables byte for byte, plus Hopper's
//! precise-percentile and exception tables in the same style.
//!
//! Each function returns exactly the text Locust's `locust.stats_logger` writes for the table
//! (every line ends in `\n`, and the blank line Locust logs after a table is included), so a
//! script that scrapes Locust's console output reads Hopper's unchanged.
//!
//! `name_width` is Locust's `STATS_NAME_WIDTH`: `clamp(terminal columns - 80, 0, 80)`, or 80
//! when the output is not a terminal.

use std::fmt::Write;

use crate::entry::{percentile_label, StatsEntry, PERCENTILES_TO_REPORT};
use crate::errors::StatsError;
use crate::pyfmt::PyNum;
use crate::request_stats::RequestStats;

/// Width of the Type column (`STATS_TYPE_WIDTH`).
pub const TYPE_WIDTH: usize = 8;
/// `STATS_NAME_WIDTH` when the output is not a terminal.
pub const DEFAULT_NAME_WIDTH: usize = 80;

fn dashes(n: usize) -> String {
    "-".repeat(n)
}

/// The request table (Locust's `print_stats`): one row per entry sorted by (name, method), then
/// the Aggregated row. `current` shows the last-10-seconds rates as the live table does; `false`
/// shows whole-run rates as the final summary does.
pub fn stats_table(stats: &RequestStats, current: bool, name_width: usize) -> String {
    // Locust widens the name column by the 4 characters its other columns saved, formatting
    // with `"%-" + str(W - 8 + 4) + "s"`; a negative number there is read as a second `-` flag,
    // so the width is the absolute value while the separator's dash count floors at zero.
    let signed = name_width as i64 - TYPE_WIDTH as i64 + 4;
    let ncw = signed.unsigned_abs() as usize;
    let sep_name = signed.max(0) as usize;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<ncw$} {:>7} {:>12} |{:>7} {:>7} {:>7}{:>7} | {:>7} {:>11}",
        "Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s"
    );
    let separator = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        dashes(TYPE_WIDTH),
        dashes(sep_name),
        dashes(7),
        dashes(13),
        dashes(7),
        dashes(7),
        dashes(7),
        dashes(7),
        dashes(8),
        dashes(11)
    );
    out.push_str(&separator);
    out.push('\n');
    for e in stats.entries.values() {
        stats_row(&mut out, e, &stats.total, current, ncw);
    }
    out.push_str(&separator);
    out.push('\n');
    stats_row(&mut out, &stats.total, &stats.total, current, ncw);
    out.push('\n');
    out
}

/// One row of the request table (Locust's `StatsEntry.to_string`).
fn stats_row(out: &mut String, e: &StatsEntry, total: &StatsEntry, current: bool, ncw: usize) {
    let (rps, fail_per_sec) = if current {
        (
            e.current_rps(total).as_f64(),
            e.current_fail_per_sec(total).as_f64(),
        )
    } else {
        (e.total_rps(total), e.total_fail_per_sec(total))
    };
    let method = if e.method.is_empty() {
        String::new()
    } else {
        format!("{} ", e.method)
    };
    let fails = format!("{}({:.2}%)", e.num_failures, e.fail_ratio() * 100.0);
    // `%d` of a float truncates toward zero.
    let _ = writeln!(
        out,
        "{:<8} {:<ncw$} {:>7} {:>12} |{:>7} {:>7} {:>7}{:>7} | {:>7.2} {:>11.2}",
        method,
        e.name,
        e.num_requests,
        fails,
        PyNum::Float(e.avg_response_time()).trunc(),
        PyNum::Float(e.min_response_time.unwrap_or(0.0)).trunc(),
        PyNum::Float(e.max_response_time).trunc(),
        e.median_response_time().trunc(),
        rps,
        fail_per_sec,
    );
}

/// The "Response time percentiles (approximated)" table (Locust's `print_percentile_stats`):
/// the 11 report percentiles from the rounded buckets, then `# reqs`, for every entry with timed
/// requests, then the Aggregated row.
pub fn percentiles_table(stats: &RequestStats, name_width: usize) -> String {
    let mut out = String::from("Response time percentiles (approximated)\n");
    let labels: Vec<String> = PERCENTILES_TO_REPORT
        .iter()
        .map(|&p| percentile_label(p))
        .collect();
    // The first percentile sits in an 8-wide column, the rest and "# reqs" in 6-wide ones.
    let _ = write!(
        out,
        "{:<8} {:<name_width$} {:>8}",
        "Type", "Name", labels[0]
    );
    for l in labels[1..].iter().map(String::as_str).chain(["# reqs"]) {
        let _ = write!(out, " {l:>6}");
    }
    out.push('\n');
    let mut separator = format!(
        "{}|{}|{}|",
        dashes(TYPE_WIDTH),
        dashes(name_width),
        dashes(8)
    );
    for _ in 0..PERCENTILES_TO_REPORT.len() {
        separator.push_str(&dashes(6));
        separator.push('|');
    }
    separator.pop();
    out.push_str(&separator);
    out.push('\n');
    for e in stats
        .entries
        .values()
        .filter(|e| !e.response_times.is_empty())
    {
        percentile_row(&mut out, e, name_width);
    }
    out.push_str(&separator);
    out.push('\n');
    if !stats.total.response_times.is_empty() {
        percentile_row(&mut out, &stats.total, name_width);
    }
    out.push('\n');
    out
}

fn percentile_row(out: &mut String, e: &StatsEntry, name_width: usize) {
    let mut values = PERCENTILES_TO_REPORT
        .iter()
        .map(|&p| e.get_response_time_percentile(p));
    let first = values.next().unwrap_or(0);
    let _ = write!(out, "{:<8} {:<name_width$} {first:>8}", e.method, e.name);
    for v in values.chain([e.num_requests]) {
        let _ = write!(out, " {v:>6}");
    }
    out.push('\n');
}

/// Quantiles of the precise table, with their column labels.
const PRECISE_COLUMNS: [(f64, &str); 4] =
    [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];
/// Width of the precise table's value columns.
const PRECISE_WIDTH: usize = 9;

/// Hopper's precise percentiles from the HDR histograms, in milliseconds with three
/// significant digits: p50, p90, p99, p99.9 and the exact max, then `# reqs`. Rows as in
/// [`percentiles_table`]; `N/A` where an entry has no HDR data (merged from Python workers).
pub fn precise_table(stats: &RequestStats, name_width: usize) -> String {
    let mut out = String::from("Response time percentiles (precise, HDR, ms)\n");
    let _ = write!(out, "{:<8} {:<name_width$}", "Type", "Name");
    for (_, label) in PRECISE_COLUMNS {
        let _ = write!(out, " {label:>PRECISE_WIDTH$}");
    }
    let _ = writeln!(out, " {:>PRECISE_WIDTH$} {:>8}", "max", "# reqs");
    let mut separator = format!("{}|{}", dashes(TYPE_WIDTH), dashes(name_width));
    for _ in 0..=PRECISE_COLUMNS.len() {
        separator.push('|');
        separator.push_str(&dashes(PRECISE_WIDTH));
    }
    separator.push('|');
    separator.push_str(&dashes(8));
    out.push_str(&separator);
    out.push('\n');
    for e in stats
        .entries
        .values()
        .filter(|e| !e.response_times.is_empty())
    {
        precise_row(&mut out, e, name_width);
    }
    out.push_str(&separator);
    out.push('\n');
    if !stats.total.response_times.is_empty() {
        precise_row(&mut out, &stats.total, name_width);
    }
    out.push('\n');
    out
}

fn precise_row(out: &mut String, e: &StatsEntry, name_width: usize) {
    let _ = write!(out, "{:<8} {:<name_width$}", e.method, e.name);
    for (q, _) in PRECISE_COLUMNS {
        let cell = if e.hdr.is_empty() {
            "N/A".to_string()
        } else {
            format_ms_3sig(e.precise_percentile(q))
        };
        let _ = write!(out, " {cell:>PRECISE_WIDTH$}");
    }
    let _ = writeln!(
        out,
        " {:>PRECISE_WIDTH$} {:>8}",
        format_ms_3sig(e.max_response_time),
        e.num_requests
    );
}

/// Milliseconds with three significant digits (`0.123`, `1.23`, `12.3`, `123`), whole
/// milliseconds from 100 up. The precision is chosen after rounding, so 99.96 shows as `100`.
pub fn format_ms_3sig(ms: f64) -> String {
    if ms == 0.0 {
        return "0".to_string();
    }
    let decimals = if format!("{ms:.0}").parse::<f64>().unwrap_or(ms) >= 100.0 {
        0
    } else if format!("{ms:.1}").parse::<f64>().unwrap_or(ms) >= 10.0 {
        1
    } else if format!("{ms:.2}").parse::<f64>().unwrap_or(ms) >= 1.0 {
        2
    } else {
        3
    };
    format!("{ms:.decimals$}")
}

/// The "Error report" (Locust's `print_error_report`) for a non-terminal (name width 80);
/// empty when there were no failures.
pub fn error_report(stats: &RequestStats) -> String {
    error_report_with_width(stats, DEFAULT_NAME_WIDTH)
}

/// The "Error report" with the separator sized for `name_width`.
///
/// Locust lists failures in the order they were first recorded; the table here is keyed by
/// error key, so rows are ordered by first sighting (then key), which is the same order.
pub fn error_report_with_width(stats: &RequestStats, name_width: usize) -> String {
    if stats.errors.is_empty() {
        return String::new();
    }
    let mut out = String::from("Error report\n");
    let _ = writeln!(out, "{:<18} {:<100}", "# occurrences", "Error");
    let separator = format!(
        "{}|{}",
        dashes(18),
        dashes((80 + name_width).saturating_sub(19))
    );
    out.push_str(&separator);
    out.push('\n');
    let mut rows: Vec<(&String, &StatsError)> = stats.errors.iter().collect();
    rows.sort_by(|(ka, a), (kb, b)| {
        let fa = a.first_seen.unwrap_or(f64::INFINITY);
        let fb = b.first_seen.unwrap_or(f64::INFINITY);
        fa.total_cmp(&fb).then_with(|| ka.cmp(kb))
    });
    for (_, err) in rows {
        let _ = writeln!(out, "{:<18} {:<100}", err.occurrences, err.to_name());
    }
    out.push_str(&separator);
    out.push('\n');
    out.push('\n');
    out
}

/// Hopper's exception report (Locust shows task exceptions only in the web UI and reports) for
/// a non-terminal; empty when no task raised.
pub fn exceptions_report(stats: &RequestStats) -> String {
    exceptions_report_with_width(stats, DEFAULT_NAME_WIDTH)
}

/// The exception report in the error report's layout: count and message on one line, then
/// where it happened (the traceback) indented below, and the reporting nodes unless the only
/// one is `local`. Most frequent first.
pub fn exceptions_report_with_width(stats: &RequestStats, name_width: usize) -> String {
    if stats.exceptions.is_empty() {
        return String::new();
    }
    const INDENT: &str = "                   "; // under the message column (18 + 1)
    let mut out = String::from("Exception report\n");
    let _ = writeln!(out, "{:<18} Exception", "# occurrences");
    let separator = format!(
        "{}|{}",
        dashes(18),
        dashes((80 + name_width).saturating_sub(19))
    );
    out.push_str(&separator);
    out.push('\n');
    let mut rows: Vec<_> = stats.exceptions.values().collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.msg.cmp(&b.msg)));
    for row in rows {
        let mut msg_lines = row.msg.lines();
        let _ = writeln!(out, "{:<18} {}", row.count, msg_lines.next().unwrap_or(""));
        for line in msg_lines.chain(row.traceback.lines()) {
            let _ = writeln!(out, "{INDENT}{}", line.trim_end());
        }
        if row.nodes.iter().any(|n| n != "local") {
            let nodes: Vec<&str> = row.nodes.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{INDENT}nodes: {}", nodes.join(", "));
        }
    }
    out.push_str(&separator);
    out.push('\n');
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::exception_key;

    const LONG: &str =
        "/a/very/long/name/that/goes/on/and/on/beyond/the/seventy-six/character/name/column";
    const NOT_FOUND: &str = "HTTPError('404 Client Error: Not Found for url: /missing')";

    /// The requests of `testdata/gen_console.py`, logged the same way Locust logs them.
    fn scenario() -> RequestStats {
        type Event = (
            f64,
            &'static str,
            &'static str,
            Option<f64>,
            u64,
            Option<&'static str>,
        );
        let mut events: Vec<Event> = vec![
            (1700000001.2, "GET", "/", Some(12.3456), 100, None),
            (1700000001.7, "GET", "/", Some(145.0), 100, None),
            (1700000002.1, "GET", "/", Some(3.5), 120, None),
            (1700000003.4, "GET", "/", None, 0, None),
            (
                1700000004.0,
                "POST",
                "/login",
                Some(2500.0),
                0,
                Some("CatchResponseError('bad body')"),
            ),
            (1700000005.5, "POST", "/login", Some(58760.4), 10, None),
            (
                1700000006.25,
                "GET",
                "/missing",
                Some(1.86),
                0,
                Some(NOT_FOUND),
            ),
            (
                1700000007.0,
                "GET",
                "/missing",
                Some(5.463743000007071),
                0,
                Some(NOT_FOUND),
            ),
            (1700000008.9, "WS", "chat", Some(0.4), 5, None),
            (1700000012.3, "GET", LONG, Some(33.0), 0, None),
        ];
        for s in 0..10 {
            events.push((
                1700000005.5 + s as f64,
                "GET",
                "/",
                Some(20.0 + s as f64),
                50,
                None,
            ));
        }
        events.push((1700000015.5, "GET", "/", Some(7.0), 0, None));
        // Stable, like Python's sort: equal times keep list order.
        events.sort_by(|a, b| a.0.total_cmp(&b.0));

        let mut stats = RequestStats::new(true, 1700000000.0);
        for (t, method, name, rt, len, err) in events {
            stats.log_request(method, name, rt, len, t);
            if let Some(err) = err {
                stats.log_error(method, name, err, t);
            }
        }
        stats
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[track_caller]
    fn same(got: &str, fixture_name: &str) {
        let want = fixture(fixture_name);
        if got != want {
            panic!("{fixture_name} differs\n--- got ---\n{got}\n--- want ---\n{want}");
        }
    }

    #[test]
    fn stats_tables_match_locust() {
        let stats = scenario();
        for w in [80, 20, 2] {
            same(
                &stats_table(&stats, true, w),
                &format!("console_stats_current_w{w}.txt"),
            );
            same(
                &stats_table(&stats, false, w),
                &format!("console_stats_total_w{w}.txt"),
            );
        }
        let empty = RequestStats::new(true, 1700000000.0);
        same(&stats_table(&empty, true, 80), "console_stats_empty.txt");
    }

    #[test]
    fn percentile_tables_match_locust() {
        let stats = scenario();
        for w in [80, 20, 2] {
            same(
                &percentiles_table(&stats, w),
                &format!("console_percentiles_w{w}.txt"),
            );
        }
        let empty = RequestStats::new(true, 1700000000.0);
        same(
            &percentiles_table(&empty, 80),
            "console_percentiles_empty.txt",
        );
    }

    #[test]
    fn error_reports_match_locust() {
        let stats = scenario();
        same(&error_report(&stats), "console_errors_w80.txt");
        for w in [80, 20, 2] {
            same(
                &error_report_with_width(&stats, w),
                &format!("console_errors_w{w}.txt"),
            );
        }
        assert_eq!(error_report(&RequestStats::new(true, 0.0)), "");
    }

    /// Figures Locust 2.47 computes for the same scenario at wall time 1700000016.3.
    #[test]
    fn scenario_figures_match_locust() {
        let stats = scenario();
        let now = 1700000016.3;
        let g = &stats.total;
        type Row = (
            PyNum,
            f64,
            f64,
            f64,
            f64,
            PyNum,
            Option<u64>,
            Option<u64>,
            Vec<i64>,
        );
        let row = |e: &StatsEntry| -> Row {
            (
                e.median_response_time(),
                e.current_rps(g).as_f64(),
                e.current_fail_per_sec(g).as_f64(),
                e.total_rps(g),
                e.avg_response_time(),
                e.avg_content_length(),
                e.get_current_response_time_percentile(0.5, now),
                e.get_current_response_time_percentile(0.95, now),
                e.response_times_cache
                    .iter()
                    .map(|(s, _)| *s - 1700000000)
                    .collect(),
            )
        };
        let got: Vec<Row> = stats.entries.values().chain([g]).map(row).collect();
        let want: Vec<Row> = vec![
            (
                PyNum::Int(24),
                0.9,
                0.0,
                0.967741935483871,
                29.48897142857143,
                PyNum::Float(54.666666666666664),
                Some(25),
                Some(29),
                vec![1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
            ),
            (
                PyNum::Int(33),
                0.1,
                0.0,
                0.06451612903225806,
                33.0,
                PyNum::Float(0.0),
                Some(33),
                Some(33),
                vec![12],
            ),
            (
                PyNum::Float(58760.4),
                0.2,
                0.1,
                0.12903225806451613,
                30630.2,
                PyNum::Float(5.0),
                Some(59000),
                Some(59000),
                vec![4],
            ),
            (
                PyNum::Int(5),
                0.2,
                0.2,
                0.12903225806451613,
                3.6618715000035356,
                PyNum::Float(0.0),
                Some(5),
                Some(5),
                vec![6],
            ),
            (
                PyNum::Float(0.4),
                0.1,
                0.0,
                0.06451612903225806,
                0.4,
                PyNum::Float(5.0),
                Some(0),
                Some(0),
                vec![8],
            ),
            (
                PyNum::Int(24),
                1.5,
                0.3,
                1.3548387096774193,
                3085.6984671500004,
                PyNum::Float(39.76190476190476),
                Some(25),
                Some(33),
                (0..=14).collect(),
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn precise_table_layout() {
        let mut stats = RequestStats::new(true, 1000.0);
        for i in 1..=100 {
            stats.log_request("GET", "/", Some(i as f64 * 0.5), 0, 1001.0);
        }
        stats.log_request("POST", "/slow", Some(1234.5678), 0, 1001.0);
        // An entry merged from a Python worker: buckets but no HDR data.
        let mut foreign = crate::entry::StatsEntry::new("/py", "GET", false, 1000.0);
        foreign.log(Some(4.0), 0, 1001.0);
        foreign.hdr = crate::entry::new_hdr();
        stats.entries.insert(("/py".into(), "GET".into()), foreign);
        stats.log_request("GET", "/none", None, 0, 1001.0);

        let got = precise_table(&stats, 20);
        let want = "\
Response time percentiles (precise, HDR, ms)
Type     Name                       p50       p90       p99     p99.9       max   # reqs
--------|--------------------|---------|---------|---------|---------|---------|--------
GET      /                         25.0      45.0      49.5      50.0      50.0      100
GET      /py                        N/A       N/A       N/A       N/A      4.00        1
POST     /slow                     1235      1235      1235      1235      1235        1
--------|--------------------|---------|---------|---------|---------|---------|--------
         Aggregated                25.5      45.5      50.0      1235      1235      102

";
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn three_significant_digits() {
        let cases = [
            (0.0, "0"),
            (0.0004, "0.000"),
            (0.123, "0.123"),
            (0.9996, "1.00"),
            (1.234, "1.23"),
            (9.996, "10.0"),
            (12.34, "12.3"),
            (99.96, "100"),
            (123.4, "123"),
            (58760.4, "58760"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_ms_3sig(ms), want, "{ms}");
        }
    }

    #[test]
    fn exceptions_report_layout() {
        let mut stats = RequestStats::new(true, 0.0);
        assert_eq!(exceptions_report(&stats), "");
        let tb = "  File \"tasks.rs\", line 12, in checkout\n    cart.pay()\n";
        stats.log_exception("local", "ZeroDivisionError: division by zero", tb);
        stats.log_exception("local", "ZeroDivisionError: division by zero", tb);
        stats.log_exception(
            "worker_1",
            "KeyError: 'id'",
            "  File \"a.rs\", line 3, in f\n",
        );
        assert_eq!(stats.exceptions[&exception_key(tb)].count, 2);
        let sep = format!("{}|{}", "-".repeat(18), "-".repeat(141));
        let indent = " ".repeat(19);
        let want = [
            "Exception report".to_string(),
            "# occurrences      Exception".to_string(),
            sep.clone(),
            "2                  ZeroDivisionError: division by zero".to_string(),
            format!("{indent}  File \"tasks.rs\", line 12, in checkout"),
            format!("{indent}    cart.pay()"),
            "1                  KeyError: 'id'".to_string(),
            format!("{indent}  File \"a.rs\", line 3, in f"),
            format!("{indent}nodes: worker_1"),
            sep,
            String::new(),
            String::new(),
        ]
        .join("\n");
        assert_eq!(exceptions_report(&stats), want);
    }
}
