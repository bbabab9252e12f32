//! The HTML pages: the UI shell, the login page and the report, each one self-contained
//! file (styles, script and data inlined) so that the report opens offline and the UI needs
//! nothing but this binary.

use crate::{AppState, RunInfo};
use hopper_core::SessionHandle;
use hopper_stats::report_data::{report_template_args, ReportInput};
use serde_json::{json, Value};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const LOGIN_HTML: &str = include_str!("../assets/login.html");
const APP_CSS: &str = include_str!("../assets/app.css");
const APP_JS: &str = include_str!("../assets/app.js");

/// JSON that is safe inside a `<script>` element: `<` is escaped so no string can close
/// the element, `/` so no string can hold a template placeholder (`/*APP_JS*/`) that a later
/// substitution would expand, and U+2028/U+2029 (line breaks to older JavaScript parsers).
fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('/', "\\/")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Fills the shared template: data, styles and script inlined.
fn fill(template: &str, args: &Value) -> String {
    // The script goes in last so text inside it that looks like a placeholder stays as it is.
    template
        .replace("/*TEMPLATE_ARGS*/null", &script_json(args))
        .replace("/*APP_CSS*/", APP_CSS)
        .replace("/*APP_JS*/", APP_JS)
}

/// The UI shell with `window.templateArgs` for the live UI.
pub(crate) fn index_html(state: &AppState) -> String {
    let status = state.session.status();
    let stats = hopper_stats::global().lock();
    let history: Vec<Value> = stats.history.iter().map(|p| p.to_json()).collect();
    drop(stats);
    let classes = state.session.classes();
    let mut user_classes: Vec<&str> = classes.iter().map(|c| c.name()).collect();
    user_classes.sort_unstable();
    let tasks: serde_json::Map<String, Value> = classes
        .iter()
        .map(|c| {
            let names: Vec<String> = c.ratios().into_iter().map(|t| t.name).collect();
            (c.name().to_string(), json!(names))
        })
        .collect();
    let mut args = json!({
        "auth_enabled": state.auth.is_some(),
        "available_user_classes": user_classes,
        "available_user_tasks": tasks,
        "base_path": state.base_path,
        "history": history,
        "host": status.host.clone().unwrap_or_default(),
        "is_distributed": state.cluster.is_some(),
        "is_report": false,
        "locustfile": state.info.locustfile,
        "num_users": status.target_users.or(state.info.num_users),
        "percentiles_to_chart": hopper_stats::PERCENTILES_TO_CHART,
        "percentiles_to_statistics": hopper_stats::PERCENTILES_TO_STATISTICS,
        "profile": state.info.profile,
        "run_time": status.run_time.or(state.info.run_time),
        "spawn_rate": status.spawn_rate.or(state.info.spawn_rate),
        "state": status.state.to_string(),
        "stats_history_enabled": state.info.full_history_csv.is_some(),
        "user_count": status.user_count,
        "version": env!("CARGO_PKG_VERSION"),
        "worker_count": state.cluster.as_ref().map_or(0, crate::ClusterInfo::worker_count),
    });
    if let Some(map) = args.as_object_mut() {
        map.sort_keys();
    }
    fill(INDEX_HTML, &args)
}

/// The login page, with an error message when the last attempt failed.
pub(crate) fn login_html(error: Option<&str>, base_path: &str) -> String {
    let error = match error {
        Some(e) => Value::String(e.to_string()),
        None => Value::Null,
    };
    LOGIN_HTML
        .replace("/*LOGIN_ERROR*/", &script_json(&error))
        .replace("/*BASE_PATH*/null", &script_json(&json!(base_path)))
        .replace("/*APP_CSS*/", APP_CSS)
}

/// The self-contained HTML report of the current (or last) test: statistics, percentiles,
/// failures, exceptions, the charts over the whole run and the final ratio. `precise` is
/// the precise p50/p95 (ms) of the last 10 s, given to the closing history point that
/// Locust's report adds at the end time.
pub fn report_html(
    session: &SessionHandle,
    info: &RunInfo,
    show_download_link: bool,
    theme: Option<&str>,
    precise: Option<(f64, f64)>,
) -> String {
    let status = session.status();
    let now = hopper_stats::now_epoch();
    let tasks = session.final_tasks_json();
    let stats = hopper_stats::global().lock();
    // Locust's span: from the statistics' start (test start or last reset) to the last request.
    let (start_time, end_time) = hopper_stats::report_data::locust_report_span(&stats);
    let mut args = report_template_args(&ReportInput {
        stats: &stats,
        locustfile: &info.locustfile,
        host: status.host.as_deref(),
        profile: info.profile.as_deref(),
        start_time,
        end_time,
        tasks,
        show_download_link,
        now,
        user_count: status.user_count,
    });
    drop(stats);
    if let (Some((p50, p95)), Some(last)) = (
        precise,
        args.get_mut("history")
            .and_then(Value::as_array_mut)
            .and_then(|h| h.last_mut())
            .and_then(Value::as_object_mut),
    ) {
        if !last.contains_key("precise_percentile_0.5") {
            let time = last.get("time").cloned().unwrap_or(Value::Null);
            last.insert("precise_percentile_0.5".into(), json!([time, p50]));
            last.insert("precise_percentile_0.95".into(), json!([time, p95]));
        }
    }
    if let (Some(theme), Some(map)) = (theme, args.as_object_mut()) {
        map.insert("theme".into(), json!(theme));
        map.sort_keys();
    }
    fill(INDEX_HTML, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = json!({"name": "</script><script>alert(1)</script>\u{2028}"});
        let s = script_json(&v);
        assert!(!s.contains('<'));
        assert!(!s.contains("/*"));
        assert!(!s.contains('\u{2028}'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn data_cannot_expand_a_placeholder() {
        let args = json!({"host": "http://x/*APP_JS*/", "theme": "/*APP_CSS*/"});
        let page = fill(INDEX_HTML, &args);
        assert_eq!(page.matches(APP_JS).count(), 1);
        assert_eq!(page.matches(APP_CSS).count(), 1);
    }

    #[test]
    fn templates_have_their_placeholders() {
        for p in ["/*TEMPLATE_ARGS*/null", "/*APP_CSS*/", "/*APP_JS*/"] {
            assert!(INDEX_HTML.contains(p), "index.html lacks {p}");
        }
        for p in ["/*LOGIN_ERROR*/", "/*APP_CSS*/"] {
            assert!(LOGIN_HTML.contains(p), "login.html lacks {p}");
        }
    }
}
