//! The audit log: one entry per API request, in the order they were answered.
//!
//! Modelled on the API server's audit events (Kubernetes docs, "Auditing"), reduced to what the
//! operator's tests check: who wrote what, and for workloads, the generation and images after
//! the write.

use crate::jsonpath::JsonPath;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When the request was answered.
    pub time: DateTime<Utc>,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// Plural resource name, e.g. `statefulsets`; empty for non-resource paths.
    pub resource: String,
    /// `status` or `scale` when a subresource was addressed.
    pub subresource: Option<String>,
    /// Namespace of the request, if any.
    pub namespace: Option<String>,
    /// Object name of the request, if any.
    pub name: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `?fieldManager=` of a write.
    pub field_manager: Option<String>,
    /// HTTP status code of the answer.
    pub code: u16,
    /// `metadata.generation` of the object after a successful write.
    pub generation: Option<i64>,
    /// For StatefulSets and Deployments after a successful write: the images of
    /// `spec.template.spec.containers`, in order.
    pub images: Vec<String>,
    /// Whether a write changed `spec.template`.
    pub template_changed: bool,
    /// `metadata.resourceVersion` of the object after a successful write. Resource versions
    /// are one global counter here, so they order this write against any object's state as
    /// seen by a watch (a test's witness of what was true before the write).
    #[serde(default)]
    pub resource_version: Option<u64>,
}

/// The images of `spec.template.spec.containers` of a workload object.
pub fn template_images(obj: &Value) -> Vec<String> {
    obj.at("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_in_order() {
        let o = json!({"spec": {"template": {"spec": {"containers": [{"image": "a:1"}, {"image": "b:2"}]}}}});
        assert_eq!(
            template_images(&o),
            vec!["a:1".to_string(), "b:2".to_string()]
        );
        assert!(template_images(&json!({})).is_empty());
    }
}
