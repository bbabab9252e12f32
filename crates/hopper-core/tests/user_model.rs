//! The user model's semantics, checked by running real users on a tokio runtime: task
//! selection, sequential and nested task sets, interrupts, `StopUser`, hooks, failures,
//! panics, stopping and killing, tag filtering, and the local runner's per-class counts.
//!
//! Users here record what they do in a shared trace instead of sending HTTP requests, so
//! the assertions read like the Locust semantics they check.

use hopper_core::control::{control, Signal};
use hopper_core::user::SpawnUser;
use hopper_core::{
    constant, fail, interrupt, stop_user, task, AnyUserClass, LocalRunner, RunnerOptions,
    TaskResult, TaskSet, User, UserClass,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a test user remembers: a trace shared with the test, and a task budget.
#[derive(Clone, Default)]
struct Traced {
    trace: Arc<Mutex<Vec<String>>>,
    budget: usize,
}

impl Traced {
    fn with_budget(budget: usize) -> (Traced, Arc<Mutex<Vec<String>>>) {
        let t = Traced {
            trace: Arc::default(),
            budget,
        };
        let trace = t.trace.clone();
        (t, trace)
    }
}

/// Records a step; stops the user once the budget is spent so runs end by themselves.
fn step(user: &mut User<Traced>, what: &str) -> TaskResult {
    let mut trace = user.trace.lock().unwrap();
    trace.push(what.to_string());
    if trace.iter().filter(|s| !s.contains(':')).count() >= user.budget {
        drop(trace);
        return stop_user();
    }
    Ok(())
}

async fn a(u: &mut User<Traced>) -> TaskResult {
    step(u, "a")
}
async fn b(u: &mut User<Traced>) -> TaskResult {
    step(u, "b")
}
async fn c(u: &mut User<Traced>) -> TaskResult {
    step(u, "c")
}
async fn leave(u: &mut User<Traced>) -> TaskResult {
    step(u, "leave")?;
    interrupt(false)
}
async fn set_start(u: &mut User<Traced>) -> TaskResult {
    u.trace.lock().unwrap().push("set:on_start".into());
    Ok(())
}
async fn set_stop(u: &mut User<Traced>) -> TaskResult {
    u.trace.lock().unwrap().push("set:on_stop".into());
    Ok(())
}
async fn user_start(u: &mut User<Traced>) -> TaskResult {
    u.trace.lock().unwrap().push("user:on_start".into());
    Ok(())
}
async fn user_stop(u: &mut User<Traced>) -> TaskResult {
    u.trace.lock().unwrap().push("user:on_stop".into());
    Ok(())
}

/// Runs one user of `class` with `state` to completion (bounded) and returns its trace.
async fn run_one(class: UserClass<Traced>, seed: u64) {
    let class: Arc<dyn AnyUserClass> = Arc::new(class);
    let (handle, ctl) = control();
    let fut = class.run_user(SpawnUser {
        id: 1,
        host_override: None,
        seed,
        control: ctl,
    });
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the user should stop by itself");
    drop(handle);
}

fn traced_class(state: Traced) -> UserClass<Traced> {
    UserClass::new("Traced", move || state.clone()).wait_time(constant(0.0))
}

#[tokio::test]
async fn weighted_selection_follows_weights_with_a_fixed_seed() {
    let (state, trace) = Traced::with_budget(8000);
    let class = traced_class(state).task(task!(a, 3)).task(task!(b, 1));
    run_one(class, 42).await;
    let trace = trace.lock().unwrap().clone();
    let n_a = trace.iter().filter(|s| *s == "a").count();
    let n_b = trace.iter().filter(|s| *s == "b").count();
    assert_eq!(n_a + n_b, 8000);
    let share = n_a as f64 / 8000.0;
    assert!((0.72..0.78).contains(&share), "a share {share}");

    // The same seed picks the same sequence again.
    let (state2, trace2) = Traced::with_budget(8000);
    run_one(traced_class(state2).task(task!(a, 3)).task(task!(b, 1)), 42).await;
    assert_eq!(trace, *trace2.lock().unwrap());
}

#[tokio::test]
async fn sequential_sets_run_in_order_and_repeat_weighted_tasks() {
    let (state, trace) = Traced::with_budget(9);
    let set = TaskSet::new("Flow")
        .sequential()
        .task(task!(a))
        .task(task!(b, 2))
        .task(task!(c));
    run_one(traced_class(state).task(set), 1).await;
    let steps: Vec<String> = trace.lock().unwrap().clone();
    assert_eq!(steps, ["a", "b", "b", "c", "a", "b", "b", "c", "a"]);
}

#[tokio::test]
async fn interrupt_leaves_the_set_through_its_on_stop() {
    let (state, trace) = Traced::with_budget(4);
    let set = TaskSet::new("Inner")
        .sequential()
        .on_start(|u| Box::pin(set_start(u)))
        .on_stop(|u| Box::pin(set_stop(u)))
        .task(task!(a))
        .task(task!(leave));
    let class = traced_class(state)
        .on_start(|u| Box::pin(user_start(u)))
        .on_stop(|u| Box::pin(user_stop(u)))
        .task(set);
    run_one(class, 1).await;
    let steps: Vec<String> = trace.lock().unwrap().clone();
    assert_eq!(
        steps,
        [
            "user:on_start",
            "set:on_start",
            "a",
            "leave",
            "set:on_stop",
            // The parent picks its next task: the set again.
            "set:on_start",
            "a",
            "leave",
            // StopUser (budget) unwinds the set's on_stop, then the user's.
            "set:on_stop",
            "user:on_stop",
        ]
    );
}

#[tokio::test]
async fn a_nested_set_without_its_own_wait_uses_the_users_not_the_enclosing_sets() {
    // User: no wait. Outer set: 60 s. Inner set (no wait time of its own): Locust's
    // TaskSet.wait_time() falls back to the user's, so the inner tasks run back to back and
    // the budget is spent long before the 20 s bound in run_one.
    let (state, trace) = Traced::with_budget(5);
    let inner = TaskSet::new("Inner").task(task!(a));
    let outer = TaskSet::new("Outer").wait_time(constant(60.0)).task(inner);
    run_one(traced_class(state).task(outer), 1).await;
    assert_eq!(trace.lock().unwrap().len(), 5);
}

async fn bad_start(_u: &mut User<Traced>) -> TaskResult {
    fail("cannot log in")
}

#[tokio::test]
async fn a_failing_on_start_ends_the_user_without_tasks() {
    let (state, trace) = Traced::with_budget(100);
    let class = traced_class(state)
        .on_start(|u| Box::pin(bad_start(u)))
        .on_stop(|u| Box::pin(user_stop(u)))
        .task(task!(a));
    run_one(class, 1).await;
    assert!(
        trace.lock().unwrap().is_empty(),
        "{:?}",
        trace.lock().unwrap()
    );
}

async fn slow_task(u: &mut User<Traced>) -> TaskResult {
    u.trace.lock().unwrap().push("slow:begin".into());
    tokio::time::sleep(Duration::from_millis(300)).await;
    u.trace.lock().unwrap().push("slow:end".into());
    Ok(())
}

/// Starts a user whose only task takes 300 ms and waits 60 s after it, sends `signal`
/// once the task has begun, and returns the trace when the user has ended.
async fn signal_mid_task(signal: Signal, wait_first: bool) -> Vec<String> {
    let (state, trace) = Traced::with_budget(100);
    let class: Arc<dyn AnyUserClass> = Arc::new(
        traced_class(state)
            .wait_time(constant(60.0))
            .on_stop(|u| Box::pin(user_stop(u)))
            .task(task!(slow_task)),
    );
    let (handle, ctl) = control();
    let join = tokio::spawn(class.run_user(SpawnUser {
        id: 1,
        host_override: None,
        seed: 1,
        control: ctl,
    }));
    let marker = if wait_first { "slow:end" } else { "slow:begin" };
    for _ in 0..500 {
        if trace.lock().unwrap().iter().any(|s| s == marker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.send(signal);
    tokio::time::timeout(Duration::from_secs(20), join)
        .await
        .expect("user ended")
        .unwrap();
    let out = trace.lock().unwrap().clone();
    out
}

#[tokio::test]
async fn stop_lets_a_busy_user_finish_its_task() {
    let steps = signal_mid_task(Signal::Stop, false).await;
    assert_eq!(steps, ["slow:begin", "slow:end", "user:on_stop"]);
}

#[tokio::test]
async fn stop_ends_a_waiting_user_at_once() {
    // The user is in its 60 s wait when stopped; the bounded timeout proves it did not wait.
    let steps = signal_mid_task(Signal::Stop, true).await;
    assert_eq!(steps, ["slow:begin", "slow:end", "user:on_stop"]);
}

#[tokio::test]
async fn kill_abandons_the_task_but_runs_on_stop() {
    let steps = signal_mid_task(Signal::Kill, false).await;
    assert_eq!(steps, ["slow:begin", "user:on_stop"]);
}

fn tags(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn tags_filter_tasks_and_sets_as_locust_does() {
    let (state, trace) = Traced::with_budget(300);
    let class = traced_class(state)
        .task(task!(a).tag("x"))
        .task(task!(b).tag("y"))
        .task(task!(c))
        // A tagged set tags all its tasks.
        .task(TaskSet::new("Tagged").tag("x").task(task!(leave)));
    let filtered = class.filtered(Some(&tags(&["x"])), None);
    let names: Vec<String> = filtered.ratios().iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, ["a", "Tagged"]);
    let excluded = class.filtered(None, Some(&tags(&["x"])));
    let names: Vec<String> = excluded.ratios().iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, ["b", "c"]);
    let both = class.filtered(Some(&tags(&["x", "y"])), Some(&tags(&["y"])));
    let names: Vec<String> = both.ratios().iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, ["a", "Tagged"]);
    let none = class.filtered(Some(&tags(&["nope"])), None);
    assert!(!none.has_tasks());
    // Run the filtered class: only a, leave.
    let (handle, ctl) = control();
    filtered
        .run_user(SpawnUser {
            id: 1,
            host_override: None,
            seed: 3,
            control: ctl,
        })
        .await;
    drop(handle);
    let steps = trace.lock().unwrap();
    assert!(steps.iter().all(|s| s == "a" || s == "leave"), "{steps:?}");
    assert!(steps.iter().any(|s| s == "a") && steps.iter().any(|s| s == "leave"));
}

#[derive(Clone, Default)]
struct Idle {
    stopped: Arc<Mutex<Vec<u64>>>,
}

async fn idle(_u: &mut User<Idle>) -> TaskResult {
    Ok(())
}

async fn idle_stop(u: &mut User<Idle>) -> TaskResult {
    let id = u.id();
    u.stopped.lock().unwrap().push(id);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_dispatches_by_weight_and_ramps_down_newest_first() {
    let shared = Idle::default();
    let stopped = shared.stopped.clone();
    let make = |name: &str, weight: f64| {
        let s = shared.clone();
        let class: Arc<dyn AnyUserClass> = Arc::new(
            UserClass::new(name, move || s.clone())
                .weight(weight)
                .wait_time(constant(30.0))
                .on_stop(|u| Box::pin(idle_stop(u)))
                .task(task!(idle)),
        );
        class
    };
    let mut runner = LocalRunner::new(
        vec![make("A", 3.0), make("B", 1.0)],
        RunnerOptions::default(),
    );
    runner.start(8, 1000.0).await;
    let counts = runner.user_classes_count();
    assert_eq!(counts["A"], 6);
    assert_eq!(counts["B"], 2);
    assert_eq!(runner.user_count(), 8);
    // 3:1 sequence is A A B A A A B A: going down to 5 removes the newest A, B, A.
    runner.start(5, 1000.0).await;
    for _ in 0..200 {
        if stopped.lock().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counts = runner.user_classes_count();
    assert_eq!((counts["A"], counts["B"]), (4, 1));
    let mut gone = stopped.lock().unwrap().clone();
    gone.sort_unstable();
    // Within an iteration users are spawned class by class (A got ids 1-6, B 7-8, as
    // Locust's spawn_users loops over classes); ramping down stops the newest of each.
    assert_eq!(gone, [5, 6, 8]);
    runner.stop().await;
    assert_eq!(stopped.lock().unwrap().len(), 8, "every user ran on_stop");
    assert_eq!(runner.user_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_count_classes_get_exactly_their_count() {
    let shared = Idle::default();
    let make = |name: &str, weight: f64, fixed: u32| {
        let s = shared.clone();
        let class: Arc<dyn AnyUserClass> = Arc::new(
            UserClass::new(name, move || s.clone())
                .weight(weight)
                .fixed_count(fixed)
                .wait_time(constant(30.0))
                .task(task!(idle)),
        );
        class
    };
    let mut runner = LocalRunner::new(
        vec![make("A", 3.0, 0), make("B", 2.0, 0), make("F", 1.0, 2)],
        RunnerOptions::default(),
    );
    runner.start(12, 1000.0).await;
    let counts = runner.user_classes_count();
    assert_eq!(counts["F"], 2);
    assert_eq!(counts["A"] + counts["B"], 10);
    assert_eq!((counts["A"], counts["B"]), (6, 4));
    runner.stop().await;
}
