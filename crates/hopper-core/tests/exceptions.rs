//! Failed and panicking tasks are recorded as task exceptions (message and location) and
//! the user carries on, as in Locust. In a test binary of its own because it reads the
//! process-wide statistics, which other tests' runners clear.

use hopper_core::control::control;
use hopper_core::user::SpawnUser;
use hopper_core::{
    constant, fail, stop_user, task, AnyUserClass, TaskResult, TaskSet, User, UserClass,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Traced {
    trace: Arc<Mutex<Vec<String>>>,
}

/// Records a step; stops the user after six so the run ends by itself.
fn step(user: &mut User<Traced>, what: &str) -> TaskResult {
    let mut trace = user.trace.lock().unwrap();
    trace.push(what.to_string());
    if trace.len() >= 6 {
        return stop_user();
    }
    Ok(())
}

async fn boom(u: &mut User<Traced>) -> TaskResult {
    step(u, "boom")?;
    fail("unique-failure-text-7731")
}

async fn panics(u: &mut User<Traced>) -> TaskResult {
    step(u, "panics")?;
    if u.trace.lock().unwrap().len() < 1_000_000 {
        panic!("unique-panic-text-5522");
    }
    Ok(())
}

#[tokio::test]
async fn failing_and_panicking_tasks_are_exceptions_and_the_user_carries_on() {
    let state = Traced::default();
    let trace = state.trace.clone();
    let class: Arc<dyn AnyUserClass> = Arc::new(
        UserClass::new("Traced", move || state.clone())
            .wait_time(constant(0.0))
            .task(
                TaskSet::new("Seq")
                    .sequential()
                    .task(task!(boom))
                    .task(task!(panics)),
            ),
    );
    let (handle, ctl) = control();
    let user = class.run_user(SpawnUser {
        id: 1,
        host_override: None,
        seed: 1,
        control: ctl,
    });
    tokio::time::timeout(Duration::from_secs(20), user)
        .await
        .expect("the user stops by itself");
    drop(handle);
    assert_eq!(
        trace.lock().unwrap().len(),
        6,
        "the user kept running after errors"
    );
    assert!(hopper_stats::global().sync(Duration::from_secs(5)));
    let stats = hopper_stats::global().lock();
    let failure = stats
        .exceptions
        .values()
        .find(|e| e.msg == "unique-failure-text-7731")
        .expect("failed task recorded");
    assert_eq!(failure.count, 3);
    assert!(
        failure.traceback.contains("exceptions.rs"),
        "{}",
        failure.traceback
    );
    assert!(
        failure.traceback.contains("in boom"),
        "{}",
        failure.traceback
    );
    let panic = stats
        .exceptions
        .values()
        .find(|e| e.msg.contains("unique-panic-text-5522"))
        .expect("panic recorded");
    // The last `panics` call hits the budget (StopUser) before panicking.
    assert_eq!(panic.count, 2);
    assert!(
        panic.traceback.contains("exceptions.rs"),
        "{}",
        panic.traceback
    );
    // Task errors are not request failures.
    assert!(stats.errors.values().all(|e| !e.error.contains("unique")));
}

async fn quick(u: &mut User<Traced>) -> TaskResult {
    step(u, "quick")
}

async fn broken_stop(_u: &mut User<Traced>) -> TaskResult {
    fail("on_stop could not log out")
}

#[tokio::test]
async fn a_failing_user_on_stop_counts_as_unhandled() {
    let before = hopper_core::health::unhandled_count();
    let class: Arc<dyn AnyUserClass> = Arc::new(
        UserClass::new("Stopper", Traced::default)
            .wait_time(constant(0.0))
            .on_stop(|u| Box::pin(broken_stop(u)))
            .task(task!(quick)),
    );
    let (handle, ctl) = control();
    tokio::time::timeout(
        Duration::from_secs(20),
        class.run_user(SpawnUser {
            id: 9,
            host_override: None,
            seed: 1,
            control: ctl,
        }),
    )
    .await
    .expect("the user stops by itself");
    drop(handle);
    assert_eq!(hopper_core::health::unhandled_count(), before + 1);
}
