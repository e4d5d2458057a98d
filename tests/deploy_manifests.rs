//! The install manifests under `deploy/`: each kustomization renders (`kubectl kustomize`),
//! every object in it is a well-typed Kubernetes object of a kind we expect, RBAC grants only
//! what the operator calls (no wildcards), and the operator's Deployment runs locked down.
//!
//! Skipped, with a notice on stderr, when `kubectl` is not installed.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, Namespace, PersistentVolumeClaim, PodSecurityContext, SecurityContext,
    ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use support::kustomize;

const OPERATOR_NAMESPACE: &str = "starrocks-operator";
const WATCHED_NAMESPACE: &str = "starrocks";

/// One rendered object, typed.
#[derive(Debug)]
enum Object {
    Namespace(Box<Namespace>),
    ServiceAccount(Box<ServiceAccount>),
    ClusterRole(Box<ClusterRole>),
    ClusterRoleBinding(Box<ClusterRoleBinding>),
    Role(Box<Role>),
    RoleBinding(Box<RoleBinding>),
    Deployment(Box<Deployment>),
    PersistentVolumeClaim(Box<PersistentVolumeClaim>),
    CustomResourceDefinition(Box<CustomResourceDefinition>),
}

fn typed<T: DeserializeOwned>(value: Value, what: &str) -> Box<T> {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{what} does not deserialize: {e}"))
}

/// Splits the multi-document YAML and deserializes each object into its k8s-openapi type;
/// fails on a kind this test does not know.
fn parse(yaml: &str) -> Vec<Object> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("kustomize output is YAML");
    docs.into_iter()
        .filter(|d| !d.is_null())
        .map(|doc| {
            let kind = doc["kind"].as_str().unwrap_or("<none>").to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or("<none>");
            let what = format!("{kind} {name}");
            match kind.as_str() {
                "Namespace" => Object::Namespace(typed(doc, &what)),
                "ServiceAccount" => Object::ServiceAccount(typed(doc, &what)),
                "ClusterRole" => Object::ClusterRole(typed(doc, &what)),
                "ClusterRoleBinding" => Object::ClusterRoleBinding(typed(doc, &what)),
                "Role" => Object::Role(typed(doc, &what)),
                "RoleBinding" => Object::RoleBinding(typed(doc, &what)),
                "Deployment" => Object::Deployment(typed(doc, &what)),
                "PersistentVolumeClaim" => Object::PersistentVolumeClaim(typed(doc, &what)),
                "CustomResourceDefinition" => Object::CustomResourceDefinition(typed(doc, &what)),
                other => panic!("unexpected kind {other} ({what}) in the manifests"),
            }
        })
        .collect()
}

/// `(apiGroup, resource)` -> verbs: what the operator calls, the most any rule may grant.
fn allowed() -> BTreeMap<(&'static str, &'static str), BTreeSet<&'static str>> {
    let all = ["get", "list", "watch", "create", "patch", "delete"];
    let mut m = BTreeMap::new();
    let mut put = |group, resource, verbs: &[&'static str]| {
        m.insert((group, resource), verbs.iter().copied().collect());
    };
    // The operator never writes the cluster object itself, and never reads status back.
    put(
        "starrocks.com",
        "starrocksclusters",
        &["get", "list", "watch"],
    );
    put("starrocks.com", "starrocksclusters/status", &["patch"]);
    put("apps", "statefulsets", &all);
    put("apps", "deployments", &all);
    put("", "services", &all);
    put("", "configmaps", &all);
    put("policy", "poddisruptionbudgets", &all);
    put("autoscaling", "horizontalpodautoscalers", &all);
    put(
        "discovery.k8s.io",
        "endpointslices",
        &["get", "list", "watch"],
    );
    put("events.k8s.io", "events", &["create", "patch"]);
    m
}

/// The leader-election Lease: only in the operator's namespace.
const LEASE: (&str, &str) = ("coordination.k8s.io", "leases");
const LEASE_VERBS: [&str; 3] = ["get", "create", "patch"];

/// `(apiGroup, resource)` -> verbs granted by `rules`.
fn grants(rules: &[PolicyRule]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                out.entry((group.clone(), resource.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

fn check_rules(owner: &str, rules: &[PolicyRule], lease_allowed: bool) {
    let allowed = allowed();
    for rule in rules {
        let fields = [
            ("apiGroups", rule.api_groups.clone().unwrap_or_default()),
            ("resources", rule.resources.clone().unwrap_or_default()),
            ("verbs", rule.verbs.clone()),
            (
                "resourceNames",
                rule.resource_names.clone().unwrap_or_default(),
            ),
            (
                "nonResourceURLs",
                rule.non_resource_urls.clone().unwrap_or_default(),
            ),
        ];
        for (field, values) in fields {
            assert!(
                values.iter().all(|v| !v.contains('*')),
                "{owner}: wildcard in {field}: {rule:?}"
            );
        }
        assert!(
            rule.non_resource_urls.as_ref().is_none_or(Vec::is_empty),
            "{owner}: non-resource URLs are never needed: {rule:?}"
        );
        assert!(
            rule.resources.as_ref().is_some_and(|r| !r.is_empty()),
            "{owner}: a rule without resources: {rule:?}"
        );
    }
    for ((group, resource), verbs) in grants(rules) {
        let key = (group.as_str(), resource.as_str());
        let permitted: BTreeSet<&str> = if key == LEASE {
            assert!(
                lease_allowed,
                "{owner}: Leases are only granted in the operator's namespace"
            );
            LEASE_VERBS.into_iter().collect()
        } else {
            allowed.get(&key).cloned().unwrap_or_else(|| {
                panic!(
                    "{owner}: {resource:?} in group {group:?} is not a resource the operator uses"
                )
            })
        };
        let extra: Vec<&String> = verbs
            .iter()
            .filter(|v| !permitted.contains(v.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{owner}: {group:?}/{resource}: verbs {extra:?} go beyond what the operator calls"
        );
    }
}

/// The operator's full grant: every allowed resource with every allowed verb.
fn assert_grants_everything_needed(owner: &str, rules: &[PolicyRule]) {
    let granted = grants(rules);
    for ((group, resource), verbs) in allowed() {
        let have = granted
            .get(&(group.to_string(), resource.to_string()))
            .cloned()
            .unwrap_or_default();
        for verb in verbs {
            assert!(
                have.contains(verb),
                "{owner}: {group:?}/{resource} lacks {verb}, which the operator calls"
            );
        }
    }
}

fn assert_locked_down(pod: Option<&PodSecurityContext>, container: &Container) {
    let sc: &SecurityContext = container
        .security_context
        .as_ref()
        .expect("the operator container has a securityContext");
    let pod_run_as_non_root = pod.and_then(|p| p.run_as_non_root);
    assert_eq!(
        sc.run_as_non_root.or(pod_run_as_non_root),
        Some(true),
        "runAsNonRoot"
    );
    assert_eq!(
        sc.run_as_user.or(pod.and_then(|p| p.run_as_user)),
        Some(65532),
        "runAsUser"
    );
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.add.clone()),
        None,
        "no capability is added back"
    );
    assert!(sc.privileged != Some(true));
    let seccomp = sc
        .seccomp_profile
        .as_ref()
        .or(pod.and_then(|p| p.seccomp_profile.as_ref()))
        .expect("a seccompProfile");
    assert_eq!(seccomp.type_, "RuntimeDefault");
}

/// The checks every rendering shares. Returns the operator container's args.
fn check_common(objects: &[Object]) -> Vec<String> {
    let mut kinds = BTreeSet::new();
    let mut deployments = Vec::new();
    let mut claims = BTreeSet::new();
    let mut service_accounts = BTreeSet::new();
    let mut lease_roles = 0;
    for object in objects {
        match object {
            Object::Namespace(ns) => {
                kinds.insert("Namespace");
                assert_eq!(ns.metadata.name.as_deref(), Some(OPERATOR_NAMESPACE));
            }
            Object::ServiceAccount(sa) => {
                kinds.insert("ServiceAccount");
                assert_eq!(sa.metadata.namespace.as_deref(), Some(OPERATOR_NAMESPACE));
                service_accounts.insert(sa.metadata.name.clone().unwrap_or_default());
            }
            Object::ClusterRole(cr) => {
                kinds.insert("ClusterRole");
                assert!(cr.aggregation_rule.is_none(), "no aggregated ClusterRole");
                check_rules(
                    "ClusterRole",
                    cr.rules.as_deref().unwrap_or_default(),
                    false,
                );
            }
            Object::Role(role) => {
                kinds.insert("Role");
                let rules = role.rules.as_deref().unwrap_or_default();
                let namespace = role.metadata.namespace.as_deref();
                let in_operator_ns = namespace == Some(OPERATOR_NAMESPACE);
                check_rules(
                    &format!("Role {namespace:?}/{:?}", role.metadata.name),
                    rules,
                    in_operator_ns,
                );
                if grants(rules).contains_key(&(LEASE.0.to_string(), LEASE.1.to_string())) {
                    lease_roles += 1;
                }
            }
            Object::ClusterRoleBinding(b) => {
                kinds.insert("ClusterRoleBinding");
                assert_eq!(b.role_ref.kind, "ClusterRole");
                check_subjects(b.subjects.as_deref().unwrap_or_default());
            }
            Object::RoleBinding(b) => {
                kinds.insert("RoleBinding");
                assert_eq!(b.role_ref.kind, "Role", "RoleBindings bind Roles only");
                check_subjects(b.subjects.as_deref().unwrap_or_default());
            }
            Object::Deployment(d) => {
                kinds.insert("Deployment");
                deployments.push(&**d);
            }
            Object::PersistentVolumeClaim(pvc) => {
                kinds.insert("PersistentVolumeClaim");
                assert_eq!(pvc.metadata.namespace.as_deref(), Some(OPERATOR_NAMESPACE));
                let spec = pvc.spec.as_ref().expect("PVC spec");
                assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
                let storage = spec
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"));
                assert_eq!(storage, Some(&Quantity("1Gi".to_string())));
                claims.insert(pvc.metadata.name.clone().unwrap_or_default());
            }
            Object::CustomResourceDefinition(crd) => {
                kinds.insert("CustomResourceDefinition");
                assert_eq!(
                    crd.metadata.name.as_deref(),
                    Some("starrocksclusters.starrocks.com")
                );
            }
        }
    }
    for kind in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "PersistentVolumeClaim",
        "CustomResourceDefinition",
    ] {
        assert!(kinds.contains(kind), "no {kind} rendered");
    }
    assert_eq!(lease_roles, 1, "exactly one Role grants the Lease");
    assert_eq!(deployments.len(), 1, "one operator Deployment");
    let deployment = deployments[0];
    assert_eq!(
        deployment.metadata.namespace.as_deref(),
        Some(OPERATOR_NAMESPACE)
    );
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate"),
        "a ReadWriteOnce journal needs Recreate"
    );
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert!(
        service_accounts.contains(pod.service_account_name.as_deref().unwrap_or_default()),
        "the pod runs as a ServiceAccount the manifests create"
    );
    assert_eq!(pod.containers.len(), 1);
    let container = &pod.containers[0];
    assert_locked_down(pod.security_context.as_ref(), container);
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/example/starrocks-operator:0.1.0")
    );
    let env = container.env.as_deref().unwrap_or_default();
    let pod_namespace = env
        .iter()
        .find(|e| e.name == "POD_NAMESPACE")
        .expect("POD_NAMESPACE is set");
    assert_eq!(
        pod_namespace
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("metadata.namespace")
    );
    let ports = container.ports.as_deref().unwrap_or_default();
    assert!(
        ports
            .iter()
            .any(|p| p.name.as_deref() == Some("http") && p.container_port == 8080),
        "port http 8080"
    );
    let probe_path = |p: Option<&k8s_openapi::api::core::v1::Probe>| {
        p.and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        probe_path(container.liveness_probe.as_ref()).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(container.readiness_probe.as_ref()).as_deref(),
        Some("/readyz")
    );
    let resources = container.resources.as_ref().expect("resources");
    let get = |m: &Option<BTreeMap<String, Quantity>>, k: &str| {
        m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone())
    };
    assert_eq!(get(&resources.requests, "cpu").as_deref(), Some("100m"));
    assert_eq!(get(&resources.requests, "memory").as_deref(), Some("128Mi"));
    assert_eq!(get(&resources.limits, "memory").as_deref(), Some("256Mi"));
    // The journal directory is on the PVC the manifests define.
    let args = container.args.clone().unwrap_or_default();
    let journal = args
        .iter()
        .position(|a| a == "--journal")
        .and_then(|i| args.get(i + 1))
        .expect("--journal DIR");
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| Path::new(journal).starts_with(&m.mount_path))
        .expect("the journal directory is on a mounted volume");
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("the journal mount's volume");
    let claim = volume
        .persistent_volume_claim
        .as_ref()
        .expect("the journal volume is a PVC");
    assert_eq!(claim.claim_name, "starrocks-operator-journal");
    assert!(claims.contains(&claim.claim_name), "the PVC is rendered");
    args
}

fn check_subjects(subjects: &[k8s_openapi::api::rbac::v1::Subject]) {
    assert_eq!(subjects.len(), 1);
    let s = &subjects[0];
    assert_eq!(s.kind, "ServiceAccount");
    assert_eq!(s.name, "starrocks-operator");
    assert_eq!(s.namespace.as_deref(), Some(OPERATOR_NAMESPACE));
}

fn cluster_role_rules(objects: &[Object]) -> Vec<&[PolicyRule]> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::ClusterRole(cr) => Some(cr.rules.as_deref().unwrap_or_default()),
            _ => None,
        })
        .collect()
}

#[test]
fn base_renders_typed_objects_with_least_privilege() {
    let Some(yaml) = kustomize("deploy/base") else {
        return;
    };
    let objects = parse(&yaml);
    let args = check_common(&objects);
    assert_eq!(
        args,
        [
            "run",
            "--journal",
            "/var/lib/starrocks-operator/journal",
            "--log-format",
            "json",
            "--leader-election"
        ]
    );
    let cluster_roles = cluster_role_rules(&objects);
    assert_eq!(cluster_roles.len(), 1, "one ClusterRole");
    assert_grants_everything_needed("ClusterRole", cluster_roles[0]);
    assert!(
        objects
            .iter()
            .any(|o| matches!(o, Object::ClusterRoleBinding(_))),
        "the ClusterRole is bound"
    );
}

#[test]
fn single_namespace_overlay_has_no_cluster_role_and_the_same_rules_in_a_role() {
    let Some(yaml) = kustomize("deploy/overlays/single-namespace") else {
        return;
    };
    let objects = parse(&yaml);
    let args = check_common(&objects);
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--namespace" && w[1] == WATCHED_NAMESPACE),
        "the operator watches {WATCHED_NAMESPACE} only: {args:?}"
    );
    assert!(
        !objects
            .iter()
            .any(|o| matches!(o, Object::ClusterRole(_) | Object::ClusterRoleBinding(_))),
        "the overlay grants nothing cluster-wide"
    );
    let watched: Vec<&Role> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Role(r) if r.metadata.namespace.as_deref() == Some(WATCHED_NAMESPACE) => {
                Some(&**r)
            }
            _ => None,
        })
        .collect();
    assert_eq!(watched.len(), 1, "one Role in the watched namespace");
    let rules = watched[0].rules.as_deref().unwrap_or_default();
    assert_grants_everything_needed("Role in the watched namespace", rules);
    let bound = objects.iter().any(|o| {
        matches!(o, Object::RoleBinding(b)
            if b.metadata.namespace.as_deref() == Some(WATCHED_NAMESPACE)
                && b.role_ref.name == watched[0].metadata.name.clone().unwrap_or_default())
    });
    assert!(bound, "the watched namespace's Role is bound");
}

#[test]
fn overlay_role_and_base_cluster_role_grant_the_same() {
    let (Some(base), Some(overlay)) = (
        kustomize("deploy/base"),
        kustomize("deploy/overlays/single-namespace"),
    ) else {
        return;
    };
    let base = parse(&base);
    let base_rules = grants(cluster_role_rules(&base)[0]);
    let overlay = parse(&overlay);
    let role_rules = overlay
        .iter()
        .find_map(|o| match o {
            Object::Role(r) if r.metadata.namespace.as_deref() == Some(WATCHED_NAMESPACE) => {
                Some(grants(r.rules.as_deref().unwrap_or_default()))
            }
            _ => None,
        })
        .expect("the watched namespace's Role");
    assert_eq!(
        base_rules, role_rules,
        "deploy/overlays/single-namespace/role.yaml and deploy/base/cluster-role.yaml drifted"
    );
}
