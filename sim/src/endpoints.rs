//! The EndpointSlice controller: one IPv4 slice per Service with a selector.
//!
//! From the Kubernetes docs "EndpointSlices": slices carry the label
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, are owned by the
//! Service, and list one endpoint per pod that matches the selector and has an IP, with
//! `conditions.ready` (true when the pod is Ready, or always when the Service sets
//! `publishNotReadyAddresses`), `serving` and `terminating`.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::clock::SimClock;
use crate::controllers::{self, controller_ref, pod_ready, safe_hash};
use crate::selectors::LabelSelector;
use crate::store::Store;

/// Label naming the Service of a slice.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGER: &str = "endpointslice-controller.k8s.io";

/// The controller. A slice depends only on its Service, the pods in the Service's namespace and
/// the slice itself; the controller remembers, per Service, those inputs (resourceVersions) at
/// its last pass that was a no-op and skips the Service while they are unchanged.
#[derive(Debug, Default)]
pub struct EndpointSliceController {
    idle: HashMap<(String, String), Inputs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inputs {
    service_rv: u64,
    pods_rv: u64,
    slice: String,
    slice_rv: u64,
}

fn resolve_port(target: &Value, pods: &[&Value]) -> Option<i64> {
    match target {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok().or_else(|| {
            pods.iter().find_map(|p| {
                p.pointer("/spec/containers")?
                    .as_array()?
                    .iter()
                    .find_map(|c| {
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
    /// One pass over all Services.
    pub fn pass(&mut self, store: &mut Store, clock: &SimClock) {
        let keys: Vec<(String, String)> = store
            .list("", "services", None)
            .into_iter()
            .map(crate::store::obj_key)
            .collect();
        let live: std::collections::HashSet<&(String, String)> = keys.iter().collect();
        self.idle.retain(|k, _| live.contains(k));
        for key in keys {
            let inputs = |store: &Store, slice: String| {
                let svc = store.get("", "services", &key.0, &key.1);
                Inputs {
                    service_rv: svc.map(controllers::rv_of).unwrap_or(0),
                    pods_rv: store.namespace_changed("", "pods", &key.0),
                    slice_rv: store
                        .get("discovery.k8s.io", "endpointslices", &key.0, &slice)
                        .map(controllers::rv_of)
                        .unwrap_or(0),
                    slice,
                }
            };
            if let Some(last) = self.idle.get(&key)
                && inputs(store, last.slice.clone()) == *last
            {
                continue;
            }
            let Some(svc) = store.get("", "services", &key.0, &key.1).cloned() else {
                continue;
            };
            let slice_name = format!("{}-{}", key.1, safe_hash(&svc["metadata"]["uid"], 5));
            let before = inputs(store, slice_name.clone());
            let mark = controllers::Mark::new(store);
            self.reconcile(store, clock, &svc, &slice_name);
            if mark.no_op(store) {
                self.idle.insert(key, before);
            } else {
                self.idle.remove(&key);
            }
        }
    }

    fn reconcile(&mut self, store: &mut Store, clock: &SimClock, svc: &Value, slice_name: &str) {
        {
            let Some(sel) = svc
                .pointer("/spec/selector")
                .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
            else {
                return;
            };
            if svc.pointer("/metadata/deletionTimestamp").is_some() {
                return;
            }
            let selector = LabelSelector::from_map(sel);
            let ns = svc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let name = svc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let publish_not_ready = svc
                .pointer("/spec/publishNotReadyAddresses")
                .and_then(Value::as_bool)
                == Some(true);
            let pods: Vec<&Value> = store
                .list("", "pods", Some(&ns))
                .into_iter()
                .filter(|p| selector.matches_object(p))
                .filter(|p| {
                    p.pointer("/status/podIP")
                        .and_then(Value::as_str)
                        .is_some_and(|ip| !ip.is_empty())
                })
                .filter(|p| {
                    !matches!(
                        p.pointer("/status/phase").and_then(Value::as_str),
                        Some("Failed" | "Succeeded")
                    )
                })
                .collect();
            let endpoints: Vec<Value> = pods
                .iter()
                .map(|p| {
                    let ready = pod_ready(p);
                    let terminating = p.pointer("/metadata/deletionTimestamp").is_some();
                    json!({
                        "addresses": [p["status"]["podIP"]],
                        "conditions": {"ready": (ready || publish_not_ready) && !terminating, "serving": ready, "terminating": terminating},
                        "nodeName": p.pointer("/spec/nodeName").cloned().unwrap_or(json!("sim-node")),
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]},
                    })
                })
                .collect();
            let ports: Vec<Value> = svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|sp| {
                    let target = sp.get("targetPort").unwrap_or(&sp["port"]);
                    let port = resolve_port(target, &pods)?;
                    Some(json!({"name": sp.get("name").cloned().unwrap_or(json!("")), "port": port, "protocol": sp.get("protocol").cloned().unwrap_or(json!("TCP"))}))
                })
                .collect();
            let existing = store
                .get("discovery.k8s.io", "endpointslices", &ns, slice_name)
                .cloned();
            let mut labels = json!({SERVICE_NAME_LABEL: name, "endpointslice.kubernetes.io/managed-by": MANAGER});
            if let Some(svc_labels) = svc.pointer("/metadata/labels").and_then(Value::as_object) {
                for (k, v) in svc_labels {
                    labels[k] = v.clone();
                }
            }
            let desired = json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": slice_name, "namespace": ns, "labels": labels, "ownerReferences": [controller_ref(svc)]},
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports,
            });
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
                    ),
                ),
                Some(cur) => {
                    if cur.get("endpoints") != desired.get("endpoints")
                        || cur.get("ports") != desired.get("ports")
                        || cur.pointer("/metadata/labels") != desired.pointer("/metadata/labels")
                    {
                        let mut upd = cur.clone();
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
