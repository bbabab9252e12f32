//! The once-a-second statistics loop behind every live output: it collects what the user
//! threads recorded, keeps the precise percentiles of the last 10 s for the web UI, adds a
//! point to the stats history every 5 s (Locust's `stats_history`, which feeds the charts
//! and the HTML report) and drives the `--csv` files (Locust's `stats_writer`).
//!
//! It runs on its own thread: collecting waits briefly on the user threads, and nothing here
//! should ever hold up a tokio worker.

use hdrhistogram::Histogram;
use hopper_core::{RunnerState, SessionStatus};
use hopper_stats::csv_out::CsvWriter;
use hopper_web::LiveFigures;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// One pass a second (Locust's CSV_STATS_INTERVAL_SEC).
const TICK: Duration = Duration::from_secs(1);
/// A history point every this many passes (Locust's HISTORY_STATS_INTERVAL_SEC = 5).
const HISTORY_EVERY: u64 = 5;
/// Width of the "current" precise percentiles, in passes (seconds).
const WINDOW: usize = 10;
/// How long a pass waits for user threads to hand over their numbers.
const COLLECT_TIMEOUT: Duration = Duration::from_millis(200);

/// Snapshots of the total's HDR histogram, one per pass, for percentiles over a window.
#[derive(Default)]
pub struct PreciseWindow {
    snapshots: VecDeque<Histogram<u64>>,
}

impl PreciseWindow {
    /// Forgets every snapshot (the statistics were reset or cleared).
    pub fn restart(&mut self) {
        self.snapshots.clear();
    }

    /// Records the total's histogram now and returns the p50 and p95 (ms) of what was
    /// recorded since the oldest kept snapshot, `None` when that is nothing.
    pub fn update(&mut self, total: &Histogram<u64>) -> Option<(f64, f64)> {
        self.snapshots.push_back(total.clone());
        while self.snapshots.len() > WINDOW + 1 {
            self.snapshots.pop_front();
        }
        let oldest = self.snapshots.front()?;
        let mut window = total.clone();
        if window.subtract(oldest).is_err() {
            // The statistics were reset or cleared since: start the window over.
            self.snapshots.clear();
            self.snapshots.push_back(total.clone());
            window = total.clone();
            if self.snapshots.len() == 1 && window.is_empty() {
                return None;
            }
        }
        if window.is_empty() {
            // Nothing new in the window; with a single snapshot the whole histogram is it.
            if self.snapshots.len() == 1 && !total.is_empty() {
                window = total.clone();
            } else {
                return None;
            }
        }
        let ms = |q: f64| window.value_at_quantile(q) as f64 / 1000.0;
        Some((ms(0.5), ms(0.95)))
    }
}

/// The running loop; [`StatsLoop::finish`] ends it and writes the final files.
pub struct StatsLoop {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<CsvWriter>>>,
}

impl StatsLoop {
    /// Starts the loop. `csv` is the `--csv` writer, already created.
    pub fn start(
        status: watch::Receiver<SessionStatus>,
        live: Arc<LiveFigures>,
        csv: Option<CsvWriter>,
    ) -> StatsLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hopper-stats".into())
            .spawn(move || run(status, live, csv, stopping))
            .ok();
        if thread.is_none() {
            tracing::error!(target: "hopper.main", "cannot start the statistics thread: live charts, history and CSV files will be missing");
        }
        StatsLoop { stop, thread }
    }

    /// Stops the loop and writes the CSV files one last time (Locust's `close_files`).
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Release);
        let csv = self.thread.take().and_then(|t| t.join().ok()).flatten();
        if let Some(mut csv) = csv {
            hopper_stats::global().sync(Duration::from_secs(1));
            let stats = hopper_stats::global().lock();
            if let Err(e) = csv.finish(&stats) {
                tracing::error!(target: "hopper.main", "{e}");
            }
        }
    }
}

fn run(
    status: watch::Receiver<SessionStatus>,
    live: Arc<LiveFigures>,
    mut csv: Option<CsvWriter>,
    stop: Arc<AtomicBool>,
) -> Option<CsvWriter> {
    let mut window = PreciseWindow::default();
    let mut generation = hopper_stats::global().generation();
    let mut passes: u64 = 0;
    let mut csv_failed = false;
    // The first pass runs at once, as Locust's loops write before their first sleep.
    let mut first = true;
    while !stop.load(Ordering::Acquire) {
        if !first {
            std::thread::sleep(TICK);
            if stop.load(Ordering::Acquire) {
                break;
            }
            passes += 1;
        }
        first = false;
        hopper_stats::global().sync(COLLECT_TIMEOUT);
        let now_generation = hopper_stats::global().generation();
        if now_generation != generation {
            window.restart();
            generation = now_generation;
        }
        let status = status.borrow().clone();
        let now = hopper_stats::now_epoch();
        let active = !matches!(status.state, RunnerState::Ready | RunnerState::Stopped);
        let mut stats = hopper_stats::global().lock();
        let precise = window.update(&stats.total.hdr);
        live.set_precise_current(precise);
        if active && passes.is_multiple_of(HISTORY_EVERY) {
            let mut point = hopper_stats::history::history_point(&stats, status.user_count, now);
            point.precise_p50_ms = precise.map(|p| p.0);
            point.precise_p95_ms = precise.map(|p| p.1);
            stats.history.push(point);
        }
        // Locust appends history rows every second whatever the state. The text is built
        // under the lock, the files written after it is released (user threads flush into it).
        let pass = csv
            .as_ref()
            .map(|writer| writer.render(&stats, status.user_count, true, now));
        drop(stats);
        if let (Some(writer), Some(pass)) = (csv.as_mut(), pass) {
            let result = writer.write(pass);
            match result {
                Err(e) if !csv_failed => {
                    // Once is enough: a full disk would otherwise log every second.
                    tracing::error!(target: "hopper.main", "{e}");
                    csv_failed = true;
                }
                Ok(()) => csv_failed = false,
                Err(_) => {}
            }
        }
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in values_us {
            h.record(*v).unwrap();
        }
        h
    }

    #[test]
    fn window_covers_only_recent_samples() {
        let mut w = PreciseWindow::default();
        assert_eq!(w.update(&hist(&[])), None);
        // Old, slow samples...
        let mut total = hist(&[900_000; 100]);
        w.update(&total);
        // ...then WINDOW passes of fast ones push the slow ones out of the window.
        for _ in 0..WINDOW {
            total.add(hist(&[2_000; 10])).unwrap();
            w.update(&total);
        }
        let (p50, p95) = w.update(&total).unwrap_or((0.0, 0.0));
        assert!((p50 - 2.0).abs() < 0.01, "{p50}");
        assert!((p95 - 2.0).abs() < 0.01, "{p95}");
    }

    #[test]
    fn a_reset_restarts_the_window() {
        let mut w = PreciseWindow::default();
        w.update(&hist(&[5_000; 50]));
        let after_reset = hist(&[1_000; 3]);
        let (p50, _) = w.update(&after_reset).unwrap();
        assert!((p50 - 1.0).abs() < 0.01, "{p50}");
    }
}
