//! Quickstart: one user class, two tasks, a wait of 1–2 s between them.
//!
//! The Locust equivalent:
//!
//! ```python
//! class QuickstartUser(HttpUser):
//!     wait_time = between(1, 2)
//!
//!     @task
//!     def hello_world(self):
//!         self.client.get("/")
//!
//!     @task(3)
//!     def view_products(self):
//!         self.client.get("/products")
//! ```
//!
//! Run it against the demo target (`cargo run --release --bin hopper-demo-target` in another
//! terminal, which listens on 127.0.0.1:8080):
//!
//! ```text
//! cargo run --release --example quickstart -- -H http://127.0.0.1:8080 --headless -u 10 -r 5 -t 30s
//! ```

use hopper::prelude::*;

/// What each user remembers: nothing, here.
#[derive(Default)]
struct Quickstart;

async fn hello_world(user: &mut User<Quickstart>) -> TaskResult {
    user.client.get("/").send().await;
    Ok(())
}

async fn view_products(user: &mut User<Quickstart>) -> TaskResult {
    user.client.get("/products").send().await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("QuickstartUser", Quickstart::default)
                .wait_time(between(1.0, 2.0))
                .task(task!(hello_world))
                .task(task!(view_products, 3)),
        )
        .main()
}
