//! Locust's `UsersDispatcher`: decides how many users of each class run on
//! each worker, and how a ramp to a new user count is cut into iterations.
//!
//! This is a port of `locust/dispatch.py` (Locust 2.47) that reproduces its
//! per-worker, per-class counts exactly for the same inputs. The local runner
//! uses it with a single pseudo-worker (`"local"`); a master uses it with one
//! entry per connected worker.
//!
//! How a ramp is dispatched:
//!
//! * **Workers** are ordered so that consecutive users land on different
//!   hosts first: the host of a worker id is the text before its first `_`,
//!   workers are numbered within their host (in id order) and the final order
//!   is by (index within host, id). Users are assigned round robin over that
//!   order, and the cycle carries on where it stopped across iterations and
//!   dispatches.
//! * **User classes** are sorted by name. Classes with a `fixed_count` are
//!   dispatched first whenever some of their users are missing ("fixed
//!   pending"); all other classes with a positive weight come from a
//!   persistent [`KlGenerator`], a deterministic smooth weighted round robin.
//! * **Cadence**: each iteration changes the user count by at most
//!   `max(1, floor(spawn_rate))` users, and iterations are
//!   [`interval`](UsersDispatcher::interval) apart. Ramp-up adds users one at
//!   a time; ramp-down removes the newest users first (LIFO).
//! * **Workers joining or leaving** trigger a fresh distribution of the
//!   current user count over the new worker set, yielded by the next
//!   iteration without waiting.
//!
//! Unlike Locust, the dispatcher never sleeps: the async runner does the
//! timing, asking [`UsersDispatcher::delay_before_next`] how long to wait
//! before requesting the next iteration.
//!
//! Deliberate departures from Locust, all in corner cases where Locust
//! misbehaves (the counts in every other case are identical):
//!
//! * Locust leaves `dispatch_in_progress` set when a dispatch ends right after
//!   yielding a rebalanced map (a worker joined while the target was already
//!   reached), so its master ignores further joins until another ramp. Here
//!   it is cleared whenever a dispatch finishes.
//! * Locust adds a worker twice when `add_worker` is called with an id it
//!   already has (a duplicate `client_ready`), giving that worker a double
//!   share. Here the worker set stays a set; a rebalance still happens.
//! * Locust loops forever when a ramp-down runs out of users to remove (only
//!   reachable after a rebalance with a class subset that cannot place every
//!   user). Here the ramp-down then ends.
//! * With no workers at all Locust raises an error when it tries to place a
//!   user; here the ramp-up ends early, as if there was no user to spawn.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-class user counts of one worker: class name → count.
pub type ClassCounts = BTreeMap<String, u32>;

/// Complete assignment of users: worker id → class name → count.
///
/// Every worker and every user class is present, with zeros where nothing
/// runs, so a worker receiving its entry knows exactly what to run.
pub type Distribution = BTreeMap<String, ClassCounts>;

/// What the dispatcher needs to know about a user class.
#[derive(Debug, Clone, PartialEq)]
pub struct UserClassSpec {
    /// Class name; user classes are identified and ordered by it.
    pub name: String,
    /// Relative weight among the classes without a `fixed_count`. Classes
    /// whose weight is not a positive finite number never get weighted users.
    pub weight: f64,
    /// Exact number of users of this class across all workers; `0` means the
    /// class is weighted instead.
    pub fixed_count: u32,
}

/// Why [`UsersDispatcher::new_dispatch`] refused a dispatch.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchError {
    /// The spawn rate was zero, negative, infinite or NaN.
    InvalidSpawnRate(f64),
    /// The class subset named a class the dispatcher was not created with.
    UnknownUserClass(String),
}

impl fmt::Display for DispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchError::InvalidSpawnRate(rate) => {
                write!(f, "spawn_rate must be a finite number > 0, got {rate}")
            }
            DispatchError::UnknownUserClass(name) => write!(f, "unknown user class {name:?}"),
        }
    }
}

impl std::error::Error for DispatchError {}

/// Deterministic weighted round robin based on Kullback-Leibler divergence.
///
/// Each step emits the item whose choice brings the emitted sequence closest
/// to the target weights, which spreads items smoothly: weights A=5, B=1 give
/// `AABAAAAABAAA…`, A=3, B=2, C=1 give `ABCABAABCABA…`. Ties are broken by
/// the number of times an item was emitted plus its weight, then the weight,
/// then the item itself, exactly like Locust's heap of tuples.
///
/// Items whose weight is not a positive finite number are dropped. The
/// iterator never ends unless no item is left, in which case it yields
/// nothing.
#[derive(Debug, Clone)]
pub struct KlGenerator<T> {
    entries: Vec<KlEntry<T>>,
}

#[derive(Debug, Clone)]
struct KlEntry<T> {
    /// How much choosing this item next changes the divergence (lower wins).
    key: f64,
    /// Number of times emitted so far plus the weight plus one.
    x: f64,
    weight: f64,
    item: T,
}

impl<T: Ord> KlEntry<T> {
    /// Locust compares `(key, x, weight, name)` tuples; the floats are always
    /// finite here, so `partial_cmp` is total.
    fn cmp_tuple(&self, other: &Self) -> Ordering {
        let floats = |a: f64, b: f64| a.partial_cmp(&b).unwrap_or(Ordering::Equal);
        floats(self.key, other.key)
            .then_with(|| floats(self.x, other.x))
            .then_with(|| floats(self.weight, other.weight))
            .then_with(|| self.item.cmp(&other.item))
    }
}

impl<T: Ord + Clone> KlGenerator<T> {
    /// Creates a generator over `(item, weight)` pairs.
    pub fn new(items: impl IntoIterator<Item = (T, f64)>) -> Self {
        let entries = items
            .into_iter()
            .filter(|(_, weight)| weight.is_finite() && *weight > 0.0)
            .map(|(item, weight)| KlEntry {
                // Same operation order as Locust so the floats, and with them
                // the tie-breaks, are bit-identical.
                key: weight * (weight / (weight + 1.0)).log2(),
                x: weight + 1.0,
                weight,
                item,
            })
            .collect();
        KlGenerator { entries }
    }
}

impl<T: Ord + Clone> Iterator for KlGenerator<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        // A linear scan finds the same minimum as Locust's heap because the
        // items are distinct, and there are only a handful of user classes.
        let best = self.entries.iter_mut().min_by(|a, b| a.cmp_tuple(b))?;
        let item = best.item.clone();
        best.key = best.weight * (best.x / (best.x + 1.0)).log2();
        best.x += 1.0;
        Some(item)
    }
}

/// Where the dispatch is suspended between two calls to
/// [`UsersDispatcher::next_iteration`]; mirrors the yield points of Locust's
/// `_dispatcher` generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `new_dispatch` was called, nothing was yielded yet.
    NotStarted,
    /// Yielded a rebalanced map before doing anything else.
    AfterStartRebalance,
    /// Yielded the unchanged map because the target was already reached.
    AfterUnchanged,
    /// Yielded a ramp-up iteration.
    AfterRampUp,
    /// Yielded a rebalanced map right after a ramp-up iteration.
    AfterRampUpRebalance,
    /// Yielded a ramp-down iteration.
    AfterRampDown,
    /// Yielded a rebalanced map right after a ramp-down iteration.
    AfterRampDownRebalance,
    /// The dispatch is over (or none was started).
    Finished,
}

/// Fixed-count users still to be emitted by the user picker.
#[derive(Debug, Clone)]
struct PendingFixed {
    generator: KlGenerator<usize>,
    remaining: u32,
}

/// State of Locust's `_user_gen`: the weighted generator persists for as long
/// as the class set does, and a batch of fixed users can be half-emitted.
#[derive(Debug, Clone)]
struct UserPicker {
    weighted: KlGenerator<usize>,
    pending_fixed: Option<PendingFixed>,
}

/// Distributes users over workers, one ramp ("dispatch") at a time.
///
/// Typical use by a runner:
///
/// ```ignore
/// dispatcher.new_dispatch(target, spawn_rate, None)?;
/// while let Some(distribution) = dispatcher.next_iteration() {
///     apply(&distribution).await;
///     tokio::time::sleep(dispatcher.delay_before_next()).await;
/// }
/// ```
#[derive(Debug, Clone)]
pub struct UsersDispatcher {
    /// All user classes, sorted by name; class indices refer to this list, so
    /// index order is name order.
    classes: Vec<UserClassSpec>,
    /// Classes used for dispatching (a shape tick may restrict them), sorted.
    active_classes: Vec<usize>,
    /// Worker ids in dispatch order (see the module docs).
    workers: Vec<Arc<str>>,
    /// The round-robin cycle; usually the same as `workers`, but Locust keeps
    /// cycling the old order when the last worker is removed.
    cycle: Vec<Arc<str>>,
    cycle_pos: usize,
    /// Current assignment, including users added by the iteration in flight.
    users: Distribution,
    /// Every placed user, oldest first; ramp-down pops from the end.
    active_users: Vec<(Arc<str>, usize)>,
    picker: UserPicker,
    /// Set initially, after every user removal and on rebalance: the next
    /// pick checks whether fixed-count users are missing.
    try_dispatch_fixed: bool,
    /// The user count the dispatch works from (Locust's
    /// `_current_user_count`; can exceed the placed users after a rebalance
    /// that could not place all of them, as in Locust).
    current_user_count: u32,
    target_user_count: u32,
    users_per_iteration: u32,
    interval: Duration,
    step: Step,
    /// When the ramp iteration last yielded started being computed.
    step_started: Option<Instant>,
    dispatch_in_progress: bool,
    rebalance: bool,
    no_user_to_spawn: bool,
}

impl UsersDispatcher {
    /// Creates a dispatcher for the given workers and user classes.
    ///
    /// Duplicate worker ids are ignored. No dispatch is in progress until
    /// [`new_dispatch`](Self::new_dispatch) is called.
    ///
    /// # Panics
    ///
    /// If `classes` is empty or two classes share a name (Locust asserts the
    /// same).
    pub fn new(worker_ids: &[String], classes: &[UserClassSpec]) -> Self {
        assert!(
            !classes.is_empty(),
            "the users dispatcher needs at least one user class"
        );
        let mut classes = classes.to_vec();
        classes.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(
            classes.windows(2).all(|pair| pair[0].name != pair[1].name),
            "user class names must be unique"
        );
        let active_classes: Vec<usize> = (0..classes.len()).collect();

        let mut dispatcher = UsersDispatcher {
            picker: new_picker(&classes, &active_classes),
            classes,
            active_classes,
            workers: Vec::new(),
            cycle: Vec::new(),
            cycle_pos: 0,
            users: Distribution::new(),
            active_users: Vec::new(),
            try_dispatch_fixed: true,
            current_user_count: 0,
            target_user_count: 0,
            users_per_iteration: 1,
            interval: Duration::ZERO,
            step: Step::Finished,
            step_started: None,
            dispatch_in_progress: false,
            rebalance: false,
            no_user_to_spawn: false,
        };
        for id in worker_ids {
            if !dispatcher.has_worker(id) {
                dispatcher.workers.push(Arc::from(id.as_str()));
            }
        }
        sort_workers(&mut dispatcher.workers);
        dispatcher.cycle = dispatcher.workers.clone();
        dispatcher.users = dispatcher.zero_distribution();
        dispatcher
    }

    /// Starts a new dispatch (ramp) from the current user count to
    /// `target_user_count` at `spawn_rate` users per second, abandoning any
    /// dispatch still in progress.
    ///
    /// `class_subset` restricts the classes that get new users (a shape tick
    /// naming classes). As in Locust, `None` keeps the subset of the previous
    /// dispatch rather than resetting to all classes, and changing the subset
    /// restarts the weighted round robin.
    ///
    /// # Errors
    ///
    /// [`DispatchError::InvalidSpawnRate`] unless `spawn_rate` is a positive
    /// finite number, [`DispatchError::UnknownUserClass`] if `class_subset`
    /// names an unknown class. The dispatcher is left unchanged.
    pub fn new_dispatch(
        &mut self,
        target_user_count: u32,
        spawn_rate: f64,
        class_subset: Option<&[String]>,
    ) -> Result<(), DispatchError> {
        if !(spawn_rate.is_finite() && spawn_rate > 0.0) {
            return Err(DispatchError::InvalidSpawnRate(spawn_rate));
        }
        if let Some(subset) = class_subset {
            let mut indices = subset
                .iter()
                .map(|name| {
                    self.class_index(name)
                        .ok_or_else(|| DispatchError::UnknownUserClass(name.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            indices.sort_unstable();
            indices.dedup();
            if indices != self.active_classes {
                self.active_classes = indices;
                self.picker = new_picker(&self.classes, &self.active_classes);
            }
        }

        self.target_user_count = target_user_count;
        let per_iteration = spawn_rate.floor().max(1.0);
        // Saturating float-to-int cast: a rate beyond u32::MAX users per
        // second reaches any target in one iteration anyway.
        self.users_per_iteration = per_iteration as u32;
        self.interval =
            Duration::try_from_secs_f64(per_iteration / spawn_rate).unwrap_or(Duration::MAX);
        self.current_user_count = self.placed_user_count();
        self.step = Step::NotStarted;
        self.step_started = None;
        Ok(())
    }

    /// Computes the next iteration of the current dispatch and returns the
    /// complete distribution to apply, or `None` once the dispatch is over.
    ///
    /// When the target equals the current count, the current distribution is
    /// yielded once. A pending rebalance (worker added or removed) is yielded
    /// before the next ramp step.
    pub fn next_iteration(&mut self) -> Option<Distribution> {
        match self.step {
            Step::NotStarted => {
                self.dispatch_in_progress = true;
                if self.take_rebalance() {
                    self.step = Step::AfterStartRebalance;
                    return Some(self.users.clone());
                }
                self.start_ramp()
            }
            Step::AfterStartRebalance => {
                if self.current_user_count == self.target_user_count {
                    self.finish()
                } else {
                    self.start_ramp()
                }
            }
            Step::AfterUnchanged => self.finish(),
            Step::AfterRampUp => {
                if self.take_rebalance() {
                    self.step = Step::AfterRampUpRebalance;
                    return Some(self.users.clone());
                }
                self.continue_ramp_up()
            }
            Step::AfterRampUpRebalance => self.continue_ramp_up(),
            Step::AfterRampDown => {
                if self.take_rebalance() {
                    self.step = Step::AfterRampDownRebalance;
                    return Some(self.users.clone());
                }
                self.ramp_down()
            }
            Step::AfterRampDownRebalance => self.ramp_down(),
            Step::Finished => None,
        }
    }

    /// Time between the starts of two ramp iterations:
    /// `max(1, floor(spawn_rate)) / spawn_rate` of the current dispatch.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long to wait before calling [`next_iteration`](Self::next_iteration)
    /// again: the [`interval`](Self::interval) minus the time spent since the
    /// last ramp iteration started being computed (so time spent applying it,
    /// e.g. sending spawn messages, counts), or zero when Locust would not
    /// sleep: after the last ramp iteration, before a pending rebalance and
    /// outside ramps.
    pub fn delay_before_next(&self) -> Duration {
        let elapsed = self.step_started.map_or(Duration::ZERO, |t| t.elapsed());
        self.delay_after(elapsed)
    }

    /// [`delay_before_next`](Self::delay_before_next) for a given time spent
    /// on the current iteration.
    fn delay_after(&self, elapsed: Duration) -> Duration {
        let ramping = match self.step {
            // A rebalance flagged meanwhile is yielded before Locust sleeps.
            Step::AfterRampUp | Step::AfterRampDown => !self.rebalance,
            Step::AfterRampUpRebalance | Step::AfterRampDownRebalance => true,
            _ => false,
        };
        if ramping && self.current_user_count != self.target_user_count {
            self.interval.saturating_sub(elapsed)
        } else {
            Duration::ZERO
        }
    }

    /// Adds a worker (e.g. a worker connected) and redistributes the current
    /// users over the new worker set; the next iteration yields the result at
    /// once. Adding a known worker only triggers the redistribution.
    pub fn add_worker(&mut self, id: &str) {
        if !self.has_worker(id) {
            self.workers.push(Arc::from(id));
            sort_workers(&mut self.workers);
        }
        self.prepare_rebalance();
    }

    /// Removes a worker (e.g. it quit or went missing) and redistributes the
    /// current users over the remaining workers; the next iteration yields
    /// the result at once.
    ///
    /// Removing the last worker leaves the distribution untouched, as Locust
    /// does; adding a worker later redistributes everything onto it.
    pub fn remove_worker(&mut self, id: &str) {
        self.workers.retain(|worker| &**worker != id);
        if self.workers.is_empty() {
            return;
        }
        self.prepare_rebalance();
    }

    /// The current distribution, including any rebalance not yet yielded.
    pub fn current_counts(&self) -> &Distribution {
        &self.users
    }

    /// Total number of users in [`current_counts`](Self::current_counts).
    pub fn user_count(&self) -> u32 {
        self.placed_user_count()
    }

    /// Whether a dispatch has started yielding and is not finished yet.
    ///
    /// A master uses this to decide whether a worker joining or leaving needs
    /// a new dispatch (when idle) or is picked up by the running one.
    pub fn dispatch_in_progress(&self) -> bool {
        self.dispatch_in_progress
    }

    /// Worker ids in dispatch order.
    pub fn workers(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.workers.iter().map(|worker| &**worker)
    }

    fn take_rebalance(&mut self) -> bool {
        std::mem::replace(&mut self.rebalance, false)
    }

    fn start_ramp(&mut self) -> Option<Distribution> {
        if self.current_user_count == self.target_user_count {
            self.step = Step::AfterUnchanged;
            return Some(self.users.clone());
        }
        self.ramp_up()
    }

    fn continue_ramp_up(&mut self) -> Option<Distribution> {
        // Locust checks this flag only after the iteration that set it was
        // consumed (and it survives a new dispatch started in between).
        if std::mem::replace(&mut self.no_user_to_spawn, false) {
            return self.ramp_down();
        }
        self.ramp_up()
    }

    fn ramp_up(&mut self) -> Option<Distribution> {
        if self.current_user_count >= self.target_user_count {
            return self.ramp_down();
        }
        self.step_started = Some(Instant::now());
        self.add_users();
        self.step = Step::AfterRampUp;
        Some(self.users.clone())
    }

    fn ramp_down(&mut self) -> Option<Distribution> {
        if self.current_user_count <= self.target_user_count {
            return self.finish();
        }
        self.step_started = Some(Instant::now());
        self.remove_users();
        self.step = Step::AfterRampDown;
        Some(self.users.clone())
    }

    fn finish(&mut self) -> Option<Distribution> {
        self.dispatch_in_progress = false;
        self.step = Step::Finished;
        self.step_started = None;
        None
    }

    /// One ramp-up iteration: adds users one at a time until this
    /// iteration's share is placed or no class can provide a user.
    fn add_users(&mut self) {
        let iteration_target = self
            .current_user_count
            .saturating_add(self.users_per_iteration)
            .min(self.target_user_count);
        loop {
            if self.cycle.is_empty() {
                self.no_user_to_spawn = true;
                return;
            }
            let Some(class) = self.next_user_class() else {
                self.no_user_to_spawn = true;
                return;
            };
            let worker = self.next_worker();
            self.place_user(worker, class);
            self.current_user_count += 1;
            if self.current_user_count >= iteration_target {
                return;
            }
        }
    }

    /// One ramp-down iteration: removes the newest users first.
    fn remove_users(&mut self) {
        let iteration_target = self
            .current_user_count
            .saturating_sub(self.users_per_iteration)
            .max(self.target_user_count);
        loop {
            let Some((worker, class)) = self.active_users.pop() else {
                // Nothing left to remove: Locust would loop forever here, so
                // settle on what is actually placed (which ends the ramp).
                self.current_user_count = self.placed_user_count();
                return;
            };
            if let Some(count) = self
                .users
                .get_mut(&*worker)
                .and_then(|counts| counts.get_mut(&self.classes[class].name))
            {
                *count = count.saturating_sub(1);
            }
            self.current_user_count = self.current_user_count.saturating_sub(1);
            // A removed user may have been a fixed one that must come back
            // first on the next ramp-up.
            self.try_dispatch_fixed = true;
            if self.current_user_count == 0 || self.current_user_count <= iteration_target {
                return;
            }
        }
    }

    /// Locust's `_user_gen`: missing fixed-count users first (checked only
    /// when flagged), then the weighted round robin. `None` when no class
    /// can provide a user.
    fn next_user_class(&mut self) -> Option<usize> {
        loop {
            if let Some(pending) = &mut self.picker.pending_fixed {
                if pending.remaining > 0 {
                    pending.remaining -= 1;
                    return pending.generator.next();
                }
                self.picker.pending_fixed = None;
            }
            if !self.try_dispatch_fixed {
                return self.picker.weighted.next();
            }
            self.try_dispatch_fixed = false;
            let totals = self.class_totals();
            let missing: Vec<(usize, u32)> = self
                .active_classes
                .iter()
                .map(|&class| (class, &self.classes[class]))
                .filter(|(_, spec)| spec.fixed_count > 0)
                .filter_map(|(class, spec)| {
                    let current = totals.get(spec.name.as_str()).copied().unwrap_or(0);
                    let miss = spec.fixed_count.saturating_sub(current);
                    (miss > 0).then_some((class, miss))
                })
                .collect();
            let remaining = missing.iter().map(|&(_, miss)| miss).sum();
            self.picker.pending_fixed = Some(PendingFixed {
                generator: KlGenerator::new(
                    missing
                        .into_iter()
                        .map(|(class, miss)| (class, f64::from(miss))),
                ),
                remaining,
            });
        }
    }

    fn next_worker(&mut self) -> Arc<str> {
        let worker = Arc::clone(&self.cycle[self.cycle_pos % self.cycle.len()]);
        self.cycle_pos = (self.cycle_pos + 1) % self.cycle.len();
        worker
    }

    fn place_user(&mut self, worker: Arc<str>, class: usize) {
        let name = &self.classes[class].name;
        if !self.users.contains_key(&*worker) {
            let zeros = self.zero_counts();
            self.users.insert(worker.to_string(), zeros);
        }
        if let Some(count) = self
            .users
            .get_mut(&*worker)
            .and_then(|counts| counts.get_mut(name))
        {
            *count += 1;
        }
        self.active_users.push((worker, class));
    }

    /// Locust's `_prepare_rebalance`: distributes the current user count over
    /// the current workers as if ramping up from zero (fixed users first,
    /// fresh generators and worker cycle), and flags the result for the next
    /// iteration. Later iterations continue from the generators' state.
    fn prepare_rebalance(&mut self) {
        self.users = self.zero_distribution();
        self.active_users.clear();
        self.try_dispatch_fixed = true;
        self.picker = new_picker(&self.classes, &self.active_classes);
        self.cycle = self.workers.clone();
        self.cycle_pos = 0;
        // Filling `self.users` directly is equivalent to Locust's separate
        // map: its fixed-count check runs only on the first pick, while
        // everything is still zero.
        let mut placed = 0;
        while placed < self.current_user_count {
            let Some(class) = self.next_user_class() else {
                break;
            };
            let worker = self.next_worker();
            self.place_user(worker, class);
            placed += 1;
        }
        self.rebalance = true;
    }

    fn has_worker(&self, id: &str) -> bool {
        self.workers.iter().any(|worker| &**worker == id)
    }

    fn class_index(&self, name: &str) -> Option<usize> {
        self.classes
            .binary_search_by(|spec| spec.name.as_str().cmp(name))
            .ok()
    }

    fn zero_counts(&self) -> ClassCounts {
        self.classes
            .iter()
            .map(|spec| (spec.name.clone(), 0))
            .collect()
    }

    fn zero_distribution(&self) -> Distribution {
        let zeros = self.zero_counts();
        self.workers
            .iter()
            .map(|worker| (worker.to_string(), zeros.clone()))
            .collect()
    }

    fn class_totals(&self) -> HashMap<&str, u32> {
        let mut totals = HashMap::new();
        for counts in self.users.values() {
            for (name, count) in counts {
                *totals.entry(name.as_str()).or_insert(0) += count;
            }
        }
        totals
    }

    fn placed_user_count(&self) -> u32 {
        self.users
            .values()
            .flat_map(|counts| counts.values())
            .fold(0u32, |total, &count| total.saturating_add(count))
    }
}

/// A fresh user picker over `active` classes: the weighted round robin covers
/// the classes without a fixed count.
fn new_picker(classes: &[UserClassSpec], active: &[usize]) -> UserPicker {
    UserPicker {
        weighted: KlGenerator::new(
            active
                .iter()
                .filter(|&&class| classes[class].fixed_count == 0)
                .map(|&class| (class, classes[class].weight)),
        ),
        pending_fixed: None,
    }
}

/// Orders workers so that users spread across hosts first: number workers
/// within their host (the id up to the first `_`) in id order, then sort by
/// (index within host, id).
fn sort_workers(workers: &mut [Arc<str>]) {
    workers.sort();
    let mut keyed: Vec<(usize, Arc<str>)> = {
        let mut per_host: HashMap<&str, usize> = HashMap::new();
        workers
            .iter()
            .map(|worker| {
                let host = worker.split('_').next().unwrap_or_default();
                let index = per_host.entry(host).or_insert(0);
                let key = (*index, Arc::clone(worker));
                *index += 1;
                key
            })
            .collect()
    };
    keyed.sort();
    for (slot, (_, worker)) in workers.iter_mut().zip(keyed) {
        *slot = worker;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(ToString::to_string).collect()
    }

    fn weighted(name: &str, weight: f64) -> UserClassSpec {
        UserClassSpec {
            name: name.to_string(),
            weight,
            fixed_count: 0,
        }
    }

    fn fixed(name: &str, fixed_count: u32) -> UserClassSpec {
        UserClassSpec {
            name: name.to_string(),
            weight: 1.0,
            fixed_count,
        }
    }

    fn kl_sequence(items: &[(&str, f64)], len: usize) -> String {
        KlGenerator::new(items.iter().map(|&(name, weight)| (name, weight)))
            .take(len)
            .collect()
    }

    /// `worker:count,count,…` per worker in id order, counts in class-name order.
    fn format_distribution(distribution: &Distribution) -> String {
        distribution
            .iter()
            .map(|(worker, counts)| {
                let counts: Vec<String> = counts.values().map(u32::to_string).collect();
                format!("{worker}:{}", counts.join(","))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs a script in the format the Locust comparison script used and
    /// returns the same transcript: `workers ID…` and `class NAME WEIGHT
    /// FIXED` set up the dispatcher, then `dispatch TARGET RATE SUBSET` (`-`
    /// for none), `take N`, `drain`, `add ID` and `remove ID` are echoed as
    /// `# …` and each iteration prints its distribution and
    /// `dispatch_in_progress`.
    fn run_script(script: &str) -> Vec<String> {
        let mut workers = Vec::new();
        let mut classes = Vec::new();
        let mut dispatcher: Option<UsersDispatcher> = None;
        let mut transcript = Vec::new();
        let step = |dispatcher: &mut UsersDispatcher, transcript: &mut Vec<String>| {
            let in_progress = |d: &UsersDispatcher| u8::from(d.dispatch_in_progress());
            match dispatcher.next_iteration() {
                Some(distribution) => {
                    transcript.push(format!(
                        "{} ip={}",
                        format_distribution(&distribution),
                        in_progress(dispatcher)
                    ));
                    true
                }
                None => {
                    transcript.push(format!("END ip={}", in_progress(dispatcher)));
                    false
                }
            }
        };
        for line in script
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[0] {
                "workers" => {
                    workers = ids(&words[1..]);
                    continue;
                }
                "class" => {
                    classes.push(UserClassSpec {
                        name: words[1].to_string(),
                        weight: words[2].parse().unwrap(),
                        fixed_count: words[3].parse().unwrap(),
                    });
                    continue;
                }
                _ => {}
            }
            let dispatcher =
                dispatcher.get_or_insert_with(|| UsersDispatcher::new(&workers, &classes));
            transcript.push(format!("# {line}"));
            match words[0] {
                "dispatch" => {
                    let subset: Option<Vec<String>> =
                        (words[3] != "-").then(|| words[3].split(',').map(String::from).collect());
                    dispatcher
                        .new_dispatch(
                            words[1].parse().unwrap(),
                            words[2].parse().unwrap(),
                            subset.as_deref(),
                        )
                        .unwrap();
                }
                "take" => {
                    for _ in 0..words[1].parse::<usize>().unwrap() {
                        if !step(dispatcher, &mut transcript) {
                            break;
                        }
                    }
                }
                "drain" => {
                    let mut finished = false;
                    for _ in 0..10_000 {
                        if !step(dispatcher, &mut transcript) {
                            finished = true;
                            break;
                        }
                    }
                    assert!(finished, "dispatch did not finish");
                }
                "add" => dispatcher.add_worker(words[1]),
                "remove" => dispatcher.remove_worker(words[1]),
                other => panic!("unknown script command {other:?}"),
            }
        }
        transcript
    }

    fn check_script(script: &str, expected: &str) {
        let expected: Vec<&str> = expected
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        assert_eq!(run_script(script), expected);
    }

    fn drain(dispatcher: &mut UsersDispatcher) -> Vec<Distribution> {
        let mut iterations = Vec::new();
        while let Some(distribution) = dispatcher.next_iteration() {
            iterations.push(distribution);
            assert!(iterations.len() < 100_000, "dispatch did not finish");
        }
        iterations
    }

    fn counts(pairs: &[(&str, u32)]) -> ClassCounts {
        pairs
            .iter()
            .map(|&(name, count)| (name.to_string(), count))
            .collect()
    }

    #[test]
    fn kl_generator_matches_locust_sequences() {
        assert_eq!(kl_sequence(&[("A", 5.0), ("B", 1.0)], 12), "AABAAAAABAAA");
        assert_eq!(kl_sequence(&[("O", 2.0), ("W", 1.0)], 9), "OWOOWOOWO");
        assert_eq!(
            kl_sequence(&[("A", 1.0), ("B", 1.0), ("C", 1.0)], 9),
            "ABCABCABC"
        );
        assert_eq!(
            kl_sequence(&[("A", 3.0), ("B", 2.0), ("C", 1.0)], 12),
            "ABCABAABCABA"
        );
        // Printed by Locust's `_kl_generator` as well.
        assert_eq!(
            kl_sequence(&[("A", 0.5), ("B", 1.5), ("C", 0.25)], 16),
            "BABCBBABBBABBCBA"
        );
        assert_eq!(
            kl_sequence(&[("X", 7.0), ("Y", 3.0), ("Z", 3.0)], 13),
            "XYZXXYZXXXYZX"
        );
    }

    #[test]
    fn kl_generator_drops_unusable_weights() {
        assert_eq!(kl_sequence(&[("A", 0.0), ("B", 2.0)], 3), "BBB");
        assert_eq!(
            kl_sequence(
                &[
                    ("A", -1.0),
                    ("B", f64::NAN),
                    ("C", f64::INFINITY),
                    ("D", 1.0)
                ],
                2
            ),
            "DD"
        );
        let mut empty = KlGenerator::new([("A", 0.0)]);
        assert_eq!(empty.next(), None);
        assert_eq!(empty.next(), None);
    }

    #[test]
    fn workers_are_ordered_across_hosts_first() {
        let dispatcher = UsersDispatcher::new(
            &ids(&["hostB_2", "hostA_1", "hostA_0", "hostB_9"]),
            &[weighted("A", 1.0)],
        );
        let order: Vec<&str> = dispatcher.workers().collect();
        assert_eq!(order, ["hostA_0", "hostB_2", "hostA_1", "hostB_9"]);

        // Ids without `_` are their own host; only the text before the first
        // `_` counts.
        let dispatcher = UsersDispatcher::new(
            &ids(&["b_1", "a_b_2", "a_b_1", "solo", "b_0", "x-y"]),
            &[weighted("A", 1.0)],
        );
        let order: Vec<&str> = dispatcher.workers().collect();
        assert_eq!(order, ["a_b_1", "b_0", "solo", "x-y", "a_b_2", "b_1"]);
    }

    #[test]
    fn reference_example_distribution() {
        let mut dispatcher = UsersDispatcher::new(
            &ids(&["hostB_2", "hostA_1", "hostA_0", "hostB_9"]),
            &[weighted("A", 3.0), weighted("B", 1.0), fixed("F", 2)],
        );
        dispatcher.new_dispatch(10, 100.0, None).unwrap();
        let iterations = drain(&mut dispatcher);
        assert_eq!(iterations.len(), 1);
        let expected: Distribution = [
            ("hostA_0", counts(&[("A", 2), ("B", 0), ("F", 1)])),
            ("hostB_2", counts(&[("A", 2), ("B", 0), ("F", 1)])),
            ("hostA_1", counts(&[("A", 2), ("B", 0), ("F", 0)])),
            ("hostB_9", counts(&[("A", 0), ("B", 2), ("F", 0)])),
        ]
        .into_iter()
        .map(|(worker, counts)| (worker.to_string(), counts))
        .collect();
        assert_eq!(iterations[0], expected);
        assert_eq!(dispatcher.current_counts(), &expected);
        assert_eq!(dispatcher.user_count(), 10);

        dispatcher.new_dispatch(4, 100.0, None).unwrap();
        let iterations = drain(&mut dispatcher);
        assert_eq!(iterations.len(), 1);
        let expected: Distribution = [
            ("hostA_0", counts(&[("A", 0), ("B", 0), ("F", 1)])),
            ("hostB_2", counts(&[("A", 0), ("B", 0), ("F", 1)])),
            ("hostA_1", counts(&[("A", 1), ("B", 0), ("F", 0)])),
            ("hostB_9", counts(&[("A", 0), ("B", 1), ("F", 0)])),
        ]
        .into_iter()
        .map(|(worker, counts)| (worker.to_string(), counts))
        .collect();
        assert_eq!(iterations[0], expected);
        assert_eq!(dispatcher.user_count(), 4);
    }

    #[test]
    fn local_ramp_follows_the_weighted_sequence() {
        let mut dispatcher =
            UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 5.0), weighted("B", 1.0)]);
        dispatcher.new_dispatch(12, 5.0, None).unwrap();
        let iterations = drain(&mut dispatcher);
        // AABAA | AAABA | AA
        let per_iteration: Vec<(u32, u32)> = iterations
            .iter()
            .map(|d| (d["local"]["A"], d["local"]["B"]))
            .collect();
        assert_eq!(per_iteration, [(4, 1), (8, 2), (10, 2)]);

        // One user per iteration: the running counts spell the sequence.
        let mut dispatcher =
            UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 5.0), weighted("B", 1.0)]);
        dispatcher.new_dispatch(12, 1.0, None).unwrap();
        let mut previous = (0, 0);
        let mut sequence = String::new();
        for distribution in drain(&mut dispatcher) {
            let current = (distribution["local"]["A"], distribution["local"]["B"]);
            sequence.push(if current.0 > previous.0 { 'A' } else { 'B' });
            previous = current;
        }
        assert_eq!(sequence, "AABAAAAABAAA");
    }

    #[test]
    fn ramp_down_removes_newest_users_first() {
        let mut dispatcher = UsersDispatcher::new(
            &ids(&["w1", "w2"]),
            &[weighted("A", 1.0), weighted("B", 1.0)],
        );
        // One user per iteration: A→w1, B→w2, A→w1, B→w2, A→w1.
        dispatcher.new_dispatch(5, 1.0, None).unwrap();
        drain(&mut dispatcher);
        dispatcher.new_dispatch(0, 1.0, None).unwrap();
        let removed: Vec<String> = drain(&mut dispatcher)
            .iter()
            .map(format_distribution)
            .collect();
        assert_eq!(
            removed,
            [
                "w1:2,0 w2:0,2",
                "w1:2,0 w2:0,1",
                "w1:1,0 w2:0,1",
                "w1:1,0 w2:0,0",
                "w1:0,0 w2:0,0",
            ]
        );
    }

    #[test]
    fn fixed_users_below_their_total() {
        let mut dispatcher = UsersDispatcher::new(
            &ids(&["local"]),
            &[fixed("F", 2), fixed("G", 3), weighted("A", 1.0)],
        );
        dispatcher.new_dispatch(4, 100.0, None).unwrap();
        drain(&mut dispatcher);
        // Σfixed = 5 > 4: only some fixed users run, interleaved 3:2 by the
        // KL generator over the missing counts (G F G F …), no weighted user.
        assert_eq!(
            format_distribution(dispatcher.current_counts()),
            "local:0,2,2"
        );
        // The missing G comes first on the next ramp-up, then weighted users.
        dispatcher.new_dispatch(7, 100.0, None).unwrap();
        drain(&mut dispatcher);
        assert_eq!(
            format_distribution(dispatcher.current_counts()),
            "local:2,2,3"
        );
    }

    #[test]
    fn iteration_counts_follow_the_spawn_rate() {
        let mut dispatcher = UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 1.0)]);
        let mut iterations = |target, rate| {
            dispatcher.new_dispatch(target, rate, None).unwrap();
            drain(&mut dispatcher).len()
        };
        assert_eq!(iterations(10, 0.5), 10);
        assert_eq!(iterations(20, 2.5), 5);
        assert_eq!(iterations(0, 2.5), 10);
        assert_eq!(iterations(250, 100.0), 3);
        assert_eq!(iterations(250, 100.0), 1); // unchanged: yielded once
        assert_eq!(iterations(0, 1000.0), 1);
    }

    #[test]
    fn interval_between_iterations() {
        let mut dispatcher = UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 1.0)]);
        for (rate, expected_ms) in [
            (0.5, 2000),
            (2.5, 800),
            (100.0, 1000),
            (1.0, 1000),
            (3.0, 1000),
        ] {
            dispatcher.new_dispatch(10, rate, None).unwrap();
            assert_eq!(
                dispatcher.interval(),
                Duration::from_millis(expected_ms),
                "{rate}"
            );
        }
        dispatcher.new_dispatch(10, 0.3, None).unwrap();
        assert!((dispatcher.interval().as_secs_f64() - 1.0 / 0.3).abs() < 1e-9);
    }

    #[test]
    fn delay_is_the_rest_of_the_interval_except_after_the_last_step() {
        let mut dispatcher = UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 1.0)]);
        dispatcher.new_dispatch(3, 0.5, None).unwrap();
        assert_eq!(dispatcher.delay_before_next(), Duration::ZERO);
        let spent = Duration::from_millis(300);

        dispatcher.next_iteration().unwrap();
        assert_eq!(dispatcher.delay_after(spent), Duration::from_millis(1700));
        assert_eq!(
            dispatcher.delay_after(Duration::from_secs(5)),
            Duration::ZERO
        );
        let real = dispatcher.delay_before_next();
        assert!(
            real <= Duration::from_secs(2) && real > Duration::from_secs(1),
            "{real:?}"
        );

        dispatcher.next_iteration().unwrap();
        assert_eq!(dispatcher.delay_after(spent), Duration::from_millis(1700));
        dispatcher.next_iteration().unwrap();
        // Target reached: no wait before the call that ends the dispatch.
        assert_eq!(dispatcher.delay_after(spent), Duration::ZERO);
        assert!(dispatcher.next_iteration().is_none());
        assert_eq!(dispatcher.delay_before_next(), Duration::ZERO);

        // Unchanged target: nothing to wait for either.
        dispatcher.new_dispatch(3, 0.5, None).unwrap();
        dispatcher.next_iteration().unwrap();
        assert_eq!(dispatcher.delay_after(spent), Duration::ZERO);
    }

    #[test]
    fn pending_rebalance_is_yielded_before_waiting() {
        let mut dispatcher = UsersDispatcher::new(&ids(&["a"]), &[weighted("A", 1.0)]);
        dispatcher.new_dispatch(4, 1.0, None).unwrap();
        dispatcher.next_iteration().unwrap();
        dispatcher.add_worker("b");
        // The rebalanced map is due at once…
        assert_eq!(dispatcher.delay_after(Duration::ZERO), Duration::ZERO);
        let rebalanced = dispatcher.next_iteration().unwrap();
        assert_eq!(format_distribution(&rebalanced), "a:1 b:0");
        // …and the wait for the ramp step comes after it.
        assert_eq!(
            dispatcher.delay_after(Duration::ZERO),
            Duration::from_secs(1)
        );
        let next = dispatcher.next_iteration().unwrap();
        assert_eq!(format_distribution(&next), "a:1 b:1");
    }

    #[test]
    fn dispatch_in_progress_tracks_the_ramp() {
        let mut dispatcher = UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 1.0)]);
        assert!(!dispatcher.dispatch_in_progress());
        assert!(dispatcher.next_iteration().is_none());
        dispatcher.new_dispatch(2, 1.0, None).unwrap();
        assert!(!dispatcher.dispatch_in_progress());
        dispatcher.next_iteration().unwrap();
        assert!(dispatcher.dispatch_in_progress());
        dispatcher.next_iteration().unwrap();
        assert!(dispatcher.dispatch_in_progress());
        assert!(dispatcher.next_iteration().is_none());
        assert!(!dispatcher.dispatch_in_progress());
        assert!(dispatcher.next_iteration().is_none());
    }

    #[test]
    fn invalid_dispatches_are_refused_without_side_effects() {
        let mut dispatcher = UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 1.0)]);
        dispatcher.new_dispatch(3, 10.0, None).unwrap();
        drain(&mut dispatcher);
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                dispatcher.new_dispatch(5, rate, None),
                Err(DispatchError::InvalidSpawnRate(_))
            ));
        }
        assert_eq!(
            dispatcher.new_dispatch(5, 1.0, Some(&ids(&["A", "Nope"]))),
            Err(DispatchError::UnknownUserClass("Nope".to_string()))
        );
        assert!(dispatcher.next_iteration().is_none());
        assert_eq!(dispatcher.user_count(), 3);
        assert_eq!(
            DispatchError::InvalidSpawnRate(0.0).to_string(),
            "spawn_rate must be a finite number > 0, got 0"
        );
    }

    #[test]
    fn add_and_remove_redistribute_the_current_users() {
        let mut dispatcher = UsersDispatcher::new(
            &ids(&["a_0", "b_0"]),
            &[weighted("A", 2.0), weighted("B", 1.0), fixed("F", 1)],
        );
        dispatcher.new_dispatch(9, 100.0, None).unwrap();
        drain(&mut dispatcher);
        assert_eq!(
            format_distribution(dispatcher.current_counts()),
            "a_0:2,2,1 b_0:3,1,0"
        );

        // Idle: the change shows in current_counts at once and is yielded by
        // the next dispatch (a master starts one when idle).
        dispatcher.add_worker("a_1");
        assert_eq!(
            format_distribution(dispatcher.current_counts()),
            "a_0:2,0,1 a_1:0,3,0 b_0:3,0,0"
        );
        dispatcher.new_dispatch(9, 100.0, None).unwrap();
        let iterations = drain(&mut dispatcher);
        assert_eq!(iterations.len(), 1);
        assert_eq!(&iterations[0], dispatcher.current_counts());

        dispatcher.remove_worker("a_0");
        assert_eq!(
            format_distribution(dispatcher.current_counts()),
            "a_1:3,1,0 b_0:2,2,1"
        );
        assert_eq!(dispatcher.user_count(), 9);
    }

    #[test]
    fn adding_a_known_worker_does_not_double_its_share() {
        // Locust would list "a" twice and give it 6 of 9 users.
        let mut dispatcher = UsersDispatcher::new(&ids(&["a", "b"]), &[weighted("A", 1.0)]);
        dispatcher.new_dispatch(9, 100.0, None).unwrap();
        drain(&mut dispatcher);
        dispatcher.add_worker("a");
        dispatcher.new_dispatch(9, 100.0, None).unwrap();
        let iterations = drain(&mut dispatcher);
        assert_eq!(format_distribution(&iterations[0]), "a:5 b:4");
        assert_eq!(dispatcher.workers().len(), 2);
    }

    #[test]
    fn no_workers_places_nobody() {
        let mut dispatcher = UsersDispatcher::new(&[], &[weighted("A", 1.0)]);
        dispatcher.new_dispatch(5, 100.0, None).unwrap();
        let iterations = drain(&mut dispatcher);
        assert_eq!(iterations, [Distribution::new()]);
        assert_eq!(dispatcher.user_count(), 0);
        dispatcher.add_worker("late");
        dispatcher.new_dispatch(2, 100.0, None).unwrap();
        let iterations = drain(&mut dispatcher);
        assert_eq!(format_distribution(iterations.last().unwrap()), "late:2");
    }

    #[test]
    #[should_panic(expected = "unique")]
    fn duplicate_class_names_are_rejected() {
        UsersDispatcher::new(&ids(&["local"]), &[weighted("A", 1.0), fixed("A", 1)]);
    }

    #[test]
    fn large_rebalance_keeps_the_totals() {
        let workers: Vec<String> = (0..50).map(|i| format!("host{}_{}", i % 5, i)).collect();
        let mut dispatcher = UsersDispatcher::new(
            &workers,
            &[weighted("A", 3.0), weighted("B", 1.0), fixed("F", 7)],
        );
        dispatcher.new_dispatch(100_000, 100_000.0, None).unwrap();
        assert_eq!(drain(&mut dispatcher).len(), 1);
        dispatcher.remove_worker("host3_13");
        let totals = dispatcher.class_totals();
        assert_eq!(totals["F"], 7);
        assert_eq!(totals["A"] + totals["B"], 100_000 - 7);
        assert_eq!(totals["A"], 74_995);
        assert_eq!(dispatcher.current_counts().len(), 49);
        // Round robin: every worker within one user of the others.
        let per_worker: Vec<u32> = dispatcher
            .current_counts()
            .values()
            .map(|counts| counts.values().sum())
            .collect();
        let (min, max) = (per_worker.iter().min(), per_worker.iter().max());
        assert!(max.unwrap() - min.unwrap() <= 1);
    }

    /// The verified example of the reference: host-aware worker order, fixed users first, then
    /// ramp-down to 4.
    #[test]
    fn locust_scenario_reference() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers hostB_2 hostA_1 hostA_0 hostB_9
            class A 3 0
            class B 1 0
            class F 1 2
            dispatch 10 100 -
            drain
            dispatch 4 100 -
            drain
            ",
            r"
            # dispatch 10 100 -
            # drain
            hostA_0:2,0,1 hostA_1:2,0,0 hostB_2:2,0,1 hostB_9:0,2,0 ip=1
            END ip=0
            # dispatch 4 100 -
            # drain
            hostA_0:0,0,1 hostA_1:1,0,0 hostB_2:0,0,1 hostB_9:0,1,0 ip=1
            END ip=0
            ",
        );
    }

    /// Local runner, weights 5:1 at spawn rate 5: the per-iteration counts follow AABAAAAABAAA; an
    /// unchanged target yields once; ramp-down is LIFO.
    #[test]
    fn locust_scenario_local51() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers local
            class A 5 0
            class B 1 0
            dispatch 12 5 -
            drain
            dispatch 12 5 -
            drain
            dispatch 3 2 -
            drain
            ",
            r"
            # dispatch 12 5 -
            # drain
            local:4,1 ip=1
            local:8,2 ip=1
            local:10,2 ip=1
            END ip=0
            # dispatch 12 5 -
            # drain
            local:10,2 ip=1
            END ip=0
            # dispatch 3 2 -
            # drain
            local:8,2 ip=1
            local:7,1 ip=1
            local:5,1 ip=1
            local:3,1 ip=1
            local:2,1 ip=1
            END ip=0
            ",
        );
    }

    /// Weights 3:2:1 one user per iteration: the counts follow ABCABAABCABA.
    #[test]
    fn locust_scenario_local321() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers local
            class C 1 0
            class B 2 0
            class A 3 0
            dispatch 12 1 -
            drain
            ",
            r"
            # dispatch 12 1 -
            # drain
            local:1,0,0 ip=1
            local:1,1,0 ip=1
            local:1,1,1 ip=1
            local:2,1,1 ip=1
            local:2,2,1 ip=1
            local:3,2,1 ip=1
            local:4,2,1 ip=1
            local:4,3,1 ip=1
            local:4,3,2 ip=1
            local:5,3,2 ip=1
            local:5,4,2 ip=1
            local:6,4,2 ip=1
            END ip=0
            ",
        );
    }

    /// Two fixed classes (Σfixed = 3) and two weighted ones: a target below Σfixed, ramps up and
    /// down, fixed users coming back first.
    #[test]
    fn locust_scenario_fixed() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers w1 w2 w3
            class F 1 2
            class G 1 1
            class A 1 0
            class B 2 0
            dispatch 2 1 -
            drain
            dispatch 10 3 -
            drain
            dispatch 1 2.5 -
            drain
            dispatch 6 4 -
            drain
            dispatch 0 100 -
            drain
            ",
            r"
            # dispatch 2 1 -
            # drain
            w1:0,0,1,0 w2:0,0,0,0 w3:0,0,0,0 ip=1
            w1:0,0,1,0 w2:0,0,0,1 w3:0,0,0,0 ip=1
            END ip=0
            # dispatch 10 3 -
            # drain
            w1:0,1,1,0 w2:1,0,0,1 w3:0,0,1,0 ip=1
            w1:0,2,1,0 w2:2,0,0,1 w3:0,1,1,0 ip=1
            w1:0,3,1,0 w2:2,0,0,1 w3:0,2,1,0 ip=1
            END ip=0
            # dispatch 1 2.5 -
            # drain
            w1:0,2,1,0 w2:2,0,0,1 w3:0,1,1,0 ip=1
            w1:0,1,1,0 w2:1,0,0,1 w3:0,1,1,0 ip=1
            w1:0,1,1,0 w2:0,0,0,1 w3:0,0,1,0 ip=1
            w1:0,0,1,0 w2:0,0,0,1 w3:0,0,0,0 ip=1
            w1:0,0,1,0 w2:0,0,0,0 w3:0,0,0,0 ip=1
            END ip=0
            # dispatch 6 4 -
            # drain
            w1:1,0,1,0 w2:0,1,1,0 w3:0,0,0,1 ip=1
            w1:1,0,1,0 w2:0,1,1,0 w3:0,1,0,1 ip=1
            END ip=0
            # dispatch 0 100 -
            # drain
            w1:0,0,0,0 w2:0,0,0,0 w3:0,0,0,0 ip=1
            END ip=0
            ",
        );
    }

    /// Only fixed classes: the ramp stops early (with a repeated map) when every fixed user runs.
    #[test]
    fn locust_scenario_fixedonly() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers local
            class F 1 3
            class G 1 2
            dispatch 10 2 -
            drain
            dispatch 2 1 -
            drain
            dispatch 4 1 -
            drain
            ",
            r"
            # dispatch 10 2 -
            # drain
            local:1,1 ip=1
            local:2,2 ip=1
            local:3,2 ip=1
            END ip=0
            # dispatch 2 1 -
            # drain
            local:2,2 ip=1
            local:2,1 ip=1
            local:1,1 ip=1
            END ip=0
            # dispatch 4 1 -
            # drain
            local:2,1 ip=1
            local:2,2 ip=1
            END ip=0
            ",
        );
    }

    /// Iteration counts for spawn rates 0.5 (1 user each), 2.5 (2 users each) and 100 (100 users
    /// each).
    #[test]
    fn locust_scenario_rates() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers local
            class A 1 0
            dispatch 10 0.5 -
            drain
            dispatch 0 2.5 -
            drain
            dispatch 250 100 -
            drain
            dispatch 5 100 -
            drain
            ",
            r"
            # dispatch 10 0.5 -
            # drain
            local:1 ip=1
            local:2 ip=1
            local:3 ip=1
            local:4 ip=1
            local:5 ip=1
            local:6 ip=1
            local:7 ip=1
            local:8 ip=1
            local:9 ip=1
            local:10 ip=1
            END ip=0
            # dispatch 0 2.5 -
            # drain
            local:8 ip=1
            local:6 ip=1
            local:4 ip=1
            local:2 ip=1
            local:0 ip=1
            END ip=0
            # dispatch 250 100 -
            # drain
            local:100 ip=1
            local:200 ip=1
            local:250 ip=1
            END ip=0
            # dispatch 5 100 -
            # drain
            local:150 ip=1
            local:50 ip=1
            local:5 ip=1
            END ip=0
            ",
        );
    }

    /// Workers joining and leaving during and between ramps.
    #[test]
    fn locust_scenario_addremove() {
        // Locust's output, except that Locust leaves `dispatch_in_progress` set (`END ip=1`)
        // after a dispatch that only yielded a rebalanced map; here it is cleared.
        check_script(
            r"
            workers hostA_0 hostB_0 hostA_1
            class A 2 0
            class B 1 0
            class F 1 1
            dispatch 20 3 -
            take 2
            add hostC_0
            take 2
            remove hostA_0
            drain
            dispatch 5 2 -
            take 1
            add hostA_0
            drain
            add hostB_1
            dispatch 5 2 -
            drain
            remove hostB_1
            dispatch 9 10 -
            drain
            ",
            r"
            # dispatch 20 3 -
            # take 2
            hostA_0:0,0,1 hostA_1:0,1,0 hostB_0:1,0,0 ip=1
            hostA_0:1,0,1 hostA_1:0,2,0 hostB_0:2,0,0 ip=1
            # add hostC_0
            # take 2
            hostA_0:1,0,1 hostA_1:1,0,0 hostB_0:1,1,0 hostC_0:0,1,0 ip=1
            hostA_0:1,1,1 hostA_1:2,0,0 hostB_0:1,1,0 hostC_0:1,1,0 ip=1
            # remove hostA_0
            # drain
            hostA_1:0,3,0 hostB_0:2,0,1 hostC_0:3,0,0 ip=1
            hostA_1:0,4,0 hostB_0:3,0,1 hostC_0:4,0,0 ip=1
            hostA_1:0,5,0 hostB_0:4,0,1 hostC_0:5,0,0 ip=1
            hostA_1:0,6,0 hostB_0:5,0,1 hostC_0:6,0,0 ip=1
            hostA_1:0,6,0 hostB_0:6,0,1 hostC_0:7,0,0 ip=1
            END ip=0
            # dispatch 5 2 -
            # take 1
            hostA_1:0,6,0 hostB_0:5,0,1 hostC_0:6,0,0 ip=1
            # add hostA_0
            # drain
            hostA_0:3,1,1 hostA_1:3,1,0 hostB_0:3,2,0 hostC_0:2,2,0 ip=1
            hostA_0:2,1,1 hostA_1:3,1,0 hostB_0:3,1,0 hostC_0:2,2,0 ip=1
            hostA_0:2,1,1 hostA_1:2,1,0 hostB_0:3,1,0 hostC_0:2,1,0 ip=1
            hostA_0:1,1,1 hostA_1:2,1,0 hostB_0:2,1,0 hostC_0:2,1,0 ip=1
            hostA_0:1,1,1 hostA_1:2,0,0 hostB_0:2,1,0 hostC_0:1,1,0 ip=1
            hostA_0:1,0,1 hostA_1:2,0,0 hostB_0:1,1,0 hostC_0:1,1,0 ip=1
            hostA_0:1,0,1 hostA_1:1,0,0 hostB_0:1,1,0 hostC_0:0,1,0 ip=1
            hostA_0:1,0,1 hostA_1:1,0,0 hostB_0:1,0,0 hostC_0:0,1,0 ip=1
            END ip=0
            # add hostB_1
            # dispatch 5 2 -
            # drain
            hostA_0:0,0,1 hostA_1:1,0,0 hostB_0:1,0,0 hostB_1:1,0,0 hostC_0:0,1,0 ip=1
            END ip=0
            # remove hostB_1
            # dispatch 9 10 -
            # drain
            hostA_0:1,0,1 hostA_1:1,0,0 hostB_0:1,0,0 hostC_0:0,1,0 ip=1
            hostA_0:1,1,1 hostA_1:2,0,0 hostB_0:1,1,0 hostC_0:1,1,0 ip=1
            END ip=0
            ",
        );
    }

    /// Class subsets from shape ticks; `None` keeps the previous subset, and a fixed class is never
    /// dispatched because the fixed check already ran while it was excluded.
    #[test]
    fn locust_scenario_subset() {
        // Locust's output, except that Locust leaves `dispatch_in_progress` set (`END ip=1`)
        // after a dispatch that only yielded a rebalanced map; here it is cleared.
        check_script(
            r"
            workers a_1 b_1
            class A 1 0
            class B 1 0
            class C 2 0
            class F 1 1
            dispatch 6 100 A,C
            drain
            dispatch 10 100 B
            drain
            dispatch 12 100 -
            drain
            dispatch 12 100 A,B,C,F
            drain
            dispatch 16 100 -
            drain
            add c_1
            dispatch 16 100 C
            drain
            ",
            r"
            # dispatch 6 100 A,C
            # drain
            a_1:1,0,2,0 b_1:1,0,2,0 ip=1
            END ip=0
            # dispatch 10 100 B
            # drain
            a_1:1,2,2,0 b_1:1,2,2,0 ip=1
            END ip=0
            # dispatch 12 100 -
            # drain
            a_1:1,3,2,0 b_1:1,3,2,0 ip=1
            END ip=0
            # dispatch 12 100 A,B,C,F
            # drain
            a_1:1,3,2,0 b_1:1,3,2,0 ip=1
            END ip=0
            # dispatch 16 100 -
            # drain
            a_1:1,4,3,0 b_1:2,3,3,0 ip=1
            END ip=0
            # add c_1
            # dispatch 16 100 C
            # drain
            a_1:1,2,2,1 b_1:1,1,3,0 c_1:2,1,2,0 ip=1
            END ip=0
            ",
        );
    }

    /// A class with weight 0 never gets users.
    #[test]
    fn locust_scenario_zeroweight() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers local
            class A 0 0
            class B 1 0
            dispatch 3 100 -
            drain
            ",
            r"
            # dispatch 3 100 -
            # drain
            local:0,3 ip=1
            END ip=0
            ",
        );
    }

    /// No weighted class: once the fixed users run, the ramp ends early after repeating the map.
    #[test]
    fn locust_scenario_noweighted() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers w
            class F 1 2
            dispatch 5 1 -
            drain
            dispatch 1 1 -
            drain
            ",
            r"
            # dispatch 5 1 -
            # drain
            w:1 ip=1
            w:2 ip=1
            w:2 ip=1
            END ip=0
            # dispatch 1 1 -
            # drain
            w:1 ip=1
            END ip=0
            ",
        );
    }

    /// Removing the last worker keeps the old distribution and cycle; adding a worker moves
    /// everything onto it.
    #[test]
    fn locust_scenario_remove_to_zero() {
        // Locust's output, except that Locust leaves `dispatch_in_progress` set (`END ip=1`)
        // after a dispatch that only yielded a rebalanced map; here it is cleared.
        check_script(
            r"
            workers x_0 y_0
            class A 1 0
            dispatch 4 100 -
            drain
            remove x_0
            remove y_0
            dispatch 6 100 -
            drain
            add z_0
            dispatch 6 100 -
            drain
            ",
            r"
            # dispatch 4 100 -
            # drain
            x_0:2 y_0:2 ip=1
            END ip=0
            # remove x_0
            # remove y_0
            # dispatch 6 100 -
            # drain
            y_0:4 ip=1
            y_0:6 ip=1
            END ip=0
            # add z_0
            # dispatch 6 100 -
            # drain
            z_0:6 ip=1
            END ip=0
            ",
        );
    }

    /// Rebalances flagged in the middle of ramp-downs and ramp-ups are yielded right after the next
    /// ramp step.
    #[test]
    fn locust_scenario_rebalance_midramp() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers p q
            class A 1 0
            class B 1 0
            dispatch 8 100 -
            drain
            dispatch 2 2 -
            take 1
            add r
            take 1
            remove p
            drain
            dispatch 7 2.5 -
            take 1
            add p
            drain
            ",
            r"
            # dispatch 8 100 -
            # drain
            p:4,0 q:0,4 ip=1
            END ip=0
            # dispatch 2 2 -
            # take 1
            p:3,0 q:0,3 ip=1
            # add r
            # take 1
            p:1,1 q:1,1 r:1,1 ip=1
            # remove p
            # drain
            q:2,0 r:0,2 ip=1
            q:2,0 r:0,2 ip=1
            q:1,0 r:0,1 ip=1
            END ip=0
            # dispatch 7 2.5 -
            # take 1
            q:2,0 r:0,2 ip=1
            # add p
            # drain
            p:1,1 q:0,1 r:1,0 ip=1
            p:1,1 q:1,1 r:1,1 ip=1
            p:2,1 q:1,1 r:1,1 ip=1
            END ip=0
            ",
        );
    }

    /// A new dispatch abandoning the previous one mid-ramp continues from the users already placed.
    #[test]
    fn locust_scenario_restart_midramp() {
        // Expected output printed by Locust 2.47's UsersDispatcher for the same script.
        check_script(
            r"
            workers m_0 m_1 n_0
            class A 3 0
            class B 1 0
            class F 1 2
            dispatch 30 4 -
            take 2
            dispatch 5 3 -
            take 1
            dispatch 12 2 -
            drain
            ",
            r"
            # dispatch 30 4 -
            # take 2
            m_0:0,1,1 m_1:1,0,0 n_0:0,0,1 ip=1
            m_0:1,1,1 m_1:2,0,0 n_0:1,1,1 ip=1
            # dispatch 5 3 -
            # take 1
            m_0:0,1,1 m_1:1,0,0 n_0:1,0,1 ip=1
            # dispatch 12 2 -
            # drain
            m_0:1,1,1 m_1:2,0,0 n_0:1,0,1 ip=1
            m_0:1,1,1 m_1:2,1,0 n_0:2,0,1 ip=1
            m_0:2,1,1 m_1:2,1,0 n_0:3,0,1 ip=1
            m_0:2,1,1 m_1:3,1,0 n_0:3,0,1 ip=1
            END ip=0
            ",
        );
    }

    /// A rebalance with a fixed-only subset cannot place every user, so the ramp-down runs out of
    /// users to remove.
    #[test]
    fn locust_scenario_hang() {
        // Locust's output up to the final `drain`, where Locust yields the empty map
        // forever; here the ramp-down ends once no user is left to remove.
        check_script(
            r"
            workers p
            class A 1 0
            class F 1 2
            dispatch 10 100 A
            drain
            dispatch 10 100 F
            drain
            dispatch 4 1 -
            take 1
            add q
            take 4
            drain
            ",
            r"
            # dispatch 10 100 A
            # drain
            p:10,0 ip=1
            END ip=0
            # dispatch 10 100 F
            # drain
            p:10,0 ip=1
            END ip=0
            # dispatch 4 1 -
            # take 1
            p:9,0 ip=1
            # add q
            # take 4
            p:0,1 q:0,1 ip=1
            p:0,1 q:0,0 ip=1
            p:0,0 q:0,0 ip=1
            p:0,0 q:0,0 ip=1
            # drain
            END ip=0
            ",
        );
    }
}
