//! Rendezvous: hold users at a point until enough of them are there, then release them
//! together (LoadRunner's rendezvous point; Locust's semaphore recipe).
//!
//! ```no_run
//! # async fn demo() {
//! use hopper_core::rendezvous::Rendezvous;
//! use std::sync::LazyLock;
//! use std::time::Duration;
//!
//! // Every spawned user, once the ramp is complete; give up after 60 s.
//! static START: LazyLock<Rendezvous> =
//!     LazyLock::new(|| Rendezvous::all_users().timeout(Duration::from_secs(60)));
//!
//! // in on_start:
//! START.wait().await.ok();
//! # }
//! ```
//!
//! A rendezvous releases a *group*: the users that arrived since the last release. It is
//! reusable: the next arrival opens a new group. [`Rendezvous::new`] releases a group of `n`
//! users; [`Rendezvous::all_users`] releases when the ramp is complete and every live user
//! of this process has arrived (users that stop meanwhile no longer count). With a timeout,
//! a group still short when the timeout has passed since its first arrival is released
//! anyway, and every member learns it from [`TimedOut`]. A user stopped while waiting
//! leaves the group.
//!
//! In master/worker mode "all users" means the users of this worker process.

use crate::population;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How many users a group needs.
#[derive(Debug, Clone, Copy)]
enum Quorum {
    Count(usize),
    AllUsers,
}

#[derive(Debug)]
struct Group {
    arrived: usize,
    /// First arrival of the current group, for the timeout.
    opened: Option<Instant>,
    /// Set once when the current group is released; its waiters hold a clone.
    outcome: Arc<OnceLock<Result<Released, TimedOut>>>,
}

/// A rendezvous point; share it between users (a `static`, or an `Arc` in their state).
#[derive(Debug, Clone)]
pub struct Rendezvous {
    quorum: Quorum,
    timeout: Option<Duration>,
    group: Arc<Mutex<Group>>,
    released: Arc<watch::Sender<u64>>,
}

/// The group was released complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Users released together.
    pub users: usize,
}

/// The timeout passed before the group was complete; the group was released anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    /// Users that had arrived.
    pub arrived: usize,
    /// Users the group was waiting for (for `all_users`, the live users at that moment).
    pub expected: usize,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rendezvous timed out with {} of {} users",
            self.arrived, self.expected
        )
    }
}

impl std::error::Error for TimedOut {}

impl Rendezvous {
    /// Releases users in groups of `users` (at least 1).
    pub fn new(users: usize) -> Rendezvous {
        Rendezvous::with_quorum(Quorum::Count(users.max(1)))
    }

    /// Releases once the ramp is complete and every live user of this process is waiting.
    pub fn all_users() -> Rendezvous {
        Rendezvous::with_quorum(Quorum::AllUsers)
    }

    fn with_quorum(quorum: Quorum) -> Rendezvous {
        Rendezvous {
            quorum,
            timeout: None,
            group: Arc::new(Mutex::new(Group {
                arrived: 0,
                opened: None,
                outcome: Arc::new(OnceLock::new()),
            })),
            released: Arc::new(watch::channel(0).0),
        }
    }

    /// Releases an incomplete group this long after its first user arrived.
    pub fn timeout(mut self, timeout: Duration) -> Rendezvous {
        self.timeout = Some(timeout);
        self
    }

    /// Users waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().arrived
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expected(&self) -> Option<usize> {
        match self.quorum {
            Quorum::Count(n) => Some(n),
            Quorum::AllUsers => population::spawning_complete().then(population::live_users),
        }
    }

    /// Releases the current group if it is complete or late.
    fn try_release(&self, group: &mut Group) {
        if group.arrived == 0 {
            return;
        }
        let expected = self.expected();
        let complete = expected.is_some_and(|n| group.arrived >= n);
        let late = match (self.timeout, group.opened) {
            (Some(t), Some(opened)) => opened.elapsed() >= t,
            _ => false,
        };
        if !complete && !late {
            return;
        }
        let outcome = if complete {
            Ok(Released {
                users: group.arrived,
            })
        } else {
            let timed_out = TimedOut {
                arrived: group.arrived,
                expected: expected.unwrap_or_else(population::live_users),
            };
            tracing::warn!(target: "hopper.rendezvous", "Rendezvous released after its timeout with {} of {} users", timed_out.arrived, timed_out.expected);
            Err(timed_out)
        };
        let _ = group.outcome.set(outcome);
        group.outcome = Arc::new(OnceLock::new());
        group.arrived = 0;
        group.opened = None;
        self.released.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits here until the group is released. `Err` when it was released by the timeout.
    pub async fn wait(&self) -> Result<Released, TimedOut> {
        let mut released = self.released.subscribe();
        let mut population = population::subscribe();
        let outcome = {
            let mut group = self.lock();
            group.arrived += 1;
            group.opened.get_or_insert_with(Instant::now);
            let outcome = group.outcome.clone();
            self.try_release(&mut group);
            outcome
        };
        // Leaves the group if this user is dropped (stopped) before the release.
        let _seat = Seat {
            rendezvous: self,
            outcome: outcome.clone(),
        };
        loop {
            let deadline = {
                let mut group = self.lock();
                if Arc::ptr_eq(&group.outcome, &outcome) {
                    self.try_release(&mut group);
                }
                if let Some(result) = outcome.get() {
                    return *result;
                }
                self.timeout.zip(group.opened).map(|(t, opened)| opened + t)
            };
            tokio::select! {
                _ = released.changed() => {}
                _ = population.changed() => {}
                _ = sleep_until(deadline) => {}
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A waiting user's place in its group.
struct Seat<'a> {
    rendezvous: &'a Rendezvous,
    outcome: Arc<OnceLock<Result<Released, TimedOut>>>,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        if self.outcome.get().is_some() {
            return;
        }
        let mut group = self.rendezvous.lock();
        if Arc::ptr_eq(&group.outcome, &self.outcome) && group.arrived > 0 {
            group.arrived -= 1;
            if group.arrived == 0 {
                group.opened = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_group_of_n_is_released_together_and_the_next_group_opens() {
        runtime().block_on(async {
            let r = Rendezvous::new(3);
            let mut first = Vec::new();
            for _ in 0..2 {
                let r = r.clone();
                first.push(tokio::spawn(async move { r.wait().await }));
            }
            tokio::task::yield_now().await;
            assert_eq!(r.waiting(), 2);
            assert!(first.iter().all(|h| !h.is_finished()));
            // The third arrival completes the group: nobody waits.
            assert_eq!(r.wait().await, Ok(Released { users: 3 }));
            for h in first {
                assert_eq!(h.await.unwrap(), Ok(Released { users: 3 }));
            }
            assert_eq!(r.waiting(), 0);
        });
    }

    #[test]
    fn a_short_group_is_released_by_its_timeout() {
        runtime().block_on(async {
            let r = Rendezvous::new(5).timeout(Duration::from_millis(50));
            let other = {
                let r = r.clone();
                tokio::spawn(async move { r.wait().await })
            };
            let mine = r.wait().await;
            let expected = TimedOut {
                arrived: 2,
                expected: 5,
            };
            assert_eq!(mine, Err(expected));
            assert_eq!(other.await.unwrap(), Err(expected));
            assert_eq!(
                expected.to_string(),
                "rendezvous timed out with 2 of 5 users"
            );
        });
    }

    #[test]
    fn a_user_stopped_while_waiting_leaves_the_group() {
        runtime().block_on(async {
            let r = Rendezvous::new(2);
            let gone = {
                let r = r.clone();
                tokio::spawn(async move { r.wait().await })
            };
            tokio::task::yield_now().await;
            assert_eq!(r.waiting(), 1);
            gone.abort();
            let _ = gone.await;
            assert_eq!(r.waiting(), 0);
            let stays = {
                let r = r.clone();
                tokio::spawn(async move { r.wait().await })
            };
            assert_eq!(r.wait().await, Ok(Released { users: 2 }));
            assert_eq!(stays.await.unwrap(), Ok(Released { users: 2 }));
        });
    }

    #[test]
    fn all_users_waits_for_the_ramp_and_for_every_live_user() {
        runtime().block_on(async {
            let users: Vec<_> = (0..3).map(|_| population::LiveUser::new()).collect();
            let r = Rendezvous::all_users();
            let mut waiting = Vec::new();
            for _ in 0..3 {
                let r = r.clone();
                waiting.push(tokio::spawn(async move { r.wait().await }));
            }
            tokio::task::yield_now().await;
            // All three are there, but the ramp is not complete.
            assert_eq!(r.waiting(), 3);
            assert!(waiting.iter().all(|h| !h.is_finished()));
            population::set_spawning_complete(true);
            for h in waiting {
                assert_eq!(h.await.unwrap(), Ok(Released { users: 3 }));
            }
            // A user that stops lowers the quorum for the next group.
            let mut users = users;
            users.pop();
            let one = {
                let r = r.clone();
                tokio::spawn(async move { r.wait().await })
            };
            tokio::task::yield_now().await;
            assert!(!one.is_finished());
            users.pop();
            assert_eq!(one.await.unwrap(), Ok(Released { users: 1 }));
            population::set_spawning_complete(false);
        });
    }
}
