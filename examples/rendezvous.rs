//! Rendezvous: users wait for each other, then go together.
//!
//! Every `Rusher` logs in as it is spawned, then waits in `on_start` until the ramp is
//! complete and every user is there (`Rendezvous::all_users()`), so the first wave of
//! product requests starts at one moment rather than trickling in with the ramp. Later, its
//! `checkout` task meets four others (`Rendezvous::new(5)`) before each purchase, making
//! bursts of five purchases at once. Both rendezvous give up after a timeout, so a user
//! that never comes cannot hold the others for ever.
//!
//! Each release is recorded as a request of type `RENDEZVOUS`, named after how many users
//! left together and timed from the user's arrival, so the statistics show the groups and
//! the waits.
//!
//! The Locust equivalent (the documented semaphore recipe, plus a gevent barrier):
//!
//! ```python
//! from gevent.lock import Semaphore
//! from locust import HttpUser, task, constant, events
//!
//! all_users_spawned = Semaphore()
//! all_users_spawned.acquire()
//!
//! @events.spawning_complete.add_listener
//! def on_spawned(user_count, **kw):
//!     all_users_spawned.release()
//!
//! class Rusher(HttpUser):
//!     wait_time = constant(0.1)
//!
//!     def on_start(self):
//!         self.client.post("/login", json={"username": "rusher", "password": "secret"})
//!         all_users_spawned.wait()          # no timeout, no count of who arrived
//!         self.client.get("/products", name="/products (first wave)")
//!
//!     @task
//!     def browse(self):
//!         self.client.get("/products")
//!
//!     @task
//!     def checkout(self):
//!         # A group-of-5 barrier needs hand-written code around gevent.event.Event
//!         ...
//! ```
//!
//! ```text
//! cargo run --release --bin hopper-demo-target &     # a target on 127.0.0.1:8080
//! cargo run --release --example rendezvous -- -H http://127.0.0.1:8080 --headless -u 10 -r 5 -t 10s
//! ```

use hopper::prelude::*;
use hopper::request::fire;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Every user, once spawning is complete.
static EVERYONE: LazyLock<Rendezvous> =
    LazyLock::new(|| Rendezvous::all_users().timeout(Duration::from_secs(60)));

/// Groups of five for a checkout rush.
static RUSH: LazyLock<Rendezvous> =
    LazyLock::new(|| Rendezvous::new(5).timeout(Duration::from_secs(5)));

#[derive(Default)]
struct Rusher {
    token: String,
}

/// Waits at `rendezvous` and records the release: `"<what>: <n> together"` when the group
/// was complete, `"<what>: timed out"` when the timeout released it.
async fn meet(rendezvous: &Rendezvous, what: &str) -> bool {
    let arrived = Instant::now();
    let outcome = rendezvous.wait().await;
    let (name, error) = match outcome {
        Ok(released) => (format!("{what}: {} together", released.users), None),
        Err(timed_out) => (format!("{what}: timed out"), Some(timed_out.to_string())),
    };
    fire(
        "RENDEZVOUS",
        &name,
        Some(arrived.elapsed()),
        0,
        error.as_deref(),
    );
    outcome.is_ok()
}

async fn on_start(user: &mut User<Rusher>) -> TaskResult {
    let username = format!("rusher{}", user.id());
    let r = user
        .client
        .post("/login")
        .json(&json!({ "username": username, "password": "secret" }))
        .expect_status(200)
        .send()
        .await;
    user.token = r.json_str("/token")?;
    meet(&EVERYONE, "all users").await;
    user.client
        .get("/products")
        .name("/products (first wave)")
        .send()
        .await;
    Ok(())
}

async fn browse(user: &mut User<Rusher>) -> TaskResult {
    user.client.get("/products").send().await;
    Ok(())
}

async fn checkout(user: &mut User<Rusher>) -> TaskResult {
    if !meet(&RUSH, "checkout rush").await {
        return Ok(());
    }
    user.client
        .post("/purchase")
        .bearer(&user.state.token)
        .json(&json!({ "product_id": 1, "quantity": 1 }))
        .expect_status(201)
        .send()
        .await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("Rusher", Rusher::default)
                .wait_time(constant(0.1))
                .on_start(hook!(on_start))
                .task(task!(browse, 3))
                .task(task!(checkout)),
        )
        .main()
}
