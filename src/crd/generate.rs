//! The generated CustomResourceDefinition of `StarRocksCluster` and its YAML form, as printed
//! by `starrocks-operator crd` and checked in at `crds/starrocks.com_starrocksclusters.yaml`.
//!
//! The schema is derived from the Rust types. Descriptions inside embedded Kubernetes types
//! (affinity, containers, tolerations, ...) are dropped, keeping the description of the field
//! itself: they repeat the Kubernetes API reference and would make the CRD about 1.1 MB, over
//! what a client-side `kubectl apply` can store in its last-applied annotation (256 KiB).

use crate::crd::StarRocksCluster;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

/// Errors of CRD generation.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The CRD could not be converted to or from JSON while trimming descriptions.
    #[error("converting the CRD: {0}")]
    Json(#[from] serde_json::Error),
    /// The CRD could not be serialized to YAML.
    #[error("serializing the CRD to YAML: {0}")]
    Yaml(String),
}

/// Fields whose schema is an embedded Kubernetes (or Kubernetes-shaped) type; descriptions
/// below them are dropped.
const EMBEDDED_TYPE_FIELDS: &[&str] = &[
    "affinity",
    "beEnvVars",
    "capabilities",
    "claims",
    "cnEnvVars",
    "conditions",
    "dnsConfig",
    "feEnvVars",
    "hostAliases",
    "hostPath",
    "hpaPolicy",
    "imagePullSecrets",
    "initContainers",
    "lifecycle",
    "limits",
    "persistentVolumeClaimRetentionPolicy",
    "requests",
    "sidecars",
    "sysctls",
    "tolerations",
    "topologySpreadConstraints",
    "updateStrategy",
];

fn strip_descriptions(node: &mut Value) {
    match node {
        Value::Object(map) => {
            map.remove("description");
            map.values_mut().for_each(strip_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

fn trim(node: &mut Value) {
    match node {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "properties"
                    && let Value::Object(props) = child
                {
                    for (name, prop) in props.iter_mut() {
                        if EMBEDDED_TYPE_FIELDS.contains(&name.as_str()) {
                            let own = prop.get("description").cloned();
                            strip_descriptions(prop);
                            if let (Some(desc), Value::Object(p)) = (own, prop) {
                                p.insert("description".to_string(), desc);
                            }
                        } else {
                            trim(prop);
                        }
                    }
                } else {
                    trim(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(trim),
        _ => {}
    }
}

/// The CRD object (`starrocksclusters.starrocks.com`), derived from the Rust types, with the
/// descriptions of embedded Kubernetes types trimmed.
///
/// # Errors
/// [`CrdError::Json`] if the CRD does not round-trip through JSON (not expected).
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut value = serde_json::to_value(StarRocksCluster::crd())?;
    if let Some(Value::Array(versions)) = value.pointer_mut("/spec/versions") {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                trim(schema);
            }
        }
    }
    Ok(serde_json::from_value(value)?)
}

/// The CRD as one YAML document (serde-saphyr), deterministic byte for byte across runs.
///
/// # Errors
/// [`CrdError`] if conversion or serialization fails (not expected for this type).
pub fn crd_yaml() -> Result<String, CrdError> {
    serde_saphyr::to_string(&crd()?).map_err(|e| CrdError::Yaml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_type_descriptions_are_trimmed_but_own_ones_kept() {
        let crd = serde_json::to_value(crd().unwrap()).unwrap();
        let fe = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["starRocksFeSpec"]["properties"];
        assert!(
            fe["affinity"]["description"].is_string(),
            "field's own description kept"
        );
        assert!(fe["affinity"]["properties"]["nodeAffinity"]["description"].is_null());
        assert!(
            fe["storageVolumes"]["items"]["properties"]["storageSize"]["description"].is_string()
        );
        let json = serde_json::to_string(&crd).unwrap();
        assert!(json.len() < 256 * 1024, "CRD JSON is {} bytes", json.len());
    }
}
