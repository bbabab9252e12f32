//! Users and user classes: Locust's `User` / `HttpUser` translated.
//!
//! A user class is declared with [`UserClass::new`], a name and a function that makes each
//! user's own state; tasks, wait time, weight, `fixed_count`, host and `on_start`/`on_stop`
//! are added with builder methods. Each running user is a [`User<S>`]: its HTTP client, its
//! state (reachable directly through `Deref`, like attributes on `self` in Python) and a few
//! facts about itself.

use crate::control::Control;
use crate::task::{BoxFuture, Task, TaskFn, TaskRatio, TaskResult, TaskSet};
use crate::user_loop;
use crate::wait::WaitTime;
use hopper_http::{ClientConfig, HttpClient};
use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// One running user: `self` in a Locust task.
pub struct User<S> {
    /// The user's HTTP client (Locust's `self.client`), based on the class host.
    pub client: HttpClient,
    /// The user's own data (also reachable directly: `user.token` for `user.state.token`).
    pub state: S,
    pub(crate) id: u64,
    pub(crate) class_name: Arc<str>,
    pub(crate) host: Option<Arc<str>>,
    pub(crate) rng: fastrand::Rng,
}

impl<S> User<S> {
    /// A number unique among the users of this run, in spawn order from 1.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name of this user's class.
    pub fn class_name(&self) -> &str {
        &self.class_name
    }

    /// The host this user targets (the class host, or `-H` when given).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// This user's random number generator (seeded afresh for each user; it also picks tasks
    /// and draws `between`/`poisson` waits).
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }
}

impl<S> Deref for User<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.state
    }
}

impl<S> DerefMut for User<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.state
    }
}

/// A kind of user: its tasks, wait time, share of the users and lifecycle hooks.
pub struct UserClass<S> {
    pub(crate) name: String,
    pub(crate) weight: f64,
    pub(crate) fixed_count: u32,
    pub(crate) host: Option<String>,
    pub(crate) wait_time: WaitTime,
    pub(crate) tasks: TaskSet<S>,
    pub(crate) on_start: Option<TaskFn<S>>,
    pub(crate) on_stop: Option<TaskFn<S>>,
    pub(crate) factory: Arc<dyn Fn() -> S + Send + Sync>,
    /// Shared by every user of the class (each client copies it only if it changes it).
    pub(crate) client_config: Arc<ClientConfig>,
    /// The name once more, shared by every user of the class (`User::class_name`).
    pub(crate) shared_name: Arc<str>,
}

impl<S> Clone for UserClass<S> {
    fn clone(&self) -> Self {
        UserClass {
            name: self.name.clone(),
            weight: self.weight,
            fixed_count: self.fixed_count,
            host: self.host.clone(),
            wait_time: self.wait_time.clone(),
            tasks: self.tasks.clone(),
            on_start: self.on_start.clone(),
            on_stop: self.on_stop.clone(),
            factory: self.factory.clone(),
            client_config: self.client_config.clone(),
            shared_name: self.shared_name.clone(),
        }
    }
}

impl<S: Send + 'static> UserClass<S> {
    /// A user class named `name` (the name used on the command line, in the dispatcher and
    /// on the wire); `state` makes each new user's data.
    pub fn new(name: impl Into<String>, state: impl Fn() -> S + Send + Sync + 'static) -> Self {
        let name = name.into();
        UserClass {
            shared_name: Arc::from(name.as_str()),
            tasks: TaskSet::new(name.clone()),
            name,
            weight: 1.0,
            fixed_count: 0,
            host: None,
            wait_time: WaitTime::default(),
            on_start: None,
            on_stop: None,
            factory: Arc::new(state),
            client_config: Arc::default(),
        }
    }

    /// Adds a task (`task!(f)`, `Task::new(..)`) or a task set.
    pub fn task(mut self, task: impl Into<Task<S>>) -> Self {
        self.tasks.tasks.push(task.into());
        self
    }

    /// Relative share of users (Locust's `weight`; may be fractional).
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Exactly this many users of this class, started before weighted ones (Locust's
    /// `fixed_count`); the weight is then ignored.
    pub fn fixed_count(mut self, count: u32) -> Self {
        self.fixed_count = count;
        self
    }

    /// Base URL for this class's requests; `-H/--host` overrides it.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Wait time between tasks (default: none).
    pub fn wait_time(mut self, wait_time: WaitTime) -> Self {
        self.wait_time = wait_time;
        self
    }

    /// Runs once when a user starts (Locust's `on_start`), e.g. to log in. An error here
    /// is recorded and ends that user, as in Locust.
    pub fn on_start<F>(mut self, f: F) -> Self
    where
        F: for<'a> Fn(&'a mut User<S>) -> BoxFuture<'a, TaskResult> + Send + Sync + 'static,
    {
        self.on_start = Some(Arc::new(f));
        self
    }

    /// Runs when a user stops, also when it is stopped in the middle of a task.
    pub fn on_stop<F>(mut self, f: F) -> Self
    where
        F: for<'a> Fn(&'a mut User<S>) -> BoxFuture<'a, TaskResult> + Send + Sync + 'static,
    {
        self.on_stop = Some(Arc::new(f));
        self
    }

    /// Adjusts every user's HTTP client settings (timeout, default headers, redirects).
    pub fn client_config(mut self, f: impl FnOnce(&mut ClientConfig)) -> Self {
        f(Arc::make_mut(&mut self.client_config));
        self
    }
}

/// What the runner needs to start one user.
pub struct SpawnUser {
    pub id: u64,
    /// `-H` / the UI host: replaces the class host when set.
    pub host_override: Option<Arc<str>>,
    pub seed: u64,
    pub control: Control,
}

/// A user class with its state type erased, so classes of different types run together.
pub trait AnyUserClass: Send + Sync {
    /// The class name.
    fn name(&self) -> &str;
    /// Relative share among weighted classes.
    fn weight(&self) -> f64;
    /// Fixed number of users, 0 when weighted.
    fn fixed_count(&self) -> u32;
    /// The class's own host.
    fn host(&self) -> Option<&str>;
    /// True when the class has at least one task.
    fn has_tasks(&self) -> bool;
    /// The task ratio tree of this class.
    fn ratios(&self) -> Vec<TaskRatio>;
    /// A copy keeping only tasks that `--tags` / `--exclude-tags` select.
    fn filtered(
        &self,
        tags: Option<&BTreeSet<String>>,
        exclude: Option<&BTreeSet<String>>,
    ) -> Arc<dyn AnyUserClass>;
    /// Starts one user; the future ends when the user has stopped.
    fn run_user(self: Arc<Self>, spawn: SpawnUser) -> BoxFuture<'static, ()>;
}

impl<S: Send + 'static> AnyUserClass for UserClass<S> {
    fn name(&self) -> &str {
        &self.name
    }
    fn weight(&self) -> f64 {
        self.weight
    }
    fn fixed_count(&self) -> u32 {
        self.fixed_count
    }
    fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
    fn has_tasks(&self) -> bool {
        self.tasks.tasks.iter().any(|t| t.weight > 0)
    }
    fn ratios(&self) -> Vec<TaskRatio> {
        self.tasks.ratios()
    }
    fn filtered(
        &self,
        tags: Option<&BTreeSet<String>>,
        exclude: Option<&BTreeSet<String>>,
    ) -> Arc<dyn AnyUserClass> {
        let mut out = self.clone();
        out.tasks = self.tasks.filter_by_tags(tags, exclude, &BTreeSet::new());
        Arc::new(out)
    }
    fn run_user(self: Arc<Self>, spawn: SpawnUser) -> BoxFuture<'static, ()> {
        // Panics in tasks are reported with their location; the hook provides it.
        crate::panic_hook::install();
        let host: Option<Arc<str>> = spawn
            .host_override
            .clone()
            .or_else(|| self.host.as_deref().map(Arc::from));
        let user = User {
            client: HttpClient::with_config(host.as_deref(), self.client_config.clone()),
            state: (self.factory)(),
            id: spawn.id,
            class_name: self.shared_name.clone(),
            host,
            rng: fastrand::Rng::with_seed(spawn.seed),
        };
        Box::pin(user_loop::run(self, user, spawn.control))
    }
}
