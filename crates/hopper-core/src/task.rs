//! Tasks and task sets: what a user does, Locust's `@task`, `TaskSet`, `SequentialTaskSet`
//! and `@tag` translated.
//!
//! A task is an async function over the user (`async fn browse(u: &mut User<Shop>) ->
//! TaskResult`), registered with the [`task!`](crate::task!) macro or [`Task::new`]. A
//! [`TaskSet`] groups tasks with their own `on_start`/`on_stop` and, optionally, their own
//! wait time; it is itself a task of its parent, and [`interrupt`] leaves it. Weights expand
//! the way Locust's `tasks` list does, so a task of weight 3 is picked three times as often.

use crate::user::User;
use crate::wait::WaitTime;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future that may borrow the user.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a task returns: `Ok(())`, a control-flow request, or an error.
pub type TaskResult = Result<(), TaskError>;

/// The async function behind a task or hook.
pub type TaskFn<S> =
    Arc<dyn for<'a> Fn(&'a mut User<S>) -> BoxFuture<'a, TaskResult> + Send + Sync>;

/// Why a task did not simply finish: Locust's control-flow exceptions, or an error.
pub enum TaskError {
    /// Leave the current task set (Locust's `self.interrupt(reschedule)`): its `on_stop`
    /// runs, then the parent picks its next task at once (`reschedule`) or after waiting.
    Interrupt { reschedule: bool },
    /// Stop this user for good (Locust's `StopUser`): `on_stop` runs, it is not replaced.
    StopUser,
    /// End this task early and wait as usual (Locust's `RescheduleTask`).
    Reschedule,
    /// End this task and start the next one without waiting (`RescheduleTaskImmediately`).
    RescheduleNow,
    /// The task failed. Recorded as a task exception (message and where), not as a request
    /// failure; the user waits and carries on, as in Locust.
    Failed {
        message: String,
        /// Source file of the `?` or `fail(...)` that ended the task.
        file: String,
        line: u32,
    },
}

impl TaskError {
    /// A failure with a message, located at the caller.
    #[track_caller]
    pub fn failed(message: impl fmt::Display) -> TaskError {
        let location = Location::caller();
        TaskError::Failed {
            message: message.to_string(),
            file: location.file().to_string(),
            line: location.line(),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Interrupt { reschedule } => write!(f, "Interrupt(reschedule={reschedule})"),
            TaskError::StopUser => f.write_str("StopUser"),
            TaskError::Reschedule => f.write_str("Reschedule"),
            TaskError::RescheduleNow => f.write_str("RescheduleNow"),
            TaskError::Failed {
                message,
                file,
                line,
            } => write!(f, "{message} (at {file}:{line})"),
        }
    }
}

/// Any error can leave a task with `?`; the location of the `?` is kept as "where".
impl<E: std::error::Error> From<E> for TaskError {
    #[track_caller]
    fn from(e: E) -> Self {
        TaskError::failed(e)
    }
}

/// `return interrupt(true);` leaves the current task set (Locust's `self.interrupt()`).
pub fn interrupt(reschedule: bool) -> TaskResult {
    Err(TaskError::Interrupt { reschedule })
}

/// `return stop_user();` stops this user (Locust's `raise StopUser()`).
pub fn stop_user() -> TaskResult {
    Err(TaskError::StopUser)
}

/// `return fail("why");` records a task exception with this message.
#[track_caller]
pub fn fail(message: impl fmt::Display) -> TaskResult {
    Err(TaskError::failed(message))
}

/// One entry of a task list: a function or a nested task set, with weight and tags.
pub struct Task<S> {
    pub(crate) name: String,
    pub(crate) weight: u32,
    pub(crate) tags: BTreeSet<String>,
    pub(crate) kind: TaskKind<S>,
}

pub(crate) enum TaskKind<S> {
    Fn(TaskFn<S>),
    Set(Arc<TaskSet<S>>),
}

impl<S> Clone for TaskKind<S> {
    fn clone(&self) -> Self {
        match self {
            TaskKind::Fn(f) => TaskKind::Fn(f.clone()),
            TaskKind::Set(s) => TaskKind::Set(s.clone()),
        }
    }
}

impl<S> Clone for Task<S> {
    fn clone(&self) -> Self {
        Task {
            name: self.name.clone(),
            weight: self.weight,
            tags: self.tags.clone(),
            kind: self.kind.clone(),
        }
    }
}

impl<S> Task<S> {
    /// A task named `name` running `f`. Usually written with [`task!`](crate::task!):
    /// `task!(browse)` is `Task::new("browse", |u| Box::pin(browse(u)))`.
    pub fn new<F>(name: impl Into<String>, f: F) -> Task<S>
    where
        F: for<'a> Fn(&'a mut User<S>) -> BoxFuture<'a, TaskResult> + Send + Sync + 'static,
    {
        Task {
            name: name.into(),
            weight: 1,
            tags: BTreeSet::new(),
            kind: TaskKind::Fn(Arc::new(f)),
        }
    }

    /// How often this task is picked relative to its siblings (Locust's `@task(weight)`).
    /// A weight of 0 keeps the task listed but never picks it.
    pub fn weight(mut self, weight: u32) -> Task<S> {
        self.weight = weight;
        self
    }

    /// Tags this task for `--tags` / `--exclude-tags` (Locust's `@tag`).
    pub fn tag(mut self, tag: impl Into<String>) -> Task<S> {
        self.tags.insert(tag.into());
        self
    }

    /// The task's name (the function name for `task!`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<S> From<TaskSet<S>> for Task<S> {
    fn from(set: TaskSet<S>) -> Task<S> {
        Task {
            name: set.name.clone(),
            weight: set.weight,
            tags: set.tags.clone(),
            kind: TaskKind::Set(Arc::new(set)),
        }
    }
}

/// A group of tasks with its own lifecycle (Locust's `TaskSet` / `SequentialTaskSet`).
pub struct TaskSet<S> {
    pub(crate) name: String,
    pub(crate) weight: u32,
    pub(crate) tags: BTreeSet<String>,
    pub(crate) tasks: Vec<Task<S>>,
    pub(crate) sequential: bool,
    pub(crate) on_start: Option<TaskFn<S>>,
    pub(crate) on_stop: Option<TaskFn<S>>,
    pub(crate) wait_time: Option<WaitTime>,
}

impl<S> Clone for TaskSet<S> {
    fn clone(&self) -> Self {
        TaskSet {
            name: self.name.clone(),
            weight: self.weight,
            tags: self.tags.clone(),
            tasks: self.tasks.clone(),
            sequential: self.sequential,
            on_start: self.on_start.clone(),
            on_stop: self.on_stop.clone(),
            wait_time: self.wait_time.clone(),
        }
    }
}

impl<S> TaskSet<S> {
    /// An empty task set; add tasks with [`TaskSet::task`].
    pub fn new(name: impl Into<String>) -> TaskSet<S> {
        TaskSet {
            name: name.into(),
            weight: 1,
            tags: BTreeSet::new(),
            tasks: Vec::new(),
            sequential: false,
            on_start: None,
            on_stop: None,
            wait_time: None,
        }
    }

    /// Adds a task or a nested task set.
    pub fn task(mut self, task: impl Into<Task<S>>) -> TaskSet<S> {
        self.tasks.push(task.into());
        self
    }

    /// Runs tasks in the order they were added, cyclically (Locust's `SequentialTaskSet`);
    /// a task of weight n runs n times in a row.
    pub fn sequential(mut self) -> TaskSet<S> {
        self.sequential = true;
        self
    }

    /// This set's weight among its parent's tasks.
    pub fn weight(mut self, weight: u32) -> TaskSet<S> {
        self.weight = weight;
        self
    }

    /// Tags every task in this set.
    pub fn tag(mut self, tag: impl Into<String>) -> TaskSet<S> {
        self.tags.insert(tag.into());
        self
    }

    /// Runs each time a user enters this set.
    pub fn on_start<F>(mut self, f: F) -> TaskSet<S>
    where
        F: for<'a> Fn(&'a mut User<S>) -> BoxFuture<'a, TaskResult> + Send + Sync + 'static,
    {
        self.on_start = Some(Arc::new(f));
        self
    }

    /// Runs when a user leaves this set (interrupt or stop).
    pub fn on_stop<F>(mut self, f: F) -> TaskSet<S>
    where
        F: for<'a> Fn(&'a mut User<S>) -> BoxFuture<'a, TaskResult> + Send + Sync + 'static,
    {
        self.on_stop = Some(Arc::new(f));
        self
    }

    /// A wait time for tasks inside this set instead of the user's.
    pub fn wait_time(mut self, wait_time: WaitTime) -> TaskSet<S> {
        self.wait_time = Some(wait_time);
        self
    }

    /// Keeps only tasks selected by `--tags` / `--exclude-tags` (Locust's
    /// `filter_tasks_by_tags`). Tags of enclosing sets count for the tasks inside them.
    /// Task sets left with no tasks are dropped from their parent.
    pub(crate) fn filter_by_tags(
        &self,
        tags: Option<&BTreeSet<String>>,
        exclude: Option<&BTreeSet<String>>,
        inherited: &BTreeSet<String>,
    ) -> TaskSet<S> {
        let mut out = self.clone();
        out.tasks = self
            .tasks
            .iter()
            .filter_map(|t| {
                let mut own: BTreeSet<String> = inherited.clone();
                own.extend(t.tags.iter().cloned());
                match &t.kind {
                    TaskKind::Fn(_) => {
                        let included = tags.is_none_or(|want| !want.is_disjoint(&own));
                        let excluded = exclude.is_some_and(|ex| !ex.is_disjoint(&own));
                        (included && !excluded).then(|| t.clone())
                    }
                    TaskKind::Set(set) => {
                        let filtered = set.filter_by_tags(tags, exclude, &own);
                        (!filtered.tasks.is_empty()).then(|| Task {
                            name: t.name.clone(),
                            weight: t.weight,
                            tags: t.tags.clone(),
                            kind: TaskKind::Set(Arc::new(filtered)),
                        })
                    }
                }
            })
            .collect();
        out
    }

    /// The task list expanded by weight (Locust's `tasks` after the metaclass).
    pub(crate) fn expanded(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            out.extend(std::iter::repeat_n(i, t.weight as usize));
        }
        out
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each task's share of this set, recursively: Locust's task ratio table.
    pub fn ratios(&self) -> Vec<TaskRatio> {
        let total: u32 = self.tasks.iter().map(|t| t.weight).sum();
        self.tasks
            .iter()
            .map(|t| TaskRatio {
                name: t.name.clone(),
                ratio: if total == 0 {
                    0.0
                } else {
                    f64::from(t.weight) / f64::from(total)
                },
                children: match &t.kind {
                    TaskKind::Fn(_) => Vec::new(),
                    TaskKind::Set(s) => s.ratios(),
                },
            })
            .collect()
    }
}

/// One row of a task ratio tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRatio {
    pub name: String,
    pub ratio: f64,
    pub children: Vec<TaskRatio>,
}

/// Turns an `async fn(&mut User<S>) -> TaskResult` into a [`Task`] named after it:
/// `task!(browse)`, or with a weight, `task!(browse, 3)`.
#[macro_export]
macro_rules! task {
    ($f:path) => {
        $crate::Task::new($crate::task::last_segment(stringify!($f)), |u| {
            ::std::boxed::Box::pin($f(u))
        })
    };
    ($f:path, $weight:expr) => {
        $crate::task!($f).weight($weight)
    };
}

/// Turns an `async fn(&mut User<S>) -> TaskResult` into an `on_start` / `on_stop` hook:
/// `.on_start(hook!(login))` is `.on_start(|u| Box::pin(login(u)))`.
#[macro_export]
macro_rules! hook {
    ($f:path) => {
        |u| ::std::boxed::Box::pin($f(u))
    };
}

/// `module::function` → `function` (used by [`task!`](crate::task!)).
#[doc(hidden)]
pub fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path).trim()
}
