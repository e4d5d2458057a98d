//! The shell's writes: server-side apply of a component's objects, deletes, status and
//! Kubernetes Events. Each function does one API call pattern and returns typed errors; the
//! reconciler decides what to do with them.

use super::events::EventPublisher;
use crate::crd::{StarRocksCluster, StarRocksClusterStatus};
use crate::metrics::Metrics;
use crate::render::names::{
    ADOPTED_HASH_ANNOTATION, FIELD_MANAGER, autoscaler_name, pdb_name, search_service_name,
    service_name, workload_name,
};
use crate::render::{ComponentObjects, Workload};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use starrocks_model::action::EventType;
use starrocks_model::component::Component;
use std::fmt::Debug;
use std::sync::Arc;

/// The API client with the metrics that count its writes.
#[derive(Clone)]
pub struct Writer {
    /// The API client.
    pub client: Client,
    /// Where writes are counted.
    pub metrics: Arc<Metrics>,
}

/// Errors of the shell's writes. Each names the object and says what the API server said.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A server-side apply was refused or failed.
    #[error("server-side apply of {kind} {namespace}/{name} failed: {source}")]
    Apply {
        /// Object kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the client or the API server said.
        #[source]
        source: kube::Error,
    },
    /// A rendered object could not be turned into an apply body.
    #[error("{kind} {name} does not serialize: {source}")]
    Serialize {
        /// Object kind.
        kind: String,
        /// Name.
        name: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A rendered object has no name (a rendering bug).
    #[error("a rendered {0} has no metadata.name")]
    Unnamed(String),
    /// A delete failed (other than 404).
    #[error("deleting {kind} {namespace}/{name} failed: {source}")]
    Delete {
        /// Object kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the client or the API server said.
        #[source]
        source: kube::Error,
    },
    /// The status write failed.
    #[error("writing the status of {namespace}/{name} failed: {source}")]
    Status {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the client or the API server said.
        #[source]
        source: kube::Error,
    },
}

impl WriteError {
    /// Whether the API server answered 409 Conflict or a 5xx, or the connection failed: a
    /// retry may succeed. Anything else (403, 422, ...) needs a human.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            WriteError::Apply { source, .. }
            | WriteError::Delete { source, .. }
            | WriteError::Status { source, .. } => source,
            WriteError::Serialize { .. } | WriteError::Unnamed(_) => return false,
        };
        match source {
            kube::Error::Api(status) => status.code == 409 || status.code >= 500,
            _ => true,
        }
    }
}

/// Server-side applies `object` with field manager `starrocks-operator`, forcing ownership of
/// the fields it sets (the operator is the only writer of what it renders; upstream's
/// operator and `kubectl apply` leftovers are taken over, which is how adoption works).
/// Returns the stored object's `metadata.generation` and `metadata.uid`.
///
/// Only those two fields of the answer are decoded; the rest is skipped without allocating.
/// Decoding whole answers into typed objects nobody read was about a tenth of the operator's
/// CPU at 1,000 clusters (scale bench, `perf`), and decoding their whole `metadata` (with its
/// `managedFields`) still about 3%.
///
/// # Errors
/// [`WriteError::Apply`], [`WriteError::Serialize`], [`WriteError::Unnamed`].
pub async fn server_side_apply<K>(
    writer: &Writer,
    namespace: &str,
    object: &K,
) -> Result<StoredIdentity, WriteError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let kind = K::kind(&()).to_string();
    let name = object
        .meta()
        .name
        .clone()
        .ok_or_else(|| WriteError::Unnamed(kind.clone()))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    // The object is serialized straight into the request's body (no `Value` in between).
    let request = match kube::core::Request::new(K::url_path(&(), Some(namespace))).patch(
        &name,
        &params,
        &Patch::Apply(object),
    ) {
        Err(kube::core::request::Error::SerializeBody(source)) => {
            return Err(WriteError::Serialize { kind, name, source });
        }
        other => other,
    };
    let result = send::<Stored>(&writer.client, request, "patch").await;
    writer.metrics.write("apply", &result);
    result
        .map(|stored| stored.metadata)
        .map_err(|source| WriteError::Apply {
            kind,
            namespace: namespace.to_string(),
            name,
            source,
        })
}

/// `metadata.generation` and `metadata.uid` of a stored object, as [`server_side_apply`] reads
/// them from the API server's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct StoredIdentity {
    /// `metadata.generation`; `None` when the server sent none.
    pub generation: Option<i64>,
    /// `metadata.uid`; `None` when the server sent none.
    pub uid: Option<String>,
}

/// An answer of which only `metadata.generation` and `metadata.uid` are read (serde skips the
/// other fields).
#[derive(serde::Deserialize)]
struct Stored {
    #[serde(default)]
    metadata: StoredIdentity,
}

/// Sends a built request and decodes the answer as `T` (a [`Stored`] reads two fields of the
/// metadata; `IgnoredAny` reads nothing), as `Api`'s methods do for whole objects. `verb` names
/// the request for the client's tracing, as `Api` names it.
async fn send<T: DeserializeOwned>(
    client: &Client,
    request: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    verb: &'static str,
) -> Result<T, kube::Error> {
    let mut request = request.map_err(kube::Error::BuildRequest)?;
    request.extensions_mut().insert(verb);
    client.request::<T>(request).await
}

/// What the API server returned for a component's workload after an apply: its
/// `metadata.generation` and `metadata.uid`, the facts the rollout gate's first condition
/// needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `metadata.generation` of the workload.
    pub generation: i64,
    /// `metadata.uid` of the workload.
    pub uid: Option<String>,
}

/// Applies every object of one component in order (ConfigMaps, Services, workload, PDB,
/// HPA), with the workload's `spec.replicas` set to `replicas` (`None`: left out of the
/// apply, so another manager may own it).
///
/// # Errors
/// The first [`WriteError`]; objects before it stay applied (a later apply converges them).
pub async fn apply_component(
    writer: &Writer,
    namespace: &str,
    objects: &ComponentObjects,
    replicas: Option<i32>,
) -> Result<Applied, WriteError> {
    for config_map in &objects.config_maps {
        server_side_apply::<ConfigMap>(writer, namespace, config_map).await?;
    }
    for service in &objects.services {
        server_side_apply::<Service>(writer, namespace, service).await?;
    }
    let (generation, uid) = match &objects.workload {
        Workload::StatefulSet(sts) => {
            let mut sts = (**sts).clone();
            sts.spec.replicas = replicas;
            let stored = server_side_apply::<StatefulSet>(writer, namespace, &sts).await?;
            (stored.generation, stored.uid)
        }
        Workload::Deployment(deploy) => {
            let mut deploy = (**deploy).clone();
            deploy.spec.replicas = replicas;
            let stored = server_side_apply::<Deployment>(writer, namespace, &deploy).await?;
            (stored.generation, stored.uid)
        }
    };
    server_side_apply::<PodDisruptionBudget>(writer, namespace, &objects.pdb).await?;
    if let Some(hpa) = &objects.hpa {
        server_side_apply::<HorizontalPodAutoscaler>(writer, namespace, hpa).await?;
    }
    Ok(Applied {
        generation: generation.unwrap_or(0),
        uid,
    })
}

async fn delete_named<K>(writer: &Writer, namespace: &str, name: &str) -> Result<(), WriteError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(writer.client.clone(), namespace);
    let result = api.delete(name, &DeleteParams::background()).await;
    writer.metrics.write("delete", &result);
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(WriteError::Delete {
            kind: K::kind(&()).to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        }),
    }
}

/// Deletes every object this operator renders for `component` of cluster `cluster` (the
/// spec no longer has it): workload, Services, PDB, and the CN HPA or the FE proxy
/// ConfigMap. Objects already gone are fine. PersistentVolumeClaims of a StatefulSet are
/// kept, as Kubernetes does by default, so data survives re-adding the component.
///
/// # Errors
/// The first [`WriteError::Delete`].
pub async fn delete_component(
    writer: &Writer,
    namespace: &str,
    cluster: &str,
    component: Component,
) -> Result<(), WriteError> {
    let workload = workload_name(cluster, component);
    match component {
        Component::FeProxy => {
            delete_named::<Deployment>(writer, namespace, &workload).await?;
            delete_named::<ConfigMap>(writer, namespace, &workload).await?;
        }
        _ => delete_named::<StatefulSet>(writer, namespace, &workload).await?,
    }
    delete_named::<Service>(writer, namespace, &service_name(cluster, component)).await?;
    if let Some(search) = search_service_name(cluster, component) {
        delete_named::<Service>(writer, namespace, &search).await?;
    }
    delete_named::<PodDisruptionBudget>(writer, namespace, &pdb_name(cluster, component)).await?;
    if component == Component::Cn {
        delete_named::<HorizontalPodAutoscaler>(writer, namespace, &autoscaler_name(cluster))
            .await?;
    }
    Ok(())
}

/// Server-side applies `status` on the cluster's status subresource (field manager
/// `starrocks-operator`).
///
/// # Errors
/// [`WriteError::Status`].
pub async fn write_status(
    writer: &Writer,
    cluster: &StarRocksCluster,
    status: &StarRocksClusterStatus,
) -> Result<(), WriteError> {
    let namespace = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let body = serde_json::json!({
        "apiVersion": StarRocksCluster::api_version(&()),
        "kind": StarRocksCluster::kind(&()),
        "metadata": {"name": name},
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let request = kube::core::Request::new(StarRocksCluster::url_path(&(), Some(&namespace)))
        .patch_subresource("status", &name, &params, &Patch::Apply(body));
    // The answer (the whole cluster) is not read: skipped, not decoded.
    let result = send::<IgnoredAny>(&writer.client, request, "patch_status").await;
    writer.metrics.write("apply_status", &result);
    result.map(|_| ()).map_err(|source| WriteError::Status {
        namespace,
        name,
        source,
    })
}

/// Marks a component's workload as adopted with a metadata-only server-side apply of the
/// `starrocks.com/adopted-template-hash` annotation (no pod template change, so no pod
/// restarts and no new `metadata.generation`).
///
/// # Errors
/// [`WriteError::Apply`].
pub async fn mark_adopted(
    writer: &Writer,
    namespace: &str,
    cluster: &str,
    component: Component,
    template_hash: &str,
) -> Result<(), WriteError> {
    let name = workload_name(cluster, component);
    let (api_version, kind) = match component {
        Component::FeProxy => (Deployment::api_version(&()), Deployment::kind(&())),
        _ => (StatefulSet::api_version(&()), StatefulSet::kind(&())),
    };
    let body = serde_json::json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "annotations": {ADOPTED_HASH_ANNOTATION: template_hash},
        },
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let result = match component {
        Component::FeProxy => Api::<Deployment>::namespaced(writer.client.clone(), namespace)
            .patch(&name, &params, &Patch::Apply(body))
            .await
            .map(|_| ()),
        _ => Api::<StatefulSet>::namespaced(writer.client.clone(), namespace)
            .patch(&name, &params, &Patch::Apply(body))
            .await
            .map(|_| ()),
    };
    writer.metrics.write("apply", &result);
    result.map_err(|source| WriteError::Apply {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name,
        source,
    })
}

/// Publishes a Kubernetes Event about the cluster (`events.k8s.io/v1`, action `Reconcile`).
/// Failures are logged, not returned: an Event is a report, and losing one must not stop a
/// rollout.
pub async fn publish_event(
    events: &EventPublisher,
    cluster: &StarRocksCluster,
    event_type: EventType,
    reason: &str,
    message: &str,
) {
    let regarding = cluster.object_ref(&());
    if let Err(e) = events
        .publish(&regarding, event_type, "Reconcile", reason, message)
        .await
    {
        tracing::warn!(error = %e, reason, "could not publish a Kubernetes Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer to an apply is read for its generation and uid only, whatever else it holds.
    #[test]
    fn an_apply_answer_yields_its_generation_and_uid() {
        let answer = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {
                "name": "c0-fe",
                "namespace": "ns",
                "generation": 4,
                "uid": "5e1a-uid",
                "managedFields": [{"manager": "starrocks-operator", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
                "labels": {"app.kubernetes.io/component": "fe"}
            },
            "spec": {"replicas": 3},
            "status": {"replicas": 3}
        });
        let stored: Stored = serde_json::from_value(answer).unwrap();
        assert_eq!(
            stored.metadata,
            StoredIdentity {
                generation: Some(4),
                uid: Some("5e1a-uid".to_string())
            }
        );
        let bare: Stored = serde_json::from_str(r#"{"metadata":{"name":"x"}}"#).unwrap();
        assert_eq!(bare.metadata, StoredIdentity::default());
    }
}
