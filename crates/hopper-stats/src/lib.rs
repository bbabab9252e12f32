//! Request statistics for Hopper, computed the way Locust 2.47 computes them.
//!
//! * [`record`] is the per-request hot path: it writes into a per-thread shard without locks;
//!   shards fold into the global [`Stats`] on a tick ([`Stats::tick`], [`Stats::sync`]), when
//!   their thread goes idle ([`flush_thread`]) or exits.
//! * [`RequestStats`] is the merged view every output reads: [`StatsEntry`] rows with Locust's
//!   exact fields and formulas (rounded-millisecond buckets, percentiles, windowed rates) plus an
//!   HDR histogram per row for precise percentiles, failures keyed like Locust's
//!   ([`error_key`]) and task exceptions.
//! * [`console`] renders Locust's console tables byte for byte; [`pyfmt`] formats numbers,
//!   strings and times as Python does, for CSV, JSON and reports.
//! * The other Locust outputs, each checked against fixtures produced by real Locust: chart
//!   points ([`history`]), the web API's JSON and `--json` ([`web_json`], written with
//!   [`pyjson`], Python's `json.dumps`), the `--csv` files ([`csv_out`]) and the HTML report's
//!   data ([`report_data`]).
//!
//! Times: Hopper measures [`std::time::Duration`]s; Locust-facing figures are float
//! milliseconds; wall-clock instants are epoch seconds as `f64`.

pub mod console;
pub mod csv_out;
mod entry;
mod errors;
pub mod history;
pub mod pyfmt;
pub mod pyjson;
mod recorder;
pub mod report_data;
mod request_stats;
#[cfg(test)]
mod scenario;
pub mod text;
pub mod web_json;

pub use csv_out::{
    exceptions_csv, failures_csv, history_csv_header, history_csv_rows, requests_csv, CsvWriter,
};
pub use entry::{
    bucket_response_time, calculate_response_time_percentile, diff_response_time_dicts, new_hdr,
    next_creation_order, percentile_label, CachedResponseTimes, EntryFigures, StatsEntry,
    CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW, HDR_MAX_US, PERCENTILES_TO_CHART,
    PERCENTILES_TO_REPORT, PERCENTILES_TO_STATISTICS, RESPONSE_TIMES_CACHE_SIZE,
};
pub use errors::{error_key, exception_key, parse_error, StatsError, TaskException};
pub use history::{history_point, HistoryPoint, HISTORY_STATS_INTERVAL_SEC};
pub use pyfmt::{python_repr_str, PyNum};
pub use recorder::{
    flush_thread, global, now_epoch, record, record_exception, set_request_observer, RequestRecord,
    Stats, SAMPLE_FLUSH_THRESHOLD,
};
pub use report_data::{
    format_duration, locust_report_span, report_extra_history_point, report_filename,
    report_template_args, ReportInput,
};
pub use request_stats::{RequestStats, WorkerReport, AGGREGATED_NAME};
pub use web_json::{
    entry_to_dict, error_to_dict, exception_to_dict, exceptions_body, response_time_statistics,
    serialized_entries_json, serialized_entry, stats_requests_body, WorkerRow,
    PERCENTILES_FOR_HTML_REPORT,
};
