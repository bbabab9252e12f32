//! The data of Locust's HTML report (`--html FILE`, `GET /stats/report`): the object the page
//! reads as `window.templateArgs`, plus the report's duration text and file name placeholders.
//!
//! The page itself is Locust's prebuilt React bundle; what makes a report is this object,
//! written into the page with Jinja's `tojson` ([`crate::pyjson::jinja_tojson`]).

use serde_json::Value;

use crate::history::{history_point_stamped, HistoryPoint};
use crate::pyfmt::{py_float, utc_iso};
use crate::pyjson::sort_keys_deep;
use crate::request_stats::RequestStats;
use crate::web_json::{entry_to_dict, error_to_dict, exception_to_dict, response_time_statistics};
use crate::PERCENTILES_TO_CHART;

/// What the report needs besides the statistics.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The merged statistics.
    pub stats: &'a RequestStats,
    /// The locustfile as given (Locust's `str(environment.locustfile)`).
    pub locustfile: &'a str,
    /// The effective host: `--host`, else the one host shared by every user class, else
    /// `None` (written as the text `"None"`, as Python's `str(None)`).
    pub host: Option<&'a str>,
    /// `--profile`; `None` or empty gives JSON `null`.
    pub profile: Option<&'a str>,
    /// Start of the reported span, epoch seconds. Locust uses the statistics' start (the
    /// total's `start_time`: the test start or the last reset); see [`locust_report_span`].
    pub start_time: f64,
    /// End of the reported span. Locust uses the latest request, or the start when there was
    /// none (so a stopped run's report does not grow while the UI stays open). The extra
    /// history point is stamped with it.
    pub end_time: f64,
    /// The task ratio JSON (`{"per_class": …, "total": …}`), from the final user class counts
    /// once the run stopped.
    pub tasks: Value,
    /// Whether the page shows its "Download the Report" link (off for `--html` files and for
    /// `?download=1`).
    pub show_download_link: bool,
    /// The current wall time, epoch seconds (the extra history point's figures are taken now).
    pub now: f64,
    /// Running users now (for the extra history point).
    pub user_count: u64,
}

/// Locust's `format_duration`: whole seconds between two epoch times as `"4 seconds"`,
/// `"1 minute and 5 seconds"`, `"1 hour, 2 minutes and 3 seconds"`, `"1 day, 1 hour, 1 minute
/// and 1 second"`; zero parts are left out, `"0 seconds"` when nothing is left.
pub fn format_duration(start: f64, end: f64) -> String {
    // Python's int() truncates; the divisions below floor, as Python's // and % do.
    let total = (end - start).trunc() as i64;
    let parts: Vec<String> = [
        (total.div_euclid(86_400), "day"),
        (total.rem_euclid(86_400) / 3_600, "hour"),
        (total.rem_euclid(3_600) / 60, "minute"),
        (total.rem_euclid(60), "second"),
    ]
    .into_iter()
    .filter(|(v, _)| *v > 0)
    .map(|(v, label)| format!("{v} {label}{}", if v == 1 { "" } else { "s" }))
    .collect();
    match parts.split_last() {
        None => "0 seconds".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Locust's `process_html_filename`: `{u}`, `{r}` and `{t}` in the `--html` name replaced by
/// the user count, spawn rate and run time in seconds, integral values without `.0`
/// (`r_10_2_30.html`, a rate of 0.5 stays `0.5`). Without a run time `{t}` stays in the name
/// as it is, as in Locust; so do `{u}` and `{r}` when they were never set (web UI mode
/// before any test was started; headless runs default both to 1).
pub fn report_filename(
    pattern: &str,
    users: Option<u64>,
    spawn_rate: Option<f64>,
    run_time_secs: Option<f64>,
) -> String {
    let text = |v: f64| {
        if v.fract() == 0.0 {
            // str(int(v)): every digit, never an exponent.
            format!("{v:.0}")
        } else {
            py_float(v)
        }
    };
    let mut name = pattern.to_string();
    for (term, value) in [
        ("{u}", users.map(|u| u.to_string())),
        ("{r}", spawn_rate.map(text)),
        ("{t}", run_time_secs.map(text)),
    ] {
        if let Some(v) = value {
            name = name.replace(term, &v);
        }
    }
    name
}

/// The span Locust's report covers: the total's start time (test start or last reset) to its
/// latest request, or to the start when there was none.
pub fn locust_report_span(stats: &RequestStats) -> (f64, f64) {
    let start = stats.total.start_time;
    (start, stats.total.last_request_timestamp.unwrap_or(start))
}

/// The point Locust appends to the history when building a report whose last point is older
/// than the run's end (stamped with the end time, figures taken now). Locust appends it to
/// `stats.history` itself, so later reports and the web UI see it; push it there to do the
/// same. `None` with no history or a history already reaching the end.
pub fn report_extra_history_point(input: &ReportInput<'_>) -> Option<HistoryPoint> {
    let end_time = utc_iso(input.end_time);
    let last = input.stats.history.last()?;
    // Same-format UTC stamps compare in time order as text, as Locust compares them.
    (last.time < end_time)
        .then(|| history_point_stamped(input.stats, input.user_count, input.now, end_time))
}

/// The report's `window.templateArgs`, keys sorted at every depth: `is_report` (true),
/// `locustfile`, `host`, `profile`, `start_time`, `end_time`, `duration`,
/// `requests_statistics` (entry rows sorted, then Aggregated), `failures_statistics` (ordered
/// by error key), `exceptions_statistics`, `response_time_statistics`, `history` (with
/// [`report_extra_history_point`] appended when due), `tasks`, `percentiles_to_chart` and
/// `show_download_link`.
pub fn report_template_args(input: &ReportInput<'_>) -> Value {
    let stats = input.stats;
    let (start, end) = (input.start_time, input.end_time);
    let total = &stats.total;
    let requests: Vec<Value> = stats
        .entries
        .values()
        .chain([total])
        .map(|e| entry_to_dict(e, total))
        .collect();
    let failures: Vec<Value> = stats.errors.values().map(error_to_dict).collect();
    let exceptions: Vec<Value> = stats
        .exceptions_in_insertion_order()
        .into_iter()
        .map(exception_to_dict)
        .collect();
    let mut history: Vec<Value> = stats.history.iter().map(HistoryPoint::to_json).collect();
    if let Some(extra) = report_extra_history_point(input) {
        history.push(extra.to_json());
    }
    let profile = match input.profile {
        Some(p) if !p.is_empty() => Value::from(p),
        _ => Value::Null,
    };
    let mut args = serde_json::json!({
        "is_report": true,
        "requests_statistics": requests,
        "failures_statistics": failures,
        "exceptions_statistics": exceptions,
        "response_time_statistics": response_time_statistics(stats),
        "start_time": utc_iso(start),
        "end_time": utc_iso(end),
        "duration": format_duration(start, end),
        "host": input.host.unwrap_or("None"),
        "history": history,
        "show_download_link": input.show_download_link,
        "locustfile": input.locustfile,
        "tasks": input.tasks.clone(),
        "percentiles_to_chart": PERCENTILES_TO_CHART.to_vec(),
        "profile": profile,
    });
    sort_keys_deep(&mut args);
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyjson::jinja_tojson;
    use crate::scenario::{self, same, NOW, USER_COUNT};

    fn fixture_json(name: &str) -> Value {
        serde_json::from_str(&scenario::fixture(name)).unwrap()
    }

    #[test]
    fn template_args_match_locust() {
        let stats = scenario::build();
        let (start_time, end_time) = locust_report_span(&stats);
        assert_eq!((start_time, end_time), (1700000000.0, 1700000015.5));
        let input = ReportInput {
            stats: &stats,
            locustfile: "locustfile.py",
            host: Some("https://example.com/a?b=1&c=<d>"),
            profile: Some("nightly 'run'"),
            start_time,
            end_time,
            // The ratios come from the user classes, not from the statistics.
            tasks: fixture_json("report_template_args.json")["tasks"].clone(),
            show_download_link: false,
            now: NOW,
            user_count: USER_COUNT,
        };
        let args = report_template_args(&input);
        same(
            &format!("{}\n", jinja_tojson(&args)),
            "report_template_args.json",
        );
        assert_eq!(args.as_object().unwrap().keys().next().unwrap(), "duration");
    }

    #[test]
    fn extra_point_only_when_history_lags() {
        let mut stats = scenario::build();
        fn input(stats: &RequestStats) -> ReportInput<'_> {
            ReportInput {
                stats,
                locustfile: "f.py",
                host: None,
                profile: Some(""),
                start_time: stats.total.start_time,
                end_time: stats.total.last_request_timestamp.unwrap(),
                tasks: Value::Null,
                show_download_link: true,
                now: NOW,
                user_count: 1,
            }
        }
        let extra = report_extra_history_point(&input(&stats)).unwrap();
        assert_eq!(extra.time, "2023-11-14T22:13:35Z");
        assert_eq!(extra.user_count, 1);
        // Once Locust has appended it, the next report adds nothing.
        stats.history.push(extra);
        assert!(report_extra_history_point(&input(&stats)).is_none());
        let args = report_template_args(&input(&stats));
        assert_eq!(args["history"].as_array().unwrap().len(), 4);
        assert_eq!(args["host"], "None");
        assert_eq!(args["profile"], Value::Null);
        // No history at all: none added.
        stats.history.clear();
        assert!(report_extra_history_point(&input(&stats)).is_none());
    }

    #[test]
    fn empty_run_spans_nothing() {
        let stats = RequestStats::new(true, 1700000000.0);
        let (start_time, end_time) = locust_report_span(&stats);
        let input = ReportInput {
            stats: &stats,
            locustfile: "f.py",
            host: Some("http://h"),
            profile: None,
            start_time,
            end_time,
            tasks: Value::Null,
            show_download_link: true,
            now: 1700000100.0,
            user_count: 0,
        };
        let args = report_template_args(&input);
        assert_eq!(args["start_time"], args["end_time"]);
        assert_eq!(args["duration"], "0 seconds");
        assert_eq!(args["requests_statistics"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn durations_match_locust() {
        let misc = fixture_json("report_misc.json");
        for case in misc["durations"].as_array().unwrap() {
            let secs = case[0].as_f64().unwrap();
            assert_eq!(
                format_duration(1000.0, 1000.0 + secs),
                case[1].as_str().unwrap(),
                "{secs}"
            );
        }
    }

    #[test]
    fn filenames_match_locust() {
        let misc = fixture_json("report_misc.json");
        for case in misc["filenames"].as_array().unwrap() {
            let got = report_filename(
                case[0].as_str().unwrap(),
                case[1].as_u64(),
                case[2].as_f64(),
                case[3].as_f64(),
            );
            assert_eq!(got, case[4].as_str().unwrap(), "{case}");
        }
        assert_eq!(
            report_filename("{t}.html", Some(1), Some(1.0), Some(1e20)),
            "100000000000000000000.html"
        );
    }
}
