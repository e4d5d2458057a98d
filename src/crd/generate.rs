//! The generated CustomResourceDefinition of `StarRocksCluster` and its YAML form, as printed
//! by `starrocks-operator crd` and checked in at `crds/starrocks.com_starrocksclusters.yaml`.

use crate::crd::StarRocksCluster;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Errors of CRD generation.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The CRD could not be serialized to YAML.
    #[error("serializing the CRD to YAML: {0}")]
    Yaml(String),
}

/// The CRD object (`starrocksclusters.starrocks.com`), derived from the Rust types.
pub fn crd() -> CustomResourceDefinition {
    StarRocksCluster::crd()
}

/// The CRD as one YAML document (serde-saphyr), deterministic byte for byte across runs.
///
/// # Errors
/// [`CrdError::Yaml`] if serialization fails (not expected for this type).
pub fn crd_yaml() -> Result<String, CrdError> {
    serde_saphyr::to_string(&crd()).map_err(|e| CrdError::Yaml(e.to_string()))
}
