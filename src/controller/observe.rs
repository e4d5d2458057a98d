//! Observation: what the caches show of one cluster's workloads, as the model's
//! [`ComponentObservation`]s. Pure functions over cached objects; the reconciler passes in
//! what its reflector stores hold.
//!
//! Field meanings follow the Kubernetes API reference for `apps/v1` StatefulSet and
//! Deployment and `discovery.k8s.io/v1` EndpointSlice.

use crate::render::names::{
    ADOPTED_HASH_ANNOTATION, TEMPLATE_HASH_ANNOTATION, service_name, workload_name,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use starrocks_model::component::Component;
use starrocks_model::observe::{ClusterObservation, ComponentObservation};
use starrocks_model::spec::DesiredComponent;

/// Label the EndpointSlice controller puts on each slice: the name of its Service
/// (Kubernetes API reference, EndpointSlice).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The cached objects of one cluster's namespace that observation reads. Slices of
/// references, so the caller can pass what its stores return without copying.
#[derive(Debug, Default, Clone, Copy)]
pub struct CachedObjects<'a> {
    /// StatefulSets of the namespace (or just the cluster's).
    pub stateful_sets: &'a [&'a StatefulSet],
    /// Deployments of the namespace (or just the cluster's).
    pub deployments: &'a [&'a Deployment],
    /// EndpointSlices of the namespace (or just the cluster's Services').
    pub endpoint_slices: &'a [&'a EndpointSlice],
}

/// Whether `meta` may be taken as the cluster's object: it carries an owner reference to the
/// cluster's `uid`, or no owner reference at all (an orphan left by a deleted operator, which
/// the next apply adopts). An object owned by something else is not the cluster's.
pub fn belongs_to(meta: &ObjectMeta, cluster_uid: &str) -> bool {
    match &meta.owner_references {
        None => true,
        Some(refs) if refs.is_empty() => true,
        Some(refs) => refs.iter().any(|r| r.uid == cluster_uid),
    }
}

/// The pod template's `starrocks.com/template-hash` annotation (or, for an adopted object,
/// the object's `starrocks.com/adopted-template-hash`) and first container image.
fn template_facts(
    meta: &ObjectMeta,
    template: &PodTemplateSpec,
) -> (Option<String>, Option<String>) {
    let hash = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(TEMPLATE_HASH_ANNOTATION))
        .or_else(|| meta.annotations.as_ref()?.get(ADOPTED_HASH_ANNOTATION))
        .cloned();
    let image = template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    (hash, image)
}

/// Number of ready endpoints in the slices of Service `service` in `namespace`. An endpoint
/// whose `conditions.ready` is unset counts as ready, as the API reference says consumers
/// should interpret it.
pub fn ready_endpoints(slices: &[&EndpointSlice], namespace: &str, service: &str) -> u32 {
    let count: usize = slices
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
        .filter(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .is_some_and(|n| n == service)
        })
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// A StatefulSet as the model sees it (without endpoints).
pub fn stateful_set_observation(sts: &StatefulSet) -> ComponentObservation {
    let spec = &sts.spec;
    let status = sts.status.as_ref();
    let (template_hash, image) = template_facts(&sts.metadata, &spec.template);
    ComponentObservation {
        uid: sts.metadata.uid.clone(),
        generation: sts.metadata.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation),
        current_revision: status.and_then(|s| s.current_revision.clone()),
        update_revision: status.and_then(|s| s.update_revision.clone()),
        // `spec.replicas` defaults to 1 (API reference).
        replicas: spec.replicas.unwrap_or(1),
        status_replicas: status.map_or(0, |s| s.replicas),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        ready_endpoints: 0,
        template_hash,
        image,
    }
}

/// A Deployment (the FE proxy) as the model sees it (without endpoints). A Deployment has no
/// revisions in its status, so both are `None` and the gate relies on `observedGeneration`
/// and the replica counts.
pub fn deployment_observation(deploy: &Deployment) -> ComponentObservation {
    let spec = &deploy.spec;
    let status = deploy.status.as_ref();
    let (template_hash, image) = template_facts(&deploy.metadata, &spec.template);
    ComponentObservation {
        uid: deploy.metadata.uid.clone(),
        generation: deploy.metadata.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation),
        current_revision: None,
        update_revision: None,
        replicas: spec.replicas.unwrap_or(1),
        status_replicas: status.and_then(|s| s.replicas).unwrap_or(0),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        ready_endpoints: 0,
        template_hash,
        image,
    }
}

/// The cluster `name` (uid `uid`) in `namespace` as the caches show it: one observation per
/// component whose workload exists and belongs to the cluster (see [`belongs_to`]).
pub fn observe_cluster(
    objects: CachedObjects<'_>,
    namespace: &str,
    name: &str,
    uid: &str,
) -> ClusterObservation {
    let mut out = ClusterObservation::new();
    for component in Component::ALL {
        let wanted = workload_name(name, component);
        let matches = |meta: &ObjectMeta| {
            meta.name.as_deref() == Some(wanted.as_str())
                && meta.namespace.as_deref() == Some(namespace)
                && belongs_to(meta, uid)
        };
        let observation = match component {
            Component::FeProxy => objects
                .deployments
                .iter()
                .find(|d| matches(&d.metadata))
                .map(|d| deployment_observation(d)),
            _ => objects
                .stateful_sets
                .iter()
                .find(|s| matches(&s.metadata))
                .map(|s| stateful_set_observation(s)),
        };
        if let Some(mut observation) = observation {
            observation.ready_endpoints = ready_endpoints(
                objects.endpoint_slices,
                namespace,
                &service_name(name, component),
            );
            out.insert(component, observation);
        }
    }
    out
}

/// Whether a workload found without any template hash (created by the upstream operator, or
/// by hand) can be adopted as it is: it runs the desired image with the desired replica
/// count. The upstream operator rendered it from the same StarRocksCluster, so its pod
/// template is taken as the desired one, and adopting it rolls no pod. A workload that
/// differs in image or replicas is not adopted: the ordered rollout replaces its template.
pub fn adoptable(observation: &ComponentObservation, desired: &DesiredComponent) -> bool {
    observation.template_hash.is_none()
        && observation.image.as_deref() == Some(desired.image.as_str())
        && desired.replicas.is_none_or(|r| r == observation.replicas)
}

/// The cluster name a Service named by the EndpointSlice label belongs to, by the
/// user-facing Service names this operator renders (`<cluster>-fe-service`, ...).
pub fn cluster_of_service(service: &str) -> Option<&str> {
    // No suffix ends another (`-fe-proxy-service` does not end in `-fe-service`), so at most
    // one matches.
    Component::ALL.iter().find_map(|c| {
        service
            .strip_suffix(format!("-{}-service", c.suffix()).as_str())
            .filter(|cluster| !cluster.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use std::collections::BTreeMap;

    fn sts(name: &str, owner: Option<&str>) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("{name}-uid")),
                generation: Some(4),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        uid: uid.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: StatefulSetSpec {
                replicas: Some(3),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        annotations: Some(BTreeMap::from([(
                            TEMPLATE_HASH_ANNOTATION.to_string(),
                            "abc".to_string(),
                        )])),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            image: Some("starrocks/be-ubuntu:3.3.2".into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            },
            status: Some(StatefulSetStatus {
                observed_generation: Some(3),
                current_revision: Some("r1".into()),
                update_revision: Some("r2".into()),
                replicas: 3,
                ready_replicas: Some(2),
                updated_replicas: Some(1),
                ..Default::default()
            }),
        }
    }

    fn slice(service: &str, ready: &[Option<bool>]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                labels: Some(BTreeMap::from([(
                    SERVICE_NAME_LABEL.to_string(),
                    service.to_string(),
                )])),
                ..Default::default()
            },
            endpoints: Some(
                ready
                    .iter()
                    .map(|r| Endpoint {
                        conditions: Some(EndpointConditions {
                            ready: *r,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn a_stateful_set_maps_field_by_field() {
        let o = stateful_set_observation(&sts("demo-be", None));
        assert_eq!(o.uid.as_deref(), Some("demo-be-uid"));
        assert_eq!(
            (o.generation, o.observed_generation),
            (4, Some(3)),
            "generation and observedGeneration"
        );
        assert_eq!(o.current_revision.as_deref(), Some("r1"));
        assert_eq!(o.update_revision.as_deref(), Some("r2"));
        assert_eq!(
            (
                o.replicas,
                o.status_replicas,
                o.ready_replicas,
                o.updated_replicas
            ),
            (3, 3, 2, 1)
        );
        assert_eq!(o.template_hash.as_deref(), Some("abc"));
        assert_eq!(o.image.as_deref(), Some("starrocks/be-ubuntu:3.3.2"));
    }

    #[test]
    fn only_the_clusters_objects_are_observed_with_their_endpoints() {
        let be = sts("demo-be", Some("cluster-uid"));
        let foreign_cn = sts("demo-cn", Some("someone-else"));
        let other_cluster = sts("other-be", Some("other-uid"));
        let slices = [
            slice("demo-be-service", &[Some(true), None, Some(false)]),
            slice("demo-be-search", &[Some(true)]),
        ];
        let sets = [&be, &foreign_cn, &other_cluster];
        let slice_refs: Vec<&EndpointSlice> = slices.iter().collect();
        let objects = CachedObjects {
            stateful_sets: &sets,
            deployments: &[],
            endpoint_slices: &slice_refs,
        };
        let obs = observe_cluster(objects, "ns", "demo", "cluster-uid");
        assert_eq!(obs.keys().copied().collect::<Vec<_>>(), vec![Component::Be]);
        assert_eq!(obs[&Component::Be].ready_endpoints, 2, "unset ready counts");
        assert!(observe_cluster(objects, "other-ns", "demo", "cluster-uid").is_empty());
    }

    #[test]
    fn services_map_back_to_their_cluster() {
        assert_eq!(cluster_of_service("demo-fe-service"), Some("demo"));
        assert_eq!(cluster_of_service("demo-fe-proxy-service"), Some("demo"));
        assert_eq!(
            cluster_of_service("my-be-cluster-cn-service"),
            Some("my-be-cluster")
        );
        assert_eq!(cluster_of_service("demo-fe-search"), None);
        assert_eq!(cluster_of_service("-fe-service"), None);
    }
}
