//! Two user classes with weights 3:1; the admin's tasks are tagged, so `--tags` and
//! `--exclude-tags` choose what runs.
//!
//! The Locust equivalent:
//!
//! ```python
//! class Reader(HttpUser):
//!     weight = 3
//!     wait_time = constant(1)
//!
//!     @task
//!     def browse(self):
//!         self.client.get("/products")
//!
//! class Admin(HttpUser):
//!     weight = 1
//!     wait_time = constant(1)
//!
//!     @tag("reports")
//!     @task
//!     def report(self):
//!         self.client.get("/status/200", name="/report")
//!
//!     @tag("maintenance", "slow")
//!     @task
//!     def reindex(self):
//!         self.client.get("/slow")
//! ```
//!
//! ```text
//! # only the reports task of Admin (Reader has no tagged task, so it does nothing):
//! cargo run --release --example tagged -- -H http://127.0.0.1:8080 --headless -u 8 -r 8 -t 20s --tags reports
//! # everything but slow tasks, Admin users only (class names before -E, which takes a list):
//! cargo run --release --example tagged -- -H http://127.0.0.1:8080 --headless -u 2 -t 20s Admin -E slow
//! ```

use hopper::prelude::*;

/// Readers keep no state.
#[derive(Default)]
struct Reader;

/// Admins keep no state.
#[derive(Default)]
struct Admin;

async fn browse(user: &mut User<Reader>) -> TaskResult {
    user.client.get("/products").send().await;
    Ok(())
}

async fn report(user: &mut User<Admin>) -> TaskResult {
    user.client.get("/status/200").name("/report").send().await;
    Ok(())
}

async fn reindex(user: &mut User<Admin>) -> TaskResult {
    user.client.get("/slow").send().await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("Reader", Reader::default)
                .weight(3.0)
                .wait_time(constant(1.0))
                .task(task!(browse)),
        )
        .user(
            UserClass::new("Admin", Admin::default)
                .weight(1.0)
                .wait_time(constant(1.0))
                .task(task!(report).tag("reports"))
                .task(task!(reindex).tag("maintenance").tag("slow")),
        )
        .main()
}
