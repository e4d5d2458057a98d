//! The `StarRocksCluster` API, group `starrocks.com`, version `v1`: CR-compatible with the
//! upstream Go operator (StarRocks/starrocks-kubernetes-operator), so that upstream manifests
//! apply unchanged.
//!
//! - [`StarRocksCluster`] / [`StarRocksClusterSpec`]: the custom resource and its spec.
//! - [`common`]: shapes shared by the component specs.
//! - [`status`]: the status, upstream's fields plus `observedGeneration`, `conditions` and the
//!   lifecycle state.
//! - [`generate`]: the CustomResourceDefinition and its YAML.

pub mod common;
pub mod generate;
pub mod status;

pub use common::{
    BeSpec, CnSpec, ComponentSpec, ConfigMapInfo, FeProxySpec, FeSpec, LoadSpec, MountInfo,
    STORAGE_CLASS_EMPTY_DIR, STORAGE_CLASS_HOST_PATH, StarRocksService, StarRocksServicePort,
    StorageVolume,
};
pub use status::{
    ComponentPhase, ComponentStatus, ConditionType, DisasterRecoveryStatus, HorizontalScaler,
    LifecycleStatus, StarRocksClusterStatus,
};

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the CRD.
pub const GROUP: &str = "starrocks.com";
/// API version of the CRD.
pub const VERSION: &str = "v1";
/// Kind of the custom resource.
pub const KIND: &str = "StarRocksCluster";

/// Desired state of a StarRocks cluster (upstream `StarRocksClusterSpec`).
///
/// FE is required (schema rule and code validation); BE, CN and the FE proxy are
/// optional. Unknown fields are preserved (not pruned) so that manifests written for other
/// upstream versions keep every field they carry.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "starrocks.com",
    version = "v1",
    kind = "StarRocksCluster",
    plural = "starrocksclusters",
    namespaced,
    shortname = "src",
    status = "StarRocksClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A StarRocks cluster: FE, BE, CN and FE proxy workloads, CR-compatible with the upstream StarRocks operator.",
    scale(
        spec_replicas_path = ".spec.starRocksCnSpec.replicas",
        status_replicas_path = ".status.starRocksCnStatus.replicas",
        label_selector_path = ".status.starRocksCnStatus.selector"
    ),
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Lifecycle", "type": "string", "jsonPath": ".status.lifecycle.state"}"#,
    printcolumn = r#"{"name": "FeStatus", "type": "string", "jsonPath": ".status.starRocksFeStatus.phase"}"#,
    printcolumn = r#"{"name": "BeStatus", "type": "string", "jsonPath": ".status.starRocksBeStatus.phase"}"#,
    printcolumn = r#"{"name": "CnStatus", "type": "string", "jsonPath": ".status.starRocksCnStatus.phase"}"#,
    printcolumn = r#"{"name": "FeProxyStatus", "type": "string", "jsonPath": ".status.starRocksFeProxyStatus.phase", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend(
    "x-kubernetes-preserve-unknown-fields" = true,
    "x-kubernetes-validations" = [
        {"rule": "has(self.starRocksFeSpec)", "message": "spec.starRocksFeSpec is required"}
    ]
))]
pub struct StarRocksClusterSpec {
    /// Deprecated upstream (each component has its own `serviceAccount`); kept, not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// FE: metadata and query planning. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_fe_spec: Option<FeSpec>,
    /// BE: storage and execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_be_spec: Option<BeSpec>,
    /// CN: stateless compute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_cn_spec: Option<CnSpec>,
    /// FE proxy: nginx in front of FE for Stream Load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_fe_proxy_spec: Option<FeProxySpec>,
    /// Upstream's FE disaster-recovery mode. Kept so it is not pruned; this operator does not
    /// act on it (reported as not acted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disaster_recovery: Option<DisasterRecovery>,
}

impl StarRocksClusterSpec {
    /// Paths of fields that are set in this spec but that this operator keeps without acting
    /// on them, e.g. `["spec.disasterRecovery"]`. The reconciler reports them in a condition.
    ///
    /// Source: fields of the upstream CRD outside the scope of this operator: FE disaster
    /// recovery, the deprecated cluster-level `serviceAccount`, and the HPA API `version`
    /// (this operator always renders `autoscaling/v2`).
    pub fn unacted_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.disaster_recovery.is_some() {
            out.push("spec.disasterRecovery".to_string());
        }
        if self.service_account.is_some() {
            out.push("spec.serviceAccount".to_string());
        }
        if let Some(policy) = self
            .star_rocks_cn_spec
            .as_ref()
            .and_then(|cn| cn.auto_scaling_policy.as_ref())
            && policy.version.as_deref().is_some_and(|v| v != "v2")
        {
            out.push("spec.starRocksCnSpec.autoScalingPolicy.version".to_string());
        }
        out
    }
}

/// Upstream's disaster-recovery switch (`DisasterRecovery`); kept, not acted on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisasterRecovery {
    /// Whether FE should start in disaster-recovery mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Bump to trigger a new recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// CN autoscaling (upstream `AutoScalingPolicy`). The HPA `<cluster>-cn-autoscaler` scales
/// the StarRocksCluster's scale subresource (`.spec.starRocksCnSpec.replicas`), as upstream
/// does since its PR #662.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.maxReplicas) || self.maxReplicas >= (has(self.minReplicas) ? self.minReplicas : 1)",
        "message": "maxReplicas must be >= minReplicas"
    }
]))]
pub struct AutoScalingPolicy {
    /// Metrics and scaling behaviour (shapes of `autoscaling/v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_policy: Option<HpaPolicy>,
    /// Upstream's HPA API version (`v1`, `v2beta2`, `v2`). This operator always renders
    /// `autoscaling/v2` (the only one served since Kubernetes 1.26).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["v1", "v2beta2", "v2"]))]
    pub version: Option<String>,
    /// Lower bound of CN pods (>= 1). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,
    /// Upper bound of CN pods (>= minReplicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
}

/// HPA metrics and behaviour (upstream `HPAPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HpaPolicy {
    /// What to scale on (`autoscaling/v2` `MetricSpec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricSpec>>,
    /// Scaling velocity limits (`autoscaling/v2` `HorizontalPodAutoscalerBehavior`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}
