//! Hopper: Locust's load-testing model in Rust.
//!
//! Write users and tasks as code, then hand them to [`Hopper`], which gives the program
//! Locust's whole command line (`-u`, `-r`, `-t`, `--headless`, `-T`, `locust.conf`,
//! `LOCUST_*` variables, exit codes) and runs the test:
//!
//! ```no_run
//! use hopper::prelude::*;
//!
//! #[derive(Default)]
//! struct Visitor;
//!
//! async fn index(user: &mut User<Visitor>) -> TaskResult {
//!     user.client.get("/").send().await;
//!     Ok(())
//! }
//!
//! fn main() {
//!     Hopper::new()
//!         .user(
//!             UserClass::new("Visitor", Visitor::default)
//!                 .wait_time(between(1.0, 2.0))
//!                 .task(task!(index)),
//!         )
//!         .main()
//! }
//! ```

pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_target;
mod logging;
pub mod request;
mod run;
mod stats_loop;
pub use hopper_core::task_ratio;

use clap::{CommandFactory, FromArgMatches};
use hopper_core::AnyUserClass;
use std::ffi::OsString;
use std::sync::Arc;

/// Events and hooks (Locust's `environment.events`): register listeners on [`events()`].
pub use hopper_core::events;
pub use hopper_core::events::events;
/// Test data from CSV files: [`Feeder`] hands rows to users in queue, circular, random or
/// shuffle order (a queue is shared by the whole cluster under a Hopper master).
pub use hopper_core::feeder::{self, Exhausted, FeedMode, Feeder, Row};
/// Ending the whole test from a task (Locust's `environment.runner.quit()`).
pub use hopper_core::population::quit_test;
/// Rendezvous points: hold users until enough are there, then release them together.
pub use hopper_core::rendezvous::{self, Rendezvous};
pub use hopper_core::{
    between, constant, constant_pacing, constant_throughput, fail, hook, interrupt, poisson,
    stop_user, task, Task, TaskError, TaskResult, TaskSet, User, UserClass, WaitTime,
};
/// WebSocket users: [`ws::WebSocket`] connects, exchanges and closes, recording each exchange.
pub use hopper_http::ws;
pub use hopper_http::{HttpClient, Regex, Response};
/// The statistics engine (Locust-compatible entries, HDR percentiles, console tables).
pub use hopper_stats as stats;

/// Everything a load test file needs: `use hopper::prelude::*;`.
pub mod prelude {
    pub use crate::request::{measure, measure_with};
    pub use crate::Hopper;
    pub use hopper_core::feeder::{Exhausted, FeedMode, Feeder, Row};
    pub use hopper_core::population::quit_test;
    pub use hopper_core::rendezvous::Rendezvous;
    pub use hopper_core::{
        between, constant, constant_pacing, constant_throughput, fail, hook, interrupt, poisson,
        stop_user, task, Task, TaskError, TaskResult, TaskSet, User, UserClass, WaitTime,
    };
    pub use hopper_http::Response;
    pub use serde_json::json;
}

/// A load test program: its user classes, and the command line that runs them.
#[derive(Default)]
pub struct Hopper {
    classes: Vec<Arc<dyn AnyUserClass>>,
    feeders: Vec<Feeder>,
    demo_target: bool,
}

impl Hopper {
    /// A program with no user classes yet.
    pub fn new() -> Hopper {
        Hopper::default()
    }

    /// Adds a user class.
    pub fn user<S: Send + 'static>(mut self, class: UserClass<S>) -> Hopper {
        self.classes.push(Arc::new(class));
        self
    }

    /// Registers a test data feeder: its file is read and checked when the test starts, on
    /// every node (master and workers too), before any user starts; a broken file stops the
    /// program with exit code 1 and a message naming the file and line. A feeder must be
    /// registered to hand out rows (an unregistered one fails the task that asks).
    pub fn feeder(mut self, feeder: &Feeder) -> Hopper {
        self.feeders.push(feeder.clone());
        self
    }

    /// Enables `--demo`: start the built-in demo target on 127.0.0.1 and use it as the host.
    /// The `hopper` binary does this; load test programs normally target their own system.
    pub fn with_demo_target(mut self) -> Hopper {
        self.demo_target = true;
        self
    }

    /// Parses the process's command line, config files and environment, runs, and exits
    /// with Locust's exit code.
    pub fn main(self) -> ! {
        let code = self.run(std::env::args_os().collect());
        std::process::exit(code)
    }

    /// Runs with these arguments (`args[0]` is the program name) and returns the exit code.
    pub fn run(self, args: Vec<OsString>) -> i32 {
        let mut command = cli::Cli::command();
        if !self.demo_target {
            command = command.mut_arg("demo", |a| a.hide(true));
        }
        let env = |k: &str| std::env::var(k).ok();
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let layered = match config::layered_args(&command, &args, &env, home.as_deref(), &cwd) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("hopper: {e}");
                return 2;
            }
        };
        let matches = match command.try_get_matches_from(layered) {
            Ok(m) => m,
            Err(e) => {
                // Help and version print to stdout and exit 0; usage errors exit 2.
                let _ = e.print();
                return e.exit_code();
            }
        };
        let cli = match cli::Cli::from_arg_matches(&matches) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return 2;
            }
        };
        self.run_cli(cli)
    }

    fn run_cli(self, cli: cli::Cli) -> i32 {
        if cli.version {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            println!("hopper {} from {exe} (Rust)", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        if cli.list {
            println!("Available Users:");
            for c in &self.classes {
                println!("    {}", c.name());
            }
            return 0;
        }
        if !cli.skip_log_setup {
            if let Err(e) = logging::init(&cli.loglevel, cli.logfile.as_deref()) {
                eprintln!("hopper: {e}");
                return 1;
            }
        }
        if cli.demo && !self.demo_target {
            eprintln!("hopper: --demo is only available in the hopper binary; this program tests its own host (use -H)");
            return 1;
        }
        if cli.locustfile.is_some() {
            tracing::info!(target: "hopper.main", "-f/--locustfile is ignored: Hopper load tests are compiled into the program");
        }
        let unavailable = cli.unavailable();
        if !unavailable.is_empty() {
            eprintln!(
                "hopper: not available in this version yet: {}.\nHopper {} runs tests in one process, headless or with the web UI; remove these options.",
                unavailable.join(", "),
                env!("CARGO_PKG_VERSION")
            );
            return 1;
        }
        let classes = match run::select_classes(&self.classes, &cli.user_classes) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(target: "hopper.main", "{}", e.message);
                eprintln!("hopper: {}", e.message);
                return e.code;
            }
        };
        if cli.show_task_ratio {
            print!("{}", task_ratio::ratio_text(&classes, cli.users));
            return 0;
        }
        if cli.show_task_ratio_json {
            println!("{}", task_ratio::ratio_json_text(&classes, cli.users));
            return 0;
        }
        run::run(&cli, classes, &self.feeders)
    }
}
