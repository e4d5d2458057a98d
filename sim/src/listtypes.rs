//! How lists merge: by key (`x-kubernetes-list-type: map`, strategic merge `patchMergeKey`),
//! as sets, or atomically.
//!
//! For built-in types the keys are those of the Kubernetes API reference (`patchMergeKey` /
//! `listMapKeys` of `containers`, `env`, `volumes`, `ports`, ...). For custom resources they come
//! from the CRD's structural schema (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`);
//! lists without them are atomic, as in the API server ("Merge strategy" in the server-side
//! apply docs).

use serde_json::Value;

/// How one list merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Items are identified by these key fields.
    Map(Vec<String>),
    /// Items are scalars identified by their value.
    Set,
    /// The list is replaced as a whole.
    Atomic,
}

/// Where in an object merging happens: the type knowledge for that position.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// A built-in type: keys by field name.
    Builtin,
    /// A custom resource: the schema node at this position (`None` when unknown).
    Schema(Option<&'a Value>),
}

impl<'a> Shape<'a> {
    /// The shape of an object's root for a resource type with an optional CRD schema.
    pub fn root(schema: Option<&'a Value>, custom: bool) -> Shape<'a> {
        if custom {
            Shape::Schema(schema)
        } else {
            Shape::Builtin
        }
    }

    /// The shape of the value under `field` of an object at this position.
    pub fn child(self, field: &str) -> Shape<'a> {
        match self {
            Shape::Builtin => Shape::Builtin,
            Shape::Schema(Some(s)) => {
                if field == "metadata"
                    && s.get("properties")
                        .and_then(|p| p.get("metadata"))
                        .is_none()
                {
                    return Shape::Schema(None);
                }
                let direct = s.get("properties").and_then(|p| p.get(field));
                let extra = s.get("additionalProperties").filter(|a| a.is_object());
                Shape::Schema(direct.or(extra))
            }
            Shape::Schema(None) => Shape::Schema(None),
        }
    }

    /// The shape of the items of a list at this position.
    pub fn items(self) -> Shape<'a> {
        match self {
            Shape::Schema(Some(s)) => Shape::Schema(s.get("items")),
            other => other,
        }
    }

    /// How the list found under `field` merges (`self` is the shape of that list).
    pub fn list_kind(self, field: &str, items: &[Value]) -> ListKind {
        match self {
            Shape::Builtin => builtin_list_kind(field, items),
            Shape::Schema(Some(s)) => match s.get("x-kubernetes-list-type").and_then(Value::as_str)
            {
                Some("map") => ListKind::Map(
                    s.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                ),
                Some("set") => ListKind::Set,
                _ => ListKind::Atomic,
            },
            // metadata of a custom resource is still ObjectMeta.
            Shape::Schema(None) => builtin_list_kind(field, items),
        }
    }
}

fn builtin_list_kind(field: &str, items: &[Value]) -> ListKind {
    let key = |k: &str| ListKind::Map(vec![k.to_string()]);
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "containerStatuses"
        | "initContainerStatuses" => key("name"),
        "volumeMounts" => key("mountPath"),
        "volumeDevices" => key("devicePath"),
        "conditions" => key("type"),
        "ownerReferences" => key("uid"),
        "hostAliases" => key("ip"),
        "topologySpreadConstraints" => key("topologyKey"),
        "finalizers" => ListKind::Set,
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                key("containerPort")
            } else if items.iter().all(|i| i.get("port").is_some()) {
                key("port")
            } else {
                ListKind::Atomic
            }
        }
        _ => ListKind::Atomic,
    }
}

/// The key of a map-list item: the key fields present in the item, in key order.
pub fn item_key(item: &Value, keys: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtin_keys() {
        assert_eq!(
            Shape::Builtin.list_kind("containers", &[]),
            ListKind::Map(vec!["name".into()])
        );
        assert_eq!(
            Shape::Builtin.list_kind("ports", &[json!({"containerPort": 80})]),
            ListKind::Map(vec!["containerPort".into()])
        );
        assert_eq!(
            Shape::Builtin.list_kind("ports", &[json!({"port": 80})]),
            ListKind::Map(vec!["port".into()])
        );
        assert_eq!(Shape::Builtin.list_kind("args", &[]), ListKind::Atomic);
    }

    #[test]
    fn schema_keys() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"], "items": {"type": "object"}},
            "tags": {"type": "array", "items": {"type": "string"}}}}}});
        let root = Shape::root(Some(&schema), true);
        assert_eq!(
            root.child("spec").child("items").list_kind("items", &[]),
            ListKind::Map(vec!["id".into()])
        );
        assert_eq!(
            root.child("spec").child("tags").list_kind("tags", &[]),
            ListKind::Atomic
        );
        assert_eq!(
            root.child("metadata").list_kind("finalizers", &[]),
            ListKind::Set
        );
    }
}
