//! kube-sim: an in-process Kubernetes API server and workload simulator (issue 3).
//!
//! [`Sim::start`] binds `127.0.0.1` (port from [`SimOptions::port`], 0 = any) and serves the
//! Kubernetes API over plain HTTP to `kube::Client` and `kubectl`; behind it run simulated
//! StatefulSet, Deployment/ReplicaSet, EndpointSlice and garbage-collector controllers and a
//! kubelet stand-in. See the modules for the Kubernetes behaviour each one follows.
//!
//! # Using it
//! - From a test: `let sim = Sim::start(SimOptions { clock_speed: 100.0, ..Default::default() }).await?;`
//!   then `kube::Client::try_from(kube::Config::new(sim.url().parse()?))`.
//! - kubectl: `sim.write_kubeconfig(path)` and `kubectl --kubeconfig path ...`; the binary
//!   (`cargo run -p kube-sim -- --port 6443 --kubeconfig out.yaml [--preload crds.yaml]`) does the
//!   same and runs until Ctrl-C.
//! - Test hooks: [`Sim::audit`], [`Sim::faults`], [`Sim::fail_pods_with_image`],
//!   [`Sim::fail_pod`], [`Sim::compact`], [`Sim::add_service_account_token`].
//!
//! # Known differences from a real API server
//! - Plain HTTP, no authentication unless a token is registered (then RBAC applies to it).
//! - JSON only (no protobuf, no CBOR); aggregated discovery is answered with the legacy
//!   documents, which kubectl and kube-rs accept.
//! - One stored version per type: a multi-version CRD serves every version without conversion.
//! - Built-in types are not schema-validated; only a few immutability rules are enforced.
//! - Pods are removed at once on delete (no graceful termination period) unless they carry
//!   finalizers.
//! - Timestamps are wall-clock; the fast clock only shortens the simulated delays.
//! - Like upstream, `status.currentRevision` of an `OnDelete` StatefulSet does not advance.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sim::SimError> {
//! let sim = kube_sim::Sim::start(kube_sim::SimOptions::default()).await?;
//! println!("{}", sim.url()); // http://127.0.0.1:<port>
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod audit;
pub mod clock;
pub mod controllers;
pub mod defaults;
pub mod deployment;
pub mod discovery;
pub mod endpoints;
pub mod errors;
pub mod faults;
pub mod fields;
pub mod gc;
pub mod jsonpath;
pub mod kubelet;
pub mod listtypes;
pub mod openapi;
pub mod options;
pub mod patch;
pub mod rbac;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod state;
pub mod statefulset;
pub mod store;
pub mod table;
pub mod watch;

use crate::jsonpath::JsonPath;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

pub use crate::audit::AuditEntry;
pub use crate::errors::{ApiError, SimError};
pub use crate::faults::{Faults, InjectedError};
pub use crate::kubelet::PodFailure;
pub use crate::options::SimOptions;

use crate::api::{Target, WriteOpts};
use crate::clock::SimClock;
use crate::resources::Registry;
use crate::state::Shared;
use crate::store::Store;

/// Locks a mutex, recovering the data if another thread panicked while holding it: every
/// critical section in this crate leaves the data consistent between statements that can
/// panic, so a poisoned lock carries no broken invariant.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Namespaces that exist from the start, as in a fresh cluster.
const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A running simulator. Dropping it (or [`Sim::shutdown`]) stops the server and controllers.
#[derive(Debug)]
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    control: Option<tokio::task::JoinHandle<()>>,
}

impl Sim {
    /// Starts the API server and the controllers on the current tokio runtime.
    ///
    /// # Errors
    /// [`SimError::Bind`] when the port cannot be bound.
    pub async fn start(options: SimOptions) -> Result<Sim, SimError> {
        let clock = SimClock::new(options.clock_speed);
        let mut store = Store::new(Registry::builtin(), options.watch_window);
        let ns_type = store.registry.find("", "v1", "namespaces").cloned();
        if let Some(rt) = ns_type {
            for ns in INITIAL_NAMESPACES {
                let t = Target::object(&rt, None, ns);
                api::create(
                    &mut store,
                    &clock,
                    &t,
                    json!({"metadata": {"name": ns}}),
                    &WriteOpts {
                        manager: "kube-apiserver".into(),
                        ..Default::default()
                    },
                )?;
            }
        }
        let node_type = store.registry.find("", "v1", "nodes").cloned();
        if let Some(rt) = node_type {
            let t = Target::object(&rt, None, "sim-node");
            let node = json!({"metadata": {"name": "sim-node", "labels": {"kubernetes.io/hostname": "sim-node"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
            api::create(
                &mut store,
                &clock,
                &t,
                node,
                &WriteOpts {
                    manager: "kubelet".into(),
                    ..Default::default()
                },
            )?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|source| SimError::Bind {
                port: options.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            port: options.port,
            source,
        })?;
        let (changed, _) = tokio::sync::watch::channel(store.current_rv());
        let (stop, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            store: parking_lot::Mutex::new(store),
            changed,
            audit: Mutex::new(Vec::new()),
            faults: Faults::default(),
            options,
            clock,
            pod_failures: Mutex::new(Vec::new()),
            stop: stop.clone(),
            tokens: Mutex::new(std::collections::HashMap::new()),
        });
        let mut stop_rx = stop.subscribe();
        let app = server::router(shared.clone());
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "kube-sim server stopped");
            }
        });
        let control = controllers::spawn(shared.clone(), stop.subscribe());
        tracing::info!(%addr, "kube-sim listening");
        Ok(Sim {
            shared,
            addr,
            stop,
            server: Some(server),
            control: Some(control),
        })
    }

    /// The server URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (YAML) with one cluster, user and context named `kube-sim`, namespace
    /// `default`, that kubectl and `kube::Config` can read.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim\n  user: {{}}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`Sim::kubeconfig_yaml`] to `path`.
    ///
    /// # Errors
    /// The I/O error of the write.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Registers a bearer token for the ServiceAccount `namespace/name`. Requests with this token
    /// are authorized by the RBAC objects in the store (Roles, ClusterRoles and bindings, e.g.
    /// loaded with [`Sim::create_from_yaml`]) and get `403 Forbidden` otherwise; requests without
    /// a token stay unrestricted, and unknown tokens get `401 Unauthorized`.
    pub fn add_service_account_token(&self, token: &str, namespace: &str, name: &str) {
        lock(&self.shared.tokens).insert(
            token.to_string(),
            rbac::Identity::service_account(namespace, name),
        );
    }

    /// A kubeconfig like [`Sim::kubeconfig_yaml`] whose user presents `token`.
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        self.kubeconfig_yaml()
            .replace("  user: {}\n", &format!("  user:\n    token: {token}\n"))
    }

    /// Every API request so far, in the order they were answered.
    pub fn audit(&self) -> Vec<AuditEntry> {
        lock(&self.shared.audit).clone()
    }

    /// How many requests the audit log holds (without copying it, as [`Sim::audit`] does).
    pub fn audit_len(&self) -> usize {
        lock(&self.shared.audit).len()
    }

    /// Clears the audit log.
    pub fn clear_audit(&self) {
        lock(&self.shared.audit).clear();
    }

    /// The fault switches (clones share state with the server).
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    /// From now on, pods with a container image matching `pattern` (`*` wildcards, otherwise a
    /// substring) fail in `mode`. Existing pods are affected too.
    pub fn fail_pods_with_image(&self, pattern: &str, mode: PodFailure) {
        let mut f = lock(&self.shared.pod_failures);
        f.retain(|(p, _)| p != pattern);
        f.push((pattern.to_string(), mode));
        drop(f);
        self.shared.changed.send_modify(|_| {});
    }

    /// Removes every image failure pattern (failing pods become ready).
    pub fn clear_pod_failures(&self) {
        lock(&self.shared.pod_failures).clear();
        self.shared.changed.send_modify(|_| {});
    }

    /// Marks one pod `Failed` (as if its node lost it); its controller replaces it.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when the pod does not exist.
    pub fn fail_pod(&self, namespace: &str, name: &str) -> Result<(), ApiError> {
        let clock = self.shared.clock;
        self.shared.write(|s| {
            let pod =
                s.get("", "pods", namespace, name)
                    .cloned()
                    .ok_or_else(|| ApiError::NotFound {
                        resource: "pods".into(),
                        name: name.into(),
                    })?;
            let mut status = pod.get("status").cloned().unwrap_or(json!({}));
            status["phase"] = json!("Failed");
            status["reason"] = json!("Simulated");
            controllers::set_status(s, &clock, "", "pods", &pod, status, kubelet::KUBELET)
        })
    }

    /// Creates every object of a (multi-document) YAML string, in order, as field manager
    /// `kube-sim`. Useful to preload CRDs and namespaces.
    ///
    /// # Errors
    /// [`SimError::Yaml`] for unparsable YAML, [`SimError::Api`] for the first failed create.
    pub fn create_from_yaml(&self, yaml: &str) -> Result<usize, SimError> {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(yaml).map_err(|e| SimError::Yaml(e.to_string()))?;
        let mut n = 0;
        for doc in docs.into_iter().filter(|d| d.is_object()) {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let clock = self.shared.clock;
            self.shared.write(|s| {
                let rt = s
                    .registry
                    .find_kind(&api_version, &kind)
                    .cloned()
                    .ok_or_else(|| ApiError::NotFound {
                        resource: kind.clone(),
                        name: api_version.clone(),
                    })?;
                let ns = doc
                    .at("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                let name = doc
                    .at("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let t = Target::object(&rt, Some(ns), name);
                api::create(
                    s,
                    &clock,
                    &t,
                    doc.clone(),
                    &WriteOpts {
                        manager: "kube-sim".into(),
                        ..Default::default()
                    },
                )
            })?;
            n += 1;
        }
        Ok(n)
    }

    /// A snapshot of one object as stored (`group` is `""` for core), or `None`.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .read(|s| s.get(group, plural, namespace, name).cloned())
    }

    /// Calls `f` on every stored object of one type (`group` is `""` for core), in every
    /// namespace, in store order (namespace, then name). Reads the store once, without copying
    /// objects; `f` runs under the store's lock, so it should be quick.
    pub fn visit(&self, group: &str, plural: &str, mut f: impl FnMut(&Value)) {
        self.shared.read(|s| {
            for o in s.list(group, plural, None) {
                f(o);
            }
        });
    }

    /// Calls `f` on the live objects of one type that changed after resourceVersion `since`
    /// and returns the resourceVersion read up to, for the next call (see
    /// [`Store::visit_changed`]). Reads the store once, without copying objects; `f` runs
    /// under the store's lock, so it should be quick.
    pub fn visit_changed(
        &self,
        group: &str,
        plural: &str,
        since: u64,
        f: impl FnMut(&Value),
    ) -> u64 {
        self.shared
            .read(|s| s.visit_changed(group, plural, since, f))
    }

    /// How many stored objects of one type (`group` is `""` for core), in every namespace,
    /// satisfy `pred`. Reads the store once, without copying objects.
    pub fn count(&self, group: &str, plural: &str, pred: impl Fn(&Value) -> bool) -> usize {
        let mut n = 0;
        self.visit(group, plural, |o| n += usize::from(pred(o)));
        n
    }

    /// How many stored objects of one type (`group` is `""` for core), in every namespace,
    /// there are per value of `key`, e.g. Events per `reason`. Reads the store once, without
    /// copying objects.
    pub fn tally(
        &self,
        group: &str,
        plural: &str,
        key: impl Fn(&Value) -> String,
    ) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        self.visit(group, plural, |o| *counts.entry(key(o)).or_insert(0) += 1);
        counts
    }

    /// A handle that tells whether the store's lock is held, for sampling how busy the store
    /// is from another thread (the scale bench's `SCALE_LOCK_PROBE`).
    pub fn store_probe(&self) -> StoreProbe {
        StoreProbe(self.shared.clone())
    }

    /// The current cluster-wide resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.read(Store::current_rv)
    }

    /// The writes to the store since it started, by type: `((group, plural), count)`. Every
    /// write counts (API requests' and the simulated controllers'), deletes included.
    pub fn writes_by_type(&self) -> Vec<(store::TypeKey, u64)> {
        self.shared.read(Store::writes_by_type)
    }

    /// Drops all retained watch history: any watch from an older resourceVersion gets 410.
    pub fn compact(&self) {
        self.shared.write(Store::compact);
    }

    /// Stops the server, the controllers and open watches, and waits (up to 5 s) for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for handle in [self.server.take(), self.control.take()]
            .into_iter()
            .flatten()
        {
            let abort = handle.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), handle)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for handle in [self.server.take(), self.control.take()]
            .into_iter()
            .flatten()
        {
            handle.abort();
        }
    }
}

/// See [`Sim::store_probe`].
#[derive(Clone)]
pub struct StoreProbe(Arc<Shared>);

impl StoreProbe {
    /// Whether the store's lock is held at this instant (by an API request, a watch or the
    /// control loop). When it is free this takes it for an instant, so
    /// sample it at most every 100 us or so.
    pub fn locked(&self) -> bool {
        self.0.store.try_lock().is_none()
    }
}
