//! Benchmark: validating and rendering a full cluster (3 FE, 3 BE with persistent storage and
//! config, CN with autoscaling, FE proxy) into typed objects and the model's desired state.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use starrocks_operator::crd::StarRocksCluster;
use starrocks_operator::render::{self, ConfigInputs};
use std::collections::BTreeMap;
use std::hint::black_box;

fn full_cluster() -> (StarRocksCluster, ConfigInputs) {
    let cluster: StarRocksCluster = serde_json::from_value(json!({
        "apiVersion": "starrocks.com/v1",
        "kind": "StarRocksCluster",
        "metadata": {"name": "bench", "namespace": "starrocks", "uid": "u-1", "generation": 7},
        "spec": {
            "starRocksFeSpec": {
                "image": "starrocks/fe-ubuntu:3.3.2", "replicas": 3,
                "requests": {"cpu": "2", "memory": "4Gi"},
                "configMapInfo": {"configMapName": "fe-config", "resolveKey": "fe.conf"},
                "storageVolumes": [{"name": "fe-meta", "storageClassName": "standard", "storageSize": "10Gi", "mountPath": "/opt/starrocks/fe/meta"}],
                "service": {"type": "LoadBalancer", "ports": [{"name": "query", "port": 3306}]}
            },
            "starRocksBeSpec": {
                "image": "starrocks/be-ubuntu:3.3.2", "replicas": 3,
                "configMapInfo": {"configMapName": "be-config", "resolveKey": "be.conf"},
                "storageVolumes": [
                    {"name": "be-data", "storageClassName": "standard", "storageSize": "100Gi", "mountPath": "/opt/starrocks/be/storage"},
                    {"name": "be-log", "storageClassName": "emptyDir", "mountPath": "/opt/starrocks/be/log"}
                ],
                "beEnvVars": [{"name": "TZ", "value": "UTC"}]
            },
            "starRocksCnSpec": {
                "image": "starrocks/cn-ubuntu:3.3.2",
                "autoScalingPolicy": {"minReplicas": 1, "maxReplicas": 10,
                    "hpaPolicy": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]}}
            },
            "starRocksFeProxySpec": {"replicas": 2}
        }
    }))
    .expect("bench cluster");
    let mut inputs = ConfigInputs::new();
    inputs.insert(
        "fe-config",
        BTreeMap::from([(
            "fe.conf".to_string(),
            "http_port = 8030\nquery_port = 9030\nsys_log_level = INFO\n".repeat(20),
        )]),
    );
    inputs.insert(
        "be-config",
        BTreeMap::from([(
            "be.conf".to_string(),
            "webserver_port = 8040\nsys_log_level = INFO\n".repeat(20),
        )]),
    );
    (cluster, inputs)
}

fn bench_render(c: &mut Criterion) {
    let (cluster, inputs) = full_cluster();
    c.bench_function("render_full_cluster", |b| {
        b.iter(|| {
            let r =
                render::render_cluster(black_box(&cluster), black_box(&inputs)).expect("renders");
            black_box(r.desired())
        })
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
