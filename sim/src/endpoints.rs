//! The EndpointSlice controller: one IPv4 slice per Service with a selector.
//!
//! From the Kubernetes docs "EndpointSlices": slices carry the label
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, are owned by the
//! Service, and list one endpoint per pod that matches the selector and has an IP, with
//! `conditions.ready` (true when the pod is Ready, or always when the Service sets
//! `publishNotReadyAddresses`), `serving` and `terminating`.

use crate::jsonpath::JsonPath;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::clock::SimClock;
use crate::controllers::{self, controller_ref, pod_ready, safe_hash};
use crate::selectors::LabelSelector;
use crate::state::Access;
use crate::store::{EventKind, Store, StoredEvent};

/// Label naming the Service of a slice.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGER: &str = "endpointslice-controller.k8s.io";

/// The controller. A slice depends only on its Service, the pods its selector matches and the
/// slice itself. Like the real controller, which maps each pod event to the Services selecting
/// the pod, it remembers every pod's labels and resourceVersion, and per pass marks as dirty the
/// Services whose selector matches a pod that was added, changed or removed (by its labels
/// before or after the change). A Service that is not dirty, and whose own and whose slice's
/// resourceVersions are those of its last pass that was a no-op or of its own last write, is
/// skipped (the real controller's slice tracker likewise skips a slice of a generation it
/// wrote).
///
/// Only the Services that changed, whose slice changed, or whose selector matches a pod that
/// changed since the last pass (read from the store's history), and those not yet idle, are
/// looked at; every Service on the first pass and when that history is gone.
#[derive(Debug, Default)]
pub struct EndpointSliceController {
    idle: HashMap<(String, String), Inputs>,
    /// Namespace -> its pods, for the namespaces that have Services.
    pods: HashMap<String, NamespacePods>,
    /// Namespace -> Service name -> selector, as of the last pass.
    services: HashMap<String, BTreeMap<String, LabelSelector>>,
    /// Namespace -> the index of its Services' selectors, built when first needed, then kept
    /// up to date with `services` (see [`ServiceIndex`]).
    indexes: HashMap<String, ServiceIndex>,
    changes: controllers::Changes,
    pending: controllers::Pending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inputs {
    service_rv: u64,
    slice: String,
    slice_rv: u64,
}

/// The pods of one namespace as of the last pass.
#[derive(Debug, Default)]
struct NamespacePods {
    /// [`Store::namespace_changed`] for pods at the last pass.
    seen: u64,
    /// Pod name -> (resourceVersion, labels).
    pods: HashMap<String, (u64, Value)>,
    /// (label key, value) -> names of the pods that carry it, as of the last pass.
    by_label: HashMap<(String, String), BTreeSet<String>>,
}

impl NamespacePods {
    /// Brings the snapshot up to date with the store and returns the label sets (before and
    /// after) of every pod that was added, changed or removed since the last call.
    fn refresh(&mut self, store: &Store, ns: &str) -> Vec<Value> {
        let now = store.namespace_changed("", "pods", ns);
        if now == self.seen {
            return Vec::new();
        }
        self.seen = now;
        let mut touched = Vec::new();
        let mut live = std::collections::HashSet::new();
        for pod in store.list("", "pods", Some(ns)) {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            live.insert(name.to_string());
            let rv = controllers::rv_of(pod);
            if self.pods.get(name).is_some_and(|(old_rv, _)| *old_rv == rv) {
                continue;
            }
            touched.extend(self.put(name, Some((rv, pod["metadata"]["labels"].clone()))));
        }
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|name| !live.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            touched.extend(self.put(&name, None));
        }
        touched
    }

    /// Applies one change of a pod of this namespace to the snapshot and returns the label
    /// sets of the pod before and after it.
    fn apply(&mut self, ev: &StoredEvent) -> Vec<Value> {
        let meta = ev.object.meta();
        let name = meta["metadata"]["name"].as_str().unwrap_or_default();
        let now = (ev.kind != EventKind::Deleted)
            .then(|| (controllers::rv_of(meta), meta["metadata"]["labels"].clone()));
        self.put(name, now)
    }

    /// Sets pod `name` to `now` (its resourceVersion and labels; `None`: gone), keeping the
    /// label index in step, and returns its label sets before and after (each if any).
    fn put(&mut self, name: &str, now: Option<(u64, Value)>) -> Vec<Value> {
        let mut touched = Vec::new();
        if let Some((_, old_labels)) = self.pods.remove(name) {
            unindex(&mut self.by_label, name, &old_labels);
            touched.push(old_labels);
        }
        if let Some((rv, labels)) = now {
            index(&mut self.by_label, name, &labels);
            touched.push(labels.clone());
            self.pods.insert(name.to_string(), (rv, labels));
        }
        touched
    }

    /// The names of the pods that may match `selector`, in name order: those that carry the
    /// label of its narrowest `key=value` requirement, as of the last pass; `None` when it
    /// has no such requirement (every pod may match). A pod changed since the last pass is
    /// picked up by the next one, which sees the change.
    fn candidates(&self, selector: &LabelSelector) -> Option<Vec<&str>> {
        let mut narrowest: Option<&BTreeSet<String>> = None;
        for (k, v) in selector.equalities() {
            match self.by_label.get(&(k.to_string(), v.to_string())) {
                None => return Some(Vec::new()),
                Some(names) if narrowest.is_none_or(|n| names.len() < n.len()) => {
                    narrowest = Some(names);
                }
                Some(_) => {}
            }
        }
        narrowest.map(|names| names.iter().map(String::as_str).collect())
    }
}

/// The Services of one namespace by one `key=value` requirement of their selector (a
/// Service's selector is a map of them), so that the Services selecting a pod are found from
/// its labels instead of by matching every selector against it: at 1,000 clusters, 100 to a
/// namespace, that matching was a quarter of this controller's time.
///
/// Any requirement of a selector finds every pod it selects, so the choice only decides how
/// many selectors a pod's labels lead to: a Service is indexed by the requirement that the
/// fewest Services share when it is inserted. The index is kept up to date as Services come,
/// change and go (building it for every pass that saw a Service change was 9% of the control
/// loop in the second burst at 1,000 clusters), and is built again once as many Services
/// changed as it holds, so that the choices follow the namespace's Services as they are now.
#[derive(Debug, Default)]
struct ServiceIndex {
    /// Requirement key -> value -> names of the Services indexed by it.
    by_requirement: HashMap<String, HashMap<String, BTreeSet<String>>>,
    /// Services with no such requirement to index them by (matched against every pod).
    others: BTreeSet<String>,
    /// `(key, value)` -> how many of the indexed Services' selectors require it.
    shared: HashMap<(String, String), usize>,
    /// Services inserted or removed since the index was built.
    churn: usize,
}

/// The `key=value` requirements of a selector that can index it: with a non-empty value, as
/// `matches_labels` reads a label that is not a string as "", which `label_pairs` does not list.
fn index_pairs(selector: &LabelSelector) -> impl Iterator<Item = (String, String)> + '_ {
    selector
        .equalities()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
}

impl ServiceIndex {
    fn new(services: &BTreeMap<String, LabelSelector>) -> ServiceIndex {
        let mut index = ServiceIndex::default();
        // Counted first, so that each Service is placed by its rarest requirement among all.
        for selector in services.values().filter(|s| !s.is_empty()) {
            for pair in index_pairs(selector) {
                *index.shared.entry(pair).or_default() += 1;
            }
        }
        for (name, selector) in services {
            index.place(name, selector);
        }
        index
    }

    /// Indexes Service `name` with `selector` (its requirements are already counted).
    fn place(&mut self, name: &str, selector: &LabelSelector) {
        // An empty selector selects no pod for a Service.
        if selector.is_empty() {
            return;
        }
        let shared = &self.shared;
        match index_pairs(selector).min_by_key(|p| shared.get(p).copied().unwrap_or(0)) {
            Some((k, v)) => {
                self.by_requirement
                    .entry(k)
                    .or_default()
                    .entry(v)
                    .or_default()
                    .insert(name.to_string());
            }
            None => {
                self.others.insert(name.to_string());
            }
        }
    }

    /// Records a write of Service `name`: its selector was `old` (`None`: not indexed) and is
    /// now `new` (`None`: deleted).
    fn replace(&mut self, name: &str, old: Option<&LabelSelector>, new: Option<&LabelSelector>) {
        if let Some(old) = old {
            self.remove(name, old);
        }
        if let Some(new) = new {
            self.insert(name, new);
        }
    }

    /// Adds Service `name` with `selector` (not in the index).
    fn insert(&mut self, name: &str, selector: &LabelSelector) {
        if !selector.is_empty() {
            for pair in index_pairs(selector) {
                *self.shared.entry(pair).or_default() += 1;
            }
        }
        self.place(name, selector);
        self.churn += 1;
    }

    /// Removes Service `name`, indexed with `selector`.
    fn remove(&mut self, name: &str, selector: &LabelSelector) {
        self.churn += 1;
        if selector.is_empty() {
            return;
        }
        self.others.remove(name);
        // Which requirement placed it is not kept (the counts have moved since): it is removed
        // from the names under each of them.
        for pair in index_pairs(selector) {
            if let Some(n) = self.shared.get_mut(&pair) {
                *n -= 1;
                if *n == 0 {
                    self.shared.remove(&pair);
                }
            }
            let (k, v) = pair;
            if let Some(values) = self.by_requirement.get_mut(&k)
                && let Some(names) = values.get_mut(&v)
            {
                names.remove(name);
                if names.is_empty() {
                    values.remove(&v);
                }
            }
        }
    }

    /// Whether as many Services changed since the index was built as `services` holds.
    fn worn(&self, services: &BTreeMap<String, LabelSelector>) -> bool {
        self.churn > services.len().max(8)
    }

    /// The names of the Services (of `services`, the map the index follows) whose selector
    /// matches one of the label sets, in name order.
    fn selecting<'s>(
        &self,
        services: &'s BTreeMap<String, LabelSelector>,
        labels: &[Value],
    ) -> BTreeSet<&'s str> {
        let mut found = BTreeSet::new();
        for l in labels {
            let indexed = label_pairs(l)
                .filter_map(|(k, v)| self.by_requirement.get(k.as_str())?.get(v))
                .flatten();
            for name in indexed.chain(&self.others) {
                let Some((name, selector)) = services.get_key_value(name) else {
                    continue;
                };
                if !found.contains(name.as_str()) && selector.matches_labels(l) {
                    found.insert(name.as_str());
                }
            }
        }
        found
    }
}

fn label_pairs(labels: &Value) -> impl Iterator<Item = (&String, &str)> {
    labels
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k, v.as_str()?)))
}

fn index(by_label: &mut HashMap<(String, String), BTreeSet<String>>, pod: &str, labels: &Value) {
    for (k, v) in label_pairs(labels) {
        by_label
            .entry((k.clone(), v.to_string()))
            .or_default()
            .insert(pod.to_string());
    }
}

fn unindex(by_label: &mut HashMap<(String, String), BTreeSet<String>>, pod: &str, labels: &Value) {
    for (k, v) in label_pairs(labels) {
        let key = (k.clone(), v.to_string());
        if let Some(names) = by_label.get_mut(&key) {
            names.remove(pod);
            if names.is_empty() {
                by_label.remove(&key);
            }
        }
    }
}

/// The selector of a Service (`spec.selector`; empty when it has none).
fn selector_of(svc: &Value) -> LabelSelector {
    svc.at("/spec/selector")
        .map(LabelSelector::from_map)
        .unwrap_or_default()
}

fn resolve_port(target: &Value, pods: &[&Value]) -> Option<i64> {
    match target {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok().or_else(|| {
            pods.iter().find_map(|p| {
                p.at("/spec/containers")?.as_array()?.iter().find_map(|c| {
                    c.get("ports")?
                        .as_array()?
                        .iter()
                        .find(|port| port["name"].as_str() == Some(s))?["containerPort"]
                        .as_i64()
                })
            })
        }),
        _ => None,
    }
}

impl EndpointSliceController {
    /// One pass over the Services that may need their slice written (see the type's doc).
    pub fn pass(&mut self, access: &mut impl Access, clock: &SimClock) {
        let store = access.store();
        let mut touched: HashMap<String, Vec<Value>> = HashMap::new();
        match self.changes.read(store) {
            Some(changes) => {
                let mut emptied = BTreeSet::new();
                for ev in changes {
                    match (ev.group.as_str(), ev.plural.as_str()) {
                        ("", "pods") => {
                            // Only namespaces with Services keep a snapshot.
                            if let Some(pods) = self.pods.get_mut(&ev.namespace) {
                                let labels = pods.apply(ev);
                                touched
                                    .entry(ev.namespace.clone())
                                    .or_default()
                                    .extend(labels);
                            }
                        }
                        ("", "services") => {
                            let (ns, name) = crate::store::obj_key(ev.object.meta());
                            let in_ns = self.services.entry(ns.clone()).or_default();
                            let index = self.indexes.get_mut(&ns);
                            if ev.kind == EventKind::Deleted {
                                let old = in_ns.remove(&name);
                                if let Some(index) = index {
                                    index.replace(&name, old.as_ref(), None);
                                }
                                if in_ns.is_empty() {
                                    emptied.insert(ns.clone());
                                }
                            } else {
                                // The selector is in the spec: the whole state.
                                let selector = selector_of(&ev.object.value());
                                let old = in_ns.insert(name.clone(), selector.clone());
                                if let Some(index) = index {
                                    index.replace(&name, old.as_ref(), Some(&selector));
                                }
                                emptied.remove(&ns);
                                if !self.pods.contains_key(&ns) {
                                    let mut pods = NamespacePods::default();
                                    pods.refresh(store, &ns);
                                    self.pods.insert(ns.clone(), pods);
                                }
                            }
                            self.pending.push((ns, name));
                        }
                        ("discovery.k8s.io", "endpointslices") => {
                            if let Some(svc) = ev
                                .object
                                .meta()
                                .at("/metadata/labels")
                                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                                .and_then(Value::as_str)
                            {
                                self.pending.push((ev.namespace.clone(), svc.to_string()));
                            }
                        }
                        _ => {}
                    }
                }
                for ns in emptied {
                    if self.services.get(&ns).is_some_and(BTreeMap::is_empty) {
                        self.services.remove(&ns);
                        self.indexes.remove(&ns);
                        self.pods.remove(&ns);
                    }
                }
            }
            None => {
                self.services.clear();
                self.indexes.clear();
                for svc in store.list("", "services", None) {
                    let (ns, name) = crate::store::obj_key(svc);
                    self.services
                        .entry(ns)
                        .or_default()
                        .insert(name, selector_of(svc));
                }
                let services = &self.services;
                self.idle
                    .retain(|(ns, name), _| services.get(ns).is_some_and(|m| m.contains_key(name)));
                self.pods.retain(|ns, _| services.contains_key(ns));
                for (ns, names) in services {
                    let changed = self.pods.entry(ns.clone()).or_default().refresh(store, ns);
                    if !changed.is_empty() {
                        touched.insert(ns.clone(), changed);
                    }
                    for name in names.keys() {
                        self.pending.push((ns.clone(), name.clone()));
                    }
                }
            }
        }
        // Services selecting a pod that changed (by its labels before or after the change) are
        // visited whatever their last pass.
        for (ns, labels) in &touched {
            let Some(services) = self.services.get(ns) else {
                continue;
            };
            if self.indexes.get(ns).is_some_and(|i| i.worn(services)) {
                self.indexes.remove(ns);
            }
            let selecting = self
                .indexes
                .entry(ns.clone())
                .or_insert_with(|| ServiceIndex::new(services))
                .selecting(services, labels);
            for name in selecting {
                let key = (ns.clone(), name.to_string());
                self.idle.remove(&key);
                self.pending.push(key);
            }
        }
        for key in self.pending.take() {
            access.checkpoint();
            let store = access.store();
            let Some(svc) = store.get_shared("", "services", &key.0, &key.1) else {
                self.idle.remove(&key);
                continue;
            };
            let slice = format!("{}-{}", key.1, safe_hash(&svc["metadata"]["uid"], 5));
            let before = Inputs {
                service_rv: controllers::rv_of(&svc),
                slice_rv: store
                    .get("discovery.k8s.io", "endpointslices", &key.0, &slice)
                    .map(controllers::rv_of)
                    .unwrap_or(0),
                slice,
            };
            if self.idle.get(&key) == Some(&before) {
                continue;
            }
            let mark = controllers::Mark::new(store);
            self.reconcile(store, clock, &svc, &before.slice);
            if mark.no_op(store) {
                self.idle.insert(key, before);
            } else {
                // The slice it just wrote is what it wants: the echo of that write (its slice's
                // change, read next pass) is skipped, as the real controller's slice tracker
                // skips slices of a generation it wrote. Any other change of the Service, its
                // pods or the slice queues it again.
                let after = Inputs {
                    slice_rv: store
                        .get("discovery.k8s.io", "endpointslices", &key.0, &before.slice)
                        .map(controllers::rv_of)
                        .unwrap_or(0),
                    ..before
                };
                self.idle.insert(key, after);
            }
        }
    }

    fn reconcile(&mut self, store: &mut Store, clock: &SimClock, svc: &Value, slice_name: &str) {
        {
            let Some(sel) = svc
                .at("/spec/selector")
                .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
            else {
                return;
            };
            if svc.at("/metadata/deletionTimestamp").is_some() {
                return;
            }
            let selector = LabelSelector::from_map(sel);
            let ns = svc
                .at("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let name = svc
                .at("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let publish_not_ready = svc
                .at("/spec/publishNotReadyAddresses")
                .and_then(Value::as_bool)
                == Some(true);
            let candidates = self.pods.get(&ns).and_then(|p| p.candidates(&selector));
            let pods: Vec<&Value> = match candidates {
                Some(names) => names
                    .into_iter()
                    .filter_map(|n| store.get("", "pods", &ns, n))
                    .collect(),
                None => store.list("", "pods", Some(&ns)),
            };
            let pods: Vec<&Value> = pods
                .into_iter()
                .filter(|p| selector.matches_object(p))
                .filter(|p| {
                    p.at("/status/podIP")
                        .and_then(Value::as_str)
                        .is_some_and(|ip| !ip.is_empty())
                })
                .filter(|p| {
                    !matches!(
                        p.at("/status/phase").and_then(Value::as_str),
                        Some("Failed" | "Succeeded")
                    )
                })
                .collect();
            let endpoints: Vec<Value> = pods
                .iter()
                .map(|p| {
                    let ready = pod_ready(p);
                    let terminating = p.at("/metadata/deletionTimestamp").is_some();
                    json!({
                        "addresses": [p["status"]["podIP"]],
                        "conditions": {"ready": (ready || publish_not_ready) && !terminating, "serving": ready, "terminating": terminating},
                        "nodeName": p.at("/spec/nodeName").cloned().unwrap_or(json!("sim-node")),
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]},
                    })
                })
                .collect();
            let ports: Vec<Value> = svc
                .at("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|sp| {
                    let target = sp.get("targetPort").unwrap_or(&sp["port"]);
                    let port = resolve_port(target, &pods)?;
                    Some(json!({"name": sp.get("name").cloned().unwrap_or(json!("")), "port": port, "protocol": sp.get("protocol").cloned().unwrap_or(json!("TCP"))}))
                })
                .collect();
            let existing = store.get_shared("discovery.k8s.io", "endpointslices", &ns, slice_name);
            let mut labels = json!({SERVICE_NAME_LABEL: name, "endpointslice.kubernetes.io/managed-by": MANAGER});
            if let Some(svc_labels) = svc.at("/metadata/labels").and_then(Value::as_object) {
                for (k, v) in svc_labels {
                    labels[k] = v.clone();
                }
            }
            // Values are moved in after `json!`, which would copy them.
            let mut desired = json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": slice_name, "namespace": ns, "ownerReferences": [controller_ref(svc)]},
                "addressType": "IPv4",
            });
            desired["metadata"]["labels"] = labels;
            desired["endpoints"] = Value::Array(endpoints);
            desired["ports"] = Value::Array(ports);
            match existing {
                None => controllers::log_err(
                    "slice create",
                    controllers::create_as(
                        store,
                        clock,
                        "discovery.k8s.io",
                        "endpointslices",
                        desired,
                        MANAGER,
                        None,
                    ),
                ),
                Some(cur) => {
                    if cur.get("endpoints") != desired.get("endpoints")
                        || cur.get("ports") != desired.get("ports")
                        || cur.at("/metadata/labels") != desired.at("/metadata/labels")
                    {
                        let mut upd = Value::clone(&cur);
                        upd["endpoints"] = desired["endpoints"].clone();
                        upd["ports"] = desired["ports"].clone();
                        upd["metadata"]["labels"] = desired["metadata"]["labels"].clone();
                        controllers::log_err(
                            "slice update",
                            controllers::update_as(
                                store,
                                clock,
                                "discovery.k8s.io",
                                "endpointslices",
                                upd,
                                MANAGER,
                            ),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use proptest::prelude::*;

    /// A label map from (key, value) picks over a small alphabet; value 3 is not a string.
    fn labels(picks: &[(u8, u8)]) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in picks {
            let value = match v % 4 {
                0 => json!(""),
                3 => json!(7),
                v => json!(format!("v{v}")),
            };
            m.insert(format!("k{}", k % 3), value);
        }
        Value::Object(m)
    }

    proptest! {
        /// The index finds exactly the Services whose selector matches one of the label sets,
        /// whether built at once or kept up to date through Services written and deleted
        /// (`writes`: Service number, selector, whether it is a delete).
        #[test]
        fn the_service_index_finds_what_matching_every_selector_finds(
            selectors in prop::collection::vec(prop::collection::vec((0u8..3, 0u8..4), 0..3), 0..8),
            writes in prop::collection::vec(
                (0u8..10, prop::collection::vec((0u8..3, 0u8..4), 0..3), prop::bool::weighted(0.3)),
                0..12,
            ),
            pods in prop::collection::vec(prop::collection::vec((0u8..3, 0u8..4), 0..4), 0..4),
        ) {
            let mut services: BTreeMap<String, LabelSelector> = selectors
                .iter()
                .enumerate()
                .map(|(i, picks)| (format!("s{i}"), LabelSelector::from_map(&labels(picks))))
                .collect();
            let pods: Vec<Value> = pods.iter().map(|picks| labels(picks)).collect();
            let brute_force = |services: &BTreeMap<String, LabelSelector>| -> BTreeSet<String> {
                services
                    .iter()
                    .filter(|(_, sel)| {
                        !sel.is_empty() && pods.iter().any(|l| sel.matches_labels(l))
                    })
                    .map(|(name, _)| name.clone())
                    .collect()
            };
            let owned = |found: BTreeSet<&str>| -> BTreeSet<String> {
                found.into_iter().map(str::to_string).collect()
            };
            let mut index = ServiceIndex::new(&services);
            prop_assert_eq!(owned(index.selecting(&services, &pods)), brute_force(&services));
            for (n, picks, delete) in &writes {
                let name = format!("s{n}");
                if *delete {
                    let old = services.remove(&name);
                    index.replace(&name, old.as_ref(), None);
                } else {
                    let selector = LabelSelector::from_map(&labels(picks));
                    let old = services.insert(name.clone(), selector.clone());
                    index.replace(&name, old.as_ref(), Some(&selector));
                }
                prop_assert_eq!(owned(index.selecting(&services, &pods)), brute_force(&services));
            }
            let rebuilt = ServiceIndex::new(&services);
            prop_assert_eq!(owned(rebuilt.selecting(&services, &pods)), brute_force(&services));
        }
    }

    fn pod(name: &str, app: &str, ready: bool) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {
                "phase": "Running", "podIP": format!("10.0.0.{}", name.len()),
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            },
        })
    }

    /// The ready flags of the one slice of Service `web`, in endpoint order.
    fn ready_flags(store: &Store) -> Vec<bool> {
        let slices = store.list("discovery.k8s.io", "endpointslices", Some("ns"));
        assert_eq!(slices.len(), 1);
        slices[0]["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["conditions"]["ready"].as_bool().unwrap())
            .collect()
    }

    /// A store with namespace `ns` and Service `web` selecting `app: web`, and a fresh
    /// controller.
    fn web_service() -> (SimClock, Store, EndpointSliceController) {
        let mut store = Store::new(Registry::builtin(), 1000);
        store.put(
            "",
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
        );
        store.put("", "services", json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }));
        (
            SimClock::new(1.0),
            store,
            EndpointSliceController::default(),
        )
    }

    /// Only pod changes tell the controller that a slice is stale: status, label and deletion
    /// changes of selected pods must each reach the slice, and pods elsewhere must not.
    #[test]
    fn pod_changes_reach_the_slice_of_every_selecting_service() {
        let (clock, mut store, mut eps) = web_service();
        store.put("", "pods", pod("a", "web", false));
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), [false]);

        store.put("", "pods", pod("a", "web", true));
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), [true]);

        // A pod in another namespace, and an unselected pod, change nothing.
        let mut other = pod("x", "web", true);
        other["metadata"]["namespace"] = json!("elsewhere");
        store.put("", "pods", other);
        store.put("", "pods", pod("db", "db", true));
        let before = store.current_rv();
        eps.pass(&mut store, &clock);
        assert_eq!(store.current_rv(), before);

        store.put("", "pods", pod("bb", "web", false));
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), [true, false]);

        // Relabelled out of the selector, then deleted.
        store.put("", "pods", pod("a", "other", true));
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), [false]);
        store.remove("", "pods", "ns", "bb");
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), Vec::<bool>::new());

        // Relabelled into the selector.
        store.put("", "pods", pod("db", "web", true));
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), [true]);
    }

    /// The echo of the controller's own slice write is skipped (its inputs are recorded as of
    /// that write, as the real controller's slice tracker does), while anyone else's edit of
    /// the slice is still undone.
    #[test]
    fn a_slice_write_is_not_revisited_on_its_echo_but_an_edit_is_undone() {
        let (clock, mut store, mut eps) = web_service();
        store.put("", "pods", pod("a", "web", true));
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), [true]);
        let slice = store.list("discovery.k8s.io", "endpointslices", Some("ns"))[0].clone();
        let key = ("ns".to_string(), "web".to_string());
        // Idle as of its own write: the next pass, which reads that write, skips the Service.
        assert_eq!(
            eps.idle.get(&key).map(|i| i.slice_rv),
            Some(controllers::rv_of(&slice))
        );
        let before = store.current_rv();
        eps.pass(&mut store, &clock);
        assert_eq!(store.current_rv(), before);
        // Someone else empties the slice: the controller puts the endpoint back.
        let mut edited = slice.clone();
        edited["endpoints"] = json!([]);
        store.put("discovery.k8s.io", "endpointslices", edited);
        eps.pass(&mut store, &clock);
        assert_eq!(ready_flags(&store), [true]);
    }
}
