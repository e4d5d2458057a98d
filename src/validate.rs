//! Validation of a `StarRocksCluster` beyond what the CRD schema can express.
//!
//! Every error names the field path and the problem, e.g.
//! `spec.starRocksBeSpec.replicas: must be >= 0, got -1`. An invalid spec blocks the cluster:
//! nothing is rendered or applied (see [`crate::render`]).
//!
//! Rules and their sources:
//! - FE is required; BE, CN and the FE proxy are optional (this operator's issue 4; FE is what
//!   BE and CN register with).
//! - Names must fit the Kubernetes object name limits of the objects rendered from them
//!   (Service names are DNS-1035 labels of at most 63 characters; Kubernetes API reference,
//!   "Object Names and IDs").
//! - `replicas`, probe failure seconds, grace period and `minReadySeconds` are non-negative
//!   (upstream CRD and Kubernetes API validation).
//! - Images of FE, BE and CN must name a tag: the tag carries the StarRocks version that
//!   decides the rollout order (StarRocks upgrade and downgrade guides).
//! - Storage volumes: unique names and mount paths, a valid size for claims, `hostPath` only
//!   with `storageClassName: hostPath` (upstream `StorageVolume.Validate`).
//! - Service: `externalTrafficPolicy` and node ports only with `NodePort` or `LoadBalancer`
//!   (upstream `StarRocksService.Validate`; Kubernetes Service validation).
//! - Autoscaling: `minReplicas >= 1`, `maxReplicas` set and `>= minReplicas` (upstream CN
//!   controller `validating`).

use crate::crd::{
    AutoScalingPolicy, ComponentSpec, ConfigMapInfo, LoadSpec, STORAGE_CLASS_EMPTY_DIR,
    STORAGE_CLASS_HOST_PATH, StarRocksCluster, StarRocksClusterSpec, StarRocksService,
    StorageVolume,
};
use std::collections::BTreeSet;
use std::fmt;

/// One validation failure: the JSON path of the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// Field path, e.g. `spec.starRocksBeSpec.storageVolumes[1].name`.
    pub path: String,
    /// What is wrong, e.g. `must be >= 0, got -1`.
    pub message: String,
}

impl ValidationError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Joins errors into the one-line text the lifecycle model carries in
/// `DesiredCluster::invalid` and the status condition shows (`; `-separated).
pub fn describe(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A cluster that passed [`validate`]: name, namespace and the FE spec are known to be there.
#[derive(Clone, Copy, Debug)]
pub struct ValidatedCluster<'a> {
    /// The cluster.
    pub cluster: &'a StarRocksCluster,
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.namespace`.
    pub namespace: &'a str,
}

/// Longest suffix appended to the cluster name in a Service name (`-fe-proxy-service`).
const LONGEST_SERVICE_SUFFIX: usize = "-fe-proxy-service".len();
/// Kubernetes limit of a DNS-1035 label (Service names).
const DNS_LABEL_MAX: usize = 63;

/// Checks `cluster` and returns it as a [`ValidatedCluster`] or every problem found.
///
/// # Errors
/// All [`ValidationError`]s found, in field order; never an empty vector.
pub fn validate(cluster: &StarRocksCluster) -> Result<ValidatedCluster<'_>, Vec<ValidationError>> {
    let mut errs = Vec::new();
    let name = cluster.metadata.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(ValidationError::new("metadata.name", "is required"));
    } else if !is_dns1035_label(name) {
        errs.push(ValidationError::new(
            "metadata.name",
            format!("must be a DNS-1035 label (lowercase letters, digits, '-', starting with a letter), got {name:?}"),
        ));
    } else if name.len() + LONGEST_SERVICE_SUFFIX > DNS_LABEL_MAX {
        errs.push(ValidationError::new(
            "metadata.name",
            format!(
                "must be at most {} characters so that Service names such as {name}-fe-proxy-service fit 63, got {}",
                DNS_LABEL_MAX - LONGEST_SERVICE_SUFFIX,
                name.len()
            ),
        ));
    }
    let namespace = cluster.metadata.namespace.as_deref().unwrap_or("");
    if namespace.is_empty() {
        errs.push(ValidationError::new("metadata.namespace", "is required"));
    }
    validate_spec(&cluster.spec, &mut errs);
    if errs.is_empty() {
        Ok(ValidatedCluster {
            cluster,
            name,
            namespace,
        })
    } else {
        Err(errs)
    }
}

/// Checks a spec alone (no metadata), appending to `errs`.
pub fn validate_spec(spec: &StarRocksClusterSpec, errs: &mut Vec<ValidationError>) {
    match &spec.star_rocks_fe_spec {
        None => errs.push(ValidationError::new("spec.starRocksFeSpec", "is required")),
        Some(fe) => validate_component("spec.starRocksFeSpec", &fe.component, true, errs),
    }
    if let Some(be) = &spec.star_rocks_be_spec {
        validate_component("spec.starRocksBeSpec", &be.component, true, errs);
    }
    if let Some(cn) = &spec.star_rocks_cn_spec {
        validate_component("spec.starRocksCnSpec", &cn.component, true, errs);
        if let Some(policy) = &cn.auto_scaling_policy {
            validate_autoscaling("spec.starRocksCnSpec.autoScalingPolicy", policy, errs);
        }
    }
    if let Some(proxy) = &spec.star_rocks_fe_proxy_spec {
        let path = "spec.starRocksFeProxySpec";
        validate_load(path, &proxy.load, false, errs);
        if !proxy.load.image.is_empty() {
            check_image(&format!("{path}.image"), &proxy.load.image, errs);
        }
        if proxy.resolver.as_deref().is_some_and(str::is_empty) {
            errs.push(ValidationError::new(
                format!("{path}.resolver"),
                "must not be empty when set",
            ));
        }
    }
}

fn validate_component(
    path: &str,
    c: &ComponentSpec,
    versioned: bool,
    errs: &mut Vec<ValidationError>,
) {
    validate_load(path, &c.load, versioned, errs);
    non_negative_i64(
        &format!("{path}.terminationGracePeriodSeconds"),
        c.termination_grace_period_seconds,
        errs,
    );
    non_negative(
        &format!("{path}.minReadySeconds"),
        c.min_ready_seconds,
        errs,
    );
    one_of(
        &format!("{path}.podManagementPolicy"),
        c.pod_management_policy.as_deref(),
        &["OrderedReady", "Parallel"],
        errs,
    );
    one_of(
        &format!("{path}.dnsPolicy"),
        c.dns_policy.as_deref(),
        &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        errs,
    );
    if let Some(strategy) = &c.update_strategy {
        let kind = strategy.type_.as_deref().unwrap_or("RollingUpdate");
        one_of(
            &format!("{path}.updateStrategy.type"),
            Some(kind),
            &["RollingUpdate", "OnDelete"],
            errs,
        );
        if let Some(max) = strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.max_unavailable.as_ref())
        {
            use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
            let zero = match max {
                IntOrString::Int(n) => *n <= 0,
                IntOrString::String(s) => s
                    .trim_end_matches('%')
                    .parse::<i64>()
                    .map_or(true, |n| n <= 0),
            };
            if zero {
                errs.push(ValidationError::new(
                    format!("{path}.updateStrategy.rollingUpdate.maxUnavailable"),
                    "must be > 0 (an integer or a percentage)",
                ));
            }
        }
    }
    // Mount paths must be unique across storage volumes, config mounts, ConfigMaps and Secrets.
    let mut mount_paths: BTreeSet<&str> = c
        .load
        .storage_volumes
        .iter()
        .flatten()
        .map(|v| v.mount_path.as_str())
        .collect();
    for (field, mounts) in [("configMaps", &c.config_maps), ("secrets", &c.secrets)] {
        for (i, m) in mounts.iter().flatten().enumerate() {
            let p = format!("{path}.{field}[{i}]");
            if m.name.is_empty() {
                errs.push(ValidationError::new(format!("{p}.name"), "is required"));
            } else if !is_dns1123_subdomain(&m.name) {
                errs.push(ValidationError::new(
                    format!("{p}.name"),
                    format!("must be a DNS-1123 subdomain, got {:?}", m.name),
                ));
            }
            if m.mount_path.is_empty() {
                errs.push(ValidationError::new(
                    format!("{p}.mountPath"),
                    "is required",
                ));
            } else if m.mount_path.contains(':') {
                errs.push(ValidationError::new(
                    format!("{p}.mountPath"),
                    format!("must not contain ':', got {:?}", m.mount_path),
                ));
            } else if !mount_paths.insert(m.mount_path.as_str()) {
                errs.push(ValidationError::new(
                    format!("{p}.mountPath"),
                    format!("duplicate mount path {:?}", m.mount_path),
                ));
            }
        }
    }
}

fn validate_load(path: &str, l: &LoadSpec, versioned: bool, errs: &mut Vec<ValidationError>) {
    non_negative(&format!("{path}.replicas"), l.replicas, errs);
    if versioned {
        if l.image.is_empty() {
            errs.push(ValidationError::new(format!("{path}.image"), "is required"));
        } else {
            check_image(&format!("{path}.image"), &l.image, errs);
        }
    }
    one_of(
        &format!("{path}.imagePullPolicy"),
        l.image_pull_policy.as_deref(),
        &["Always", "Never", "IfNotPresent"],
        errs,
    );
    for (field, v) in [
        (
            "startupProbeFailureSeconds",
            l.startup_probe_failure_seconds,
        ),
        (
            "livenessProbeFailureSeconds",
            l.liveness_probe_failure_seconds,
        ),
        (
            "readinessProbeFailureSeconds",
            l.readiness_probe_failure_seconds,
        ),
    ] {
        non_negative(&format!("{path}.{field}"), v, errs);
    }
    if let Some(info) = &l.config_map_info {
        validate_config_map_info(&format!("{path}.configMapInfo"), info, errs);
    }
    if let Some(svc) = &l.service {
        validate_service(&format!("{path}.service"), svc, errs);
    }
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for (i, v) in l.storage_volumes.iter().flatten().enumerate() {
        let p = format!("{path}.storageVolumes[{i}]");
        validate_storage_volume(&p, v, errs);
        if !v.name.is_empty() && !names.insert(v.name.as_str()) {
            errs.push(ValidationError::new(
                format!("{p}.name"),
                format!("duplicate volume name {:?}", v.name),
            ));
        }
        if !v.mount_path.is_empty() && !paths.insert(v.mount_path.as_str()) {
            errs.push(ValidationError::new(
                format!("{p}.mountPath"),
                format!("duplicate mount path {:?}", v.mount_path),
            ));
        }
    }
}

fn validate_config_map_info(path: &str, info: &ConfigMapInfo, errs: &mut Vec<ValidationError>) {
    let name = info.config_map_name.as_deref().unwrap_or("");
    let key = info.resolve_key.as_deref().unwrap_or("");
    match (name.is_empty(), key.is_empty()) {
        (true, false) => errs.push(ValidationError::new(
            format!("{path}.configMapName"),
            "is required when resolveKey is set",
        )),
        (false, true) => errs.push(ValidationError::new(
            format!("{path}.resolveKey"),
            "is required when configMapName is set",
        )),
        _ => {}
    }
    if !name.is_empty() && !is_dns1123_subdomain(name) {
        errs.push(ValidationError::new(
            format!("{path}.configMapName"),
            format!("must be a DNS-1123 subdomain, got {name:?}"),
        ));
    }
}

fn validate_storage_volume(p: &str, v: &StorageVolume, errs: &mut Vec<ValidationError>) {
    if v.name.is_empty() {
        errs.push(ValidationError::new(format!("{p}.name"), "is required"));
    } else if !is_dns1123_label(&v.name) {
        errs.push(ValidationError::new(
            format!("{p}.name"),
            format!(
                "must be a DNS-1123 label (it names a volume and a claim template), got {:?}",
                v.name
            ),
        ));
    }
    if v.mount_path.is_empty() {
        errs.push(ValidationError::new(
            format!("{p}.mountPath"),
            "is required",
        ));
    } else if !v.mount_path.starts_with('/') {
        errs.push(ValidationError::new(
            format!("{p}.mountPath"),
            format!("must be an absolute path, got {:?}", v.mount_path),
        ));
    }
    let class = v.storage_class_name.as_deref();
    let is_empty_dir = class.is_some_and(|c| c.eq_ignore_ascii_case(STORAGE_CLASS_EMPTY_DIR));
    let is_host_path = class.is_some_and(|c| c.eq_ignore_ascii_case(STORAGE_CLASS_HOST_PATH))
        || (class.is_none() && v.host_path.is_some());
    if let Some(hp) = &v.host_path {
        if !is_host_path {
            errs.push(ValidationError::new(
                format!("{p}.hostPath"),
                format!(
                    "is only allowed with storageClassName {STORAGE_CLASS_HOST_PATH:?}, got storageClassName {:?}",
                    class.unwrap_or_default()
                ),
            ));
        } else if hp.path.is_empty() {
            errs.push(ValidationError::new(
                format!("{p}.hostPath.path"),
                "is required",
            ));
        }
    } else if is_host_path {
        errs.push(ValidationError::new(
            format!("{p}.hostPath"),
            format!("is required when storageClassName is {STORAGE_CLASS_HOST_PATH:?}"),
        ));
    }
    if let Some(class) = class
        && class.is_empty()
    {
        errs.push(ValidationError::new(
            format!("{p}.storageClassName"),
            "must not be empty when set",
        ));
    }
    let size = v.storage_size.as_deref();
    if let Some(size) = size
        && parse_quantity_bytes(size).is_none()
    {
        errs.push(ValidationError::new(
            format!("{p}.storageSize"),
            format!("must be a quantity such as 10Gi, got {size:?}"),
        ));
    } else if !is_empty_dir && !is_host_path {
        match size.and_then(parse_quantity_bytes) {
            None => errs.push(ValidationError::new(
                format!("{p}.storageSize"),
                "is required for a PersistentVolumeClaim (storageClassName is neither emptyDir nor hostPath)",
            )),
            Some(0) => errs.push(ValidationError::new(
                format!("{p}.storageSize"),
                "must be > 0 for a PersistentVolumeClaim, got \"0\"",
            )),
            Some(_) => {}
        }
    }
}

fn validate_service(p: &str, s: &StarRocksService, errs: &mut Vec<ValidationError>) {
    let kind = s.type_.as_deref().unwrap_or("ClusterIP");
    one_of(
        &format!("{p}.type"),
        Some(kind),
        &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
        errs,
    );
    let external = matches!(kind, "NodePort" | "LoadBalancer");
    if let Some(policy) = s.external_traffic_policy.as_deref() {
        one_of(
            &format!("{p}.externalTrafficPolicy"),
            Some(policy),
            &["Cluster", "Local"],
            errs,
        );
        if !external {
            errs.push(ValidationError::new(
                format!("{p}.externalTrafficPolicy"),
                format!("may only be set when the service type is NodePort or LoadBalancer, got type {kind}"),
            ));
        }
    }
    for (i, port) in s.ports.iter().flatten().enumerate() {
        let pp = format!("{p}.ports[{i}]");
        for (field, v) in [
            ("port", port.port),
            ("containerPort", port.container_port),
            ("nodePort", port.node_port),
        ] {
            if let Some(v) = v
                && !(0..=65535).contains(&v)
            {
                errs.push(ValidationError::new(
                    format!("{pp}.{field}"),
                    format!("must be between 1 and 65535, got {v}"),
                ));
            }
        }
        if port.node_port.is_some_and(|n| n != 0) && !external {
            errs.push(ValidationError::new(
                format!("{pp}.nodePort"),
                format!("may only be set when the service type is NodePort or LoadBalancer, got type {kind}"),
            ));
        }
    }
}

fn validate_autoscaling(p: &str, policy: &AutoScalingPolicy, errs: &mut Vec<ValidationError>) {
    let min = policy.min_replicas.unwrap_or(1);
    if min < 1 {
        errs.push(ValidationError::new(
            format!("{p}.minReplicas"),
            format!("must be >= 1, got {min}"),
        ));
    }
    match policy.max_replicas {
        None => errs.push(ValidationError::new(
            format!("{p}.maxReplicas"),
            "is required",
        )),
        Some(max) if max < min.max(1) => errs.push(ValidationError::new(
            format!("{p}.maxReplicas"),
            format!("must be >= minReplicas ({}), got {max}", min.max(1)),
        )),
        Some(_) => {}
    }
}

fn non_negative(path: &str, v: Option<i32>, errs: &mut Vec<ValidationError>) {
    if let Some(v) = v
        && v < 0
    {
        errs.push(ValidationError::new(path, format!("must be >= 0, got {v}")));
    }
}

fn non_negative_i64(path: &str, v: Option<i64>, errs: &mut Vec<ValidationError>) {
    if let Some(v) = v
        && v < 0
    {
        errs.push(ValidationError::new(path, format!("must be >= 0, got {v}")));
    }
}

fn one_of(path: &str, v: Option<&str>, allowed: &[&str], errs: &mut Vec<ValidationError>) {
    if let Some(v) = v
        && !allowed.contains(&v)
    {
        errs.push(ValidationError::new(
            path,
            format!("must be one of {}, got {v:?}", allowed.join(", ")),
        ));
    }
}

fn check_image(path: &str, image: &str, errs: &mut Vec<ValidationError>) {
    if image.chars().any(char::is_whitespace) {
        errs.push(ValidationError::new(
            path,
            format!("must not contain whitespace, got {image:?}"),
        ));
    } else if image_tag(image).is_none() {
        errs.push(ValidationError::new(
            path,
            format!("must name a tag, e.g. starrocks/fe-ubuntu:3.3.2 (the tag gives the version that orders rollouts), got {image:?}"),
        ));
    }
}

/// The tag of an image reference, e.g. `3.3.2` of `registry:5000/starrocks/fe-ubuntu:3.3.2`;
/// `None` when the reference has no tag (only a repository, or only a digest).
///
/// Source: the Docker/OCI reference grammar (`name[:tag][@digest]`, where a `:` before the
/// last `/` belongs to a registry host and port).
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_segment_start = without_digest.rfind('/').map_or(0, |i| i + 1);
    let last = &without_digest[last_segment_start..];
    match last.rsplit_once(':') {
        Some((repo, tag)) if !repo.is_empty() && !tag.is_empty() => Some(tag),
        _ => None,
    }
}

/// Parses a Kubernetes quantity (`10Gi`, `512Mi`, `1.5G`, `0`, `100`) into bytes, rounding down;
/// `None` when it is not a quantity this operator accepts for storage (no exponent forms,
/// no milli units, no signs).
///
/// Source: Kubernetes `resource.Quantity` suffixes (binary `Ki`..`Ei`, decimal `k`..`E`).
pub fn parse_quantity_bytes(s: &str) -> Option<u128> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let multiplier: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return None,
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty()
        || int.len() > 20
        || frac.len() > 9
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let int: u128 = int.parse().ok()?;
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let frac_scale = 10u128.pow(u32::try_from(frac.len()).ok()?);
    int.checked_mul(multiplier)?
        .checked_add(frac_value.checked_mul(multiplier)? / frac_scale)
}

/// Whether `s` is a DNS-1123 label: at most 63 lowercase alphanumerics or `-`, starting and
/// ending alphanumeric (Kubernetes API reference, "Object Names and IDs").
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a DNS-1123 subdomain: at most 253 characters of dot-separated labels.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Whether `s` is a DNS-1035 label: a DNS-1123 label that starts with a letter (Service names).
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tag_handles_registry_ports_and_digests() {
        assert_eq!(image_tag("starrocks/fe-ubuntu:3.3.2"), Some("3.3.2"));
        assert_eq!(
            image_tag("reg:5000/starrocks/fe-ubuntu:3.3-latest"),
            Some("3.3-latest")
        );
        assert_eq!(image_tag("reg:5000/starrocks/fe-ubuntu"), None);
        assert_eq!(image_tag("starrocks/fe-ubuntu@sha256:abc"), None);
        assert_eq!(
            image_tag("starrocks/fe-ubuntu:3.3.2@sha256:abc"),
            Some("3.3.2")
        );
        assert_eq!(image_tag("fe:"), None);
    }

    #[test]
    fn quantities_parse_to_bytes() {
        assert_eq!(parse_quantity_bytes("10Gi"), Some(10 << 30));
        assert_eq!(parse_quantity_bytes("1.5G"), Some(1_500_000_000));
        assert_eq!(parse_quantity_bytes("0"), Some(0));
        for bad in ["", "Gi", "10GB", "-1Gi", "1e3", "10 Gi", "1..2Gi", "100m"] {
            assert_eq!(parse_quantity_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn dns_names() {
        assert!(is_dns1035_label("demo"));
        assert!(!is_dns1035_label("1demo"));
        assert!(!is_dns1123_label("Demo"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("a..b"));
    }
}
