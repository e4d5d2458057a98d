//! The checked-in CRD (`crds/starrocks.com_starrocksclusters.yaml`) must equal what
//! `starrocks-operator crd` prints. Regenerate with `UPDATE_GOLDEN=1 cargo test --test crd_drift`.

use starrocks_operator::crd::generate::{crd, crd_yaml};
use std::path::PathBuf;

fn crd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds/starrocks.com_starrocksclusters.yaml")
}

#[test]
fn checked_in_crd_matches_generated() {
    let generated = crd_yaml().expect("CRD serializes");
    let path = crd_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).expect("write CRD");
        return;
    }
    let checked_in = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        checked_in == generated,
        "{} drifted from the Rust types; run `UPDATE_GOLDEN=1 cargo test --test crd_drift` and review the diff",
        path.display()
    );
}

#[test]
fn crd_yaml_is_deterministic_and_parses_back() {
    let a = crd_yaml().unwrap();
    assert_eq!(a, crd_yaml().unwrap());
    let back: serde_json::Value = serde_saphyr::from_str(&a).expect("YAML parses");
    assert_eq!(back, serde_json::to_value(crd().unwrap()).unwrap());
}

#[test]
fn crd_names_subresources_and_columns_match_upstream() {
    let crd = serde_json::to_value(crd().unwrap()).unwrap();
    assert_eq!(crd["metadata"]["name"], "starrocksclusters.starrocks.com");
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "starrocks.com");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "StarRocksCluster");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["src"]));
    let v = &spec["versions"][0];
    assert_eq!(v["name"], "v1");
    assert_eq!(v["served"], true);
    assert_eq!(v["storage"], true);
    assert!(v["subresources"]["status"].is_object());
    let scale = &v["subresources"]["scale"];
    assert_eq!(scale["specReplicasPath"], ".spec.starRocksCnSpec.replicas");
    assert_eq!(
        scale["statusReplicasPath"],
        ".status.starRocksCnStatus.replicas"
    );
    assert_eq!(
        scale["labelSelectorPath"],
        ".status.starRocksCnStatus.selector"
    );
    let columns: Vec<_> = v["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        columns,
        [
            "Phase",
            "Lifecycle",
            "FeStatus",
            "BeStatus",
            "CnStatus",
            "FeProxyStatus",
            "Age"
        ]
    );
}

#[test]
fn schema_carries_validation_and_keeps_unknown_fields() {
    let crd = serde_json::to_value(crd().unwrap()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(
        spec["x-kubernetes-validations"][0]["rule"],
        "has(self.starRocksFeSpec)"
    );
    let fe = &spec["properties"]["starRocksFeSpec"];
    assert_eq!(fe["x-kubernetes-preserve-unknown-fields"], true);
    for field in [
        "limits",
        "requests",
        "image",
        "replicas",
        "storageVolumes",
        "configMapInfo",
        "service",
        "feEnvVars",
        "sidecars",
        "initContainers",
        "updateStrategy",
        "sysctls",
        "persistentVolumeClaimRetentionPolicy",
        "podManagementPolicy",
        "startupProbeFailureSeconds",
    ] {
        assert!(fe["properties"][field].is_object(), "FE spec lacks {field}");
    }
    assert_eq!(fe["properties"]["replicas"]["minimum"].as_f64(), Some(0.0));
    assert_eq!(fe["properties"]["replicas"]["default"], 1);
    let sv = &fe["properties"]["storageVolumes"]["items"];
    assert!(sv["properties"]["storageSize"]["pattern"].is_string());
    assert!(sv["properties"]["name"]["pattern"].is_string());
    let cn = &spec["properties"]["starRocksCnSpec"]["properties"];
    assert!(cn["autoScalingPolicy"]["properties"]["hpaPolicy"].is_object());
    assert!(cn["cnEnvVars"].is_object());
    assert!(spec["properties"]["disasterRecovery"].is_object());
    assert!(spec["properties"]["starRocksFeProxySpec"]["properties"]["resolver"].is_object());
    let status = &schema["properties"]["status"]["properties"];
    for field in [
        "phase",
        "starRocksFeStatus",
        "starRocksCnStatus",
        "observedGeneration",
        "conditions",
        "lifecycle",
    ] {
        assert!(status[field].is_object(), "status lacks {field}");
    }
}

#[test]
fn schema_has_cel_rules_for_storage_and_autoscaling() {
    let crd = serde_json::to_value(crd().unwrap()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let sv = &spec["starRocksBeSpec"]["properties"]["storageVolumes"]["items"];
    let rules: Vec<_> = sv["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 2);
    assert!(rules[0].contains("self.storageClassName == 'hostPath'"));
    let asp = &spec["starRocksCnSpec"]["properties"]["autoScalingPolicy"];
    assert!(
        asp["x-kubernetes-validations"][0]["rule"]
            .as_str()
            .unwrap()
            .contains("maxReplicas")
    );
}
