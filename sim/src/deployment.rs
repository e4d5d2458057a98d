//! Deployment and ReplicaSet controllers, enough for single-ReplicaSet rollouts.
//!
//! From the Kubernetes docs "Deployments" and "ReplicaSet": a Deployment owns one ReplicaSet per
//! pod template, named `<deployment>-<pod-template-hash>` and labelled `pod-template-hash`; a
//! rollout scales the new ReplicaSet up and, once its pods are available, the old ones down
//! (`Recreate` scales the old ones down first). Status has `observedGeneration`, `replicas`,
//! `updatedReplicas`, `readyReplicas`, `availableReplicas` and the `Available` and
//! `Progressing` conditions (reason `NewReplicaSetAvailable` when complete).

use crate::jsonpath::JsonPath;
use serde_json::{Value, json};

use crate::clock::SimClock;
use crate::controllers::{
    self, CONTROLLER_MANAGER, controller_ref, owned_by, pod_ready, safe_hash,
};
use crate::selectors::LabelSelector;
use crate::store::Store;

/// Stateless; kept as a type for symmetry with the other controllers.
#[derive(Debug, Default)]
pub struct DeploymentController;

fn name_of(o: &Value) -> String {
    o.at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn replicas_of(o: &Value) -> i64 {
    o.at("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

impl DeploymentController {
    /// One pass: Deployments, then ReplicaSets.
    pub fn pass(&mut self, store: &mut Store, clock: &SimClock) {
        let deps: Vec<Value> = store
            .list("apps", "deployments", None)
            .into_iter()
            .cloned()
            .collect();
        for d in deps {
            if d.at("/metadata/deletionTimestamp").is_none() {
                reconcile_deployment(store, clock, &d);
            }
        }
        let sets: Vec<Value> = store
            .list("apps", "replicasets", None)
            .into_iter()
            .cloned()
            .collect();
        for rs in sets {
            if rs.at("/metadata/deletionTimestamp").is_none() {
                reconcile_replicaset(store, clock, &rs);
            }
        }
    }
}

fn set_replicas(store: &mut Store, clock: &SimClock, rs: &Value, n: i64) {
    if replicas_of(rs) == n {
        return;
    }
    let mut rs = rs.clone();
    rs["spec"]["replicas"] = json!(n);
    controllers::log_err(
        "scale rs",
        controllers::update_as(store, clock, "apps", "replicasets", rs, CONTROLLER_MANAGER),
    );
}

fn reconcile_deployment(store: &mut Store, clock: &SimClock, d: &Value) {
    let ns = d
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = name_of(d);
    let uid = d
        .at("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let want = replicas_of(d).max(0);
    let template = d.at("/spec/template").cloned().unwrap_or(json!({}));
    let hash = safe_hash(&template, 10);
    let rs_name = format!("{name}-{hash}");
    let owned: Vec<Value> = store
        .list("apps", "replicasets", Some(&ns))
        .into_iter()
        .filter(|r| owned_by(r, &uid))
        .cloned()
        .collect();
    let revision = owned
        .iter()
        .filter_map(|r| {
            r.at("/metadata/annotations/deployment.kubernetes.io~1revision")
                .and_then(Value::as_str)?
                .parse::<i64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    let recreate = d.at("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
    let old: Vec<Value> = owned
        .iter()
        .filter(|r| name_of(r) != rs_name)
        .cloned()
        .collect();
    let old_pods_left = old.iter().any(|r| {
        r.at("/status/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
            || replicas_of(r) > 0
    });
    let new_rs = match owned.iter().find(|r| name_of(r) == rs_name) {
        Some(r) => r.clone(),
        None => {
            let mut tmpl = template.clone();
            tmpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d.at("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = template
                .at("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            labels["pod-template-hash"] = json!(hash);
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": labels, "ownerReferences": [controller_ref(d)],
                    "annotations": {"deployment.kubernetes.io/revision": (revision + 1).to_string()}},
                "spec": {"replicas": 0, "selector": selector, "template": tmpl},
            });
            match controllers::create_as(
                store,
                clock,
                "apps",
                "replicasets",
                rs,
                CONTROLLER_MANAGER,
                None,
            ) {
                Ok(o) => Value::clone(&o.stored),
                Err(e) => {
                    tracing::debug!(error = %e, "create replicaset");
                    return;
                }
            }
        }
    };
    if !(recreate && old_pods_left) {
        set_replicas(store, clock, &new_rs, want);
    }
    let new_available = new_rs
        .at("/status/availableReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if recreate || new_available >= want {
        for r in &old {
            set_replicas(store, clock, r, 0);
        }
    }
    // Status from the ReplicaSets as they are now.
    let owned: Vec<Value> = store
        .list("apps", "replicasets", Some(&ns))
        .into_iter()
        .filter(|r| owned_by(r, &uid))
        .cloned()
        .collect();
    let sum = |f: &str| {
        owned
            .iter()
            .filter_map(|r| r.at(f).and_then(Value::as_i64))
            .sum::<i64>()
    };
    let new_now = owned.iter().find(|r| name_of(r) == rs_name);
    let updated = new_now
        .and_then(|r| r.at("/status/replicas").and_then(Value::as_i64))
        .unwrap_or(0);
    let replicas = sum("/status/replicas");
    let available = sum("/status/availableReplicas");
    let complete = updated == want && replicas == want && available == want;
    let ts = d
        .at("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or(Value::Null);
    let status = json!({
        "observedGeneration": d.at("/metadata/generation").and_then(Value::as_i64).unwrap_or(1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": sum("/status/readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (want - available).max(0),
        "conditions": [
            {"type": "Available", "status": if available >= want { "True" } else { "False" },
             "reason": if available >= want { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
             "message": "Deployment availability", "lastUpdateTime": ts, "lastTransitionTime": ts},
            {"type": "Progressing", "status": "True",
             "reason": if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
             "message": format!("ReplicaSet \"{rs_name}\" {}", if complete { "has successfully progressed." } else { "is progressing." }),
             "lastUpdateTime": ts, "lastTransitionTime": ts},
        ],
    });
    controllers::log_err(
        "deployment status",
        controllers::set_status(
            store,
            clock,
            "apps",
            "deployments",
            d,
            status,
            CONTROLLER_MANAGER,
        ),
    );
}

fn reconcile_replicaset(store: &mut Store, clock: &SimClock, rs: &Value) {
    let ns = rs
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = name_of(rs);
    let uid = rs
        .at("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let want = replicas_of(rs).max(0) as usize;
    let selector = LabelSelector::from_object(rs.at("/spec/selector").unwrap_or(&Value::Null));
    let mut pods: Vec<Value> = store
        .list("", "pods", Some(&ns))
        .into_iter()
        .filter(|p| {
            owned_by(p, &uid)
                && selector.matches_object(p)
                && p.at("/metadata/deletionTimestamp").is_none()
        })
        .cloned()
        .collect();
    if pods.len() < want {
        let template = rs.at("/spec/template").cloned().unwrap_or(json!({}));
        for _ in pods.len()..want {
            let suffix = safe_hash(&json!([name, store.new_uid()]), 5);
            let mut pod_spec = template.get("spec").cloned().unwrap_or(json!({}));
            pod_spec["nodeName"] = json!("sim-node");
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-{suffix}"), "namespace": ns,
                    "labels": template.at("/metadata/labels").cloned().unwrap_or(json!({})),
                    "annotations": template.at("/metadata/annotations").cloned().unwrap_or(json!({})),
                    "ownerReferences": [controller_ref(rs)]},
                "spec": pod_spec,
            });
            controllers::log_err(
                "rs create pod",
                controllers::create_as(store, clock, "", "pods", pod, CONTROLLER_MANAGER, None),
            );
        }
    } else if pods.len() > want {
        // Not-ready pods go first.
        pods.sort_by_key(pod_ready);
        for p in pods.iter().take(pods.len() - want) {
            controllers::log_err(
                "rs delete pod",
                controllers::delete(store, clock, "", "pods", &ns, &name_of(p)),
            );
        }
    }
    let pods: Vec<Value> = store
        .list("", "pods", Some(&ns))
        .into_iter()
        .filter(|p| owned_by(p, &uid) && p.at("/metadata/deletionTimestamp").is_none())
        .cloned()
        .collect();
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let status = json!({
        "observedGeneration": rs.at("/metadata/generation").and_then(Value::as_i64).unwrap_or(1),
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
    });
    controllers::log_err(
        "rs status",
        controllers::set_status(
            store,
            clock,
            "apps",
            "replicasets",
            rs,
            status,
            CONTROLLER_MANAGER,
        ),
    );
}
