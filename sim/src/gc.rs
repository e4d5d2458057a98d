//! The garbage collector: ownerReference-based cascading deletion.
//!
//! From the Kubernetes docs "Garbage Collection" and "Use Cascading Deletion": a dependent whose
//! owners are all gone is deleted (background); an owner deleted with `Foreground` keeps a
//! `foregroundDeletion` finalizer until its dependents are gone; with `Orphan` its dependents
//! lose the owner reference and the `orphan` finalizer is removed.

use crate::jsonpath::JsonPath;
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::clock::SimClock;
use crate::controllers;
use crate::store::{EventKind, Store, obj_key};

const GC_MANAGER: &str = "generic-garbage-collector";

/// The garbage collector. Like the other simulated controllers it learns what to look at from
/// the store's changes since its last pass ([`controllers::Changes`]), as the real one follows
/// its informers: an object can become an orphan only when an owner it refers to is deleted,
/// or when it is written with references to owners that are gone, so a pass looks only at the
/// owners named by the changes (the uids of deleted objects and the owner references of the
/// written ones). On its first pass, when those changes have been compacted away and after a
/// pass that hit an error, it looks at every referenced owner.
#[derive(Debug, Default)]
pub struct GarbageCollector {
    changes: controllers::Changes,
}

impl GarbageCollector {
    /// One collection pass.
    pub fn pass(&mut self, store: &mut Store, clock: &SimClock) {
        let errors = controllers::error_count();
        collect(store, clock, &mut self.changes);
        if controllers::error_count() != errors {
            self.changes.reset();
        }
    }
}

/// The owner uids that a pass must look at: those named by the changes since the last pass,
/// or every referenced one (see [`GarbageCollector`]).
fn suspects<'s>(store: &'s Store, changes: &mut controllers::Changes) -> BTreeSet<&'s str> {
    let Some(changes) = changes.read(store) else {
        return store.referenced_owners().collect();
    };
    let mut uids = BTreeSet::new();
    for ev in changes {
        let meta = ev.object.meta();
        if ev.kind == EventKind::Deleted
            && let Some(uid) = meta.at("/metadata/uid").and_then(Value::as_str)
        {
            uids.insert(uid);
        }
        let refs = meta
            .at("/metadata/ownerReferences")
            .and_then(Value::as_array);
        uids.extend(refs.into_iter().flatten().filter_map(|r| r["uid"].as_str()));
    }
    uids
}

fn collect(store: &mut Store, clock: &SimClock, changes: &mut controllers::Changes) {
    // Orphans: only dependents of owners that no longer exist can be orphans (the store
    // indexes objects by the owner uids they refer to), visited in store order.
    let mut orphans = BTreeSet::new();
    let mut finalizing = Vec::new();
    for owner in suspects(store, changes) {
        if store.has_uid(owner) {
            continue;
        }
        for ((group, plural), obj) in store.all_dependents(owner) {
            let refs = obj
                .at("/metadata/ownerReferences")
                .and_then(Value::as_array);
            if let Some(refs) = refs
                && !refs.is_empty()
                && obj.at("/metadata/deletionTimestamp").is_none()
                && refs
                    .iter()
                    .all(|r| r["uid"].as_str().is_none_or(|u| !store.has_uid(u)))
            {
                orphans.insert((group.clone(), plural.clone(), obj_key(obj)));
            }
        }
    }
    for ((group, plural), obj) in store.terminating() {
        let Some(fins) = obj.at("/metadata/finalizers").and_then(Value::as_array) else {
            continue;
        };
        if fins.contains(&json!("foregroundDeletion")) || fins.contains(&json!("orphan")) {
            finalizing.push((group.clone(), plural.clone(), obj.clone()));
        }
    }
    for (g, p, (ns, name)) in orphans {
        controllers::log_err(
            "gc delete",
            controllers::delete(store, clock, &g, &p, &ns, &name),
        );
    }
    for (g, p, owner) in finalizing {
        let uid = owner
            .at("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let dependents: Vec<(String, String, Value)> = store
            .all_dependents(&uid)
            .into_iter()
            .map(|((dg, dp), o)| (dg.clone(), dp.clone(), o.clone()))
            .collect();
        let fins: Vec<Value> = owner
            .at("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let foreground = fins.contains(&json!("foregroundDeletion"));
        let mut remaining_fins = fins.clone();
        if foreground {
            let mut waiting = false;
            for (dg, dp, d) in &dependents {
                if d.at("/metadata/deletionTimestamp").is_none() {
                    let (ns, name) = obj_key(d);
                    controllers::log_err(
                        "gc foreground delete",
                        controllers::delete(store, clock, dg, dp, &ns, &name),
                    );
                }
                waiting = waiting || store.get(dg, dp, &obj_key(d).0, &obj_key(d).1).is_some();
            }
            if !waiting {
                remaining_fins.retain(|f| f != "foregroundDeletion");
            }
        } else {
            for (dg, dp, d) in dependents {
                let mut d = d;
                if let Some(refs) = d
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                }
                controllers::log_err(
                    "gc orphan",
                    controllers::update_as(store, clock, &dg, &dp, d, GC_MANAGER),
                );
            }
            remaining_fins.retain(|f| f != "orphan");
        }
        if remaining_fins != fins {
            let mut o = owner.clone();
            if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("finalizers".into(), Value::Array(remaining_fins));
            }
            controllers::log_err(
                "gc finalizer",
                controllers::update_as(store, clock, &g, &p, o, GC_MANAGER),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{self, DeleteOpts};
    use crate::resources::Registry;

    fn cm(name: &str, owner: Option<&Value>) -> Value {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}});
        if let Some(o) = owner {
            obj["metadata"]["ownerReferences"] = json!([controllers::controller_ref(o)]);
        }
        obj
    }

    /// A store with namespace `ns`.
    fn store_with_namespace() -> Store {
        let mut store = Store::new(Registry::builtin(), 1000);
        store.put(
            "",
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
        );
        store
    }

    fn delete(store: &mut Store, clock: &SimClock, name: &str, propagation: &str) {
        let t = controllers::target(store, "", "configmaps", "ns", name).unwrap();
        let opts = DeleteOpts {
            propagation: Some(propagation.into()),
            ..Default::default()
        };
        api::delete(store, clock, &t, &opts).unwrap();
    }

    /// The collector looks only at the owners that changes name, and still finds every orphan:
    /// a chain deleted in the background goes one level per pass, and a dependent written
    /// later with a reference to an owner that is gone goes at the next pass. A collector that
    /// has not passed yet sees every referenced owner.
    #[test]
    fn orphans_are_found_from_the_changes() {
        let clock = SimClock::new(1.0);
        let mut store = store_with_namespace();
        let mut gc = GarbageCollector::default();
        gc.pass(&mut store, &clock);
        let mk = |store: &mut Store, name: &str, owner: Option<&Value>| {
            controllers::create_as(store, &clock, "", "configmaps", cm(name, owner), "t", None)
                .unwrap()
                .stored
        };
        let top = mk(&mut store, "top", None);
        let mid = mk(&mut store, "mid", Some(&top));
        mk(&mut store, "leaf", Some(&mid));
        let unrelated = mk(&mut store, "unrelated", None);
        mk(&mut store, "kept", Some(&unrelated));
        gc.pass(&mut store, &clock);
        delete(&mut store, &clock, "top", "Background");
        let names = |store: &Store| -> Vec<String> {
            store
                .list("", "configmaps", Some("ns"))
                .into_iter()
                .map(|o| obj_key(o).1)
                .collect()
        };
        gc.pass(&mut store, &clock);
        assert_eq!(names(&store), ["kept", "leaf", "unrelated"]);
        gc.pass(&mut store, &clock);
        assert_eq!(names(&store), ["kept", "unrelated"]);
        // Written after its owner is gone (a stale reference): collected at the next pass.
        mk(&mut store, "late", Some(&mid));
        assert_eq!(names(&store), ["kept", "late", "unrelated"]);
        gc.pass(&mut store, &clock);
        assert_eq!(names(&store), ["kept", "unrelated"]);
        // A fresh collector (first pass: every referenced owner) finds one left behind too.
        mk(&mut store, "stale", Some(&top));
        GarbageCollector::default().pass(&mut store, &clock);
        assert_eq!(names(&store), ["kept", "unrelated"]);
    }

    /// Foreground: the owner waits (finalizer) until its dependents are gone. Orphan: the
    /// dependents lose the owner reference and stay.
    #[test]
    fn foreground_and_orphan_deletion() {
        let clock = SimClock::new(1.0);
        let mut store = store_with_namespace();
        for (owner, dependent) in [("fg", "fg-dep"), ("or", "or-dep")] {
            let o = controllers::create_as(
                &mut store,
                &clock,
                "",
                "configmaps",
                cm(owner, None),
                "t",
                None,
            )
            .unwrap();
            controllers::create_as(
                &mut store,
                &clock,
                "",
                "configmaps",
                cm(dependent, Some(&o.stored)),
                "t",
                None,
            )
            .unwrap();
        }
        delete(&mut store, &clock, "fg", "Foreground");
        delete(&mut store, &clock, "or", "Orphan");
        assert!(
            store.get("", "configmaps", "ns", "fg").is_some(),
            "foreground owner waits"
        );
        let mut gc = GarbageCollector::default();
        for _ in 0..3 {
            gc.pass(&mut store, &clock);
        }
        assert!(store.get("", "configmaps", "ns", "fg-dep").is_none());
        assert!(store.get("", "configmaps", "ns", "fg").is_none());
        assert!(store.get("", "configmaps", "ns", "or").is_none());
        let orphan = store
            .get("", "configmaps", "ns", "or-dep")
            .expect("orphan kept");
        assert!(
            orphan
                .at("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        );
    }
}
