//! One reconcile of one cluster: observe, derive events, journal and decide, act, report.
//!
//! Per reconcile:
//! 1. read the cluster's referenced ConfigMaps from the cache and render the cluster, unless
//!    its generation and those ConfigMaps' content are those of the last render (see
//!    [`Rendered`]; the desired state is kept, the render dropped; each apply renders again);
//! 2. observe its workloads and endpoints from the caches;
//! 3. derive events: `Restarted` on the first reconcile of this process (after restoring the
//!    machine from the journal), otherwise `Paused`/`Resumed`, the observation diff and
//!    `SpecChanged`, or a `Resync` when nothing changed;
//! 4. for each event: the machine decides a step, the step is journaled (flushed when it has
//!    actions, only written when it has none), then its actions run; apply results
//!    (`ApplyFinished` with the generation and uid the API server returned, or `ApplyFailed`)
//!    are fed back before any other event;
//! 5. write status if it differs from the cached status; requeue.

use super::apply::{self, Applied};
use super::observe::{CachedObjects, observe_cluster};
use super::status::{StatusInputs, compute, describe, needs_write};
use super::{Context, JournalEntry, ReconcileError};
use crate::crd::StarRocksCluster;
use crate::journal::{ClusterKey, Durability, JournalError};
use crate::metrics::{ClusterLabel, ConditionLabel, StateLabel, TransitionLabels};
use crate::render::names::{PAUSE_ANNOTATION, service_name, workload_name};
use crate::render::{ConfigInputs, desired_from_render, referenced_config_maps, render_cluster};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef;
use starrocks_model::Machine;
use starrocks_model::action::{Action, EventType};
use starrocks_model::component::Component;
use starrocks_model::event::Event;
use starrocks_model::journal::{Record, replay_with};
use starrocks_model::observe::{ClusterObservation, diff};
use starrocks_model::spec::DesiredCluster;
use starrocks_model::state::LifecycleState;
use std::collections::VecDeque;
use std::sync::Arc;
use tracing::Instrument;

/// Steps one event may cause (its apply results included) before the reconcile gives up: a
/// guard against a model that loops, which the property tests rule out.
const MAX_STEPS_PER_EVENT: usize = 64;

/// What this process knows of one cluster between reconciles.
pub struct ClusterRuntime {
    /// The lifecycle machine.
    pub machine: Machine,
    /// Sequence number of the next journal record.
    pub next_seq: u64,
    /// The observation last fed to the machine (the spec and the pause flag last fed are in
    /// its knowledge; observations are not, as it drops stale ones).
    pub observation: ClusterObservation,
    /// When the machine entered its current state (for the time-per-state metric).
    pub state_since: std::time::Instant,
    /// The desired state last rendered and what it was rendered from: reused while the
    /// cluster's generation and its ConfigMap inputs are unchanged.
    pub rendered: Option<Rendered>,
}

/// A desired state and what it was rendered from. The render is a pure function of the
/// cluster's identity (fixed for a runtime), its spec and its referenced ConfigMaps' content,
/// and the API server bumps `metadata.generation` on every spec change (Kubernetes API
/// conventions, "metadata.generation"), so the same generation and inputs render the same.
/// Rendering (and hashing the pod templates) was a fifth of the operator's CPU at 1,000
/// clusters, where most reconciles follow status changes of the cluster's objects.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `metadata.generation` of the cluster rendered.
    pub generation: i64,
    /// The referenced ConfigMaps' content.
    pub inputs: ConfigInputs,
    /// The result.
    pub desired: DesiredCluster,
}

/// Whether the cluster carries the pause annotation with value `"true"`.
pub fn is_paused(cluster: &StarRocksCluster) -> bool {
    cluster
        .annotations()
        .get(PAUSE_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The key of the cluster's journal log.
///
/// # Errors
/// [`ReconcileError::MissingMetadata`] without a uid, namespace or name.
pub fn cluster_key(cluster: &StarRocksCluster) -> Result<ClusterKey, ReconcileError> {
    let m = &cluster.metadata;
    Ok(ClusterKey::new(
        m.uid
            .clone()
            .ok_or(ReconcileError::MissingMetadata("metadata.uid"))?,
        m.namespace
            .clone()
            .ok_or(ReconcileError::MissingMetadata("metadata.namespace"))?,
        m.name
            .clone()
            .ok_or(ReconcileError::MissingMetadata("metadata.name"))?,
    ))
}

/// The components the spec declares.
fn declared(cluster: &StarRocksCluster) -> Vec<Component> {
    let s = &cluster.spec;
    [
        (Component::Fe, s.star_rocks_fe_spec.is_some()),
        (Component::Be, s.star_rocks_be_spec.is_some()),
        (Component::Cn, s.star_rocks_cn_spec.is_some()),
        (Component::FeProxy, s.star_rocks_fe_proxy_spec.is_some()),
    ]
    .into_iter()
    .filter_map(|(c, present)| present.then_some(c))
    .collect()
}

/// The reconcile entry point kube-runtime calls, in a span carrying the cluster, its state and
/// the actions taken.
///
/// # Errors
/// [`ReconcileError`]; the controller retries with backoff.
pub async fn reconcile(
    cluster: Arc<StarRocksCluster>,
    ctx: Arc<Context>,
) -> Result<Requeue, ReconcileError> {
    let key = cluster_key(&cluster)?;
    // The reconcile id: this process's count of reconciles, so that log lines of one
    // reconcile can be grouped.
    let id = ctx
        .reconciles
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let span = tracing::info_span!(
        "reconcile",
        id,
        cluster = %format!("{}/{}", key.namespace, key.name),
        state = tracing::field::Empty,
        action = tracing::field::Empty,
    );
    reconcile_in_span(cluster, ctx, key).instrument(span).await
}

async fn reconcile_in_span(
    cluster: Arc<StarRocksCluster>,
    ctx: Arc<Context>,
    key: ClusterKey,
) -> Result<Requeue, ReconcileError> {
    ctx.caches.wait_until_ready().await?;
    ctx.metrics()
        .reconciles
        .get_or_create(&ClusterLabel {
            cluster: format!("{}/{}", key.namespace, key.name),
        })
        .inc();
    if cluster.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the cluster (owner references); the log is collected later.
        return Ok(Requeue::await_change());
    }
    let slot = ctx.runtime_slot(&key.uid);
    let mut guard = slot.lock().await;

    let inputs = config_inputs(&ctx, &cluster, &key.namespace);
    // The render is dropped once the desired state is taken from it, and rendered again for
    // each apply (it is pure: the same cluster and inputs render the same objects), so that
    // no reconcile holds a whole rendered cluster (tens of KiB) while it waits on the journal
    // or the API server: with every cluster reconciling at once, those renders were the
    // largest part of the operator's peak memory.
    let cached = guard
        .as_ref()
        .and_then(|rt| rt.rendered.as_ref())
        .filter(|r| Some(r.generation) == cluster.metadata.generation && r.inputs == inputs);
    let desired = match cached {
        Some(r) => r.desired.clone(),
        None => desired_from_render(&cluster, &render_cluster(&cluster, &inputs)),
    };
    let rendered = cluster.metadata.generation.map(|generation| Rendered {
        generation,
        inputs: inputs.clone(),
        desired: desired.clone(),
    });
    let mut observation = observe(&ctx, &key);
    let paused = is_paused(&cluster);
    if !paused {
        adopt(&ctx, &cluster, &key, &desired, &mut observation).await;
    }

    let (mut runtime, events) = match guard.take() {
        Some(mut rt) => {
            let mut events = Vec::new();
            let known = rt.machine.knowledge();
            let resumed = known.paused && !paused;
            if paused && !known.paused {
                events.push(Event::Paused);
            }
            events.extend(diff(&rt.observation, &observation));
            if known.desired.as_ref() != Some(&desired) {
                events.push(Event::SpecChanged {
                    spec: desired.clone(),
                });
            }
            // A resume goes last, so that the machine replans once, on this reconcile's spec
            // and observations: fed first, it acted on the last spec seen while paused (an FE
            // roll for the first of two ConfigMap edits, then the BE one after it).
            if resumed {
                events.push(Event::Resumed);
            }
            if events.is_empty() {
                events.push(Event::Resync);
            }
            rt.observation = observation.clone();
            rt.rendered = rendered;
            (rt, events)
        }
        None => {
            let (machine, next_seq) = restore(&ctx, &cluster, &key).await;
            let rt = ClusterRuntime {
                machine,
                next_seq,
                observation: observation.clone(),
                state_since: std::time::Instant::now(),
                rendered,
            };
            let restarted = Event::Restarted {
                spec: desired.clone(),
                observations: observation.clone(),
                paused,
            };
            (rt, vec![restarted])
        }
    };

    let mut outcome = Outcome::default();
    for event in events {
        // On error the runtime is dropped (the slot stays empty): the machine may have moved
        // past what the journal holds, so the next attempt rebuilds it from the journal,
        // status and observation.
        feed(
            &ctx,
            &cluster,
            &key,
            &inputs,
            &mut runtime,
            event,
            &mut outcome,
        )
        .await?;
    }

    let state = runtime.machine.state();
    let waiting_on = runtime.machine.waiting_on();
    if let Some((_, why)) = &waiting_on {
        ctx.metrics()
            .gate_waits
            .get_or_create(&ConditionLabel {
                condition: why.label().to_string(),
            })
            .inc();
    }
    let span = tracing::Span::current();
    span.record("state", state.name());
    span.record("action", outcome.summary().as_str());

    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let in_spec = declared(&cluster);
    let status = compute(&StatusInputs {
        cluster: &cluster,
        state: &state,
        waiting_on: waiting_on.as_ref(),
        observation: &observation,
        in_spec: &in_spec,
        now: &now,
    });
    *guard = Some(runtime);
    drop(guard);
    if needs_write(&cluster, &status) {
        apply::write_status(&ctx.writer, &cluster, &status).await?;
        outcome.status_written = true;
    }
    tracing::debug!(
        state = %describe(&state, waiting_on.as_ref()),
        status_written = outcome.status_written,
        "reconciled"
    );
    if outcome.retry {
        return Ok(Requeue::requeue(ctx.retry_delay(&key.uid)));
    }
    ctx.clear_failures(&key.uid);
    let in_progress = state.rollout().is_some()
        || matches!(state, LifecycleState::Creating | LifecycleState::WaitingFe);
    Ok(Requeue::requeue(if in_progress {
        ctx.config.progress_requeue
    } else {
        ctx.config.resync
    }))
}

/// What one reconcile did, for its span and its requeue.
#[derive(Debug, Default)]
struct Outcome {
    applied: Vec<Component>,
    deleted: Vec<Component>,
    status_written: bool,
    /// An apply or delete failed: retry with backoff.
    retry: bool,
}

impl Outcome {
    fn summary(&self) -> String {
        let names = |cs: &[Component]| {
            cs.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match (self.applied.is_empty(), self.deleted.is_empty()) {
            (true, true) => "none".to_string(),
            (false, true) => format!("apply {}", names(&self.applied)),
            (true, false) => format!("delete {}", names(&self.deleted)),
            (false, false) => format!(
                "apply {}; delete {}",
                names(&self.applied),
                names(&self.deleted)
            ),
        }
    }
}

/// The `data` of every ConfigMap the cluster references that the cache holds.
fn config_inputs(ctx: &Context, cluster: &StarRocksCluster, namespace: &str) -> ConfigInputs {
    let mut inputs = ConfigInputs::new();
    for name in referenced_config_maps(cluster) {
        let key = ObjectRef::<ConfigMap>::new(&name).within(namespace);
        if let Some(cm) = ctx.caches.config_maps.get(&key) {
            inputs.insert(name, cm.data.clone().unwrap_or_default());
        }
    }
    inputs
}

/// Observes the cluster from the caches, reading only its own objects: its workloads by name
/// and its Services' slices through the slice index, so a reconcile costs the same with one
/// cluster as with a thousand.
fn observe(ctx: &Context, key: &ClusterKey) -> ClusterObservation {
    let ns = key.namespace.as_str();
    let caches = &ctx.caches;
    let mut sets = Vec::new();
    let mut deployments = Vec::new();
    let mut slices = Vec::new();
    for component in Component::ALL {
        let workload = workload_name(&key.name, component);
        sets.extend(
            caches
                .stateful_sets
                .get(&ObjectRef::new(&workload).within(ns)),
        );
        deployments.extend(
            caches
                .deployments
                .get(&ObjectRef::new(&workload).within(ns)),
        );
        let service = service_name(&key.name, component);
        for slice in caches.slices_by_service.slices_of(ns, &service) {
            slices.extend(caches.endpoint_slices.get(&slice));
        }
    }
    let sets: Vec<_> = sets.iter().map(|s| s.as_ref()).collect();
    let deployments: Vec<_> = deployments.iter().map(|d| d.as_ref()).collect();
    let slices: Vec<_> = slices.iter().map(|s| s.as_ref()).collect();
    observe_cluster(
        CachedObjects {
            stateful_sets: &sets,
            deployments: &deployments,
            endpoint_slices: &slices,
        },
        &key.namespace,
        &key.name,
        &key.uid,
    )
}

/// Adopts workloads found without a template hash that already run the desired image and
/// replicas (see [`super::observe::adoptable`]): marks each with a metadata-only apply and
/// observes it at the desired hash, so that the model sees it as applied and no pod rolls.
/// A failed mark is retried on the next reconcile; meanwhile the workload is observed as it is.
async fn adopt(
    ctx: &Context,
    cluster: &StarRocksCluster,
    key: &ClusterKey,
    desired: &DesiredCluster,
    observation: &mut ClusterObservation,
) {
    for (component, observed) in observation.iter_mut() {
        let Some(want) = desired.get(*component) else {
            continue;
        };
        if !super::observe::adoptable(observed, want) {
            continue;
        }
        match apply::mark_adopted(
            &ctx.writer,
            &key.namespace,
            &key.name,
            *component,
            &want.template_hash,
        )
        .await
        {
            Ok(()) => {
                observed.template_hash = Some(want.template_hash.clone());
                let message = format!(
                    "adopted the existing {component} workload running {} as it is (no pods restarted)",
                    want.image
                );
                tracing::info!(%component, "{message}");
                apply::publish_event(&ctx.events, cluster, EventType::Normal, "Adopted", &message)
                    .await;
            }
            Err(e) => tracing::warn!(%component, error = %e, "adoption mark failed; retrying"),
        }
    }
}

/// Restores the cluster's machine from its journal log: the replayed machine and the next
/// sequence number. A log that does not decode is removed and a fresh one started; a log that
/// today's model replays differently is kept but not trusted (a fresh machine). Either way
/// the `Restarted` event that follows rebuilds the plan from the CR and the observation, so
/// status and observation win. A journal state that disagrees with the state in status is
/// logged and reported as a Warning Event.
async fn restore(ctx: &Context, cluster: &StarRocksCluster, key: &ClusterKey) -> (Machine, u64) {
    let rules = ctx.config.rules;
    let journal = ctx.journal.clone();
    let uid = key.uid.clone();
    let read = tokio::task::spawn_blocking(move || journal.read(&uid)).await;
    let records = match read {
        Ok(Ok(records)) => records,
        Ok(Err(e)) => {
            let journal = ctx.journal.clone();
            let uid = key.uid.clone();
            let removed = tokio::task::spawn_blocking(move || journal.remove(&uid)).await;
            tracing::error!(error = %e, removed = ?removed.ok().map(|r| r.is_ok()),
                "the cluster's journal log does not decode; it was removed and is rebuilt from status and observation");
            apply::publish_event(
                &ctx.events,
                cluster,
                EventType::Warning,
                "JournalRebuilt",
                &format!(
                    "the journal log does not decode ({e}); rebuilt from status and observation"
                ),
            )
            .await;
            Vec::new()
        }
        Err(e) => {
            tracing::error!(error = %e, "the journal read task failed; starting from status and observation");
            Vec::new()
        }
    };
    let next_seq = records.last().map_or(0, |r| r.seq + 1);
    let machine = if records.is_empty() {
        Machine::with_rules(rules)
    } else {
        match replay_with(rules, &records, |_, _| {}) {
            Ok(machine) => machine,
            Err(divergence) => {
                tracing::warn!(%divergence, "today's model replays the journal differently; starting from status and observation");
                Machine::with_rules(rules)
            }
        }
    };
    let status_state = cluster
        .status
        .as_ref()
        .and_then(|s| s.lifecycle.as_ref())
        .and_then(|l| l.state.clone());
    let journal_state = machine.state();
    if !records.is_empty()
        && let Some(status_state) = status_state
        && status_state != journal_state.name()
    {
        let message = format!(
            "the journal says {journal_state} but status says {status_state}; status and observation win"
        );
        tracing::warn!("{message}");
        apply::publish_event(
            &ctx.events,
            cluster,
            EventType::Warning,
            "JournalDisagreesWithStatus",
            &message,
        )
        .await;
    }
    (machine, next_seq)
}

/// Feeds one event and then its apply results, journaling each step before running its
/// actions (the shell's part of the model's contract: results before anything else).
async fn feed(
    ctx: &Context,
    cluster: &StarRocksCluster,
    key: &ClusterKey,
    inputs: &ConfigInputs,
    runtime: &mut ClusterRuntime,
    event: Event,
    outcome: &mut Outcome,
) -> Result<(), ReconcileError> {
    let mut pending = VecDeque::from([event]);
    let mut steps = 0;
    while let Some(event) = pending.pop_front() {
        steps += 1;
        if steps > MAX_STEPS_PER_EVENT {
            tracing::error!(last = ?event, "the model did not settle; stopping this reconcile");
            outcome.retry = true;
            return Ok(());
        }
        let step = runtime.machine.handle(&event);
        let noop =
            matches!(event, Event::Resync) && step.before == step.after && step.actions.is_empty();
        if noop {
            continue;
        }
        let actions = step.actions.clone();
        if step.before != step.after {
            let metrics = ctx.metrics();
            let (from, to) = (
                step.before.name().to_string(),
                step.after.name().to_string(),
            );
            metrics
                .state_seconds
                .get_or_create(&StateLabel {
                    state: from.clone(),
                })
                .inc_by(runtime.state_since.elapsed().as_secs_f64());
            runtime.state_since = std::time::Instant::now();
            metrics
                .transitions
                .get_or_create(&TransitionLabels { from, to })
                .inc();
        }
        let record = Record::new(runtime.next_seq, chrono::Utc::now(), event, step);
        append(ctx, key, record).await?;
        runtime.next_seq += 1;
        for action in actions {
            if let Some(result) = execute(ctx, cluster, key, inputs, &action, outcome).await {
                pending.push_back(result);
            }
        }
    }
    Ok(())
}

/// Appends one record, then announces it. A record whose step decided actions is flushed
/// before it returns, since its actions run next (DESIGN.md, "The journal"); one that decided
/// none is only written ([`Durability::Written`]), and reaches disk with the next flush. At
/// 1,000 clusters, 11 of a cluster's 14 records on its way to Steady decide nothing, and the
/// flushes were a quarter of the operator's CPU.
async fn append(ctx: &Context, key: &ClusterKey, record: Record) -> Result<(), ReconcileError> {
    let journal = ctx.journal.clone();
    let (k, r) = (key.clone(), record.clone());
    let durability = Durability::for_record(&record);
    let appended = tokio::task::spawn_blocking(move || {
        journal.append_with(&k, std::slice::from_ref(&r), durability)
    })
    .await
    .map_err(|_| ReconcileError::JournalTask(key.to_string()))?
    .map_err(|source: JournalError| ReconcileError::Journal {
        cluster: key.to_string(),
        source: Box::new(source),
    })?;
    let metrics = ctx.metrics();
    metrics.journal_appends.inc();
    metrics.journal_bytes.inc_by(appended.bytes);
    tracing::info!(
        seq = record.seq,
        event = record.event.kind(),
        before = %record.before,
        after = %record.after,
        actions = record.actions.len(),
        "step"
    );
    let _ = ctx.records.send(JournalEntry {
        cluster: key.clone(),
        record,
    });
    Ok(())
}

/// Runs one action; returns the event to feed back (apply results).
async fn execute(
    ctx: &Context,
    cluster: &StarRocksCluster,
    key: &ClusterKey,
    inputs: &ConfigInputs,
    action: &Action,
    outcome: &mut Outcome,
) -> Option<Event> {
    match action {
        Action::Apply {
            component,
            template_hash,
            replicas,
        } => {
            let failed = |reason: String| Event::ApplyFailed {
                component: *component,
                template_hash: template_hash.clone(),
                reason,
            };
            // Only this component's objects are kept while the apply waits on the API server.
            let objects = match render_cluster(cluster, inputs) {
                Ok(mut r) => r.components.remove(component),
                Err(e) => return Some(failed(format!("the spec does not render: {e}"))),
            };
            let Some(objects) = objects.filter(|o| o.desired.template_hash == *template_hash)
            else {
                // The model asked for a template this render does not produce: the spec
                // changed under it; the SpecChanged event that follows replans.
                return Some(failed(
                    "the rendered template changed; replanning".to_string(),
                ));
            };
            match apply::apply_component(&ctx.writer, &key.namespace, &objects, *replicas).await {
                Ok(Applied { generation, uid }) => {
                    outcome.applied.push(*component);
                    Some(Event::ApplyFinished {
                        component: *component,
                        template_hash: template_hash.clone(),
                        generation,
                        uid,
                    })
                }
                Err(e) => {
                    outcome.retry = true;
                    tracing::warn!(%component, error = %e, transient = e.is_transient(), "apply failed");
                    Some(failed(e.to_string()))
                }
            }
        }
        Action::Delete { component } => {
            match apply::delete_component(&ctx.writer, &key.namespace, &key.name, *component).await
            {
                Ok(()) => outcome.deleted.push(*component),
                Err(e) => {
                    outcome.retry = true;
                    tracing::warn!(%component, error = %e, "delete failed");
                    apply::publish_event(
                        &ctx.events,
                        cluster,
                        EventType::Warning,
                        "DeleteFailed",
                        &format!("{e}; retrying"),
                    )
                    .await;
                }
            }
            None
        }
        // Status is computed from the machine once per reconcile, after every step.
        Action::WriteStatus { .. } => None,
        Action::EmitEvent {
            event_type,
            reason,
            message,
        } => {
            apply::publish_event(&ctx.events, cluster, *event_type, reason, message).await;
            None
        }
    }
}
