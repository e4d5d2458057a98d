//! Shapes shared by every component spec of the `StarRocksCluster` API.
//!
//! Field names and JSON shapes follow the upstream Go operator
//! (StarRocks/starrocks-kubernetes-operator, `pkg/apis/starrocks/v1`, types `StarRocksLoadSpec`,
//! `StarRocksComponentSpec`, `StorageVolume`, `StarRocksService`, `ConfigMapInfo`, `MountInfo`),
//! so that manifests written for upstream deserialize unchanged.

use k8s_openapi::api::apps::v1::{
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EnvVar, HostAlias, HostPathVolumeSource, Lifecycle,
    LocalObjectReference, PodDNSConfig, ResourceClaim, Sysctl, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The special `storageClassName` that makes a storage volume an `emptyDir` instead of a
/// PersistentVolumeClaim (upstream constant `EmptyDir`; compared case-insensitively upstream).
pub const STORAGE_CLASS_EMPTY_DIR: &str = "emptyDir";
/// The special `storageClassName` that makes a storage volume a `hostPath` volume (upstream
/// constant `HostPath`); `hostPath.path` is then required.
pub const STORAGE_CLASS_HOST_PATH: &str = "hostPath";

/// Fields every workload has, FE proxy included (upstream `StarRocksLoadSpec`).
///
/// `limits`, `requests` and `claims` are inlined, as upstream inlines
/// `corev1.ResourceRequirements`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadSpec {
    /// Maximum compute resources of the main container (`cpu`, `memory`, ...), as in
    /// `ResourceRequirements.limits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
    /// Requested compute resources of the main container, as in `ResourceRequirements.requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, Quantity>>,
    /// Dynamic resource claims of the main container, as in `ResourceRequirements.claims`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Vec<ResourceClaim>>,
    /// Annotations added to the pods (not to the workload object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels added to every object rendered for this component (workload, pods, Services,
    /// claim templates, ConfigMaps, HPA). Operator labels win on conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_labels: Option<BTreeMap<String, String>>,
    /// Labels added to the pods only, in addition to `sharedLabels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,
    /// Desired number of pods (>= 0). Defaults to 1, as upstream (the API server fills it in;
    /// for CN the default also gives the HPA a non-zero starting scale, since an HPA whose
    /// target is at 0 replicas does not scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 1))]
    pub replicas: Option<i32>,
    /// Container image, `repository[:tag][@digest]`, e.g. `starrocks/fe-ubuntu:3.3.2`. Its tag
    /// carries the StarRocks version the rollout order is decided on.
    #[serde(default)]
    pub image: String,
    /// `Always`, `Never` or `IfNotPresent` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Always", "Never", "IfNotPresent"]))]
    pub image_pull_policy: Option<String>,
    /// Secrets used to pull the images of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Name of the scheduler for the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// Node selector of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Scheduling constraints of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Topology spread constraints of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// The user-facing Service `<cluster>-<component>-service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<StarRocksService>,
    /// Extra storage: one PVC template (or `emptyDir`/`hostPath` volume) per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_volumes: Option<Vec<StorageVolume>>,
    /// ServiceAccount of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The ConfigMap holding the component's config file (`fe.conf`, `be.conf`, `cn.conf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_info: Option<ConfigMapInfo>,
    /// Total seconds the startup probe may fail before the container is restarted (probe
    /// period 5 s, so threshold = ceil(seconds / 5)); 0 disables the probe. Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe_failure_seconds: Option<i32>,
    /// Total seconds the liveness probe may fail; 0 disables it. Default 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe_failure_seconds: Option<i32>,
    /// Total seconds the readiness probe may fail; 0 disables it. Default 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe_failure_seconds: Option<i32>,
    /// Container lifecycle hooks. Without a `preStop`, the image's
    /// `/opt/starrocks/<component>_prestop.sh` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Share one process namespace between the containers of a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,
}

/// Fields of FE, BE and CN (upstream `StarRocksComponentSpec`), on top of `LoadSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// The fields shared with the FE proxy.
    #[serde(flatten)]
    pub load: LoadSpec,
    /// Run as uid/gid 1000 (and fsGroup 1000) instead of the image's root user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Linux capabilities added to or dropped from the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// ConfigMaps mounted into the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_maps: Option<Vec<MountInfo>>,
    /// Secrets mounted into the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<MountInfo>>,
    /// Extra `/etc/hosts` entries of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_aliases: Option<Vec<HostAlias>>,
    /// Grace period of pod termination in seconds (>= 0). Default 120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Containers run beside the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<Vec<Container>>,
    /// Containers run before the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    /// DNS parameters of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDNSConfig>,
    /// DNS policy of the pods. Default `ClusterFirst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// Entrypoint of the main container. Default `/opt/starrocks/<component>_entrypoint.sh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments of the entrypoint. Default `$(FE_SERVICE_NAME)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// StatefulSet update strategy. Default `RollingUpdate` with partition 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<StatefulSetUpdateStrategy>,
    /// Read-only root filesystem for the main container. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// Namespaced sysctls of the pods (`podSecurityContext.sysctls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<Vec<Sysctl>>,
    /// What happens to the claims when the StatefulSet is deleted or scaled down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy:
        Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
    /// Seconds a new pod must be ready before it counts as available (>= 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
    /// `OrderedReady` or `Parallel` (default, as upstream renders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["OrderedReady", "Parallel"]))]
    pub pod_management_policy: Option<String>,
}

/// FE spec (upstream `StarRocksFeSpec`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct FeSpec {
    /// The fields shared by FE, BE and CN.
    #[serde(flatten)]
    pub component: ComponentSpec,
    /// Extra environment variables of the FE container; they win over the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fe_env_vars: Option<Vec<EnvVar>>,
}

/// BE spec (upstream `StarRocksBeSpec`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct BeSpec {
    /// The fields shared by FE, BE and CN.
    #[serde(flatten)]
    pub component: ComponentSpec,
    /// Extra environment variables of the BE container; they win over the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub be_env_vars: Option<Vec<EnvVar>>,
}

/// CN spec (upstream `StarRocksCnSpec`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct CnSpec {
    /// The fields shared by FE, BE and CN.
    #[serde(flatten)]
    pub component: ComponentSpec,
    /// Extra environment variables of the CN container; they win over the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cn_env_vars: Option<Vec<EnvVar>>,
    /// Horizontal autoscaling of CN through the cluster's scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_policy: Option<crate::crd::AutoScalingPolicy>,
}

/// FE proxy spec (upstream `StarRocksFeProxySpec`): nginx in front of FE for Stream Load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct FeProxySpec {
    /// The fields shared with FE, BE and CN.
    #[serde(flatten)]
    pub load: LoadSpec,
    /// DNS resolver nginx uses to resolve the FE Service. Default
    /// `kube-dns.kube-system.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
}

/// Extra storage of a component (upstream `StorageVolume`).
///
/// Well-known names/paths replace the default `emptyDir` volumes: FE `fe-meta`
/// (`/opt/starrocks/fe/meta`) and `fe-log` (`/opt/starrocks/fe/log`); BE `be-storage` or
/// `be-data` (`/opt/starrocks/be/storage`) and `be-log` (`/opt/starrocks/be/log`); CN `cn-log`
/// (`/opt/starrocks/cn/log`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.hostPath) || !has(self.storageClassName) || self.storageClassName == 'hostPath'",
        "message": "hostPath is only allowed with storageClassName hostPath"
    },
    {
        "rule": "!has(self.storageClassName) || self.storageClassName != 'hostPath' || (has(self.hostPath) && self.hostPath.path != '')",
        "message": "hostPath.path is required when storageClassName is hostPath"
    }
]))]
pub struct StorageVolume {
    /// Volume name (a DNS-1123 subdomain); also the PVC template name.
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ))]
    #[schemars(length(max = 253))]
    pub name: String,
    /// StorageClass of the claim; unset uses the cluster default. The special values
    /// `emptyDir` and `hostPath` make an `emptyDir` or `hostPath` volume instead of a claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Requested size, a binary quantity such as `10Gi`, or `0`. Ignored for `emptyDir` and
    /// `hostPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?)$"))]
    pub storage_size: Option<String>,
    /// Host path of a `hostPath` volume; required when `storageClassName` is `hostPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    /// Where the volume is mounted in the main container.
    #[schemars(length(min = 1))]
    pub mount_path: String,
    /// Sub-path of the volume to mount. Default the volume root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}

/// The user-facing Service of a component (upstream `StarRocksService`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StarRocksService {
    /// Annotations of the user-facing Service only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels of the user-facing Service only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `ClusterIP` (default), `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]))]
    pub type_: Option<String>,
    /// `spec.loadBalancerIP`, used only with type `LoadBalancer`.
    #[serde(
        default,
        rename = "loadBalancerIP",
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balancer_ip: Option<String>,
    /// Overrides of the default ports, matched by `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<StarRocksServicePort>>,
    /// Client CIDRs allowed through a cloud load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_source_ranges: Option<Vec<String>>,
    /// `Cluster` or `Local`; only for `NodePort` and `LoadBalancer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Cluster", "Local"]))]
    pub external_traffic_policy: Option<String>,
}

/// A port override of the user-facing Service (upstream `StarRocksServicePort`).
///
/// Names: FE `http`, `rpc`, `query`, `edit-log`; BE `be`, `webserver`, `heartbeat`, `brpc`;
/// CN `thrift`, `webserver`, `heartbeat`, `brpc`; FE proxy `http-port`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StarRocksServicePort {
    /// Name of the default port to override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Service port (1-65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub port: Option<i32>,
    /// Target container port (1-65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub container_port: Option<i32>,
    /// Node port (usually 30000-32767), only for `NodePort` and `LoadBalancer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub node_port: Option<i32>,
    /// Application protocol hint, e.g. `mysql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// The ConfigMap holding a component's config file (upstream `ConfigMapInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapInfo {
    /// Name of the ConfigMap, in the cluster's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    /// Key of the config file in the ConfigMap, e.g. `fe.conf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_key: Option<String>,
}

impl ConfigMapInfo {
    /// `(configMapName, resolveKey)` when both are set and non-empty, as upstream requires
    /// before it mounts the ConfigMap.
    pub fn reference(&self) -> Option<(&str, &str)> {
        match (self.config_map_name.as_deref(), self.resolve_key.as_deref()) {
            (Some(name), Some(key)) if !name.is_empty() && !key.is_empty() => Some((name, key)),
            _ => None,
        }
    }
}

/// A ConfigMap or Secret mounted into the main container (upstream `MountInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountInfo {
    /// Name of the ConfigMap or Secret (at most 50 characters upstream).
    #[serde(default)]
    pub name: String,
    /// Mount path in the container; must not contain `:`.
    #[serde(default)]
    pub mount_path: String,
    /// Sub-path to mount. Default the volume root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
}
