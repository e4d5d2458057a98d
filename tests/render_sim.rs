//! Every example CR is accepted by the generated CRD's schema, and every rendered object is
//! accepted by the simulator's API server (its schema checks, defaulting and validation), as
//! they would be by a real API server.

use serde_json::Value;
use starrocks_operator::crd::StarRocksCluster;
use starrocks_operator::render::{self, ConfigInputs};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_and_rendered_objects_are_accepted_by_the_simulator() {
    let sim = kube_sim::Sim::start(kube_sim::options::SimOptions::default())
        .await
        .expect("sim starts");
    let crd =
        std::fs::read_to_string(root().join("crds/starrocks.com_starrocksclusters.yaml")).unwrap();
    sim.create_from_yaml(&crd).expect("CRD accepted");
    sim.create_from_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: starrocks\n")
        .expect("namespace");

    let mut dir: Vec<_> = std::fs::read_dir(root().join("deploy/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    dir.sort();
    for path in dir {
        let text = std::fs::read_to_string(&path).unwrap();
        sim.create_from_yaml(&text)
            .unwrap_or_else(|e| panic!("{}: example rejected: {e}", path.display()));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let mut maps = Vec::new();
        let mut name = String::new();
        for doc in &docs {
            if doc["kind"] == "ConfigMap" {
                maps.push(serde_json::from_value(doc.clone()).unwrap());
            } else {
                name = doc["metadata"]["name"].as_str().unwrap().to_string();
            }
        }
        // Render from the object as stored (with uid, generation and schema defaults applied).
        let stored = sim
            .object("starrocks.com", "starrocksclusters", "starrocks", &name)
            .expect("cluster stored");
        let cluster: StarRocksCluster = serde_json::from_value(stored).unwrap();
        let rendered = render::render_cluster(&cluster, &ConfigInputs::from_config_maps(&maps))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let objects = rendered.to_json().unwrap();
        let yaml = serde_saphyr::to_string_multiple(&objects).unwrap();
        sim.create_from_yaml(&yaml)
            .unwrap_or_else(|e| panic!("{}: rendered objects rejected: {e}", path.display()));
        for obj in &objects {
            let (group, plural) = match obj["kind"].as_str().unwrap() {
                "StatefulSet" => ("apps", "statefulsets"),
                "Deployment" => ("apps", "deployments"),
                "Service" => ("", "services"),
                "ConfigMap" => ("", "configmaps"),
                "PodDisruptionBudget" => ("policy", "poddisruptionbudgets"),
                "HorizontalPodAutoscaler" => ("autoscaling", "horizontalpodautoscalers"),
                other => panic!("unexpected kind {other}"),
            };
            let n = obj["metadata"]["name"].as_str().unwrap();
            assert!(
                sim.object(group, plural, "starrocks", n).is_some(),
                "{n} not stored"
            );
        }
    }
}
