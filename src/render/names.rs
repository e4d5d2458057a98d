//! Object names and labels, as upstream renders them so that existing clusters are adopted in
//! place (StatefulSet selectors and `serviceName` are immutable).
//!
//! Source: upstream `pkg/k8sutils/load` (`Name`, `SelectorLabels`, `Labels`),
//! `pkg/apis/starrocks/v1/labels.go` and `pkg/k8sutils/templates/service`.

use starrocks_model::component::Component;
use std::collections::BTreeMap;

/// Label key of the component (`fe`, `be`, `cn`, `fe-proxy`; `autoscaler` on the HPA).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Label key naming the owning workload, value `<cluster>-<component>`.
pub const OWNER_LABEL: &str = "app.starrocks.ownerreference/name";
/// Pod-template annotation holding the sha256 of the rendered pod template and the
/// referenced config content (hex). A change rolls the pods.
pub const TEMPLATE_HASH_ANNOTATION: &str = "starrocks.com/template-hash";
/// Workload annotation (on the StatefulSet or Deployment itself, not its pod template) that
/// marks an object created by the upstream operator as adopted: its pod template is taken to
/// be the render with this hash, so adoption does not roll pods. Written by a metadata-only
/// apply; the operator's next full apply of the component removes it.
pub const ADOPTED_HASH_ANNOTATION: &str = "starrocks.com/adopted-template-hash";
/// The field manager of this operator's server-side applies.
pub const FIELD_MANAGER: &str = "starrocks-operator";
/// Annotation on a StarRocksCluster that pauses it when set to `"true"`: nothing is applied
/// or deleted until it is removed (or set to anything else); status is still written.
pub const PAUSE_ANNOTATION: &str = "starrocks.com/paused";

/// Name of the component's workload (StatefulSet, or Deployment for the FE proxy) and of the
/// FE proxy ConfigMap: `<cluster>-fe`, `<cluster>-be`, `<cluster>-cn`, `<cluster>-fe-proxy`.
pub fn workload_name(cluster: &str, c: Component) -> String {
    format!("{cluster}-{}", c.suffix())
}

/// Name of the user-facing Service: `<cluster>-<suffix>-service`.
pub fn service_name(cluster: &str, c: Component) -> String {
    format!("{cluster}-{}-service", c.suffix())
}

/// Name of the headless Service the StatefulSet's pods resolve through:
/// `<cluster>-<suffix>-search`. `None` for the FE proxy (a Deployment).
pub fn search_service_name(cluster: &str, c: Component) -> Option<String> {
    match c {
        Component::FeProxy => None,
        _ => Some(format!("{cluster}-{}-search", c.suffix())),
    }
}

/// Name of the CN HorizontalPodAutoscaler: `<cluster>-cn-autoscaler`.
pub fn autoscaler_name(cluster: &str) -> String {
    format!("{}-autoscaler", workload_name(cluster, Component::Cn))
}

/// Name of the component's PodDisruptionBudget: `<cluster>-<suffix>-pdb` (not rendered by
/// upstream).
pub fn pdb_name(cluster: &str, c: Component) -> String {
    format!("{}-pdb", workload_name(cluster, c))
}

/// The selector labels of the component's workload and Services:
/// `{app.kubernetes.io/component: <suffix>, app.starrocks.ownerreference/name: <cluster>-<suffix>}`.
pub fn selector_labels(cluster: &str, c: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (COMPONENT_LABEL.to_string(), c.suffix().to_string()),
        (OWNER_LABEL.to_string(), workload_name(cluster, c)),
    ])
}

/// The selector labels as the string form of a label selector, e.g.
/// `app.kubernetes.io/component=cn,app.starrocks.ownerreference/name=demo-cn`: the value the
/// reconciler writes to `status.starRocksCnStatus.selector` for the scale subresource.
pub fn selector_string(cluster: &str, c: Component) -> String {
    selector_labels(cluster, c)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Object labels: the user's `sharedLabels`, then the selector labels (which win).
pub fn object_labels(
    cluster: &str,
    c: Component,
    shared: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut labels = shared.cloned().unwrap_or_default();
    labels.extend(selector_labels(cluster, c));
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        assert_eq!(workload_name("demo", Component::FeProxy), "demo-fe-proxy");
        assert_eq!(service_name("demo", Component::Be), "demo-be-service");
        assert_eq!(
            search_service_name("demo", Component::Cn).as_deref(),
            Some("demo-cn-search")
        );
        assert_eq!(search_service_name("demo", Component::FeProxy), None);
        assert_eq!(autoscaler_name("demo"), "demo-cn-autoscaler");
        assert_eq!(
            selector_string("demo", Component::Cn),
            "app.kubernetes.io/component=cn,app.starrocks.ownerreference/name=demo-cn"
        );
    }

    #[test]
    fn operator_labels_win_over_shared_labels() {
        let shared = BTreeMap::from([
            (COMPONENT_LABEL.to_string(), "mine".to_string()),
            ("team".to_string(), "olap".to_string()),
        ]);
        let labels = object_labels("demo", Component::Fe, Some(&shared));
        assert_eq!(labels[COMPONENT_LABEL], "fe");
        assert_eq!(labels["team"], "olap");
    }
}
