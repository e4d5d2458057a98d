//! Golden tests: every example in `deploy/examples/` renders to the checked-in objects in
//! `tests/golden/<example>.yaml`. Regenerate with `UPDATE_GOLDEN=1 cargo test --test
//! render_golden` and review the diff against the Kubernetes API reference.
//!
//! Also: every rendered object round-trips through its k8s-openapi type; renders are
//! byte-identical across repeats and input field orderings; the desired state matches.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::Value;
use starrocks_model::component::Component;
use starrocks_operator::crd::StarRocksCluster;
use starrocks_operator::render::{self, ConfigInputs, RenderedCluster, Workload, names};
use std::path::{Path, PathBuf};

const UID: &str = "00000000-0000-4000-8000-000000000001";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root().join("deploy/examples"))
        .expect("deploy/examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 7, "expected the example set, got {v:?}");
    v
}

/// Parses an example file: the StarRocksCluster (with a fixed uid and generation 1, as the API
/// server would assign) and the ConfigMaps beside it.
fn load(path: &Path) -> (Value, ConfigInputs) {
    let text = std::fs::read_to_string(path).expect("read example");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("example parses");
    let mut cluster = None;
    let mut maps = Vec::new();
    for doc in docs {
        match doc["kind"].as_str() {
            Some("StarRocksCluster") => cluster = Some(doc),
            Some("ConfigMap") => {
                maps.push(serde_json::from_value::<ConfigMap>(doc).expect("ConfigMap"))
            }
            other => panic!("{}: unexpected kind {other:?}", path.display()),
        }
    }
    let mut cluster = cluster.expect("a StarRocksCluster");
    cluster["metadata"]["uid"] = UID.into();
    cluster["metadata"]["generation"] = 1.into();
    (cluster, ConfigInputs::from_config_maps(&maps))
}

fn render_value(cluster: &Value, inputs: &ConfigInputs) -> RenderedCluster {
    let cr: StarRocksCluster = serde_json::from_value(cluster.clone()).expect("CR deserializes");
    render::render_cluster(&cr, inputs).expect("example renders")
}

fn to_yaml(r: &RenderedCluster) -> String {
    serde_saphyr::to_string_multiple(&r.to_json().unwrap()).expect("yaml")
}

#[test]
fn examples_match_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for path in examples() {
        let (cluster, inputs) = load(&path);
        let yaml = to_yaml(&render_value(&cluster, &inputs));
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let golden = root().join("tests/golden").join(format!("{stem}.yaml"));
        if update {
            std::fs::write(&golden, &yaml).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == yaml => {}
            Ok(_) => failures.push(format!("{stem}: differs from {}", golden.display())),
            Err(e) => failures.push(format!("{stem}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to regenerate):\n{}",
        failures.join("\n")
    );
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) {
    let typed: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{} does not deserialize: {e}", v["metadata"]["name"]));
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        v,
        "lossy round trip"
    );
}

#[test]
fn every_rendered_object_round_trips_through_its_type() {
    for path in examples() {
        let (cluster, inputs) = load(&path);
        for obj in render_value(&cluster, &inputs).to_json().unwrap() {
            let api = (
                obj["apiVersion"].as_str().unwrap(),
                obj["kind"].as_str().unwrap(),
            );
            match api {
                ("apps/v1", "StatefulSet") => round_trip::<StatefulSet>(&obj),
                ("apps/v1", "Deployment") => round_trip::<Deployment>(&obj),
                ("v1", "Service") => round_trip::<Service>(&obj),
                ("v1", "ConfigMap") => round_trip::<ConfigMap>(&obj),
                ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(&obj),
                ("autoscaling/v2", "HorizontalPodAutoscaler") => {
                    round_trip::<HorizontalPodAutoscaler>(&obj)
                }
                other => panic!("unexpected object {other:?}"),
            }
            let owner = &obj["metadata"]["ownerReferences"][0];
            assert_eq!(owner["uid"], UID);
            assert_eq!(owner["kind"], "StarRocksCluster");
            assert_eq!(owner["controller"], true);
        }
    }
}

/// Reverses the key order of every JSON object (serde_json keeps insertion order only with
/// `preserve_order`; re-serializing through a reversed text is what the API server may send).
fn reordered_text(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push('{');
                for (i, (k, val)) in m.iter().rev().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    write(val, out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, val) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(val, out);
                }
                out.push(']');
            }
            other => out.push_str(&serde_json::to_string(other).unwrap()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

#[test]
fn renders_are_byte_identical_across_repeats_and_field_orders() {
    for path in examples() {
        let (cluster, inputs) = load(&path);
        let first = to_yaml(&render_value(&cluster, &inputs));
        assert_eq!(first, to_yaml(&render_value(&cluster, &inputs)));
        let text = reordered_text(&cluster);
        let cr: StarRocksCluster = serde_json::from_str(&text).unwrap();
        let again = render::render_cluster(&cr, &inputs).unwrap();
        assert_eq!(first, to_yaml(&again), "{}", path.display());
        // The YAML text itself, parsed again, gives the same render.
        let yaml_text = serde_saphyr::to_string(&cluster).unwrap();
        let from_yaml: StarRocksCluster = serde_saphyr::from_str(&yaml_text).unwrap();
        assert_eq!(
            first,
            to_yaml(&render::render_cluster(&from_yaml, &inputs).unwrap())
        );
    }
}

fn example(name: &str) -> (Value, ConfigInputs) {
    load(&root().join("deploy/examples").join(format!("{name}.yaml")))
}

#[test]
fn desired_state_comes_from_the_same_render() {
    let (cluster, inputs) = example("starrocks-cluster-demo");
    let r = render_value(&cluster, &inputs);
    let d = r.desired();
    assert_eq!(d.generation, 1);
    assert!(d.invalid.is_none());
    assert_eq!(
        d.components.keys().copied().collect::<Vec<_>>(),
        [Component::Fe, Component::Be, Component::Cn]
    );
    for (c, objs) in &r.components {
        let Workload::StatefulSet(sts) = &objs.workload else {
            panic!("{c} is not a StatefulSet")
        };
        let spec = &sts.spec;
        let annotations = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap();
        assert_eq!(
            annotations[names::TEMPLATE_HASH_ANNOTATION],
            d.components[c].template_hash
        );
        assert_eq!(spec.replicas, d.components[c].replicas);
        assert_eq!(
            spec.template.spec.as_ref().unwrap().containers[0]
                .image
                .as_deref(),
            Some(d.components[c].image.as_str())
        );
    }
    assert_eq!(d.components[&Component::Fe].replicas, Some(3));
    assert_eq!(
        d.components[&Component::Be].image,
        "starrocks/be-ubuntu:3.3.2"
    );
}

#[test]
fn config_change_rolls_only_the_component_that_uses_it() {
    let (cluster, inputs) = example("starrocks-cluster-custom-config");
    let before = render_value(&cluster, &inputs).desired();
    let mut changed = inputs.clone();
    let mut be = inputs.get("be-config").unwrap().clone();
    be.insert(
        "be.conf".into(),
        format!(
            "{}\nstorage_flood_stage_usage_percent = 90\n",
            be["be.conf"]
        ),
    );
    changed.insert("be-config", be);
    let after = render_value(&cluster, &changed).desired();
    assert_ne!(
        before.components[&Component::Be].template_hash,
        after.components[&Component::Be].template_hash
    );
    assert_eq!(
        before.components[&Component::Fe].template_hash,
        after.components[&Component::Fe].template_hash
    );

    // FE's query port reaches BE through FE_QUERY_PORT, so changing it rolls both.
    let mut changed = inputs.clone();
    let mut fe = inputs.get("fe-config").unwrap().clone();
    fe.insert(
        "fe.conf".into(),
        fe["fe.conf"].replace("query_port = 9031", "query_port = 9032"),
    );
    changed.insert("fe-config", fe);
    let after = render_value(&cluster, &changed).desired();
    assert_ne!(
        before.components[&Component::Be].template_hash,
        after.components[&Component::Be].template_hash
    );
    assert_ne!(
        before.components[&Component::Fe].template_hash,
        after.components[&Component::Fe].template_hash
    );
}

#[test]
fn config_ports_reach_services_probes_and_env() {
    let (cluster, inputs) = example("starrocks-cluster-custom-config");
    let r = render_value(&cluster, &inputs);
    let fe = r.component(Component::Fe).unwrap().to_json().unwrap();
    let svc = fe
        .iter()
        .find(|o| o["metadata"]["name"] == "tuned-fe-service")
        .unwrap();
    let ports: Vec<_> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [8031, 9021, 9031, 9011]);
    let sts = fe.iter().find(|o| o["kind"] == "StatefulSet").unwrap();
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], 8031);
    let be = r.component(Component::Be).unwrap().to_json().unwrap();
    let sts = be.iter().find(|o| o["kind"] == "StatefulSet").unwrap();
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let q = env.iter().find(|e| e["name"] == "FE_QUERY_PORT").unwrap();
    assert_eq!(q["value"], "9031");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        8041
    );
}

#[test]
fn selectors_and_immutable_fields_match_upstream() {
    let (cluster, inputs) = example("starrocks-cluster-persistent-storage");
    let r = render_value(&cluster, &inputs);
    for c in [Component::Fe, Component::Be] {
        let Workload::StatefulSet(sts) = &r.component(c).unwrap().workload else {
            panic!()
        };
        let spec = &sts.spec;
        let sel = spec.selector.match_labels.as_ref().unwrap();
        assert_eq!(sel.len(), 2);
        assert_eq!(sel["app.kubernetes.io/component"], c.suffix());
        assert_eq!(
            sel["app.starrocks.ownerreference/name"],
            format!("durable-{}", c.suffix())
        );
        assert_eq!(
            spec.service_name.as_deref(),
            Some(format!("durable-{}-search", c.suffix()).as_str())
        );
        assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    }
    let Workload::StatefulSet(be) = &r.component(Component::Be).unwrap().workload else {
        panic!()
    };
    let claims: Vec<_> = be
        .spec
        .volume_claim_templates
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        claims,
        ["be-data", "be-log"],
        "hostPath volumes get no claim"
    );
}

#[test]
fn cn_autoscaler_targets_the_cluster_scale_subresource() {
    let (cluster, inputs) = example("starrocks-cluster-cn-autoscaling");
    let r = render_value(&cluster, &inputs);
    let cn = r.component(Component::Cn).unwrap();
    let hpa = cn.hpa.as_ref().expect("HPA rendered");
    assert_eq!(hpa.metadata.name.as_deref(), Some("elastic-cn-autoscaler"));
    let spec = &hpa.spec;
    assert_eq!(spec.scale_target_ref.kind, "StarRocksCluster");
    assert_eq!(
        spec.scale_target_ref.api_version.as_deref(),
        Some("starrocks.com/v1")
    );
    assert_eq!(spec.scale_target_ref.name, "elastic");
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 8));
    assert_eq!(
        cn.desired.replicas,
        Some(2),
        "starts at minReplicas until the HPA writes replicas"
    );
}
