//! The state shared by the HTTP handlers and the simulated controllers.

use std::sync::Mutex;

use crate::audit::AuditEntry;
use crate::clock::SimClock;
use crate::faults::Faults;
use crate::kubelet::PodFailure;
use crate::lock;
use crate::options::SimOptions;
use crate::store::Store;

/// Everything behind one simulator.
#[derive(Debug)]
pub struct Shared {
    /// The objects.
    pub store: Mutex<Store>,
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
        let mut g = lock(&self.store);
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
        f(&lock(&self.store))
    }
}
