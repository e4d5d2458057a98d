//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}`, and the per
//! group-version `APIResourceList` with short names, verbs, categories and subresources.
//!
//! Shapes from the Kubernetes docs "Discovery API" (the unaggregated form; clients that ask
//! for the aggregated `APIGroupDiscoveryList` fall back to it when answered with plain JSON).

use serde_json::{Value, json};

use crate::resources::{ALL_VERBS, Registry};

/// `/version`: claims Kubernetes v1.32.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-kube-sim", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

fn groups(reg: &Registry) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in reg.all().iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) => {
                if !vs.contains(&t.version) {
                    vs.push(t.version.clone());
                }
            }
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`: every non-core group.
pub fn group_list(reg: &Registry) -> Value {
    let gs: Vec<Value> = groups(reg).iter().map(|(g, vs)| group_doc(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

/// `/apis/{group}`, or `None` when the group is not served.
pub fn group(reg: &Registry, name: &str) -> Option<Value> {
    groups(reg)
        .into_iter()
        .find(|(g, _)| g == name)
        .map(|(g, vs)| {
            let mut d = group_doc(&g, &vs);
            if let Some(m) = d.as_object_mut() {
                m.insert("kind".into(), json!("APIGroup"));
                m.insert("apiVersion".into(), json!("v1"));
            }
            d
        })
}

/// `/api/v1` or `/apis/{group}/{version}`, or `None` when not served.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in types {
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": ALL_VERBS, "storageVersionHash": "",
        });
        if let Some(m) = r.as_object_mut() {
            if !t.short_names.is_empty() {
                m.insert("shortNames".into(), json!(t.short_names));
            }
            if !t.categories.is_empty() {
                m.insert("categories".into(), json!(t.categories));
            }
        }
        resources.push(r);
        if t.status_subresource {
            resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced,
                "kind": t.kind, "verbs": ["get", "patch", "update"]}));
        }
        if t.scale.is_some() {
            resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_statefulsets_with_subresources() {
        let reg = Registry::builtin();
        let d = resource_list(&reg, "apps", "v1").unwrap_or_default();
        let names: Vec<&str> = d["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"statefulsets"));
        assert!(names.contains(&"statefulsets/status"));
        assert!(names.contains(&"statefulsets/scale"));
        assert!(resource_list(&reg, "nope", "v1").is_none());
        let gl = group_list(&reg);
        assert!(
            gl["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| g["name"] == "discovery.k8s.io")
        );
    }
}
