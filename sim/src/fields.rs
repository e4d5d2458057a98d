//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Semantics from the Kubernetes docs "Server-Side Apply": every field is owned by the managers
//! that last set it; an apply by manager M takes the fields of its configuration, conflicts when
//! another manager owns one of them with a different value (unless `force`), removes the fields M
//! owned before and no longer applies (when nobody else owns them), and records M's set in
//! `FieldsV1` form (`f:<field>`, `k:<key json>` for keyed list items, `v:<value>` for set items,
//! `.` for a node that is itself owned).

use crate::jsonpath::JsonPath;
use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::listtypes::{ListKind, Shape, item_key};

/// A field path: a sequence of `FieldsV1` path elements (`f:spec`, `k:{"name":"a"}`, ...),
/// held as one string with the elements separated by NUL. Paths order as their sequences of
/// elements do (NUL sorts before any character of an element), and building, copying and
/// comparing one costs one buffer instead of one per element: field sets of pod templates
/// hold hundreds of paths with long common prefixes. A field name containing NUL, which no
/// Kubernetes name allows, would read as two elements.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    const SEP: char = '\0';

    /// The path of the given elements.
    pub fn of<S: AsRef<str>>(elements: impl IntoIterator<Item = S>) -> FieldPath {
        let mut p = FieldPath::default();
        for e in elements {
            p.push("", e.as_ref());
        }
        p
    }

    /// Its elements, first to last.
    pub fn elements(&self) -> impl DoubleEndedIterator<Item = &str> + Clone {
        self.0.split(Self::SEP).filter(|_| !self.0.is_empty())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            self.0.matches(Self::SEP).count() + 1
        }
    }

    /// Whether it has no element.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `prefix`'s elements are its first elements.
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        prefix.0.is_empty()
            || self.0.starts_with(&prefix.0)
                && (self.0.len() == prefix.0.len()
                    || self.0[prefix.0.len()..].starts_with(Self::SEP))
    }

    /// Appends the element `tag` followed by `rest` (`f:` and a field name, say).
    fn push(&mut self, tag: &str, rest: &str) {
        if !self.0.is_empty() {
            self.0.push(Self::SEP);
        }
        self.0.push_str(tag);
        self.0.push_str(rest);
    }

    /// Appends the element `tag` followed by the JSON of `rest` (a list item or its key).
    fn push_json(&mut self, tag: &str, rest: &Value) {
        use std::fmt::Write;
        self.push(tag, "");
        // Writing to a `String` does not fail.
        let _ = write!(self.0, "{rest}");
    }

    /// Removes the last element.
    fn pop(&mut self) {
        match self.0.rfind(Self::SEP) {
            Some(i) => self.0.truncate(i),
            None => self.0.clear(),
        }
    }

    /// The last element.
    fn last(&self) -> Option<&str> {
        self.elements().next_back()
    }

    /// The last element and the path before it.
    fn split_last(&self) -> Option<(&str, FieldPath)> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.rfind(Self::SEP) {
            Some(i) => (&self.0[i + 1..], FieldPath(self.0[..i].to_string())),
            None => (self.0.as_str(), FieldPath::default()),
        })
    }
}

/// A set of field paths.
pub type FieldSet = BTreeSet<FieldPath>;

/// Metadata fields the server owns; never part of a field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
];

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    /// `manager`.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `apiVersion` of the write.
    pub api_version: String,
    /// RFC 3339 time of the last change to this entry.
    pub time: String,
    /// `subresource` (`status`, `scale`) or `None` for the main resource.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    /// The entry of the write `req` (`operation` `Apply` or `Update`) owning `fields`.
    fn written(req: ApplyRequest<'_>, operation: &str, fields: FieldSet) -> ManagedEntry {
        ManagedEntry {
            manager: req.manager.to_string(),
            operation: operation.into(),
            api_version: req.api_version.to_string(),
            time: req.now.to_string(),
            subresource: req.subresource.map(str::to_string),
            fields,
        }
    }
}

/// One apply conflict: another manager owns `path` with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, rendered as the API server does (`.spec.replicas`).
    pub field: String,
}

/// The parts of an object whose fields belong to field sets, as (path, value, shape, field
/// name): every top-level field but `apiVersion`, `kind` and `metadata` (path `[f:<field>]`),
/// and every field of `metadata` the server does not own (path `[f:metadata, f:<field>]`).
fn owned_parts<'v, 's>(
    obj: &'v Value,
    shape: Shape<'s>,
) -> Vec<(FieldPath, &'v Value, Shape<'s>, &'v str)> {
    let mut parts = Vec::new();
    for (k, v) in obj.as_object().into_iter().flatten() {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        if k != "metadata" {
            parts.push((
                FieldPath::of([format!("f:{k}")]),
                v,
                shape.child(k),
                k.as_str(),
            ));
            continue;
        }
        for (mk, mv) in v.as_object().into_iter().flatten() {
            if !SERVER_METADATA.contains(&mk.as_str()) {
                let path = FieldPath::of([format!("f:{k}"), format!("f:{mk}")]);
                parts.push((path, mv, shape.child(k).child(mk), mk.as_str()));
            }
        }
    }
    parts
}

/// The fields set by an object (leaves, keyed list items and set items), without server-owned
/// metadata, `apiVersion` and `kind`.
pub fn field_set(obj: &Value, shape: Shape<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    for (mut prefix, v, shape, field) in owned_parts(obj, shape) {
        walk(v, shape, field, &mut prefix, &mut |p| {
            out.insert(p.clone());
        });
    }
    out
}

/// Walks the value `v` found at `prefix` (under `field`, with the given shape) and passes each
/// member of its field set to `member`: leaves, keyed list items and set items. The one
/// traversal is [`walk_changes`], here with nothing to compare.
fn walk(
    v: &Value,
    shape: Shape<'_>,
    field: &str,
    prefix: &mut FieldPath,
    member: &mut impl FnMut(&FieldPath),
) {
    // Without an old value no repeated key is looked for, so the walk runs to its end.
    let _ = walk_changes(v, None, shape, field, prefix, &mut |p, _| member(p));
}

/// The `FieldsV1` trie of every field `obj` sets: the same value as
/// `to_fields_v1(&field_set(obj, shape))`, without the intermediate set (what a create
/// records, where the writer owns everything). An empty object when `obj` sets nothing.
pub fn fields_v1_of(obj: &Value, shape: Shape<'_>) -> Value {
    match direct_fields_v1(obj, shape) {
        Some(v1) => v1,
        None => fields_v1_by_trie(obj, shape),
    }
}

/// [`fields_v1_of`] built through a [`Trie`], which merges the items of a keyed list that
/// share a key.
fn fields_v1_by_trie(obj: &Value, shape: Shape<'_>) -> Value {
    let mut root = Trie::default();
    for (prefix, v, shape, field) in owned_parts(obj, shape) {
        root.node(&prefix).add(v, shape, field);
    }
    root.into_fields_v1()
}

/// [`fields_v1_of`] built straight into the `FieldsV1` maps, each node once, in key order
/// (about a tenth of the simulator's CPU at 1,000 clusters went to creates' entries built
/// through a [`Trie`] and converted). `None` when a keyed list has two items under one key,
/// whose fields the trie merges; `direct_same_as_trie` checks the two agree.
fn direct_fields_v1(obj: &Value, shape: Shape<'_>) -> Option<Value> {
    let mut root = Vec::new();
    for (k, v) in obj.as_object().into_iter().flatten() {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let mut meta = Vec::new();
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if !SERVER_METADATA.contains(&mk.as_str()) {
                        let node = direct_node(mv, shape.child(k).child(mk), mk)?;
                        meta.push((tagged("f:", mk), node));
                    }
                }
                if !meta.is_empty() {
                    root.push((tagged("f:", k), Value::Object(meta.into_iter().collect())));
                }
            }
            _ => root.push((tagged("f:", k), direct_node(v, shape.child(k), k)?)),
        }
    }
    Some(Value::Object(root.into_iter().collect()))
}

/// The `FieldsV1` node of the value `v` (under `field`, with the given shape), as
/// [`Trie::add`] finds its members: a member without descendants is `{}`; a keyed list item
/// with descendants also has `.`.
fn direct_node(v: &Value, shape: Shape<'_>, field: &str) -> Option<Value> {
    let children: Vec<(String, Value)> = match v {
        Value::Object(m) if !m.is_empty() => m
            .iter()
            .map(|(k, cv)| Some((tagged("f:", k), direct_node(cv, shape.child(k), k)?)))
            .collect::<Option<_>>()?,
        Value::Array(items) if !items.is_empty() => match shape.list_kind(field, items) {
            ListKind::Map(keys) if items.iter().all(Value::is_object) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let mut node = match direct_node(item, shape.items(), field)? {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    if !node.is_empty() {
                        node.insert(".".into(), Value::Object(Map::new()));
                    }
                    out.push((
                        tagged_json("k:", &item_key(item, &keys)),
                        Value::Object(node),
                    ));
                }
                let map: Map<String, Value> = out.into_iter().collect();
                // Two items under one key: the trie merges their fields.
                if map.len() != items.len() {
                    return None;
                }
                return Some(Value::Object(map));
            }
            ListKind::Set => items
                .iter()
                .map(|item| (tagged_json("v:", item), Value::Object(Map::new())))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    Some(Value::Object(children.into_iter().collect()))
}

/// `tag` followed by `name` (`f:spec`), without the formatting machinery.
fn tagged(tag: &str, name: &str) -> String {
    let mut s = String::with_capacity(tag.len() + name.len());
    s.push_str(tag);
    s.push_str(name);
    s
}

/// `tag` followed by `v` as JSON (`k:{"name":"fe"}`, `v:"a"`), as `format!("{tag}{v}")`
/// writes it.
fn tagged_json(tag: &str, v: &Value) -> String {
    // Serializing a `Value` to memory does not fail (its map keys are strings).
    let json = serde_json::to_vec(v).unwrap_or_default();
    let mut s = String::with_capacity(tag.len() + json.len());
    s.push_str(tag);
    s.push_str(&String::from_utf8_lossy(&json));
    s
}

/// A field set as a trie: whether the node is itself a member, and its children by path
/// element.
#[derive(Default)]
struct Trie {
    member: bool,
    children: std::collections::BTreeMap<String, Trie>,
}

impl Trie {
    /// Adds `path` as a member, creating the nodes on the way (the reference that
    /// [`to_fields_v1`] is tested against).
    #[cfg(test)]
    fn insert(&mut self, path: &FieldPath) {
        self.node(path).member = true;
    }

    /// The node at `path`, created with the nodes on the way if missing.
    fn node(&mut self, path: &FieldPath) -> &mut Trie {
        let mut node = self;
        for seg in path.elements() {
            // Most nodes already exist (paths share prefixes): look up before copying.
            if !node.children.contains_key(seg) {
                node.children.insert(seg.to_string(), Trie::default());
            }
            let child = node
                .children
                .get_mut(seg)
                .expect("inserted just above if missing");
            node = child;
        }
        node
    }

    /// Adds the members [`walk`] finds in `v` (under `field`, with the given shape), relative
    /// to this node, without building their paths: [`walk`]'s cases, kept apart because a
    /// create's entry built this way costs about 40% less (`cargo bench -p kube-sim --bench
    /// fields`). `create_same_as_full` checks the two agree.
    fn add(&mut self, v: &Value, shape: Shape<'_>, field: &str) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, cv) in m {
                    self.child("f:", k).add(cv, shape.child(k), k);
                }
            }
            Value::Array(items) if !items.is_empty() => match shape.list_kind(field, items) {
                ListKind::Map(keys) if items.iter().all(Value::is_object) => {
                    for item in items {
                        let child = self.child("k:", item_key(item, &keys));
                        child.member = true;
                        child.add(item, shape.items(), field);
                    }
                }
                ListKind::Set => {
                    for item in items {
                        self.child("v:", item).member = true;
                    }
                }
                _ => self.member = true,
            },
            _ => self.member = true,
        }
    }

    /// The child at the element `tag` followed by `rest`, created if missing.
    fn child(&mut self, tag: &str, rest: impl std::fmt::Display) -> &mut Trie {
        self.children.entry(format!("{tag}{rest}")).or_default()
    }

    /// The `FieldsV1` form: `.` marks a member that has descendants; a member without is `{}`.
    fn into_fields_v1(self) -> Value {
        let mut node: Map<String, Value> = self
            .children
            .into_iter()
            .map(|(k, c)| (k, c.into_fields_v1()))
            .collect();
        if self.member && !node.is_empty() {
            node.insert(".".into(), Value::Object(Map::new()));
        }
        Value::Object(node)
    }
}

/// Whether `p` has no descendant in `set`.
fn is_leaf(set: &FieldSet, p: &FieldPath) -> bool {
    use std::ops::Bound::{Included, Unbounded};
    set.range::<FieldPath, _>((Included(p), Unbounded))
        .nth(1)
        .is_none_or(|next| !next.starts_with(p))
}

/// The value at a field path, if present.
pub fn get_at<'v>(obj: &'v Value, path: &FieldPath) -> Option<&'v Value> {
    let mut cur = obj;
    for seg in path.elements() {
        cur = step(cur, seg)?;
    }
    Some(cur)
}

fn step<'v>(cur: &'v Value, seg: &str) -> Option<&'v Value> {
    if let Some(f) = seg.strip_prefix("f:") {
        return cur.get(f);
    }
    let list = cur.as_array()?;
    find_in_list(list, seg).map(|i| &list[i])
}

fn find_in_list(list: &[Value], seg: &str) -> Option<usize> {
    if let Some(k) = seg.strip_prefix("k:") {
        let key: Value = serde_json::from_str(k).ok()?;
        let keys: Vec<String> = key.as_object()?.keys().cloned().collect();
        return list.iter().position(|i| item_key(i, &keys) == key);
    }
    if let Some(v) = seg.strip_prefix("v:") {
        let val: Value = serde_json::from_str(v).ok()?;
        return list.iter().position(|i| *i == val);
    }
    if let Some(n) = seg.strip_prefix("i:") {
        return n.parse().ok();
    }
    None
}

/// Removes the field at `path` (a map key or a list item); missing paths are ignored.
pub fn remove_at(obj: &mut Value, path: &FieldPath) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parent_path.elements() {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else {
            let idx = cur.as_array().and_then(|l| find_in_list(l, seg));
            match idx {
                Some(i) => cur.get_mut(i),
                None => None,
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(l) = cur.as_array_mut()
        && let Some(i) = find_in_list(l, last)
    {
        l.remove(i);
    }
}

/// Merges an apply configuration into a live object: maps merge, keyed lists merge by key,
/// set lists union, atomic lists and scalars are replaced.
pub fn apply_merge(live: &mut Value, cfg: &Value, shape: Shape<'_>, field: &str) {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => {
            for (k, cv) in c {
                match l.get_mut(k) {
                    Some(lv) => apply_merge(lv, cv, shape.child(k), k),
                    None => {
                        l.insert(k.clone(), cv.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(c)) => {
            let mut all = l.clone();
            all.extend(c.iter().cloned());
            match shape.list_kind(field, &all) {
                ListKind::Map(keys) if all.iter().all(Value::is_object) => {
                    for item in c {
                        let key = item_key(item, &keys);
                        match l.iter().position(|i| item_key(i, &keys) == key) {
                            Some(i) => apply_merge(&mut l[i], item, shape.items(), field),
                            None => l.push(item.clone()),
                        }
                    }
                }
                ListKind::Set => {
                    for item in c {
                        if !l.contains(item) {
                            l.push(item.clone());
                        }
                    }
                }
                _ => *l = c.clone(),
            }
        }
        (l, c) => *l = c.clone(),
    }
}

/// Reads `metadata.managedFields`.
pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    obj.at("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(parse_entry)
        .collect()
}

/// Writes `metadata.managedFields` (entries with no field are dropped).
pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(render_entry)
        .collect();
    put_managed(obj, list);
}

/// Sets `metadata.managedFields` to `list`, or removes it when `list` is empty.
fn put_managed(obj: &mut Value, list: Vec<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Renders a field set as a `FieldsV1` trie.
///
/// Built in one pass over the set in its order, in which a path's descendants follow it
/// together, grouped by their next element (see [`FieldPath`]): each node is made once, its
/// map from its children in order, instead of looking every path up again from the root
/// (those lookups' string comparisons were about a twentieth of the simulator's CPU in the
/// scale bench). `to_fields_v1_agrees_with_the_trie` checks it against [`Trie`].
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let paths: Vec<&[u8]> = set.iter().map(|p| p.0.as_bytes()).collect();
    fields_v1_node(&paths, 0)
}

/// The `FieldsV1` node of `paths`: sorted, and all equal to or under one node, whose path is
/// their first `at` bytes. A member leaf is `{}`; a member with children also has `"."`.
fn fields_v1_node(paths: &[&[u8]], at: usize) -> Value {
    const SEP: u8 = FieldPath::SEP as u8;
    let mut member = false;
    let mut children: Vec<(String, Value)> = Vec::new();
    // The next element starts after the separator, except at the root.
    let start = if at == 0 { 0 } else { at + 1 };
    let mut i = 0;
    while let Some(p) = paths.get(i) {
        if p.len() == at {
            member = true;
            i += 1;
            continue;
        }
        let end = p[start..]
            .iter()
            .position(|&b| b == SEP)
            .map_or(p.len(), |n| start + n);
        let element = &p[start..end];
        let group = paths[i..]
            .iter()
            .take_while(|q| {
                q.get(start..end) == Some(element) && matches!(q.get(end), None | Some(&SEP))
            })
            .count();
        children.push((
            String::from_utf8_lossy(element).into_owned(),
            fields_v1_node(&paths[i..i + group], end),
        ));
        i += group;
    }
    if member && !children.is_empty() {
        children.push((".".into(), Value::Object(Map::new())));
    }
    Value::Object(children.into_iter().collect())
}

/// Parses a `FieldsV1` trie into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        if m.is_empty() && !prefix.is_empty() {
            out.insert(prefix.clone());
            return;
        }
        for (k, child) in m {
            if k == "." {
                out.insert(prefix.clone());
                continue;
            }
            prefix.push("", k);
            rec(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut FieldPath::default(), &mut out);
    out
}

/// Renders a path as the API server does in conflict messages: `.spec.containers[name="a"].image`.
pub fn render_path(p: &FieldPath) -> String {
    let mut s = String::new();
    for seg in p.elements() {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let parts: Vec<String> = key
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = seg.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

/// What an apply needs besides the two objects.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// The applying manager (`?fieldManager=`).
    pub manager: &'a str,
    /// `?force=true`.
    pub force: bool,
    /// `apiVersion` of the request.
    pub api_version: &'a str,
    /// `status`, `scale` or `None`.
    pub subresource: Option<&'a str>,
    /// Now, RFC 3339.
    pub now: &'a str,
}

/// Server-side apply of `cfg` onto `live` (an empty object for create-on-apply). Returns the new
/// object with `managedFields` updated, or the conflicts.
///
/// Other managers' entries are read in their `FieldsV1` form where they are only looked up
/// (conflicts, shared ownership), and parsed and rendered again only when they lose a field: to
/// a forced conflict, or because it left the object. Only the parts of the object the apply
/// changed (see [`differing_parts`]) and those `cfg` sets are walked for that; elsewhere the
/// result has the same fields as `live`. Entries as the server writes them (every path of an entry is a field of
/// the object) come out as a whole-object computation would leave them.
///
/// # Errors
/// The list of conflicts when `force` is false and another manager owns a field of `cfg` with a
/// different value.
pub fn apply(
    live: &Value,
    cfg: &Value,
    shape: Shape<'_>,
    req: ApplyRequest<'_>,
) -> Result<Value, Vec<Conflict>> {
    let is_mine = |e: &Value| {
        e["manager"].as_str().unwrap_or_default() == req.manager
            && e["operation"].as_str().unwrap_or("Update") == "Apply"
            && e["subresource"].as_str() == req.subresource
    };
    let mut result = live.clone();
    // Taken out: the list is written back below, whatever it becomes.
    let raw = match result
        .pointer_mut("/metadata/managedFields")
        .map(Value::take)
    {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    // No entries at all (a create, as every first apply of an object is): no conflicts, no
    // dropped fields, and when the merge is `cfg` itself (nothing of the live object kept,
    // nothing of `cfg` merged away: no nulls, no repeated keys), the applier owns exactly
    // `cfg`'s fields. Built in one walk of `cfg` ([`fields_v1_of`]) instead of its field set,
    // the result's and their intersection; with the scale bench's creates these were about
    // an eighth of the simulator's CPU. `apply_create_same_as_full` checks it.
    let merged_early = raw.is_empty() && cfg.pointer("/metadata/managedFields").is_none();
    if merged_early {
        apply_merge(&mut result, cfg, shape, "");
        if result == *cfg {
            put_owning_all(&mut result, req, "Apply", fields_v1_of(cfg, shape));
            return Ok(result);
        }
    }
    let cfg_set = field_set(cfg, shape);
    let mut conflicts = Vec::new();
    // Fields of other managers' entries that a forced apply takes, by entry.
    let mut forced: Vec<Vec<&FieldPath>> = vec![Vec::new(); raw.len()];
    for (i, e) in raw.iter().enumerate() {
        if is_mine(e) {
            continue;
        }
        for p in &cfg_set {
            if trie_member(&e["fieldsV1"], p)
                && is_leaf(&cfg_set, p)
                && get_at(cfg, p) != get_at(live, p)
            {
                conflicts.push(Conflict {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    field: render_path(p),
                });
                forced[i].push(p);
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        return Err(conflicts);
    }
    // Other entries that lose a forced field are parsed now: the ownership checks below see
    // them without it.
    let mut losing: Vec<Option<ManagedEntry>> = raw
        .iter()
        .zip(&forced)
        .map(|(e, f)| {
            (!f.is_empty()).then(|| {
                let mut parsed = parse_entry(e);
                for p in f {
                    parsed.fields.remove(*p);
                }
                parsed
            })
        })
        .collect();
    let old_mine: FieldSet = raw
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| from_fields_v1(&e["fieldsV1"]))
        .collect();
    let mut dropped: Vec<&FieldPath> = old_mine.difference(&cfg_set).collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        let owned_by_other =
            raw.iter()
                .zip(&losing)
                .filter(|(e, _)| !is_mine(e))
                .any(|(e, parsed)| match parsed {
                    Some(parsed) => parsed
                        .fields
                        .range(p.clone()..)
                        .next()
                        .is_some_and(|q| q.starts_with(p)),
                    None => trie_has(&e["fieldsV1"], p),
                });
        if !owned_by_other {
            remove_at(&mut result, p);
        }
    }
    // With no entries nothing was dropped above, so the early merge is this one.
    if !merged_early {
        apply_merge(&mut result, cfg, shape, "");
    }
    let Some(dirty) = differing_parts(live, &result, false) else {
        return apply_full(live, cfg, shape, req);
    };
    // Walked: the changed parts, and those `cfg` sets (whose fields make the new entry).
    let walked: Vec<FieldPath> = dirty
        .iter()
        .cloned()
        .chain(owned_parts(cfg, shape).into_iter().map(|(path, ..)| path))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let under_walked = |p: &FieldPath| walked.iter().any(|d| p.starts_with(d));
    let result_sub = field_set_under(&result, shape, &walked);
    let mut out = Vec::with_capacity(raw.len() + 1);
    // The applier's stored entry, when it has exactly one: its `fieldsV1` is reused below if
    // this apply owns the same fields.
    let mut stored_mine = None;
    let mine_entries = raw.iter().filter(|e| is_mine(e)).count();
    for (e, parsed) in raw.into_iter().zip(losing.iter_mut()) {
        if is_mine(&e) {
            if mine_entries == 1 {
                stored_mine = Some(e);
            }
            continue;
        }
        let touched = dirty.iter().any(|d| trie_has(&e["fieldsV1"], d));
        if parsed.is_none() && !touched && has_members(&e) {
            out.push(e);
            continue;
        }
        let lost = parsed.is_some();
        let mut parsed = parsed.take().unwrap_or_else(|| parse_entry(&e));
        let before = parsed.fields.len();
        parsed
            .fields
            .retain(|p| !under_walked(p) || result_sub.contains(p));
        if parsed.fields.is_empty() {
            continue;
        }
        if lost || parsed.fields.len() != before {
            out.push(render_entry(&parsed));
        } else {
            out.push(e);
        }
    }
    // `cfg_set` lies under the parts `cfg` sets, all walked.
    let mut mine: FieldSet = cfg_set;
    mine.retain(|p| result_sub.contains(p));
    if !mine.is_empty() {
        let entry = ManagedEntry::written(req, "Apply", FieldSet::new());
        // Applying the same fields again (new values, or none): the stored trie, which the
        // server rendered from that same set, is what rendering would give.
        let same = stored_mine
            .as_mut()
            .filter(|_| mine == old_mine)
            .and_then(|e| e.get_mut("fieldsV1"))
            .map(Value::take);
        let fields_v1 = same.unwrap_or_else(|| to_fields_v1(&mine));
        out.push(render_entry_with(&entry, fields_v1));
    }
    put_managed(&mut result, out);
    Ok(result)
}

/// Whether `path` is a member of a `FieldsV1` trie: its node is a leaf (`{}`) or carries `.`.
fn trie_member(trie: &Value, path: &FieldPath) -> bool {
    !path.is_empty()
        && trie_node(trie, path)
            .and_then(Value::as_object)
            .is_some_and(|m| m.is_empty() || m.contains_key("."))
}

/// Whether a stored entry is an object whose `fieldsV1` has a member (an entry without one is
/// dropped, as [`write_managed`] drops it).
fn has_members(entry: &Value) -> bool {
    entry["fieldsV1"].as_object().is_some_and(|m| !m.is_empty())
}

/// Records a non-apply write by `manager`: fields whose value it changed move to its `Update`
/// entry; fields that no longer exist leave every entry.
///
/// Only the parts of the object that differ from `old` are walked (the top-level fields, and
/// the fields of `metadata`, whose values changed), and only the entries that own something
/// there (or the writer's own) are parsed and rendered again; the rest are kept as they are.
/// Outside those parts both objects have the same field set, so the result is that of
/// [`record_update_full`]. A create (no `old`) records one entry owning every field
/// ([`fields_v1_of`]).
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    shape: Shape<'_>,
    req: ApplyRequest<'_>,
) {
    let Some(old) = old else {
        // A create: the writer owns every field.
        let trie = fields_v1_of(new, shape);
        put_owning_all(new, req, "Update", trie);
        return;
    };
    record_changes(old, new, shape, req, false);
}

/// [`record_update`] for a write through the `status` subresource, whose object is the stored
/// one but for `status` and the server's metadata (`managedFields`, `resourceVersion`,
/// `generation`; see `api::merge_subresource`): only `status` is compared, not the spec and
/// metadata it copied (debug builds check that nothing else differs).
pub fn record_status_update(old: &Value, new: &mut Value, shape: Shape<'_>, req: ApplyRequest<'_>) {
    debug_assert!(
        same_but_status(old, new),
        "a status write changed more than status"
    );
    record_changes(old, new, shape, req, true);
}

/// [`record_status_update`] given only the stored object's `status` (`None` without one):
/// `new` is the stored object with its status replaced, which the object's other fields need
/// not be copied to tell.
pub fn record_status_write(
    old_status: Option<Value>,
    new: &mut Value,
    shape: Shape<'_>,
    req: ApplyRequest<'_>,
) {
    let mut old = Map::new();
    if let Some(status) = old_status {
        old.insert("status".into(), status);
    }
    record_changes(&Value::Object(old), new, shape, req, true);
}

/// Whether two objects are equal but for `status` and the server's metadata (for debug
/// checks).
fn same_but_status(a: &Value, b: &Value) -> bool {
    fn rest(v: &Value) -> Option<Vec<(&String, &Value)>> {
        v.as_object().map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                .collect()
        })
    }
    fn meta(v: &Value) -> Vec<(&String, &Value)> {
        v.get("metadata")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| !SERVER_METADATA.contains(&k.as_str()))
            .collect()
    }
    rest(a) == rest(b) && meta(a) == meta(b)
}

/// The incremental computation of [`record_update`] and [`record_status_update`].
fn record_changes(
    old: &Value,
    new: &mut Value,
    shape: Shape<'_>,
    req: ApplyRequest<'_>,
    status_only: bool,
) {
    let Some(dirty) = differing_parts(old, new, status_only) else {
        return record_update_full(Some(old), new, shape, req);
    };
    let (new_sub, changed) = match changes_under(old, new, shape, &dirty) {
        Some(found) => found,
        // A keyed list with two items under one key: as the whole-object computation sees it.
        None => {
            let new_sub = field_set_under(new, shape, &dirty);
            let changed = new_sub
                .iter()
                .filter(|p| {
                    let before = get_at(old, p);
                    before.is_none() || is_leaf(&new_sub, p) && before != get_at(new, p)
                })
                .cloned()
                .collect();
            (new_sub, changed)
        }
    };
    let is_writer = |e: &Value| {
        e["manager"].as_str().unwrap_or_default() == req.manager
            && e["operation"].as_str().unwrap_or("Update") == "Update"
            && e["subresource"].as_str() == req.subresource
    };
    // Taken out: the list is written back below, whatever it becomes.
    let raw = match new.pointer_mut("/metadata/managedFields").map(Value::take) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(raw.len() + 1);
    let mut writer_seen = false;
    for entry in raw {
        if !entry.is_object() {
            continue;
        }
        let writer = !writer_seen && is_writer(&entry);
        writer_seen |= writer;
        let touched = dirty.iter().any(|d| trie_has(&entry["fieldsV1"], d));
        if !writer && !touched {
            out.push(entry);
            continue;
        }
        let stamp = writer && !changed.is_empty();
        // Decided on the stored trie when the write neither adds a field to the entry nor
        // takes one from it (the common case of a status write with new values): the entry
        // is kept as stored, without parsing and rendering it again.
        let v1 = &entry["fieldsV1"];
        let adds_nothing = if writer {
            changed.iter().all(|p| trie_member(v1, p))
        } else {
            changed
                .iter()
                .all(|p| !trie_member(v1, p) || !is_leaf(&new_sub, p))
        };
        if adds_nothing
            && has_members(&entry)
            && dirty
                .iter()
                .all(|d| trie_all_under(v1, d, &mut |p| new_sub.contains(p)))
        {
            let mut entry = entry;
            if stamp && let Some(m) = entry.as_object_mut() {
                m.insert("time".into(), json!(req.now));
                m.insert("apiVersion".into(), json!(req.api_version));
            }
            out.push(entry);
            continue;
        }
        let mut e = parse_entry(&entry);
        let before = e.fields.len();
        if writer {
            if stamp {
                e.fields.extend(changed.iter().cloned());
                e.time = req.now.to_string();
                e.api_version = req.api_version.to_string();
            }
        } else {
            e.fields
                .retain(|p| !changed.contains(p) || !is_leaf(&new_sub, p));
        }
        let grown = e.fields.len();
        e.fields
            .retain(|p| !dirty.iter().any(|d| p.starts_with(d)) || new_sub.contains(p));
        if e.fields.is_empty() {
            continue;
        }
        // Fields are only added, then only removed: equal counts mean the same set, whose
        // stored `fieldsV1` is kept (the common case of a status write with new values).
        if before == grown && grown == e.fields.len() {
            let mut entry = entry;
            if stamp && let Some(m) = entry.as_object_mut() {
                m.insert("time".into(), json!(req.now));
                m.insert("apiVersion".into(), json!(req.api_version));
            }
            out.push(entry);
        } else {
            out.push(render_entry(&e));
        }
    }
    if !writer_seen && !changed.is_empty() {
        out.push(render_entry(&ManagedEntry::written(req, "Update", changed)));
    }
    put_managed(new, out);
}

/// What [`record_update`] records for a create (the writer owns every field), with the
/// `FieldsV1` of `new` given instead of computed: `fields_v1` must be
/// [`fields_v1_of`]`(new, shape)` (checked in debug builds), e.g. taken from an object of the
/// same fields created before it.
pub fn record_create_owning(
    new: &mut Value,
    shape: Shape<'_>,
    req: ApplyRequest<'_>,
    fields_v1: Value,
) {
    debug_assert_eq!(
        fields_v1,
        fields_v1_of(new, shape),
        "the given FieldsV1 is not that of the created object"
    );
    put_owning_all(new, req, "Update", fields_v1);
}

/// Sets the managedFields of `obj` to one entry of `req`'s manager with `operation` (`Apply`
/// or `Update`), owning the fields `trie` (no entry when it is empty): what a create records,
/// its writer owning every field.
fn put_owning_all(obj: &mut Value, req: ApplyRequest<'_>, operation: &str, trie: Value) {
    let list = match trie.as_object() {
        Some(m) if !m.is_empty() => {
            let entry = ManagedEntry::written(req, operation, FieldSet::new());
            vec![render_entry_with(&entry, trie)]
        }
        _ => Vec::new(),
    };
    put_managed(obj, list);
}

/// The parts of two objects whose values differ, as field paths: `[f:<field>]` for top-level
/// fields, `[f:metadata, f:<field>]` for fields of `metadata` that are not the server's.
/// `None` when either is not an object or has a `metadata` that is not one. With
/// `status_only` (a status write, whose other fields and metadata not the server's are the
/// stored ones), only `status` is compared.
fn differing_parts(old: &Value, new: &Value, status_only: bool) -> Option<Vec<FieldPath>> {
    let (o, n) = (old.as_object()?, new.as_object()?);
    let mut parts = Vec::new();
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for k in keys {
        if k == "apiVersion" || k == "kind" || status_only && k != "status" {
            continue;
        }
        if k == "metadata" {
            let empty = Map::new();
            let om = match o.get(k) {
                None => &empty,
                Some(m) => m.as_object()?,
            };
            let nm = match n.get(k) {
                None => &empty,
                Some(m) => m.as_object()?,
            };
            let meta_keys: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
            for mk in meta_keys {
                if !SERVER_METADATA.contains(&mk.as_str()) && om.get(mk) != nm.get(mk) {
                    parts.push(FieldPath::of(["f:metadata".to_string(), format!("f:{mk}")]));
                }
            }
        } else if o.get(k) != n.get(k) {
            parts.push(FieldPath::of([format!("f:{k}")]));
        }
    }
    Some(parts)
}

/// Where a part (see [`differing_parts`]: one or two `f:` elements) is in `obj`: its value if
/// present, its shape and its field name. `None` for any other path.
fn locate_part<'v, 's, 'p>(
    obj: &'v Value,
    shape: Shape<'s>,
    part: &'p FieldPath,
) -> Option<(Option<&'v Value>, Shape<'s>, &'p str)> {
    let mut fields = part.elements().map(|s| s.strip_prefix("f:"));
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Some(k)), None, None) => Some((obj.get(k), shape.child(k), k)),
        (Some(Some(m)), Some(Some(k)), None) => Some((
            obj.get(m).and_then(|v| v.get(k)),
            shape.child(m).child(k),
            k,
        )),
        _ => None,
    }
}

/// The field set of `obj` below the given parts (see [`differing_parts`]), as [`field_set`]
/// walks them.
fn field_set_under(obj: &Value, shape: Shape<'_>, parts: &[FieldPath]) -> FieldSet {
    let mut out = FieldSet::new();
    for part in parts {
        let Some((value, shape, field)) = locate_part(obj, shape, part) else {
            continue;
        };
        if let Some(v) = value {
            walk(v, shape, field, &mut part.clone(), &mut |p| {
                out.insert(p.clone());
            });
        }
    }
    out
}

/// The field set of `new` below the given parts (as [`field_set_under`]), and its members the
/// write changed: those `old` lacks, and leaves whose value differs (as [`record_update_full`]
/// decides them with [`get_at`] and [`is_leaf`]). One walk of both objects side by side, where
/// looking each member up from the root would parse every list key again. `None` when a keyed
/// list of `new` has two items under one key, where a path names only the first.
fn changes_under(
    old: &Value,
    new: &Value,
    shape: Shape<'_>,
    parts: &[FieldPath],
) -> Option<(FieldSet, FieldSet)> {
    let mut all = FieldSet::new();
    let mut changed = FieldSet::new();
    for part in parts {
        let Some((value, part_shape, field)) = locate_part(new, shape, part) else {
            continue;
        };
        let before = locate_part(old, shape, part).and_then(|(before, ..)| before);
        if let Some(v) = value {
            let mut member = |p: &FieldPath, is_changed: bool| {
                if is_changed {
                    changed.insert(p.clone());
                }
                all.insert(p.clone());
            };
            walk_changes(v, before, part_shape, field, &mut part.clone(), &mut member)?;
        }
    }
    Some((all, changed))
}

/// Walks `new` beside `old`, the old object's value at the same path (if any), and passes each
/// member of `new`'s field set (leaves, keyed list items and set items) with whether it
/// changed. `None` on a keyed list with a repeated key when there is an old value to compare
/// with (a path names only the first item with a key).
fn walk_changes(
    new: &Value,
    old: Option<&Value>,
    shape: Shape<'_>,
    field: &str,
    prefix: &mut FieldPath,
    member: &mut impl FnMut(&FieldPath, bool),
) -> Option<()> {
    match new {
        Value::Object(m) if !m.is_empty() => {
            for (k, cv) in m {
                prefix.push("f:", k);
                walk_changes(
                    cv,
                    old.and_then(|o| o.get(k)),
                    shape.child(k),
                    k,
                    prefix,
                    member,
                )?;
                prefix.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match shape.list_kind(field, items) {
            ListKind::Map(keys) if items.iter().all(Value::is_object) => {
                let old_items = old.and_then(Value::as_array);
                let mut seen = BTreeSet::new();
                for item in items {
                    let key = item_key(item, &keys);
                    prefix.push_json("k:", &key);
                    let before = match old_items {
                        Some(list) => {
                            // Compared with `old`, a repeated key would name only its first item.
                            if !seen.insert(prefix.last().unwrap_or_default().to_string()) {
                                return None;
                            }
                            // As `find_in_list` finds a path's item: by the fields its key names.
                            let named: Vec<String> = key
                                .as_object()
                                .map(|k| k.keys().cloned().collect())
                                .unwrap_or_default();
                            list.iter().find(|i| item_key(i, &named) == key)
                        }
                        None => None,
                    };
                    // An item with fields has members below it: not a leaf.
                    let leaf = item.as_object().is_none_or(Map::is_empty);
                    member(prefix, before.is_none() || leaf && before != Some(item));
                    walk_changes(item, before, shape.items(), field, prefix, member)?;
                    prefix.pop();
                }
            }
            ListKind::Set => {
                let old_items = old.and_then(Value::as_array);
                for item in items {
                    prefix.push_json("v:", item);
                    member(prefix, !old_items.is_some_and(|l| l.contains(item)));
                    prefix.pop();
                }
            }
            _ => member(prefix, old != Some(new)),
        },
        _ => member(prefix, old != Some(new)),
    }
    Some(())
}

/// Whether every member of a `FieldsV1` trie at or below `part` (as [`from_fields_v1`] reads
/// them) passes `keep`; true when the trie has no node there.
fn trie_all_under(
    trie: &Value,
    part: &FieldPath,
    keep: &mut impl FnMut(&FieldPath) -> bool,
) -> bool {
    fn rec(v: &Value, prefix: &mut FieldPath, keep: &mut impl FnMut(&FieldPath) -> bool) -> bool {
        let Some(m) = v.as_object() else {
            return true;
        };
        if m.is_empty() {
            return prefix.is_empty() || keep(prefix);
        }
        for (k, child) in m {
            let ok = if k == "." {
                keep(prefix)
            } else {
                prefix.push("", k);
                let ok = rec(child, prefix, keep);
                prefix.pop();
                ok
            };
            if !ok {
                return false;
            }
        }
        true
    }
    match trie_node(trie, part) {
        Some(node) => rec(node, &mut part.clone(), keep),
        None => true,
    }
}

/// Whether a `FieldsV1` trie has a node at `path`.
fn trie_has(trie: &Value, path: &FieldPath) -> bool {
    trie_node(trie, path).is_some()
}

/// The node of a `FieldsV1` trie at `path`, if any.
fn trie_node<'t>(trie: &'t Value, path: &FieldPath) -> Option<&'t Value> {
    path.elements().try_fold(trie, |node, seg| node.get(seg))
}

/// One `managedFields` entry parsed (defaults for what is missing).
fn parse_entry(e: &Value) -> ManagedEntry {
    ManagedEntry {
        manager: e["manager"].as_str().unwrap_or_default().to_string(),
        operation: e["operation"].as_str().unwrap_or("Update").to_string(),
        api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
        time: e["time"].as_str().unwrap_or_default().to_string(),
        subresource: e["subresource"].as_str().map(str::to_string),
        fields: from_fields_v1(&e["fieldsV1"]),
    }
}

/// One `managedFields` entry as stored.
fn render_entry(e: &ManagedEntry) -> Value {
    render_entry_with(e, to_fields_v1(&e.fields))
}

/// One `managedFields` entry as stored, with its `fieldsV1` already rendered (`e.fields` is
/// not read).
///
/// The map is built by hand: `json!` would serialize `fields_v1` into a copy of itself.
fn render_entry_with(e: &ManagedEntry, fields_v1: Value) -> Value {
    let text = |s: &str| Value::String(s.to_string());
    let mut m = Map::new();
    m.insert("manager".into(), text(&e.manager));
    m.insert("operation".into(), text(&e.operation));
    m.insert("apiVersion".into(), text(&e.api_version));
    m.insert("time".into(), text(&e.time));
    m.insert("fieldsType".into(), text("FieldsV1"));
    m.insert("fieldsV1".into(), fields_v1);
    if let Some(s) = &e.subresource {
        m.insert("subresource".into(), text(s));
    }
    Value::Object(m)
}

/// [`record_update`] computed over the whole object: field sets of all of it, every entry
/// parsed and rendered again. Used when the objects are not both objects, and by the tests as
/// the reference for creates and updates.
fn record_update_full(
    old: Option<&Value>,
    new: &mut Value,
    shape: Shape<'_>,
    req: ApplyRequest<'_>,
) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_set = field_set(new, shape);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| match old {
            None => true,
            Some(o) => {
                let before = get_at(o, p);
                before.is_none() || is_leaf(&new_set, p) && before != get_at(new, p)
            }
        })
        .cloned()
        .collect();
    if changed.is_empty() && old.is_some() {
        prune_entries(&mut entries, &new_set);
        write_managed(new, &entries);
        return;
    }
    for e in entries.iter_mut() {
        if !(e.manager == req.manager
            && e.operation == "Update"
            && e.subresource.as_deref() == req.subresource)
        {
            e.fields
                .retain(|p| !changed.contains(p) || !is_leaf(&new_set, p));
        }
    }
    match entries.iter_mut().find(|e| {
        e.manager == req.manager
            && e.operation == "Update"
            && e.subresource.as_deref() == req.subresource
    }) {
        Some(e) => {
            e.fields.extend(changed);
            e.time = req.now.to_string();
            e.api_version = req.api_version.to_string();
        }
        None => entries.push(ManagedEntry::written(req, "Update", changed)),
    }
    // `new` is unchanged since `new_set` was taken (only `entries` changed).
    prune_entries(&mut entries, &new_set);
    write_managed(new, &entries);
}

/// [`apply`] computed over the whole object: every entry parsed and rendered again, the field
/// set of all of the result. Used when `live` or its `metadata` is not an object, and by the
/// tests as the reference.
fn apply_full(
    live: &Value,
    cfg: &Value,
    shape: Shape<'_>,
    req: ApplyRequest<'_>,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = read_managed(live);
    let cfg_set = field_set(cfg, shape);
    let is_mine = |e: &ManagedEntry| {
        e.manager == req.manager
            && e.operation == "Apply"
            && e.subresource.as_deref() == req.subresource
    };
    let mut conflicts = Vec::new();
    let mut forced: Vec<(usize, FieldPath)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if is_mine(e) {
            continue;
        }
        for p in e.fields.intersection(&cfg_set) {
            if is_leaf(&cfg_set, p) && get_at(cfg, p) != get_at(live, p) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    field: render_path(p),
                });
                forced.push((i, p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        return Err(conflicts);
    }
    for (i, p) in forced {
        entries[i].fields.remove(&p);
    }
    let old_mine: FieldSet = entries
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut result = live.clone();
    let mut dropped: Vec<&FieldPath> = old_mine.difference(&cfg_set).collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        let owned_by_other = entries.iter().filter(|e| !is_mine(e)).any(|e| {
            e.fields
                .range(p.clone()..)
                .next()
                .is_some_and(|q| q.starts_with(p))
        });
        if !owned_by_other {
            remove_at(&mut result, p);
        }
    }
    apply_merge(&mut result, cfg, shape, "");
    entries.retain(|e| !is_mine(e));
    entries.push(ManagedEntry::written(req, "Apply", cfg_set));
    prune_entries(&mut entries, &field_set(&result, shape));
    write_managed(&mut result, &entries);
    Ok(result)
}

/// Drops from every entry the fields not `present` in the object, then the empty entries.
fn prune_entries(entries: &mut Vec<ManagedEntry>, present: &FieldSet) {
    for e in entries.iter_mut() {
        e.fields.retain(|p| present.contains(p));
    }
    entries.retain(|e| !e.fields.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            force,
            api_version: "apps/v1",
            subresource: None,
            now: "2026-01-01T00:00:00Z",
        }
    }

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let set = field_set(&obj, Shape::Builtin);
        assert!(set.contains(&FieldPath::of(["f:metadata", "f:labels", "f:a"])));
        assert!(set.contains(&FieldPath::of([
            "f:spec",
            "f:containers",
            "k:{\"name\":\"c\"}"
        ])));
        assert!(!set.contains(&FieldPath::of(["f:metadata", "f:name"])));
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."],
            json!({})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn a_field_path_orders_and_nests_as_its_elements() {
        let paths = [
            vec![],
            vec!["f:a"],
            vec!["f:a", "f:b"],
            vec!["f:a", "k:{\"x\":1}", "f:c"],
            vec!["f:a-b"],
            vec!["f:ab"],
            vec!["f:ab", "f:"],
            vec!["v:\"a b\""],
        ];
        for x in &paths {
            let px = FieldPath::of(x);
            assert_eq!(px.elements().collect::<Vec<_>>(), *x);
            assert_eq!(px.len(), x.len());
            for y in &paths {
                let py = FieldPath::of(y);
                assert_eq!(px.cmp(&py), x.cmp(y), "{x:?} {y:?}");
                assert_eq!(px.starts_with(&py), x.starts_with(y), "{x:?} {y:?}");
            }
            let mut popped = px.clone();
            popped.pop();
            assert_eq!(
                popped,
                FieldPath::of(x.iter().take(x.len().saturating_sub(1)))
            );
            match px.split_last() {
                Some((last, before)) => {
                    assert_eq!(Some(&last), x.last());
                    assert_eq!(before, popped);
                }
                None => assert!(x.is_empty()),
            }
        }
    }

    #[test]
    fn apply_conflicts_unless_forced() {
        let live = json!({"metadata": {"name": "x"}, "spec": {"replicas": 3}});
        let a = apply(
            &live,
            &json!({"spec": {"replicas": 3}}),
            Shape::Builtin,
            req("a", false),
        )
        .unwrap();
        let e = apply(
            &a,
            &json!({"spec": {"replicas": 5}}),
            Shape::Builtin,
            req("b", false),
        )
        .unwrap_err();
        assert_eq!(
            e,
            vec![Conflict {
                manager: "a".into(),
                field: ".spec.replicas".into()
            }]
        );
        // Same value: shared ownership, no conflict.
        assert!(
            apply(
                &a,
                &json!({"spec": {"replicas": 3}}),
                Shape::Builtin,
                req("b", false)
            )
            .is_ok()
        );
        let forced = apply(
            &a,
            &json!({"spec": {"replicas": 5}}),
            Shape::Builtin,
            req("b", true),
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        let managers: Vec<String> = read_managed(&forced)
            .into_iter()
            .map(|e| e.manager)
            .collect();
        assert_eq!(managers, vec!["b".to_string()]);
    }

    #[test]
    fn apply_removes_fields_the_manager_dropped() {
        let live = json!({"metadata": {"name": "x"}});
        let one = apply(
            &live,
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            Shape::Builtin,
            req("m", false),
        )
        .unwrap();
        let two = apply(
            &one,
            &json!({"metadata": {"labels": {"a": "1"}}}),
            Shape::Builtin,
            req("m", false),
        )
        .unwrap();
        assert_eq!(two["metadata"]["labels"], json!({"a": "1"}));
    }

    #[test]
    fn apply_keeps_fields_owned_by_others() {
        let live = json!({"metadata": {"name": "x"}});
        let one = apply(
            &live,
            &json!({"metadata": {"labels": {"a": "1"}}}),
            Shape::Builtin,
            req("m", false),
        )
        .unwrap();
        let mut two = one.clone();
        two["metadata"]["labels"]["b"] = json!("2");
        record_update(Some(&one), &mut two, Shape::Builtin, req("kubectl", false));
        let three = apply(
            &two,
            &json!({"metadata": {"labels": {}}}),
            Shape::Builtin,
            req("m", false),
        )
        .unwrap();
        assert_eq!(three["metadata"]["labels"], json!({"b": "2"}));
    }

    #[test]
    fn keyed_list_items_merge() {
        let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}]}});
        let one = apply(
            &live,
            &json!({"spec": {"containers": [{"name": "b", "image": "2"}]}}),
            Shape::Builtin,
            req("m", false),
        )
        .unwrap();
        assert_eq!(one["spec"]["containers"].as_array().map(Vec::len), Some(2));
    }

    mod incremental {
        //! `record_update` (incremental) against `record_update_full` (whole object) on
        //! sequences of writes to a pod-like object by several managers, to the main resource
        //! and to `status`.
        use super::super::*;
        use proptest::prelude::*;

        fn base() -> Value {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "1",
                    "labels": {"app": "x"}},
                "spec": {"containers": [
                    {"name": "fe", "image": "fe:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "s:1"}
                ], "nodeName": "n"},
                "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
            })
        }

        /// One edit: (which part, a small integer choosing the change).
        fn edit(obj: &mut Value, part: u8, n: u8) {
            let v = json!(format!("v{n}"));
            match part % 12 {
                0 => {
                    obj["status"]["phase"] = json!(["Pending", "Running", "Failed"][n as usize % 3])
                }
                1 => {
                    obj["status"]["conditions"] = json!([{"type": "Ready", "status": if n.is_multiple_of(2) { "True" } else { "False" }}, {"type": "Scheduled", "status": "True"}])
                }
                2 => obj["status"]["podIP"] = v,
                3 => obj["spec"]["containers"][0]["image"] = v,
                4 => {
                    obj["spec"]["containers"][0]["env"] =
                        json!([{"name": format!("E{}", n % 3), "value": "x"}])
                }
                5 => obj["metadata"]["labels"][format!("l{}", n % 3)] = v,
                6 => {
                    if let Some(m) = obj["metadata"]["labels"].as_object_mut() {
                        m.remove("app");
                    }
                }
                7 => {
                    if let Some(m) = obj["status"].as_object_mut() {
                        m.remove("podIP");
                    }
                }
                8 => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
                // A set list and an atomic list.
                9 => obj["metadata"]["finalizers"] = json!([format!("f{}", n % 2), "g"]),
                // Two items under one key of a keyed list (invalid, but a client may send it).
                10 => {
                    obj["spec"]["containers"][0]["env"] =
                        json!([{"name": "D", "value": "1"}, {"name": "D", "value": v}])
                }
                _ => obj["spec"]["containers"][1]["command"] = json!(["run", v]),
            }
        }

        /// One field of an apply configuration: (which field, a small integer choosing the value).
        fn config_edit(cfg: &mut Value, part: u8, n: u8) {
            let v = json!(format!("v{n}"));
            match part % 9 {
                0 => cfg["status"]["phase"] = json!(["Pending", "Running"][n as usize % 2]),
                1 => {
                    cfg["status"]["conditions"] = json!([{"type": "Ready", "status": if n.is_multiple_of(2) { "True" } else { "False" }}])
                }
                2 => cfg["spec"]["containers"] = json!([{"name": "fe", "image": v}]),
                3 => {
                    cfg["spec"]["containers"] = json!([{"name": "fe", "env": [{"name": format!("E{}", n % 3), "value": "x"}]}])
                }
                4 => cfg["metadata"]["labels"][format!("l{}", n % 3)] = v,
                5 => cfg["metadata"]["labels"]["app"] = json!("x"),
                6 => cfg["spec"]["nodeName"] = v,
                7 => cfg["metadata"]["finalizers"] = json!([format!("f{}", n % 2), "g"]),
                _ => cfg["spec"]["containers"] = json!([{"name": "side", "command": ["run", v]}]),
            }
        }

        proptest! {
            /// The one-pass `FieldsV1` is the trie's, path by path, on sets whose element
            /// names are prefixes of one another (`f:a`, `f:ab`, `f:a-b`) and sort around the
            /// separator, with members inside members and the root itself.
            #[test]
            fn to_fields_v1_agrees_with_the_trie(paths in prop::collection::btree_set(prop::collection::vec(prop::sample::select(vec!["f:a", "f:ab", "f:a-b", "f:b", "k:{\"n\":\"é\"}", "v:1"]), 0..5), 0..24)) {
                let set: FieldSet = paths.iter().map(FieldPath::of).collect();
                let mut trie = Trie::default();
                for p in &set {
                    trie.insert(p);
                }
                prop_assert_eq!(to_fields_v1(&set), trie.into_fields_v1());
            }

            /// A create's `FieldsV1` built straight into maps is the trie's, and it gives up
            /// (for the trie) exactly when a keyed list has two items under one key.
            #[test]
            fn direct_same_as_trie(edits in prop::collection::vec((0u8..12, 0u8..6), 0..10)) {
                let mut obj = base();
                for (part, n) in edits {
                    edit(&mut obj, part, n);
                }
                let by_trie = fields_v1_by_trie(&obj, Shape::Builtin);
                let repeated = obj["spec"]["containers"].as_array().into_iter().flatten().any(|c| {
                    let names: Vec<String> = c["env"].as_array().into_iter().flatten().map(|e| e["name"].to_string()).collect();
                    names.iter().collect::<std::collections::BTreeSet<_>>().len() != names.len()
                });
                match direct_fields_v1(&obj, Shape::Builtin) {
                    Some(direct) => {
                        prop_assert!(!repeated);
                        prop_assert_eq!(direct, by_trie);
                    }
                    None => prop_assert!(repeated),
                }
            }

            /// An apply onto an object without entries (a create) gives what `apply_full`
            /// gives, whether the applied configuration is merged whole (the shortcut) or not
            /// (kept live fields, repeated keys).
            #[test]
            fn apply_create_same_as_full(edits in prop::collection::vec((0u8..12, 0u8..6), 0..6), keep in any::<bool>()) {
                let mut cfg = base();
                for (part, n) in edits {
                    edit(&mut cfg, part, n);
                }
                // The API server's skeleton of an absent object, or one with a field of its own.
                let mut live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}});
                if keep {
                    live["spec"] = json!({"hostname": "h"});
                }
                let req = ApplyRequest { manager: "a", force: false, api_version: "v1", subresource: None, now: "t0" };
                prop_assert_eq!(apply(&live, &cfg, Shape::Builtin, req), apply_full(&live, &cfg, Shape::Builtin, req));
            }

            /// A create's entry, built in one walk, is the whole-object computation's.
            #[test]
            fn create_same_as_full(edits in prop::collection::vec((0u8..12, 0u8..6), 0..10)) {
                let mut obj = base();
                for (part, n) in edits {
                    edit(&mut obj, part, n);
                }
                let req = ApplyRequest { manager: "a", force: false, api_version: "v1", subresource: None, now: "t0" };
                let (mut fast, mut full) = (obj.clone(), obj);
                record_update(None, &mut fast, Shape::Builtin, req);
                record_update_full(None, &mut full, Shape::Builtin, req);
                prop_assert_eq!(&fast, &full);
            }

            #[test]
            fn same_as_full(writes in prop::collection::vec((0u8..3, any::<bool>(), prop::collection::vec((0u8..12, 0u8..6), 1..4)), 1..8)) {
                let managers = ["a", "b", "kubelet"];
                let mut created = base();
                let create = ApplyRequest { manager: "a", force: false, api_version: "v1", subresource: None, now: "t0" };
                record_update_full(None, &mut created, Shape::Builtin, create);
                let mut current = created;
                for (i, (m, status, edits)) in writes.into_iter().enumerate() {
                    let mut next = current.clone();
                    for (part, n) in edits {
                        edit(&mut next, part, n);
                    }
                    let now = format!("t{}", i + 1);
                    let req = ApplyRequest {
                        manager: managers[m as usize],
                        force: false,
                        api_version: "v1",
                        subresource: status.then_some("status"),
                        now: &now,
                    };
                    if status {
                        // As the API server makes a status write: the stored object with the
                        // written status.
                        let mut written = current.clone();
                        match next.get("status") {
                            Some(st) => written["status"] = st.clone(),
                            None => {
                                if let Some(m) = written.as_object_mut() {
                                    m.remove("status");
                                }
                            }
                        }
                        let (mut fast, mut full) = (written.clone(), written.clone());
                        record_status_update(&current, &mut fast, Shape::Builtin, req);
                        record_update_full(Some(&current), &mut full, Shape::Builtin, req);
                        prop_assert_eq!(&fast, &full);
                        let mut given_status = written;
                        record_status_write(current.get("status").cloned(), &mut given_status, Shape::Builtin, req);
                        prop_assert_eq!(&given_status, &full);
                    }
                    let (mut fast, mut full) = (next.clone(), next);
                    record_update(Some(&current), &mut fast, Shape::Builtin, req);
                    record_update_full(Some(&current), &mut full, Shape::Builtin, req);
                    prop_assert_eq!(&fast, &full);
                    current = fast;
                }
            }

            /// `apply` against `apply_full` on sequences of applies (several managers, forced
            /// or not, to the main resource and to `status`) mixed with updates.
            #[test]
            fn apply_same_as_full(steps in prop::collection::vec((0u8..3, 0u8..3, any::<bool>(), any::<bool>(), prop::collection::vec((0u8..9, 0u8..6), 0..4)), 1..10)) {
                let managers = ["a", "b", "kubelet"];
                let mut current = base();
                let create = ApplyRequest { manager: "a", force: false, api_version: "v1", subresource: None, now: "t0" };
                record_update_full(None, &mut current, Shape::Builtin, create);
                for (i, (kind, m, force, status, edits)) in steps.into_iter().enumerate() {
                    let now = format!("t{}", i + 1);
                    let req = ApplyRequest {
                        manager: managers[m as usize],
                        force,
                        api_version: "v1",
                        subresource: status.then_some("status"),
                        now: &now,
                    };
                    if kind == 2 {
                        let mut next = current.clone();
                        for (part, n) in edits {
                            edit(&mut next, part, n);
                        }
                        record_update_full(Some(&current), &mut next, Shape::Builtin, req);
                        current = next;
                        continue;
                    }
                    let mut cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}});
                    for (part, n) in edits {
                        config_edit(&mut cfg, part, n);
                    }
                    let fast = apply(&current, &cfg, Shape::Builtin, req);
                    let full = apply_full(&current, &cfg, Shape::Builtin, req);
                    prop_assert_eq!(&fast, &full);
                    if let Ok(next) = fast {
                        current = next;
                    }
                }
            }
        }
    }
}
