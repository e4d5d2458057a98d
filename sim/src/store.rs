//! Object storage with one cluster-wide resourceVersion counter and a bounded event history.
//!
//! Mirrors etcd as the API server uses it (Kubernetes docs, "API Concepts": "Resource
//! versions"): every write takes the next value of a single counter; watches replay history
//! after a given resourceVersion and answer `410 Gone` once that history has been compacted.

use crate::jsonpath::JsonPath;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

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
    /// The object after the change (for deletes: the last state, with the delete's rv);
    /// shared with the store while it is the current state, compacted once superseded.
    pub object: Revision,
    /// The object before the change (for `MODIFIED`), used for selector transitions.
    pub previous: Option<Revision>,
}

/// One state of an object as the history keeps it.
///
/// The current state is the store's own `Arc<Value>`. A superseded state (and the last state
/// of a deleted object) is kept compact, as etcd keeps past revisions serialized: its JSON and
/// a copy of its `metadata` without `managedFields`. A `serde_json::Value` takes about eleven
/// times the size of its JSON (a map of one key allocates a whole B-tree node). In the scale
/// bench at 200 clusters the superseded states took about 347 MB as `Value`s (30 MB as JSON),
/// more than half of the simulator's memory; at 1,000 clusters it reached 3.1 GiB (1.7 GiB
/// with compact states), and touching fresh memory cost about 2.3 s of CPU per GB on the
/// machine it was measured on.
#[derive(Debug, Clone)]
pub enum Revision {
    /// The object as stored.
    Value(Arc<Value>),
    /// A past state: see [`CompactRevision`].
    Compact(Arc<CompactRevision>),
}

/// A past state of an object, compacted (see [`Revision`]).
#[derive(Debug)]
pub struct CompactRevision {
    /// The object as JSON, without `apiVersion` and `kind` (a watch writes its own); always a
    /// JSON object (`{...}`).
    json: Box<str>,
    /// `{"metadata": {...}}`: the object's metadata without `managedFields`.
    metadata: Value,
}

impl CompactRevision {
    /// A compact copy of `obj`; `None` when it is not a JSON object.
    pub fn of(obj: &Value) -> Option<CompactRevision> {
        let map = obj.as_object()?;
        // Written in place, skipping the type's two keys: no copy of the object.
        struct Own<'a>(&'a serde_json::Map<String, Value>);
        impl serde::Serialize for Own<'_> {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                ser.collect_map(
                    self.0
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind")),
                )
            }
        }
        let json = serde_json::to_string(&Own(map)).ok()?;
        // Copied without `managedFields`, the largest part of most metadata (cloning it whole and
        // then removing them was a third of the simulator's status writes at 1,000 clusters).
        let metadata = match map.get("metadata") {
            Some(Value::Object(m)) => Value::Object(
                m.iter()
                    .filter(|(k, _)| k.as_str() != "managedFields")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            Some(other) => other.clone(),
            None => Value::Null,
        };
        Some(CompactRevision {
            json: json.into_boxed_str(),
            metadata: serde_json::json!({ "metadata": metadata }),
        })
    }
}

impl Revision {
    /// `obj` compacted, or `obj` itself when it is not a JSON object.
    pub fn of(obj: Arc<Value>) -> Revision {
        match CompactRevision::of(&obj) {
            Some(c) => Revision::Compact(Arc::new(c)),
            None => Revision::Value(obj),
        }
    }

    /// The object's metadata, as `obj["metadata"]` reads it: the whole object for the current
    /// state, `{"metadata": {...}}` without `managedFields` for a compact one. For readers of
    /// names, labels, owner references, uids and resourceVersions only.
    pub fn meta(&self) -> &Value {
        match self {
            Revision::Value(v) => v,
            Revision::Compact(c) => &c.metadata,
        }
    }

    /// The whole object (parsed again for a compact state; without `apiVersion` and `kind`
    /// then, as the store keeps objects).
    pub fn value(&self) -> std::borrow::Cow<'_, Value> {
        match self {
            Revision::Value(v) => std::borrow::Cow::Borrowed(v),
            // The JSON was written from a `Value`, so it parses; the metadata stands in if not.
            Revision::Compact(c) => std::borrow::Cow::Owned(
                serde_json::from_str(&c.json).unwrap_or_else(|_| c.metadata.clone()),
            ),
        }
    }

    /// The compact state's JSON (a JSON object, without `apiVersion` and `kind`), or `None`
    /// for the current state.
    pub fn compact_json(&self) -> Option<&str> {
        match self {
            Revision::Value(_) => None,
            Revision::Compact(c) => Some(&c.json),
        }
    }
}

/// An object taken out of the store for a write ([`Store::take_for_write`]).
#[derive(Debug)]
pub struct Taken {
    /// The object (moved out of the store, or a copy when shared).
    pub obj: Value,
    /// Its state as the history now keeps it: the write's previous state.
    pub previous: Revision,
    /// Whether the store holds `null` in its place until it is put back.
    moved: bool,
}

/// Key of a type in storage: `(group, plural)`.
pub type TypeKey = (String, String);

/// A key of two strings ([`TypeKey`], [`ObjKey`]) as the store's maps compare it, so that they
/// are searched with two `&str` (`&(group, plural) as &dyn Pair`) instead of a key built for
/// each lookup (four strings allocated and freed per object read).
trait Pair {
    fn pair(&self) -> (&str, &str);
}

impl Pair for (String, String) {
    fn pair(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl Pair for (&str, &str) {
    fn pair(&self) -> (&str, &str) {
        *self
    }
}

// `Borrow` requires the borrowed form to compare as the owned one: both compare the first
// string, then the second, as tuples do.
impl<'a> std::borrow::Borrow<dyn Pair + 'a> for (String, String) {
    fn borrow(&self) -> &(dyn Pair + 'a) {
        self
    }
}

impl PartialEq for dyn Pair + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.pair() == other.pair()
    }
}

impl Eq for dyn Pair + '_ {}

impl PartialOrd for dyn Pair + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn Pair + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.pair().cmp(&other.pair())
    }
}

/// Key of an object within its type: `(namespace or "", name)`.
pub type ObjKey = (String, String);

/// The cluster state.
#[derive(Debug)]
pub struct Store {
    /// The served types (built-in and CRD-registered).
    pub registry: Registry,
    rv: u64,
    /// Objects are shared with the retained events that carry them, so a write copies none.
    objects: BTreeMap<TypeKey, BTreeMap<ObjKey, Arc<Value>>>,
    events: VecDeque<StoredEvent>,
    window: usize,
    compacted: u64,
    uid_counter: u64,
    ip_counter: u32,
    /// Indexes maintained by `put`/`remove` so that controllers need no full scans.
    index: Index,
    /// Writes (creates, updates, deletes) since the store was made, by group and plural.
    writes: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Secondary indexes of the store.
#[derive(Debug, Default)]
struct Index {
    /// Live object uids.
    uids: HashMap<String, (TypeKey, ObjKey)>,
    /// Owner uid (`""` for a reference without uid) -> the objects referring to it.
    dependents: HashMap<String, BTreeSet<(TypeKey, ObjKey)>>,
    /// Owner uid -> resourceVersion of the last change of an object referring to it.
    dependents_rv: HashMap<String, u64>,
    /// (type, namespace) -> resourceVersion of the last change of an object of that type there.
    ns_rv: HashMap<(TypeKey, String), u64>,
    /// Objects with a `metadata.deletionTimestamp` (waiting for finalizers), in store order.
    terminating: BTreeSet<(TypeKey, ObjKey)>,
}

fn uid_of(obj: &Value) -> Option<&str> {
    obj.at("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| r["uid"].as_str().unwrap_or_default().to_string())
        .collect()
}

impl Index {
    fn unlink(&mut self, tk: &TypeKey, ok: &ObjKey, obj: &Value, rv: u64) {
        if let Some(u) = uid_of(obj)
            && self.uids.get(u).is_some_and(|k| k.0 == *tk && k.1 == *ok)
        {
            self.uids.remove(u);
        }
        if obj.at("/metadata/deletionTimestamp").is_some() {
            self.terminating.remove(&(tk.clone(), ok.clone()));
        }
        for owner in owner_uids(obj) {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(&(tk.clone(), ok.clone()));
                if set.is_empty() {
                    self.dependents.remove(&owner);
                }
            }
            self.dependents_rv.insert(owner, rv);
        }
    }

    fn link(&mut self, tk: &TypeKey, ok: &ObjKey, obj: &Value, rv: u64) {
        if let Some(u) = uid_of(obj) {
            self.uids.insert(u.to_string(), (tk.clone(), ok.clone()));
        }
        if obj.at("/metadata/deletionTimestamp").is_some() {
            self.terminating.insert((tk.clone(), ok.clone()));
        }
        for owner in owner_uids(obj) {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert((tk.clone(), ok.clone()));
            self.dependents_rv.insert(owner, rv);
        }
    }

    fn touch_ns(&mut self, tk: &TypeKey, ns: &str, rv: u64) {
        self.ns_rv.insert((tk.clone(), ns.to_string()), rv);
    }
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
            index: Index::default(),
            writes: BTreeMap::new(),
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

    fn entry(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects
            .get(&(group, plural) as &dyn Pair)?
            .get(&(ns, name) as &dyn Pair)
    }

    /// One object.
    pub fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<&Value> {
        self.entry(group, plural, ns, name).map(Arc::as_ref)
    }

    /// One object, shared with the store (no copy).
    pub fn get_shared(
        &self,
        group: &str,
        plural: &str,
        ns: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        self.entry(group, plural, ns, name).cloned()
    }

    /// All objects of a type, optionally in one namespace, ordered by (namespace, name).
    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<&Value> {
        match self.objects.get(&(group, plural) as &dyn Pair) {
            None => Vec::new(),
            Some(m) => match ns {
                None => m.values().map(Arc::as_ref).collect(),
                Some(want) => m
                    .range((want.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == want)
                    .map(|(_, v)| v.as_ref())
                    .collect(),
            },
        }
    }

    /// Objects of a type that have an owner reference with this uid, ordered by
    /// (namespace, name).
    pub fn dependents(&self, group: &str, plural: &str, owner_uid: &str) -> Vec<&Value> {
        let Some(set) = self.index.dependents.get(owner_uid) else {
            return Vec::new();
        };
        let Some(m) = self.objects.get(&(group, plural) as &dyn Pair) else {
            return Vec::new();
        };
        set.iter()
            .filter(|((g, p), _)| g == group && p == plural)
            .filter_map(|(_, k)| m.get(k).map(Arc::as_ref))
            .collect()
    }

    /// Every object (with its type key) that has an owner reference with this uid, ordered by
    /// type key, then (namespace, name).
    pub fn all_dependents(&self, owner_uid: &str) -> Vec<(&TypeKey, &Value)> {
        self.index
            .dependents
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter_map(|(tk, k)| {
                let (tk, m) = self.objects.get_key_value(tk)?;
                Some((tk, m.get(k)?.as_ref()))
            })
            .collect()
    }

    /// The owner uids referred to by some object (`""` for references without a uid).
    pub fn referenced_owners(&self) -> impl Iterator<Item = &str> {
        self.index.dependents.keys().map(String::as_str)
    }

    /// resourceVersion of the last change (create, update, delete) of an object with an owner
    /// reference to this uid; 0 if none was seen.
    pub fn dependents_changed(&self, owner_uid: &str) -> u64 {
        self.index
            .dependents_rv
            .get(owner_uid)
            .copied()
            .unwrap_or(0)
    }

    /// resourceVersion of the last change of an object of this type in this namespace; 0 if
    /// none was seen.
    pub fn namespace_changed(&self, group: &str, plural: &str, ns: &str) -> u64 {
        self.index
            .ns_rv
            .get(&((group.to_string(), plural.to_string()), ns.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Whether an object with this uid exists.
    pub fn has_uid(&self, uid: &str) -> bool {
        self.index.uids.contains_key(uid)
    }

    /// Every object with a `metadata.deletionTimestamp`, with its type key, in store order.
    pub fn terminating(&self) -> impl Iterator<Item = (&TypeKey, &Value)> {
        self.index.terminating.iter().filter_map(|(tk, ok)| {
            let (tk, m) = self.objects.get_key_value(tk)?;
            Some((tk, m.get(ok)?.as_ref()))
        })
    }

    /// Stores an object under the next resourceVersion and records the event. The object's
    /// `metadata.resourceVersion` is set. Returns the stored object (shared, not copied).
    pub fn put(&mut self, group: &str, plural: &str, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let (ns, name) = obj_key(&obj);
        let tk = (group.to_string(), plural.to_string());
        let ok = (ns.clone(), name);
        let obj = Arc::new(obj);
        let previous = self
            .objects
            .entry(tk.clone())
            .or_default()
            .insert(ok.clone(), obj.clone());
        if let Some(prev) = &previous {
            self.index.unlink(&tk, &ok, prev, rv);
        }
        self.index.link(&tk, &ok, &obj, rv);
        self.index.touch_ns(&tk, &ns, rv);
        let kind = if previous.is_some() {
            EventKind::Modified
        } else {
            EventKind::Added
        };
        let previous = previous.map(|p| self.supersede(p));
        self.record(StoredEvent {
            rv,
            group: group.into(),
            plural: plural.into(),
            namespace: ns,
            kind,
            object: Revision::Value(obj.clone()),
            previous,
        });
        obj
    }

    /// Takes an object out for a write that changes only its `status` ([`Store::put_taken`]
    /// puts it back): its retained event is compacted first, as `put` compacts the state it
    /// replaces, so that when nothing else holds the object (no reader's `Arc`) it is moved
    /// out rather than copied. `None` when absent.
    ///
    /// Until it is put back, the store holds `null` in its place: the caller must not read
    /// the store in between, and must put it back (changed or not) before it returns.
    pub fn take_for_write(
        &mut self,
        group: &str,
        plural: &str,
        ns: &str,
        name: &str,
    ) -> Option<Taken> {
        let current = self.entry(group, plural, ns, name)?.clone();
        let previous = self.supersede(current);
        let slot = self
            .objects
            .get_mut(&(group, plural) as &dyn Pair)?
            .get_mut(&(ns, name) as &dyn Pair)?;
        let (obj, moved) = match Arc::get_mut(slot) {
            Some(v) => (std::mem::take(v), true),
            None => (Value::clone(slot), false),
        };
        Some(Taken {
            obj,
            previous,
            moved,
        })
    }

    /// Puts back an object taken with [`Store::take_for_write`] unchanged: no write, no event.
    /// Returns the stored object.
    pub fn put_back(&mut self, group: &str, plural: &str, taken: Taken) -> Option<Arc<Value>> {
        let (ns, name) = obj_key(&taken.obj);
        let slot = self
            .objects
            .get_mut(&(group, plural) as &dyn Pair)?
            .get_mut(&(ns.as_str(), name.as_str()) as &dyn Pair)?;
        if taken.moved {
            *slot = Arc::new(taken.obj);
        }
        Some(slot.clone())
    }

    /// Stores `obj`, taken with [`Store::take_for_write`] and changed in `status` and the
    /// server's metadata only (its name, uid, labels, owner references, finalizers and
    /// deletion state as taken), under the next resourceVersion, as [`Store::put`] would:
    /// a `MODIFIED` event whose previous state is the compacted one. Returns the stored object.
    pub fn put_taken(
        &mut self,
        group: &str,
        plural: &str,
        mut obj: Value,
        previous: Revision,
    ) -> Option<Arc<Value>> {
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let (ns, name) = obj_key(&obj);
        let obj = Arc::new(obj);
        let slot = self
            .objects
            .get_mut(&(group, plural) as &dyn Pair)?
            .get_mut(&(ns.as_str(), name.as_str()) as &dyn Pair)?;
        *slot = obj.clone();
        // The indexes hold the same identity and owners: only the times of change move.
        for owner in owner_uids(&obj) {
            self.index.dependents_rv.insert(owner, rv);
        }
        let tk = (group.to_string(), plural.to_string());
        self.index.touch_ns(&tk, &ns, rv);
        self.record(StoredEvent {
            rv,
            group: group.into(),
            plural: plural.into(),
            namespace: ns,
            kind: EventKind::Modified,
            object: Revision::Value(obj.clone()),
            previous: Some(previous),
        });
        Some(obj)
    }

    /// Compacts a state that a write has just replaced, in the retained event that carried it
    /// too, and returns the compact copy (the new event's `previous`).
    fn supersede(&mut self, old: Arc<Value>) -> Revision {
        let rv = crate::controllers::rv_of(&old);
        let compact = Revision::of(old.clone());
        // Events are in resourceVersion order: the state's own event, if still retained.
        let i = self.events.partition_point(|e| e.rv < rv);
        if let Some(ev) = self.events.get_mut(i)
            && let Revision::Value(v) = &ev.object
            && Arc::ptr_eq(v, &old)
        {
            ev.object = compact.clone();
        }
        compact
    }

    /// Removes an object, recording a `DELETED` event. Returns the removed object (with the
    /// delete's resourceVersion).
    pub fn remove(&mut self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let obj = self
            .objects
            .get_mut(&(group, plural) as &dyn Pair)?
            .remove(&(ns, name) as &dyn Pair)?;
        self.supersede(obj.clone());
        let mut obj = Arc::unwrap_or_clone(obj);
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let tk = (group.to_string(), plural.to_string());
        self.index
            .unlink(&tk, &(ns.to_string(), name.to_string()), &obj, rv);
        self.index.touch_ns(&tk, ns, rv);
        self.record(StoredEvent {
            rv,
            group: group.into(),
            plural: plural.into(),
            namespace: ns.into(),
            kind: EventKind::Deleted,
            object: Revision::of(Arc::new(obj.clone())),
            previous: None,
        });
        Some(obj)
    }

    fn record(&mut self, ev: StoredEvent) {
        // Looked up by `&str` first: counting a write allocates only for a type's first one.
        let by_plural = match self.writes.get_mut(ev.group.as_str()) {
            Some(m) => m,
            None => self.writes.entry(ev.group.clone()).or_default(),
        };
        match by_plural.get_mut(ev.plural.as_str()) {
            Some(n) => *n += 1,
            None => {
                by_plural.insert(ev.plural.clone(), 1);
            }
        }
        self.events.push_back(ev);
        while self.events.len() > self.window {
            if let Some(old) = self.events.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    /// The number of writes (creates, updates, deletes; each moves the resourceVersion) since
    /// the store was made, by type: `((group, plural), count)`, sorted by group and plural.
    pub fn writes_by_type(&self) -> Vec<(TypeKey, u64)> {
        self.writes
            .iter()
            .flat_map(|(group, m)| {
                m.iter()
                    .map(|(plural, n)| ((group.clone(), plural.clone()), *n))
            })
            .collect()
    }

    /// Forgets all retained history (the next watch from any older resourceVersion gets 410).
    pub fn compact(&mut self) {
        if let Some(last) = self.events.back() {
            self.compacted = last.rv;
        }
        self.events.clear();
    }

    /// Every retained change after `since` (all types), oldest first: the history a
    /// change-driven controller reads to learn what to visit (see
    /// [`crate::controllers::Changes`]). `None` when changes after `since` have been compacted
    /// away (the caller must then look at everything, as an informer relists after `410 Gone`).
    pub fn changes_since(&self, since: u64) -> Option<impl Iterator<Item = &StoredEvent>> {
        if since < self.compacted {
            return None;
        }
        // Events are in resourceVersion order: start after `since` without scanning the window.
        let start = self.events.partition_point(|e| e.rv <= since);
        Some(self.events.range(start..))
    }

    /// Calls `f` on the live objects of one type that changed after resourceVersion `since`,
    /// each once however often it changed, in the order of their first change after `since`;
    /// deleted ones are left out. When that history is no longer
    /// retained, calls it on all of them. Returns the current resourceVersion, for the next
    /// call.
    pub fn visit_changed(
        &self,
        group: &str,
        plural: &str,
        since: u64,
        mut f: impl FnMut(&Value),
    ) -> u64 {
        match self.changes_since(since) {
            Some(changes) => {
                let mut seen = HashSet::new();
                for ev in changes.filter(|e| e.group == group && e.plural == plural) {
                    let (ns, name) = obj_key(ev.object.meta());
                    if let Some(o) = self.get(group, plural, &ns, &name)
                        && seen.insert((ns, name))
                    {
                        f(o);
                    }
                }
            }
            None => self.list(group, plural, None).into_iter().for_each(f),
        }
        self.rv
    }

    /// The type and key of the live object with this uid.
    pub fn locate(&self, uid: &str) -> Option<&(TypeKey, ObjKey)> {
        self.index.uids.get(uid)
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
        let Some(changes) = self.changes_since(since) else {
            return Err(ApiError::Expired {
                requested: since,
                oldest: self.compacted + 1,
            });
        };
        Ok(changes
            .filter(|e| e.group == group && e.plural == plural)
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
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        /// A map of string pairs searched by two `&str` finds what a search by an owned pair
        /// finds, for names that are prefixes of one another.
        #[test]
        fn pair_lookups_agree_with_owned_keys(
            keys in prop::collection::vec(("[ab]{0,3}", "[ab-]{0,3}"), 0..20),
            probe in ("[ab]{0,3}", "[ab-]{0,3}"),
        ) {
            let map: BTreeMap<(String, String), usize> =
                keys.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect();
            for k in keys.iter().chain([&probe]) {
                prop_assert_eq!(map.get(&(k.0.as_str(), k.1.as_str()) as &dyn Pair), map.get(k));
            }
        }
    }

    #[test]
    fn writes_are_counted_by_type_deletes_included() {
        let mut s = Store::new(Registry::builtin(), 3);
        let cm = |data: Value| json!({"metadata": {"name": "a", "namespace": "d"}, "data": data});
        s.put("", "configmaps", cm(json!({})));
        s.put("", "configmaps", cm(json!({"k": "v"})));
        s.put(
            "apps",
            "statefulsets",
            json!({"metadata": {"name": "b", "namespace": "d"}}),
        );
        assert!(s.remove("", "configmaps", "d", "a").is_some());
        assert_eq!(
            s.writes_by_type(),
            vec![
                (("".to_string(), "configmaps".to_string()), 3),
                (("apps".to_string(), "statefulsets".to_string()), 1),
            ]
        );
    }

    #[test]
    fn superseded_states_are_kept_compact() {
        let mut s = Store::new(Registry::builtin(), 10);
        let state = |data: Value| {
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "d", "labels": {"k": "v"},
                             "managedFields": [{"manager": "m", "fieldsV1": {"f:data": {}}}]},
                "data": data,
            })
        };
        let first = s.put("", "configmaps", state(json!({"x": "1"})));
        let second = s.put("", "configmaps", state(json!({"x": "2"})));
        let evs = s.events_since(0, "", "configmaps").unwrap();
        assert_eq!(evs.len(), 2);
        // The first state: compact in its own event and as the second's `previous`.
        let mut want = Value::clone(&first);
        let map = want.as_object_mut().unwrap();
        map.remove("apiVersion");
        map.remove("kind");
        for rev in [&evs[0].object, evs[1].previous.as_ref().unwrap()] {
            assert!(rev.compact_json().is_some());
            assert_eq!(*rev.value(), want);
            assert_eq!(rev.meta()["metadata"]["labels"], json!({"k": "v"}));
            assert_eq!(
                rev.meta()["metadata"]["resourceVersion"],
                first["metadata"]["resourceVersion"]
            );
            assert!(rev.meta()["metadata"].get("managedFields").is_none());
        }
        // The current state is the store's own.
        match &evs[1].object {
            Revision::Value(v) => assert!(Arc::ptr_eq(v, &second)),
            Revision::Compact(_) => panic!("the current state was compacted"),
        }
        // A delete compacts the last state, and the delete event carries it compact.
        let gone = s.remove("", "configmaps", "d", "a").unwrap();
        let evs = s.events_since(0, "", "configmaps").unwrap();
        assert!(evs.iter().all(|e| e.object.compact_json().is_some()));
        assert_eq!(evs[2].object.value()["metadata"], gone["metadata"]);
        assert_eq!(evs[1].object.value()["data"], json!({"x": "2"}));
    }

    /// Each object that changed after `since` once, deleted ones left out, other types
    /// ignored; everything once the history is gone.
    #[test]
    fn visit_changed_reads_each_changed_object_once() {
        let mut s = Store::new(Registry::builtin(), 100);
        let cm = |name: &str, x: u32| json!({"metadata": {"name": name, "namespace": "d"}, "data": {"x": x.to_string()}});
        let names = |s: &Store, since: u64| {
            let mut seen = Vec::new();
            let rv = s.visit_changed("", "configmaps", since, |o| {
                seen.push(format!(
                    "{}={}",
                    o["metadata"]["name"].as_str().unwrap(),
                    o["data"]["x"]
                ));
            });
            (seen, rv)
        };
        s.put("", "configmaps", cm("a", 1));
        let (_, since) = names(&s, 0);
        s.put("", "configmaps", cm("b", 1));
        s.put("", "configmaps", cm("a", 2));
        s.put("", "configmaps", cm("c", 1));
        s.put("", "configmaps", cm("a", 3));
        s.put("", "secrets", cm("a", 9));
        s.remove("", "configmaps", "d", "c");
        let (seen, rv) = names(&s, since);
        assert_eq!(seen, ["b=\"1\"", "a=\"3\""]);
        assert_eq!(rv, s.current_rv());
        assert!(names(&s, rv).0.is_empty());
        s.compact();
        assert_eq!(names(&s, since).0, ["a=\"3\"", "b=\"1\""]);
    }

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
