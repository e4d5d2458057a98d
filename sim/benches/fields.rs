//! Benchmark: field ownership (`metadata.managedFields`) bookkeeping, the simulator's largest
//! CPU cost at scale (about a third of it at 1,000 clusters in the scale bench's profile):
//! a pod's create by the StatefulSet controller, a kubelet status update of that pod, and a
//! server-side apply of a StatefulSet, first onto nothing and then again unchanged.
//!
//! Run: `cargo bench -p kube-sim --bench fields`.

use criterion::{Criterion, criterion_group, criterion_main};
use kube_sim::fields::{self, ApplyRequest};
use kube_sim::listtypes::Shape;
use serde_json::{Value, json};
use std::hint::black_box;

fn env(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
            .collect(),
    )
}

/// A pod template like the operator's FE one: one container with env, ports, resources,
/// probes and mounts, and its volumes.
fn template() -> Value {
    json!({
        "metadata": {"labels": {"app.kubernetes.io/component": "fe", "app.starrocks.ownerreference/name": "c-fe", "app.kubernetes.io/instance": "c"},
            "annotations": {"starrocks.com/config-hash": "0123456789abcdef"}},
        "spec": {
            "containers": [{
                "name": "fe", "image": "starrocks/fe-ubuntu:3.3.2",
                "command": ["/opt/starrocks/fe_entrypoint.sh"], "args": ["$(FE_SERVICE_NAME)"],
                "env": env(8),
                "ports": [{"name": "http", "containerPort": 8030, "protocol": "TCP"},
                          {"name": "rpc", "containerPort": 9020, "protocol": "TCP"},
                          {"name": "query", "containerPort": 9030, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
                "readinessProbe": {"httpGet": {"path": "/api/health", "port": 8030}, "periodSeconds": 5},
                "livenessProbe": {"tcpSocket": {"port": 9030}, "initialDelaySeconds": 30},
                "volumeMounts": [{"name": "fe-meta", "mountPath": "/opt/starrocks/fe/meta"},
                                 {"name": "fe-log", "mountPath": "/opt/starrocks/fe/log"},
                                 {"name": "fe-config", "mountPath": "/etc/starrocks/fe/conf"}]
            }],
            "volumes": [{"name": "fe-log", "emptyDir": {}},
                        {"name": "fe-config", "configMap": {"name": "c-fe-cm"}}],
            "terminationGracePeriodSeconds": 120
        }
    })
}

fn pod() -> Value {
    let t = template();
    let mut meta = t["metadata"].clone();
    meta["name"] = json!("c-fe-0");
    meta["namespace"] = json!("ns");
    meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "c-fe", "uid": "u-sts", "controller": true, "blockOwnerDeletion": true}]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"]})
}

fn req<'a>(manager: &'a str, subresource: Option<&'a str>, now: &'a str) -> ApplyRequest<'a> {
    ApplyRequest {
        manager,
        force: true,
        api_version: "v1",
        subresource,
        now,
    }
}

fn status(ready: bool) -> Value {
    let s = if ready { "True" } else { "False" };
    json!({"phase": "Running", "podIP": "10.0.0.7", "hostIP": "10.1.0.1", "startTime": "2026-01-01T00:00:01Z",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"},
            {"type": "ContainersReady", "status": s, "lastTransitionTime": "2026-01-01T00:00:02Z"},
            {"type": "Ready", "status": s, "lastTransitionTime": "2026-01-01T00:00:02Z"}],
        "containerStatuses": [{"name": "fe", "ready": ready, "restartCount": 0, "image": "starrocks/fe-ubuntu:3.3.2",
            "imageID": "sha256:0", "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]})
}

fn stateful_set() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "c-fe", "namespace": "ns", "labels": {"app.kubernetes.io/component": "fe"},
            "ownerReferences": [{"apiVersion": "starrocks.com/v1", "kind": "StarRocksCluster", "name": "c", "uid": "u-c", "controller": true}]},
        "spec": {"replicas": 3, "serviceName": "c-fe-search", "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app.kubernetes.io/component": "fe", "app.kubernetes.io/instance": "c"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "volumeClaimTemplates": [{"metadata": {"name": "fe-meta"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}],
            "template": template()}})
}

fn bench(c: &mut Criterion) {
    let shape = Shape::Builtin;
    c.bench_function("fields_create_pod", |b| {
        let pod = pod();
        b.iter(|| {
            let mut new = pod.clone();
            fields::record_update(
                None,
                &mut new,
                shape,
                req("kube-controller-manager", None, "t0"),
            );
            black_box(new)
        })
    });
    let mut created = pod();
    fields::record_update(
        None,
        &mut created,
        shape,
        req("kube-controller-manager", None, "t0"),
    );
    // Set after the field manager, as the API server's pod strategy does.
    created["status"] = json!({"phase": "Pending"});
    let mut running = created.clone();
    running["status"] = status(false);
    fields::record_update(
        Some(&created),
        &mut running,
        shape,
        req("kubelet", Some("status"), "t1"),
    );
    c.bench_function("fields_pod_status_update", |b| {
        let mut ready = running.clone();
        ready["status"] = status(true);
        b.iter(|| {
            let mut new = ready.clone();
            fields::record_update(
                Some(&running),
                &mut new,
                shape,
                req("kubelet", Some("status"), "t2"),
            );
            black_box(new)
        })
    });
    let cfg = stateful_set();
    let absent = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "c-fe", "namespace": "ns"}});
    c.bench_function("fields_apply_stateful_set_create", |b| {
        b.iter(|| {
            black_box(fields::apply(
                &absent,
                &cfg,
                shape,
                req("starrocks", None, "t0"),
            ))
        })
    });
    let live = fields::apply(&absent, &cfg, shape, req("starrocks", None, "t0"))
        .unwrap_or_else(|_| absent.clone());
    c.bench_function("fields_apply_stateful_set_unchanged", |b| {
        b.iter(|| {
            black_box(fields::apply(
                &live,
                &cfg,
                shape,
                req("starrocks", None, "t1"),
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
