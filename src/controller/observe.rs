//! Observation: what the caches show of one cluster's workloads, as the model's
//! [`ComponentObservation`]s. Pure functions over cached objects; the reconciler passes in
//! what its reflector stores hold.
//!
//! Field meanings follow the Kubernetes API reference for `apps/v1` StatefulSet and
//! Deployment and `discovery.k8s.io/v1` EndpointSlice.

use crate::render::names::{
    ADOPTED_HASH_ANNOTATION, TEMPLATE_HASH_ANNOTATION, service_name, workload_name,
};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use starrocks_model::component::Component;
use starrocks_model::observe::{ClusterObservation, ComponentObservation};
use starrocks_model::spec::DesiredComponent;
use std::collections::BTreeMap;

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

/// The object's identity as a cache needs it (`name`, `namespace`, `uid`, `resourceVersion`,
/// `generation`, and `ownerReferences`, which map the object to its cluster), with only the
/// annotation `annotation` and the label `label` kept.
fn slim_meta(meta: ObjectMeta, annotation: Option<&str>, label: Option<&str>) -> ObjectMeta {
    let keep = |map: Option<BTreeMap<String, String>>, key: Option<&str>| {
        let key = key?;
        let value = map?.remove(key)?;
        Some(BTreeMap::from([(key.to_string(), value)]))
    };
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        generation: meta.generation,
        owner_references: meta.owner_references,
        annotations: keep(meta.annotations, annotation),
        labels: keep(meta.labels, label),
        ..ObjectMeta::default()
    }
}

/// The pod template as [`template_facts`] reads it: the template-hash annotation and the
/// first container's name and image.
fn slim_template(template: PodTemplateSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: template
            .metadata
            .map(|m| slim_meta(m, Some(TEMPLATE_HASH_ANNOTATION), None)),
        spec: template.spec.map(|spec| PodSpec {
            containers: spec
                .containers
                .into_iter()
                .take(1)
                .map(|c| Container {
                    name: c.name,
                    image: c.image,
                    ..Container::default()
                })
                .collect(),
            ..PodSpec::default()
        }),
    }
}

/// Drops from a StatefulSet everything [`stateful_set_observation`], [`belongs_to`] and
/// [`observe_cluster`] do not read, before it is cached: the pod template but its
/// template-hash annotation and its first container's name and image, the selector and the
/// volume claim templates, every status field but the observed generation, the revisions and
/// the replica counts, and every label and annotation but
/// `starrocks.com/adopted-template-hash`. The observation of the slim object equals that of
/// the full one (tested).
pub fn slim_stateful_set(sts: &mut StatefulSet) {
    let full = std::mem::take(sts);
    *sts = StatefulSet {
        metadata: slim_meta(full.metadata, Some(ADOPTED_HASH_ANNOTATION), None),
        spec: StatefulSetSpec {
            replicas: full.spec.replicas,
            template: slim_template(full.spec.template),
            ..StatefulSetSpec::default()
        },
        status: full.status.map(|s| StatefulSetStatus {
            observed_generation: s.observed_generation,
            current_revision: s.current_revision,
            update_revision: s.update_revision,
            replicas: s.replicas,
            ready_replicas: s.ready_replicas,
            updated_replicas: s.updated_replicas,
            ..StatefulSetStatus::default()
        }),
    };
}

/// Drops from a Deployment everything [`deployment_observation`], [`belongs_to`] and
/// [`observe_cluster`] do not read, before it is cached (as [`slim_stateful_set`]; the
/// status keeps the observed generation and the replica counts).
pub fn slim_deployment(deploy: &mut Deployment) {
    let full = std::mem::take(deploy);
    *deploy = Deployment {
        metadata: slim_meta(full.metadata, Some(ADOPTED_HASH_ANNOTATION), None),
        spec: DeploymentSpec {
            replicas: full.spec.replicas,
            template: slim_template(full.spec.template),
            ..DeploymentSpec::default()
        },
        status: full.status.map(|s| DeploymentStatus {
            observed_generation: s.observed_generation,
            replicas: s.replicas,
            ready_replicas: s.ready_replicas,
            updated_replicas: s.updated_replicas,
            ..DeploymentStatus::default()
        }),
    };
}

/// Drops from an EndpointSlice everything [`ready_endpoints`] and the controller's mapping of
/// a slice to its cluster (namespace and `kubernetes.io/service-name` label) do not read,
/// before it is cached: the ports, every label and annotation but
/// `kubernetes.io/service-name`, and of each endpoint everything but `conditions.ready`
/// (addresses, target reference, node, zone, hints). The count of ready endpoints of the slim
/// slice equals that of the full one (tested).
pub fn slim_endpoint_slice(slice: &mut EndpointSlice) {
    let full = std::mem::take(slice);
    *slice = EndpointSlice {
        metadata: slim_meta(full.metadata, None, Some(SERVICE_NAME_LABEL)),
        address_type: full.address_type,
        endpoints: full.endpoints.map(|endpoints| {
            endpoints
                .into_iter()
                .map(|e| Endpoint {
                    conditions: e.conditions.map(|c| EndpointConditions {
                        ready: c.ready,
                        ..EndpointConditions::default()
                    }),
                    ..Endpoint::default()
                })
                .collect()
        }),
        ports: None,
    };
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

    /// Rendered workloads of the example clusters (what the operator applies), each in
    /// several variants of what the API server and other writers add or leave out: statuses,
    /// owner references, adoption and foreign annotations and labels, managedFields, missing
    /// template metadata or containers.
    fn workload_variants() -> (Vec<StatefulSet>, Vec<Deployment>) {
        use crate::crd::StarRocksCluster;
        use crate::render::{ConfigInputs, Workload, render_cluster};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let examples = [
            include_str!("../../deploy/examples/starrocks-cluster-demo.yaml"),
            include_str!("../../deploy/examples/starrocks-cluster-fe-proxy.yaml"),
            include_str!("../../deploy/examples/starrocks-cluster-ha.yaml"),
            include_str!("../../deploy/examples/starrocks-cluster-persistent-storage.yaml"),
            include_str!("../../deploy/examples/starrocks-cluster-cn-autoscaling.yaml"),
            include_str!("../../deploy/examples/starrocks-cluster-minimal.yaml"),
        ];
        let (mut sets, mut deployments) = (Vec::new(), Vec::new());
        for yaml in examples {
            let mut cluster: StarRocksCluster = serde_saphyr::from_str(yaml).unwrap();
            cluster.metadata.uid = Some("cluster-uid".into());
            cluster.metadata.generation = Some(3);
            let rendered = render_cluster(&cluster, &ConfigInputs::new()).unwrap();
            for objects in rendered.components.values() {
                match &objects.workload {
                    Workload::StatefulSet(s) => sets.push(s.as_ref().clone()),
                    Workload::Deployment(d) => deployments.push(d.as_ref().clone()),
                }
            }
        }
        assert!(sets.len() >= 10 && !deployments.is_empty());
        // What the API server and others add, in every combination with what they remove.
        let vary = |meta: &mut ObjectMeta, template: &mut PodTemplateSpec, i: usize| {
            meta.uid = Some(format!("uid-{i}"));
            meta.generation = Some(5 + i as i64);
            meta.resource_version = Some(format!("{}", 100 + i));
            meta.managed_fields = Some(vec![ManagedFieldsEntry {
                manager: Some("starrocks-operator".into()),
                ..Default::default()
            }]);
            meta.labels
                .get_or_insert_with(BTreeMap::new)
                .insert("team".into(), "data".into());
            if i & 1 == 1 {
                meta.annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(ADOPTED_HASH_ANNOTATION.into(), "adopted".into());
            }
            if i & 2 == 2 {
                meta.owner_references = None;
            }
            if i & 4 == 4 {
                // Adopted from upstream: no template hash.
                template
                    .metadata
                    .as_mut()
                    .and_then(|m| m.annotations.as_mut())
                    .map(|a| a.remove(TEMPLATE_HASH_ANNOTATION));
            }
            if i & 8 == 8 {
                template.metadata = None;
            }
            if i & 16 == 16
                && let Some(spec) = template.spec.as_mut()
            {
                spec.containers[0].image = None;
            }
            if i & 32 == 32
                && let Some(spec) = template.spec.as_mut()
            {
                spec.containers.clear();
            }
        };
        let mut all_sets = Vec::new();
        for (n, base) in sets.iter().enumerate() {
            for i in 0..64 {
                let mut s = base.clone();
                vary(&mut s.metadata, &mut s.spec.template, i);
                if i % 3 != 0 {
                    s.spec.replicas = if i % 3 == 1 { None } else { Some(i as i32) };
                    s.status = Some(StatefulSetStatus {
                        observed_generation: Some(4 + n as i64),
                        current_revision: Some(format!("rev-{n}")),
                        update_revision: Some(format!("rev-{i}")),
                        replicas: 3,
                        ready_replicas: Some(2),
                        updated_replicas: (i % 2 == 0).then_some(1),
                        available_replicas: Some(2),
                        current_replicas: Some(3),
                        collision_count: Some(1),
                        conditions: Some(Vec::new()),
                    });
                }
                all_sets.push(s);
            }
        }
        let mut all_deployments = Vec::new();
        for base in &deployments {
            for i in 0..64 {
                let mut d = base.clone();
                vary(&mut d.metadata, &mut d.spec.template, i);
                if i % 3 != 0 {
                    d.status = Some(DeploymentStatus {
                        observed_generation: Some(7),
                        replicas: Some(2),
                        ready_replicas: (i % 2 == 0).then_some(1),
                        updated_replicas: Some(2),
                        available_replicas: Some(1),
                        unavailable_replicas: Some(1),
                        ..Default::default()
                    });
                }
                all_deployments.push(d);
            }
        }
        (all_sets, all_deployments)
    }

    fn full_slices() -> Vec<EndpointSlice> {
        use k8s_openapi::api::core::v1::ObjectReference;
        use k8s_openapi::api::discovery::v1::{EndpointHints, EndpointPort, ForZone};
        let mut out = Vec::new();
        for (n, service) in ["demo-fe-service", "demo-be-search", "other-cn-service"]
            .into_iter()
            .enumerate()
        {
            for i in 0..8usize {
                let endpoints = (0..i)
                    .map(|e| Endpoint {
                        addresses: vec![format!("10.0.{n}.{e}")],
                        conditions: (e % 4 != 3).then(|| EndpointConditions {
                            ready: [Some(true), Some(false), None][e % 3],
                            serving: Some(true),
                            terminating: Some(false),
                        }),
                        hostname: Some(format!("pod-{e}")),
                        node_name: Some("node-1".into()),
                        target_ref: Some(ObjectReference {
                            kind: Some("Pod".into()),
                            name: Some(format!("pod-{e}")),
                            namespace: Some("ns".into()),
                            uid: Some(format!("pod-uid-{e}")),
                            ..Default::default()
                        }),
                        zone: Some("zone-a".into()),
                        hints: Some(EndpointHints {
                            for_zones: Some(vec![ForZone {
                                name: "zone-a".into(),
                            }]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect();
                out.push(EndpointSlice {
                    metadata: ObjectMeta {
                        name: Some(format!("{service}-{i}")),
                        namespace: Some(if i == 7 { "other-ns" } else { "ns" }.into()),
                        labels: Some(BTreeMap::from([
                            (SERVICE_NAME_LABEL.to_string(), service.to_string()),
                            (
                                "endpointslice.kubernetes.io/managed-by".to_string(),
                                "endpointslice-controller.k8s.io".to_string(),
                            ),
                        ])),
                        ..Default::default()
                    },
                    address_type: "IPv4".into(),
                    endpoints: (i != 0).then_some(endpoints),
                    ports: Some(vec![EndpointPort {
                        name: Some("http".into()),
                        port: Some(8030),
                        ..Default::default()
                    }]),
                });
            }
        }
        out
    }

    #[test]
    fn slim_workloads_are_observed_as_the_full_ones() {
        let (sets, deployments) = workload_variants();
        for full in &sets {
            let mut slim = full.clone();
            slim_stateful_set(&mut slim);
            assert_eq!(
                stateful_set_observation(&slim),
                stateful_set_observation(full)
            );
            for uid in ["cluster-uid", "someone-else"] {
                assert_eq!(
                    belongs_to(&slim.metadata, uid),
                    belongs_to(&full.metadata, uid)
                );
            }
            assert_eq!(
                slim.metadata.owner_references,
                full.metadata.owner_references
            );
            assert_eq!(
                (&slim.metadata.name, &slim.metadata.namespace),
                (&full.metadata.name, &full.metadata.namespace)
            );
            assert!(slim.metadata.managed_fields.is_none());
        }
        for full in &deployments {
            let mut slim = full.clone();
            slim_deployment(&mut slim);
            assert_eq!(deployment_observation(&slim), deployment_observation(full));
            assert_eq!(
                slim.metadata.owner_references,
                full.metadata.owner_references
            );
            assert!(slim.metadata.managed_fields.is_none());
        }
        // Whole clusters, with endpoints, over the full and the slim caches.
        let slices = full_slices();
        let slim_all =
            |sets: &[StatefulSet], deployments: &[Deployment], slices: &[EndpointSlice]| {
                let mut sets = sets.to_vec();
                sets.iter_mut().for_each(slim_stateful_set);
                let mut deployments = deployments.to_vec();
                deployments.iter_mut().for_each(slim_deployment);
                let mut slices = slices.to_vec();
                slices.iter_mut().for_each(slim_endpoint_slice);
                (sets, deployments, slices)
            };
        let (slim_sets, slim_deployments, slim_slices) = slim_all(&sets, &deployments, &slices);
        // One variant per object name at a time, as a cache holds them.
        for variant in 0..64 {
            let pick = |n: usize| variant + 64 * n;
            let full_sets: Vec<&StatefulSet> =
                (0..sets.len() / 64).map(|n| &sets[pick(n)]).collect();
            let thin_sets: Vec<&StatefulSet> =
                (0..sets.len() / 64).map(|n| &slim_sets[pick(n)]).collect();
            let full_deps: Vec<&Deployment> = (0..deployments.len() / 64)
                .map(|n| &deployments[pick(n)])
                .collect();
            let thin_deps: Vec<&Deployment> = (0..deployments.len() / 64)
                .map(|n| &slim_deployments[pick(n)])
                .collect();
            let full_slices: Vec<&EndpointSlice> = slices.iter().collect();
            let thin_slices: Vec<&EndpointSlice> = slim_slices.iter().collect();
            for (namespace, name) in [
                ("starrocks", "demo"),
                ("starrocks", "loading"),
                ("ns", "demo"),
            ] {
                for uid in ["cluster-uid", "someone-else"] {
                    let full = CachedObjects {
                        stateful_sets: &full_sets,
                        deployments: &full_deps,
                        endpoint_slices: &full_slices,
                    };
                    let thin = CachedObjects {
                        stateful_sets: &thin_sets,
                        deployments: &thin_deps,
                        endpoint_slices: &thin_slices,
                    };
                    assert_eq!(
                        observe_cluster(thin, namespace, name, uid),
                        observe_cluster(full, namespace, name, uid)
                    );
                }
            }
        }
    }

    #[test]
    fn slim_endpoint_slices_count_and_map_as_the_full_ones() {
        let full = full_slices();
        let mut slim = full.clone();
        slim.iter_mut().for_each(slim_endpoint_slice);
        let full: Vec<&EndpointSlice> = full.iter().collect();
        let slim: Vec<&EndpointSlice> = slim.iter().collect();
        let mut counted = 0;
        for namespace in ["ns", "other-ns"] {
            for service in ["demo-fe-service", "demo-be-search", "other-cn-service", "x"] {
                let n = ready_endpoints(&full, namespace, service);
                assert_eq!(ready_endpoints(&slim, namespace, service), n);
                counted += n;
            }
        }
        assert!(counted > 0, "the fixture has ready endpoints");
        // The controller maps a slice to its cluster by namespace and service-name label.
        for (s, f) in slim.iter().zip(&full) {
            assert_eq!(s.metadata.namespace, f.metadata.namespace);
            assert_eq!(s.metadata.name, f.metadata.name);
            let service = |e: &EndpointSlice| {
                e.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL).cloned())
            };
            assert_eq!(service(s), service(f));
            assert_eq!(
                s.endpoints.as_ref().map(Vec::len),
                f.endpoints.as_ref().map(Vec::len)
            );
        }
    }
}
