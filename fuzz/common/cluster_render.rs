//! The `cluster_render` check, shared by the fuzz target (`fuzz/fuzz_targets/cluster_render.rs`)
//! and the corpus test (`tests/fuzz_corpus.rs`), which include this file with `#[path]`.
//!
//! Any JSON that deserializes as a StarRocksCluster goes through validation and rendering with
//! no referenced ConfigMaps. Nothing may panic; validation and rendering must agree on whether
//! the spec is valid; a render is deterministic, has FE, gives every component a non-empty
//! template hash, puts that hash on the workload's pod template, and serializes.
//!
//! A JSON object is also applied as a merge patch (RFC 7386) to a valid cluster and checked
//! the same way, so that small inputs get past deserialization and reach the renderer.

use serde_json::{Value, json};
use starrocks_model::Component;
use starrocks_operator::crd::StarRocksCluster;
use starrocks_operator::render::names::TEMPLATE_HASH_ANNOTATION;
use starrocks_operator::render::{self, ConfigInputs, RenderError, Workload};
use starrocks_operator::validate;

/// How far an input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a StarRocksCluster.
    NotACluster,
    /// Rejected by validation.
    Invalid,
    /// Valid, but not renderable without more input (a referenced ConfigMap, `metadata.uid`).
    Unrenderable,
    /// Rendered.
    Rendered,
}

/// Runs the check on `data`, and on `data` as a merge patch; returns how far `data` itself
/// got.
pub fn check(data: &[u8]) -> Outcome {
    if let Ok(patch @ Value::Object(_)) = serde_json::from_slice::<Value>(data) {
        let mut cluster = base();
        merge(&mut cluster, &patch);
        if let Ok(cluster) = serde_json::from_value::<StarRocksCluster>(cluster) {
            check_cluster(&cluster);
        }
    }
    match serde_json::from_slice::<StarRocksCluster>(data) {
        Ok(cluster) => check_cluster(&cluster),
        Err(_) => Outcome::NotACluster,
    }
}

/// A valid cluster with every component.
fn base() -> Value {
    json!({
        "apiVersion": "starrocks.com/v1",
        "kind": "StarRocksCluster",
        "metadata": {"name": "fuzz", "namespace": "fuzz", "uid": "u-1", "generation": 1},
        "spec": {
            "starRocksFeSpec": {"image": "starrocks/fe-ubuntu:3.3.2", "replicas": 1},
            "starRocksBeSpec": {"image": "starrocks/be-ubuntu:3.3.2", "replicas": 1},
            "starRocksCnSpec": {"image": "starrocks/cn-ubuntu:3.3.2"},
            "starRocksFeProxySpec": {"replicas": 1}
        }
    })
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn check_cluster(cluster: &StarRocksCluster) -> Outcome {
    let valid = validate::validate(cluster).is_ok();
    let inputs = ConfigInputs::new();
    let rendered = match render::render_cluster(cluster, &inputs) {
        Ok(rendered) => rendered,
        Err(RenderError::Invalid(errors)) => {
            assert!(
                !valid,
                "render says invalid, validate says valid: {errors:?}"
            );
            assert!(!errors.is_empty(), "rejected without a reason");
            return Outcome::Invalid;
        }
        Err(_) => {
            assert!(valid, "render went past validation of an invalid spec");
            return Outcome::Unrenderable;
        }
    };
    assert!(valid, "rendered a spec validation rejects");
    let desired = rendered.desired();
    assert!(
        desired.get(Component::Fe).is_some(),
        "a valid cluster renders FE"
    );
    for (component, d) in &desired.components {
        assert!(
            !d.template_hash.is_empty(),
            "{component} rendered with an empty template hash"
        );
        let Some(objects) = rendered.component(*component) else {
            panic!("{component} is desired but has no objects");
        };
        let template = match &objects.workload {
            Workload::StatefulSet(s) => &s.spec.template,
            Workload::Deployment(d) => &d.spec.template,
        };
        let annotated = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(TEMPLATE_HASH_ANNOTATION));
        assert_eq!(
            annotated,
            Some(&d.template_hash),
            "{component}: the pod template's hash annotation is not the desired hash"
        );
    }
    match render::render_cluster(cluster, &inputs) {
        Ok(again) => assert!(again == rendered, "rendering is not deterministic"),
        Err(e) => panic!("the second render of the same cluster failed: {e}"),
    }
    assert_eq!(
        render::desired_cluster(cluster, &inputs),
        desired,
        "desired_cluster disagrees with the render"
    );
    if let Err(e) = rendered.to_json() {
        panic!("rendered objects do not serialize: {e}");
    }
    Outcome::Rendered
}
