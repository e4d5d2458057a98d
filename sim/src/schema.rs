//! Structural-schema enforcement for custom resources: pruning of unknown fields and
//! validation (type, required, enum, pattern, minimum/maximum, lengths, item counts).
//!
//! Behaviour from the Kubernetes docs "Extend the Kubernetes API with CustomResourceDefinitions"
//! (sections "Specifying a structural schema", "Field pruning", "Validation"): unknown fields
//! are dropped unless `x-kubernetes-preserve-unknown-fields: true`; `metadata`, `apiVersion`
//! and `kind` are not validated by the CRD schema; failures are 422 Invalid with field causes.

use serde_json::{Map, Value};

use crate::errors::Cause;

/// Prunes unknown fields of `obj` in place and returns the validation failures.
pub fn prune_and_validate(obj: &mut Value, schema: &Value) -> Vec<Cause> {
    prune_and_validate_reporting(obj, schema, &mut Vec::new())
}

/// As [`prune_and_validate`], also reporting the dotted paths of pruned fields in `pruned`
/// (for `fieldValidation=Strict`).
pub fn prune_and_validate_reporting(
    obj: &mut Value,
    schema: &Value,
    pruned: &mut Vec<String>,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(m) = obj.as_object_mut() else {
        return causes;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = preserves(schema);
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.and_then(|p| p.get(&k)) {
            Some(sub) => {
                if let Some(v) = m.get_mut(&k) {
                    if v.is_null() && !nullable(sub) {
                        m.remove(&k);
                        continue;
                    }
                    check(v, sub, &k, &mut causes, pruned);
                }
            }
            None if !preserve => {
                m.remove(&k);
                pruned.push(k.clone());
            }
            None => {}
        }
    }
    required(m, schema, "", &mut causes);
    causes
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

fn required(m: &Map<String, Value>, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !m.contains_key(r) {
            causes.push(Cause {
                kind: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: join(path, r),
            });
        }
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn invalid(causes: &mut Vec<Cause>, path: &str, v: &Value, what: String) {
    causes.push(Cause {
        kind: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {path} in body {what}", short(v)),
        field: path.to_string(),
    });
}

fn type_ok(v: &Value, schema: &Value) -> bool {
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return v.is_i64() || v.is_u64() || v.is_string();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    }
}

fn check(
    v: &mut Value,
    schema: &Value,
    path: &str,
    causes: &mut Vec<Cause>,
    pruned: &mut Vec<String>,
) {
    if v.is_null() && nullable(schema) {
        return;
    }
    if !type_ok(v, schema) {
        let ty = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("int-or-string");
        invalid(
            causes,
            path,
            v,
            format!("must be of type {ty}: {}", short(v)),
        );
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        causes.push(Cause {
            kind: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                short(v),
                list.join(", ")
            ),
            field: path.to_string(),
        });
    }
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let sub = props.and_then(|p| p.get(&k)).or(additional);
                match sub {
                    Some(sub) => {
                        if let Some(cv) = m.get_mut(&k) {
                            if cv.is_null() && !nullable(sub) {
                                m.remove(&k);
                                continue;
                            }
                            check(cv, sub, &join(path, &k), causes, pruned);
                        }
                    }
                    None if !preserves(schema) => {
                        m.remove(&k);
                        pruned.push(join(path, &k));
                    }
                    None => {}
                }
            }
            required(m, schema, path, causes);
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && (m.len() as u64) < min
            {
                causes.push(Cause {
                    kind: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {}: {path} in body should have at least {min} properties",
                        m.len()
                    ),
                    field: path.to_string(),
                });
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                causes.push(Cause {
                    kind: "FieldValueTooMany".into(),
                    message: format!("Too many: {}: must have at most {max} items", items.len()),
                    field: path.to_string(),
                });
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                causes.push(Cause {
                    kind: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {}: {path} in body should have at least {min} items",
                        items.len()
                    ),
                    field: path.to_string(),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check(item, item_schema, &format!("{path}[{i}]"), causes, pruned);
                }
            }
        }
        Value::String(s) => {
            let snapshot = Value::String(s.clone());
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(p) {
                    Ok(re) if !re.is_match(s) => {
                        invalid(causes, path, &snapshot, format!("should match '{p}'"))
                    }
                    _ => {}
                }
            }
            let len = s.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                causes.push(Cause {
                    kind: "FieldValueTooLong".into(),
                    message: format!("Too long: may not be more than {max} bytes"),
                    field: path.to_string(),
                });
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                invalid(
                    causes,
                    path,
                    &snapshot,
                    format!("should be at least {min} chars long"),
                );
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let snapshot = Value::Number(n.clone());
            let excl_min = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            let excl_max = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl_min && x == min))
            {
                let rel = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                invalid(causes, path, &snapshot, format!("should be {rel} {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl_max && x == max))
            {
                let rel = if excl_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                invalid(causes, path, &snapshot, format!("should be {rel} {max}"));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["image"], "properties": {
                "image": {"type": "string", "pattern": "^[a-z]+:[0-9.]+$"},
                "replicas": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}
            }},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }})
    }

    #[test]
    fn prunes_unknown_fields_but_preserves_where_told() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"}, "junk": 1,
            "spec": {"image": "fe:3.3", "extra": true, "free": {"anything": {"goes": 1}}, "labels": {"k": "v"}}});
        let causes = prune_and_validate(&mut o, &schema());
        assert!(causes.is_empty(), "{causes:?}");
        assert!(o.get("junk").is_none());
        assert!(o["spec"].get("extra").is_none());
        let mut again = json!({"spec": {"image": "fe:3.3", "extra": 1}, "junk": 2});
        let mut pruned = Vec::new();
        prune_and_validate_reporting(&mut again, &schema(), &mut pruned);
        assert_eq!(pruned, vec!["junk".to_string(), "spec.extra".to_string()]);
        assert_eq!(o["spec"]["free"]["anything"]["goes"], 1);
        assert_eq!(o["spec"]["labels"]["k"], "v");
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn reports_required_pattern_minimum_enum_type() {
        let mut o = json!({"spec": {"replicas": 0, "mode": "c"}});
        let causes = prune_and_validate(&mut o, &schema());
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.image"), "{causes:?}");
        assert!(fields.contains(&"spec.replicas"));
        assert!(fields.contains(&"spec.mode"));
        let mut o = json!({"spec": {"image": "Bad Image", "replicas": "three"}});
        let causes = prune_and_validate(&mut o, &schema());
        assert!(
            causes
                .iter()
                .any(|c| c.field == "spec.image" && c.message.contains("should match"))
        );
        assert!(
            causes.iter().any(
                |c| c.field == "spec.replicas" && c.message.contains("must be of type integer")
            )
        );
    }
}
