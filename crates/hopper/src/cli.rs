//! Hopper's command line: Locust 2.47's options, names and defaults.
//!
//! Every option keeps Locust's long name (so `locust.conf` files and `LOCUST_*` variables
//! work unchanged, see `config.rs`) and its short form. Options for features this build does
//! not have yet are still accepted by the parser so that the error can say so plainly
//! instead of "unknown option".

use clap::{ArgAction, Parser};
use hopper_core::timespan::parse_timespan;

/// Locust-compatible command line, shared by the `hopper` binary and every load test
/// program built with `hopper::Hopper`.
#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "hopper",
    about = "Hopper: Locust's load testing model, in Rust",
    disable_version_flag = true,
    args_override_self = true,
    after_help = "Examples:\n  hopper --demo --headless -u 100 -r 20 -t 20s\n  my-loadtest -H http://127.0.0.1:8080 --headless -u 50 -r 10 -t 1m WebUser\n\nEvery option can also come from locust.conf, ~/.locust.conf, pyproject.toml [tool.locust],\n--config FILE or a LOCUST_* environment variable, with Locust's precedence."
)]
pub struct Cli {
    // ---- Common options
    /// Accepted for compatibility: Hopper load tests are compiled into the program.
    #[arg(
        short = 'f',
        long = "locustfile",
        value_name = "FILE",
        help_heading = "Common options"
    )]
    pub locustfile: Option<String>,
    /// Read options from this config file (after ~/.locust.conf, ./locust.conf, pyproject.toml).
    #[arg(long = "config", value_name = "FILE", help_heading = "Common options")]
    pub config: Option<String>,
    /// Host to load test, as a base URL (http://10.21.32.33); overrides every class's host.
    #[arg(
        short = 'H',
        long = "host",
        value_name = "BASE URL",
        help_heading = "Common options"
    )]
    pub host: Option<String>,
    /// Peak number of concurrent users (headless default 1).
    #[arg(
        short = 'u',
        long = "users",
        value_name = "INT",
        help_heading = "Common options"
    )]
    pub users: Option<u32>,
    /// Rate to spawn users at, users per second (headless default 1).
    #[arg(short = 'r', long = "spawn-rate", value_name = "FLOAT", value_parser = parse_spawn_rate, help_heading = "Common options")]
    pub spawn_rate: Option<f64>,
    /// Stop after this time, e.g. 300s, 20m, 3h, 1h30m (default: run until Ctrl-C).
    #[arg(short = 't', long = "run-time", value_name = "TIME", value_parser = parse_time, help_heading = "Common options")]
    pub run_time: Option<u64>,
    /// List the available user classes and exit.
    #[arg(short = 'l', long = "list", help_heading = "Common options")]
    pub list: bool,
    /// Set user class attributes from JSON (Locust's --config-users).
    #[arg(long = "config-users", num_args = 0.., action = ArgAction::Set, value_name = "JSON", help_heading = "Common options")]
    pub config_users: Option<Vec<String>>,

    // ---- Web UI options
    /// Host to bind the web interface to.
    #[arg(long = "web-host", value_name = "IP", help_heading = "Web UI options")]
    pub web_host: Option<String>,
    /// Port for the web interface.
    #[arg(
        short = 'P',
        long = "web-port",
        value_name = "PORT",
        help_heading = "Web UI options"
    )]
    pub web_port: Option<u16>,
    /// Run without the web interface, start the test at once.
    #[arg(long = "headless", help_heading = "Web UI options")]
    pub headless: bool,
    /// Start the test at once without waiting for the web form.
    #[arg(long = "autostart", help_heading = "Web UI options")]
    pub autostart: bool,
    /// With --autostart: quit this many seconds after the run ends.
    #[arg(
        long = "autoquit",
        value_name = "SECONDS",
        allow_hyphen_values = true,
        help_heading = "Web UI options"
    )]
    pub autoquit: Option<i64>,
    /// Protect the web interface with a login page (needs --web-auth).
    #[arg(long = "web-login", help_heading = "Web UI options")]
    pub web_login: bool,
    /// Username and password for the web interface and API, USER:PASS or @FILE holding
    /// USER:PASS on its first line; turns on --web-login. Scripts send them as HTTP Basic auth.
    #[arg(
        long = "web-auth",
        value_name = "USER:PASS",
        help_heading = "Web UI options"
    )]
    pub web_auth: Option<String>,
    /// TLS certificate for HTTPS on the web interface.
    #[arg(
        long = "tls-cert",
        value_name = "FILE",
        help_heading = "Web UI options"
    )]
    pub tls_cert: Option<String>,
    /// TLS private key for HTTPS on the web interface.
    #[arg(long = "tls-key", value_name = "FILE", help_heading = "Web UI options")]
    pub tls_key: Option<String>,
    /// Let the web form choose user classes.
    #[arg(long = "class-picker", help_heading = "Web UI options")]
    pub class_picker: bool,
    /// Base path of the web interface, e.g. /hopper.
    #[arg(
        long = "web-base-path",
        value_name = "PATH",
        help_heading = "Web UI options"
    )]
    pub web_base_path: Option<String>,
    /// Undo a `headless` from a config file.
    #[arg(long = "headful", hide = true)]
    pub headful: bool,

    // ---- Master options
    /// Run as the master of a distributed test.
    #[arg(long = "master", help_heading = "Master options")]
    pub master: bool,
    /// Interface the master binds to.
    #[arg(
        long = "master-bind-host",
        value_name = "IP",
        help_heading = "Master options"
    )]
    pub master_bind_host: Option<String>,
    /// Port the master binds to.
    #[arg(
        long = "master-bind-port",
        value_name = "PORT",
        help_heading = "Master options"
    )]
    pub master_bind_port: Option<u16>,
    /// Workers the headless master waits for before starting.
    #[arg(
        long = "expect-workers",
        value_name = "INT",
        help_heading = "Master options"
    )]
    pub expect_workers: Option<u32>,
    /// How long the master waits for --expect-workers (0 = forever).
    #[arg(
        long = "expect-workers-max-wait",
        value_name = "SECONDS",
        help_heading = "Master options"
    )]
    pub expect_workers_max_wait: Option<u64>,
    /// Rebalance users when workers join or go missing.
    #[arg(long = "enable-rebalancing", help_heading = "Master options")]
    pub enable_rebalancing: bool,

    // ---- Worker options
    /// Run as a worker of a distributed test.
    #[arg(long = "worker", help_heading = "Worker options")]
    pub worker: bool,
    /// Number of worker processes to fork.
    #[arg(
        long = "processes",
        value_name = "INT",
        allow_hyphen_values = true,
        help_heading = "Worker options"
    )]
    pub processes: Option<i32>,
    /// Master host to connect to.
    #[arg(
        long = "master-host",
        value_name = "HOSTNAME",
        help_heading = "Worker options"
    )]
    pub master_host: Option<String>,
    /// Master port to connect to.
    #[arg(
        long = "master-port",
        value_name = "PORT",
        help_heading = "Worker options"
    )]
    pub master_port: Option<u16>,
    /// This worker's id instead of HOSTNAME_RANDOMHEX (Hopper only): the text before the
    /// first `_` is the machine the dispatcher spreads users over.
    #[arg(long = "worker-id", value_name = "ID", help_heading = "Worker options")]
    pub worker_id: Option<String>,

    // ---- Tag options
    /// Only run tasks with at least one of these tags.
    #[arg(short = 'T', long = "tags", num_args = 0.., action = ArgAction::Set, value_name = "TAG", help_heading = "Tag options")]
    pub tags: Option<Vec<String>>,
    /// Never run tasks with any of these tags.
    #[arg(short = 'E', long = "exclude-tags", num_args = 0.., action = ArgAction::Set, value_name = "TAG", help_heading = "Tag options")]
    pub exclude_tags: Option<Vec<String>>,

    // ---- Request statistics options
    /// Write statistics to CSV files with this prefix.
    #[arg(
        long = "csv",
        value_name = "PREFIX",
        help_heading = "Request statistics options"
    )]
    pub csv: Option<String>,
    /// Also write the full statistics history (needs --csv).
    #[arg(
        long = "csv-full-history",
        requires = "csv",
        help_heading = "Request statistics options"
    )]
    pub csv_full_history: bool,
    /// Print the statistics table in the console also with the web UI.
    #[arg(long = "print-stats", help_heading = "Request statistics options")]
    pub print_stats: bool,
    /// Print only the summary at the end, not the table every 2 s.
    #[arg(long = "only-summary", help_heading = "Request statistics options")]
    pub only_summary: bool,
    /// Reset statistics once spawning has finished.
    #[arg(long = "reset-stats", help_heading = "Request statistics options")]
    pub reset_stats: bool,
    /// Write an HTML report to this file ({u}, {r}, {t} are replaced).
    #[arg(
        long = "html",
        value_name = "FILE",
        help_heading = "Request statistics options"
    )]
    pub html: Option<String>,
    /// Print the final statistics as JSON on stdout.
    #[arg(long = "json", help_heading = "Request statistics options")]
    pub json: bool,
    /// Write the final statistics as JSON to this file (.json is appended).
    #[arg(
        long = "json-file",
        value_name = "FILE",
        help_heading = "Request statistics options"
    )]
    pub json_file: Option<String>,

    // ---- Logging options
    /// Leave logging set up by the program itself.
    #[arg(long = "skip-log-setup", help_heading = "Logging options")]
    pub skip_log_setup: bool,
    /// DEBUG, INFO, WARNING, ERROR or CRITICAL.
    #[arg(short = 'L', long = "loglevel", value_name = "LEVEL", default_value = "INFO", value_parser = parse_loglevel, help_heading = "Logging options")]
    pub loglevel: String,
    /// Write the log to this file instead of stderr.
    #[arg(
        long = "logfile",
        value_name = "FILE",
        help_heading = "Logging options"
    )]
    pub logfile: Option<String>,

    // ---- Other options
    /// Print the task ratio of each user class and exit.
    #[arg(long = "show-task-ratio", help_heading = "Other options")]
    pub show_task_ratio: bool,
    /// Print the task ratio as JSON and exit.
    #[arg(long = "show-task-ratio-json", help_heading = "Other options")]
    pub show_task_ratio_json: bool,
    /// Show the version and exit.
    #[arg(short = 'V', long = "version", action = ArgAction::SetTrue, help_heading = "Other options")]
    pub version: bool,
    /// Exit code when requests failed or tasks raised errors.
    #[arg(
        long = "exit-code-on-error",
        value_name = "INT",
        default_value_t = 1,
        allow_hyphen_values = true,
        help_heading = "Other options"
    )]
    pub exit_code_on_error: i32,
    /// How long busy users may finish their task when stopping (e.g. 10s).
    #[arg(short = 's', long = "stop-timeout", value_name = "TIME", default_value = "0", value_parser = parse_time, help_heading = "Other options")]
    pub stop_timeout: u64,
    /// Give every user class and task the same weight.
    #[arg(long = "equal-weights", help_heading = "Other options")]
    pub equal_weights: bool,
    /// A name for this test run, shown in reports.
    #[arg(long = "profile", value_name = "NAME", help_heading = "Other options")]
    pub profile: Option<String>,

    // ---- Hopper options
    /// Start the built-in demo target on 127.0.0.1 and test it (the `hopper` binary only).
    #[arg(long = "demo", help_heading = "Hopper options")]
    pub demo: bool,

    /// User classes to run (default: all).
    #[arg(value_name = "UserClass")]
    pub user_classes: Vec<String>,
}

fn parse_time(s: &str) -> Result<u64, String> {
    parse_timespan(s).map_err(|e| e.to_string())
}

fn parse_spawn_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(_) => Err("the spawn rate must be a finite number greater than 0".into()),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

fn parse_loglevel(s: &str) -> Result<String, String> {
    let up = s.to_ascii_uppercase();
    match up.as_str() {
        "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL" => Ok(up),
        _ => Err("expected DEBUG, INFO, WARNING, ERROR or CRITICAL".into()),
    }
}

impl Cli {
    /// Options that belong to features this build does not have yet, with a plain reason.
    pub fn unavailable(&self) -> Vec<&'static str> {
        let pairs: [(bool, &'static str); 4] = [
            (self.processes.is_some(), "--processes"),
            (self.class_picker, "--class-picker"),
            (self.config_users.is_some(), "--config-users"),
            (self.equal_weights, "--equal-weights"),
        ];
        let mut out = Vec::new();
        out.extend(pairs.iter().filter(|(on, _)| *on).map(|(_, name)| *name));
        out
    }
}
