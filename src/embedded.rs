//! An embedded simulated cluster with the operator's CRD installed and an ordering witness
//! watching it: what `demo` runs on, and what the integration tests drive.
//!
//! [`Embedded::start`] starts the in-process API server ([`kube_sim::Sim`]), installs the
//! StarRocksCluster CRD, and starts a watch of every StatefulSet and Deployment whose states
//! ([`WorkloadSample`]) the [`crate::witness`] checks compare with the simulator's audit log.
//! [`Embedded::spawn_operator`] runs the operator against it.

use crate::controller::{ControllerConfig, JournalEntry, Operator};
use crate::crd::StarRocksCluster;
use crate::journal::JournalStore;
use crate::witness::WorkloadSample;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use kube_sim::{Sim, SimOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// Errors of the embedded cluster. Each says what failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The simulator did not start.
    #[error("the simulated cluster did not start: {0}")]
    Sim(#[from] kube_sim::SimError),
    /// The client could not be configured for the simulator's URL.
    #[error("cannot build a client for the simulated cluster: {0}")]
    Client(String),
    /// The CRD could not be generated.
    #[error("cannot generate the CRD: {0}")]
    Crd(#[from] crate::crd::generate::CrdError),
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// A manifest is not a StarRocksCluster.
    #[error("the manifest is not a StarRocksCluster: {0}")]
    Manifest(String),
    /// A wait ran out of time.
    #[error("timed out after {seconds} s waiting for {what}; last seen: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        seconds: u64,
        /// The last observed state.
        last: String,
    },
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> EmbeddedError {
    let action = action.into();
    move |source| EmbeddedError::Api { action, source }
}

/// A running simulated cluster with the CRD installed and the witness watching.
pub struct Embedded {
    /// The simulator (audit log, faults).
    pub sim: Sim,
    /// A client for it.
    pub client: Client,
    samples: Arc<Mutex<Vec<WorkloadSample>>>,
    witness: Vec<JoinHandle<()>>,
}

/// An operator running as a task against the embedded cluster.
pub struct RunningOperator {
    task: JoinHandle<()>,
    /// The operator's shared context (reconcile count, caches, journal).
    pub context: Arc<crate::controller::Context>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Journal records as they are appended.
    pub records: broadcast::Receiver<JournalEntry>,
}

impl RunningOperator {
    /// Stops the operator gracefully (in-flight reconciles finish) and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Whether the operator's task has ended (stopped, killed or panicked).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Kills the operator task at once, wherever it is (a crash), and waits until it is gone.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn record_samples<K, F>(
    api: Api<K>,
    samples: Arc<Mutex<Vec<WorkloadSample>>>,
    sample: F,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    F: Fn(&K) -> Option<WorkloadSample> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(item) = stream.next().await {
            if let Ok(obj) = item
                && let Some(s) = sample(&obj)
            {
                crate::lock(&samples).push(s);
            }
        }
    })
}

impl Embedded {
    /// Starts the simulator with `options`, installs the CRD and starts the witness.
    ///
    /// # Errors
    /// [`EmbeddedError`] when the simulator, the client or the CRD install fails.
    pub async fn start(options: SimOptions) -> Result<Embedded, EmbeddedError> {
        let sim = Sim::start(options).await?;
        let url = sim
            .url()
            .parse()
            .map_err(|e| EmbeddedError::Client(format!("{e}")))?;
        let client = Client::try_from(kube::Config::new(url))
            .map_err(|e| EmbeddedError::Client(e.to_string()))?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &crate::crd::generate::crd()?)
            .await
            .map_err(api_error("installing the StarRocksCluster CRD"))?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let witness = vec![
            record_samples(
                Api::<StatefulSet>::all(client.clone()),
                samples.clone(),
                WorkloadSample::of_stateful_set,
            ),
            record_samples(
                Api::<Deployment>::all(client.clone()),
                samples.clone(),
                WorkloadSample::of_deployment,
            ),
        ];
        Ok(Embedded {
            sim,
            client,
            samples,
            witness,
        })
    }

    /// Every workload state the witness has seen so far. The witness follows watches, so it
    /// can lag behind the simulator (after a dropped watch, or a failed re-watch and its
    /// backoff): call [`Embedded::wait_for_witness`] first to judge writes up to now.
    pub fn samples(&self) -> Vec<WorkloadSample> {
        crate::lock(&self.samples).clone()
    }

    /// Whether the witness has seen the current state (the current resourceVersion) of every
    /// StatefulSet and Deployment in the simulator; watches deliver a type's changes in order,
    /// so it has then seen every earlier state too.
    pub fn witness_caught_up(&self) -> bool {
        let seen: std::collections::HashSet<u64> = crate::lock(&self.samples)
            .iter()
            .map(|s| s.resource_version)
            .collect();
        let unseen = |o: &serde_json::Value| {
            o.pointer("/metadata/resourceVersion")
                .and_then(serde_json::Value::as_str)
                .and_then(|rv| rv.parse::<u64>().ok())
                .is_none_or(|rv| !seen.contains(&rv))
        };
        self.sim.count("apps", "statefulsets", unseen) == 0
            && self.sim.count("apps", "deployments", unseen) == 0
    }

    /// Waits until [`Embedded::witness_caught_up`], polling every 20 ms, at most `timeout`.
    /// Returns whether it caught up.
    pub async fn wait_for_witness(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.witness_caught_up() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Creates namespace `name` unless it exists.
    ///
    /// # Errors
    /// [`EmbeddedError::Api`].
    pub async fn ensure_namespace(&self, name: &str) -> Result<(), EmbeddedError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(api_error(format!("creating namespace {name}"))(e)),
        }
    }

    /// Creates the StarRocksCluster of a YAML manifest (its namespace too). Returns the
    /// stored object.
    ///
    /// # Errors
    /// [`EmbeddedError::Manifest`] for YAML that is not a StarRocksCluster; [`EmbeddedError::Api`].
    pub async fn create_cluster(&self, yaml: &str) -> Result<StarRocksCluster, EmbeddedError> {
        let cluster: StarRocksCluster =
            serde_saphyr::from_str(yaml).map_err(|e| EmbeddedError::Manifest(e.to_string()))?;
        let namespace = cluster.namespace().unwrap_or_else(|| "default".to_string());
        self.ensure_namespace(&namespace).await?;
        let api: Api<StarRocksCluster> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &cluster)
            .await
            .map_err(api_error(format!(
                "creating StarRocksCluster {}",
                cluster.name_any()
            )))
    }

    /// Merge-patches the cluster's spec (or metadata) with `patch`; returns the new object.
    ///
    /// # Errors
    /// [`EmbeddedError::Api`].
    pub async fn patch_cluster(
        &self,
        namespace: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> Result<StarRocksCluster, EmbeddedError> {
        let api: Api<StarRocksCluster> = Api::namespaced(self.client.clone(), namespace);
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(api_error(format!(
                "patching StarRocksCluster {namespace}/{name}"
            )))
    }

    /// Polls the cluster every 20 ms until `done` holds, for at most `timeout`.
    ///
    /// # Errors
    /// [`EmbeddedError::Timeout`] naming `what` and the last status seen.
    pub async fn wait_for(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&StarRocksCluster) -> bool,
    ) -> Result<StarRocksCluster, EmbeddedError> {
        let api: Api<StarRocksCluster> = Api::namespaced(self.client.clone(), namespace);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::from("nothing");
        loop {
            if let Ok(cluster) = api.get(name).await {
                if done(&cluster) {
                    return Ok(cluster);
                }
                last = cluster
                    .status
                    .as_ref()
                    .and_then(|s| s.lifecycle.as_ref())
                    .and_then(|l| l.message.clone())
                    .unwrap_or_else(|| "no status yet".to_string());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EmbeddedError::Timeout {
                    what: what.to_string(),
                    seconds: timeout.as_secs(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the operator as a task against this cluster, with its own client.
    pub fn spawn_operator(
        &self,
        journal: Arc<dyn JournalStore + Send + Sync>,
        config: ControllerConfig,
    ) -> RunningOperator {
        let operator = Operator::new(
            self.client.clone(),
            journal,
            config,
            "starrocks-operator".into(),
            Arc::new(crate::metrics::Metrics::new()),
        );
        let records = operator.subscribe();
        let context = operator.context();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(operator.run(async move {
            let _ = rx.await;
        }));
        RunningOperator {
            task,
            context,
            shutdown: Some(tx),
            records,
        }
    }

    /// Stops the witness and the simulator.
    pub async fn shutdown(self) {
        for w in &self.witness {
            w.abort();
        }
        self.sim.shutdown().await;
    }
}

/// A merge patch that sets the tag of every StarRocks image (FE, BE, CN) the cluster has to
/// `tag`, e.g. `starrocks/be-ubuntu:3.3.2` to `starrocks/be-ubuntu:3.3.5`. Images are
/// `repository:tag` (validation requires a tag); one without a tag gets `tag` appended.
pub fn retag_patch(cluster: &StarRocksCluster, tag: &str) -> serde_json::Value {
    let retag = |image: &str| match image.rsplit_once(':') {
        Some((repository, _)) => format!("{repository}:{tag}"),
        None => format!("{image}:{tag}"),
    };
    let s = &cluster.spec;
    let images = [
        (
            "starRocksFeSpec",
            s.star_rocks_fe_spec.as_ref().map(|x| &x.component),
        ),
        (
            "starRocksBeSpec",
            s.star_rocks_be_spec.as_ref().map(|x| &x.component),
        ),
        (
            "starRocksCnSpec",
            s.star_rocks_cn_spec.as_ref().map(|x| &x.component),
        ),
    ];
    let spec: serde_json::Map<String, serde_json::Value> = images
        .into_iter()
        .filter_map(|(field, component)| {
            let image = retag(&component?.load.image);
            Some((field.to_string(), serde_json::json!({ "image": image })))
        })
        .collect();
    serde_json::json!({ "spec": spec })
}

/// Whether the cluster is Steady, running, and its status describes generation `generation`
/// (or later).
pub fn steady_at(cluster: &StarRocksCluster, generation: i64) -> bool {
    cluster.status.as_ref().is_some_and(|s| {
        s.observed_generation.is_some_and(|g| g >= generation)
            && s.phase.as_deref() == Some(crate::controller::status::PHASE_RUNNING)
            && s.lifecycle.as_ref().and_then(|l| l.state.as_deref()) == Some("Steady")
    })
}
