//! `--show-task-ratio` and `--show-task-ratio-json`: how users and tasks would be shared,
//! printed exactly as Locust's `inspectuser` module prints it.
//!
//! Class shares come from the number of users each class would get for `-u` (Locust's
//! `_calc_distribution`, with Python's round-half-even); task shares are each task's weight
//! over its set's total, nested sets included. "Per class" ratios are relative to the
//! parent; "total" ratios multiply down the tree.

use crate::task::TaskRatio;
use crate::user::AnyUserClass;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Users per class for `num_users` (`None`: the sum of the weights, as Locust does).
fn distribution(classes: &[Arc<dyn AnyUserClass>], num_users: Option<u32>) -> Vec<f64> {
    let fixed: u32 = classes.iter().map(|c| c.fixed_count()).sum();
    let total_weight: f64 = classes
        .iter()
        .filter(|c| c.fixed_count() == 0)
        .map(|c| c.weight())
        .sum();
    let users = match num_users {
        Some(n) if n > 0 => f64::from(n),
        _ if fixed == 0 => total_weight,
        _ => 1.0,
    };
    let weighted = (users - f64::from(fixed)).max(0.0);
    classes
        .iter()
        .map(|c| {
            if c.fixed_count() > 0 {
                f64::from(c.fixed_count())
            } else if total_weight > 0.0 {
                (c.weight() / total_weight * weighted).round_ties_even()
            } else {
                0.0
            }
        })
        .collect()
}

/// Locust's ratio dictionary: `{class: {"ratio", "tasks": {task: {"ratio", "tasks"?}}}}`,
/// with class shares from the distribution `-u` would give.
pub fn ratio_json(classes: &[Arc<dyn AnyUserClass>], num_users: Option<u32>, total: bool) -> Value {
    ratio_json_for_counts(classes, &distribution(classes, num_users), total)
}

/// The ratio dictionary for users actually running (`counts[i]` users of `classes[i]`), as
/// the web UI's `/tasks` shows it. With no users running every class ratio is 0.
pub fn ratio_json_for_counts(
    classes: &[Arc<dyn AnyUserClass>],
    counts: &[f64],
    total: bool,
) -> Value {
    let counts = counts.to_vec();
    let sum: f64 = counts.iter().sum();
    let sum = if sum == 0.0 { 1.0 } else { sum };
    let mut out = Map::new();
    for (class, count) in classes.iter().zip(counts) {
        let ratio = count / sum;
        out.insert(
            class.name().to_string(),
            json!({ "ratio": ratio, "tasks": tasks_json(&class.ratios(), if total { ratio } else { 1.0 }, total) }),
        );
    }
    Value::Object(out)
}

fn tasks_json(tasks: &[TaskRatio], parent: f64, total: bool) -> Value {
    let mut out = Map::new();
    for t in tasks {
        let ratio = t.ratio * parent;
        let mut entry = Map::new();
        entry.insert("ratio".into(), json!(ratio));
        if !t.children.is_empty() {
            let below = if total { ratio } else { 1.0 };
            entry.insert("tasks".into(), tasks_json(&t.children, below, total));
        }
        out.insert(t.name.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

/// The text tables of `--show-task-ratio`.
pub fn ratio_text(classes: &[Arc<dyn AnyUserClass>], num_users: Option<u32>) -> String {
    let mut out = String::new();
    out.push_str("\n Task ratio per User class\n");
    out.push_str(&"-".repeat(80));
    out.push('\n');
    print_level(&ratio_json(classes, num_users, false), 0, &mut out);
    out.push_str("\n Total task ratio\n");
    out.push_str(&"-".repeat(80));
    out.push('\n');
    print_level(&ratio_json(classes, num_users, true), 0, &mut out);
    out
}

/// `" %-10s %-50s" % (padding + "%-6.1f" % (ratio * 100), padding + name)`, recursively.
fn print_level(v: &Value, level: usize, out: &mut String) {
    let Some(map) = v.as_object() else {
        return;
    };
    let padding = "  ".repeat(level);
    for (name, entry) in map {
        let ratio = entry.get("ratio").and_then(Value::as_f64).unwrap_or(1.0);
        let pct = format!("{padding}{:<6.1}", ratio * 100.0);
        out.push_str(&format!(" {pct:<10} {:<50}\n", format!("{padding}{name}")));
        if let Some(tasks) = entry.get("tasks") {
            print_level(tasks, level + 1, out);
        }
    }
}

/// `--show-task-ratio-json`: `{"per_class": ..., "total": ...}` with 4-space indents.
pub fn ratio_json_text(classes: &[Arc<dyn AnyUserClass>], num_users: Option<u32>) -> String {
    let value = json!({
        "per_class": ratio_json(classes, num_users, false),
        "total": ratio_json(classes, num_users, true),
    });
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(&value, &mut ser).expect("JSON values always serialise");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{task, TaskResult, TaskSet, User, UserClass};

    async fn t(_u: &mut User<()>) -> TaskResult {
        Ok(())
    }

    fn classes() -> Vec<Arc<dyn AnyUserClass>> {
        let set = TaskSet::new("Browse")
            .task(task!(t, 1))
            .task(Task::new("u", |u| Box::pin(t(u))).weight(3));
        vec![
            Arc::new(
                UserClass::new("A", || ())
                    .weight(3.0)
                    .task(task!(t, 1))
                    .task(set),
            ),
            Arc::new(UserClass::new("B", || ()).weight(1.0).task(task!(t))),
        ]
    }
    use crate::Task;

    #[test]
    fn per_class_and_total_ratios() {
        let v = ratio_json(&classes(), Some(4), false);
        assert_eq!(v["A"]["ratio"], 0.75);
        assert_eq!(v["A"]["tasks"]["t"]["ratio"], 0.5);
        assert_eq!(v["A"]["tasks"]["Browse"]["tasks"]["u"]["ratio"], 0.75);
        let v = ratio_json(&classes(), Some(4), true);
        assert_eq!(v["A"]["tasks"]["Browse"]["ratio"], 0.375);
        assert_eq!(v["A"]["tasks"]["Browse"]["tasks"]["u"]["ratio"], 0.28125);
        assert_eq!(v["B"]["tasks"]["t"]["ratio"], 0.25);
    }

    #[test]
    fn text_matches_locusts_layout() {
        let text = ratio_text(&classes(), Some(4));
        assert!(text.starts_with("\n Task ratio per User class\n-----"));
        assert!(text.contains("\n 75.0       A                                                 \n"));
        assert!(text.contains("\n   37.5       Browse                                          \n"));
    }

    #[test]
    fn json_keeps_class_order_and_four_space_indent() {
        let text = ratio_json_text(&classes(), None);
        assert!(text.starts_with("{\n    \"per_class\": {\n        \"A\": {"));
    }
}
