//! RBAC authorization for requests that carry a registered bearer token.
//!
//! Rules from the Kubernetes docs "Using RBAC Authorization": a request is allowed when a
//! RoleBinding in its namespace, or a ClusterRoleBinding, binds one of the requester's subjects
//! (`ServiceAccount` by name and namespace, `User`, `Group`) to a Role or ClusterRole with a rule
//! whose `apiGroups`, `resources` (`plural` or `plural/subresource`), `verbs` and optional
//! `resourceNames` match (`*` matches anything). Denials are `403 Forbidden` with the API
//! server's message. Requests without a token are treated as cluster-admin, so RBAC is opt-in
//! per client.

use serde_json::Value;

use crate::store::Store;

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name, e.g. `system:serviceaccount:ns:name`.
    pub user: String,
    /// Groups, e.g. `system:serviceaccounts`, `system:authenticated`.
    pub groups: Vec<String>,
}

impl Identity {
    /// The identity of a ServiceAccount.
    pub fn service_account(namespace: &str, name: &str) -> Identity {
        Identity {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// One access request.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'a str,
    /// API group (`""` for core).
    pub group: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// `status`, `scale` or `None`.
    pub subresource: Option<&'a str>,
    /// Namespace, if namespaced.
    pub namespace: Option<&'a str>,
    /// Object name, if any.
    pub name: Option<&'a str>,
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn subject_matches(s: &Value, id: &Identity, binding_ns: &str) -> bool {
    match s["kind"].as_str() {
        Some("ServiceAccount") => {
            let ns = s["namespace"].as_str().unwrap_or(binding_ns);
            id.user
                == format!(
                    "system:serviceaccount:{ns}:{}",
                    s["name"].as_str().unwrap_or_default()
                )
        }
        Some("User") => s["name"].as_str() == Some(id.user.as_str()),
        Some("Group") => s["name"]
            .as_str()
            .is_some_and(|g| id.groups.iter().any(|x| x == g)),
        _ => false,
    }
}

fn rule_allows(rule: &Value, a: &Access<'_>) -> bool {
    let any_or = |list: Vec<&str>, want: &str| list.iter().any(|x| *x == "*" || *x == want);
    let resource = match a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.to_string(),
    };
    let names = strs(&rule["resourceNames"]);
    any_or(strs(&rule["apiGroups"]), a.group)
        && (any_or(strs(&rule["resources"]), &resource)
            || strs(&rule["resources"]).contains(&format!("{}/*", a.resource).as_str()))
        && any_or(strs(&rule["verbs"]), a.verb)
        && (names.is_empty() || a.name.is_some_and(|n| names.contains(&n)))
}

fn role_rules<'s>(store: &'s Store, role_ref: &Value, binding_ns: Option<&str>) -> Vec<&'s Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    let role = match (role_ref["kind"].as_str(), binding_ns) {
        (Some("Role"), Some(ns)) => store.get("rbac.authorization.k8s.io", "roles", ns, name),
        (Some("ClusterRole"), _) => {
            store.get("rbac.authorization.k8s.io", "clusterroles", "", name)
        }
        _ => None,
    };
    role.and_then(|r| r["rules"].as_array())
        .map(|rs| rs.iter().collect())
        .unwrap_or_default()
}

/// Whether `id` may perform `a`.
pub fn allowed(store: &Store, id: &Identity, a: &Access<'_>) -> bool {
    let cluster = store.list("rbac.authorization.k8s.io", "clusterrolebindings", None);
    for b in cluster {
        if strs_subjects(b).any(|s| subject_matches(s, id, ""))
            && role_rules(store, &b["roleRef"], None)
                .iter()
                .any(|r| rule_allows(r, a))
        {
            return true;
        }
    }
    if let Some(ns) = a.namespace {
        for b in store.list("rbac.authorization.k8s.io", "rolebindings", Some(ns)) {
            if strs_subjects(b).any(|s| subject_matches(s, id, ns))
                && role_rules(store, &b["roleRef"], Some(ns))
                    .iter()
                    .any(|r| rule_allows(r, a))
            {
                return true;
            }
        }
    }
    false
}

fn strs_subjects(b: &Value) -> impl Iterator<Item = &Value> {
    b["subjects"].as_array().into_iter().flatten()
}

/// The API server's denial message.
pub fn forbidden_message(id: &Identity, a: &Access<'_>) -> String {
    let qualified = if a.group.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let what = match a.name {
        Some(n) => format!("{qualified} \"{n}\" is forbidden"),
        None => format!("{qualified} is forbidden"),
    };
    let resource = match a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_string(),
    };
    let scope = match a.namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_string(),
    };
    format!(
        "{what}: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{scope}",
        id.user, a.verb, a.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use serde_json::json;

    #[test]
    fn role_binding_grants_listed_verbs_only() {
        let mut s = Store::new(Registry::builtin(), 10);
        s.put("rbac.authorization.k8s.io", "roles", json!({"metadata": {"name": "r", "namespace": "ns"},
            "rules": [{"apiGroups": ["apps"], "resources": ["statefulsets", "statefulsets/status"], "verbs": ["get", "patch"]}]}));
        s.put(
            "rbac.authorization.k8s.io",
            "rolebindings",
            json!({"metadata": {"name": "b", "namespace": "ns"},
            "roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ns"}]}),
        );
        let id = Identity::service_account("ns", "op");
        let a = |verb, sub, ns| Access {
            verb,
            group: "apps",
            resource: "statefulsets",
            subresource: sub,
            namespace: ns,
            name: Some("x"),
        };
        assert!(allowed(&s, &id, &a("patch", None, Some("ns"))));
        assert!(allowed(&s, &id, &a("patch", Some("status"), Some("ns"))));
        assert!(!allowed(&s, &id, &a("delete", None, Some("ns"))));
        assert!(!allowed(&s, &id, &a("get", None, Some("other"))));
        assert!(!allowed(
            &s,
            &Identity::service_account("ns", "someone"),
            &a("get", None, Some("ns"))
        ));
        let msg = forbidden_message(&id, &a("delete", None, Some("ns")));
        assert_eq!(
            msg,
            "statefulsets.apps \"x\" is forbidden: User \"system:serviceaccount:ns:op\" cannot delete resource \"statefulsets\" in API group \"apps\" in the namespace \"ns\""
        );
    }
}
