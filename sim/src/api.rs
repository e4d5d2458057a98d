//! The API server's verbs on the store: get, list, create, update, patch, delete, with the
//! server-owned metadata (uid, creationTimestamp, resourceVersion, generation, managedFields),
//! status and scale subresources, finalizers and CRD registration.
//!
//! Behaviour from the Kubernetes docs "API Concepts" (verbs, resource versions, `limit` and
//! `continue`, patch types, "Server-Side Apply", "Finalizers", "Garbage Collection"), and the
//! CRD docs for status and scale subresources and generation semantics.

use crate::jsonpath::JsonPath;
use serde_json::{Map, Value, json};
use std::sync::Arc;

use crate::clock::SimClock;
use crate::defaults::{apply_defaults, initial_status, initial_status_kept};
use crate::errors::{ApiError, Cause};
use crate::fields::{self, ApplyRequest};
use crate::listtypes::Shape;
use crate::patch;
use crate::resources::ResourceType;
use crate::schema;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Store, obj_key};

/// Which object (or collection) a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource type.
    pub rt: ResourceType,
    /// Namespace from the path (`None` for cluster-scoped or all-namespaces requests).
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// `status` or `scale`.
    pub subresource: Option<String>,
}

impl Target {
    /// A target for one named object of `rt`.
    pub fn object(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Target {
        Target {
            rt: rt.clone(),
            namespace: if rt.namespaced {
                namespace.map(str::to_string)
            } else {
                None
            },
            name: Some(name.to_string()),
            subresource: None,
        }
    }

    /// The namespace, `""` for a cluster-scoped target.
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    /// The object's name, `""` for a collection.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    fn not_found(&self) -> ApiError {
        ApiError::NotFound {
            resource: self.rt.qualified(),
            name: self.name().to_string(),
        }
    }
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// Field manager (`?fieldManager=`, or derived from the user agent).
    pub manager: String,
    /// `?force=true` (apply only).
    pub force: bool,
    /// `?dryRun=All`: validate and answer, but do not store.
    pub dry_run: bool,
    /// `?fieldValidation=Strict`: unknown fields of a custom resource are an error (400)
    /// instead of being pruned silently.
    pub strict: bool,
}

/// Options of a delete (`DeleteOptions` body and query).
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_rv: Option<String>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `?dryRun=All`.
    pub dry_run: bool,
}

/// Query of a list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `?labelSelector=`.
    pub labels: LabelSelector,
    /// `?fieldSelector=`.
    pub fields: FieldSelector,
    /// `?limit=` (0 = no limit).
    pub limit: usize,
    /// `?continue=` token from a previous page.
    pub continue_token: Option<String>,
}

/// Result of a write.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// HTTP code (200, 201 or 202).
    pub code: u16,
    /// The stored object after the write, shared with the store (for audit and for
    /// controllers; the response body is [`Outcome::object`]).
    pub stored: Arc<Value>,
    /// Whether `spec.template` changed.
    pub template_changed: bool,
    /// `apiVersion` and `kind` of the response body.
    api_version: String,
    kind: String,
    /// The response body when it is not the stored object (a `Scale`).
    body: Option<Value>,
}

impl Outcome {
    fn new(rt: &ResourceType, code: u16, stored: Arc<Value>, template_changed: bool) -> Outcome {
        Outcome {
            code,
            stored,
            template_changed,
            api_version: rt.api_version(),
            kind: rt.kind.clone(),
            body: None,
        }
    }

    /// The response body: the stored object with its `apiVersion` and `kind`, or a `Scale`.
    /// A copy; callers that only read the result use [`Outcome::stored`], and the server
    /// answers with [`Outcome::to_json`].
    pub fn object(&self) -> Value {
        match &self.body {
            Some(b) => b.clone(),
            None => typed(Value::clone(&self.stored), &self.api_version, &self.kind),
        }
    }

    /// The response body as JSON: the same bytes as `serde_json::to_vec(&self.object())`,
    /// written from the stored object in place (copying it was about 2% of the simulator's
    /// CPU at 1,000 clusters in the scale bench).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a `Value` to memory does not fail (its map keys are strings).
        match (&self.body, self.stored.as_object()) {
            (None, Some(object)) => serde_json::to_vec(&Typed {
                api_version: &self.api_version,
                kind: &self.kind,
                object,
            }),
            _ => serde_json::to_vec(&self.object()),
        }
        .unwrap_or_default()
    }
}

/// A stored object as the API answers it: with its type's `apiVersion` and `kind`, serialized
/// from the store's copy (keys in the order `serde_json` gives a map: sorted, as `typed`
/// leaves them), so that a response or a watch event costs no copy of the object.
pub struct Typed<'a> {
    /// The served `apiVersion`.
    pub api_version: &'a str,
    /// The type's `kind`.
    pub kind: &'a str,
    /// The stored object (its own `apiVersion` and `kind`, if any, are left out).
    pub object: &'a Map<String, Value>,
}

impl serde::Serialize for Typed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let own = self
            .object
            .keys()
            .filter(|k| !matches!(k.as_str(), "apiVersion" | "kind"))
            .count();
        let mut map = serializer.serialize_map(Some(own + 2))?;
        let mut typed = [("apiVersion", self.api_version), ("kind", self.kind)]
            .into_iter()
            .peekable();
        for (k, v) in self.object {
            if matches!(k.as_str(), "apiVersion" | "kind") {
                continue;
            }
            while let Some((tk, tv)) = typed.next_if(|(tk, _)| *tk < k.as_str()) {
                map.serialize_entry(tk, tv)?;
            }
            map.serialize_entry(k, v)?;
        }
        for (tk, tv) in typed {
            map.serialize_entry(tk, tv)?;
        }
        map.end()
    }
}

fn now(clock: &SimClock) -> String {
    clock.now_rfc3339()
}

fn shape(rt: &ResourceType) -> Shape<'_> {
    Shape::root(rt.schema.as_deref(), rt.is_custom())
}

fn with_version(rt: &ResourceType, obj: Value) -> Value {
    typed(obj, &rt.api_version(), &rt.kind)
}

/// `obj` with `apiVersion` and `kind` set, as the API server answers.
fn typed(mut obj: Value, api_version: &str, kind: &str) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(kind));
    }
    obj
}

/// GET of one object (or its `/status` or `/scale`).
///
/// # Errors
/// [`ApiError::NotFound`] when absent.
pub fn get(store: &Store, t: &Target) -> Result<Value, ApiError> {
    let obj = store
        .get(&t.rt.group, &t.rt.plural, t.ns(), t.name())
        .ok_or_else(|| t.not_found())?;
    if t.subresource.as_deref() == Some("scale") {
        return scale_of(&t.rt, obj);
    }
    Ok(with_version(&t.rt, obj.clone()))
}

/// LIST with selectors and pagination. The continue token is `<rv>/<namespace>/<name>` of the
/// last returned item.
///
/// # Errors
/// [`ApiError::BadRequest`] for a malformed continue token.
pub fn list(store: &Store, t: &Target, q: &ListQuery) -> Result<Value, ApiError> {
    let after: Option<(String, String)> = match &q.continue_token {
        None => None,
        Some(tok) => {
            let mut parts = tok.splitn(3, '/');
            let _rv = parts.next();
            match (parts.next(), parts.next()) {
                (Some(ns), Some(name)) => Some((ns.to_string(), name.to_string())),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "invalid continue token: {tok}"
                    )));
                }
            }
        }
    };
    let rv = store.current_rv();
    let mut items = Vec::new();
    let mut next = None;
    for obj in store.list(&t.rt.group, &t.rt.plural, t.namespace.as_deref()) {
        let key = obj_key(obj);
        if after.as_ref().is_some_and(|a| key <= *a) {
            continue;
        }
        if !q.labels.matches_object(obj) || !q.fields.matches(obj) {
            continue;
        }
        if q.limit > 0 && items.len() == q.limit {
            if let Some(last) = items.last().map(obj_key) {
                next = Some(format!("{rv}/{}/{}", last.0, last.1));
            }
            break;
        }
        items.push(with_version(&t.rt, obj.clone()));
    }
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let (Some(n), Some(m)) = (next, metadata.as_object_mut()) {
        m.insert("continue".into(), json!(n));
    }
    Ok(json!({
        "apiVersion": t.rt.api_version(),
        "kind": format!("{}List", t.rt.kind),
        "metadata": metadata,
        "items": items,
    }))
}

fn check_identity(t: &Target, body: &mut Value) -> Result<(), ApiError> {
    let Some(m) = body.as_object_mut() else {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    if let Some(kind) = m.get("kind").and_then(Value::as_str)
        && kind != t.rt.kind
        && !(t.subresource.as_deref() == Some("scale") && kind == "Scale")
    {
        return Err(ApiError::BadRequest(format!(
            "the object provided is unrecognized (must be of type {}): kind {kind}",
            t.rt.kind
        )));
    }
    m.insert("apiVersion".into(), json!(t.rt.api_version()));
    m.insert("kind".into(), json!(t.rt.kind));
    let meta = m.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Err(ApiError::BadRequest("metadata must be an object".into()));
    };
    if t.rt.namespaced {
        match (meta.get("namespace").and_then(Value::as_str), &t.namespace) {
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            (_, Some(b)) => {
                meta.insert("namespace".into(), json!(b));
            }
            (_, None) => {}
        }
    } else {
        meta.remove("namespace");
    }
    if let (Some(n), Some(want)) = (meta.get("name").and_then(Value::as_str), &t.name)
        && n != want
    {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({n}) does not match the name on the URL ({want})"
        )));
    }
    if let Some(want) = &t.name {
        meta.insert("name".into(), json!(want));
    }
    Ok(())
}

/// CREATE (POST). Also used by controllers.
///
/// # Errors
/// 409 AlreadyExists, 404 when the namespace does not exist, 422 on schema violations, 400 on a
/// malformed body.
pub fn create(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    body: Value,
    opts: &WriteOpts,
) -> Result<Outcome, ApiError> {
    create_owning(store, clock, t, body, opts, None)
}

/// [`create`], where `fields_v1`, when given, is known to be the `FieldsV1` of `body` (whose
/// writer owns every field), e.g. read from a pod a StatefulSet created from the same
/// revision (its pods differ only in values: names, labels' values, hostname). The
/// managedFields entry is then that of [`create`] without walking the object again: at 1,000
/// clusters, computing it was a seventh of the simulator's control loop. Debug builds check
/// it against the computed one.
///
/// # Errors
/// As [`create`].
pub fn create_owning(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    body: Value,
    opts: &WriteOpts,
    fields_v1: Option<&Value>,
) -> Result<Outcome, ApiError> {
    let manage = fields_v1.map_or(Manage::Record, Manage::CreateOwning);
    create_inner(store, clock, t, body, opts, manage)
}

/// How a write records its managers in `metadata.managedFields`.
#[derive(Debug, Clone, Copy)]
enum Manage<'a> {
    /// Computed from the old and new objects (a create or update).
    Record,
    /// Already computed (a server-side apply merges them).
    Keep,
    /// A create owning every field, whose `FieldsV1` is given (see [`create_owning`]).
    CreateOwning(&'a Value),
}

fn create_inner(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    mut body: Value,
    opts: &WriteOpts,
    manage: Manage<'_>,
) -> Result<Outcome, ApiError> {
    let mut t = t.clone();
    if t.subresource.is_some() {
        return Err(ApiError::MethodNotAllowed(
            "create is not supported on subresources here".into(),
        ));
    }
    if t.name.is_none()
        && let Some(n) = body.at("/metadata/name").and_then(Value::as_str)
    {
        t.name = Some(n.to_string());
    }
    check_identity(&t, &mut body)?;
    let name = match body.at("/metadata/name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match body.at("/metadata/generateName").and_then(Value::as_str) {
            Some(prefix) => {
                let uid = store.new_uid();
                let suffix: String = uid.chars().rev().take(5).collect();
                format!("{prefix}{suffix}")
            }
            None => {
                return Err(ApiError::invalid(
                    &t.rt.kind,
                    &t.rt.group,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                ));
            }
        },
    };
    t.name = Some(name.clone());
    if t.rt.namespaced {
        if t.namespace.is_none() {
            return Err(ApiError::BadRequest(
                "a namespaced object needs a namespace".into(),
            ));
        }
        if store.get("", "namespaces", "", t.ns()).is_none() {
            return Err(ApiError::NotFound {
                resource: "namespaces".into(),
                name: t.ns().to_string(),
            });
        }
    }
    if store
        .get(&t.rt.group, &t.rt.plural, t.ns(), &name)
        .is_some()
    {
        return Err(ApiError::AlreadyExists {
            resource: t.rt.qualified(),
            name,
        });
    }
    let uid = store.new_uid();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now(clock)));
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if !matches!(manage, Manage::Keep) {
            meta.remove("managedFields");
        }
        if t.rt.has_generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
    }
    if t.rt.status_subresource
        && t.rt.kind != "Pod"
        && let Some(m) = body.as_object_mut()
    {
        m.remove("status");
    }
    commit(store, clock, &t, None, body, opts, manage)
}

/// UPDATE (PUT) of the object or its `/status` or `/scale` subresource.
///
/// # Errors
/// 404 when absent, 409 when `metadata.resourceVersion` is stale, 422 on schema violations.
pub fn update(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    mut body: Value,
    opts: &WriteOpts,
) -> Result<Outcome, ApiError> {
    let old = store
        .get_shared(&t.rt.group, &t.rt.plural, t.ns(), t.name())
        .ok_or_else(|| t.not_found())?;
    if t.subresource.as_deref() == Some("scale") {
        return write_scale(store, clock, t, &old, body, opts);
    }
    check_identity(t, &mut body)?;
    check_resource_version(t, &old, &body)?;
    let new = merge_subresource(t, &old, body);
    commit(store, clock, t, Some(&*old), new, opts, Manage::Record)
}

/// A write of `status` through the `/status` subresource by a simulated controller: stores
/// what [`update`] stores for the body `{"metadata": {"name", "namespace"}, "status": status}`,
/// but in the stored object itself, moved out of the store and back
/// ([`Store::take_for_write`]), when nothing else holds it; else in a copy. Copying each pod
/// whole to replace its status was 7% of the simulator's CPU at 1,000 clusters (the kubelet's
/// writes). Types with a schema (custom resources), objects being deleted, and a status that
/// the type's initial status would complete take [`update`].
///
/// # Errors
/// As [`update`]; 404 when the object is absent.
pub fn write_status(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    status: Value,
    opts: &WriteOpts,
) -> Result<Outcome, ApiError> {
    let rt = &t.rt;
    let (group, plural) = (rt.group.as_str(), rt.plural.as_str());
    let simple = t.subresource.as_deref() == Some("status")
        && rt.schema.is_none()
        && rt.kind != "CustomResourceDefinition"
        && !opts.dry_run
        // `update` records a write's fields before the type's initial status completes the
        // object: a status that it would complete takes `update`, to record the same fields.
        && initial_status_kept(&rt.kind, &status)
        && store
            .get(group, plural, t.ns(), t.name())
            .is_some_and(|o| o.is_object() && o.at("/metadata/deletionTimestamp").is_none());
    if !simple {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(t.name()));
        if let Some(ns) = &t.namespace {
            metadata.insert("namespace".into(), json!(ns));
        }
        let body = json!({"metadata": metadata, "status": status});
        return update(store, clock, t, body, opts);
    }
    let Some(mut taken) = store.take_for_write(group, plural, t.ns(), t.name()) else {
        return Err(t.not_found());
    };
    let old_status = match taken.obj.as_object_mut() {
        Some(m) => m.insert("status".into(), status),
        None => None,
    };
    let mut ip = || store.next_ip(96);
    apply_defaults(&rt.kind, &mut taken.obj, &mut ip);
    if taken.obj.get("status") == old_status.as_ref() {
        // A no-op write: the object goes back as it was.
        if let (Some(st), Some(m)) = (old_status, taken.obj.as_object_mut()) {
            m.insert("status".into(), st);
        }
        let stored = store
            .put_back(group, plural, taken)
            .ok_or_else(|| t.not_found())?;
        return Ok(Outcome::new(rt, 200, stored, false));
    }
    let manager = if opts.manager.is_empty() {
        "unknown"
    } else {
        opts.manager.as_str()
    };
    let api_version = rt.api_version();
    let ts = now(clock);
    let req = ApplyRequest {
        manager,
        force: false,
        api_version: &api_version,
        subresource: Some("status"),
        now: &ts,
    };
    fields::record_status_write(old_status, &mut taken.obj, shape(rt), req);
    let stored = store
        .put_taken(group, plural, taken.obj, taken.previous)
        .ok_or_else(|| t.not_found())?;
    Ok(Outcome::new(rt, 200, stored, false))
}

/// The optimistic-concurrency precondition: a `metadata.resourceVersion` in the request must
/// equal the stored object's.
///
/// # Errors
/// 409 Conflict when it does not.
fn check_resource_version(t: &Target, old: &Value, request: &Value) -> Result<(), ApiError> {
    let version = |v: &Value| {
        v.at("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match version(request) {
        Some(rv) if version(old).as_deref() != Some(rv.as_str()) => {
            Err(ApiError::modified(&t.rt.qualified(), t.name()))
        }
        _ => Ok(()),
    }
}

/// PATCH with one of the four patch content types. Apply creates the object when absent.
///
/// # Errors
/// 415 for an unknown content type, 404 when absent (except apply), 409 on apply conflicts or a
/// stale resourceVersion in the patch, 422 on a failed JSON patch `test` or schema violations.
pub fn patch(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    content_type: &str,
    body: &[u8],
    opts: &WriteOpts,
) -> Result<Outcome, ApiError> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    // Shared, not copied: the patched object is the one copy a patch makes.
    let old = store.get_shared(&t.rt.group, &t.rt.plural, t.ns(), t.name());
    if is_apply(content_type) {
        let merged = apply_merge(clock, t, old.as_deref(), body, opts)?;
        return apply_commit(store, clock, t, old.as_deref(), merged, opts);
    }
    let old = old.ok_or_else(|| t.not_found())?;
    let patch_value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid patch body: {e}")))?;
    let mut new = if t.subresource.as_deref() == Some("scale") {
        scale_of(&t.rt, &old)?
    } else {
        Value::clone(&old)
    };
    match ct {
        "application/merge-patch+json" => patch::merge_patch(&mut new, &patch_value),
        "application/json-patch+json" => {
            patch::json_patch(&mut new, &patch_value, &t.rt.kind, &t.rt.group, t.name())?
        }
        "application/strategic-merge-patch+json" => {
            if t.rt.is_custom() {
                return Err(ApiError::UnsupportedMediaType(ct.to_string()));
            }
            patch::strategic_merge(&mut new, &patch_value, shape(&t.rt));
        }
        other => return Err(ApiError::UnsupportedMediaType(other.to_string())),
    }
    if t.subresource.as_deref() == Some("scale") {
        return write_scale(store, clock, t, &old, new, opts);
    }
    check_identity(t, &mut new)?;
    check_resource_version(t, &old, &patch_value)?;
    // A patch cannot change the server-owned metadata.
    let new = merge_subresource(t, &old, new);
    commit(store, clock, t, Some(&old), new, opts, Manage::Record)
}

fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::BadRequest(format!("apply body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::BadRequest(format!("cannot parse apply body as YAML: {e}")))
}

/// The first half of a server-side apply, which reads nothing but the stored object `old`:
/// the apply configuration merged into it, with the field managers' sets updated.
///
/// # Errors
/// 400 for a bad body or a missing field manager, 404 for a subresource of an absent object,
/// 409 for conflicts with other managers (without `force`).
fn apply_merge(
    clock: &SimClock,
    t: &Target,
    old: Option<&Value>,
    body: &[u8],
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    let mut cfg = parse_apply_body(body)?;
    if opts.manager.is_empty() {
        return Err(ApiError::BadRequest(
            "PATCH /apply requires fieldManager to be set".into(),
        ));
    }
    check_identity(t, &mut cfg)?;
    if cfg.get("apiVersion").is_none() || cfg.get("kind").is_none() {
        return Err(ApiError::BadRequest(
            "apiVersion and kind must be set in an apply configuration".into(),
        ));
    }
    // The configuration only speaks for the part of the object the endpoint writes.
    if let Some(m) = cfg.as_object_mut() {
        match t.subresource.as_deref() {
            Some("status") => {
                m.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"))
            }
            _ if t.rt.status_subresource => {
                m.remove("status");
            }
            _ => {}
        }
    }
    let req = ApplyRequest {
        manager: &opts.manager,
        force: opts.force,
        api_version: &t.rt.api_version(),
        subresource: t.subresource.as_deref(),
        now: &now(clock),
    };
    let absent;
    let live = match old {
        Some(o) => o,
        None => {
            if t.subresource.is_some() {
                return Err(t.not_found());
            }
            absent = json!({"apiVersion": t.rt.api_version(), "kind": t.rt.kind, "metadata": {"name": t.name(), "namespace": t.namespace}});
            &absent
        }
    };
    fields::apply(live, &cfg, shape(&t.rt), req).map_err(|conflicts| {
        let n = conflicts.len();
        let list: Vec<String> = conflicts
            .iter()
            .map(|c| {
                format!(
                    "conflict with \"{}\" using {}: {}",
                    c.manager,
                    t.rt.api_version(),
                    c.field
                )
            })
            .collect();
        ApiError::Conflict {
            resource: t.rt.qualified(),
            name: t.name().to_string(),
            message: format!(
                "Apply failed with {n} conflict{}: {}",
                if n == 1 { "" } else { "s" },
                list.join("\n")
            ),
            causes: conflicts
                .iter()
                .map(|c| Cause {
                    kind: "FieldManagerConflict".into(),
                    message: format!(
                        "conflict with \"{}\" using {}",
                        c.manager,
                        t.rt.api_version()
                    ),
                    field: c.field.clone(),
                })
                .collect(),
        }
    })
}

/// The second half of a server-side apply: stores `merged` (from [`apply_merge`] on `old`).
fn apply_commit(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    old: Option<&Value>,
    merged: Value,
    opts: &WriteOpts,
) -> Result<Outcome, ApiError> {
    match old {
        None => create_inner(store, clock, t, merged, opts, Manage::Keep),
        Some(old) => {
            let new = merge_subresource(t, old, merged);
            commit(store, clock, t, Some(old), new, opts, Manage::Keep)
        }
    }
}

/// Whether a PATCH with this `Content-Type` is a server-side apply.
fn is_apply(content_type: &str) -> bool {
    matches!(
        content_type.split(';').next().unwrap_or_default().trim(),
        "application/apply-patch+yaml" | "application/apply-patch+cbor"
    )
}

/// A PATCH request, as [`prepare_patch`] and [`patch_prepared`] take it.
#[derive(Debug, Clone, Copy)]
pub struct PatchRequest<'a> {
    /// The object patched.
    pub target: &'a Target,
    /// The request's `Content-Type` (which of the four patch kinds).
    pub content_type: &'a str,
    /// The request body.
    pub body: &'a [u8],
    /// Field manager, force, dry run, strictness.
    pub opts: &'a WriteOpts,
}

/// A server-side apply merged outside the store's lock, from `snapshot`, the stored object
/// when it was read (see [`prepare_patch`]).
#[derive(Debug)]
pub struct PreparedApply {
    snapshot: Option<Arc<Value>>,
    merged: Result<Value, ApiError>,
}

/// Merges a server-side apply into `snapshot`, the stored object as read just before (`None`
/// when absent), without the store: the field managers' bookkeeping, most of an apply's
/// work, then runs outside the store's lock. `None` for a patch that is not an apply.
///
/// [`patch_prepared`] commits the result only if the stored object is still `snapshot`,
/// as the API server's optimistic concurrency would; otherwise it applies again from the
/// stored object. At 1,000 clusters the merges were a third of the request handlers' time
/// under the lock, while that lock was held 90% of the time.
pub fn prepare_patch(
    snapshot: Option<Arc<Value>>,
    clock: &SimClock,
    req: PatchRequest<'_>,
) -> Option<PreparedApply> {
    if !is_apply(req.content_type) {
        return None;
    }
    let merged = apply_merge(clock, req.target, snapshot.as_deref(), req.body, req.opts);
    Some(PreparedApply { snapshot, merged })
}

/// [`patch`], with a server-side apply merged beforehand by [`prepare_patch`]: used when the
/// object is still the one it was merged into (the same stored state, or still absent) and
/// the merge succeeded; otherwise the patch runs as [`patch`] does.
///
/// # Errors
/// As [`patch`].
pub fn patch_prepared(
    store: &mut Store,
    clock: &SimClock,
    req: PatchRequest<'_>,
    prepared: Option<PreparedApply>,
) -> Result<Outcome, ApiError> {
    let PatchRequest {
        target: t,
        content_type,
        body,
        opts,
    } = req;
    if let Some(PreparedApply {
        snapshot,
        merged: Ok(merged),
    }) = prepared
    {
        let old = store.get_shared(&t.rt.group, &t.rt.plural, t.ns(), t.name());
        let unchanged = match (&old, &snapshot) {
            (Some(now), Some(then)) => Arc::ptr_eq(now, then),
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return apply_commit(store, clock, t, old.as_deref(), merged, opts);
        }
    }
    patch(store, clock, t, content_type, body, opts)
}

/// Combines a written object with the stored one according to the subresource rules: `/status`
/// writes change only `status`; main writes of a type with a status subresource keep `status`;
/// server-owned metadata always comes from the stored object.
fn merge_subresource(t: &Target, old: &Value, mut new: Value) -> Value {
    match t.subresource.as_deref() {
        Some("status") => {
            let Some(old_map) = old.as_object() else {
                return old.clone();
            };
            // managedFields computed by an apply travel with the status write.
            let managed = new.pointer_mut("/metadata/managedFields").map(Value::take);
            // Everything but `status` (and the managedFields replaced) is copied from `old`;
            // the old status is not copied only to be dropped.
            let mut m = Map::new();
            for (k, v) in old_map.iter().filter(|(k, _)| *k != "status") {
                let v = match v {
                    Value::Object(meta) if k == "metadata" && managed.is_some() => Value::Object(
                        meta.iter()
                            .filter(|(mk, _)| *mk != "managedFields")
                            .map(|(mk, mv)| (mk.clone(), mv.clone()))
                            .collect(),
                    ),
                    _ => v.clone(),
                };
                m.insert(k.clone(), v);
            }
            if let Some(s) = new.get_mut("status").map(Value::take) {
                m.insert("status".into(), s);
            }
            if let (Some(mf), Some(Value::Object(meta))) = (managed, m.get_mut("metadata")) {
                meta.insert("managedFields".into(), mf);
            }
            Value::Object(m)
        }
        _ => {
            if t.rt.status_subresource
                && let Some(m) = new.as_object_mut()
            {
                match old.get("status") {
                    Some(s) => m.insert("status".into(), s.clone()),
                    None => m.remove("status"),
                };
            }
            if let (Some(meta), Some(old_meta)) = (
                new.get_mut("metadata").and_then(Value::as_object_mut),
                old.get("metadata"),
            ) {
                for k in [
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "namespace",
                    "name",
                ] {
                    match old_meta.get(k) {
                        Some(v) => meta.insert(k.into(), v.clone()),
                        None => meta.remove(k),
                    };
                }
            }
            new
        }
    }
}

/// Whether two values are equal outside the top-level `keys` of objects (without copying).
fn eq_except(a: &Value, b: &Value, keys: &[&str]) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(x), Some(y)) => {
            let kept = |m: &serde_json::Map<String, Value>| {
                m.keys().filter(|k| !keys.contains(&k.as_str())).count()
            };
            kept(x) == kept(y)
                && x.iter()
                    .filter(|(k, _)| !keys.contains(&k.as_str()))
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        _ => a == b,
    }
}

/// Whether two objects are equal but for the `time` of their `metadata.managedFields`
/// entries: a write that changes nothing else is a no-op (without copying).
fn eq_but_managed_time(a: &Value, b: &Value) -> bool {
    // The parts a write most often changes first, then the rest: a status write that differs
    // is told apart without walking the spec it copied (the pods' and StatefulSets' largest
    // part).
    if a.get("status") != b.get("status") || a.get("spec") != b.get("spec") {
        return false;
    }
    let entries_eq = |x: Option<&Value>, y: Option<&Value>| match (x, y) {
        (Some(Value::Array(p)), Some(Value::Array(q))) => {
            p.len() == q.len() && p.iter().zip(q).all(|(e, f)| eq_except(e, f, &["time"]))
        }
        (x, y) => x == y,
    };
    eq_except(a, b, &["metadata", "status", "spec"])
        && match (a.get("metadata"), b.get("metadata")) {
            (Some(x), Some(y)) if x.is_object() && y.is_object() => {
                eq_except(x, y, &["managedFields"])
                    && entries_eq(x.get("managedFields"), y.get("managedFields"))
            }
            (x, y) => x == y,
        }
}

/// Stores a create or update after validation, defaulting, generation and managedFields.
fn commit(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    old: Option<&Value>,
    mut new: Value,
    opts: &WriteOpts,
    manage: Manage<'_>,
) -> Result<Outcome, ApiError> {
    let rt = &t.rt;
    if let Some(schema) = &rt.schema {
        let mut pruned = Vec::new();
        let causes = schema::prune_and_validate_reporting(&mut new, schema, &mut pruned);
        if opts.strict && !pruned.is_empty() {
            let fields: Vec<String> = pruned
                .iter()
                .map(|p| format!("unknown field \"{p}\""))
                .collect();
            return Err(ApiError::BadRequest(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                fields.join(", "),
                kind = rt.kind,
                v = rt.version
            )));
        }
        if !causes.is_empty() {
            return Err(ApiError::Invalid {
                kind: rt.kind.clone(),
                group: rt.group.clone(),
                name: t.name().to_string(),
                causes,
            });
        }
    }
    let mut ip = || store.next_ip(96);
    apply_defaults(&rt.kind, &mut new, &mut ip);
    if rt.kind == "CustomResourceDefinition" {
        validate_crd(&new)?;
        set_crd_status(&mut new);
    }
    // A status write keeps everything but `status` from the stored object
    // (`merge_subresource`), as the API server's status strategies reset the rest: its spec is
    // the stored one, so neither an immutable field nor `spec.template` changes and
    // `generation` stays (which took three walks of a StatefulSet's spec per status write).
    let status_only = t.subresource.as_deref() == Some("status");
    debug_assert!(
        !status_only || old.is_none_or(|o| eq_except(o, &new, &["metadata", "status"])),
        "a status write changed more than status"
    );
    if let Some(old) = old
        && !status_only
    {
        check_immutable(rt, t.name(), old, &new)?;
    }
    if let Some(old) = old {
        if rt.has_generation {
            let spec_changed = !status_only && !eq_except(old, &new, &["metadata", "status"]);
            let g = old
                .at("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert(
                    "generation".into(),
                    json!(if spec_changed { g + 1 } else { g }),
                );
            }
        }
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut)
            && let Some(rv) = old.at("/metadata/resourceVersion")
        {
            meta.insert("resourceVersion".into(), rv.clone());
        }
    }
    let manager = if opts.manager.is_empty() {
        "unknown".to_string()
    } else {
        opts.manager.clone()
    };
    if !matches!(manage, Manage::Keep) {
        // Managed fields are the server's: keep the stored ones, then record this write.
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            match old.and_then(|o| o.at("/metadata/managedFields")) {
                // Comparing is cheaper than copying, and a status write already has them.
                Some(mf) if meta.get("managedFields") == Some(mf) => {}
                Some(mf) => {
                    meta.insert("managedFields".into(), mf.clone());
                }
                None => {
                    meta.remove("managedFields");
                }
            }
        }
        let api_version = rt.api_version();
        let ts = now(clock);
        let req = ApplyRequest {
            manager: &manager,
            force: false,
            api_version: &api_version,
            subresource: t.subresource.as_deref(),
            now: &ts,
        };
        match (manage, old) {
            (Manage::CreateOwning(fields_v1), None) => {
                fields::record_create_owning(&mut new, shape(rt), req, fields_v1.clone());
            }
            (_, Some(old)) if status_only => {
                fields::record_status_update(old, &mut new, shape(rt), req);
            }
            _ => fields::record_update(old, &mut new, shape(rt), req),
        }
    }
    initial_status(&rt.kind, &mut new);
    let template_changed = match old {
        _ if status_only => false,
        Some(o) => o.at("/spec/template") != new.at("/spec/template"),
        None => new.at("/spec/template").is_some(),
    };
    if let Some(old) = old
        && eq_but_managed_time(old, &new)
    {
        // No-op write: nothing stored, no event, resourceVersion unchanged.
        return Ok(Outcome::new(rt, 200, Arc::new(old.clone()), false));
    }
    let code = if old.is_some() { 200 } else { 201 };
    if opts.dry_run {
        return Ok(Outcome::new(rt, code, Arc::new(new), template_changed));
    }
    let finished = new.at("/metadata/deletionTimestamp").is_some()
        && new
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
    let stored = if finished {
        let (ns, name) = obj_key(&new);
        store.put(&rt.group, &rt.plural, new);
        let removed = store
            .remove(&rt.group, &rt.plural, &ns, &name)
            .unwrap_or(Value::Null);
        on_removed(store, rt, &removed);
        Arc::new(removed)
    } else {
        store.put(&rt.group, &rt.plural, new)
    };
    if rt.kind == "CustomResourceDefinition" && !finished {
        store.registry.register_crd(&stored);
    }
    Ok(Outcome::new(rt, code, stored, template_changed))
}

/// Update validation of immutable fields, with the API server's messages: a StatefulSet may
/// only change `replicas`, `ordinals`, `template`, `updateStrategy`,
/// `persistentVolumeClaimRetentionPolicy` and `minReadySeconds`; the selector of a Deployment
/// or ReplicaSet is immutable (apps/v1 validation).
fn check_immutable(
    rt: &ResourceType,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    match rt.kind.as_str() {
        "StatefulSet" => {
            const MUTABLE: &[&str] = &[
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ];
            let null = Value::Null;
            let (old_spec, new_spec) = (
                old.get("spec").unwrap_or(&null),
                new.get("spec").unwrap_or(&null),
            );
            if !eq_except(old_spec, new_spec, MUTABLE) {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    name,
                    "spec",
                    "FieldValueForbidden",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        "Deployment" | "ReplicaSet" if old.at("/spec/selector") != new.at("/spec/selector") => {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                name,
                "spec.selector",
                "FieldValueInvalid",
                &format!(
                    "Invalid value: {}: field is immutable",
                    new.at("/spec/selector").cloned().unwrap_or(Value::Null)
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

fn validate_crd(crd: &Value) -> Result<(), ApiError> {
    let name = crd
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec
        .at("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut causes = Vec::new();
    if group.is_empty() {
        causes.push(Cause {
            kind: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: "spec.group".into(),
        });
    }
    if plural.is_empty() {
        causes.push(Cause {
            kind: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: "spec.names.plural".into(),
        });
    }
    if name != format!("{plural}.{group}") {
        causes.push(Cause {
            kind: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
            ),
            field: "metadata.name".into(),
        });
    }
    if spec["versions"].as_array().is_none_or(Vec::is_empty) {
        causes.push(Cause {
            kind: "FieldValueRequired".into(),
            message: "Required value: must have exactly one version marked as storage version"
                .into(),
            field: "spec.versions".into(),
        });
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            kind: "CustomResourceDefinition".into(),
            group: "apiextensions.k8s.io".into(),
            name: name.into(),
            causes,
        })
    }
}

fn set_crd_status(crd: &mut Value) {
    let names = crd.at("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .at("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let ts = crd
        .at("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or(Value::Null);
    let cond = |ty: &str, reason: &str, msg: &str| json!({"type": ty, "status": "True", "reason": reason, "message": msg, "lastTransitionTime": ts});
    if let Some(m) = crd.as_object_mut() {
        m.insert(
            "status".into(),
            json!({
                "acceptedNames": names,
                "storedVersions": stored,
                "conditions": [
                    cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                    cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                ],
            }),
        );
    }
}

/// Hooks after an object left the store: a CRD takes its custom resources with it; a
/// namespace takes its objects.
fn on_removed(store: &mut Store, rt: &ResourceType, removed: &Value) {
    if rt.kind == "CustomResourceDefinition" {
        let group = removed
            .at("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plural = removed
            .at("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let keys: Vec<_> = store
            .list(&group, &plural, None)
            .into_iter()
            .map(obj_key)
            .collect();
        for (ns, name) in keys {
            store.remove(&group, &plural, &ns, &name);
        }
        if let Some(n) = removed.at("/metadata/name").and_then(Value::as_str) {
            store.registry.unregister_crd(n);
        }
    }
    if rt.kind == "Namespace" {
        let ns = removed
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let types: Vec<(String, String)> = store
            .registry
            .all()
            .iter()
            .filter(|t| t.namespaced)
            .map(|t| (t.group.clone(), t.plural.clone()))
            .collect();
        for (g, p) in types {
            let keys: Vec<_> = store
                .list(&g, &p, Some(&ns))
                .into_iter()
                .map(obj_key)
                .collect();
            for (n, name) in keys {
                store.remove(&g, &p, &n, &name);
            }
        }
    }
}

/// DELETE of one object: with finalizers (or `Foreground`/`Orphan` propagation) it gets a
/// `deletionTimestamp` and stays until the finalizers are removed; otherwise it goes at once.
/// Dependents are collected by the garbage collector controller.
///
/// # Errors
/// 404 when absent, 409 when a precondition fails.
pub fn delete(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    opts: &DeleteOpts,
) -> Result<Outcome, ApiError> {
    let old = store
        .get(&t.rt.group, &t.rt.plural, t.ns(), t.name())
        .cloned()
        .ok_or_else(|| t.not_found())?;
    if let Some(rv) = &opts.precondition_rv
        && old.at("/metadata/resourceVersion").and_then(Value::as_str) != Some(rv)
    {
        return Err(ApiError::Conflict {
            resource: t.rt.qualified(),
            name: t.name().to_string(),
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record",
                t.rt.qualified(),
                t.name()
            ),
            causes: Vec::new(),
        });
    }
    if let Some(uid) = &opts.precondition_uid
        && old.at("/metadata/uid").and_then(Value::as_str) != Some(uid)
    {
        return Err(ApiError::Conflict {
            resource: t.rt.qualified(),
            name: t.name().to_string(),
            message: format!("Precondition failed: UID in precondition: {uid}"),
            causes: Vec::new(),
        });
    }
    let mut finalizers: Vec<Value> = old
        .at("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match opts.propagation.as_deref() {
        Some("Foreground") if !finalizers.contains(&json!("foregroundDeletion")) => {
            finalizers.push(json!("foregroundDeletion"))
        }
        Some("Orphan") if !finalizers.contains(&json!("orphan")) => {
            finalizers.push(json!("orphan"))
        }
        _ => {}
    }
    if opts.dry_run {
        return Ok(Outcome::new(&t.rt, 200, Arc::new(old), false));
    }
    if finalizers.is_empty() {
        let removed = store
            .remove(&t.rt.group, &t.rt.plural, t.ns(), t.name())
            .unwrap_or(Value::Null);
        on_removed(store, &t.rt, &removed);
        return Ok(Outcome::new(&t.rt, 200, Arc::new(removed), false));
    }
    if old.at("/metadata/deletionTimestamp").is_some()
        && old
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(Vec::len)
            == Some(finalizers.len())
    {
        return Ok(Outcome::new(&t.rt, 202, Arc::new(old), false));
    }
    let mut new = old.clone();
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("deletionTimestamp")
            .or_insert_with(|| json!(now(clock)));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    let stored = store.put(&t.rt.group, &t.rt.plural, new);
    Ok(Outcome::new(&t.rt, 202, stored, false))
}

/// DELETE of a collection: deletes every object the list query selects.
///
/// # Errors
/// As [`delete`] for each object.
pub fn delete_collection(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    q: &ListQuery,
    opts: &DeleteOpts,
) -> Result<Value, ApiError> {
    let listed = list(
        store,
        t,
        &ListQuery {
            limit: 0,
            continue_token: None,
            ..q.clone()
        },
    )?;
    let mut items = Vec::new();
    for obj in listed["items"].as_array().into_iter().flatten() {
        let (ns, name) = obj_key(obj);
        let target = Target {
            rt: t.rt.clone(),
            namespace: (!ns.is_empty()).then_some(ns),
            name: Some(name),
            subresource: None,
        };
        items.push(delete(store, clock, &target, opts)?.object());
    }
    Ok(
        json!({"apiVersion": t.rt.api_version(), "kind": format!("{}List", t.rt.kind), "metadata": {"resourceVersion": store.current_rv().to_string()}, "items": items}),
    )
}

fn dotted<'v>(obj: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = obj;
    for seg in path.split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn set_dotted(obj: &mut Value, path: &str, v: Value) {
    let mut cur = obj;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        let Some(m) = cur.as_object_mut() else { return };
        if i + 1 == segs.len() {
            m.insert(seg.to_string(), v);
            return;
        }
        cur = m
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The `autoscaling/v1 Scale` view of a scalable object.
///
/// # Errors
/// 404 when the type has no scale subresource.
pub fn scale_of(rt: &ResourceType, obj: &Value) -> Result<Value, ApiError> {
    let Some(paths) = &rt.scale else {
        return Err(ApiError::NotFound {
            resource: format!("{}/scale", rt.qualified()),
            name: String::new(),
        });
    };
    let meta = &obj["metadata"];
    let selector = match &paths.label_selector {
        Some(p) => dotted(obj, p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        None => selector_string(obj.at("/spec/selector").unwrap_or(&Value::Null)),
    };
    Ok(json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": dotted(obj, &paths.spec_replicas).cloned().unwrap_or(json!(0))},
        "status": {"replicas": dotted(obj, &paths.status_replicas).cloned().unwrap_or(json!(0)), "selector": selector},
    }))
}

/// The string form of a `metav1.LabelSelector` (`a=b,c in (d)`).
pub fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let vals: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

fn write_scale(
    store: &mut Store,
    clock: &SimClock,
    t: &Target,
    old: &Value,
    scale: Value,
    opts: &WriteOpts,
) -> Result<Outcome, ApiError> {
    let Some(paths) = t.rt.scale.clone() else {
        return Err(t.not_found());
    };
    if let Some(rv) = scale
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        && old.at("/metadata/resourceVersion").and_then(Value::as_str) != Some(rv)
    {
        return Err(ApiError::modified(&t.rt.qualified(), t.name()));
    }
    let replicas = scale.at("/spec/replicas").cloned().unwrap_or(json!(0));
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            t.name(),
            "spec.replicas",
            "FieldValueInvalid",
            "must be greater than or equal to 0",
        ));
    }
    let mut new = old.clone();
    set_dotted(&mut new, &paths.spec_replicas, replicas);
    let main = Target {
        subresource: Some("scale".into()),
        ..t.clone()
    };
    let mut out = commit(store, clock, &main, Some(old), new, opts, Manage::Record)?;
    out.body = Some(scale_of(&t.rt, &out.stored)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn setup() -> (Store, SimClock) {
        let mut s = Store::new(Registry::builtin(), 100);
        let clock = SimClock::new(1.0);
        let ns = s.registry.find("", "v1", "namespaces").cloned().unwrap();
        create(
            &mut s,
            &clock,
            &Target::object(&ns, None, "default"),
            json!({"metadata": {"name": "default"}}),
            &WriteOpts::default(),
        )
        .unwrap();
        (s, clock)
    }

    fn sts_target(s: &Store, name: &str) -> Target {
        Target::object(
            s.registry.find("apps", "v1", "statefulsets").unwrap(),
            Some("default"),
            name,
        )
    }

    fn opts(m: &str) -> WriteOpts {
        WriteOpts {
            manager: m.into(),
            ..Default::default()
        }
    }

    #[test]
    fn generation_bumps_only_on_spec_change_and_status_is_kept() {
        let (mut s, c) = setup();
        let t = sts_target(&s, "web");
        let o = create(&mut s, &c, &t, json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}, "status": {"replicas": 9}}), &opts("t")).unwrap();
        assert_eq!(o.code, 201);
        assert_eq!(o.object()["metadata"]["generation"], 1);
        assert!(
            o.object().get("status").is_none(),
            "status dropped on create"
        );
        let mut body = o.object();
        body["metadata"]["labels"] = json!({"a": "b"});
        let o2 = update(&mut s, &c, &t, body, &opts("t")).unwrap();
        assert_eq!(o2.object()["metadata"]["generation"], 1);
        let mut body = o2.object();
        body["spec"]["replicas"] = json!(3);
        body["status"] = json!({"replicas": 5});
        let o3 = update(&mut s, &c, &t, body, &opts("t")).unwrap();
        assert_eq!(o3.object()["metadata"]["generation"], 2);
        assert!(
            o3.object().get("status").is_none(),
            "main write cannot set status"
        );
        let status_t = Target {
            subresource: Some("status".into()),
            ..t.clone()
        };
        let mut body = o3.object();
        body["status"] = json!({"replicas": 5});
        body["spec"]["replicas"] = json!(7);
        let o4 = update(&mut s, &c, &status_t, body, &opts("t")).unwrap();
        assert_eq!(o4.object()["status"]["replicas"], 5);
        assert_eq!(
            o4.object()["spec"]["replicas"],
            3,
            "status write cannot change spec"
        );
        assert_eq!(o4.object()["metadata"]["generation"], 2);
    }

    #[test]
    fn statefulset_selector_is_immutable() {
        let (mut s, c) = setup();
        let t = sts_target(&s, "web");
        let o = create(
            &mut s,
            &c,
            &t,
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"a": "1"}}, "serviceName": "web"}}),
            &opts("t"),
        )
        .unwrap();
        let mut body = o.object();
        body["spec"]["selector"] = json!({"matchLabels": {"a": "2"}});
        let e = update(&mut s, &c, &t, body, &opts("t")).unwrap_err();
        assert_eq!(e.code(), 422);
        assert!(
            e.to_string()
                .contains("updates to statefulset spec for fields other than")
        );
        let mut body = o.object();
        body["spec"]["replicas"] = json!(3);
        body["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert!(update(&mut s, &c, &t, body, &opts("t")).is_ok());
    }

    #[test]
    fn stale_resource_version_conflicts() {
        let (mut s, c) = setup();
        let t = sts_target(&s, "web");
        let o = create(
            &mut s,
            &c,
            &t,
            json!({"metadata": {"name": "web"}, "spec": {}}),
            &opts("t"),
        )
        .unwrap();
        let mut a = o.object();
        a["spec"]["replicas"] = json!(2);
        update(&mut s, &c, &t, a, &opts("t")).unwrap();
        let mut b = o.object();
        b["spec"]["replicas"] = json!(4);
        let e = update(&mut s, &c, &t, b, &opts("t")).unwrap_err();
        assert_eq!(e.code(), 409);
    }

    #[test]
    fn a_created_pod_is_pending_and_its_creator_does_not_own_the_phase() {
        let (mut s, c) = setup();
        let rt = s.registry.find("", "v1", "pods").cloned().unwrap();
        let t = Target::object(&rt, Some("default"), "p");
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let created = create(&mut s, &c, &t, pod, &opts("kube-controller-manager")).unwrap();
        let created = created.object();
        assert_eq!(created["status"]["phase"], "Pending");
        let entry = &created["metadata"]["managedFields"][0];
        assert_eq!(entry["manager"], "kube-controller-manager");
        assert!(entry["fieldsV1"]["f:spec"].is_object(), "{entry}");
        assert!(entry["fieldsV1"].get("f:status").is_none(), "{entry}");
    }

    #[test]
    fn finalizers_hold_deletion() {
        let (mut s, c) = setup();
        let rt = s.registry.find("", "v1", "configmaps").cloned().unwrap();
        let t = Target::object(&rt, Some("default"), "cm");
        create(
            &mut s,
            &c,
            &t,
            json!({"metadata": {"name": "cm", "finalizers": ["x/y"]}}),
            &opts("t"),
        )
        .unwrap();
        let d = delete(&mut s, &c, &t, &DeleteOpts::default()).unwrap();
        assert!(d.object()["metadata"]["deletionTimestamp"].is_string());
        assert!(get(&s, &t).is_ok());
        patch(
            &mut s,
            &c,
            &t,
            "application/merge-patch+json",
            br#"{"metadata":{"finalizers":null}}"#,
            &opts("t"),
        )
        .unwrap();
        assert_eq!(get(&s, &t).unwrap_err().code(), 404);
    }

    #[test]
    fn apply_creates_then_noop_keeps_resource_version() {
        let (mut s, c) = setup();
        let t = sts_target(&s, "web");
        let body = br#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web"},"spec":{"replicas":2}}"#;
        let a = patch(
            &mut s,
            &c,
            &t,
            "application/apply-patch+yaml",
            body,
            &WriteOpts {
                manager: "op".into(),
                force: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a.code, 201);
        let mf = &a.object()["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "op");
        assert_eq!(mf["operation"], "Apply");
        let b = patch(
            &mut s,
            &c,
            &t,
            "application/apply-patch+yaml",
            body,
            &WriteOpts {
                manager: "op".into(),
                force: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            a.object()["metadata"]["resourceVersion"],
            b.object()["metadata"]["resourceVersion"]
        );
    }

    /// An apply merged outside the lock is committed only onto the state it was merged into:
    /// when another write came in between, it is applied again, here to meet that write's
    /// ownership of `spec.replicas` as a conflict instead of overwriting it unseen.
    #[test]
    fn an_apply_merged_outside_the_lock_commits_only_onto_the_state_it_read() {
        let (mut s, c) = setup();
        let t = sts_target(&s, "web");
        let op = opts("op");
        let body = |replicas: i64| {
            format!(
                r#"{{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{{"name":"web"}},"spec":{{"replicas":{replicas}}}}}"#
            )
        };
        fn apply<'a>(target: &'a Target, body: &'a str, opts: &'a WriteOpts) -> PatchRequest<'a> {
            PatchRequest {
                target,
                content_type: "application/apply-patch+yaml",
                body: body.as_bytes(),
                opts,
            }
        }
        let stored_replicas = |s: &Store| get(s, &t).unwrap()["spec"]["replicas"].clone();
        let snapshot = |s: &Store| s.get_shared("apps", "statefulsets", "default", "web");
        // Absent when merged, absent when committed: created.
        let b2 = body(2);
        let prepared = prepare_patch(snapshot(&s), &c, apply(&t, &b2, &op));
        assert!(prepared.is_some(), "an apply is prepared");
        let created = patch_prepared(&mut s, &c, apply(&t, &b2, &op), prepared).unwrap();
        assert_eq!(created.code, 201);
        assert_eq!(stored_replicas(&s), 2);
        // Unchanged in between: the merge is committed.
        let b3 = body(3);
        let prepared = prepare_patch(snapshot(&s), &c, apply(&t, &b3, &op));
        patch_prepared(&mut s, &c, apply(&t, &b3, &op), prepared).unwrap();
        assert_eq!(stored_replicas(&s), 3);
        // Another manager's write in between: the stale merge (replicas 4, no conflict when
        // merged) is not committed; applied again, it conflicts with that manager.
        let b4 = body(4);
        let prepared = prepare_patch(snapshot(&s), &c, apply(&t, &b4, &op));
        assert!(matches!(
            &prepared,
            Some(PreparedApply { merged: Ok(_), .. })
        ));
        patch(
            &mut s,
            &c,
            &t,
            "application/merge-patch+json",
            br#"{"spec":{"replicas":5}}"#,
            &opts("kubectl-scale"),
        )
        .unwrap();
        let err = patch_prepared(&mut s, &c, apply(&t, &b4, &op), prepared).unwrap_err();
        assert_eq!(err.code(), 409, "{err:?}");
        assert_eq!(stored_replicas(&s), 5);
        // A patch that is not an apply is not prepared.
        let merge = PatchRequest {
            content_type: "application/merge-patch+json",
            body: b"{}",
            ..apply(&t, &b2, &op)
        };
        assert!(prepare_patch(snapshot(&s), &c, merge).is_none());
    }

    #[test]
    fn list_paginates_and_filters() {
        let (mut s, c) = setup();
        let rt = s.registry.find("", "v1", "configmaps").cloned().unwrap();
        for i in 0..5 {
            let t = Target::object(&rt, Some("default"), &format!("cm{i}"));
            create(
                &mut s,
                &c,
                &t,
                json!({"metadata": {"labels": {"odd": (i % 2).to_string()}}}),
                &opts("t"),
            )
            .unwrap();
        }
        let all = Target {
            rt: rt.clone(),
            namespace: Some("default".into()),
            name: None,
            subresource: None,
        };
        let page = list(
            &s,
            &all,
            &ListQuery {
                limit: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
        let tok = page["metadata"]["continue"].as_str().map(str::to_string);
        let page2 = list(
            &s,
            &all,
            &ListQuery {
                limit: 10,
                continue_token: tok,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(page2["items"][0]["metadata"]["name"], "cm2");
        assert!(page2["metadata"].get("continue").is_none());
        let odd = list(
            &s,
            &all,
            &ListQuery {
                labels: LabelSelector::parse("odd=1").unwrap(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(odd["items"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn scale_subresource_sets_spec_replicas() {
        let (mut s, c) = setup();
        let t = sts_target(&s, "web");
        create(&mut s, &c, &t, json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}}}), &opts("t")).unwrap();
        let st = Target {
            subresource: Some("scale".into()),
            ..t.clone()
        };
        let sc = get(&s, &st).unwrap();
        assert_eq!(sc["kind"], "Scale");
        assert_eq!(sc["status"]["selector"], "a=b");
        patch(
            &mut s,
            &c,
            &st,
            "application/merge-patch+json",
            br#"{"spec":{"replicas":4}}"#,
            &opts("t"),
        )
        .unwrap();
        let o = get(&s, &t).unwrap();
        assert_eq!(o["spec"]["replicas"], 4);
        assert_eq!(o["metadata"]["generation"], 2);
    }

    /// A controller's status write made in the stored object stores what `update` of
    /// `/status` stores, with the same resourceVersions and events, no-ops and writes that
    /// take `update` included.
    #[test]
    fn status_write_in_place_same_as_update() {
        let (mut a, c) = setup();
        let (mut b, _) = setup();
        let pods = a.registry.find("", "v1", "pods").cloned().unwrap();
        let t = Target::object(&pods, Some("default"), "p");
        let pod = json!({"metadata": {"name": "p", "namespace": "default", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        for s in [&mut a, &mut b] {
            create(s, &c, &t, pod.clone(), &opts("kube-controller-manager")).unwrap();
        }
        let st = Target {
            subresource: Some("status".into()),
            ..t.clone()
        };
        let statuses = [
            json!({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}),
            json!({"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}),
            // The same again: a no-op.
            json!({"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}),
            // Without a phase: completed by the initial status, through `update`.
            json!({"conditions": []}),
            json!({"phase": "Running"}),
        ];
        for (i, status) in statuses.into_iter().enumerate() {
            let manager = if i % 2 == 0 { "kubelet" } else { "other" };
            let body = json!({"metadata": {"name": "p", "namespace": "default"}, "status": status.clone()});
            let x = write_status(&mut a, &c, &st, status, &opts(manager)).unwrap();
            let y = update(&mut b, &c, &st, body, &opts(manager)).unwrap();
            assert_eq!(x.code, y.code);
            assert_eq!(x.stored, y.stored, "write {i}");
            assert_eq!(
                a.get("", "pods", "default", "p"),
                b.get("", "pods", "default", "p")
            );
            assert_eq!(a.current_rv(), b.current_rv(), "write {i}");
            let events = |s: &Store| {
                s.changes_since(0)
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        // As a watch sends it (a compact state keeps no type of its own).
                        let mut object = e.object.value().into_owned();
                        if let Some(m) = object.as_object_mut() {
                            m.remove("apiVersion");
                            m.remove("kind");
                        }
                        let previous = e.previous.as_ref().map(|p| p.meta().clone());
                        (e.rv, e.kind, object, previous)
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(events(&a), events(&b), "write {i}");
        }
        let stored = a.get("", "pods", "default", "p").unwrap();
        assert_eq!(stored["status"]["phase"], "Running");
        // The last write took every status field it wrote from "other", whose entry went.
        let managers: Vec<&str> = stored["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["kube-controller-manager", "kubelet"]);
    }

    /// As above for a StatefulSet, whose `generation` and defaulted spec a status write keeps.
    #[test]
    fn statefulset_status_write_in_place_same_as_update() {
        let (mut a, c) = setup();
        let (mut b, _) = setup();
        let t = sts_target(&a, "web");
        let set = json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        for s in [&mut a, &mut b] {
            create(s, &c, &t, set.clone(), &opts("t")).unwrap();
        }
        let st = Target {
            subresource: Some("status".into()),
            ..t.clone()
        };
        for ready in [0, 1, 2, 2] {
            let status = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": ready});
            let body = json!({"metadata": {"name": "web", "namespace": "default"}, "status": status.clone()});
            let x =
                write_status(&mut a, &c, &st, status, &opts("kube-controller-manager")).unwrap();
            let y = update(&mut b, &c, &st, body, &opts("kube-controller-manager")).unwrap();
            assert_eq!(x.stored, y.stored);
            assert_eq!(a.current_rv(), b.current_rv());
            assert_eq!(x.stored["metadata"]["generation"], 1);
        }
    }

    #[test]
    fn response_bytes_are_the_typed_object() {
        let (mut s, c) = setup();
        let t = sts_target(&s, "web");
        // A body that names its own type: the served apiVersion and kind replace it.
        let body = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}}});
        let created = create(&mut s, &c, &t, body, &opts("t")).unwrap();
        let st = Target {
            subresource: Some("scale".into()),
            ..t.clone()
        };
        let scaled = patch(
            &mut s,
            &c,
            &st,
            "application/merge-patch+json",
            br#"{"spec":{"replicas":2}}"#,
            &opts("t"),
        )
        .unwrap();
        for o in [created, scaled] {
            let bytes = o.to_json();
            assert_eq!(bytes, serde_json::to_vec(&o.object()).unwrap());
            let parsed: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(parsed, o.object());
            assert!(parsed["kind"] == "StatefulSet" || parsed["kind"] == "Scale");
        }
    }
}
