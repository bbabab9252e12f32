//! This process's CPU use and resident memory, for the worker's heartbeats (Locust reads
//! them with psutil). Read from `/proc` on Linux; elsewhere both are reported as 0.

use std::time::Instant;

/// Samples CPU use between calls.
pub struct ProcessUsage {
    last: Option<(Instant, f64)>,
}

impl Default for ProcessUsage {
    fn default() -> Self {
        ProcessUsage::new()
    }
}

impl ProcessUsage {
    /// Starts measuring from now.
    pub fn new() -> ProcessUsage {
        ProcessUsage {
            last: cpu_seconds().map(|c| (Instant::now(), c)),
        }
    }

    /// CPU use since the previous sample in percent of one core (psutil's `cpu_percent`),
    /// and the resident set size in bytes.
    pub fn sample(&mut self) -> (f64, u64) {
        let now = Instant::now();
        let cpu = match (cpu_seconds(), self.last) {
            (Some(c), Some((then, before))) => {
                let wall = now.duration_since(then).as_secs_f64();
                self.last = Some((now, c));
                if wall > 0.0 {
                    ((c - before) / wall * 100.0).max(0.0)
                } else {
                    0.0
                }
            }
            (Some(c), None) => {
                self.last = Some((now, c));
                0.0
            }
            _ => 0.0,
        };
        (cpu, resident_bytes().unwrap_or(0))
    }
}

/// User plus system CPU time of this process, seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Resident set size in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_memory_and_a_cpu_share() {
        let mut usage = ProcessUsage::new();
        // Burn a little CPU so the sample has something to see.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let (cpu, rss) = usage.sample();
        assert!(cpu >= 0.0);
        if cfg!(target_os = "linux") {
            assert!(rss > 1_000_000, "{rss}");
        }
    }
}
