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
//!
//! Times: Hopper measures [`std::time::Duration`]s; Locust-facing figures are float
//! milliseconds; wall-clock instants are epoch seconds as `f64`.

pub mod console;
mod entry;
mod errors;
pub mod pyfmt;
mod recorder;
mod request_stats;

pub use entry::{
    bucket_response_time, calculate_response_time_percentile, diff_response_time_dicts,
    percentile_label, CachedResponseTimes, StatsEntry, CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW,
    PERCENTILES_TO_CHART, PERCENTILES_TO_REPORT, PERCENTILES_TO_STATISTICS,
    RESPONSE_TIMES_CACHE_SIZE,
};
pub use errors::{error_key, exception_key, parse_error, StatsError, TaskException};
pub use pyfmt::{python_repr_str, PyNum};
pub use recorder::{
    flush_thread, global, now_epoch, record, record_exception, RequestRecord, Stats,
    SAMPLE_FLUSH_THRESHOLD,
};
pub use request_stats::{RequestStats, WorkerReport, AGGREGATED_NAME};
