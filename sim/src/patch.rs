//! The non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902, with `test`),
//! and strategic merge patch (Kubernetes docs, "Update API Objects in Place Using kubectl
//! patch": lists with a patch merge key merge by that key, `$patch: delete|replace` directives,
//! `$setElementOrder`/`$retainKeys`/`$deleteFromPrimitiveList` honoured or ignored).

use serde_json::Value;

use crate::errors::ApiError;
use crate::listtypes::{ListKind, Shape, item_key};

/// Applies an RFC 7386 merge patch in place: objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch. A failing `test` op or a bad path is a 422 as in the API
/// server (`the server rejected our request due to an error in our request`).
///
/// # Errors
/// [`ApiError::BadRequest`] if the body is not a patch list, [`ApiError::Invalid`]-like 422 when
/// an operation fails.
pub fn json_patch(
    target: &mut Value,
    patch: &Value,
    kind: &str,
    group: &str,
    name: &str,
) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &ops)
        .map_err(|e| ApiError::invalid(kind, group, name, "", "FieldValueInvalid", &e.to_string()))
}

/// Applies a strategic merge patch in place, using `shape` for list merge keys.
pub fn strategic_merge(target: &mut Value, patch: &Value, shape: Shape<'_>) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replaced = patch.clone();
                strip_directives(&mut replaced);
                *target = replaced;
                return;
            }
            for (k, pv) in p {
                if k.starts_with('$') {
                    continue;
                }
                if pv.is_null() {
                    t.remove(k);
                    continue;
                }
                let child_shape = shape.child(k);
                match (t.get_mut(k), pv) {
                    (Some(tv @ Value::Object(_)), Value::Object(_)) => {
                        strategic_merge(tv, pv, child_shape)
                    }
                    (Some(Value::Array(tl)), Value::Array(pl)) => {
                        merge_list(k, tl, pl, child_shape)
                    }
                    (_, _) => {
                        let mut v = pv.clone();
                        strip_directives(&mut v);
                        t.insert(k.clone(), v);
                    }
                }
            }
            // `$deleteFromPrimitiveList/<field>` keys start with `$` and were skipped above.
            for (k, pv) in p {
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
                    && let (Some(Value::Array(list)), Some(del)) = (t.get_mut(field), pv.as_array())
                {
                    list.retain(|v| !del.contains(v));
                }
            }
        }
        _ => {
            let mut v = patch.clone();
            strip_directives(&mut v);
            *target = v;
        }
    }
}

fn merge_list(field: &str, target: &mut Vec<Value>, patch: &[Value], shape: Shape<'_>) {
    let mut all: Vec<Value> = target.clone();
    all.extend(patch.iter().cloned());
    match shape.list_kind(field, &all) {
        ListKind::Map(keys) => {
            if patch
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                *target = patch
                    .iter()
                    .filter(|i| i.get("$patch").is_none())
                    .cloned()
                    .collect();
                return;
            }
            for item in patch {
                let key = item_key(item, &keys);
                let pos = target.iter().position(|t| item_key(t, &keys) == key);
                let directive = item.get("$patch").and_then(Value::as_str);
                match (pos, directive) {
                    (Some(i), Some("delete")) => {
                        target.remove(i);
                    }
                    (None, Some("delete")) => {}
                    (Some(i), _) => strategic_merge(&mut target[i], item, shape.items()),
                    (None, _) => {
                        let mut v = item.clone();
                        strip_directives(&mut v);
                        target.push(v);
                    }
                }
            }
        }
        ListKind::Set => {
            for item in patch {
                if !target.contains(item) {
                    target.push(item.clone());
                }
            }
        }
        ListKind::Atomic => {
            let mut v = Value::Array(patch.to_vec());
            strip_directives(&mut v);
            if let Value::Array(l) = v {
                *target = l;
            }
        }
    }
}

/// Removes strategic-merge directive keys (`$patch`, `$setElementOrder/...`, ...) recursively.
pub fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(l) => l.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"b": {"c": null, "e": 4}}));
        assert_eq!(t, json!({"a": 1, "b": {"d": 3, "e": 4}}));
    }

    #[test]
    fn json_patch_test_op_fails_on_mismatch() {
        let mut t = json!({"spec": {"replicas": 3}});
        let ok = json!([{"op": "test", "path": "/spec/replicas", "value": 3}, {"op": "replace", "path": "/spec/replicas", "value": 4}]);
        assert!(json_patch(&mut t, &ok, "StatefulSet", "apps", "x").is_ok());
        assert_eq!(t["spec"]["replicas"], 4);
        let bad = json!([{"op": "test", "path": "/spec/replicas", "value": 3}, {"op": "replace", "path": "/spec/replicas", "value": 9}]);
        let e = json_patch(&mut t, &bad, "StatefulSet", "apps", "x");
        assert_eq!(e.err().map(|e| e.code()), Some(422));
        assert_eq!(
            t["spec"]["replicas"], 4,
            "a failed patch leaves the object unchanged"
        );
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x:1", "env": [{"name": "E", "value": "1"}]}, {"name": "b", "image": "y:1"}]}});
        let p = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "x:2", "env": [{"name": "F", "value": "2"}]}, {"name": "b", "$patch": "delete"}]}});
        strategic_merge(&mut t, &p, Shape::Builtin);
        assert_eq!(
            t,
            json!({"spec": {"containers": [{"name": "a", "image": "x:2", "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]}]}})
        );
    }

    #[test]
    fn strategic_replaces_atomic_lists() {
        let mut t = json!({"args": ["a", "b"]});
        strategic_merge(&mut t, &json!({"args": ["c"]}), Shape::Builtin);
        assert_eq!(t, json!({"args": ["c"]}));
    }
}
