//! A run, start to finish, as Locust's `main()` does it: choose the classes, start the web UI
//! (unless `--headless`), ramp the users (headless or `--autostart`), print the table every
//! 2 s, stop on `--run-time`, Ctrl-C or SIGTERM, write the CSV, HTML and JSON outputs, print
//! the summary and return Locust's exit code.

use crate::cli::Cli;
use crate::demo_target::DemoTarget;
use crate::stats_loop::StatsLoop;
use hopper_cluster::{MasterOptions, MasterRunner, WorkerExit, WorkerOptions};
use hopper_core::events::{environment, events, Environment, Init, Quitting, Role, Totals};
use hopper_core::feeder::Feeder;
use hopper_core::population;
use hopper_core::{
    spawn_session, AnyUserClass, LocalRunner, RunnerOptions, SessionHandle, SwarmRequest,
};
use hopper_stats::console;
use hopper_stats::csv_out::CsvWriter;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// How often the live table is printed (Locust's CONSOLE_STATS_INTERVAL_SEC).
const CONSOLE_STATS_INTERVAL: Duration = Duration::from_secs(2);

/// A setup problem: message for the user and the exit code (Locust uses 1 for these).
pub struct SetupError {
    pub message: String,
    pub code: i32,
}

impl SetupError {
    fn new(message: impl Into<String>) -> SetupError {
        SetupError {
            message: message.into(),
            code: 1,
        }
    }
}

/// Applies Locust's class selection rules: positional names restrict the classes (unknown
/// ones are an error), classes with neither weight nor fixed count are dropped, and names
/// must be unique because they identify classes on the wire.
pub fn select_classes(
    all: &[Arc<dyn AnyUserClass>],
    wanted: &[String],
) -> Result<Vec<Arc<dyn AnyUserClass>>, SetupError> {
    let mut seen = BTreeSet::new();
    for c in all {
        if !seen.insert(c.name()) {
            return Err(SetupError::new(format!(
                "Duplicate user class names: {} is defined twice",
                c.name()
            )));
        }
    }
    let chosen: Vec<Arc<dyn AnyUserClass>> = if wanted.is_empty() {
        all.to_vec()
    } else {
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|w| !all.iter().any(|c| c.name() == w.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(SetupError::new(format!(
                "Unknown User(s): {}\nAvailable: {}",
                missing.join(", "),
                all.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        all.iter()
            .filter(|c| wanted.iter().any(|w| w == c.name()))
            .cloned()
            .collect()
    };
    let chosen: Vec<_> = chosen
        .into_iter()
        .filter(|c| c.weight() > 0.0 || c.fixed_count() > 0)
        .collect();
    if chosen.is_empty() {
        return Err(SetupError::new("No User class found!"));
    }
    Ok(chosen)
}

/// Width of the Name column, as Locust computes it before each table: the terminal width of
/// stdout minus 80, clamped to 0..=80, and 80 when stdout is not a terminal.
fn name_width() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: `winsize` is plain data; TIOCGWINSZ fills it or fails (stdout not a
        // terminal), and the struct is ours for the duration of the call.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 {
            return usize::from(ws.ws_col).saturating_sub(80).min(80);
        }
    }
    80
}

/// Runs a test, headless or with the web UI, and returns the process exit code.
pub fn run(cli: &Cli, classes: Vec<Arc<dyn AnyUserClass>>, feeders: &[Feeder]) -> i32 {
    // Test data is read and checked on every node before anything starts: a broken file is
    // a setup error naming the file and line, as Locust's exit code 1 for a bad locustfile.
    if let Err(e) = hopper_core::feeder::register(feeders) {
        tracing::error!(target: "hopper.main", "{e}");
        eprintln!("hopper: {e}");
        return 1;
    }
    for f in feeders {
        tracing::info!(target: "hopper.main", "{}", f.describe());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Each worker thread flushes its statistics shard when it goes idle, so the merged
        // view is complete without the hot path ever taking a lock.
        .on_thread_park(hopper_stats::flush_thread)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hopper: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(run_test(cli, classes));
    // Users and connections are gone; drop the runtime without waiting on stragglers.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

/// Option combinations Locust refuses, checked before anything starts.
fn check_options(cli: &Cli) -> Result<(), SetupError> {
    if cli.autoquit.is_some_and(|q| q != -1) && !cli.autostart {
        return Err(SetupError::new(
            "--autoquit is only meaningful in combination with --autostart",
        ));
    }
    if cli.master && cli.worker {
        return Err(SetupError::new(
            "The --master argument cannot be combined with --worker",
        ));
    }
    if cli.master && cli.expect_workers == Some(0) {
        return Err(SetupError::new(
            "Invalid --expect-workers argument (0), must be a positive number",
        ));
    }
    if cli.tls_cert.is_some() != cli.tls_key.is_some() {
        return Err(SetupError::new(
            "--tls-cert and --tls-key must be given together",
        ));
    }
    if cli.web_login && cli.web_auth.is_none() && !cli.headless {
        return Err(SetupError::new(
            "--web-login needs credentials: add --web-auth USER:PASS (or --web-auth @FILE)",
        ));
    }
    Ok(())
}

/// What the web server needs, from the command line.
fn web_options(cli: &Cli) -> Result<hopper_web::WebOptions, SetupError> {
    let auth = match &cli.web_auth {
        Some(spec) => Some(hopper_web::Credentials::parse(spec).map_err(SetupError::new)?),
        None => None,
    };
    Ok(hopper_web::WebOptions {
        host: cli.web_host.clone().unwrap_or_default(),
        port: cli.web_port.unwrap_or(8089),
        base_path: cli.web_base_path.clone().unwrap_or_default(),
        tls: cli
            .tls_cert
            .as_ref()
            .zip(cli.tls_key.as_ref())
            .map(|(c, k)| (c.into(), k.into())),
        auth,
    })
}

/// The program's name as the UI and report show it in Locust's "locustfile" place.
fn program_name(cli: &Cli) -> String {
    if let Some(f) = &cli.locustfile {
        return f.clone();
    }
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "hopper".into())
}

async fn run_test(cli: &Cli, classes: Vec<Arc<dyn AnyUserClass>>) -> i32 {
    if let Err(e) = check_options(cli) {
        eprintln!("hopper: {}", e.message);
        return e.code;
    }
    // Listen for Ctrl-C and SIGTERM from the start, so no signal is missed while starting.
    let mut signals = Signals::install();
    let headless = cli.headless && !cli.headful;
    let mut host = cli.host.clone().filter(|h| !h.is_empty());
    let demo = if cli.demo {
        match DemoTarget::start(([127, 0, 0, 1], 0).into()).await {
            Ok(t) => {
                tracing::info!(target: "hopper.main", "Demo target listening at {}", t.base_url());
                if host.is_none() {
                    host = Some(t.base_url());
                }
                Some(t)
            }
            Err(e) => {
                eprintln!("hopper: cannot start the demo target on 127.0.0.1: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    // A class host only matters when -H does not override it.
    let class_hosts = classes.iter().filter(|_| host.is_none()).filter_map(|c| {
        Some((
            format!("the host of user class {}", c.name()),
            c.host()?.to_string(),
        ))
    });
    let hosts = host
        .iter()
        .map(|h| ("-H/--host".to_string(), h.clone()))
        .chain(class_hosts);
    // A host of another protocol (tcp://, redis://) is for custom-protocol users to read.
    for (what, h) in hosts.filter(|(_, h)| !hopper_http::is_non_http_host(h)) {
        if let Err(e) = hopper_http::BaseUrl::parse(&h) {
            eprintln!("hopper: {what} is not a usable base URL: {e}");
            return 1;
        }
    }
    if host.is_none() && headless {
        for c in classes.iter().filter(|c| c.host().is_none()) {
            tracing::warn!(
                target: "hopper.main",
                "User class {} has no host and none was given with -H/--host: relative URLs will fail",
                c.name()
            );
        }
    }
    let csv = match &cli.csv {
        Some(prefix) => match CsvWriter::create(prefix, cli.csv_full_history) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("hopper: {e}");
                return 1;
            }
        },
        None => None,
    };
    let info = hopper_web::RunInfo {
        locustfile: program_name(cli),
        num_users: cli.users,
        spawn_rate: cli.spawn_rate,
        run_time: cli.run_time.filter(|t| *t > 0),
        profile: cli.profile.clone(),
        full_history_csv: csv
            .as_ref()
            .filter(|_| cli.csv_full_history)
            .map(|w| w.history_file_path().to_path_buf()),
    };
    tracing::info!(target: "hopper.main", "Starting Hopper {}", env!("CARGO_PKG_VERSION"));
    let runner_options = RunnerOptions {
        host: host.clone(),
        stop_timeout: Duration::from_secs(cli.stop_timeout),
        tags: cli.tags.as_ref().map(|t| t.iter().cloned().collect()),
        exclude_tags: cli
            .exclude_tags
            .as_ref()
            .map(|t| t.iter().cloned().collect()),
        reset_stats: cli.reset_stats,
    };
    if cli.worker {
        return run_worker(cli, classes, runner_options, &mut signals).await;
    }
    let (session, session_task, cluster) = if cli.master {
        let options = MasterOptions {
            bind_host: cli.master_bind_host.clone().unwrap_or_else(|| "*".into()),
            bind_port: cli.master_bind_port.unwrap_or(5557),
            stop_timeout: Duration::from_secs(cli.stop_timeout),
            reset_stats: cli.reset_stats,
            tags: cli.tags.clone(),
            exclude_tags: cli.exclude_tags.clone(),
            quit_when_last_worker_quits: headless,
        };
        let master = match MasterRunner::bind(classes, host.clone(), options).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("hopper: {e}");
                return 1;
            }
        };
        tracing::info!(target: "hopper.main", "Master listening for workers on port {}", master.port());
        let view = master.view();
        let slot = master.session_slot();
        let (session, task) = spawn_session(master, host.clone());
        slot.set(session.clone());
        (session, task, Some(view))
    } else {
        let (session, task) =
            spawn_session(LocalRunner::new(classes, runner_options), host.clone());
        (session, task, None)
    };
    let role = if cli.master {
        Role::Master
    } else {
        Role::Local
    };
    if !fire_init(role, host.as_deref(), !headless) {
        let _ = session.quit().await;
        return 1;
    }
    let live = Arc::new(hopper_web::LiveFigures::default());
    let stats_loop = StatsLoop::start(session.subscribe(), live.clone(), csv);
    let web = if headless {
        None
    } else {
        let options = match web_options(cli) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("hopper: {}", e.message);
                return e.code;
            }
        };
        let cluster_info = cluster.clone().map(|view| {
            let logs_view = view.clone();
            hopper_web::ClusterInfo {
                workers: Arc::new(move || view.workers()),
                worker_logs: Arc::new(move || logs_view.worker_logs()),
            }
        });
        match hopper_web::start(
            options,
            session.clone(),
            live.clone(),
            crate::logging::recent(),
            info.clone(),
            cluster_info,
        )
        .await
        {
            Ok(server) => {
                tracing::info!(target: "hopper.main", "Starting web interface at {}", server.url);
                Some(server)
            }
            Err(e) => {
                tracing::error!(target: "hopper.main", "{e}");
                eprintln!("hopper: {e}");
                return 1;
            }
        }
    };
    let print_stats = !cli.only_summary && (cli.print_stats || headless);
    let printer = print_stats.then(|| tokio::spawn(print_stats_forever()));
    let autostart = headless || cli.autostart;
    // Locust reads `-t 0` as "no limit" (its check is `if options.run_time:`).
    let run_time = cli.run_time.filter(|t| *t > 0).map(Duration::from_secs);
    if let (Some(view), true) = (&cluster, autostart) {
        // Locust's default is one worker: a headless master never starts with none.
        let expected = cli.expect_workers.unwrap_or(1);
        {
            let wait = cli
                .expect_workers_max_wait
                .filter(|s| *s > 0)
                .map(Duration::from_secs);
            tokio::select! {
                ok = wait_for_workers(view, expected as usize, wait) => {
                    if !ok {
                        tracing::error!(target: "hopper.main", "Gave up waiting for workers to connect");
                        let _ = session.quit().await;
                        return 1;
                    }
                }
                s = signals.next() => {
                    tracing::info!(target: "hopper.main", "{s} while waiting for workers, shutting down");
                    let _ = session.quit().await;
                    return 1;
                }
            }
        }
    }
    if autostart {
        // The command line's run time is this function's timer, not the session's: the web
        // UI's /swarm and /stop cancel only a run time given through the UI, as in Locust.
        let started = session
            .swarm(SwarmRequest {
                user_count: cli.users.unwrap_or(1),
                spawn_rate: cli.spawn_rate.unwrap_or(1.0),
                host: None,
                run_time: None,
            })
            .await;
        if started.is_ok() {
            match run_time {
                Some(t) => {
                    tracing::info!(target: "hopper.main", "Run time limit set to {} seconds", t.as_secs())
                }
                None => {
                    tracing::info!(target: "hopper.main", "No run time limit set, use CTRL+C to interrupt")
                }
            }
        }
    }
    let ended = ends_by_itself(
        &session,
        autostart.then_some(run_time).flatten(),
        headless,
        cli.autoquit,
    );
    let reason = tokio::select! {
        r = ended => r.to_string(),
        s = signals.next() => s.to_string(),
        r = population::quit_requested() => r,
        _ = session_lost(&session) => "The test session ended unexpectedly".to_string(),
    };
    tracing::info!(target: "hopper.main", "{reason}, shutting down");
    tokio::select! {
        _ = session.quit() => {}
        s = signals.next() => {
            tracing::warn!(target: "hopper.main", "{} while stopping: not waiting for users to finish", s.name());
        }
    }
    if let Some(p) = printer {
        // Wait for the abort to land so no live table can follow the summary.
        p.abort();
        let _ = p.await;
    }
    let _ = tokio::task::spawn_blocking(move || stats_loop.finish()).await;
    if let Some(pattern) = &cli.html {
        write_html_report(cli, pattern, &session, &info, live.precise_current());
    }
    if let Some(server) = web {
        server.shutdown();
    }
    if let Some(t) = demo {
        t.shutdown().await;
    }
    // A session that died of a panic is an unhandled error (exit code 2), as in Locust.
    match tokio::time::timeout(Duration::from_secs(1), session_task).await {
        Ok(Err(e)) if e.is_panic() => {
            tracing::error!(target: "hopper.main", "The test session failed: {e}");
            hopper_core::health::note_unhandled();
        }
        _ => {}
    }
    finish(cli).await
}

/// Fires `init` once the runner exists and before the web UI serves; false when a listener
/// failed (Locust exits 1 then).
fn fire_init(role: Role, host: Option<&str>, web_ui: bool) -> bool {
    hopper_core::events::set_role(role);
    let init = Init {
        env: Environment {
            role,
            host: host.map(str::to_string),
        },
        web_ui,
    };
    if events().init.fire(&init) {
        return true;
    }
    tracing::error!(target: "hopper.main", "An init event listener failed; not starting the test");
    eprintln!("hopper: an init event listener failed; not starting the test");
    false
}

/// Waits until `expected` workers are ready (Locust's `--expect-workers`), logging progress
/// after 5 s; false if `max_wait` passed first.
async fn wait_for_workers(
    view: &hopper_cluster::MasterView,
    expected: usize,
    max_wait: Option<Duration>,
) -> bool {
    let started = tokio::time::Instant::now();
    loop {
        let ready = view.ready_count();
        if ready >= expected {
            return true;
        }
        if max_wait.is_some_and(|w| started.elapsed() > w) {
            return false;
        }
        if started.elapsed() > Duration::from_secs(5) {
            tracing::info!(target: "hopper.main", "Waiting for workers to be ready, {ready} of {expected} connected");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `--worker`: runs the users a master hands out until it says quit. Workers print no
/// statistics (their numbers go to the master) and ignore `-t`.
async fn run_worker(
    cli: &Cli,
    classes: Vec<Arc<dyn AnyUserClass>>,
    options: RunnerOptions,
    signals: &mut Signals,
) -> i32 {
    if cli.run_time.is_some() {
        tracing::debug!(target: "hopper.main", "--run-time specified for a worker node will be ignored.");
    }
    let runner = LocalRunner::new(classes, options);
    let worker_options = WorkerOptions {
        master_host: cli
            .master_host
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into()),
        master_port: cli.master_port.unwrap_or(5557),
        identity: cli.worker_id.clone(),
    };
    let recent = crate::logging::recent();
    let logs: hopper_cluster::worker::LogSource = Arc::new(move || recent.lines());
    if !fire_init(Role::Worker, cli.host.as_deref(), false) {
        return 1;
    }
    let exit = hopper_cluster::run_worker(runner, worker_options, logs, async {
        tokio::select! {
            s = signals.next() => tracing::info!(target: "hopper.main", "{s}, shutting down"),
            r = population::quit_requested() => tracing::info!(target: "hopper.main", "{r}, shutting down"),
        }
    })
    .await;
    match exit {
        WorkerExit::Quit => {
            let quitting = Quitting::new(environment(), Totals::now());
            events().quitting.fire_reversed(&quitting);
            if let Some(code) = quitting.exit_code() {
                code
            } else if hopper_core::health::unhandled_count() > 0 {
                2
            } else {
                0
            }
        }
        // Locust's worker exits with -1 when it gives up on its master.
        WorkerExit::NoMaster(_) => 255,
    }
}

/// Resolves when the test should end by itself, as Locust's `stop_and_optionally_quit`:
/// headless, when the run time is over; with `--autostart`, the run time stops the test and
/// `--autoquit N` quits N seconds later. Without a run time it never resolves.
async fn ends_by_itself(
    session: &SessionHandle,
    run_time: Option<Duration>,
    headless: bool,
    autoquit: Option<i64>,
) -> &'static str {
    let Some(run_time) = run_time else {
        return std::future::pending().await;
    };
    tokio::time::sleep(run_time).await;
    if headless {
        return "--run-time limit reached";
    }
    tracing::info!(target: "hopper.main", "--run-time limit reached, stopping test");
    let _ = session.stop().await;
    match autoquit.filter(|q| *q >= 0) {
        Some(secs) => {
            tracing::debug!(target: "hopper.main", "Autoquit time limit set to {secs} seconds");
            tokio::time::sleep(Duration::from_secs(secs as u64)).await;
            "--autoquit time reached"
        }
        None => {
            tracing::info!(target: "hopper.main", "--autoquit not specified, leaving web ui running indefinitely");
            std::future::pending().await
        }
    }
}

/// Resolves if the session's task ends while the run still needs it (it panicked).
async fn session_lost(session: &SessionHandle) {
    let mut status = session.subscribe();
    while status.changed().await.is_ok() {}
}

/// `--html FILE`: the report, with Locust's `{u}`, `{r}` and `{t}` placeholders filled.
fn write_html_report(
    cli: &Cli,
    pattern: &str,
    session: &SessionHandle,
    info: &hopper_web::RunInfo,
    precise: Option<(f64, f64)>,
) {
    // Locust fills the placeholders from its options, which the last /swarm updates;
    // a value never set leaves its placeholder as it is.
    let status = session.status();
    let path = hopper_stats::report_data::report_filename(
        pattern,
        status.target_users.or(cli.users).map(u64::from),
        status.spawn_rate.or(cli.spawn_rate),
        status
            .run_time
            .or(cli.run_time)
            .filter(|t| *t > 0)
            .map(|t| t as f64),
    );
    let html = hopper_web::report_html(session, info, false, None, precise);
    let path = std::path::Path::new(&path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::error!(target: "hopper.main", "cannot create the directory of --html {}: {e}", path.display());
            return;
        }
    }
    match std::fs::write(path, html) {
        Ok(()) => {
            tracing::debug!(target: "hopper.main", "Wrote the HTML report to {}", path.display())
        }
        Err(e) => {
            tracing::error!(target: "hopper.main", "cannot write --html {}: {e}", path.display())
        }
    }
}

/// Collects the final numbers, prints the summary (and `--json`) and decides the exit code.
async fn finish(cli: &Cli) -> i32 {
    let width = name_width();
    let complete =
        tokio::task::spawn_blocking(|| hopper_stats::global().sync(Duration::from_secs(5)))
            .await
            .unwrap_or(false);
    if !complete {
        tracing::warn!(target: "hopper.main", "Some statistics could not be collected in time; the summary may miss the last requests");
    }
    // Listeners may set the exit code; they run before it is decided, as in Locust, so a
    // failing one still counts as an unhandled error.
    let quitting = Quitting::new(environment(), Totals::now());
    events().quitting.fire_reversed(&quitting);
    let stats = hopper_stats::global().lock();
    // Locust's order: a code set by a listener, failures or task exceptions, then unhandled
    // errors (exit code 2).
    let code = if let Some(code) = quitting.exit_code() {
        code
    } else if !stats.errors.is_empty() || !stats.exceptions.is_empty() {
        cli.exit_code_on_error
    } else if hopper_core::health::unhandled_count() > 0 {
        2
    } else {
        0
    };
    tracing::info!(target: "hopper.main", "Shutting down (exit code {code})");
    if cli.json {
        let json = hopper_stats::web_json::serialized_entries_json(&stats);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{json}");
        let _ = out.flush();
    }
    if let Some(file) = &cli.json_file {
        let path = format!("{file}.json");
        let json = hopper_stats::web_json::serialized_entries_json(&stats);
        let dir = std::path::Path::new(&path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        let written = dir
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, json));
        if let Err(e) = written {
            tracing::error!(target: "hopper.main", "cannot write --json-file {path}: {e}");
        }
        // As in Locust, --json-file replaces the console summary.
        return code;
    }
    // Each table ends with Locust's blank line already.
    let mut out = String::new();
    out.push_str(&console::stats_table(&stats, false, width));
    out.push_str(&console::percentiles_table(&stats, width));
    out.push_str(&console::precise_table(&stats, width));
    out.push_str(&console::error_report_with_width(&stats, width));
    if !stats.exceptions.is_empty() {
        out.push_str(&console::exceptions_report_with_width(&stats, width));
    }
    drop(stats);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
    code
}

/// Prints the live table now and every 2 s, as Locust's stats printer does.
async fn print_stats_forever() {
    let mut ticker = tokio::time::interval(CONSOLE_STATS_INTERVAL);
    loop {
        ticker.tick().await;
        // Let every thread hand over what it recorded, briefly; a slow thread shows up in
        // the next table instead of delaying this one.
        let _ =
            tokio::task::spawn_blocking(|| hopper_stats::global().sync(Duration::from_millis(200)))
                .await;
        let table = console::stats_table(&hopper_stats::global().lock(), true, name_width());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{table}");
        let _ = err.flush();
    }
}

/// A signal that ends the run.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "Ctrl-C",
            Stop::Terminate => "SIGTERM",
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Interrupt => "Received Ctrl-C",
            Stop::Terminate => "Got SIGTERM signal",
        })
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, each installed once so that every signal is seen (a handler
/// installed and dropped would leave later signals swallowed).
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    #[cfg(not(unix))]
    fn install() -> Signals {
        Signals {}
    }

    /// The next Ctrl-C or SIGTERM.
    #[cfg(unix)]
    async fn next(&mut self) -> Stop {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.interrupt) => Stop::Interrupt,
            _ = recv(&mut self.terminate) => Stop::Terminate,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Stop {
        let _ = tokio::signal::ctrl_c().await;
        Stop::Interrupt
    }
}
