//! Three kinds of users for a distributed test: run one master and any number of workers
//! (Hopper's or Locust's: the protocol is Locust's own).
//!
//! ```text
//! cargo run --bin hopper-demo-target &                       # a target on 127.0.0.1:8080
//! cargo run --example distributed -- --master -H http://127.0.0.1:8080 --headless -u 10 -r 5 -t 30s --expect-workers 2
//! cargo run --example distributed -- --worker --master-host 127.0.0.1     # twice, or on other machines
//! locust -f tests/interop/locustfile.py --worker --master-host 127.0.0.1  # Python workers join too
//! ```
//!
//! The classes match `tests/interop/locustfile.py` by name, which is what lets the two
//! kinds of workers share one test. The Locust equivalent:
//!
//! ```python
//! class Api(FastHttpUser):
//!     weight = 3
//!     wait_time = constant(0.2)
//!     @task
//!     def index(self): self.client.get("/")
//!
//! class Browser(FastHttpUser):
//!     wait_time = constant(0.2)
//!     @task
//!     def fast(self): self.client.get("/fast")
//!
//! class Feed(FastHttpUser):
//!     fixed_count = 2
//!     wait_time = constant(0.2)
//!     @task
//!     def products(self): self.client.get("/products")
//! ```

use hopper::prelude::*;

/// No state: each user repeats one request.
#[derive(Default)]
struct Visitor;

async fn index(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/").send().await;
    Ok(())
}

async fn fast(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/fast").send().await;
    Ok(())
}

async fn products(user: &mut User<Visitor>) -> TaskResult {
    user.client.get("/products").send().await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("Api", Visitor::default)
                .weight(3.0)
                .wait_time(constant(0.2))
                .task(task!(index)),
        )
        .user(
            UserClass::new("Browser", Visitor::default)
                .wait_time(constant(0.2))
                .task(task!(fast)),
        )
        .user(
            UserClass::new("Feed", Visitor::default)
                .fixed_count(2)
                .wait_time(constant(0.2))
                .task(task!(products)),
        )
        .main()
}
