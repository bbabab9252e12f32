//! Events and hooks: Locust's `environment.events`, as typed Rust listeners.
//!
//! A test registers listeners on the process-wide [`events()`] before it runs, usually in
//! `main` before `Hopper::main()`:
//!
//! ```
//! use hopper_core::events::{events, Quitting};
//!
//! events().test_start.add(|env| {
//!     println!("test starting against {:?}", env.host);
//!     Ok(())
//! });
//! events().quitting.add(|q: &Quitting| {
//!     if q.total.fail_ratio() > 0.01 {
//!         q.set_exit_code(1);
//!     }
//!     Ok(())
//! });
//! ```
//!
//! Listeners run in registration order (`quitting` in reverse, as in Locust), on the thread
//! that fires the event, so they should be quick. A listener that returns an error or panics
//! is logged ("Uncaught exception in event handler") and makes the process exit with code 2,
//! as in Locust; the other listeners still run. An error from an `init` listener stops the
//! program before the test with exit code 1.
//!
//! The events are process-wide because they fire from every layer (the runner, the HTTP
//! client's recorder, the master and worker loops), as Locust's do from its one
//! `Environment`.

use hopper_stats::RequestRecord;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

/// What a listener returns: any error is logged and sets exit code 2.
pub type HookResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type Listener<A> = Arc<dyn Fn(&A) -> HookResult + Send + Sync>;

/// One event: its listeners, called with `&A` each time the event fires.
pub struct Hook<A> {
    name: &'static str,
    listeners: RwLock<Vec<Listener<A>>>,
    /// Lets the hot path (the `request` event) skip the lock when nobody listens.
    used: AtomicBool,
}

impl<A> Hook<A> {
    const fn new(name: &'static str) -> Hook<A> {
        Hook {
            name,
            listeners: RwLock::new(Vec::new()),
            used: AtomicBool::new(false),
        }
    }

    /// Adds a listener (Locust's `add_listener`).
    pub fn add(&self, listener: impl Fn(&A) -> HookResult + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(listener));
        self.used.store(true, Ordering::Release);
    }

    /// True when at least one listener is registered.
    pub fn has_listeners(&self) -> bool {
        self.used.load(Ordering::Acquire)
    }

    /// Calls every listener in registration order. Returns false if one failed (it has been
    /// logged and noted for the exit code).
    pub fn fire(&self, arg: &A) -> bool {
        self.fire_ordered(arg, false)
    }

    /// Calls every listener, last registered first (Locust fires `quitting` this way).
    pub fn fire_reversed(&self, arg: &A) -> bool {
        self.fire_ordered(arg, true)
    }

    fn fire_ordered(&self, arg: &A, reversed: bool) -> bool {
        if !self.has_listeners() {
            return true;
        }
        // Call outside the lock: a listener may register another listener.
        let mut listeners: Vec<Listener<A>> = self
            .listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if reversed {
            listeners.reverse();
        }
        let mut ok = true;
        for listener in listeners {
            let outcome = catch_unwind(AssertUnwindSafe(|| listener(arg)));
            let failure = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(panic) => panic_text(panic.as_ref()),
            };
            ok = false;
            tracing::error!(
                target: "hopper.events",
                "Uncaught exception in event handler ({}): {failure}",
                self.name
            );
            crate::health::note_unhandled();
        }
        ok
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| format!("panic: {s}"))
        .or_else(|| {
            panic
                .downcast_ref::<String>()
                .map(|s| format!("panic: {s}"))
        })
        .unwrap_or_else(|| "panic".to_string())
}

/// Which part this process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A single process running users (Locust's `LocalRunner`).
    Local,
    /// A master handing users to workers.
    Master,
    /// A worker running the users a master asks for.
    Worker,
}

/// What listeners learn about the run (the useful parts of Locust's `environment`).
#[derive(Debug, Clone)]
pub struct Environment {
    /// This process's part.
    pub role: Role,
    /// The host given with `-H` or the web form, if any (classes may have their own).
    pub host: Option<String>,
}

/// `init`: the runner exists; the web UI (if any) is not serving yet.
#[derive(Debug, Clone)]
pub struct Init {
    pub env: Environment,
    /// True when the web UI will be served.
    pub web_ui: bool,
}

/// `spawning_complete`: the ramp reached its target.
#[derive(Debug, Clone, Copy)]
pub struct SpawningComplete {
    /// Users in the whole test (on a worker: the master's total, as in Locust).
    pub user_count: u64,
}

/// `request`: one request was recorded (HTTP, WebSocket or custom).
#[derive(Debug, Clone)]
pub struct Request {
    /// `"GET"`, `"WS"`, a custom type...
    pub request_type: String,
    /// Stats name.
    pub name: String,
    /// `None` for requests recorded without a time.
    pub response_time: Option<Duration>,
    /// Response length, bytes.
    pub response_length: u64,
    /// `None` on success, else the failure text the statistics show.
    pub error: Option<String>,
}

/// `user_error`: a task (or `on_start`) of a user failed or panicked.
#[derive(Debug, Clone)]
pub struct UserError {
    /// The user's class.
    pub class_name: String,
    /// The user's id (spawn order from 1).
    pub user_id: u64,
    /// The error text, as recorded in the exceptions table.
    pub message: String,
    /// Where it happened, in the traceback form the exceptions table shows.
    pub traceback: String,
}

/// Keys of a worker's report that belong to the protocol; listeners may not set them.
pub const RESERVED_REPORT_KEYS: [&str; 5] = [
    "stats",
    "stats_total",
    "errors",
    "user_classes_count",
    "user_count",
];

/// `report_to_master`: a worker is about to send its statistics; listeners add their own
/// keys, which the master's `worker_report` listeners receive (from Hopper and Locust
/// workers alike).
#[derive(Debug)]
pub struct ReportToMaster {
    /// The worker's id as the master knows it.
    pub client_id: String,
    data: RefCell<serde_json::Map<String, serde_json::Value>>,
}

impl ReportToMaster {
    /// An empty report from `client_id`.
    pub fn new(client_id: impl Into<String>) -> ReportToMaster {
        ReportToMaster {
            client_id: client_id.into(),
            data: RefCell::new(serde_json::Map::new()),
        }
    }

    /// Adds `key` to the report. The protocol's own keys are refused (logged).
    pub fn insert(&self, key: impl Into<String>, value: serde_json::Value) {
        let key = key.into();
        if RESERVED_REPORT_KEYS.contains(&key.as_str()) {
            tracing::error!(target: "hopper.events", "report_to_master: the key {key:?} belongs to the protocol and was not sent");
            return;
        }
        self.data.borrow_mut().insert(key, value);
    }

    /// What listeners added.
    pub fn into_data(self) -> serde_json::Map<String, serde_json::Value> {
        self.data.into_inner()
    }
}

/// `worker_report`: the master received a worker's statistics; `data` holds the keys its
/// `report_to_master` listeners added (the statistics themselves are merged by Hopper).
#[derive(Debug, Clone)]
pub struct WorkerReport {
    pub client_id: String,
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// The totals a `quitting` listener usually decides on (Locust's `environment.stats.total`).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// The Aggregated row, `None` before any statistics existed.
    entry: Option<hopper_stats::StatsEntry>,
}

impl Totals {
    /// Requests recorded, failures included.
    pub fn num_requests(&self) -> u64 {
        self.entry.as_ref().map_or(0, |e| e.num_requests)
    }

    /// Failed requests.
    pub fn num_failures(&self) -> u64 {
        self.entry.as_ref().map_or(0, |e| e.num_failures)
    }

    /// Failures / requests (0 when nothing ran).
    pub fn fail_ratio(&self) -> f64 {
        self.entry.as_ref().map_or(0.0, |e| e.fail_ratio())
    }

    /// Mean response time, ms.
    pub fn avg_response_time(&self) -> f64 {
        self.entry.as_ref().map_or(0.0, |e| e.avg_response_time())
    }

    /// The precise (HDR, microsecond) response time at quantile `q` (0.0–1.0), ms.
    pub fn percentile(&self, q: f64) -> f64 {
        self.entry.as_ref().map_or(0.0, |e| e.precise_percentile(q))
    }

    /// The aggregated totals of the process-wide statistics now.
    pub fn now() -> Totals {
        Totals {
            entry: Some(hopper_stats::global().lock().total.clone()),
        }
    }
}

/// `quitting`: the process is about to exit. Listeners may set the exit code.
#[derive(Debug)]
pub struct Quitting {
    pub env: Environment,
    /// The test's totals.
    pub total: Totals,
    exit_code: Mutex<Option<i32>>,
}

impl Quitting {
    /// Quitting after a test with these totals.
    pub fn new(env: Environment, total: Totals) -> Quitting {
        Quitting {
            env,
            total,
            exit_code: Mutex::new(None),
        }
    }

    /// The exit code a listener set, if any; otherwise Hopper's own rules decide (request
    /// failures, unhandled errors).
    pub fn exit_code(&self) -> Option<i32> {
        *self
            .exit_code
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the process exit code (Locust's `environment.process_exit_code`).
    pub fn set_exit_code(&self, code: i32) {
        *self
            .exit_code
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(code);
    }
}

/// Every event a test can listen to.
pub struct Events {
    /// After the runner exists, before the web UI serves (an error exits 1).
    pub init: Hook<Init>,
    /// A test starts from a stopped or ready state (not on user-count edits); each node.
    pub test_start: Hook<Environment>,
    /// A stop begins, before users are stopped; each node.
    pub test_stopping: Hook<Environment>,
    /// Users have stopped; each node.
    pub test_stop: Hook<Environment>,
    /// The ramp is complete.
    pub spawning_complete: Hook<SpawningComplete>,
    /// Every recorded request. Costs a copy of the names per request while listened to.
    pub request: Hook<Request>,
    /// A user's task or `on_start` failed.
    pub user_error: Hook<UserError>,
    /// Worker, every report: add custom data for the master.
    pub report_to_master: Hook<ReportToMaster>,
    /// Master, every worker report: the custom data workers added.
    pub worker_report: Hook<WorkerReport>,
    /// The process is exiting (reverse order); may set the exit code.
    pub quitting: Hook<Quitting>,
}

/// The process's events.
pub fn events() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(|| {
        hopper_stats::set_request_observer(observe_request);
        Events {
            init: Hook::new("init"),
            test_start: Hook::new("test_start"),
            test_stopping: Hook::new("test_stopping"),
            test_stop: Hook::new("test_stop"),
            spawning_complete: Hook::new("spawning_complete"),
            request: Hook::new("request"),
            user_error: Hook::new("user_error"),
            report_to_master: Hook::new("report_to_master"),
            worker_report: Hook::new("worker_report"),
            quitting: Hook::new("quitting"),
        }
    })
}

/// Hands each recorded request to the `request` listeners.
fn observe_request(r: &RequestRecord<'_>) {
    let hook = &events().request;
    if !hook.has_listeners() {
        return;
    }
    hook.fire(&Request {
        request_type: r.request_type.to_string(),
        name: r.name.to_string(),
        response_time: r.response_time,
        response_length: r.response_length,
        error: r.error.map(str::to_string),
    });
}

/// The environment listeners see now: this process's role and the current host.
pub fn environment() -> Environment {
    let current = CURRENT.read().unwrap_or_else(PoisonError::into_inner);
    current.clone()
}

static CURRENT: RwLock<Environment> = RwLock::new(Environment {
    role: Role::Local,
    host: None,
});

/// Sets this process's role (once, at start-up).
pub fn set_role(role: Role) {
    CURRENT.write().unwrap_or_else(PoisonError::into_inner).role = role;
}

/// Records the host tests run against now (`-H`, or the web form's).
pub fn set_host(host: Option<&str>) {
    CURRENT.write().unwrap_or_else(PoisonError::into_inner).host =
        host.filter(|h| !h.is_empty()).map(str::to_string);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn listeners_run_in_order_and_reversed() {
        let hook: Hook<u32> = Hook::new("t");
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let seen = seen.clone();
            hook.add(move |x| {
                seen.lock().unwrap().push(i * 10 + x);
                Ok(())
            });
        }
        assert!(hook.fire(&1));
        assert!(hook.fire_reversed(&2));
        assert_eq!(*seen.lock().unwrap(), vec![1, 11, 21, 22, 12, 2]);
    }

    #[test]
    fn a_failing_listener_is_noted_and_the_others_still_run() {
        let hook: Hook<()> = Hook::new("t");
        let calls = Arc::new(AtomicUsize::new(0));
        hook.add(|_| Err("broken".into()));
        hook.add(|_| panic!("worse"));
        let c = calls.clone();
        hook.add(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let before = crate::health::unhandled_count();
        assert!(!hook.fire(&()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(crate::health::unhandled_count() >= before + 2);
    }

    #[test]
    fn no_listeners_means_nothing_to_do() {
        let hook: Hook<()> = Hook::new("t");
        assert!(!hook.has_listeners());
        assert!(hook.fire(&()));
    }

    #[test]
    fn reserved_report_keys_are_refused() {
        let report = ReportToMaster::new("w1");
        report.insert("stats", serde_json::json!(1));
        report.insert("carts", serde_json::json!(3));
        let data = report.into_data();
        assert_eq!(data.len(), 1);
        assert_eq!(data["carts"], 3);
    }

    #[test]
    fn quitting_exit_code_can_be_changed() {
        let q = Quitting::new(environment(), Totals::default());
        assert_eq!(q.exit_code(), None);
        q.set_exit_code(3);
        assert_eq!(q.exit_code(), Some(3));
        assert_eq!(q.total.fail_ratio(), 0.0);
    }
}
