//! Many distinct request names: the users walk `/fast?page=N` for N in 0..600 together (one
//! shared counter), every page recorded under its own name, to see how the web UI and the outputs cope with a wide
//! statistics table (Locust's UI shows at most 500 rows). The Locust equivalent:
//!
//! ```python
//! class ManyNames(FastHttpUser):
//!     wait_time = constant(0.05)
//!     @task
//!     def page(self):
//!         self.client.get(f"/fast?page={next(PAGES) % 600}")  # PAGES = itertools.count()
//! ```
//!
//! ```text
//! cargo run --bin hopper-demo-target &
//! cargo run --example many_names -- -H http://127.0.0.1:8080 -u 10 -r 10
//! ```

use hopper::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many distinct names the users cycle through: more than the UI's 500 rows.
const PAGES: u32 = 600;

/// The next page any user requests.
static NEXT_PAGE: AtomicU32 = AtomicU32::new(0);

/// No state of its own: the page comes from the shared counter.
#[derive(Default)]
struct ManyNames;

async fn page(user: &mut User<ManyNames>) -> TaskResult {
    let n = NEXT_PAGE.fetch_add(1, Ordering::Relaxed) % PAGES;
    user.client.get(format!("/fast?page={n}")).send().await;
    Ok(())
}

fn main() {
    Hopper::new()
        .user(
            UserClass::new("ManyNames", ManyNames::default)
                .wait_time(constant(0.05))
                .task(task!(page)),
        )
        .main()
}
