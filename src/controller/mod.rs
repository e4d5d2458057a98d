//! The reconciler: a kube-runtime [`Controller`] on `StarRocksCluster` that observes the
//! cluster's objects through reflector caches, feeds what changed to the lifecycle model
//! ([`starrocks_model::Machine`]), journals every step before acting on it, and executes the
//! model's actions (server-side apply, delete, status, Kubernetes Events).
//!
//! - [`observe`]: cached objects to the model's observations (pure).
//! - [`status`]: the status to write (pure).
//! - [`apply`]: the API writes.
//! - [`reconcile`]: one reconcile of one cluster.
//!
//! The model decides; this module only observes, applies and reports.

pub mod apply;
pub mod events;
pub mod observe;
pub mod reconcile;
pub mod slices;
pub mod status;
pub mod synced;

use crate::crd::StarRocksCluster;
use crate::journal::{ClusterKey, JournalError, JournalStore};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use reconcile::ClusterRuntime;
use serde::de::DeserializeOwned;
use starrocks_model::Rules;
use starrocks_model::journal::Record;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How the controller behaves. `Default`: every namespace, resync every 5 minutes, a
/// safety-net requeue every 10 s while a rollout is in progress, retries from 1 s doubling
/// to 5 minutes, logs of deleted clusters removed after 1 hour, at most 128 reconciles at once,
/// listings of 500 objects per page.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Watch only this namespace; every namespace when `None`.
    pub namespace: Option<String>,
    /// Requeue interval of a cluster with nothing in progress (Steady, Paused, Blocked): a
    /// resync re-evaluates and retries anything that failed.
    pub resync: Duration,
    /// Requeue interval while a first deployment or a rollout is in progress. Watch events
    /// drive progress; this is only a safety net against a missed event.
    pub progress_requeue: Duration,
    /// First retry delay after a failed reconcile or apply; doubles per consecutive failure.
    pub retry_base: Duration,
    /// Upper bound of the retry delay.
    pub retry_max: Duration,
    /// How long a deleted cluster's journal log is kept before it is removed.
    pub keep_deleted_logs: Duration,
    /// The ordering rules (the StarRocks rules; tests substitute wrong ones).
    pub rules: Rules,
    /// How many clusters are reconciled at once (at least 1); further clusters wait in the
    /// controller's queue, one entry per cluster. Each reconcile in flight holds its own API
    /// connection (the client speaks HTTP/1.1), request and response buffers and task; without
    /// a bound every cluster reconciles at once after a start or a mass change, and the
    /// operator's memory grows with the number of clusters (about 50 KiB per reconcile in
    /// flight, heap profile at 1,000 clusters).
    pub max_concurrent_reconciles: u16,
    /// Objects per page of the watchers' listings (`limit` of each list request; at least 1).
    /// Default 500, as client-go's pager.
    pub list_page_size: u32,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            resync: Duration::from_secs(300),
            progress_requeue: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            keep_deleted_logs: Duration::from_secs(3600),
            rules: Rules::default(),
            max_concurrent_reconciles: 128,
            list_page_size: 500,
        }
    }
}

/// A journal record as it is written, with its cluster: what [`Operator::subscribe`] sends.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// The cluster.
    pub cluster: ClusterKey,
    /// The record, as appended to the journal.
    pub record: Record,
}

/// The reflector caches the reconciler reads. No cached object has `managedFields`; the
/// workloads and EndpointSlices hold only what observation reads (see
/// [`observe::slim_stateful_set`], [`observe::slim_deployment`],
/// [`observe::slim_endpoint_slice`]): read anything else from the API server.
#[derive(Clone)]
pub struct Caches {
    /// StarRocksClusters (the controller's own store).
    pub clusters: Store<StarRocksCluster>,
    /// StatefulSets (FE, BE, CN), slimmed.
    pub stateful_sets: Store<StatefulSet>,
    /// Deployments (FE proxy), slimmed.
    pub deployments: Store<Deployment>,
    /// ConfigMaps (referenced config content and the FE proxy's).
    pub config_maps: Store<ConfigMap>,
    /// EndpointSlices (ready endpoints of the component Services), slimmed.
    pub endpoint_slices: Store<EndpointSlice>,
    /// The names of the cached EndpointSlices of each Service.
    pub slices_by_service: slices::SliceIndex,
    /// Whether each cache (named by its kind) has had its first complete listing.
    synced: Vec<(&'static str, synced::Synced)>,
}

impl Caches {
    /// Waits until every cache has its first complete listing, so that a reconcile never
    /// mistakes an unsynced cache for missing objects.
    ///
    /// # Errors
    /// [`ReconcileError::CachesGone`] when a cache's writer is gone (the controller stopped).
    pub async fn wait_until_ready(&self) -> Result<(), ReconcileError> {
        for (_, synced) in &self.synced {
            synced
                .wait()
                .await
                .map_err(|_| ReconcileError::CachesGone)?;
        }
        Ok(())
    }

    /// Whether every cache has had its first complete listing (for `/readyz`; does not wait).
    pub fn ready(&self) -> bool {
        self.synced.iter().all(|(_, synced)| synced.is_synced())
    }

    /// The kinds whose cache has not had its first complete listing yet.
    pub fn unsynced(&self) -> Vec<&'static str> {
        self.synced
            .iter()
            .filter(|(_, synced)| !synced.is_synced())
            .map(|(kind, _)| *kind)
            .collect()
    }
}

/// Errors of one reconcile. Each says what failed; all are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The cluster object lacks server-set metadata (never the case for objects read from
    /// the API server).
    #[error("the StarRocksCluster has no {0}")]
    MissingMetadata(&'static str),
    /// The journal could not be written: no action was taken for the step, and the cluster's
    /// state is rebuilt from the journal, status and observation on the next attempt.
    #[error("journal append for {cluster} failed, nothing was applied: {source}")]
    Journal {
        /// The cluster.
        cluster: String,
        /// The store's error.
        #[source]
        source: Box<JournalError>,
    },
    /// A blocking journal task was cancelled or panicked.
    #[error("the journal task for {0} did not complete")]
    JournalTask(String),
    /// Writing status failed.
    #[error(transparent)]
    Write(Box<apply::WriteError>),
    /// The caches were dropped: the controller is shutting down.
    #[error("the operator's caches are gone (shutting down)")]
    CachesGone,
}

impl From<apply::WriteError> for ReconcileError {
    fn from(e: apply::WriteError) -> Self {
        ReconcileError::Write(Box::new(e))
    }
}

/// Shared state of the reconciler: client, caches, journal and the per-cluster machines.
pub struct Context {
    /// The API client and the metrics counting its writes.
    pub writer: apply::Writer,
    /// The caches.
    pub caches: Caches,
    /// The journal.
    pub journal: Arc<dyn JournalStore + Send + Sync>,
    /// Kubernetes Event publisher.
    pub events: events::EventPublisher,
    /// Behaviour.
    pub config: ControllerConfig,
    runtimes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<ClusterRuntime>>>>>,
    failures: Mutex<HashMap<String, u32>>,
    deleted_since: Mutex<HashMap<String, Instant>>,
    records: broadcast::Sender<JournalEntry>,
    reconciles: std::sync::atomic::AtomicU64,
}

impl Context {
    /// The slot holding a cluster's runtime (machine, last observation); `None` inside until
    /// the first reconcile restores it. One reconcile at a time holds it.
    fn runtime_slot(&self, uid: &str) -> Arc<tokio::sync::Mutex<Option<ClusterRuntime>>> {
        let mut map = crate::lock(&self.runtimes);
        map.entry(uid.to_string()).or_default().clone()
    }

    /// Records a failure and returns the retry delay: `retry_base * 2^(n-1)`, at most
    /// `retry_max`.
    fn retry_delay(&self, uid: &str) -> Duration {
        let mut failures = crate::lock(&self.failures);
        let n = failures.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(16));
        self.config
            .retry_base
            .saturating_mul(factor)
            .min(self.config.retry_max)
    }

    /// The metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.writer.metrics
    }

    /// Reconciles started since the operator was built.
    pub fn reconcile_count(&self) -> u64 {
        self.reconciles.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn clear_failures(&self, uid: &str) {
        crate::lock(&self.failures).remove(uid);
    }

    /// Removes the logs (and machines) of clusters that have been gone from the cache for
    /// longer than [`ControllerConfig::keep_deleted_logs`]. Returns the removed UIDs.
    ///
    /// # Errors
    /// [`JournalError`] from listing or removing.
    pub fn collect_deleted(&self) -> Result<Vec<String>, JournalError> {
        let live: std::collections::HashSet<String> = self
            .caches
            .clusters
            .state()
            .iter()
            .filter_map(|c| c.metadata.uid.clone())
            .collect();
        let now = Instant::now();
        let mut removed = Vec::new();
        let mut deleted_since = crate::lock(&self.deleted_since);
        deleted_since.retain(|uid, _| !live.contains(uid));
        for log in self.journal.clusters()? {
            let uid = &log.cluster.uid;
            if live.contains(uid) {
                continue;
            }
            let since = *deleted_since.entry(uid.clone()).or_insert(now);
            if now.duration_since(since) >= self.config.keep_deleted_logs {
                self.journal.remove(uid)?;
                crate::lock(&self.runtimes).remove(uid);
                deleted_since.remove(uid);
                removed.push(uid.clone());
            }
        }
        Ok(removed)
    }
}

/// The running operator's controller, built but not started.
pub struct Operator {
    ctx: Arc<Context>,
    controller: Controller<StarRocksCluster>,
}

/// A reflector over `api` whose events also trigger the controller, its cache, and whether the
/// cache has had its first complete listing. `slim` drops what the reconciler never reads from
/// each object before it is cached (see [`observe::slim_stateful_set`]); `managedFields`, never
/// read and often the largest part of an object, are dropped from every object. `on_event`
/// sees each watcher event after the cache has applied it.
fn reflect<K>(
    api: Api<K>,
    wc: watcher::Config,
    slim: fn(&mut K),
    mut on_event: impl FnMut(&watcher::Event<K>) + Send + 'static,
) -> (
    Store<K>,
    synced::Synced,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let (setter, synced) = synced::flag();
    let stream = watcher(api, wc).modify(move |o: &mut K| {
        o.managed_fields_mut().clear();
        slim(o);
    });
    let stream = reflector::reflector(writer, stream)
        .inspect(move |event| {
            if let Ok(event) = event {
                setter.observe(event);
                on_event(event);
            }
        })
        .default_backoff()
        .touched_objects();
    (reader, synced, stream)
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl Operator {
    /// Builds the controller and its caches. Nothing runs until [`Operator::run`].
    pub fn new(
        client: Client,
        journal: Arc<dyn JournalStore + Send + Sync>,
        config: ControllerConfig,
        reporter: Reporter,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Operator {
        let ns = config.namespace.as_deref();
        let wc = watcher::Config::default().page_size(config.list_page_size.max(1));
        // Only objects that carry the component label (this operator's and upstream's).
        let components = wc.clone().labels(crate::render::names::COMPONENT_LABEL);
        // The clusters as `Controller::new` watches them (no backoff of its own: the
        // controller's trigger backoff covers it), without their managedFields, but with the
        // clusters of a listing triggered only once it is complete (see `clusters_to_reconcile`).
        let (clusters, cluster_writer) = reflector::store();
        let (cluster_setter, clusters_synced) = synced::flag();
        let cluster_events = reflector::reflector(
            cluster_writer,
            watcher(api::<StarRocksCluster>(&client, ns), wc.clone())
                .modify(|c: &mut StarRocksCluster| c.managed_fields_mut().clear()),
        )
        .inspect(move |event| {
            if let Ok(event) = event {
                cluster_setter.observe(event);
            }
        });
        let cluster_stream = clusters_to_reconcile(cluster_events, clusters.clone())
            .predicate_filter(reconcile_trigger, PredicateConfig::default());
        let controller = Controller::for_stream(cluster_stream, clusters.clone());
        let (stateful_sets, stateful_sets_synced, sts_stream) = reflect(
            api::<StatefulSet>(&client, ns),
            components.clone(),
            observe::slim_stateful_set,
            |_| {},
        );
        let (deployments, deployments_synced, deploy_stream) = reflect(
            api::<Deployment>(&client, ns),
            components.clone(),
            observe::slim_deployment,
            |_| {},
        );
        let (config_maps, config_maps_synced, cm_stream) =
            reflect(api::<ConfigMap>(&client, ns), wc.clone(), |_| {}, |_| {});
        let slices_by_service = slices::SliceIndex::default();
        let (endpoint_slices, endpoint_slices_synced, slice_stream) = reflect(
            api::<EndpointSlice>(&client, ns),
            wc.clone().labels(observe::SERVICE_NAME_LABEL),
            observe::slim_endpoint_slice,
            {
                let index = slices_by_service.clone();
                move |event| index.record(event)
            },
        );
        let cm_clusters = clusters.clone();
        let controller = controller
            .owns_stream(sts_stream)
            .owns_stream(deploy_stream)
            .owns(api::<Service>(&client, ns), components.clone())
            .owns(api::<PodDisruptionBudget>(&client, ns), components.clone())
            .owns(api::<HorizontalPodAutoscaler>(&client, ns), components)
            .watches_stream(cm_stream, move |cm: ConfigMap| {
                clusters_of_config_map(&cm_clusters, &cm)
            })
            .watches_stream(slice_stream, |slice: EndpointSlice| {
                let namespace = slice.namespace()?;
                let service = slice.labels().get(observe::SERVICE_NAME_LABEL)?;
                let cluster = observe::cluster_of_service(service)?;
                Some(ObjectRef::<StarRocksCluster>::new(cluster).within(&namespace))
            });
        let (records, _) = broadcast::channel(4096);
        let ctx = Arc::new(Context {
            events: events::EventPublisher::new(client.clone(), reporter),
            writer: apply::Writer { client, metrics },
            caches: Caches {
                clusters,
                stateful_sets,
                deployments,
                config_maps,
                endpoint_slices,
                slices_by_service,
                synced: vec![
                    ("StarRocksCluster", clusters_synced),
                    ("StatefulSet", stateful_sets_synced),
                    ("Deployment", deployments_synced),
                    ("ConfigMap", config_maps_synced),
                    ("EndpointSlice", endpoint_slices_synced),
                ],
            },
            journal,
            config,
            runtimes: Mutex::default(),
            failures: Mutex::default(),
            deleted_since: Mutex::default(),
            records,
            reconciles: std::sync::atomic::AtomicU64::new(0),
        });
        Operator { ctx, controller }
    }

    /// Every journal record as it is appended (for progress displays and tests). Receivers
    /// that fall behind by more than 4,096 records lose the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<JournalEntry> {
        self.ctx.records.subscribe()
    }

    /// The shared context (caches for readiness, the journal for the HTTP export).
    pub fn context(&self) -> Arc<Context> {
        self.ctx.clone()
    }

    /// Runs the controller until `shutdown` completes, with a janitor that removes the logs
    /// of deleted clusters. Reconcile errors are logged and retried with backoff; they never
    /// end the run.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
        let ctx = self.ctx.clone();
        // The janitor ends with the run future, even when that future is dropped (aborted)
        // rather than shut down.
        let _janitor = crate::AbortOnDrop::new(tokio::spawn({
            let ctx = ctx.clone();
            async move {
                let period = (ctx.config.keep_deleted_logs / 4).max(Duration::from_secs(1));
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    let ctx = ctx.clone();
                    match tokio::task::spawn_blocking(move || ctx.collect_deleted()).await {
                        Ok(Ok(removed)) => {
                            for uid in removed {
                                tracing::info!(uid, "removed the journal log of a deleted cluster");
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "journal garbage collection failed")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "journal garbage collection task failed")
                        }
                    }
                }
            }
        }));
        let bound = ctx.config.max_concurrent_reconciles.max(1);
        self.controller
            .with_config(kube::runtime::controller::Config::default().concurrency(bound))
            .graceful_shutdown_on(shutdown)
            .run(reconcile::reconcile, error_policy, ctx)
            .for_each(|result| async move {
                match result {
                    Ok(_) => {}
                    Err(kube::runtime::controller::Error::ReconcilerFailed(e, obj)) => {
                        tracing::warn!(cluster = %obj, error = %e, "reconcile failed; retrying with backoff");
                    }
                    Err(e) => tracing::debug!(error = %e, "controller event"),
                }
            })
            .await;
    }
}

/// The clusters to reconcile, from the cluster reflector's events (after the reflector has
/// applied each): a cluster the watch applies at once, and the clusters of a listing (the first,
/// or a relist after `410 Gone`) when the listing is complete, read back from `cache`.
///
/// Why not `applied_objects()`: kube-runtime's reflector takes a listing into its cache only at
/// its end (`InitDone`, after the last page), while the controller looks every triggered
/// cluster up in that cache. A cluster new in a relist, triggered as its page arrives, is not
/// there yet; its reconcile is dropped ("not found in local store") and nothing triggers it
/// again (test `a_cluster_first_seen_in_a_relist_is_reconciled`). Holding only the listed
/// references keeps the cost of a 1,000-cluster listing at one `ObjectRef` each.
fn clusters_to_reconcile(
    events: impl futures::Stream<Item = Result<watcher::Event<StarRocksCluster>, watcher::Error>>
    + Send
    + 'static,
    cache: Store<StarRocksCluster>,
) -> impl futures::Stream<Item = Result<StarRocksCluster, watcher::Error>> + Send + 'static {
    type Triggers = Box<dyn Iterator<Item = Result<StarRocksCluster, watcher::Error>> + Send>;
    events
        .scan(
            Vec::<ObjectRef<StarRocksCluster>>::new(),
            move |listed, event| {
                let triggers: Triggers = match event {
                    Err(e) => Box::new(std::iter::once(Err(e))),
                    Ok(watcher::Event::Apply(cluster)) => Box::new(std::iter::once(Ok(cluster))),
                    Ok(watcher::Event::Delete(_)) => Box::new(std::iter::empty()),
                    Ok(watcher::Event::Init) => {
                        listed.clear();
                        Box::new(std::iter::empty())
                    }
                    Ok(watcher::Event::InitApply(cluster)) => {
                        listed.push(ObjectRef::from_obj(&cluster));
                        Box::new(std::iter::empty())
                    }
                    Ok(watcher::Event::InitDone) => {
                        let cache = cache.clone();
                        Box::new(
                            std::mem::take(listed)
                                .into_iter()
                                .filter_map(move |r| cache.get(&r))
                                .map(|cluster| Ok(StarRocksCluster::clone(&cluster))),
                        )
                    }
                };
                futures::future::ready(Some(futures::stream::iter(triggers)))
            },
        )
        .flatten()
}

/// What of a cluster, when it changes, calls for a reconcile: its generation (the spec), labels,
/// annotations (the pause annotation), finalizers and deletion. A change of the status alone
/// does not: the status is this operator's, and the echo of each of its own status writes
/// (about 8 per cluster on a first deployment) would reconcile an unchanged cluster (scale
/// bench at 1,000 clusters: 15.4 reconciles per cluster with the echoes, about 10 without).
/// The cache of the clusters still takes every change; the periodic requeue still reconciles
/// every cluster (after a status edited by someone else, say).
/// A predicate for kube-runtime's `predicate_filter`, as controller-runtime's
/// `GenerationChangedPredicate` combined with label and annotation predicates.
fn reconcile_trigger(cluster: &StarRocksCluster) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = &cluster.metadata;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The clusters a ConfigMap concerns: its owner (the FE proxy's ConfigMap) and every cluster
/// in its namespace that references it by name.
fn clusters_of_config_map(
    clusters: &Store<StarRocksCluster>,
    cm: &ConfigMap,
) -> Vec<ObjectRef<StarRocksCluster>> {
    let (Some(namespace), Some(name)) = (
        cm.metadata.namespace.as_deref(),
        cm.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    clusters
        .state()
        .iter()
        .filter(|c| c.metadata.namespace.as_deref() == Some(namespace))
        .filter(|c| {
            crate::render::referenced_config_maps(c).contains(name)
                || cm
                    .owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == c.metadata.uid.as_ref())
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Retries a failed reconcile with per-cluster exponential backoff.
fn error_policy(
    cluster: Arc<StarRocksCluster>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Requeue {
    let uid = cluster.metadata.uid.clone().unwrap_or_default();
    let delay = ctx.retry_delay(&uid);
    ctx.metrics()
        .reconcile_errors
        .get_or_create(&crate::metrics::ClusterLabel {
            cluster: format!(
                "{}/{}",
                cluster.namespace().unwrap_or_default(),
                cluster.name_any()
            ),
        })
        .inc();
    tracing::warn!(
        cluster = %format!("{}/{}", cluster.namespace().unwrap_or_default(), cluster.name_any()),
        error = %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Requeue::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::reconcile_trigger;
    use crate::crd::StarRocksCluster;

    #[test]
    fn only_status_changes_do_not_trigger_a_reconcile() {
        let mut cluster: StarRocksCluster =
            serde_saphyr::from_str(crate::demo::DEMO_CLUSTER).expect("the demo cluster parses");
        cluster.metadata.generation = Some(1);
        let base = reconcile_trigger(&cluster);
        let mut status_only = cluster.clone();
        status_only.status = Some(Default::default());
        status_only.metadata.resource_version = Some("42".into());
        assert_eq!(reconcile_trigger(&status_only), base);
        let changes: [fn(&mut StarRocksCluster); 5] = [
            |c| c.metadata.generation = Some(2),
            |c| {
                c.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(crate::render::names::PAUSE_ANNOTATION.into(), "true".into());
            },
            |c| {
                c.metadata
                    .labels
                    .get_or_insert_default()
                    .insert("team".into(), "a".into());
            },
            |c| c.metadata.finalizers = Some(vec!["example.com/hold".into()]),
            |c| {
                c.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                    ))
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = cluster.clone();
            change(&mut changed);
            assert_ne!(reconcile_trigger(&changed), base, "change {i}");
        }
    }
}
