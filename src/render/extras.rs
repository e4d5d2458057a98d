//! PodDisruptionBudgets (one per component; new in this operator) and the CN
//! HorizontalPodAutoscaler.

use crate::crd::{AutoScalingPolicy, GROUP, KIND, VERSION};
use crate::render::names;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use starrocks_model::component::Component;
use std::collections::BTreeMap;

/// A `policy/v1` PodDisruptionBudget `<cluster>-<x>-pdb` allowing one voluntary disruption at
/// a time (`maxUnavailable: 1`) over the component's pods. Upstream renders none; one pod at a
/// time keeps an FE quorum and BE replicas available during node drains.
pub fn pdb(
    cluster: &str,
    namespace: &str,
    c: Component,
    shared_labels: Option<&BTreeMap<String, String>>,
    owner: &OwnerReference,
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(names::pdb_name(cluster, c)),
            namespace: Some(namespace.to_string()),
            labels: Some(names::object_labels(cluster, c, shared_labels)),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names::selector_labels(cluster, c)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `autoscaling/v2` HPA `<cluster>-cn-autoscaler`. It scales the StarRocksCluster itself
/// through its scale subresource (`.spec.starRocksCnSpec.replicas`), as upstream does since
/// its PR #662, so that every CN scale goes through the operator. Labels: the CN labels with
/// `app.kubernetes.io/component: autoscaler` (upstream).
pub fn hpa(
    cluster: &str,
    namespace: &str,
    policy: &AutoScalingPolicy,
    shared_labels: Option<&BTreeMap<String, String>>,
    owner: &OwnerReference,
) -> HorizontalPodAutoscaler {
    let mut labels = names::object_labels(cluster, Component::Cn, shared_labels);
    labels.insert(names::COMPONENT_LABEL.to_string(), "autoscaler".to_string());
    let min = policy.min_replicas.unwrap_or(1).max(1);
    let hpa_policy = policy.hpa_policy.as_ref();
    HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(names::autoscaler_name(cluster)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(format!("{GROUP}/{VERSION}")),
                kind: KIND.to_string(),
                name: cluster.to_string(),
            },
            min_replicas: Some(min),
            max_replicas: policy.max_replicas.unwrap_or(min).max(min),
            metrics: hpa_policy.and_then(|p| p.metrics.clone()),
            behavior: hpa_policy.and_then(|p| p.behavior.clone()),
        },
        ..Default::default()
    }
}
