//! The simulated control plane: one loop that runs the garbage collector, the StatefulSet,
//! Deployment and ReplicaSet controllers, the kubelet stand-in and the EndpointSlice controller
//! after every change and at a short resync interval. Controllers write through the same API
//! verbs as clients (so resourceVersions, events and managedFields are real), but not over HTTP
//! (so they do not appear in the audit log).
//!
//! Unlike a real controller manager, whose controllers run side by side, the controllers here
//! take turns on one thread. The StatefulSet, kubelet and EndpointSlice controllers are
//! change-driven, as informers are: each reads the store's changes since its last pass
//! ([`Changes`]) and visits only the objects those touch, plus those it left waiting
//! ([`Pending`]: a pod due to start, a set within its observedGeneration lag, a reconcile that
//! failed); on its first pass, and when the changes it needs have been compacted away, it
//! visits everything. The garbage collector works from the store's owner index, and the
//! Deployment and ReplicaSet controllers still scan all their objects.
//!
//! Under a large burst of work a pass still grows long (at 1,000 clusters, about a second when
//! the FE pods turn Ready), and what a controller would do for an object created meanwhile waits
//! for the next pass.

use crate::jsonpath::JsonPath;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{self, DeleteOpts, Outcome, Target, WriteOpts};
use crate::clock::SimClock;
use crate::deployment::DeploymentController;
use crate::endpoints::EndpointSliceController;
use crate::errors::ApiError;
use crate::gc;
use crate::kubelet::Kubelet;
use crate::lock;
use crate::state::{Access, Shared};
use crate::statefulset::StatefulSetController;
use crate::store::{ObjKey, Store, StoredEvent};
use std::collections::{HashSet, VecDeque};
use tokio::task::JoinHandle;

/// Field manager of the workload controllers (as in a real cluster).
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// Runs the control loop until `stop` fires, on a thread of its own (tokio's blocking pool):
/// a pass holds the store for as long as it has work, so it must not occupy a runtime worker
/// that serves API requests and watches.
pub fn spawn(sh: Arc<Shared>, stop: tokio::sync::watch::Receiver<bool>) -> JoinHandle<()> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || run(&runtime, &sh, stop))
}

/// The loop: a pass of every controller after every change and at the resync interval.
///
/// A pass holds the store but hands it to waiting requests every few milliseconds (see
/// [`crate::state::Held`]), so its length delays no request by more than that, and a pass
/// with work to do runs to its end. A pass that wrote nothing (only scanned) is followed by a
/// rest as long as itself, so that idle scans of a large store take at most half of a core.
fn run(
    runtime: &tokio::runtime::Handle,
    sh: &Shared,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut changed = sh.changed.subscribe();
    let mut gc = gc::GarbageCollector::default();
    let mut sts = StatefulSetController::default();
    let mut deploy = DeploymentController;
    let mut kubelet = Kubelet::default();
    let mut eps = EndpointSliceController::default();
    let resync = sh.options.resync_interval.max(Duration::from_millis(1));
    loop {
        let failures = lock(&sh.pod_failures).clone();
        let started = std::time::Instant::now();
        // Milliseconds since the last lap (each turn's, including the requests let in at its
        // checkpoints).
        let mut last = started;
        let mut lap = || {
            let now = std::time::Instant::now();
            let ms = (now - last).as_secs_f64() * 1000.0;
            last = now;
            ms
        };
        let (writes, turns) = {
            let mut held = sh.hold();
            let wait_ms = lap();
            gc.pass(held.store(), &sh.clock);
            held.checkpoint();
            let gc_ms = lap();
            sts.pass(&mut held, &sh.clock, &sh.options);
            held.checkpoint();
            let sts_ms = lap();
            deploy.pass(held.store(), &sh.clock);
            held.checkpoint();
            let deploy_ms = lap();
            kubelet.pass(&mut held, &sh.clock, sh.options.pod_ready_delay, &failures);
            held.checkpoint();
            let kubelet_ms = lap();
            eps.pass(&mut held, &sh.clock);
            let eps_ms = lap();
            (
                held.own_writes(),
                [wait_ms, gc_ms, sts_ms, deploy_ms, kubelet_ms, eps_ms],
            )
        };
        // One event per pass, for a subscriber at debug level for this module: how long the
        // controllers held the store (in all, waiting for it, and each one's turn) and how much
        // they wrote.
        let [wait_ms, gc_ms, sts_ms, deploy_ms, kubelet_ms, eps_ms] = turns;
        tracing::debug!(
            pass_ms = started.elapsed().as_secs_f64() * 1000.0,
            writes,
            wait_ms,
            gc_ms,
            sts_ms,
            deploy_ms,
            kubelet_ms,
            eps_ms,
            "control loop pass"
        );
        let wrote = writes > 0;
        // Changes made during the pass (its own and others') start no second pass at once; one
        // that a controller had already gone past is picked up at the resync.
        changed.borrow_and_update();
        let rest = if wrote {
            Duration::ZERO
        } else {
            started.elapsed()
        };
        let stopped = runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                _ = stop.changed() => return true,
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = tokio::time::sleep(resync) => {}
                _ = stop.changed() => return true,
            }
            false
        });
        if stopped || *stop.borrow() {
            return;
        }
    }
}

/// The target of the object `obj` (by its `metadata.namespace` and `metadata.name`).
///
/// # Errors
/// NotFound when the resource is not served.
fn target_of(store: &Store, group: &str, plural: &str, obj: &Value) -> Result<Target, ApiError> {
    let field = |path: &str| {
        obj.at(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (ns, name) = (field("/metadata/namespace"), field("/metadata/name"));
    target(store, group, plural, &ns, &name).ok_or_else(|| missing(plural))
}

/// The target of one object of a built-in type, or `None` if the type is not served.
pub fn target(store: &Store, group: &str, plural: &str, ns: &str, name: &str) -> Option<Target> {
    let version = if group.is_empty() {
        "v1"
    } else {
        store
            .registry
            .all()
            .iter()
            .find(|t| t.group == group && t.plural == plural)?
            .version
            .as_str()
    };
    let rt = store.registry.find(group, version, plural)?;
    Some(Target::object(rt, Some(ns), name))
}

fn opts() -> WriteOpts {
    WriteOpts {
        manager: CONTROLLER_MANAGER.into(),
        force: false,
        ..Default::default()
    }
}

/// Write options of a controller writing as `manager`.
fn opts_as(manager: &str) -> WriteOpts {
    WriteOpts {
        manager: manager.into(),
        ..opts()
    }
}

fn missing(plural: &str) -> ApiError {
    ApiError::NotFound {
        resource: plural.into(),
        name: String::new(),
    }
}

/// Creates an object as `manager`; `fields_v1`, when given, is known to be the object's
/// `FieldsV1` (see [`api::create_owning`]).
///
/// # Errors
/// As [`api::create`].
pub fn create_as(
    store: &mut Store,
    clock: &SimClock,
    group: &str,
    plural: &str,
    obj: Value,
    manager: &str,
    fields_v1: Option<&Value>,
) -> Result<Outcome, ApiError> {
    let t = target_of(store, group, plural, &obj)?;
    api::create_owning(store, clock, &t, obj, &opts_as(manager), fields_v1)
}

/// Updates an object (main resource) as `manager`.
///
/// # Errors
/// As [`api::update`].
pub fn update_as(
    store: &mut Store,
    clock: &SimClock,
    group: &str,
    plural: &str,
    obj: Value,
    manager: &str,
) -> Result<Outcome, ApiError> {
    let t = target_of(store, group, plural, &obj)?;
    api::update(store, clock, &t, obj, &opts_as(manager))
}

/// Replaces an object's status (the `/status` subresource) as `manager`, if it changed
/// ([`api::write_status`]). A caller that passes its `Arc` of the stored object, rather than a
/// reference, gives it up before the write, so that the write can be made in the object itself
/// rather than a copy.
///
/// # Errors
/// As [`api::write_status`].
pub fn set_status(
    store: &mut Store,
    clock: &SimClock,
    group: &str,
    plural: &str,
    obj: impl std::borrow::Borrow<Value>,
    status: Value,
    manager: &str,
) -> Result<(), ApiError> {
    let current: &Value = obj.borrow();
    if current.get("status") == Some(&status) {
        return Ok(());
    }
    let mut t = target_of(store, group, plural, current)?;
    t.subresource = Some("status".into());
    drop(obj);
    api::write_status(store, clock, &t, status, &opts_as(manager)).map(|_| ())
}

/// Deletes an object (background propagation).
///
/// # Errors
/// As [`api::delete`].
pub fn delete(
    store: &mut Store,
    clock: &SimClock,
    group: &str,
    plural: &str,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    let t = target(store, group, plural, ns, name).ok_or_else(|| missing(plural))?;
    api::delete(store, clock, &t, &DeleteOpts::default()).map(|_| ())
}

/// An owner reference to `owner` with `controller: true`.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

/// Whether `obj` has an owner reference with this uid.
pub fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| r["uid"].as_str() == Some(uid))
}

/// Whether a pod is Running with condition Ready=True and not terminating.
pub fn pod_ready(pod: &Value) -> bool {
    pod.at("/metadata/deletionTimestamp").is_none()
        && pod.at("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod
            .at("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// A short hash of a JSON value in the API server's "safe" alphabet (no vowels), `len` chars.
pub fn safe_hash(v: &Value, len: usize) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    /// The JSON written straight into the hash (a pod template is kilobytes: not copied into
    /// a `String` first); `digest` 0.11 no longer implements `io::Write` for its hashers.
    struct Hashing(sha2::Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(sha2::Sha256::new());
    // Writing a `Value` into a sink that cannot fail does not fail.
    let _ = serde_json::to_writer(&mut hashing, v);
    let digest = hashing.0.finalize();
    digest
        .iter()
        .take(len)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// Number of controller errors logged so far (by any simulator in the process). Controllers that
/// skip unchanged objects do not remember a pass that hit an error, so it is retried.
static ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of controller errors logged so far in this process.
pub fn error_count() -> u64 {
    ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Logs a controller error (controllers retry on the next pass).
pub fn log_err(what: &str, r: Result<impl Sized, ApiError>) {
    if let Err(e) = r {
        ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(error = %e, "{what}");
    }
}

/// The `metadata.resourceVersion` of a stored object as a number (0 if absent).
pub fn rv_of(obj: &Value) -> u64 {
    obj.at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A mark of the store and of the error count before a reconcile: [`Mark::no_op`] says whether
/// the reconcile neither wrote nor failed (so running it again on the same inputs is useless).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    rv: u64,
    errors: u64,
}

impl Mark {
    /// Marks the current state.
    pub fn new(store: &Store) -> Mark {
        Mark {
            rv: store.current_rv(),
            errors: error_count(),
        }
    }

    /// Whether nothing was written and no error was logged since the mark.
    pub fn no_op(&self, store: &Store) -> bool {
        store.current_rv() == self.rv && error_count() == self.errors
    }
}

/// Where a change-driven controller is in the store's history: like an informer, it learns
/// what to visit from the changes since its last pass, and looks at everything on its first
/// pass and whenever those changes have been compacted away (its relist after `410 Gone`).
#[derive(Debug, Default)]
pub struct Changes {
    /// The store's resourceVersion at the last read; `None` before the first.
    cursor: Option<u64>,
}

impl Changes {
    /// The store's changes since the last call (all types, oldest first), or `None` when the
    /// caller must look at everything: on the first call, after [`Changes::reset`], and when
    /// the changes since the last call are no longer retained. Either way the next call starts
    /// from the store's resourceVersion now.
    pub fn read<'s>(
        &mut self,
        store: &'s Store,
    ) -> Option<impl Iterator<Item = &'s StoredEvent> + use<'s>> {
        let since = self.cursor.replace(store.current_rv())?;
        store.changes_since(since)
    }

    /// Makes the next [`Changes::read`] answer `None` (look at everything).
    pub fn reset(&mut self) {
        self.cursor = None;
    }
}

/// Keys of the objects a controller has yet to visit: each at most once, in the order it was
/// first queued (so the objects that changed first are visited first).
#[derive(Debug, Default)]
pub struct Pending {
    order: VecDeque<ObjKey>,
    queued: HashSet<ObjKey>,
}

impl Pending {
    /// Queues a key unless it is queued already.
    pub fn push(&mut self, key: ObjKey) {
        if !self.queued.contains(&key) {
            self.queued.insert(key.clone());
            self.order.push_back(key);
        }
    }

    /// Takes every queued key, oldest first, leaving the queue empty.
    pub fn take(&mut self) -> Vec<ObjKey> {
        self.queued.clear();
        self.order.drain(..).collect()
    }
}

/// The `(namespace, name)` keys of the owners that `obj` refers to (by uid in its
/// `ownerReferences`) and that are live objects of type `(group, plural)`.
pub fn owners_of(store: &Store, obj: &Value, group: &str, plural: &str) -> Vec<ObjKey> {
    obj.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| store.locate(r["uid"].as_str()?))
        .filter(|((g, p), _)| g == group && p == plural)
        .map(|(_, key)| key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// The hash is of the object's compact JSON (as `to_string` writes it), in the safe
    /// alphabet, and tells different objects apart.
    #[test]
    fn safe_hash_digests_the_compact_json() {
        let template = serde_json::json!({
            "metadata": {"labels": {"app": "fe", "n": 1}},
            "spec": {"containers": [{"name": "fe", "image": "starrocks/fe-ubuntu:3.3.2"}]}
        });
        let digest = sha2::Sha256::digest(template.to_string().as_bytes());
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let expected: String = digest
            .iter()
            .take(10)
            .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
            .collect();
        assert_eq!(safe_hash(&template, 10), expected);
        let mut other = template.clone();
        other["spec"]["containers"][0]["image"] = serde_json::json!("starrocks/fe-ubuntu:3.4.1");
        assert_ne!(safe_hash(&other, 10), expected);
    }
}
