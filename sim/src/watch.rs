//! WATCH: a stream of `{"type":..,"object":..}` JSON lines.
//!
//! Semantics from the Kubernetes docs "API Concepts" ("Efficient detection of changes",
//! "Watch bookmarks", "410 Gone responses"): without a resourceVersion (or with `0`) the watch
//! starts with synthetic `ADDED` events for the current state; with one, it replays the changes
//! after it, or sends an `ERROR` event with a `410 Expired` Status when that history is gone.
//! Label and field selectors turn changes across the selector boundary into `ADDED`/`DELETED`.
//! `timeoutSeconds` closes the stream; `allowWatchBookmarks` sends periodic `BOOKMARK` events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{Target, Typed};
use crate::errors::ApiError;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::state::Shared;
use crate::store::{EventKind, Revision, StoredEvent};
use crate::table;

struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, ns: &str, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches_object(obj)
            && self.fields.matches(obj)
    }

    /// [`Filter::matches`] for a retained state: a compact one is parsed again only for a
    /// field selector that reads beyond `metadata`.
    fn matches_revision(&self, ns: &str, rev: &Revision) -> bool {
        if self.fields.reads_only_metadata() {
            self.matches(ns, rev.meta())
        } else {
            self.matches(ns, &rev.value())
        }
    }
}

fn get<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

/// Starts a watch and returns the streaming response.
pub fn respond(
    sh: Arc<Shared>,
    target: Target,
    query: &[(String, String)],
    view: table::View,
) -> Response {
    let filter = Filter {
        namespace: target.namespace.clone(),
        labels: LabelSelector::parse(get(query, "labelSelector").unwrap_or_default())
            .unwrap_or_default(),
        fields: FieldSelector::parse(get(query, "fieldSelector").unwrap_or_default())
            .unwrap_or_default(),
    };
    let start: Option<u64> = get(query, "resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    let bookmarks = matches!(get(query, "allowWatchBookmarks"), Some("true" | "1"));
    let send_initial = matches!(get(query, "sendInitialEvents"), Some("true" | "1"));
    let timeout = get(query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    tokio::spawn(run(
        sh,
        target,
        filter,
        start,
        bookmarks,
        send_initial,
        timeout,
        view,
        tx,
    ));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    resp
}

/// One watch event line, `{"type":..,"object":..}` with `type` first, as the API server
/// encodes `metav1.WatchEvent` (its fields in declaration order). Clients rely on that order:
/// serde's adjacently tagged enums (kube's `WatchEvent`) decode the object in one pass only
/// when the tag comes first, and buffer the whole object to decode it twice otherwise.
fn line(kind: &str, object: Value) -> Bytes {
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: Value,
    }
    // Serializing JSON values to memory does not fail.
    let mut bytes = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// One watch event line of a stored object: the same bytes as
/// `line(kind, render(target, object, View::Object))`, without copying the object.
fn object_line(kind: &str, target: &Target, object: &Value) -> Bytes {
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: Typed<'a>,
    }
    if let Some(map) = object.as_object() {
        let api_version = target.rt.api_version();
        let event = Line {
            kind,
            object: Typed {
                api_version: &api_version,
                kind: &target.rt.kind,
                object: map,
            },
        };
        // Serializing JSON values to memory does not fail; the copy below would answer anyway.
        if let Ok(mut bytes) = serde_json::to_vec(&event) {
            bytes.push(b'\n');
            return Bytes::from(bytes);
        }
    }
    line(kind, render(target, object.clone(), table::View::Object))
}

/// The event line of a compact state: its stored JSON with the served `apiVersion` and `kind`
/// put in front (no parse, no copy of a `Value`).
fn compact_line(kind: &str, target: &Target, rev: &Revision) -> Bytes {
    let Some(json) = rev.compact_json() else {
        return line(
            kind,
            render(target, rev.value().into_owned(), table::View::Object),
        );
    };
    // `json` is a JSON object without the two keys: `{` then its members, if any.
    let members = json.strip_prefix('{').unwrap_or("}");
    let mut out = Vec::with_capacity(json.len() + 96);
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(Value::from(kind).to_string().as_bytes());
    out.extend_from_slice(b",\"object\":");
    let head = json!({"apiVersion": target.rt.api_version(), "kind": target.rt.kind}).to_string();
    out.extend_from_slice(head.trim_end_matches('}').as_bytes());
    if members != "}" {
        out.push(b',');
    }
    // `members` closes the object; one more brace closes the event.
    out.extend_from_slice(members.as_bytes());
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn render(target: &Target, obj: Value, view: table::View) -> Value {
    let mut obj = obj;
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(target.rt.api_version()));
        m.insert("kind".into(), json!(target.rt.kind));
    }
    match view {
        table::View::Table => table::to_table(&target.rt, &obj, "Object"),
        table::View::Metadata => table::to_partial_metadata(&obj),
        table::View::Object => obj,
    }
}

fn bookmark(target: &Target, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end && let Some(m) = meta.as_object_mut() {
        m.insert(
            "annotations".into(),
            json!({"k8s.io/initial-events-end": "true"}),
        );
    }
    json!({"apiVersion": target.rt.api_version(), "kind": target.rt.kind, "metadata": meta})
}

/// The watch event type a stored change is for this watch's filter, if any: selector
/// transitions make a change that moves an object into or out of the filter an `ADDED` or
/// `DELETED`.
fn translate(ev: &StoredEvent, filter: &Filter) -> Option<&'static str> {
    let now = filter.matches_revision(&ev.namespace, &ev.object);
    match ev.kind {
        EventKind::Added | EventKind::Deleted => now.then(|| ev.kind.as_str()),
        EventKind::Modified => {
            let before = ev
                .previous
                .as_ref()
                .is_some_and(|p| filter.matches_revision(&ev.namespace, p));
            match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    sh: Arc<Shared>,
    target: Target,
    filter: Filter,
    start: Option<u64>,
    bookmarks: bool,
    send_initial: bool,
    timeout: Duration,
    view: table::View,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let mut changed = sh.changed.subscribe();
    let mut drops = sh.faults.watch_drops();
    let mut stop = sh.stop.subscribe();
    drops.borrow_and_update();
    if sh.faults.take_expire_next_watch(&target.rt.plural) {
        let e = ApiError::Expired {
            requested: start.unwrap_or(0),
            oldest: sh.read(|s| s.current_rv()),
        };
        let _ = tx.send(line("ERROR", e.to_status())).await;
        return;
    }
    let (rt_group, rt_plural) = (target.rt.group.clone(), target.rt.plural.clone());
    // Initial state.
    let (mut last, initial): (u64, Vec<Value>) = match start {
        None => sh.read(|s| {
            let objs = s
                .list(&rt_group, &rt_plural, filter.namespace.as_deref())
                .into_iter()
                .filter(|o| filter.labels.matches_object(o) && filter.fields.matches(o))
                .cloned()
                .collect();
            (s.current_rv(), objs)
        }),
        Some(rv) => (rv, Vec::new()),
    };
    for obj in initial {
        if tx
            .send(line("ADDED", render(&target, obj, view)))
            .await
            .is_err()
        {
            return;
        }
    }
    if send_initial
        && bookmarks
        && tx
            .send(line("BOOKMARK", bookmark(&target, last, true)))
            .await
            .is_err()
    {
        return;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick =
        tokio::time::interval(sh.options.bookmark_interval.max(Duration::from_millis(10)));
    tick.tick().await;
    loop {
        // Deliver everything after `last`.
        let batch = sh.read(|s| {
            s.events_since(last, &rt_group, &rt_plural)
                .map(|evs| (evs, s.current_rv()))
        });
        match batch {
            Err(e) => {
                let _ = tx.send(line("ERROR", e.to_status())).await;
                return;
            }
            Ok((evs, current)) => {
                for ev in evs {
                    let Some(kind) = translate(&ev, &filter) else {
                        continue;
                    };
                    let bytes = match (view, &ev.object) {
                        (table::View::Object, Revision::Value(obj)) => {
                            object_line(kind, &target, obj)
                        }
                        (table::View::Object, rev @ Revision::Compact(_)) => {
                            compact_line(kind, &target, rev)
                        }
                        (_, rev) => line(kind, render(&target, rev.value().into_owned(), view)),
                    };
                    if tx.send(bytes).await.is_err() {
                        return;
                    }
                }
                last = last.max(current);
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tick.tick() => {
                if bookmarks && tx.send(line("BOOKMARK", bookmark(&target, last, false))).await.is_err() {
                    return;
                }
            }
            _ = drops.changed() => return,
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    /// A watch's target: ConfigMap `default/a`.
    fn configmap_target() -> Target {
        let registry = Registry::builtin();
        let rt = registry.find("", "v1", "configmaps").expect("configmaps");
        Target::object(rt, Some("default"), "a")
    }

    /// The API server's order (`metav1.WatchEvent`): `type`, then `object`.
    fn assert_type_first(line: &[u8], kind: &str) {
        let head = format!("{{\"type\":\"{kind}\",\"object\":");
        assert!(
            line.starts_with(head.as_bytes()),
            "{}",
            String::from_utf8_lossy(line)
        );
    }

    #[test]
    fn a_compact_line_says_what_the_rendered_copy_says() {
        let target = configmap_target();
        let objects = [
            json!({"metadata": {"name": "a", "managedFields": [{"manager": "m"}]}, "data": {"k": "v"}}),
            json!({"aaa": 1, "apiVersion": "old/v0", "b": 2, "kind": "Old", "metadata": {}, "zzz": [1, {"x": null}]}),
            json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            json!({}),
        ];
        for object in objects {
            let rev = Revision::of(Arc::new(object.clone()));
            assert!(rev.compact_json().is_some(), "{object}");
            for kind in ["ADDED", "MODIFIED", "DELETED"] {
                let rendered = line(kind, render(&target, object.clone(), table::View::Object));
                let compact = compact_line(kind, &target, &rev);
                assert!(compact.ends_with(b"\n"));
                assert_type_first(&compact, kind);
                assert_type_first(&rendered, kind);
                let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).expect("one JSON line");
                assert_eq!(parse(&compact), parse(&rendered), "{object}");
            }
        }
    }

    #[test]
    fn a_metadata_field_selector_matches_a_compact_state_without_a_parse() {
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "fe"}}, "status": {"phase": "Running"}});
        let rev = Revision::of(Arc::new(pod));
        for (fields, labels, want) in [
            ("metadata.name=p", "app=fe", true),
            ("metadata.name=q", "", false),
            ("status.phase=Running", "app=fe", true),
            ("status.phase=Pending", "", false),
            ("", "app=be", false),
        ] {
            let filter = Filter {
                namespace: None,
                labels: LabelSelector::parse(labels).unwrap(),
                fields: FieldSelector::parse(fields).unwrap(),
            };
            assert_eq!(
                filter.fields.reads_only_metadata(),
                !fields.starts_with("status"),
                "{fields}"
            );
            assert_eq!(filter.matches_revision("", &rev), want, "{fields} {labels}");
        }
    }

    #[test]
    fn an_object_line_is_the_bytes_of_the_rendered_copy() {
        let target = configmap_target();
        let objects = [
            json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
            // Keys before, between and after `apiVersion` and `kind`, and stale copies of both.
            json!({"aaa": 1, "apiVersion": "old/v0", "b": 2, "kind": "Old", "metadata": {}, "zzz": [1, {"x": null}]}),
            json!({}),
            json!("not an object"),
        ];
        for object in objects {
            for kind in ["ADDED", "MODIFIED", "DELETED"] {
                let copied = line(kind, render(&target, object.clone(), table::View::Object));
                assert_eq!(object_line(kind, &target, &object), copied, "{object}");
                assert_type_first(&copied, kind);
            }
        }
    }
}
