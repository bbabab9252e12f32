//! Hopper's web UI and Locust-compatible HTTP API.
//!
//! [`start`] binds the web port and serves, under `--web-base-path`:
//! * the single-page UI (`GET /`, assets embedded in the binary, no CDN) and the login page;
//! * Locust 2.47's routes with the same JSON shapes and error messages (`/swarm`, `/stop`,
//!   `/stats/reset`, `/stats/requests`, the CSV downloads, `/exceptions`, `/stats/report`,
//!   `/tasks`, `/logs`, `/worker-count`), so monitoring scripts written for Locust keep working;
//! * operations endpoints: `/metrics` (Prometheus), `/health` and `/ready`.
//!
//! Everything reads the same merged statistics ([`hopper_stats::global`]) and drives the test
//! through a [`SessionHandle`]. [`report_html`] renders the self-contained HTML report that
//! `--html` writes and `/stats/report` serves.

mod auth;
mod logs;
mod metrics;
mod pages;
mod routes;
mod server;
mod swarm_form;

pub use auth::Credentials;
pub use logs::{LogBuffer, MAX_LOG_LINES};
pub use pages::report_html;

use hopper_core::SessionHandle;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;

/// What the run was started with, shown in the UI and the report.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// `-f` (Locust shows the locustfile's name; Hopper shows the program's name).
    pub locustfile: String,
    /// `-u`, `-r`, `-t`: the start form's defaults.
    pub num_users: Option<u32>,
    pub spawn_rate: Option<f64>,
    pub run_time: Option<u64>,
    /// `--profile`.
    pub profile: Option<String>,
    /// The `_stats_history.csv` file when `--csv-full-history` is on.
    pub full_history_csv: Option<PathBuf>,
}

/// Figures computed by the statistics loop that the web routes show as they are.
#[derive(Debug, Default)]
pub struct LiveFigures {
    precise_current: Mutex<Option<(f64, f64)>>,
}

impl LiveFigures {
    /// Sets the precise p50 and p95 (ms) of the last 10 s, `None` when nothing was measured.
    pub fn set_precise_current(&self, value: Option<(f64, f64)>) {
        *self
            .precise_current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = value;
    }

    /// The precise p50 and p95 (ms) of the last 10 s.
    pub fn precise_current(&self) -> Option<(f64, f64)> {
        *self
            .precise_current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a master shows of its workers (absent when not distributed).
#[derive(Clone)]
pub struct ClusterInfo {
    /// Every known worker, missing ones too: the Workers tab and `/stats/requests`.
    pub workers: Arc<dyn Fn() -> Vec<hopper_stats::web_json::WorkerRow> + Send + Sync>,
    /// The last log lines of each worker: `/logs`.
    pub worker_logs: Arc<dyn Fn() -> std::collections::BTreeMap<String, Vec<String>> + Send + Sync>,
}

impl ClusterInfo {
    /// Workers that are ready, spawning or running (Locust's `worker_count`).
    pub fn worker_count(&self) -> usize {
        (self.workers)()
            .iter()
            .filter(|w| matches!(w.state.as_str(), "ready" | "spawning" | "running"))
            .count()
    }
}

/// How to serve.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// `--web-host` (empty or `*`: every interface).
    pub host: String,
    /// `--web-port` (0 picks a free port).
    pub port: u16,
    /// `--web-base-path`, e.g. `/hopper` (empty: the root).
    pub base_path: String,
    /// `--tls-cert` and `--tls-key`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--web-login` credentials.
    pub auth: Option<Credentials>,
}

/// A running web server.
pub struct WebServer {
    /// The address actually bound.
    pub local_addr: SocketAddr,
    /// The URL to open (with the bound port and the base path).
    pub url: String,
    join: JoinHandle<()>,
}

impl WebServer {
    /// Stops accepting connections.
    pub fn shutdown(self) {
        self.join.abort();
    }
}

/// State shared by every route.
pub(crate) struct AppState {
    pub session: SessionHandle,
    pub live: Arc<LiveFigures>,
    pub logs: Arc<LogBuffer>,
    pub info: RunInfo,
    pub base_path: String,
    pub auth: Option<Credentials>,
    pub sessions: auth::Sessions,
    /// Served over HTTPS (session cookies get the `Secure` flag).
    pub tls: bool,
    /// Set on a master.
    pub cluster: Option<ClusterInfo>,
}

/// Checks and normalises `--web-base-path`: it must start with `/` (as Locust requires); a
/// trailing slash is dropped; empty means the root. Only plain path characters are allowed,
/// so the path can never be read as a route pattern.
pub fn normalize_base_path(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') {
        return Err(format!("--web-base-path {raw:?} must start with /"));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
    if !trimmed.chars().all(plain) || trimmed.contains("//") {
        return Err(format!(
            "--web-base-path {raw:?} may only contain letters, digits and / - _ . ~"
        ));
    }
    Ok(trimmed.to_string())
}

/// Binds and starts serving in the background.
pub async fn start(
    options: WebOptions,
    session: SessionHandle,
    live: Arc<LiveFigures>,
    logs: Arc<LogBuffer>,
    info: RunInfo,
    cluster: Option<ClusterInfo>,
) -> Result<WebServer, String> {
    let base_path = normalize_base_path(&options.base_path)?;
    let tls = match &options.tls {
        Some((cert, key)) => Some(server::tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = server::bind(&options.host, options.port).await?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the web interface's address: {e}"))?;
    let shown_host = match options.host.as_str() {
        "" | "*" | "0.0.0.0" => "localhost".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{shown_host}:{}{base_path}", local_addr.port());
    let state = Arc::new(AppState {
        session,
        live,
        logs,
        info,
        base_path: base_path.clone(),
        auth: options.auth,
        sessions: auth::Sessions::default(),
        tls: tls.is_some(),
        cluster,
    });
    let app = routes::router(state, &base_path);
    let join = tokio::spawn(server::serve(listener, app, tls));
    Ok(WebServer {
        local_addr,
        url,
        join,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_normalised() {
        assert_eq!(normalize_base_path("").unwrap(), "");
        assert_eq!(normalize_base_path("/").unwrap(), "");
        assert_eq!(normalize_base_path("/hopper/").unwrap(), "/hopper");
        assert_eq!(normalize_base_path("/a/b").unwrap(), "/a/b");
        assert!(normalize_base_path("hopper").is_err());
        for bad in ["/a b", "/x?y", "/{id}", "/:x", "/*x", "/a{", "/é", "/a//b"] {
            assert!(normalize_base_path(bad).is_err(), "{bad}");
        }
    }
}
