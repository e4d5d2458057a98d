//! OpenAPI v3 documents (`/openapi/v3` and `/openapi/v3/{api|apis/group}/{version}`).
//!
//! kubectl (v1.27+) reads them to decide whether the server supports server-side field
//! validation (a `fieldValidation` query parameter on the PATCH operation of the kind, found
//! through `x-kubernetes-group-version-kind`); when it does, kubectl sends
//! `fieldValidation=Strict` instead of validating on the client. Custom resources also get their
//! CRD schema under `components.schemas`, so `kubectl explain` works for them. Built-in kinds get
//! no schema (the simulator has none), so kubectl's client-side apply uses its compiled-in types.

use serde_json::{Map, Value, json};

use crate::resources::{Registry, ResourceType};

fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

/// The index: every served group-version with its document's URL.
pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for t in reg.all() {
        let p = gv_path(t);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=sim")}),
        );
    }
    json!({"paths": paths})
}

fn schema_name(t: &ResourceType) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    let prefix = if t.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        reversed.join(".")
    };
    format!("{prefix}.{}.{}", t.version, t.kind)
}

/// The document of one group-version (`gv` is `api/v1` or `apis/{group}/{version}`).
pub fn group_version_doc(reg: &Registry, gv: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = reg.all().iter().filter(|t| gv_path(t) == gv).collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let item = if t.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("/{gv}/{}/{{name}}", t.plural)
        };
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
        ]);
        let op = |action: &str| {
            json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": params,
                "responses": {"200": {"description": "OK"}}})
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
        let collection = if t.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("/{gv}/{}", t.plural)
        };
        paths.insert(collection, json!({"get": op("list"), "post": op("post")}));
        if let Some(schema) = &t.schema {
            let mut s = Value::clone(schema);
            if let Some(m) = s.as_object_mut() {
                m.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
            }
            schemas.insert(schema_name(t), s);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_advertise_field_validation() {
        let reg = Registry::builtin();
        assert!(index(&reg)["paths"].get("apis/apps/v1").is_some());
        let doc = group_version_doc(&reg, "apis/apps/v1").unwrap_or_default();
        let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "StatefulSet");
        assert!(
            op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(group_version_doc(&reg, "apis/nope/v1").is_none());
    }
}
