//! Pod templates of FE, BE and CN: container, ports, environment, probes, lifecycle, volumes
//! and security contexts, following what the StarRocks images expect and what upstream
//! renders (upstream `pkg/k8sutils/templates/pod`, `pkg/subcontrollers/{fe,be,cn}/*_pod.go`).

use crate::crd::{ComponentSpec, MountInfo, STORAGE_CLASS_EMPTY_DIR, STORAGE_CLASS_HOST_PATH};
use crate::render::config::ConfigFile;
use crate::render::hash::short_hash;
use crate::render::names;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use starrocks_model::component::Component;
use std::collections::BTreeMap;

/// Path of the StarRocks health endpoint probed on the HTTP (FE) or webserver (BE/CN) port.
pub const HEALTH_PATH: &str = "/api/health";
/// Probe period in seconds; failure seconds are converted to thresholds in these periods.
pub const PROBE_PERIOD_SECONDS: i32 = 5;
/// Default total failure seconds: startup 300 (60 periods), liveness and readiness 15 (3).
pub const DEFAULT_STARTUP_FAILURE_SECONDS: i32 = 300;
/// See [`DEFAULT_STARTUP_FAILURE_SECONDS`].
pub const DEFAULT_LIVENESS_FAILURE_SECONDS: i32 = 15;
/// See [`DEFAULT_STARTUP_FAILURE_SECONDS`].
pub const DEFAULT_READINESS_FAILURE_SECONDS: i32 = 15;
/// Default termination grace period of FE, BE and CN pods (upstream default).
pub const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 120;
/// uid and gid used when `runAsNonRoot` is true (upstream `GetRunAsNonRoot`).
pub const NON_ROOT_ID: i64 = 1000;

/// Per-component facts of the StarRocks images.
struct Profile {
    entrypoint: &'static str,
    prestop: &'static str,
    conf_dir: &'static str,
    /// `(volume name, mount path, other names that also count)` of the default `emptyDir`s.
    default_volumes: &'static [(&'static str, &'static str, &'static [&'static str])],
}

fn profile(c: Component) -> Profile {
    match c {
        Component::Fe | Component::FeProxy => Profile {
            entrypoint: "/opt/starrocks/fe_entrypoint.sh",
            prestop: "/opt/starrocks/fe_prestop.sh",
            conf_dir: "/etc/starrocks/fe/conf",
            default_volumes: &[
                ("fe-meta", "/opt/starrocks/fe/meta", &[]),
                ("fe-log", "/opt/starrocks/fe/log", &[]),
            ],
        },
        Component::Be => Profile {
            entrypoint: "/opt/starrocks/be_entrypoint.sh",
            prestop: "/opt/starrocks/be_prestop.sh",
            conf_dir: "/etc/starrocks/be/conf",
            default_volumes: &[
                ("be-data", "/opt/starrocks/be/storage", &["be-storage"]),
                ("be-log", "/opt/starrocks/be/log", &[]),
            ],
        },
        Component::Cn => Profile {
            entrypoint: "/opt/starrocks/cn_entrypoint.sh",
            prestop: "/opt/starrocks/cn_prestop.sh",
            conf_dir: "/etc/starrocks/cn/conf",
            default_volumes: &[("cn-log", "/opt/starrocks/cn/log", &[])],
        },
    }
}

/// Everything a StarRocks (FE/BE/CN) pod template is rendered from.
pub struct StarRocksPodInputs<'a> {
    /// Cluster name.
    pub cluster: &'a str,
    /// Cluster namespace.
    pub namespace: &'a str,
    /// FE, BE or CN.
    pub component: Component,
    /// The component's spec.
    pub spec: &'a ComponentSpec,
    /// `feEnvVars`/`beEnvVars`/`cnEnvVars`.
    pub user_env: Option<&'a [EnvVar]>,
    /// The component's own config file.
    pub own_conf: &'a ConfigFile,
    /// FE's config file (FE's query port is passed to BE and CN).
    pub fe_conf: &'a ConfigFile,
}

/// The container ports of a StarRocks component, `(name, port)`, named as upstream names
/// them. FE: `http-port`, `rpc-port`, `query-port`; BE: `be-port`, `webserver-port`,
/// `heartbeat-port`, `brpc-port`; CN: `thrift-port` and the same three.
pub fn container_ports(c: Component, conf: &ConfigFile) -> Vec<(&'static str, i32)> {
    match c {
        Component::Fe => vec![
            ("http-port", conf.port("http_port")),
            ("rpc-port", conf.port("rpc_port")),
            ("query-port", conf.port("query_port")),
        ],
        Component::Be | Component::Cn => {
            let first = if c == Component::Be {
                ("be-port", conf.port("be_port"))
            } else {
                ("thrift-port", conf.port("thrift_port"))
            };
            vec![
                first,
                ("webserver-port", conf.port("webserver_port")),
                ("heartbeat-port", conf.port("heartbeat_service_port")),
                ("brpc-port", conf.port("brpc_port")),
            ]
        }
        Component::FeProxy => vec![("http-port", super::feproxy::PROXY_PORT)],
    }
}

/// An HTTP GET probe of `path` on `port` every [`PROBE_PERIOD_SECONDS`], failing after
/// `ceil(failure_seconds / 5)` failures; `None` (probe disabled) when `failure_seconds` is 0.
/// Source: upstream `completeProbe` (the CRD's `*ProbeFailureSeconds` fields).
pub fn http_probe(failure_seconds: i32, port: i32, path: &str) -> Option<Probe> {
    if failure_seconds <= 0 {
        return None;
    }
    Some(Probe {
        failure_threshold: Some(
            (failure_seconds + PROBE_PERIOD_SECONDS - 1) / PROBE_PERIOD_SECONDS,
        ),
        period_seconds: Some(PROBE_PERIOD_SECONDS),
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn value_env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// The environment of a StarRocks container: the user's variables first (they win), then
/// `POD_NAME`, `POD_IP`, `HOST_IP`, `POD_NAMESPACE`, `HOST_TYPE=FQDN`, `COMPONENT_NAME`,
/// `FE_SERVICE_NAME` (FE: `<cluster>-fe-service.<namespace>`; BE/CN: `<cluster>-fe-service`),
/// `FE_QUERY_PORT` (BE/CN), and `CONFIGMAP_MOUNT_PATH` when a config ConfigMap is mounted.
/// Source: upstream `pod.Envs` and the entrypoint scripts of the StarRocks images.
pub fn environment(inputs: &StarRocksPodInputs<'_>) -> Vec<EnvVar> {
    let c = inputs.component;
    let fe_service = names::service_name(inputs.cluster, Component::Fe);
    let mut ours = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_IP", "status.podIP"),
        field_env("HOST_IP", "status.hostIP"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        value_env("HOST_TYPE", "FQDN"),
        value_env("COMPONENT_NAME", c.suffix()),
    ];
    if c == Component::Fe {
        ours.push(value_env(
            "FE_SERVICE_NAME",
            format!("{fe_service}.{}", inputs.namespace),
        ));
    } else {
        ours.push(value_env("FE_SERVICE_NAME", fe_service));
        ours.push(value_env(
            "FE_QUERY_PORT",
            inputs.fe_conf.port("query_port").to_string(),
        ));
    }
    if inputs
        .spec
        .load
        .config_map_info
        .as_ref()
        .and_then(|i| i.reference())
        .is_some()
    {
        ours.push(value_env("CONFIGMAP_MOUNT_PATH", profile(c).conf_dir));
    }
    let mut env: Vec<EnvVar> = inputs.user_env.map(<[EnvVar]>::to_vec).unwrap_or_default();
    for var in ours {
        if !env.iter().any(|e| e.name == var.name) {
            env.push(var);
        }
    }
    env
}

/// Volume name of a `configMaps`/`secrets` mount: `<name>-<4 hex chars>`, stable for the same
/// `(name, mountPath, subPath)`. Upstream uses its own 4-character object hash here, so these
/// names differ from upstream's (documented adoption difference).
pub fn mount_volume_name(m: &MountInfo) -> String {
    let key = format!(
        "{}\u{0}{}\u{0}{}",
        m.name,
        m.mount_path,
        m.sub_path.as_deref().unwrap_or("")
    );
    format!("{}-{}", m.name, short_hash(&key, 4))
}

fn mount(name: &str, path: &str, sub_path: Option<&str>) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        sub_path: sub_path.filter(|s| !s.is_empty()).map(str::to_string),
        ..Default::default()
    }
}

/// Volumes and mounts of a StarRocks pod, in upstream's order: storage volumes, default
/// `emptyDir`s not replaced by a storage volume (same name or mount path), the config
/// ConfigMap, `configMaps`, `secrets`.
pub fn volumes(c: Component, spec: &ComponentSpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut vols = Vec::new();
    let mut mounts = Vec::new();
    let storage = spec.load.storage_volumes.as_deref().unwrap_or_default();
    for sv in storage {
        let class = sv.storage_class_name.as_deref();
        let source = if class.is_some_and(|s| s.eq_ignore_ascii_case(STORAGE_CLASS_EMPTY_DIR)) {
            Volume {
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }
        } else if class.is_some_and(|s| s.eq_ignore_ascii_case(STORAGE_CLASS_HOST_PATH))
            || (class.is_none() && sv.host_path.is_some())
        {
            Volume {
                host_path: sv.host_path.clone(),
                ..Default::default()
            }
        } else {
            Volume {
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: sv.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        };
        vols.push(Volume {
            name: sv.name.clone(),
            ..source
        });
        mounts.push(mount(&sv.name, &sv.mount_path, sv.sub_path.as_deref()));
    }
    let p = profile(c);
    for (name, path, aliases) in p.default_volumes {
        let replaced = storage.iter().any(|sv| {
            sv.name == *name || aliases.contains(&sv.name.as_str()) || sv.mount_path == *path
        });
        if !replaced {
            vols.push(Volume {
                name: (*name).to_string(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
            mounts.push(mount(name, path, None));
        }
    }
    if let Some((cm, _key)) = spec
        .load
        .config_map_info
        .as_ref()
        .and_then(|i| i.reference())
    {
        vols.push(config_map_volume(cm, cm));
        mounts.push(mount(cm, p.conf_dir, None));
    }
    for m in spec.config_maps.as_deref().unwrap_or_default() {
        let name = mount_volume_name(m);
        vols.push(config_map_volume(&name, &m.name));
        mounts.push(mount(&name, &m.mount_path, m.sub_path.as_deref()));
    }
    for m in spec.secrets.as_deref().unwrap_or_default() {
        let name = mount_volume_name(m);
        vols.push(Volume {
            name: name.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(m.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(mount(&name, &m.mount_path, m.sub_path.as_deref()));
    }
    (vols, mounts)
}

/// A volume named `volume` projecting the ConfigMap `config_map`.
pub fn config_map_volume(volume: &str, config_map: &str) -> Volume {
    Volume {
        name: volume.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The user's lifecycle with a `preStop` hook running `script` added when it has none.
pub fn lifecycle_with_prestop(user: Option<&Lifecycle>, script: &str) -> Lifecycle {
    let mut lc = user.cloned().unwrap_or_default();
    if lc.pre_stop.is_none() {
        lc.pre_stop = Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec![script.to_string()]),
            }),
            ..Default::default()
        });
    }
    lc
}

/// Resources of the main container from the inlined `limits`/`requests`/`claims`; `None`
/// when none is set.
pub fn resources(spec: &crate::crd::LoadSpec) -> Option<ResourceRequirements> {
    if spec.limits.is_none() && spec.requests.is_none() && spec.claims.is_none() {
        return None;
    }
    Some(ResourceRequirements {
        limits: spec.limits.clone(),
        requests: spec.requests.clone(),
        claims: spec.claims.clone(),
    })
}

/// Pod labels: `sharedLabels`, then `podLabels`, then the selector labels (which win).
pub fn pod_labels(
    cluster: &str,
    c: Component,
    spec: &crate::crd::LoadSpec,
) -> BTreeMap<String, String> {
    let mut labels = spec.shared_labels.clone().unwrap_or_default();
    labels.extend(spec.pod_labels.clone().unwrap_or_default());
    labels.extend(names::selector_labels(cluster, c));
    labels
}

/// The pod template of FE, BE or CN, without the template-hash annotation.
pub fn starrocks_pod_template(inputs: &StarRocksPodInputs<'_>) -> PodTemplateSpec {
    let c = inputs.component;
    let spec = inputs.spec;
    let load = &spec.load;
    let p = profile(c);
    let (vols, mounts) = volumes(c, spec);
    let health_port = match c {
        Component::Fe => inputs.own_conf.port("http_port"),
        _ => inputs.own_conf.port("webserver_port"),
    };
    let non_root = spec.run_as_non_root == Some(true);
    let id = non_root.then_some(NON_ROOT_ID);
    let container = Container {
        name: c.suffix().to_string(),
        image: Some(load.image.clone()),
        command: Some(
            spec.command
                .clone()
                .unwrap_or_else(|| vec![p.entrypoint.to_string()]),
        ),
        args: Some(
            spec.args
                .clone()
                .unwrap_or_else(|| vec!["$(FE_SERVICE_NAME)".to_string()]),
        ),
        ports: Some(
            container_ports(c, inputs.own_conf)
                .into_iter()
                .map(|(name, port)| ContainerPort {
                    name: Some(name.to_string()),
                    container_port: port,
                    protocol: Some("TCP".to_string()),
                    ..Default::default()
                })
                .collect(),
        ),
        env: Some(environment(inputs)),
        resources: resources(load),
        volume_mounts: Some(mounts),
        image_pull_policy: Some(
            load.image_pull_policy
                .clone()
                .unwrap_or_else(|| "IfNotPresent".to_string()),
        ),
        startup_probe: http_probe(
            load.startup_probe_failure_seconds
                .unwrap_or(DEFAULT_STARTUP_FAILURE_SECONDS),
            health_port,
            HEALTH_PATH,
        ),
        liveness_probe: http_probe(
            load.liveness_probe_failure_seconds
                .unwrap_or(DEFAULT_LIVENESS_FAILURE_SECONDS),
            health_port,
            HEALTH_PATH,
        ),
        readiness_probe: http_probe(
            load.readiness_probe_failure_seconds
                .unwrap_or(DEFAULT_READINESS_FAILURE_SECONDS),
            health_port,
            HEALTH_PATH,
        ),
        lifecycle: Some(lifecycle_with_prestop(load.lifecycle.as_ref(), p.prestop)),
        security_context: Some(SecurityContext {
            run_as_user: id,
            run_as_group: id,
            run_as_non_root: non_root.then_some(true),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(spec.read_only_root_filesystem.unwrap_or(false)),
            capabilities: spec.capabilities.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut containers = vec![container];
    containers.extend(spec.sidecars.clone().unwrap_or_default());
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(inputs.cluster, c, load)),
            annotations: load.annotations.clone().filter(|a| !a.is_empty()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers,
            init_containers: spec.init_containers.clone(),
            volumes: Some(vols),
            service_account_name: load.service_account.clone().filter(|s| !s.is_empty()),
            automount_service_account_token: Some(false),
            termination_grace_period_seconds: Some(
                spec.termination_grace_period_seconds
                    .unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS),
            ),
            affinity: load.affinity.clone(),
            tolerations: load.tolerations.clone(),
            topology_spread_constraints: load.topology_spread_constraints.clone(),
            image_pull_secrets: load.image_pull_secrets.clone(),
            node_selector: load.node_selector.clone(),
            host_aliases: spec.host_aliases.clone(),
            scheduler_name: load.scheduler_name.clone().filter(|s| !s.is_empty()),
            share_process_namespace: load.share_process_namespace,
            dns_config: spec.dns_config.clone(),
            dns_policy: Some(
                spec.dns_policy
                    .clone()
                    .unwrap_or_else(|| "ClusterFirst".to_string()),
            ),
            security_context: Some(PodSecurityContext {
                fs_group: id,
                fs_group_change_policy: Some("OnRootMismatch".to_string()),
                sysctls: spec.sysctls.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::StorageVolume;

    #[test]
    fn probe_thresholds_round_up_and_zero_disables() {
        let p = http_probe(17, 8030, HEALTH_PATH).unwrap();
        assert_eq!(p.failure_threshold, Some(4));
        assert_eq!(p.period_seconds, Some(5));
        assert!(http_probe(0, 8030, HEALTH_PATH).is_none());
        assert_eq!(http_probe(300, 1, "/").unwrap().failure_threshold, Some(60));
    }

    #[test]
    fn storage_volume_replaces_default_by_path_or_alias() {
        let mut spec = ComponentSpec::default();
        spec.load.storage_volumes = Some(vec![StorageVolume {
            name: "be-storage".into(),
            storage_class_name: Some("standard".into()),
            storage_size: Some("10Gi".into()),
            mount_path: "/opt/starrocks/be/storage".into(),
            ..Default::default()
        }]);
        let (vols, mounts) = volumes(Component::Be, &spec);
        let names: Vec<_> = vols.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["be-storage", "be-log"]);
        assert_eq!(mounts.len(), 2);
        assert!(vols[0].persistent_volume_claim.is_some());
    }

    #[test]
    fn user_env_wins() {
        let spec = ComponentSpec::default();
        let conf = ConfigFile::default();
        let user = vec![value_env("HOST_TYPE", "IP")];
        let inputs = StarRocksPodInputs {
            cluster: "demo",
            namespace: "ns",
            component: Component::Be,
            spec: &spec,
            user_env: Some(&user),
            own_conf: &conf,
            fe_conf: &ConfigFile::parse("query_port = 9031"),
        };
        let env = environment(&inputs);
        let host_types: Vec<_> = env.iter().filter(|e| e.name == "HOST_TYPE").collect();
        assert_eq!(host_types.len(), 1);
        assert_eq!(host_types[0].value.as_deref(), Some("IP"));
        let port = env.iter().find(|e| e.name == "FE_QUERY_PORT").unwrap();
        assert_eq!(port.value.as_deref(), Some("9031"));
    }
}
