//! Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), the server-side
//! printing kubectl uses for `get`.
//!
//! From the Kubernetes docs "API Concepts" ("Receiving resources as Tables") and the CRD docs
//! ("Additional printer columns"): a custom resource shows `NAME` plus its
//! `additionalPrinterColumns` (JSONPath, here the subset `.a.b`, `.a[0].b`); `date` columns are
//! rendered as ages. Built-in kinds get a few of their usual columns.

use crate::jsonpath::JsonPath;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// How a response renders objects, from the Accept header's first media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The objects themselves.
    Object,
    /// `meta.k8s.io/v1 Table`.
    Table,
    /// `meta.k8s.io/v1 PartialObjectMetadata` (what kube's `metadata_watcher` asks for).
    Metadata,
}

/// The view an Accept header asks for.
pub fn view_of(accept: &str) -> View {
    let first = accept.split(',').next().unwrap_or_default();
    if first.contains("as=Table") {
        View::Table
    } else if first.contains("as=PartialObjectMetadata") {
        View::Metadata
    } else {
        View::Object
    }
}

/// Converts an object to `PartialObjectMetadata`, or a list to `PartialObjectMetadataList`.
pub fn to_partial_metadata(body: &Value) -> Value {
    let one = |o: &Value| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": o["metadata"]});
    match body.get("items").and_then(Value::as_array) {
        Some(items) => json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
            "metadata": body["metadata"], "items": items.iter().map(one).collect::<Vec<_>>(),
        }),
        None => one(body),
    }
}

/// Evaluates the JSONPath subset `.a.b[0].c` (also `{.a.b}`).
pub fn json_path<'v>(obj: &'v Value, path: &str) -> Option<&'v Value> {
    let p = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    let mut cur = obj;
    for seg in p.split('.').filter(|s| !s.is_empty()) {
        let (field, idx) = match seg.split_once('[') {
            Some((f, rest)) => (f, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !field.is_empty() {
            cur = cur.get(field)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// kubectl's human duration: `45s`, `3m20s`, `15m`, `5h`, `3d`, `2y`.
pub fn human_age(since: &str, now: DateTime<Utc>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(since) else {
        return "<unknown>".into();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s if s < 365 * 86400 => format!("{}d", s / 86400),
        s => format!("{}y", s / (365 * 86400)),
    }
}

struct Column {
    name: String,
    ty: String,
    path: String,
    priority: i64,
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let c = |name: &str, ty: &str, path: &str| Column {
        name: name.into(),
        ty: ty.into(),
        path: path.into(),
        priority: 0,
    };
    if rt.is_custom() {
        if rt.printer_columns.is_empty() {
            return vec![c("Age", "date", ".metadata.creationTimestamp")];
        }
        return rt
            .printer_columns
            .iter()
            .map(|p| Column {
                name: p["name"].as_str().unwrap_or_default().into(),
                ty: p["type"].as_str().unwrap_or("string").into(),
                path: p["jsonPath"].as_str().unwrap_or_default().into(),
                priority: p["priority"].as_i64().unwrap_or(0),
            })
            .collect();
    }
    match rt.kind.as_str() {
        "Pod" => vec![
            c("Ready", "string", "#ready"),
            c("Status", "string", ".status.phase"),
            c("Restarts", "integer", "#restarts"),
            c("Age", "date", ".metadata.creationTimestamp"),
        ],
        "StatefulSet" => vec![
            c("Ready", "string", "#sts-ready"),
            c("Age", "date", ".metadata.creationTimestamp"),
        ],
        "Deployment" => vec![
            c("Ready", "string", "#sts-ready"),
            c("Up-to-date", "integer", ".status.updatedReplicas"),
            c("Available", "integer", ".status.availableReplicas"),
            c("Age", "date", ".metadata.creationTimestamp"),
        ],
        "Service" => vec![
            c("Type", "string", ".spec.type"),
            c("Cluster-IP", "string", ".spec.clusterIP"),
            c("Ports", "string", "#ports"),
            c("Age", "date", ".metadata.creationTimestamp"),
        ],
        _ => vec![c("Age", "date", ".metadata.creationTimestamp")],
    }
}

fn cell(obj: &Value, col: &Column, now: DateTime<Utc>) -> Value {
    match col.path.as_str() {
        "#ready" => {
            let cs = obj
                .at("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = obj
                .at("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = cs
                .into_iter()
                .flatten()
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count();
            json!(format!("{ready}/{total}"))
        }
        "#restarts" => {
            let n: i64 = obj
                .at("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            json!(n)
        }
        "#sts-ready" => {
            let ready = obj
                .at("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let want = obj
                .at("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            json!(format!("{ready}/{want}"))
        }
        "#ports" => {
            let ports: Vec<String> = obj
                .at("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
        path => match json_path(obj, path) {
            None | Some(Value::Null) => Value::Null,
            Some(Value::String(s)) if col.ty == "date" => json!(human_age(s, now)),
            Some(v) => v.clone(),
        },
    }
}

fn row(obj: &Value, cols: &[Column], include_object: &str, now: DateTime<Utc>) -> Value {
    let mut cells = vec![obj.at("/metadata/name").cloned().unwrap_or(Value::Null)];
    cells.extend(cols.iter().map(|c| cell(obj, c, now)));
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
        }
    };
    json!({"cells": cells, "object": object})
}

/// Converts an object or a list into a `meta.k8s.io/v1 Table`.
pub fn to_table(rt: &ResourceType, body: &Value, include_object: &str) -> Value {
    let now = Utc::now();
    let cols = columns(rt);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    defs.extend(cols.iter().map(|c| json!({"name": c.name, "type": c.ty, "format": "", "description": c.path, "priority": c.priority})));
    let (rows, rv) = match body.get("items").and_then(Value::as_array) {
        Some(items) => (
            items
                .iter()
                .map(|o| row(o, &cols, include_object, now))
                .collect::<Vec<_>>(),
            body.at("/metadata/resourceVersion").cloned(),
        ),
        None => (
            vec![row(body, &cols, include_object, now)],
            body.at("/metadata/resourceVersion").cloned(),
        ),
    };
    let mut meta = json!({});
    if let (Some(rv), Some(m)) = (rv, meta.as_object_mut()) {
        m.insert("resourceVersion".into(), rv);
    }
    if let (Some(c), Some(m)) = (body.at("/metadata/continue"), meta.as_object_mut()) {
        m.insert("continue".into(), c.clone());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn crd_printer_columns() {
        let mut reg = Registry::builtin();
        reg.register_crd(&json!({"metadata": {"name": "xs.e.com"}, "spec": {"group": "e.com", "names": {"kind": "X", "plural": "xs"},
            "versions": [{"name": "v1", "served": true, "additionalPrinterColumns": [
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "First", "type": "string", "jsonPath": ".spec.items[0].name"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}}));
        let rt = reg.find("e.com", "v1", "xs").cloned();
        let rt = rt.as_ref();
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2000-01-01T00:00:00Z"}, "status": {"phase": "running"}, "spec": {"items": [{"name": "i0"}]}});
        let t = rt
            .map(|rt| to_table(rt, &json!({"items": [obj]}), "Metadata"))
            .unwrap_or_default();
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, vec!["Name", "Phase", "First", "Age"]);
        assert_eq!(t["rows"][0]["cells"][1], "running");
        assert_eq!(t["rows"][0]["cells"][2], "i0");
        assert!(
            t["rows"][0]["cells"][3]
                .as_str()
                .unwrap_or_default()
                .ends_with('y')
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn partial_metadata_views() {
        let v = to_partial_metadata(
            &json!({"metadata": {"resourceVersion": "3"}, "items": [{"metadata": {"name": "a"}, "spec": {}}]}),
        );
        assert_eq!(v["kind"], "PartialObjectMetadataList");
        assert_eq!(v["items"][0]["kind"], "PartialObjectMetadata");
        assert!(v["items"][0].get("spec").is_none());
        assert_eq!(
            view_of("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
            View::Metadata
        );
    }

    #[test]
    fn accept_detection() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
