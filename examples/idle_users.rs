//! The benchmark's idle user: one tiny request, then 10 s of waiting, again and again.
//!
//! `bench/run.py` (scenario `idle`) starts 1,000, 5,000 and 15,000 of these against nginx and
//! reads the generator's resident memory once every user has made its first request: the
//! slope between the sizes is the memory one mostly idle user costs (each holds a keep-alive
//! connection and a sleeping task). The Locust equivalent:
//!
//! ```python
//! class Idle(FastHttpUser):
//!     wait_time = constant(10)
//!
//!     @task
//!     def fast(self):
//!         self.client.get("/fast")
//! ```
//!
//! ```text
//! cargo run --release --example idle_users -- -H http://127.0.0.1:8080 --headless -u 5000 -r 5000 -t 60s
//! ```

use hopper::prelude::*;

/// No state: every user repeats the same request.
#[derive(Default)]
struct Idle;

async fn fast(user: &mut User<Idle>) -> TaskResult {
    user.client.get("/fast").send().await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("Idle", Idle::default)
                .wait_time(constant(10.0))
                .task(task!(fast)),
        )
        .main()
}
