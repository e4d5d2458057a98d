//! Workloads: the StatefulSet of FE/BE/CN and the Deployment of the FE proxy.
//!
//! Source: upstream `statefulset.MakeStatefulset`, `statefulset.PVCList` and
//! `deployment.MakeDeployment`. Immutable StatefulSet fields (`selector`, `serviceName`,
//! `podManagementPolicy`, `volumeClaimTemplates`) are rendered exactly as upstream does, so
//! that an upstream-created StatefulSet is adopted by an in-place update.

use crate::crd::{ComponentSpec, LoadSpec, STORAGE_CLASS_EMPTY_DIR, STORAGE_CLASS_HOST_PATH};
use crate::render::names;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodTemplateSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use starrocks_model::component::Component;
use std::collections::BTreeMap;

/// Claim templates for the storage volumes that are real claims (not `emptyDir`/`hostPath`):
/// name = volume name, `ReadWriteOnce`, the storage class, and the size as
/// `resources.requests.storage`. Labelled with `sharedLabels` only (upstream puts no other
/// labels here, and claim templates cannot change after creation).
pub fn claim_templates(load: &LoadSpec) -> Vec<PersistentVolumeClaim> {
    load.storage_volumes
        .iter()
        .flatten()
        .filter(|sv| {
            let class = sv.storage_class_name.as_deref();
            let special = class.is_some_and(|c| {
                c.eq_ignore_ascii_case(STORAGE_CLASS_EMPTY_DIR)
                    || c.eq_ignore_ascii_case(STORAGE_CLASS_HOST_PATH)
            }) || (class.is_none() && sv.host_path.is_some());
            !special
        })
        .map(|sv| PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(sv.name.clone()),
                labels: load.shared_labels.clone().filter(|l| !l.is_empty()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_string()]),
                storage_class_name: sv.storage_class_name.clone(),
                resources: sv
                    .storage_size
                    .as_ref()
                    .filter(|s| !s.is_empty())
                    .map(|size| VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(size.clone()),
                        )])),
                        ..Default::default()
                    }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The StatefulSet `<cluster>-<x>` of FE, BE or CN.
pub fn stateful_set(
    cluster: &str,
    namespace: &str,
    c: Component,
    spec: &ComponentSpec,
    replicas: i32,
    template: PodTemplateSpec,
    owner: &OwnerReference,
) -> StatefulSet {
    let claims = claim_templates(&spec.load);
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(names::workload_name(cluster, c)),
            namespace: Some(namespace.to_string()),
            labels: Some(names::object_labels(
                cluster,
                c,
                spec.load.shared_labels.as_ref(),
            )),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(names::selector_labels(cluster, c)),
                ..Default::default()
            },
            service_name: names::search_service_name(cluster, c),
            template,
            update_strategy: Some(spec.update_strategy.clone().unwrap_or(
                StatefulSetUpdateStrategy {
                    type_: Some("RollingUpdate".to_string()),
                    rolling_update: Some(RollingUpdateStatefulSetStrategy {
                        partition: Some(0),
                        ..Default::default()
                    }),
                },
            )),
            pod_management_policy: Some(
                spec.pod_management_policy
                    .clone()
                    .unwrap_or_else(|| "Parallel".to_string()),
            ),
            volume_claim_templates: (!claims.is_empty()).then_some(claims),
            persistent_volume_claim_retention_policy: spec
                .persistent_volume_claim_retention_policy
                .clone(),
            min_ready_seconds: spec.min_ready_seconds,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Deployment `<cluster>-fe-proxy`.
pub fn deployment(
    cluster: &str,
    namespace: &str,
    load: &LoadSpec,
    replicas: i32,
    template: PodTemplateSpec,
    owner: &OwnerReference,
) -> Deployment {
    let c = Component::FeProxy;
    Deployment {
        metadata: ObjectMeta {
            name: Some(names::workload_name(cluster, c)),
            namespace: Some(namespace.to_string()),
            labels: Some(names::object_labels(
                cluster,
                c,
                load.shared_labels.as_ref(),
            )),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(names::selector_labels(cluster, c)),
                ..Default::default()
            },
            template,
            ..Default::default()
        },
        ..Default::default()
    }
}
