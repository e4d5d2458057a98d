//! What the user asked for, reduced to the facts the lifecycle model decides on.
//!
//! The shell renders the StarRocksCluster spec into Kubernetes objects and hands the model,
//! per component, the hash of the rendered pod template (including referenced config content),
//! the image and the replica count. The model never sees the objects themselves.

use crate::component::Component;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The desired state of one component, as rendered from the CR spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredComponent {
    /// Hash of the rendered pod template and referenced config content (hex string). Two
    /// renders of an unchanged spec give the same hash; any change that rolls pods changes it.
    pub template_hash: String,
    /// The container image, e.g. `starrocks/fe-ubuntu:3.3.2`. Its tag gives the version.
    pub image: String,
    /// `spec.replicas` of the rendered StatefulSet or Deployment. `None` when an autoscaler
    /// owns the replica count (CN with `autoScalingPolicy`).
    pub replicas: Option<i32>,
}

/// The desired state of a cluster: one generation of its StarRocksCluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredCluster {
    /// `metadata.generation` of the StarRocksCluster this was rendered from.
    pub generation: i64,
    /// The components present in the spec. A component absent here is not wanted.
    pub components: BTreeMap<Component, DesiredComponent>,
    /// Set when the spec failed validation; the text names the field and the problem. An
    /// invalid spec blocks the cluster and nothing is applied.
    pub invalid: Option<String>,
}

impl DesiredCluster {
    /// The desired state of `component`, if the spec has it.
    pub fn get(&self, component: Component) -> Option<&DesiredComponent> {
        self.components.get(&component)
    }
}
