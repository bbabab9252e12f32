//! Wait times between tasks, with Locust's exact semantics (`locust/user/wait_time.py`).
//!
//! A wait time is chosen after every task. Pacing wait times (`constant_pacing`,
//! `constant_throughput`) remember when the previous wait ended, per user — or per task set
//! when the task set has its own wait time — exactly as Locust keeps `_cp_last_run` on the
//! instance the function is called with.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a user waits after each task.
#[derive(Clone)]
pub enum WaitTime {
    /// Always the same number of seconds.
    Constant(f64),
    /// Uniform in `[min, max)` seconds.
    Between(f64, f64),
    /// Aim to start a task every `period` seconds, however long tasks take.
    ConstantPacing(f64),
    /// Exponentially distributed waits with mean `1 / rate` seconds.
    Poisson(f64),
    /// Any function of the user's random number generator.
    Custom(Arc<dyn Fn(&mut fastrand::Rng) -> Duration + Send + Sync>),
}

impl fmt::Debug for WaitTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitTime::Constant(s) => write!(f, "constant({s})"),
            WaitTime::Between(a, b) => write!(f, "between({a}, {b})"),
            WaitTime::ConstantPacing(t) => write!(f, "constant_pacing({t})"),
            WaitTime::Poisson(r) => write!(f, "poisson({r})"),
            WaitTime::Custom(_) => write!(f, "custom"),
        }
    }
}

impl Default for WaitTime {
    /// Locust's default: no wait at all.
    fn default() -> Self {
        WaitTime::Constant(0.0)
    }
}

/// `constant(seconds)`: the same wait every time.
pub fn constant(seconds: f64) -> WaitTime {
    check_non_negative("constant", seconds);
    WaitTime::Constant(seconds)
}

/// `between(min, max)`: uniform in `[min, max)`.
pub fn between(min: f64, max: f64) -> WaitTime {
    check_non_negative("between", min);
    check_non_negative("between", max);
    WaitTime::Between(min, max)
}

/// `constant_pacing(seconds)`: one task start every `seconds`, whatever the task's duration.
pub fn constant_pacing(seconds: f64) -> WaitTime {
    check_non_negative("constant_pacing", seconds);
    WaitTime::ConstantPacing(seconds)
}

/// `constant_throughput(runs_per_second)`: the inverse of `constant_pacing`.
///
/// # Panics
/// When the rate is not positive, as Locust raises `ValueError` when the class is defined.
pub fn constant_throughput(task_runs_per_second: f64) -> WaitTime {
    assert!(
        task_runs_per_second > 0.0 && task_runs_per_second.is_finite(),
        "constant_throughput() requires a positive rate, got: {task_runs_per_second}"
    );
    WaitTime::ConstantPacing(1.0 / task_runs_per_second)
}

/// `poisson(rate)`: waits drawn from an exponential distribution with mean `1 / rate`, so
/// task starts of many users form a Poisson process.
///
/// # Panics
/// When the rate is not positive (Locust's `ValueError`).
pub fn poisson(rate: f64) -> WaitTime {
    assert!(
        rate > 0.0 && rate.is_finite(),
        "poisson() requires a positive rate, got: {rate}"
    );
    WaitTime::Poisson(rate)
}

fn check_non_negative(what: &str, seconds: f64) {
    assert!(
        seconds >= 0.0 && seconds.is_finite(),
        "{what}() needs a finite, non-negative number of seconds, got: {seconds}"
    );
}

/// The pacing memory of one user or task set instance.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    last_run: Instant,
    last_wait: f64,
}

impl Pacing {
    /// Fresh state, as at instance creation (Locust sets `_cp_last_run` in `__init__`).
    pub fn new(now: Instant) -> Pacing {
        Pacing {
            last_run: now,
            last_wait: 0.0,
        }
    }
}

impl WaitTime {
    /// The next wait. `now` is passed in so tests can drive time.
    pub fn next(&self, rng: &mut fastrand::Rng, pacing: &mut Pacing, now: Instant) -> Duration {
        let seconds = match self {
            WaitTime::Constant(s) => *s,
            WaitTime::Between(a, b) => a + rng.f64() * (b - a),
            WaitTime::ConstantPacing(period) => {
                let run_time = now.duration_since(pacing.last_run).as_secs_f64() - pacing.last_wait;
                pacing.last_wait = (period - run_time).max(0.0);
                pacing.last_run = now;
                pacing.last_wait
            }
            WaitTime::Poisson(rate) => {
                // Inverse transform sampling, as Python's random.expovariate: -ln(1 - U) / rate.
                -(1.0 - rng.f64()).ln() / rate
            }
            WaitTime::Custom(f) => return f(rng),
        };
        // Saturate absurd values (constant(1e20), poisson(1e-30)) instead of panicking.
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn constant_is_constant() {
        let mut rng = fastrand::Rng::with_seed(1);
        let now = Instant::now();
        let mut p = Pacing::new(now);
        assert_eq!(secs(constant(2.5).next(&mut rng, &mut p, now)), 2.5);
        assert_eq!(secs(WaitTime::default().next(&mut rng, &mut p, now)), 0.0);
    }

    #[test]
    fn between_stays_in_range_and_spreads() {
        let mut rng = fastrand::Rng::with_seed(7);
        let now = Instant::now();
        let mut p = Pacing::new(now);
        let w = between(1.0, 2.0);
        let samples: Vec<f64> = (0..10_000)
            .map(|_| secs(w.next(&mut rng, &mut p, now)))
            .collect();
        assert!(samples.iter().all(|s| (1.0..2.0).contains(s)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 1.5).abs() < 0.02, "mean {mean}");
        assert!(samples.iter().any(|s| *s < 1.1) && samples.iter().any(|s| *s > 1.9));
    }

    #[test]
    fn constant_pacing_follows_locusts_formula() {
        let mut rng = fastrand::Rng::with_seed(1);
        let t0 = Instant::now();
        let mut p = Pacing::new(t0);
        let w = constant_pacing(10.0);
        // First task took 3 s after creation: wait 7 s.
        assert_eq!(
            secs(w.next(&mut rng, &mut p, t0 + Duration::from_secs(3))),
            7.0
        );
        // Slept 7 s, then a task of 4 s: wait 6 s.
        assert_eq!(
            secs(w.next(&mut rng, &mut p, t0 + Duration::from_secs(14))),
            6.0
        );
        // Slept 6 s, then a task of 12 s (longer than the period): no wait.
        assert_eq!(
            secs(w.next(&mut rng, &mut p, t0 + Duration::from_secs(32))),
            0.0
        );
        // A task of 1 s after no wait: wait 9 s.
        assert_eq!(
            secs(w.next(&mut rng, &mut p, t0 + Duration::from_secs(33))),
            9.0
        );
    }

    #[test]
    fn absurd_waits_saturate_instead_of_panicking() {
        let mut rng = fastrand::Rng::with_seed(1);
        let now = Instant::now();
        let mut p = Pacing::new(now);
        assert_eq!(constant(1e20).next(&mut rng, &mut p, now), Duration::MAX);
        assert!(poisson(1e-300).next(&mut rng, &mut p, now) > Duration::from_secs(1 << 40));
    }

    #[test]
    fn constant_throughput_is_inverse_pacing() {
        match constant_throughput(4.0) {
            WaitTime::ConstantPacing(p) => assert_eq!(p, 0.25),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    #[should_panic(expected = "requires a positive rate")]
    fn constant_throughput_rejects_zero() {
        let _ = constant_throughput(0.0);
    }

    #[test]
    fn poisson_has_the_right_mean() {
        let mut rng = fastrand::Rng::with_seed(3);
        let now = Instant::now();
        let mut p = Pacing::new(now);
        let w = poisson(4.0);
        let n = 50_000;
        let mean = (0..n)
            .map(|_| secs(w.next(&mut rng, &mut p, now)))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.25).abs() < 0.01, "mean {mean}");
    }
}
