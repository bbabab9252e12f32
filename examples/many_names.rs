//! Many distinct request names: the users walk `/fast?page=N` for N in 0..600 together (one
//! shared counter), every page recorded under its own name, to see how the web UI and the
//! outputs cope with a wide statistics table (Locust's UI shows at most 500 rows).
//!
//! Every lap of the counter also requests `/fast` under a few names full of markup, quotes and
//! ampersands (`MARKUP_NAMES`). A request name is text chosen by whoever writes the test, so
//! the UI, the report and the CSV files must show it literally and never run it as HTML; the
//! browser tests (`tests/browser/ui.test.mjs`) open this example's UI to prove that with real
//! data. They all start with `/escape/`, which sorts before `/fast`, so they are always among
//! the 500 rows the UI is sent.
//!
//! The Locust equivalent:
//!
//! ```python
//! MARKUP_NAMES = ['/escape/<img src=x onerror=window.__xss=1>', ...]
//!
//! class ManyNames(FastHttpUser):
//!     wait_time = constant(0.05)
//!     @task
//!     def page(self):
//!         n = next(PAGES) % (600 + len(MARKUP_NAMES))  # PAGES = itertools.count()
//!         if n < 600:
//!             self.client.get(f"/fast?page={n}")
//!         else:
//!             self.client.get("/fast", name=MARKUP_NAMES[n - 600])
//! ```
//!
//! ```text
//! cargo run --bin hopper-demo-target &
//! cargo run --example many_names -- -H http://127.0.0.1:8080 -u 10 -r 10
//! ```

use hopper::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many distinct `/fast?page=N` names the users cycle through: more than the UI's 500 rows.
const PAGES: usize = 600;

/// Names that would be markup if a page inserted them as HTML: an image whose error handler
/// sets `window.__xss`, a script, a stray `</td>` between quotes and an ampersand, and text that
/// is already an HTML entity (it must stay `&amp;`, not turn into `&`).
const MARKUP_NAMES: [&str; 4] = [
    "/escape/<img src=x onerror=window.__xss=1>",
    "/escape/<script>window.__xss=2</script>",
    r#"/escape/"double" & 'single' </td>"#,
    "/escape/&amp; &lt;b&gt;",
];

/// The next step of the lap any user takes.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// No state of its own: the page comes from the shared counter.
#[derive(Default)]
struct ManyNames;

async fn page(user: &mut User<ManyNames>) -> TaskResult {
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % (PAGES + MARKUP_NAMES.len());
    match n.checked_sub(PAGES) {
        None => user.client.get(format!("/fast?page={n}")).send().await,
        Some(i) => user.client.get("/fast").name(MARKUP_NAMES[i]).send().await,
    };
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
