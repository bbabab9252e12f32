//! The user loop parks a user's HTTP/1.1 connection while the user waits, and the next task
//! finds it back: one real user against a small HTTP/1.1 server on 127.0.0.1.
//!
//! The server runs on a runtime of its own (another thread), and the user runs directly on
//! a single-threaded runtime, so the only tasks on the user's runtime are its connections':
//! one while the connection is live, none while it is parked.

mod common;

use hopper_core::control::control;
use hopper_core::user::SpawnUser;
use hopper_core::{constant, stop_user, task, AnyUserClass, TaskResult, User, UserClass};
use hopper_http::HttpClient;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the user saw on each task: connection tasks alive before its request, the status,
/// and connection tasks alive after it.
#[derive(Clone, Default)]
struct Seen {
    steps: Arc<Mutex<Vec<(usize, u16, usize)>>>,
}

const REQUESTS: usize = 3;

fn connection_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

async fn fetch(user: &mut User<Seen>) -> TaskResult {
    let before = connection_tasks();
    let status = user.client.get("/user-loop/park").send().await.status();
    let after = connection_tasks();
    let mut steps = user.steps.lock().unwrap();
    steps.push((before, status, after));
    if steps.len() == REQUESTS {
        return stop_user();
    }
    Ok(())
}

/// Runs one user that waits `wait` seconds between its requests until it has made
/// [`REQUESTS`]; returns what it saw and how many connections the server accepted.
fn run_user(wait: f64) -> (Vec<(usize, u16, usize)>, usize) {
    let (port, server) = common::start_server();
    let seen = Seen::default();
    let state = seen.clone();
    let class: Arc<dyn AnyUserClass> = Arc::new(
        UserClass::new("Parker", move || state.clone())
            .host(format!("http://127.0.0.1:{port}"))
            .wait_time(constant(wait))
            .task(task!(fetch)),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (handle, ctl) = control();
        let user = class.run_user(SpawnUser {
            id: 1,
            host_override: None,
            seed: 1,
            control: ctl,
        });
        tokio::time::timeout(Duration::from_secs(30), user)
            .await
            .expect("the user stops by itself");
        drop(handle);
    });
    let steps = seen.steps.lock().unwrap().clone();
    (steps, server.connections.load(Ordering::SeqCst))
}

#[test]
fn a_waiting_user_parks_its_connection_and_reuses_it() {
    // The shortest wait that parks.
    let (steps, accepted) = run_user(HttpClient::PARK_WAIT.as_secs_f64());
    // Before the first request there is no connection; before each later one, the
    // connection is parked (no task); after each request it is live (its task runs).
    assert_eq!(steps, [(0, 200, 1); REQUESTS]);
    assert_eq!(accepted, 1, "one TCP connection throughout");
}

#[test]
fn a_short_wait_keeps_the_connection_live() {
    let (steps, accepted) = run_user(0.05);
    assert_eq!(steps, [(0, 200, 1), (1, 200, 1), (1, 200, 1)]);
    assert_eq!(accepted, 1);
}
