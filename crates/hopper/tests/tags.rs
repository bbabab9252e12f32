//! Tags, class selection and class weights, with the `tagged` example: Reader (weight 3,
//! untagged `browse` → GET /products) and Admin (weight 1, `report` tagged "reports" →
//! GET /status/200 named /report, `reindex` tagged "maintenance" and "slow" → GET /slow).

mod common;

use common::*;
use hopper::demo_target::CounterKey;
use std::collections::BTreeMap;

struct TaggedRun {
    out: Output,
    snapshot: BTreeMap<CounterKey, u64>,
}

/// Runs the tagged example with `users` users (`-u N -r N`) and `args`.
fn tagged(users: u64, args: &[&str]) -> TaggedRun {
    let dir = TempDir::new("tags");
    let target = Target::start();
    let mut cmd = command(&example_bin("tagged"), dir.path());
    let n = users.to_string();
    cmd.args(["-H", target.url(), "--headless", "-u", &n, "-r", &n])
        .args(args);
    let out = run(cmd);
    let counters = target.finish();
    // Whatever the selection, what Hopper reports is what the target served.
    assert_counts_match(&out, &counters, &[("/report", "/status/{code}")], &[]);
    TaggedRun {
        snapshot: counters.snapshot(),
        out,
    }
}

fn assert_only_reports(r: &TaggedRun) {
    let out = &r.out;
    let summary = out.summary();
    assert_eq!(
        summary.names(),
        vec!["GET /report".to_string()],
        "only the reports task may run\n{}",
        out.dump()
    );
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
    assert_eq!(
        target_route_count(&r.snapshot, "/slow"),
        0,
        "{}",
        out.dump()
    );
    assert_eq!(
        target_route_count(&r.snapshot, "/products"),
        0,
        "{}",
        out.dump()
    );
    assert!(target_count(&r.snapshot, "GET", "/status/{code}") >= summary.aggregated.reqs);
    // Reader's only task is untagged, so --tags leaves it with none: Hopper says so.
    out.assert_stderr_contains("User class Reader has no tasks after tag filtering");
    out.assert_stderr_lacks("User class Admin has no tasks");
}

#[test]
fn tags_long_form_runs_only_tagged_tasks() {
    let r = tagged(8, &["-t", "3s", "--tags", "reports"]);
    assert_only_reports(&r);
    // Readers with no task raise Locust's "No tasks defined" error: a task exception, so the
    // run exits with --exit-code-on-error (1), as Locust does.
    r.out
        .assert_code(1)
        .assert_stderr_contains("No tasks defined on Reader");
    assert_eq!(r.out.summary().aggregated.fails, 0, "{}", r.out.dump());
}

#[test]
fn tags_short_form_is_the_same_option() {
    let r = tagged(8, &["-t", "3s", "-T", "reports"]);
    assert_only_reports(&r);
}

#[test]
fn exclude_tags_removes_tagged_tasks() {
    let r = tagged(8, &["-t", "3s", "-E", "slow"]);
    let out = &r.out;
    out.assert_code(0);
    let summary = out.summary();
    assert_eq!(
        target_route_count(&r.snapshot, "/slow"),
        0,
        "{}",
        out.dump()
    );
    assert!(summary.row("GET", "/slow").is_none(), "{}", out.dump());
    // Untagged tasks still run, and so does the Admin's other task.
    assert!(
        target_count(&r.snapshot, "GET", "/products") > 0,
        "{}",
        out.dump()
    );
    assert!(
        target_count(&r.snapshot, "GET", "/status/{code}") > 0,
        "{}",
        out.dump()
    );
    out.assert_stderr_lacks("has no tasks");
}

#[test]
fn exclude_tags_long_form_with_several_tags() {
    // `maintenance` and `reports` cover both Admin tasks: Admin is left with none.
    let r = tagged(4, &["-t", "2s", "--exclude-tags", "maintenance", "reports"]);
    let out = &r.out;
    let summary = out.summary();
    assert_eq!(
        summary.names(),
        vec!["GET /products".to_string()],
        "{}",
        out.dump()
    );
    assert_eq!(target_route_count(&r.snapshot, "/slow"), 0);
    assert_eq!(target_route_count(&r.snapshot, "/status/{code}"), 0);
    out.assert_stderr_contains("User class Admin has no tasks after tag filtering");
}

#[test]
fn positional_class_name_selects_that_class_only() {
    let r = tagged(2, &["-t", "3s", "Admin"]);
    let out = &r.out;
    out.assert_code(0);
    assert_eq!(
        users_spawned(&out.stderr),
        Some(("{\"Admin\": 2}".to_string(), 2)),
        "{}",
        out.dump()
    );
    assert_eq!(
        target_route_count(&r.snapshot, "/products"),
        0,
        "{}",
        out.dump()
    );
    let summary = out.summary();
    assert!(summary.row("GET", "/products").is_none(), "{}", out.dump());
    assert!(summary.aggregated.reqs > 0, "{}", out.dump());
}

#[test]
fn class_selection_and_exclude_tags_combine() {
    // The second example of tagged.rs: Admin users only, no slow tasks.
    let r = tagged(2, &["Admin", "-t", "2s", "-E", "slow"]);
    let out = &r.out;
    out.assert_code(0);
    let summary = out.summary();
    assert_eq!(
        summary.names(),
        vec!["GET /report".to_string()],
        "{}",
        out.dump()
    );
    assert_eq!(target_route_count(&r.snapshot, "/slow"), 0);
    assert_eq!(target_route_count(&r.snapshot, "/products"), 0);
}

#[test]
fn weighted_classes_are_distributed_like_locust() {
    // Locust's dispatcher gives 6 Readers and 2 Admins for weights 3:1 and 8 users, and
    // lists the classes sorted by name.
    let r = tagged(8, &["-t", "2s"]);
    let out = &r.out;
    out.assert_code(0)
        .assert_stderr_contains("All users spawned: {\"Admin\": 2, \"Reader\": 6} (8 total users)");
}

#[test]
fn weighted_classes_four_users() {
    // 3:1 with 4 users → 3 Readers, 1 Admin.
    let r = tagged(4, &["-t", "2s"]);
    r.out
        .assert_stderr_contains("All users spawned: {\"Admin\": 1, \"Reader\": 3} (4 total users)");
}
