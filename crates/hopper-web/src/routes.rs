//! The routes: Locust 2.47's API with its JSON shapes and messages, the UI pages, the
//! downloads, and the operations endpoints, all under `--web-base-path`.

use crate::auth::{self, SESSION_COOKIE};
use crate::{metrics, pages, swarm_form, AppState, ClusterInfo};
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hopper_stats::{csv_out, pyjson, web_json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

type Shared = Arc<AppState>;

/// How long `POST /stop` and `POST /swarm` wait for the session before replying (a stop
/// goes on in the background, the state shows `cleanup` until users have ended; a swarm
/// queued behind it runs after).
const COMMAND_REPLY_WAIT: Duration = Duration::from_secs(5);

/// The largest request body any route reads: forms are a few hundred bytes.
const BODY_LIMIT: usize = 64 * 1024;

/// Every route, under `base` (already normalised: empty or `/path`).
pub(crate) fn router(state: Shared, base: &str) -> Router {
    let p = |path: &str| format!("{base}{path}");
    let mut protected = Router::new()
        .route(&p("/"), get(index))
        .route(&p("/swarm"), post(swarm))
        .route(&p("/stop"), post(stop))
        .route(&p("/stats/reset"), post(reset_stats))
        .route(&p("/stats/requests"), get(stats_requests))
        .route(&p("/stats/requests/csv"), get(requests_csv))
        .route(
            &p("/stats/requests_full_history/csv"),
            get(full_history_csv),
        )
        .route(&p("/stats/failures/csv"), get(failures_csv))
        .route(&p("/exceptions"), get(exceptions))
        .route(&p("/exceptions/csv"), get(exceptions_csv))
        .route(&p("/stats/report"), get(report))
        .route(&p("/tasks"), get(tasks))
        .route(&p("/logs"), get(logs))
        .route(&p("/worker-count"), get(worker_count))
        .route(&p("/metrics"), get(metrics_text))
        .route(&p("/health"), get(health))
        .route(&p("/ready"), get(ready))
        .route(&p("/logout"), get(logout));
    if !base.is_empty() {
        // `/hopper` and `/hopper/` both open the UI.
        protected = protected.route(base, get(index));
    }
    let protected =
        protected.route_layer(middleware::from_fn_with_state(state.clone(), require_login));
    Router::new()
        .route(&p("/login"), get(login_page).post(login_submit))
        .merge(protected)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(answer_preflight))
        .layer(middleware::map_response(allow_any_origin))
        .with_state(state)
}

/// Locust enables CORS for every route.
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// A JSON reply as Flask's `jsonify` writes it in Locust (sorted keys, two-space indent),
/// so replies are byte-identical to Locust's.
fn jsonify(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        pyjson::flask_jsonify(value),
    )
        .into_response()
}

/// CORS preflight requests get Locust's (flask-cors') permissive answer before any other
/// check, so cross-origin scripts can call the API as they can Locust's.
async fn answer_preflight(request: Request, next: Next) -> Response {
    let is_preflight = request.method() == axum::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !is_preflight {
        return next.run(request).await;
    }
    let allow_headers = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
    );
    if let Some(h) = allow_headers {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h);
    }
    response
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "Not Found")
}

/// With access control on, lets through requests with a live session cookie or the right
/// Basic credentials; a browser opening the UI is sent to the login page, anything else gets
/// 401 and no data.
async fn require_login(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let Some(credentials) = &state.auth else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let by_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(auth::session_cookie)
        .any(|token| state.sessions.contains(token));
    let by_basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| credentials.matches_basic_header(v));
    if by_cookie || by_basic {
        if request.method() == axum::http::Method::POST && !same_origin(headers) {
            // A browser holding the cookie or cached Basic credentials must not be made to
            // start or stop a test from another site's page.
            return (
                StatusCode::FORBIDDEN,
                "Forbidden: cross-site request to a protected route\n",
            )
                .into_response();
        }
        return next.run(request).await;
    }
    let path = request.uri().path();
    if path == state.base_path || path == format!("{}/", state.base_path) {
        return Redirect::to(&format!("{}/login", state.base_path)).into_response();
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "Unauthorized: log in at the login page or send HTTP Basic credentials\n",
    )
        .into_response();
    // The UI's own requests say so; they get no Basic challenge, which would make the
    // browser pop up its own password dialog instead of the UI going to the login page.
    let from_ui = headers
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"));
    if !from_ui {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Hopper\", charset=\"UTF-8\""),
        );
    }
    response
}

/// Whether a request's `Origin` (when a browser sends one) names the host it was sent to.
/// Scripts send no `Origin` and pass.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

async fn login_page(State(state): State<Shared>) -> Response {
    if state.auth.is_none() {
        // As in Locust: without access control the login page leads to the UI.
        return Redirect::to(&format!("{}/", state.base_path)).into_response();
    }
    Html(pages::login_html(None, &state.base_path)).into_response()
}

async fn login_submit(State(state): State<Shared>, body: Bytes) -> Response {
    let Some(credentials) = &state.auth else {
        return Redirect::to(&format!("{}/", state.base_path)).into_response();
    };
    let mut user = String::new();
    let mut pass = String::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "username" => user = v.into_owned(),
            "password" => pass = v.into_owned(),
            _ => {}
        }
    }
    if !credentials.matches(&user, &pass) {
        tracing::warn!(
            target: "hopper.web",
            "Failed web login for user {:?}",
            crate::swarm_form::clip(&user)
        );
        let page = pages::login_html(Some("Invalid username or password"), &state.base_path);
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let token = match state.sessions.create() {
        Ok(t) => t,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let cookie_path = if state.base_path.is_empty() {
        "/"
    } else {
        &state.base_path
    };
    let secure = if state.tls { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={token}; Path={cookie_path}; HttpOnly; SameSite=Strict{secure}");
    let mut response = Redirect::to(&format!("{}/", state.base_path)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    for token in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(auth::session_cookie)
    {
        state.sessions.remove(token);
    }
    let mut response = Redirect::to(&format!("{}/login", state.base_path)).into_response();
    let cookie_path = if state.base_path.is_empty() {
        "/"
    } else {
        &state.base_path
    };
    let cookie =
        format!("{SESSION_COOKIE}=; Max-Age=0; Path={cookie_path}; HttpOnly; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn index(State(state): State<Shared>) -> Html<String> {
    Html(pages::index_html(&state))
}

/// `POST /swarm`: Locust's replies, always status 200.
async fn swarm(State(state): State<Shared>, body: Bytes) -> Response {
    let current_host = || state.session.status().host;
    let form = match swarm_form::parse(&body) {
        Ok(f) => f,
        Err(message) => {
            tracing::error!(target: "hopper.web", "{message}");
            return jsonify(&json!({"host": current_host(), "message": message, "success": false}));
        }
    };
    let run_time = form.run_time;
    let host = form.host.clone();
    // While a stop is still waiting for users the command queues behind it; the reply need
    // not wait for that.
    // (A timeout leaves the command queued: only the wait for its acknowledgement ends.)
    if let Ok(Err(_gone)) =
        tokio::time::timeout(COMMAND_REPLY_WAIT, state.session.swarm(form)).await
    {
        return jsonify(&json!({"host": current_host(), "message": "No runner", "success": false}));
    }
    let host = match host {
        Some(h) => Value::String(h),
        None => json!(current_host()),
    };
    let mut reply = json!({"host": host, "message": "Swarming started", "success": true});
    if let Some(t) = run_time {
        reply["run_time"] = json!(t.as_secs());
    }
    if let Some(map) = reply.as_object_mut() {
        map.sort_keys();
    }
    jsonify(&reply)
}

async fn stop(State(state): State<Shared>) -> Response {
    let session = state.session.clone();
    let stopping = tokio::spawn(async move { session.stop().await });
    if let Ok(Ok(Err(_gone))) = tokio::time::timeout(COMMAND_REPLY_WAIT, stopping).await {
        return jsonify(&json!({"message": "No runner", "success": false}));
    }
    jsonify(&json!({"message": "Test stopped", "success": true}))
}

async fn reset_stats() -> Response {
    let stats = hopper_stats::global();
    stats.reset_all();
    // The UI's reset also forgets task exceptions (Locust's `runner.exceptions = {}`).
    stats.lock().exceptions.clear();
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], "ok").into_response()
}

async fn stats_requests(State(state): State<Shared>) -> Response {
    let status = state.session.status();
    let now = hopper_stats::now_epoch();
    let precise = state.live.precise_current();
    let workers = state.cluster.as_ref().map(|c| (c.workers)());
    let stats = hopper_stats::global().lock();
    let body = web_json::stats_requests_body(
        &stats,
        now,
        &status.state.to_string(),
        status.user_count,
        workers.as_deref(),
        precise,
    );
    drop(stats);
    jsonify(&body)
}

/// `Locust_<start time>_<locustfile>[_<host>]_<what>.<ext>`, with characters that do not
/// belong in a file name replaced.
fn suggested_filename(state: &AppState, what: &str, ext: &str) -> String {
    let start = hopper_stats::global().lock().total.start_time;
    let host = state
        .session
        .status()
        .host
        .map(|h| format!("_{h}"))
        .unwrap_or_default();
    let raw = format!(
        "Locust_{}_{}{host}{what}.{ext}",
        file_timestamp(start),
        state.info.locustfile
    );
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Locust's `format_safe_timestamp`: `YYYY-MM-DD-HHhMM` (UTC here).
fn file_timestamp(epoch: f64) -> String {
    let iso = hopper_stats::pyfmt::utc_iso(epoch.trunc());
    // "YYYY-MM-DDTHH:MM:SSZ" → "YYYY-MM-DD-HHhMM"
    format!("{}-{}h{}", &iso[0..10], &iso[11..13], &iso[14..16])
}

fn csv_download(state: &AppState, what: &str, body: String) -> Response {
    let name = suggested_filename(state, what, "csv");
    (
        [
            (header::CONTENT_TYPE, "text/csv".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment;filename={name}"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn requests_csv(State(state): State<Shared>) -> Response {
    let body = csv_out::requests_csv(&hopper_stats::global().lock());
    csv_download(&state, "_requests", body)
}

async fn failures_csv(State(state): State<Shared>) -> Response {
    let body = csv_out::failures_csv(&hopper_stats::global().lock());
    csv_download(&state, "_failures", body)
}

async fn exceptions_csv(State(state): State<Shared>) -> Response {
    let body = csv_out::exceptions_csv(&hopper_stats::global().lock());
    csv_download(&state, "_exceptions", body)
}

async fn full_history_csv(State(state): State<Shared>) -> Response {
    let Some(path) = &state.info.full_history_csv else {
        return (
            StatusCode::NOT_FOUND,
            "Error: Server was not started with option to generate full history.",
        )
            .into_response();
    };
    let file = path.clone();
    let read = tokio::task::spawn_blocking(move || std::fs::read(file))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match read {
        Ok(bytes) => {
            let name = suggested_filename(&state, "_requests_full_history", "csv");
            (
                [
                    (header::CONTENT_TYPE, "text/csv".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment;filename={name}"),
                    ),
                ],
                Body::from(bytes),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Error: cannot read {}: {e}", path.display()),
        )
            .into_response(),
    }
}

async fn exceptions() -> Response {
    let body = web_json::exceptions_body(&hopper_stats::global().lock());
    jsonify(&body)
}

#[derive(Deserialize)]
struct ReportQuery {
    download: Option<String>,
    theme: Option<String>,
}

async fn report(State(state): State<Shared>, Query(q): Query<ReportQuery>) -> Response {
    let download = q.download.as_deref().is_some_and(|d| !d.is_empty());
    let theme = q.theme.as_deref().filter(|t| !t.is_empty());
    let precise = state.live.precise_current();
    let html = pages::report_html(&state.session, &state.info, !download, theme, precise);
    let mut response = Html(html).into_response();
    if download {
        let name = suggested_filename(&state, "", "html");
        if let Ok(v) = HeaderValue::from_str(&format!("attachment;filename={name}")) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

async fn tasks(State(state): State<Shared>) -> Response {
    jsonify(&state.session.tasks_json())
}

async fn logs(State(state): State<Shared>) -> Response {
    let workers = state
        .cluster
        .as_ref()
        .map(|c| (c.worker_logs)())
        .unwrap_or_default();
    jsonify(&json!({"master": state.logs.lines(), "workers": workers}))
}

async fn worker_count(State(state): State<Shared>) -> Response {
    let count = state.cluster.as_ref().map_or(0, ClusterInfo::worker_count);
    jsonify(&json!({"worker_count": count}))
}

async fn metrics_text(State(state): State<Shared>) -> Response {
    let status = state.session.status();
    let state_name = status.state.to_string();
    let snapshot = {
        let stats = hopper_stats::global().lock();
        metrics::snapshot(&metrics::MetricsInput {
            stats: &stats,
            state: &state_name,
            user_count: status.user_count,
            class_counts: &status.class_counts,
            worker_count: state.cluster.as_ref().map_or(0, ClusterInfo::worker_count) as u64,
            now: hopper_stats::now_epoch(),
        })
    };
    // Encoding happens without the lock: user threads flush into it.
    let text = metrics::encode_snapshot(snapshot);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// Liveness: the process answers.
async fn health() -> Response {
    jsonify(&json!({"status": "ok"}))
}

/// Readiness: the session accepts commands (it stops doing so while the process quits).
async fn ready(State(state): State<Shared>) -> Response {
    let status = state.session.status();
    let body = json!({"ready": !status.quit, "state": status.state.to_string()});
    let code = if status.quit {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut response = jsonify(&body);
    *response.status_mut() = code;
    response
}
