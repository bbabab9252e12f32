//! The life of one user: Locust's `User.run` and `TaskSet.run` loop, as async Rust.
//!
//! `on_start`, then forever: pick a task (weighted at random, or in order for sequential
//! sets), run it, wait. Control flow follows Locust's exceptions: an interrupt leaves a task
//! set (running its `on_stop`), `StopUser` unwinds every level's `on_stop` and the user's,
//! a failed task is recorded as an exception and the user waits and carries on. A panic in
//! a task is caught and treated as a failed task, so one bad request handler cannot take
//! the whole user down silently.

use crate::control::{Control, Signal};
use crate::task::{BoxFuture, TaskError, TaskFn, TaskKind, TaskResult, TaskSet};
use crate::user::{User, UserClass};
use crate::wait::{Pacing, WaitTime};
use futures_util::FutureExt;
use hopper_http::{Drain, HttpClient};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a killed user's requests already on the wire may take to finish.
pub(crate) const KILL_REQUEST_GRACE: Duration = Duration::from_secs(5);

/// How a task set ended, as seen by its parent.
enum Exit {
    /// Left by an interrupt: the parent picks its next task now (`true`) or after waiting.
    Reschedule { now: bool },
    /// The user is stopping (stop signal, kill or `StopUser`); `on_stop`s already ran.
    Stop,
    /// `on_start` of the set failed: the parent records it, waits and carries on.
    Failed(TaskError),
}

/// What to do after one task.
enum Next {
    Wait,
    NoWait,
    Stop,
}

/// Runs one user until it stops.
///
/// An `async` block rather than an `async fn`: an `async fn` moves its arguments into
/// locals of its future, which then holds the user twice (the argument and the local,
/// about 0.6 KiB each) for as long as the user lives; the block uses the captured user in
/// place. (Hence also clippy's `manual_async_fn` allowed: the rewrite it suggests is what
/// this avoids.)
#[allow(clippy::manual_async_fn)]
pub(crate) fn run<S: Send + 'static>(
    class: Arc<UserClass<S>>,
    mut user: User<S>,
    mut ctl: Control,
) -> impl Future<Output = ()> + Send {
    async move {
        let drain = user.client.drain();
        // Locust starts the pacing clock when the user is created, so on_start counts.
        let mut pacing = Pacing::new(Instant::now());
        if let Some(on_start) = &class.on_start {
            match guarded(on_start, &mut user, &mut ctl, &drain).await {
                None | Some(Err(TaskError::StopUser)) => {
                    finish(&class, &mut user).await;
                    return;
                }
                Some(Err(e @ TaskError::Failed { .. })) => {
                    // Locust logs it and the user's greenlet ends for good.
                    record_exception(&e, "on_start", &user);
                    return;
                }
                Some(_) => {}
            }
        }
        loop {
            // The top-level set runs inline, in this future: only nested sets are boxed, so
            // a user of a flat task list is one allocation (its task), not two.
            match run_set(
                &class.tasks,
                &mut user,
                &mut ctl,
                &drain,
                &class.wait_time,
                &mut pacing,
            )
            .await
            {
                Exit::Stop => break,
                // An interrupt at the top level has nowhere to go: keep running the tasks.
                Exit::Reschedule { .. } => continue,
                Exit::Failed(e) => {
                    record_exception(&e, &class.name, &user);
                    if !wait(&mut user, &mut ctl, &class.wait_time, &mut pacing).await {
                        break;
                    }
                }
            }
        }
        finish(&class, &mut user).await;
    }
}

/// The user's own `on_stop`, which Locust runs on every way out.
async fn finish<S: Send + 'static>(class: &UserClass<S>, user: &mut User<S>) {
    if let Some(on_stop) = &class.on_stop {
        if let Err(e) = run_caught(on_stop, user).await {
            log_hook_error(&e, "on_stop");
            // In Locust this escapes the user's greenlet: exit code 2 unless requests failed.
            crate::health::note_unhandled();
        }
    }
}

/// A nested task set, boxed: task sets nest, and a future cannot contain itself.
fn run_nested<'a, S: Send + 'static>(
    set: &'a TaskSet<S>,
    user: &'a mut User<S>,
    ctl: &'a mut Control,
    drain: &'a Drain,
    user_wait: &'a WaitTime,
    user_pacing: &'a mut Pacing,
) -> BoxFuture<'a, Exit> {
    Box::pin(run_set(set, user, ctl, drain, user_wait, user_pacing))
}

/// Runs a task set until it is left.
async fn run_set<S: Send + 'static>(
    set: &TaskSet<S>,
    user: &mut User<S>,
    ctl: &mut Control,
    drain: &Drain,
    user_wait: &WaitTime,
    user_pacing: &mut Pacing,
) -> Exit {
    // Locust's TaskSet.wait_time(): the set's own wait time, with pacing kept per entry on
    // the TaskSet instance, or else the user's wait time with the user's pacing (never
    // an enclosing set's).
    let mut own_pacing = set.wait_time.as_ref().map(|_| Pacing::new(Instant::now()));
    if let Some(on_start) = &set.on_start {
        match guarded(on_start, user, ctl, drain).await {
            None | Some(Err(TaskError::StopUser)) => {
                stop_set(set, user).await;
                return Exit::Stop;
            }
            Some(Ok(())) => {}
            // Interrupt in on_start leaves without on_stop, like Locust.
            Some(Err(TaskError::Interrupt { reschedule })) => {
                return Exit::Reschedule { now: reschedule }
            }
            Some(Err(TaskError::RescheduleNow)) => return Exit::Reschedule { now: true },
            Some(Err(TaskError::Reschedule)) => return Exit::Reschedule { now: false },
            Some(Err(e @ TaskError::Failed { .. })) => return Exit::Failed(e),
        }
    }
    let order = set.expanded();
    if order.is_empty() {
        // Locust raises this on every loop; once is enough to say it, then stop the user
        // instead of spinning.
        hopper_stats::record_exception(
            &format!(
                "No tasks defined on {}. Use task!() or .task(...) to add tasks",
                set.name
            ),
            &format!("  in task set {}\n", set.name),
        );
        tracing::error!(target: "hopper.user", "No tasks defined on {}", set.name);
        stop_set(set, user).await;
        return Exit::Stop;
    }
    let mut position = 0usize;
    loop {
        if ctl.stopping() {
            stop_set(set, user).await;
            return Exit::Stop;
        }
        let index = if set.sequential {
            let i = order[position % order.len()];
            position += 1;
            i
        } else {
            order[user.rng.usize(..order.len())]
        };
        let task = &set.tasks[index];
        let next = match &task.kind {
            TaskKind::Fn(f) => match guarded(f, user, ctl, drain).await {
                None | Some(Err(TaskError::StopUser)) => Next::Stop,
                Some(Ok(())) | Some(Err(TaskError::Reschedule)) => Next::Wait,
                Some(Err(TaskError::RescheduleNow)) => Next::NoWait,
                Some(Err(TaskError::Interrupt { reschedule })) => {
                    stop_set(set, user).await;
                    return Exit::Reschedule { now: reschedule };
                }
                Some(Err(e @ TaskError::Failed { .. })) => {
                    record_exception(&e, &task.name, user);
                    Next::Wait
                }
            },
            TaskKind::Set(child) => {
                match run_nested(child, user, ctl, drain, user_wait, user_pacing).await {
                    Exit::Stop => Next::Stop,
                    Exit::Reschedule { now: true } => Next::NoWait,
                    Exit::Reschedule { now: false } => Next::Wait,
                    Exit::Failed(e) => {
                        record_exception(&e, &child.name, user);
                        Next::Wait
                    }
                }
            }
        };
        let go_on = match next {
            Next::NoWait => !ctl.stopping(),
            Next::Wait => match (&set.wait_time, own_pacing.as_mut()) {
                (Some(w), Some(p)) => wait(user, ctl, w, p).await,
                _ => wait(user, ctl, user_wait, user_pacing).await,
            },
            Next::Stop => false,
        };
        if !go_on {
            stop_set(set, user).await;
            return Exit::Stop;
        }
    }
}

/// A task set's `on_stop`.
async fn stop_set<S: Send + 'static>(set: &TaskSet<S>, user: &mut User<S>) {
    if let Some(on_stop) = &set.on_stop {
        if let Err(e) = run_caught(on_stop, user).await {
            log_hook_error(&e, "on_stop");
        }
    }
}

/// Sleeps the wait time; a stop signal ends the wait early. False when the user must stop.
///
/// Before a wait of [`HttpClient::PARK_WAIT`] or more the user's HTTP/1.1 connections are
/// parked (kept as bare sockets, see [`HttpClient::park_idle`]), so that idle users cost
/// little memory; parking counts as part of the wait and never makes it longer.
async fn wait<S>(
    user: &mut User<S>,
    ctl: &mut Control,
    wait_time: &WaitTime,
    pacing: &mut Pacing,
) -> bool {
    if ctl.stopping() {
        return false;
    }
    let delay = wait_time.next(&mut user.rng, pacing, Instant::now());
    if !delay.is_zero() {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        if delay >= HttpClient::PARK_WAIT {
            // Parking runs inside the wait: were it ever slower, the wait still ends on time.
            tokio::select! {
                biased;
                _ = ctl.reached(Signal::Stop) => return false,
                _ = &mut sleep => return !ctl.stopping(),
                _ = user.client.park_idle() => {}
            }
        }
        tokio::select! {
            biased;
            _ = ctl.reached(Signal::Stop) => return false,
            _ = &mut sleep => {}
        }
    }
    !ctl.stopping()
}

/// Runs a task unless killed first. `None` means the user was killed mid-task.
///
/// A kill does not cut a request off the wire: requests already sent finish and are
/// recorded (up to [`KILL_REQUEST_GRACE`]) while no new one may start, so what the target
/// served and what Hopper counts stay equal. Then the task is dropped and the client
/// reopened for `on_stop`.
async fn guarded<S: Send + 'static>(
    f: &TaskFn<S>,
    user: &mut User<S>,
    ctl: &mut Control,
    drain: &Drain,
) -> Option<TaskResult> {
    {
        let task = run_caught(f, user);
        tokio::pin!(task);
        tokio::select! {
            biased;
            _ = ctl.reached(Signal::Kill) => {}
            r = &mut task => return Some(r),
        }
        drain.close();
        let _ = tokio::time::timeout(KILL_REQUEST_GRACE, async {
            tokio::select! {
                _ = &mut task => {}
                _ = drain.settled() => {}
            }
        })
        .await;
        // The abandoned task is dropped here, before the client opens again.
    }
    drain.reopen();
    None
}

/// Runs a task, turning a panic into a failed task.
async fn run_caught<S: Send + 'static>(f: &TaskFn<S>, user: &mut User<S>) -> TaskResult {
    match AssertUnwindSafe(crate::panic_hook::Quiet(f(user)))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "task panicked".to_string());
            let (file, line) = crate::panic_hook::take_last_location()
                .unwrap_or_else(|| ("<unknown>".to_string(), 0));
            Err(TaskError::Failed {
                message: format!("panic: {message}"),
                file,
                line,
            })
        }
    }
}

/// Records a failed task as a Locust exception: message, and where it happened in the
/// traceback form Locust's UI shows.
/// Also fires `user_error`.
fn record_exception<S>(e: &TaskError, task: &str, user: &User<S>) {
    if let TaskError::Failed {
        message,
        file,
        line,
    } = e
    {
        let traceback = format!("  File \"{file}\", line {line}, in {task}\n");
        tracing::error!(target: "hopper.user.task", "{message}\n{traceback}");
        hopper_stats::record_exception(message, &traceback);
        crate::events::events()
            .user_error
            .fire(&crate::events::UserError {
                class_name: user.class_name.to_string(),
                user_id: user.id,
                message: message.clone(),
                traceback,
            });
    }
}

fn log_hook_error(e: &TaskError, hook: &str) {
    tracing::error!(target: "hopper.user", "Uncaught exception in {hook}: {e:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Task;

    fn class<S: Default + Send + 'static>() -> Arc<UserClass<S>> {
        Arc::new(
            UserClass::new("Idle", S::default)
                .wait_time(crate::wait::constant(10.0))
                .task(Task::new("fast", |u: &mut User<S>| {
                    Box::pin(async move {
                        u.client.get("/fast").send().await;
                        Ok(())
                    })
                })),
        )
    }

    fn user<S: Default>() -> User<S> {
        User {
            client: HttpClient::new(Some("http://127.0.0.1:9")),
            state: S::default(),
            id: 1,
            class_name: Arc::from("Idle"),
            host: None,
            rng: fastrand::Rng::with_seed(1),
        }
    }

    /// A user's loop future lives as long as the user, idle or not, so it must hold the
    /// user once. An `async fn` taking the user by value would hold it twice (the argument
    /// and its local copy); with a large state that shows as twice the state's size.
    #[test]
    fn the_user_loop_holds_its_user_once() {
        // The state is never read: only its size matters here.
        #[allow(dead_code)]
        struct Big([u8; 8192]);
        impl Default for Big {
            fn default() -> Self {
                Big([0; 8192])
            }
        }
        let (_handle, ctl) = crate::control::control();
        let future = run(class::<Big>(), user::<Big>(), ctl);
        let size = std::mem::size_of_val(&future);
        assert!(
            size < 2 * std::mem::size_of::<User<Big>>(),
            "the loop future is {size} bytes"
        );
    }

    /// The whole per-user future, including the top-level task set run inline and the
    /// wait in it, for a user without state: 1,040 bytes in a release build (debug builds
    /// lay futures out less tightly, hence the margin). It was 1,944 bytes plus a separately
    /// boxed 656-byte task set future before the set ran inline.
    #[test]
    fn an_idle_users_future_stays_small() {
        let (_handle, ctl) = crate::control::control();
        let future = run(class::<()>(), user::<()>(), ctl);
        let size = std::mem::size_of_val(&future);
        assert!(size <= 2048, "the loop future is {size} bytes");
    }
}
