//! Events and hooks: listeners on `hopper::events()` that watch a test from the outside.
//!
//! * `init` and `spawning_complete` log;
//! * `test_start` / `test_stop` time the test;
//! * `request` counts slow requests (over 50 ms) as every request is recorded;
//! * `user_error` counts failed tasks;
//! * on a worker, `report_to_master` sends its slow-request count with each report, and on
//!   the master `worker_report` adds them up (Locust's custom-data recipe);
//! * `quitting` decides the exit code: with `EVENTS_MAX_FAIL_RATIO` set, 3 when the
//!   failure ratio is above it and 0 otherwise (whatever failed).
//!
//! `EVENTS_BROKEN_TEST_STOP=1` adds a `test_stop` listener that fails, to show what happens
//! then: it is logged and the exit code is 2 (when nothing else decided it).
//!
//! The Locust equivalent:
//!
//! ```python
//! import logging, os, time
//! from locust import HttpUser, task, tag, constant, events
//! from locust.runners import WorkerRunner, MasterRunner
//!
//! slow = {"count": 0, "from_workers": 0}
//! started = {}
//!
//! @events.init.add_listener
//! def on_init(environment, runner, web_ui, **kw):
//!     logging.info("events example: init (%s)", type(runner).__name__)
//!
//! @events.test_start.add_listener
//! def on_test_start(environment, **kw):
//!     started["at"] = time.monotonic()
//!
//! @events.spawning_complete.add_listener
//! def on_spawned(user_count, **kw):
//!     logging.info("events example: all %d users spawned", user_count)
//!
//! @events.request.add_listener
//! def on_request(response_time, **kw):
//!     if response_time and response_time > 50:
//!         slow["count"] += 1
//!
//! @events.user_error.add_listener
//! def on_user_error(user_instance, exception, tb, **kw):
//!     logging.info("events example: task failed: %s", exception)
//!
//! @events.report_to_master.add_listener
//! def on_report(client_id, data, **kw):
//!     data["slow_requests"] = slow["count"]
//!     slow["count"] = 0
//!
//! @events.worker_report.add_listener
//! def on_worker_report(client_id, data, **kw):
//!     slow["from_workers"] += data.get("slow_requests", 0)
//!
//! @events.test_stop.add_listener
//! def on_test_stop(environment, **kw):
//!     logging.info("events example: test ran %.1f s", time.monotonic() - started["at"])
//!
//! @events.quitting.add_listener
//! def on_quitting(environment, **kw):
//!     limit = os.environ.get("EVENTS_MAX_FAIL_RATIO")
//!     if limit is not None:
//!         environment.process_exit_code = 3 if environment.stats.total.fail_ratio > float(limit) else 0
//!
//! class Visitor(HttpUser):
//!     wait_time = constant(0.05)
//!
//!     @task
//!     def home(self):
//!         self.client.get("/")
//!
//!     @task
//!     def slow_page(self):
//!         self.client.get("/slow?ms=60", name="/slow")
//!
//!     @tag("failing")
//!     @task
//!     def broken(self):
//!         self.client.get("/status/500")
//!
//!     @tag("failing")
//!     @task
//!     def check(self):
//!         raise Exception("the check failed")
//! ```
//!
//! ```text
//! cargo run --release --bin hopper-demo-target &     # a target on 127.0.0.1:8080
//! EVENTS_MAX_FAIL_RATIO=0.1 cargo run --release --example events -- -H http://127.0.0.1:8080 --headless -u 4 -r 4 -t 5s
//! ```

use hopper::events::{ReportToMaster, Role};
use hopper::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests over this long count as slow.
const SLOW: Duration = Duration::from_millis(50);

/// Slow requests seen here since the last report to the master (all of them when local).
static SLOW_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Slow requests the workers reported (master only).
static SLOW_FROM_WORKERS: AtomicU64 = AtomicU64::new(0);
/// Failed tasks seen by `user_error`.
static TASK_ERRORS: AtomicU64 = AtomicU64::new(0);
/// When the current test started.
static STARTED: Mutex<Option<Instant>> = Mutex::new(None);

#[derive(Default)]
struct Visitor;

async fn home(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/").send().await;
    Ok(())
}

async fn slow_page(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/slow?ms=60").name("/slow").send().await;
    Ok(())
}

async fn broken(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/status/500").send().await;
    Ok(())
}

async fn check(_user: &mut User<Visitor>) -> TaskResult {
    fail("the check failed")
}

fn listen() {
    let events = hopper::events();
    events.init.add(|init| {
        tracing::info!(
            "events example: init ({:?}, web UI: {})",
            init.env.role,
            init.web_ui
        );
        Ok(())
    });
    events.test_start.add(|_| {
        *STARTED.lock().unwrap() = Some(Instant::now());
        Ok(())
    });
    events.spawning_complete.add(|s| {
        tracing::info!("events example: all {} users spawned", s.user_count);
        Ok(())
    });
    events.request.add(|r| {
        if r.response_time.is_some_and(|t| t > SLOW) {
            SLOW_REQUESTS.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    events.user_error.add(|e| {
        TASK_ERRORS.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            "events example: {} user {} failed: {}",
            e.class_name,
            e.user_id,
            e.message
        );
        Ok(())
    });
    events.report_to_master.add(|report: &ReportToMaster| {
        report.insert(
            "slow_requests",
            json!(SLOW_REQUESTS.swap(0, Ordering::Relaxed)),
        );
        Ok(())
    });
    events.worker_report.add(|report| {
        let slow = report.data.get("slow_requests").and_then(|v| v.as_u64());
        SLOW_FROM_WORKERS.fetch_add(slow.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    });
    events.test_stop.add(|_| {
        if let Some(started) = STARTED.lock().unwrap().take() {
            tracing::info!(
                "events example: test ran {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    });
    if std::env::var_os("EVENTS_BROKEN_TEST_STOP").is_some() {
        events
            .test_stop
            .add(|_| Err("this listener is broken on purpose".into()));
    }
    events.quitting.add(|q| {
        let slow = match q.env.role {
            Role::Master => SLOW_FROM_WORKERS.load(Ordering::Relaxed),
            _ => SLOW_REQUESTS.load(Ordering::Relaxed),
        };
        if q.env.role != Role::Worker {
            tracing::info!(
                "events example: {slow} slow requests, {} failed tasks, fail ratio {:.3}",
                TASK_ERRORS.load(Ordering::Relaxed),
                q.total.fail_ratio()
            );
        }
        if let Ok(limit) = std::env::var("EVENTS_MAX_FAIL_RATIO") {
            let limit: f64 = limit.parse()?;
            q.set_exit_code(if q.total.fail_ratio() > limit { 3 } else { 0 });
        }
        Ok(())
    });
}

fn main() {
    listen();
    Hopper::new()
        .user(
            UserClass::new("Visitor", Visitor::default)
                .wait_time(constant(0.05))
                .task(task!(home))
                .task(task!(slow_page))
                .task(task!(broken).tag("failing"))
                .task(task!(check).tag("failing")),
        )
        .main()
}
