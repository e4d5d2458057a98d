//! The resource types the simulated API server serves: the built-in ones of issue 3 and the
//! ones registered by creating a CustomResourceDefinition.
//!
//! Names, short names, verbs and subresources follow `kubectl api-resources` of a v1.32 cluster
//! (Kubernetes docs, "API Overview" and the per-type API references).

use crate::jsonpath::JsonPath;
use serde_json::Value;

/// Verbs of a fully writable resource, in discovery order.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource type (a group/version/plural triple and what it supports).
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group, `""` for core.
    pub group: String,
    /// Served version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `StatefulSet`.
    pub kind: String,
    /// Plural resource name, e.g. `statefulsets`.
    pub plural: String,
    /// Singular name, e.g. `statefulset`.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl, e.g. `["sts"]`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `["all"]`.
    pub categories: Vec<String>,
    /// Has a `/status` subresource (main writes keep status; status writes keep the rest).
    pub status_subresource: bool,
    /// Has a `/scale` subresource: JSON paths (dotted, without the leading `.`) of spec
    /// replicas, status replicas and the label selector.
    pub scale: Option<ScalePaths>,
    /// Whether `metadata.generation` is maintained (bumped on spec changes).
    pub has_generation: bool,
    /// For custom resources: the `openAPIV3Schema` of the served version. Shared, because a
    /// type is cloned into every request's target and a CRD schema can be hundreds of KiB.
    pub schema: Option<std::sync::Arc<Value>>,
    /// For custom resources: `additionalPrinterColumns` of the served version.
    pub printer_columns: Vec<Value>,
    /// Name of the CRD that registered the type (`None` for built-ins).
    pub crd: Option<String>,
}

/// Where a scalable resource keeps its replica counts (`CustomResourceSubresourceScale`).
#[derive(Debug, Clone)]
pub struct ScalePaths {
    /// e.g. `spec.replicas`.
    pub spec_replicas: String,
    /// e.g. `status.replicas`.
    pub status_replicas: String,
    /// e.g. `status.selector` (string form of the label selector), optional.
    pub label_selector: Option<String>,
}

impl ResourceType {
    /// `apiVersion` string: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or just `plural` for core), as used in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
}

/// Row constructor for the built-in table (positional on purpose: one line per type).
#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        status,
        scale,
        generation,
    }
}

const BUILTINS: &[Builtin] = &[
    b(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        true,
        false,
        false,
    ),
    b("", "v1", "Pod", "pods", true, &["po"], true, false, true),
    b(
        "",
        "v1",
        "Service",
        "services",
        true,
        &["svc"],
        true,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        &["cm"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "Secret",
        "secrets",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        true,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        true,
        &["ep"],
        false,
        false,
        false,
    ),
    b(
        "",
        "v1",
        "Node",
        "nodes",
        false,
        &["no"],
        true,
        false,
        false,
    ),
    b(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        true,
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        true,
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        true,
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        false,
        false,
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        true,
        false,
        true,
    ),
    b(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["hpa"],
        true,
        false,
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        false,
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        false,
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        false,
        false,
        false,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
        false,
        true,
    ),
];

/// The table of served types. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    /// The built-in types of issue 3.
    pub fn builtin() -> Registry {
        let types = BUILTINS
            .iter()
            .map(|t| ResourceType {
                group: t.group.into(),
                version: t.version.into(),
                kind: t.kind.into(),
                plural: t.plural.into(),
                singular: t.kind.to_lowercase(),
                namespaced: t.namespaced,
                short_names: t.short.iter().map(|s| s.to_string()).collect(),
                categories: match t.plural {
                    "pods" | "services" | "statefulsets" | "deployments" | "replicasets" => {
                        vec!["all".into()]
                    }
                    _ => vec![],
                },
                status_subresource: t.status,
                scale: t.scale.then(|| ScalePaths {
                    spec_replicas: "spec.replicas".into(),
                    status_replicas: "status.replicas".into(),
                    label_selector: None,
                }),
                has_generation: t.generation,
                schema: None,
                printer_columns: Vec::new(),
                crd: None,
            })
            .collect();
        Registry { types }
    }

    /// All types, built-in first then custom in registration order.
    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    /// Looks a type up by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Looks a type up by `apiVersion` and `kind`.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Registers (or replaces) the versions served by a CRD object; returns the number of
    /// versions now served. Follows `apiextensions.k8s.io/v1` field names.
    pub fn register_crd(&mut self, crd: &Value) -> usize {
        let name = crd
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.unregister_crd(&name);
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_string();
        let names = &spec["names"];
        let plural = names["plural"].as_str().unwrap_or_default().to_string();
        let kind = names["kind"].as_str().unwrap_or_default().to_string();
        let singular = names["singular"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase());
        let short_names = str_list(&names["shortNames"]);
        let categories = str_list(&names["categories"]);
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let mut count = 0;
        for v in spec["versions"].as_array().into_iter().flatten() {
            if v["served"].as_bool() == Some(false) {
                continue;
            }
            let subresources = &v["subresources"];
            let scale = subresources.get("scale").map(|s| ScalePaths {
                spec_replicas: strip_dot(
                    s["specReplicasPath"].as_str().unwrap_or(".spec.replicas"),
                ),
                status_replicas: strip_dot(
                    s["statusReplicasPath"]
                        .as_str()
                        .unwrap_or(".status.replicas"),
                ),
                label_selector: s["labelSelectorPath"].as_str().map(strip_dot),
            });
            self.types.push(ResourceType {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or_default().to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: short_names.clone(),
                categories: categories.clone(),
                status_subresource: subresources.get("status").is_some(),
                scale,
                has_generation: true,
                schema: v
                    .at("/schema/openAPIV3Schema")
                    .cloned()
                    .map(std::sync::Arc::new),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                crd: Some(name.clone()),
            });
            count += 1;
        }
        count
    }

    /// Removes the types a CRD registered.
    pub fn unregister_crd(&mut self, crd_name: &str) {
        self.types.retain(|t| t.crd.as_deref() != Some(crd_name));
    }
}

/// Splits `group/version` (or `v1`) into `(group, version)`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn strip_dot(s: &str) -> String {
    s.trim_start_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_cover_issue_types() {
        let r = Registry::builtin();
        for (g, v, p) in [
            ("", "v1", "pods"),
            ("apps", "v1", "statefulsets"),
            ("discovery.k8s.io", "v1", "endpointslices"),
            ("coordination.k8s.io", "v1", "leases"),
            ("autoscaling", "v2", "horizontalpodautoscalers"),
            ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        ] {
            assert!(r.find(g, v, p).is_some(), "{g}/{v}/{p}");
        }
        assert_eq!(
            r.find("apps", "v1", "statefulsets")
                .map(|t| t.short_names.clone()),
            Some(vec!["sts".to_string()])
        );
    }

    #[test]
    fn crd_registration_reads_names_and_subresources() {
        let mut r = Registry::builtin();
        let crd = json!({
            "metadata": {"name": "starrocksclusters.starrocks.com"},
            "spec": {"group": "starrocks.com", "scope": "Namespaced",
                "names": {"kind": "StarRocksCluster", "plural": "starrocksclusters", "shortNames": ["src"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}}]}
        });
        assert_eq!(r.register_crd(&crd), 1);
        let t = r.find("starrocks.com", "v1", "starrocksclusters").cloned();
        let t = t.as_ref();
        assert_eq!(t.map(|t| t.status_subresource), Some(true));
        assert_eq!(
            t.and_then(|t| t.scale.as_ref())
                .map(|s| s.spec_replicas.clone()),
            Some("spec.replicas".into())
        );
        assert_eq!(t.map(|t| t.singular.as_str()), Some("starrockscluster"));
        r.unregister_crd("starrocksclusters.starrocks.com");
        assert!(r.find("starrocks.com", "v1", "starrocksclusters").is_none());
    }
}
