//! The StatefulSet controller.
//!
//! Semantics from the Kubernetes docs "StatefulSets" and "StatefulSet Basics":
//! - pods are named `<set>-<ordinal>`, labelled `statefulset.kubernetes.io/pod-name`,
//!   `apps.kubernetes.io/pod-index` and `controller-revision-hash` (the revision name);
//! - the pod template of each revision is kept in a `ControllerRevision` named
//!   `<set>-<hash>`; `status.updateRevision` names the template's revision and
//!   `status.currentRevision` the revision of the set before the update, which becomes the update
//!   revision once a RollingUpdate has completed (`updatedReplicas`, `readyReplicas` and
//!   `replicas` all equal `spec.replicas`; never for `OnDelete`, as upstream);
//! - `OrderedReady` creates pods one at a time in ordinal order, each after its predecessors are
//!   Running and Ready, and removes them in reverse order; `Parallel` creates and deletes at once;
//! - `RollingUpdate` replaces pods from the highest ordinal down to `partition`, one at a time
//!   (or up to `maxUnavailable`), waiting for each updated pod to be Running and Ready; pods
//!   below `partition` are (re)created at the current revision; `OnDelete` only replaces pods a
//!   user deletes;
//! - status counts `replicas`, `readyReplicas`, `currentReplicas`, `updatedReplicas`,
//!   `availableReplicas`, and `observedGeneration`, which here catches up with
//!   `metadata.generation` only after the configured lag (the controller does nothing with a new
//!   generation before that).

use crate::jsonpath::JsonPath;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::clock::SimClock;
use crate::controllers::{self, CONTROLLER_MANAGER, controller_ref, pod_ready, safe_hash};
use crate::options::SimOptions;
use crate::state::Access;
use crate::store::{EventKind, Store};

/// Label with the revision name on pods.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Label with the pod name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label with the ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// Controller memory: when each generation was first seen, and the inputs (set
/// resourceVersion, last change of an owned object) of each set's last reconcile that was a
/// no-op, so that it is not repeated while they are unchanged. Only the sets that changed, or
/// whose owned objects changed, since the last pass (read from the store's history) and those
/// not yet idle are looked at.
#[derive(Debug, Default)]
pub struct StatefulSetController {
    seen: HashMap<(String, String), (i64, Instant)>,
    idle: HashMap<(String, String), (u64, u64)>,
    changes: controllers::Changes,
    pending: controllers::Pending,
}

fn int_or_percent(v: Option<&Value>, total: i64, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => (total * p) / 100,
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

fn ordinal(set_name: &str, pod: &Value) -> Option<i64> {
    let name = pod.at("/metadata/name").and_then(Value::as_str)?;
    name.strip_prefix(set_name)?.strip_prefix('-')?.parse().ok()
}

/// What the controller reads of one of its pods (a copy of these fields, not of the pod).
#[derive(Debug, Clone)]
struct PodView {
    name: String,
    revision: String,
    ready: bool,
    failed: bool,
    deleting: bool,
}

impl PodView {
    fn of(pod: &Value) -> PodView {
        PodView {
            name: pod
                .at("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            revision: revision_of(pod),
            ready: pod_ready(pod),
            failed: pod.at("/status/phase").and_then(Value::as_str) == Some("Failed"),
            deleting: pod.at("/metadata/deletionTimestamp").is_some(),
        }
    }
}

fn revision_of(pod: &Value) -> String {
    pod.at("/metadata/labels/controller-revision-hash")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl StatefulSetController {
    /// One pass over the StatefulSets that changed, or whose pods or ControllerRevisions
    /// changed, since the last pass, and those left waiting for the observedGeneration lag (all
    /// sets on the first pass and when the store's history since the last pass is gone).
    pub fn pass(&mut self, access: &mut impl Access, clock: &SimClock, opts: &SimOptions) {
        let store = access.store();
        match self.changes.read(store) {
            Some(changes) => {
                for ev in changes {
                    if ev.group == "apps" && ev.plural == "statefulsets" {
                        let key = crate::store::obj_key(ev.object.meta());
                        if ev.kind == EventKind::Deleted
                            && store.get("apps", "statefulsets", &key.0, &key.1).is_none()
                        {
                            self.seen.remove(&key);
                            self.idle.remove(&key);
                        }
                        self.pending.push(key);
                    } else {
                        // A change of an owned object (a pod, a ControllerRevision), or of
                        // one that was owned before the change.
                        for obj in std::iter::once(&ev.object).chain(&ev.previous) {
                            let meta = obj.meta();
                            for key in controllers::owners_of(store, meta, "apps", "statefulsets") {
                                self.pending.push(key);
                            }
                        }
                    }
                }
            }
            None => {
                let live: std::collections::HashSet<(String, String)> = store
                    .list("apps", "statefulsets", None)
                    .into_iter()
                    .map(crate::store::obj_key)
                    .collect();
                self.seen.retain(|k, _| live.contains(k));
                self.idle.retain(|k, _| live.contains(k));
                for key in live {
                    self.pending.push(key);
                }
            }
        }
        for key in self.pending.take() {
            access.checkpoint();
            let store = access.store();
            let Some(set) = store.get_shared("apps", "statefulsets", &key.0, &key.1) else {
                continue;
            };
            // A set being deleted waits for its next change.
            if set.at("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let generation = set
                .at("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let observed = set.at("/status/observedGeneration").and_then(Value::as_i64);
            let uid = set
                .at("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let inputs = (controllers::rv_of(&set), store.dependents_changed(uid));
            let entry = self
                .seen
                .entry(key.clone())
                .or_insert((generation, Instant::now()));
            if entry.0 != generation {
                *entry = (generation, Instant::now());
            }
            if observed != Some(generation) && !clock.elapsed(entry.1, opts.observed_generation_lag)
            {
                self.pending.push(key);
                continue;
            }
            if self.idle.get(&key) == Some(&inputs) {
                continue;
            }
            let mark = controllers::Mark::new(store);
            reconcile(store, clock, set);
            if mark.no_op(store) {
                self.idle.insert(key, inputs);
            } else {
                // Its writes queue it again (a set's own change, or an owned object's); an
                // error does not, so it is retried next pass.
                self.idle.remove(&key);
                self.pending.push(key);
            }
        }
    }
}

/// The objects of a type in `ns` owned by `uid`, ordered by name.
fn owned_in<'a>(store: &'a Store, plural: &str, ns: &str, uid: &str) -> Vec<&'a Value> {
    let group = if plural == "pods" { "" } else { "apps" };
    store
        .dependents(group, plural, uid)
        .into_iter()
        .filter(|o| o.at("/metadata/namespace").and_then(Value::as_str) == Some(ns))
        .collect()
}

/// Ensures the ControllerRevision for `template` exists and is the newest; returns its name.
fn ensure_revision(
    store: &mut Store,
    clock: &SimClock,
    set: &Value,
    ns: &str,
    uid: &str,
) -> String {
    let name = set
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let empty = json!({});
    let template = set.at("/spec/template").unwrap_or(&empty);
    let hash = safe_hash(template, 10);
    let rev_name = format!("{name}-{hash}");
    let revs = owned_in(store, "controllerrevisions", ns, uid);
    let max = revs
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .max()
        .unwrap_or(0);
    // Only a stale revision is copied (to bump it); revisions carry a whole pod template.
    enum Found {
        Newest,
        Stale(Value),
        Missing,
    }
    let found = match revs
        .iter()
        .find(|r| r.at("/metadata/name").and_then(Value::as_str) == Some(rev_name.as_str()))
    {
        Some(r) if r["revision"].as_i64() == Some(max) => Found::Newest,
        Some(r) => Found::Stale(Value::clone(r)),
        None => Found::Missing,
    };
    match found {
        Found::Newest => {}
        Found::Stale(mut r) => {
            r["revision"] = json!(max + 1);
            controllers::log_err(
                "revision bump",
                controllers::update_as(
                    store,
                    clock,
                    "apps",
                    "controllerrevisions",
                    r,
                    CONTROLLER_MANAGER,
                ),
            );
        }
        Found::Missing => {
            let mut labels = template
                .at("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            if let Some(m) = labels.as_object_mut() {
                m.insert("controller.kubernetes.io/hash".into(), json!(hash));
            }
            // Values are moved in after `json!`, which would copy them.
            let mut cr = json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": rev_name, "namespace": ns, "ownerReferences": [controller_ref(set)]},
                "data": {"spec": {}},
                "revision": max + 1,
            });
            cr["metadata"]["labels"] = labels;
            cr["data"]["spec"]["template"] = template.clone();
            controllers::log_err(
                "revision create",
                controllers::create_as(
                    store,
                    clock,
                    "apps",
                    "controllerrevisions",
                    cr,
                    CONTROLLER_MANAGER,
                    None,
                ),
            );
        }
    }
    // History limit: drop the oldest revisions no pod uses.
    let limit = set
        .at("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let mut revs: Vec<&Value> = owned_in(store, "controllerrevisions", ns, uid);
    let used: Vec<String> = owned_in(store, "pods", ns, uid)
        .into_iter()
        .map(revision_of)
        .collect();
    let current = set
        .at("/status/currentRevision")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    revs.sort_by_key(|r| r["revision"].as_i64().unwrap_or(0));
    let live = revs.len();
    let mut removable: Vec<String> = revs
        .iter()
        .filter_map(|r| {
            r.at("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|n| *n != rev_name && *n != current && !used.contains(n))
        .collect();
    let excess = live.saturating_sub(limit + 1).min(removable.len());
    for n in removable.drain(..excess) {
        controllers::log_err(
            "revision gc",
            controllers::delete(store, clock, "apps", "controllerrevisions", ns, &n),
        );
    }
    rev_name
}

/// The pod template of revision `rev` (`fallback` when the revision is gone), borrowed: a
/// new pod copies only the parts it takes.
fn template_of_revision<'a>(
    store: &'a Store,
    ns: &str,
    rev: &str,
    fallback: &'a Value,
) -> &'a Value {
    store
        .get("apps", "controllerrevisions", ns, rev)
        .and_then(|r| r.at("/data/spec/template"))
        .unwrap_or(fallback)
}

fn new_pod(set: &Value, template: &Value, ordinal: i64, revision: &str) -> Value {
    let set_name = set
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = set
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let pod_name = format!("{set_name}-{ordinal}");
    let mut labels = template
        .at("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(m) = labels.as_object_mut() {
        m.insert(REVISION_LABEL.into(), json!(revision));
        m.insert(POD_NAME_LABEL.into(), json!(pod_name));
        m.insert(POD_INDEX_LABEL.into(), json!(ordinal.to_string()));
    }
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    if let Some(m) = spec.as_object_mut() {
        m.insert("hostname".into(), json!(pod_name));
        if let Some(svc) = set.at("/spec/serviceName").and_then(Value::as_str) {
            m.insert("subdomain".into(), json!(svc));
        }
        m.insert("nodeName".into(), json!("sim-node"));
        let claims = set
            .at("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !claims.is_empty() {
            let vols = m.entry("volumes").or_insert_with(|| json!([]));
            if let Some(vols) = vols.as_array_mut() {
                for c in &claims {
                    let cname = c
                        .at("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    vols.retain(|v| v["name"].as_str() != Some(cname));
                    vols.push(json!({"name": cname, "persistentVolumeClaim": {"claimName": format!("{cname}-{set_name}-{ordinal}")}}));
                }
            }
        }
    }
    // Values are moved in after `json!`, which would copy them.
    let mut meta =
        json!({"name": pod_name, "namespace": ns, "ownerReferences": [controller_ref(set)]});
    meta["labels"] = labels;
    if let (Some(a), Some(m)) = (template.at("/metadata/annotations"), meta.as_object_mut()) {
        m.insert("annotations".into(), a.clone());
    }
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
    pod["metadata"] = meta;
    pod["spec"] = spec;
    pod
}

fn ensure_claims(store: &mut Store, clock: &SimClock, set: &Value, ordinal: i64) {
    let set_name = set
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = set
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for c in set
        .at("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let cname = c
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = format!("{cname}-{set_name}-{ordinal}");
        if store.get("", "persistentvolumeclaims", ns, &name).is_some() {
            continue;
        }
        let labels = set
            .at("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or(json!({}));
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": c.get("spec").cloned().unwrap_or(json!({}))});
        controllers::log_err(
            "pvc create",
            controllers::create_as(
                store,
                clock,
                "",
                "persistentvolumeclaims",
                pvc,
                CONTROLLER_MANAGER,
                None,
            ),
        );
    }
}

/// Reconciles one StatefulSet; takes the caller's reference to it, which it gives up for its
/// status write, so that the write can be made in the stored object rather than a copy
/// ([`controllers::set_status`]).
fn reconcile(store: &mut Store, clock: &SimClock, owned: Arc<Value>) {
    let set: &Value = &owned;
    let ns = set
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = set
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let uid = set
        .at("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let empty = json!({});
    let spec = set.get("spec").unwrap_or(&empty);
    let replicas = spec["replicas"].as_i64().unwrap_or(1).max(0);
    let parallel = spec["podManagementPolicy"].as_str() == Some("Parallel");
    let rolling = spec.at("/updateStrategy/type").and_then(Value::as_str) != Some("OnDelete");
    let partition = if rolling {
        spec.at("/updateStrategy/rollingUpdate/partition")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0)
    } else {
        0
    };
    let max_unavailable = int_or_percent(
        spec.at("/updateStrategy/rollingUpdate/maxUnavailable"),
        replicas,
        1,
    )
    .max(1);
    let template = spec.get("template").unwrap_or(&empty);

    let update_rev = ensure_revision(store, clock, set, &ns, &uid);
    let current_rev = set
        .at("/status/currentRevision")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && store.get("apps", "controllerrevisions", &ns, s).is_some())
        .map(str::to_string)
        .unwrap_or_else(|| update_rev.clone());

    let pods_of = |store: &Store| -> BTreeMap<i64, PodView> {
        owned_in(store, "pods", &ns, &uid)
            .into_iter()
            .filter_map(|p| ordinal(&name, p).map(|o| (o, PodView::of(p))))
            .collect()
    };
    let mut pods = pods_of(store);

    // Failed pods are replaced.
    for (_, p) in pods.iter().filter(|(_, p)| p.failed) {
        controllers::log_err(
            "delete failed pod",
            controllers::delete(store, clock, "", "pods", &ns, &p.name),
        );
    }
    pods = pods_of(store);

    let mut blocked = false;
    // The `FieldsV1` of the first pod created here, with its revision: the pods of one
    // revision have the same fields (they differ in values only), so the next ones of that
    // revision need no second walk.
    let mut created: Option<(String, Value)> = None;
    for ord in 0..replicas {
        match pods.get(&ord) {
            None => {
                let rev = if rolling && ord < partition {
                    current_rev.clone()
                } else {
                    update_rev.clone()
                };
                let pod = new_pod(
                    set,
                    template_of_revision(store, &ns, &rev, template),
                    ord,
                    &rev,
                );
                ensure_claims(store, clock, set, ord);
                let known = created
                    .as_ref()
                    .filter(|(of, _)| *of == rev)
                    .map(|(_, fields_v1)| fields_v1);
                let first_of_revision = known.is_none();
                let outcome = controllers::create_as(
                    store,
                    clock,
                    "",
                    "pods",
                    pod,
                    CONTROLLER_MANAGER,
                    known,
                );
                if first_of_revision
                    && let Ok(outcome) = &outcome
                    && let Some(fields_v1) = outcome.stored.at("/metadata/managedFields/0/fieldsV1")
                {
                    created = Some((rev.clone(), fields_v1.clone()));
                }
                controllers::log_err("create pod", outcome);
                if !parallel {
                    blocked = true;
                    break;
                }
            }
            Some(p) if !parallel && !p.ready => {
                blocked = true;
                break;
            }
            Some(_) => {}
        }
    }
    pods = pods_of(store);

    // Scale down: condemned pods (ordinal >= replicas), highest first.
    if !blocked {
        let condemned: Vec<String> = pods
            .range(replicas..)
            .rev()
            .map(|(_, p)| p.name.clone())
            .collect();
        let all_ready = pods.range(..replicas).all(|(_, p)| p.ready);
        for pn in condemned {
            if !parallel && !all_ready {
                blocked = true;
                break;
            }
            controllers::log_err(
                "delete condemned pod",
                controllers::delete(store, clock, "", "pods", &ns, &pn),
            );
            if !parallel {
                blocked = true;
                break;
            }
        }
        pods = pods_of(store);
    }

    // Rolling update from the highest ordinal down to the partition.
    if rolling && !blocked && (0..replicas).all(|o| pods.contains_key(&o)) {
        let mut unavailable = (0..replicas)
            .filter(|o| pods.get(o).is_none_or(|p| !p.ready))
            .count() as i64;
        for ord in (partition..replicas).rev() {
            let Some(p) = pods.get(&ord) else { continue };
            if p.revision != update_rev && !p.deleting {
                if unavailable >= max_unavailable {
                    break;
                }
                controllers::log_err(
                    "delete outdated pod",
                    controllers::delete(store, clock, "", "pods", &ns, &p.name),
                );
                unavailable += 1;
            }
        }
        pods = pods_of(store);
    }

    // Status.
    let count = pods.len() as i64;
    let ready = pods.values().filter(|p| p.ready).count() as i64;
    let current = pods.values().filter(|p| p.revision == current_rev).count() as i64;
    let updated = pods.values().filter(|p| p.revision == update_rev).count() as i64;
    let (current_rev, current) =
        if rolling && updated == replicas && ready == replicas && count == replicas {
            (update_rev.clone(), updated)
        } else {
            (current_rev, current)
        };
    let generation = set
        .at("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let status = json!({
        "observedGeneration": generation,
        "replicas": count,
        "readyReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "availableReplicas": ready,
        "currentRevision": current_rev,
        "updateRevision": update_rev,
        "collisionCount": 0,
    });
    controllers::log_err(
        "sts status",
        controllers::set_status(
            store,
            clock,
            "apps",
            "statefulsets",
            owned,
            status,
            CONTROLLER_MANAGER,
        ),
    );
}
