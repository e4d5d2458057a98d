//! Defaulting of built-in types on create and update, as the API server's defaulters do for
//! the fields the simulator and the operator read (values from the Kubernetes API reference).

use crate::jsonpath::JsonPath;
use serde_json::{Value, json};

fn set_default(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for (i, seg) in path.iter().enumerate() {
        if !cur.is_object() {
            return;
        }
        let last = i + 1 == path.len();
        let Some(m) = cur.as_object_mut() else { return };
        if last {
            m.entry(seg.to_string()).or_insert(value);
            return;
        }
        cur = m.entry(seg.to_string()).or_insert_with(|| json!({}));
    }
}

/// Applies defaults for `kind` in place. `next_ip` allocates a cluster IP for Services.
pub fn apply_defaults(kind: &str, obj: &mut Value, next_ip: &mut dyn FnMut() -> String) {
    match kind {
        "StatefulSet" => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(
                obj,
                &["spec", "updateStrategy", "type"],
                json!("RollingUpdate"),
            );
            if obj.at("/spec/updateStrategy/type").and_then(Value::as_str) == Some("RollingUpdate")
            {
                set_default(
                    obj,
                    &["spec", "updateStrategy", "rollingUpdate", "partition"],
                    json!(0),
                );
            }
            set_default(
                obj,
                &[
                    "spec",
                    "persistentVolumeClaimRetentionPolicy",
                    "whenDeleted",
                ],
                json!("Retain"),
            );
            set_default(
                obj,
                &["spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"],
                json!("Retain"),
            );
        }
        "Deployment" => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            set_default(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
            if obj.at("/spec/strategy/type").and_then(Value::as_str) == Some("RollingUpdate") {
                set_default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxSurge"],
                    json!("25%"),
                );
                set_default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                    json!("25%"),
                );
            }
        }
        "ReplicaSet" => set_default(obj, &["spec", "replicas"], json!(1)),
        "Service" => {
            set_default(obj, &["spec", "type"], json!("ClusterIP"));
            set_default(obj, &["spec", "sessionAffinity"], json!("None"));
            if obj.at("/spec/clusterIP").is_none() {
                let ip = next_ip();
                set_default(obj, &["spec", "clusterIP"], json!(ip));
            }
            if let Some(ip) = obj.at("/spec/clusterIP").cloned() {
                set_default(obj, &["spec", "clusterIPs"], json!([ip]));
            }
            if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports {
                    let port = p.get("port").cloned().unwrap_or(Value::Null);
                    set_default(p, &["protocol"], json!("TCP"));
                    set_default(p, &["targetPort"], port);
                }
            }
        }
        "Pod" => set_default(obj, &["spec", "restartPolicy"], json!("Always")),
        _ => {}
    }
}

/// Sets `status.phase` where it is missing, for the kinds that have one: in effect on create,
/// as the registry strategies' `PrepareForCreate` do. Called after the field manager has
/// recorded the write, so the creator does not own it (in a real cluster, a pod's first
/// `managedFields` entry has no `f:status`, and the kubelet's status write is the first to
/// own `status.phase`).
pub fn initial_status(kind: &str, obj: &mut Value) {
    match kind {
        "Pod" => set_default(obj, &["status", "phase"], json!("Pending")),
        "Namespace" => set_default(obj, &["status", "phase"], json!("Active")),
        "PersistentVolumeClaim" => set_default(obj, &["status", "phase"], json!("Bound")),
        _ => {}
    }
}

/// Whether [`initial_status`] leaves an object of `kind` whose status is `status` unchanged.
pub fn initial_status_kept(kind: &str, status: &Value) -> bool {
    match kind {
        "Pod" | "Namespace" | "PersistentVolumeClaim" => {
            !status.is_object() || status.get("phase").is_some()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulset_defaults() {
        let mut o = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        apply_defaults("StatefulSet", &mut o, &mut || String::new());
        assert_eq!(o["spec"]["replicas"], 1);
        assert_eq!(o["spec"]["podManagementPolicy"], "OrderedReady");
        assert!(o["spec"]["updateStrategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn service_gets_ip_and_target_port() {
        let mut o = json!({"spec": {"ports": [{"port": 80}]}});
        apply_defaults("Service", &mut o, &mut || "10.96.0.10".to_string());
        assert_eq!(o["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(o["spec"]["ports"][0]["targetPort"], 80);
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        apply_defaults("Service", &mut headless, &mut || "x".to_string());
        assert_eq!(headless["spec"]["clusterIP"], "None");
    }
}
