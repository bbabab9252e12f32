//! Log lines in Locust's format: `[2026-11-21 05:23:27,575] host/INFO/hopper.runners: text`.
//!
//! Tools that scrape Locust's log (CI annotations, log shippers) keep working. Messages go
//! to stderr, or to `--logfile` when given; `--skip-log-setup` leaves logging to the program.
//! Every line is also kept in [`recent`] for the web UI's Logs tab (`GET /logs`).

use hopper_web::LogBuffer;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Locust's log line layout.
struct LocustFormat {
    hostname: String,
}

impl<S, N> FormatEvent<S, N> for LocustFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        };
        write!(
            writer,
            "[{}] {}/{}/{}: ",
            hopper_stats::pyfmt::log_time(hopper_stats::now_epoch()),
            self.hostname,
            level,
            meta.target().replace("::", ".")
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The machine's short host name, as Locust prints it.
fn short_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    name.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_string()
}

/// The last log lines of this process, as the web UI shows them.
pub fn recent() -> Arc<LogBuffer> {
    static RECENT: OnceLock<Arc<LogBuffer>> = OnceLock::new();
    RECENT.get_or_init(|| Arc::new(LogBuffer::new())).clone()
}

/// Installs the log subscriber. `level` is Locust's level name (already validated).
pub fn init(level: &str, logfile: Option<&str>) -> Result<(), String> {
    let max = match level {
        "DEBUG" => Level::DEBUG,
        "INFO" => Level::INFO,
        "WARNING" => Level::WARN,
        _ => Level::ERROR,
    };
    let format = LocustFormat {
        hostname: short_hostname(),
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(max)
        .event_format(format);
    let result = match logfile {
        Some(path) => {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        format!("cannot create the directory of --logfile {path}: {e}")
                    })?;
                }
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open --logfile {path}: {e}"))?;
            let file = Arc::new(Mutex::new(file));
            let recent = recent();
            builder
                .with_writer(move || Tee {
                    out: SharedFile(file.clone()),
                    recent: recent.clone(),
                })
                .try_init()
        }
        None => {
            let recent = recent();
            builder
                .with_writer(move || Tee {
                    out: std::io::stderr(),
                    recent: recent.clone(),
                })
                .try_init()
        }
    };
    // A program that set up its own subscriber keeps it.
    let _ = result;
    Ok(())
}

/// A log file shared by every writer handed out.
struct SharedFile(Arc<Mutex<std::fs::File>>);

impl std::io::Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut f) => f.write(buf),
            Err(p) => p.into_inner().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut f) => f.flush(),
            Err(p) => p.into_inner().flush(),
        }
    }
}

/// Writes each formatted line to its destination and keeps a copy for the web UI.
struct Tee<W: Write> {
    out: W,
    recent: Arc<LogBuffer>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.recent.push(&String::from_utf8_lossy(&buf[..n]));
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
