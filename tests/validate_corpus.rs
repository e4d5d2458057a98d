//! Bad input: a corpus of invalid StarRocksClusters, each rejected with a specific error that
//! names the field; and a property test that arbitrary specs never make validation or
//! rendering panic.

use proptest::prelude::*;
use serde_json::{Value, json};
use starrocks_operator::crd::StarRocksCluster;
use starrocks_operator::render::{self, ConfigInputs};
use starrocks_operator::validate::validate;

fn base() -> Value {
    json!({
        "apiVersion": "starrocks.com/v1",
        "kind": "StarRocksCluster",
        "metadata": {"name": "demo", "namespace": "starrocks", "uid": "u-1", "generation": 3},
        "spec": {
            "starRocksFeSpec": {"image": "starrocks/fe-ubuntu:3.3.2", "replicas": 3},
            "starRocksBeSpec": {"image": "starrocks/be-ubuntu:3.3.2", "replicas": 3},
            "starRocksCnSpec": {"image": "starrocks/cn-ubuntu:3.3.2"},
            "starRocksFeProxySpec": {"replicas": 1}
        }
    })
}

/// Applies `patch` (a JSON merge patch, RFC 7386) to the base cluster.
fn with(patch: Value) -> StarRocksCluster {
    fn merge(target: &mut Value, patch: &Value) {
        if let Value::Object(p) = patch {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        } else {
            *target = patch.clone();
        }
    }
    let mut v = base();
    merge(&mut v, &patch);
    serde_json::from_value(v).expect("corpus entries are well-typed")
}

fn errors(patch: Value) -> Vec<String> {
    match validate(&with(patch)) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_base_cluster_is_valid_and_renders() {
    let cluster = with(json!({}));
    assert!(validate(&cluster).is_ok());
    let r = render::render_cluster(&cluster, &ConfigInputs::new()).unwrap();
    assert_eq!(r.components.len(), 4);
    assert_eq!(r.generation, 3);
}

#[test]
fn each_invalid_cr_gives_its_specific_error() {
    let corpus: Vec<(&str, Value, &str)> = vec![
        (
            "negative replicas",
            json!({"spec": {"starRocksBeSpec": {"replicas": -1}}}),
            "spec.starRocksBeSpec.replicas: must be >= 0, got -1",
        ),
        (
            "missing FE spec",
            json!({"spec": {"starRocksFeSpec": null}}),
            "spec.starRocksFeSpec: is required",
        ),
        (
            "image without a tag",
            json!({"spec": {"starRocksFeSpec": {"image": "starrocks/fe-ubuntu"}}}),
            "spec.starRocksFeSpec.image: must name a tag",
        ),
        (
            "digest-only image",
            json!({"spec": {"starRocksCnSpec": {"image": "starrocks/cn-ubuntu@sha256:0123"}}}),
            "spec.starRocksCnSpec.image: must name a tag",
        ),
        (
            "missing image",
            json!({"spec": {"starRocksBeSpec": {"image": null}}}),
            "spec.starRocksBeSpec.image: is required",
        ),
        (
            "bad storage size",
            json!({"spec": {"starRocksBeSpec": {"storageVolumes": [
                {"name": "be-data", "storageClassName": "standard", "storageSize": "10GB", "mountPath": "/opt/starrocks/be/storage"}]}}}),
            "spec.starRocksBeSpec.storageVolumes[0].storageSize: must be a quantity such as 10Gi, got \"10GB\"",
        ),
        (
            "claim without size",
            json!({"spec": {"starRocksFeSpec": {"storageVolumes": [
                {"name": "fe-meta", "mountPath": "/opt/starrocks/fe/meta"}]}}}),
            "spec.starRocksFeSpec.storageVolumes[0].storageSize: is required for a PersistentVolumeClaim",
        ),
        (
            "zero-size claim",
            json!({"spec": {"starRocksFeSpec": {"storageVolumes": [
                {"name": "fe-meta", "storageSize": "0", "mountPath": "/opt/starrocks/fe/meta"}]}}}),
            "spec.starRocksFeSpec.storageVolumes[0].storageSize: must be > 0",
        ),
        (
            "hostPath with a real storage class",
            json!({"spec": {"starRocksBeSpec": {"storageVolumes": [
                {"name": "be-data", "storageClassName": "standard", "storageSize": "1Gi", "hostPath": {"path": "/data"}, "mountPath": "/opt/starrocks/be/storage"}]}}}),
            "spec.starRocksBeSpec.storageVolumes[0].hostPath: is only allowed with storageClassName \"hostPath\", got storageClassName \"standard\"",
        ),
        (
            "hostPath with emptyDir",
            json!({"spec": {"starRocksBeSpec": {"storageVolumes": [
                {"name": "be-data", "storageClassName": "emptyDir", "hostPath": {"path": "/data"}, "mountPath": "/opt/starrocks/be/storage"}]}}}),
            "spec.starRocksBeSpec.storageVolumes[0].hostPath: is only allowed with storageClassName",
        ),
        (
            "hostPath class without a path",
            json!({"spec": {"starRocksBeSpec": {"storageVolumes": [
                {"name": "be-data", "storageClassName": "hostPath", "mountPath": "/opt/starrocks/be/storage"}]}}}),
            "spec.starRocksBeSpec.storageVolumes[0].hostPath: is required when storageClassName is \"hostPath\"",
        ),
        (
            "duplicate volume names",
            json!({"spec": {"starRocksBeSpec": {"storageVolumes": [
                {"name": "be-data", "storageClassName": "emptyDir", "mountPath": "/a"},
                {"name": "be-data", "storageClassName": "emptyDir", "mountPath": "/b"}]}}}),
            "spec.starRocksBeSpec.storageVolumes[1].name: duplicate volume name \"be-data\"",
        ),
        (
            "duplicate mount paths",
            json!({"spec": {"starRocksBeSpec": {"storageVolumes": [
                {"name": "a", "storageClassName": "emptyDir", "mountPath": "/a"},
                {"name": "b", "storageClassName": "emptyDir", "mountPath": "/a"}]}}}),
            "spec.starRocksBeSpec.storageVolumes[1].mountPath: duplicate mount path \"/a\"",
        ),
        (
            "volume name not a DNS label",
            json!({"spec": {"starRocksBeSpec": {"storageVolumes": [
                {"name": "Be_Data", "storageClassName": "emptyDir", "mountPath": "/a"}]}}}),
            "spec.starRocksBeSpec.storageVolumes[0].name: must be a DNS-1123 label",
        ),
        (
            "negative probe seconds",
            json!({"spec": {"starRocksFeSpec": {"livenessProbeFailureSeconds": -5}}}),
            "spec.starRocksFeSpec.livenessProbeFailureSeconds: must be >= 0, got -5",
        ),
        (
            "negative grace period",
            json!({"spec": {"starRocksCnSpec": {"terminationGracePeriodSeconds": -1}}}),
            "spec.starRocksCnSpec.terminationGracePeriodSeconds: must be >= 0, got -1",
        ),
        (
            "unknown pull policy",
            json!({"spec": {"starRocksFeSpec": {"imagePullPolicy": "Sometimes"}}}),
            "spec.starRocksFeSpec.imagePullPolicy: must be one of Always, Never, IfNotPresent, got \"Sometimes\"",
        ),
        (
            "unknown pod management policy",
            json!({"spec": {"starRocksBeSpec": {"podManagementPolicy": "Random"}}}),
            "spec.starRocksBeSpec.podManagementPolicy: must be one of OrderedReady, Parallel",
        ),
        (
            "half a configMapInfo",
            json!({"spec": {"starRocksFeSpec": {"configMapInfo": {"configMapName": "fe-config"}}}}),
            "spec.starRocksFeSpec.configMapInfo.resolveKey: is required when configMapName is set",
        ),
        (
            "externalTrafficPolicy on ClusterIP",
            json!({"spec": {"starRocksFeSpec": {"service": {"externalTrafficPolicy": "Local"}}}}),
            "spec.starRocksFeSpec.service.externalTrafficPolicy: may only be set when the service type is NodePort or LoadBalancer, got type ClusterIP",
        ),
        (
            "nodePort on ClusterIP",
            json!({"spec": {"starRocksFeSpec": {"service": {"ports": [{"name": "query", "nodePort": 30001}]}}}}),
            "spec.starRocksFeSpec.service.ports[0].nodePort: may only be set when the service type is NodePort or LoadBalancer",
        ),
        (
            "autoscaler without maxReplicas",
            json!({"spec": {"starRocksCnSpec": {"autoScalingPolicy": {"minReplicas": 2}}}}),
            "spec.starRocksCnSpec.autoScalingPolicy.maxReplicas: is required",
        ),
        (
            "autoscaler max below min",
            json!({"spec": {"starRocksCnSpec": {"autoScalingPolicy": {"minReplicas": 4, "maxReplicas": 2}}}}),
            "spec.starRocksCnSpec.autoScalingPolicy.maxReplicas: must be >= minReplicas (4), got 2",
        ),
        (
            "autoscaler min zero",
            json!({"spec": {"starRocksCnSpec": {"autoScalingPolicy": {"minReplicas": 0, "maxReplicas": 2}}}}),
            "spec.starRocksCnSpec.autoScalingPolicy.minReplicas: must be >= 1, got 0",
        ),
        (
            "maxUnavailable zero",
            json!({"spec": {"starRocksBeSpec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}}}),
            "spec.starRocksBeSpec.updateStrategy.rollingUpdate.maxUnavailable: must be > 0",
        ),
        (
            "configMaps mount colliding with a storage volume",
            json!({"spec": {"starRocksBeSpec": {
                "storageVolumes": [{"name": "a", "storageClassName": "emptyDir", "mountPath": "/x"}],
                "configMaps": [{"name": "cm", "mountPath": "/x"}]}}}),
            "spec.starRocksBeSpec.configMaps[0].mountPath: duplicate mount path \"/x\"",
        ),
        (
            "cluster name too long",
            json!({"metadata": {"name": "a-very-long-cluster-name-that-does-not-fit-services"}}),
            "metadata.name: must be at most 46 characters",
        ),
        (
            "cluster name not a DNS-1035 label",
            json!({"metadata": {"name": "1demo"}}),
            "metadata.name: must be a DNS-1035 label",
        ),
        (
            "missing namespace",
            json!({"metadata": {"namespace": null}}),
            "metadata.namespace: is required",
        ),
    ];
    let mut failures = Vec::new();
    for (what, patch, expected) in corpus {
        let errs = errors(patch);
        if !errs
            .iter()
            .any(|e| e.starts_with(expected) || e.contains(expected))
        {
            failures.push(format!("{what}: expected {expected:?}, got {errs:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_specs_block_rendering_and_reach_the_model() {
    let cluster = with(json!({"spec": {"starRocksBeSpec": {"replicas": -1}}}));
    let err = render::render_cluster(&cluster, &ConfigInputs::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.starRocksBeSpec.replicas: must be >= 0, got -1")
    );
    let desired = render::desired_cluster(&cluster, &ConfigInputs::new());
    assert!(desired.components.is_empty());
    assert_eq!(desired.generation, 3);
    assert!(
        desired
            .invalid
            .unwrap()
            .contains("spec.starRocksBeSpec.replicas")
    );
}

#[test]
fn missing_config_map_names_the_field() {
    let cluster = with(
        json!({"spec": {"starRocksFeSpec": {"configMapInfo": {"configMapName": "fe-config", "resolveKey": "fe.conf"}}}}),
    );
    let err = render::render_cluster(&cluster, &ConfigInputs::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.starRocksFeSpec.configMapInfo.configMapName: ConfigMap \"fe-config\" not found"
    );
    assert_eq!(
        render::referenced_config_maps(&cluster)
            .into_iter()
            .collect::<Vec<_>>(),
        ["fe-config"]
    );
}

#[test]
fn unacted_fields_are_listed() {
    let cluster = with(json!({"spec": {"disasterRecovery": {"enabled": true, "generation": 1}}}));
    assert_eq!(cluster.spec.unacted_fields(), ["spec.disasterRecovery"]);
    assert!(with(json!({})).spec.unacted_fields().is_empty());
}

#[test]
fn unknown_upstream_fields_deserialize() {
    // Fields from other upstream versions must not break deserialization (the schema keeps
    // them; the operator ignores them).
    let cluster = with(
        json!({"spec": {"someFutureField": {"x": 1}, "starRocksFeSpec": {"probe": {"type": "tcp"}}}}),
    );
    assert!(validate(&cluster).is_ok());
}

/// Arbitrary JSON built from the CRD's own field names, so that many values deserialize and
/// reach validation and rendering.
fn arb_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "image",
        "replicas",
        "storageVolumes",
        "name",
        "mountPath",
        "storageClassName",
        "storageSize",
        "hostPath",
        "path",
        "configMapInfo",
        "configMapName",
        "resolveKey",
        "service",
        "type",
        "ports",
        "port",
        "nodePort",
        "containerPort",
        "autoScalingPolicy",
        "minReplicas",
        "maxReplicas",
        "limits",
        "requests",
        "cpu",
        "feEnvVars",
        "value",
        "startupProbeFailureSeconds",
        "updateStrategy",
        "rollingUpdate",
        "maxUnavailable",
        "configMaps",
        "secrets",
        "podManagementPolicy",
        "externalTrafficPolicy",
        "resolver",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        (-3i64..100).prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "emptyDir",
            "hostPath",
            "10Gi",
            "0",
            "x:1",
            "a/b:3.3.2",
            "/p",
            "Local",
            "NodePort",
            "Parallel"
        ])
        .prop_map(Value::from),
        "[a-z0-9:/.-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(str::to_string), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// 512 cases, or `PROPTEST_CASES` when set (as the model's property tests).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_specs_never_panic(
        fe in arb_json(), be in arb_json(), cn in arb_json(), proxy in arb_json(),
        drop_fe in any::<bool>(),
    ) {
        let mut v = base();
        for (key, val) in [("starRocksFeSpec", fe), ("starRocksBeSpec", be), ("starRocksCnSpec", cn), ("starRocksFeProxySpec", proxy)] {
            if drop_fe && key == "starRocksFeSpec" {
                v["spec"].as_object_mut().unwrap().remove(key);
            } else {
                v["spec"][key] = val;
            }
        }
        if let Ok(cluster) = serde_json::from_value::<StarRocksCluster>(v) {
            let _ = validate(&cluster);
            let inputs = ConfigInputs::new();
            if let Ok(r) = render::render_cluster(&cluster, &inputs) {
                prop_assert!(r.to_json().is_ok());
                prop_assert!(r.desired().invalid.is_none());
            }
            let _ = render::desired_cluster(&cluster, &inputs);
        }
    }

    #[test]
    fn arbitrary_valid_replicas_and_images_render(
        fe in 0i32..7, be in 0i32..7, tag in "[0-9]\\.[0-9]\\.[0-9]{1,2}",
    ) {
        let cluster = with(json!({"spec": {
            "starRocksFeSpec": {"replicas": fe, "image": format!("starrocks/fe-ubuntu:{tag}")},
            "starRocksBeSpec": {"replicas": be, "image": format!("starrocks/be-ubuntu:{tag}")},
        }}));
        let r = render::render_cluster(&cluster, &ConfigInputs::new()).unwrap();
        let d = r.desired();
        prop_assert_eq!(d.components[&starrocks_model::component::Component::Fe].replicas, Some(fe));
        prop_assert_eq!(d.components[&starrocks_model::component::Component::Be].replicas, Some(be));
    }
}
