//! Object storage with one cluster-wide resourceVersion counter and a bounded event history.
//!
//! Mirrors etcd as the API server uses it (Kubernetes docs, "API Concepts": "Resource
//! versions"): every write takes the next value of a single counter; watches replay history
//! after a given resourceVersion and answer `410 Gone` once that history has been compacted.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use crate::errors::ApiError;
use crate::resources::Registry;

/// Type of a watch event (`ADDED`, `MODIFIED`, `DELETED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One retained change.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// resourceVersion of the change.
    pub rv: u64,
    /// API group of the object.
    pub group: String,
    /// Plural of the object's type.
    pub plural: String,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (for deletes: the last state, with the delete's rv).
    pub object: Value,
    /// The object before the change (for `MODIFIED`), used for selector transitions.
    pub previous: Option<Value>,
}

/// Key of a type in storage: `(group, plural)`.
pub type TypeKey = (String, String);

/// Key of an object within its type: `(namespace or "", name)`.
pub type ObjKey = (String, String);

/// The cluster state.
#[derive(Debug)]
pub struct Store {
    /// The served types (built-in and CRD-registered).
    pub registry: Registry,
    rv: u64,
    objects: BTreeMap<TypeKey, BTreeMap<ObjKey, Value>>,
    events: VecDeque<StoredEvent>,
    window: usize,
    compacted: u64,
    uid_counter: u64,
    ip_counter: u32,
}

impl Store {
    /// Empty store retaining `window` events for watches.
    pub fn new(registry: Registry, window: usize) -> Store {
        Store {
            registry,
            rv: 1,
            objects: BTreeMap::new(),
            events: VecDeque::new(),
            window: window.max(1),
            compacted: 0,
            uid_counter: 0,
            ip_counter: 0,
        }
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// A fresh RFC 4122-shaped uid (deterministic per store).
    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let n = self.uid_counter;
        format!("5e1a0000-0000-4000-8000-{n:012x}")
    }

    /// The next address of a simple sequential allocator: `10.<block>.x.y`.
    pub fn next_ip(&mut self, block: u8) -> String {
        self.ip_counter += 1;
        let n = self.ip_counter;
        format!("10.{block}.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }

    /// One object.
    pub fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// All objects of a type, optionally in one namespace, ordered by (namespace, name).
    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<&Value> {
        match self.objects.get(&(group.to_string(), plural.to_string())) {
            None => Vec::new(),
            Some(m) => m
                .iter()
                .filter(|((n, _), _)| ns.is_none_or(|want| want == n))
                .map(|(_, v)| v)
                .collect(),
        }
    }

    /// Every stored object with its type key.
    pub fn iter_all(&self) -> impl Iterator<Item = (&TypeKey, &Value)> {
        self.objects
            .iter()
            .flat_map(|(k, m)| m.values().map(move |v| (k, v)))
    }

    /// Stores an object under the next resourceVersion and records the event. The object's
    /// `metadata.resourceVersion` is set. Returns the stored object.
    pub fn put(&mut self, group: &str, plural: &str, mut obj: Value) -> Value {
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let (ns, name) = obj_key(&obj);
        let previous = self
            .objects
            .entry((group.to_string(), plural.to_string()))
            .or_default()
            .insert((ns.clone(), name), obj.clone());
        let kind = if previous.is_some() {
            EventKind::Modified
        } else {
            EventKind::Added
        };
        self.record(StoredEvent {
            rv,
            group: group.into(),
            plural: plural.into(),
            namespace: ns,
            kind,
            object: obj.clone(),
            previous,
        });
        obj
    }

    /// Removes an object, recording a `DELETED` event. Returns the removed object (with the
    /// delete's resourceVersion).
    pub fn remove(&mut self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(&(group.to_string(), plural.to_string()))?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        self.record(StoredEvent {
            rv,
            group: group.into(),
            plural: plural.into(),
            namespace: ns.into(),
            kind: EventKind::Deleted,
            object: obj.clone(),
            previous: None,
        });
        Some(obj)
    }

    fn record(&mut self, ev: StoredEvent) {
        self.events.push_back(ev);
        while self.events.len() > self.window {
            if let Some(old) = self.events.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    /// Forgets all retained history (the next watch from any older resourceVersion gets 410).
    pub fn compact(&mut self) {
        if let Some(last) = self.events.back() {
            self.compacted = last.rv;
        }
        self.events.clear();
    }

    /// Events after `since` for one type (all namespaces), oldest first.
    ///
    /// # Errors
    /// [`ApiError::Expired`] when events after `since` have been dropped from the window.
    pub fn events_since(
        &self,
        since: u64,
        group: &str,
        plural: &str,
    ) -> Result<Vec<StoredEvent>, ApiError> {
        if since < self.compacted {
            return Err(ApiError::Expired {
                requested: since,
                oldest: self.compacted + 1,
            });
        }
        Ok(self
            .events
            .iter()
            .filter(|e| e.rv > since && e.group == group && e.plural == plural)
            .cloned()
            .collect())
    }
}

/// `(namespace or "", name)` of an object.
pub fn obj_key(obj: &Value) -> ObjKey {
    let meta = &obj["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_string(),
        meta["name"].as_str().unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_counter_and_history() {
        let mut s = Store::new(Registry::builtin(), 3);
        let a = s.put(
            "",
            "configmaps",
            json!({"metadata": {"name": "a", "namespace": "d"}}),
        );
        let b = s.put(
            "apps",
            "statefulsets",
            json!({"metadata": {"name": "b", "namespace": "d"}}),
        );
        let ra: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let rb: u64 = b["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rb > ra);
        assert_eq!(s.events_since(0, "", "configmaps").unwrap().len(), 1);
        s.put(
            "",
            "configmaps",
            json!({"metadata": {"name": "a", "namespace": "d"}, "data": {}}),
        );
        s.remove("", "configmaps", "d", "a");
        // window 3: the first event was dropped.
        assert!(matches!(
            s.events_since(ra - 1, "", "configmaps"),
            Err(ApiError::Expired { .. })
        ));
        let evs = s.events_since(ra, "", "configmaps").unwrap();
        assert_eq!(
            evs.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![EventKind::Modified, EventKind::Deleted]
        );
    }
}
