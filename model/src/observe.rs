//! What the operator observed of each component's workload, and the diff that turns two
//! observations of a cluster into events.
//!
//! The shell builds a [`ComponentObservation`] from its caches (StatefulSet or Deployment and
//! the component's EndpointSlices); [`diff`] is the only place that decides which observed
//! changes are events.

use crate::component::Component;
use crate::event::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One component's workload as last seen in the cache.
///
/// Field meanings follow the Kubernetes API reference for `apps/v1` StatefulSet. For the FE
/// proxy Deployment the shell sets `current_revision` and `update_revision` to the same value
/// (or both `None`); Deployments carry their rollout in `observed_generation` and the replica
/// counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentObservation {
    /// `metadata.uid`; tells a recreated object from the one before it.
    pub uid: Option<String>,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`; `None` until the workload controller first wrote status.
    pub observed_generation: Option<i64>,
    /// `status.currentRevision` (StatefulSet).
    pub current_revision: Option<String>,
    /// `status.updateRevision` (StatefulSet).
    pub update_revision: Option<String>,
    /// `spec.replicas` (the API server defaults it to 1).
    pub replicas: i32,
    /// `status.replicas`: pods the controller has, of any revision.
    pub status_replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.updatedReplicas`.
    pub updated_replicas: i32,
    /// Ready endpoints of the component's Service (`<cluster>-<x>-service`), counted over its
    /// EndpointSlices.
    pub ready_endpoints: u32,
    /// The template hash annotation on the applied pod template; `None` when the object was not
    /// written by a renderer that sets it (for example an upstream-operated cluster).
    pub template_hash: Option<String>,
    /// The image of the component's main container in the applied pod template.
    pub image: Option<String>,
}

/// A cluster's observation: the components whose workload object exists.
pub type ClusterObservation = BTreeMap<Component, ComponentObservation>;

/// Turns the previous and the new observation of a cluster into events: `Observed` for a
/// component that appeared or changed, `ComponentRemoved` for one that disappeared. Unchanged
/// components give no event. Events come out in [`Component::ALL`] order.
pub fn diff(previous: &ClusterObservation, current: &ClusterObservation) -> Vec<Event> {
    let mut events = Vec::new();
    for component in Component::ALL {
        match (previous.get(&component), current.get(&component)) {
            (Some(old), Some(new)) if old == new => {}
            (_, Some(new)) => events.push(Event::Observed {
                component,
                observation: new.clone(),
            }),
            (Some(old), None) => events.push(Event::ComponentRemoved {
                component,
                uid: old.uid.clone(),
            }),
            (None, None) => {}
        }
    }
    events
}
