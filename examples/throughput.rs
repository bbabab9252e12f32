//! The benchmark user: GET one tiny resource as fast as possible, no wait.
//!
//! This is what `bench/` runs against nginx (and wrk and the others run the same request),
//! to measure requests per CPU-second of the load generator. The Locust equivalent:
//!
//! ```python
//! class Throughput(FastHttpUser):
//!     @task
//!     def fast(self):
//!         self.client.get("/fast")
//! ```
//!
//! ```text
//! cargo run --release --example throughput -- -H http://127.0.0.1:8080 --headless -u 50 -r 50 -t 20s --only-summary
//! ```

use hopper::prelude::*;

/// No state: every user repeats the same request.
#[derive(Default)]
struct Throughput;

async fn fast(user: &mut User<Throughput>) -> TaskResult {
    user.client.get("/fast").send().await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(UserClass::new("Throughput", Throughput::default).task(task!(fast)))
        .main()
}
