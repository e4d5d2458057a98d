//! Status of a `StarRocksCluster`: upstream's fields (`phase`, `reason`, per-component
//! statuses) plus `observedGeneration`, standard `conditions` and the lifecycle state.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StarRocksClusterStatus {
    /// `running`, `reconciling` or `failed` (upstream cluster phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why the cluster is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// FE status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_fe_status: Option<ComponentStatus>,
    /// BE status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_be_status: Option<ComponentStatus>,
    /// CN status; carries `replicas` and `selector` for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_cn_status: Option<ComponentStatus>,
    /// FE proxy status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star_rocks_fe_proxy_status: Option<ComponentStatus>,
    /// Upstream's disaster-recovery status; kept, not written by this operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disaster_recovery_status: Option<DisasterRecoveryStatus>,
    /// `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: `Ready`, `Progressing`, `Degraded`, `Blocked`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
    /// The lifecycle state machine's state and rollout plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleStatus>,
}

/// Component phase values (upstream `ComponentPhase`).
pub struct ComponentPhase;

impl ComponentPhase {
    /// Some pod is being created or updated.
    pub const RECONCILING: &'static str = "reconciling";
    /// Some pod failed.
    pub const FAILED: &'static str = "failed";
    /// All pods run and are ready.
    pub const RUNNING: &'static str = "running";
}

/// Status of one component (upstream `StarRocksComponentStatus`, plus the CN fields
/// `hpaName`, `horizontalScaler`, `replicas` and `selector`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Name of the user-facing Service, e.g. `demo-fe-service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Names of failed pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_instances: Option<Vec<String>>,
    /// Names of pods being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating_instances: Option<Vec<String>>,
    /// Names of running pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_instances: Option<Vec<String>>,
    /// Names of the workloads, e.g. `["demo-fe"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_names: Option<Vec<String>>,
    /// `reconciling`, `failed` or `running` .
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why the component is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// CN only, deprecated upstream: name of the HPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_name: Option<String>,
    /// CN only: the HPA's name and API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_scaler: Option<HorizontalScaler>,
    /// CN only: number of non-terminated CN pods (scale subresource `statusReplicasPath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// CN only: label selector of CN pods as a string (scale subresource
    /// `labelSelectorPath`), e.g. `app.kubernetes.io/component=cn,app.starrocks.ownerreference/name=demo-cn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// The HPA of CN (upstream `HorizontalScaler`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalScaler {
    /// HPA name, `<cluster>-cn-autoscaler`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// HPA API version, `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Upstream's disaster-recovery status; kept so it is not pruned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisasterRecoveryStatus {
    /// `todo`, `doing` or `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Reason of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds the recovery started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<i64>,
    /// Unix seconds the recovery ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_timestamp: Option<i64>,
    /// Generation of the recovery last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The lifecycle state machine as recorded in status, so that a new leader (or an operator
/// whose journal was lost) resumes from it. Written by the reconciler.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleStatus {
    /// State name, e.g. `Creating`, `WaitingFe`, `UpgradingBe`, `Steady`, `Blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Direction of the ordered rollout in progress: `upgrade` or `downgrade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Tiers still to roll, in order, e.g. `["CN", "FE"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_tiers: Option<Vec<String>>,
    /// Generation of the spec the rollout targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_generation: Option<i64>,
    /// Human-readable detail (why blocked, what is awaited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The `type`s of the standard conditions in `status.conditions` (Kubernetes API conventions:
/// `status` is `True`/`False`/`Unknown`, `reason` is CamelCase).
pub struct ConditionType;

impl ConditionType {
    /// Every component is rolled out and ready.
    pub const READY: &'static str = "Ready";
    /// A rollout or creation is in progress.
    pub const PROGRESSING: &'static str = "Progressing";
    /// Some component has failed or unavailable pods.
    pub const DEGRADED: &'static str = "Degraded";
    /// The lifecycle is blocked: the spec is invalid, a referenced ConfigMap is missing, or a
    /// rollout gate cannot pass; the message names the field or the gate.
    pub const BLOCKED: &'static str = "Blocked";
    /// The spec sets fields this operator keeps but does not act on (e.g.
    /// `spec.disasterRecovery`); the message lists them.
    pub const UNSUPPORTED_FIELDS: &'static str = "UnsupportedFields";
}
