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
//! kinds of workers share one test; both also send the master a custom `requests_seen`
//! figure with each report (see `count_requests_across_the_cluster`). The Locust equivalent:
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
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests this worker made since its last report to the master.
static SINCE_REPORT: AtomicU64 = AtomicU64::new(0);
/// On the master: requests the workers said they made, over the whole test.
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// Custom data from workers to the master, as Locust's `report_to_master` / `worker_report`
/// carry it, understood by Locust on either side (`tests/interop/locustfile.py` does the same):
/// each worker sends `requests_seen`, the requests its `request` listener saw since the last
/// report, and the master logs the running sum.
fn count_requests_across_the_cluster() {
    let events = hopper::events();
    events.request.add(|_| {
        SINCE_REPORT.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    events.report_to_master.add(|report| {
        report.insert(
            "requests_seen",
            json!(SINCE_REPORT.swap(0, Ordering::Relaxed)),
        );
        Ok(())
    });
    events.worker_report.add(|report| {
        let seen = report.data.get("requests_seen").and_then(|v| v.as_u64());
        if let Some(seen) = seen.filter(|n| *n > 0) {
            let total = REPORTED.fetch_add(seen, Ordering::Relaxed) + seen;
            tracing::info!("workers reported {total} requests");
        }
        Ok(())
    });
}

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
    count_requests_across_the_cluster();
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
