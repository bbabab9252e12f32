//! A realistic shopper: logs in once, keeps the token, and browses and buys.
//!
//! The Locust equivalent:
//!
//! ```python
//! class Shopper(HttpUser):
//!     wait_time = between(0.5, 2)
//!
//!     def on_start(self):
//!         r = self.client.post("/login", json={"username": "alice", "password": "secret"})
//!         self.token = r.json()["token"]
//!
//!     @task(3)
//!     def home(self):
//!         with self.client.get("/", name="home", catch_response=True) as r:
//!             if r.status_code != 200:
//!                 r.failure(f"home page answered {r.status_code}")
//!             elif "Welcome" not in r.text:
//!                 r.failure("home page without its welcome text")
//!             elif r.elapsed.total_seconds() > 0.5:
//!                 r.failure("home page too slow")
//!
//!     @task(2)
//!     def products(self):
//!         self.client.get("/products")
//!
//!     @task(1)
//!     def purchase(self):
//!         product = random.randint(1, 10)
//!         self.client.post("/purchase", json={"product_id": product, "quantity": 1},
//!                          headers={"Authorization": f"Bearer {self.token}"})
//! ```
//!
//! ```text
//! cargo run --release --example shop -- -H http://127.0.0.1:8080 --headless -u 20 -r 10 -t 30s
//! ```

use hopper::prelude::*;
use serde::Deserialize;
use std::time::Duration;

/// Each shopper's own data: the token from logging in.
#[derive(Default)]
struct Shopper {
    token: String,
}

#[derive(Deserialize)]
struct LoginReply {
    token: String,
}

/// `on_start`: log in with a JSON POST and keep the token for later requests. A login that
/// does not return a token fails here (`?`), which Locust would also treat as an error.
async fn login(user: &mut User<Shopper>) -> TaskResult {
    let username = format!("shopper{}", user.id());
    let reply = user
        .client
        .post("/login")
        .json(&json!({ "username": username, "password": "secret" }))
        .send()
        .await;
    user.token = reply.json::<LoginReply>()?.token;
    Ok(())
}

/// The home page with our own success rules, recorded under the name "home".
async fn home(user: &mut User<Shopper>) -> TaskResult {
    let mut r = user
        .client
        .get("/")
        .name("home")
        .catch_response()
        .send()
        .await;
    if r.status() != 200 {
        let status = r.status();
        r.failure(format!("home page answered {status}"));
    } else if !r.text().contains("Welcome") {
        r.failure("home page without its welcome text");
    } else if r.response_time() > Duration::from_millis(500) {
        r.failure("home page too slow");
    }
    Ok(())
}

async fn products(user: &mut User<Shopper>) -> TaskResult {
    user.client.get("/products").send().await;
    Ok(())
}

/// A purchase, authenticated with the token kept from `on_start`.
async fn purchase(user: &mut User<Shopper>) -> TaskResult {
    let product = user.rng().u32(1..=10);
    // `user.state` and `user.client` are separate fields, so both can be borrowed at once.
    user.client
        .post("/purchase")
        .bearer(&user.state.token)
        .json(&json!({ "product_id": product, "quantity": 1 }))
        .send()
        .await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("Shopper", Shopper::default)
                .wait_time(between(0.5, 2.0))
                .on_start(hook!(login))
                .task(task!(home, 3))
                .task(task!(products, 2))
                .task(task!(purchase, 1)),
        )
        .main()
}
