//! The state shared by the HTTP handlers and the simulated controllers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::audit::AuditEntry;
use crate::clock::SimClock;
use crate::faults::Faults;
use crate::kubelet::PodFailure;
use crate::options::SimOptions;
use crate::store::Store;

/// Everything behind one simulator.
#[derive(Debug)]
pub struct Shared {
    /// The objects, behind a fair lock: the control loop hands it over to waiting requests at
    /// its checkpoints (see [`Held`]).
    pub store: parking_lot::Mutex<Store>,
    /// Latest resourceVersion after each write; watches and controllers wait on it.
    pub changed: tokio::sync::watch::Sender<u64>,
    /// The audit log.
    pub audit: Mutex<Vec<AuditEntry>>,
    /// Fault switches.
    pub faults: Faults,
    /// Start options.
    pub options: SimOptions,
    /// The (possibly fast) clock.
    pub clock: SimClock,
    /// Image patterns whose pods fail, with how.
    pub pod_failures: Mutex<Vec<(String, PodFailure)>>,
    /// Bearer tokens with their identities; requests carrying one are authorized by RBAC.
    pub tokens: Mutex<std::collections::HashMap<String, crate::rbac::Identity>>,
    /// Set to `true` when the simulator shuts down.
    pub stop: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// Runs `f` on the store under its lock, then wakes watchers and controllers if the
    /// resourceVersion moved.
    pub fn write<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut g = self.store.lock();
        let before = g.current_rv();
        let r = f(&mut g);
        let after = g.current_rv();
        drop(g);
        if after != before {
            self.changed.send_replace(after);
        }
        r
    }

    /// Runs `f` on the store under its lock, read-only.
    pub fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.store.lock())
    }

    /// Holds the store for a run of controller work; see [`Held`].
    pub fn hold(&self) -> Held<'_> {
        let guard = self.store.lock();
        let rv = guard.current_rv();
        Held {
            guard,
            shared: self,
            since: Instant::now(),
            notified_rv: rv,
            start_rv: rv,
            others: 0,
        }
    }
}

/// Access to the store for controller work: the store itself, plus checkpoints between units
/// of work (one object) where a long pass may let others in. Implemented by [`Store`] (tests:
/// no one else to let in) and by [`Held`] (the running simulator).
pub trait Access {
    /// The store.
    fn store(&mut self) -> &mut Store;
    /// A point between two units of work where the store is consistent and nothing of it is
    /// borrowed; others may write before it returns.
    fn checkpoint(&mut self) {}
}

impl Access for Store {
    fn store(&mut self) -> &mut Store {
        self
    }
}

/// How long the control loop works between handing the store to waiting requests: 1 ms.
/// Scale bench at 1,000 clusters (all Steady): 50 ms 80.2 s, 10 ms 64.4 s, 2 ms 45.3 to
/// 49.1 s, 1 ms 38.6 to 40.6 s, 0 (hand over at every checkpoint) 42.1 s. The operator's
/// applies wait on the lock one after another, so their latency is the critical path; below
/// 1 ms the handovers themselves cost more than they save.
const SLICE: Duration = Duration::from_millis(1);

/// The store held by the control loop. At a [`Access::checkpoint`] at least [`SLICE`] after
/// the last one, it wakes watchers for the changes made so far and hands the lock to every
/// request waiting for it (a fair unlock), then takes it back. So a pass of any length delays
/// API requests and watch events by about [`SLICE`], as when the controller manager is a
/// separate process, instead of by the whole pass; and when no one waits, the pass runs on.
/// Dropping it wakes watchers for the last changes.
pub struct Held<'a> {
    guard: parking_lot::MutexGuard<'a, Store>,
    shared: &'a Shared,
    since: Instant,
    notified_rv: u64,
    start_rv: u64,
    others: u64,
}

impl Held<'_> {
    /// How many writes the holder made (writes made by others at checkpoints are not counted).
    pub fn own_writes(&self) -> u64 {
        self.guard.current_rv() - self.start_rv - self.others
    }

    fn notify(&mut self) {
        let rv = self.guard.current_rv();
        if rv != self.notified_rv {
            self.notified_rv = rv;
            self.shared.changed.send_replace(rv);
        }
    }
}

impl Access for Held<'_> {
    fn store(&mut self) -> &mut Store {
        &mut self.guard
    }

    fn checkpoint(&mut self) {
        if self.since.elapsed() < SLICE {
            return;
        }
        self.notify();
        let before = self.guard.current_rv();
        parking_lot::MutexGuard::bump(&mut self.guard);
        let after = self.guard.current_rv();
        self.others += after - before;
        // The others' writes were announced by their writers.
        self.notified_rv = after;
        self.since = Instant::now();
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.notify();
    }
}
