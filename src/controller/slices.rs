//! The EndpointSlices of each Service, kept from the slice watch.
//!
//! A reconcile reads the slices of its cluster's Services. The reflector's store has no
//! secondary index, and slice names are generated (`<service>-<suffix>`, Kubernetes docs
//! "EndpointSlices"), so without this index every reconcile would scan every cached slice of
//! every cluster: O(clusters) per reconcile.

use super::observe::SERVICE_NAME_LABEL;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// `(namespace, Service name)` to the names of its slices.
type Index = HashMap<(String, String), BTreeSet<String>>;

/// Slice names by Service, updated from the watcher events that also feed the slice cache
/// (call [`SliceIndex::record`] after the reflector has applied the event, so that a reconcile
/// triggered by the event finds the slice in both). Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct SliceIndex {
    live: Arc<Mutex<Index>>,
    /// Built during a relist (`Init` .. `InitDone`), then swapped in, as the store does.
    relist: Arc<Mutex<Option<Index>>>,
}

/// The index key and name of a slice; `None` for a slice without namespace, name or the
/// `kubernetes.io/service-name` label.
fn key_of(slice: &EndpointSlice) -> Option<((String, String), String)> {
    let namespace = slice.metadata.namespace.clone()?;
    let name = slice.metadata.name.clone()?;
    let service = slice.labels().get(SERVICE_NAME_LABEL)?.clone();
    Some(((namespace, service), name))
}

impl SliceIndex {
    /// Applies one watcher event.
    pub fn record(&self, event: &watcher::Event<EndpointSlice>) {
        match event {
            watcher::Event::Apply(slice) => {
                if let Some((key, name)) = key_of(slice) {
                    crate::lock(&self.live).entry(key).or_default().insert(name);
                }
            }
            watcher::Event::Delete(slice) => {
                if let Some((key, name)) = key_of(slice) {
                    let mut live = crate::lock(&self.live);
                    if let Some(names) = live.get_mut(&key) {
                        names.remove(&name);
                        if names.is_empty() {
                            live.remove(&key);
                        }
                    }
                }
            }
            watcher::Event::Init => *crate::lock(&self.relist) = Some(Index::new()),
            watcher::Event::InitApply(slice) => {
                if let (Some((key, name)), Some(index)) =
                    (key_of(slice), crate::lock(&self.relist).as_mut())
                {
                    index.entry(key).or_default().insert(name);
                }
            }
            watcher::Event::InitDone => {
                if let Some(index) = crate::lock(&self.relist).take() {
                    *crate::lock(&self.live) = index;
                }
            }
        }
    }

    /// References to the slices of Service `service` in `namespace` (for the slice cache).
    pub fn slices_of(&self, namespace: &str, service: &str) -> Vec<ObjectRef<EndpointSlice>> {
        crate::lock(&self.live)
            .get(&(namespace.to_string(), service.to_string()))
            .into_iter()
            .flatten()
            .map(|name| ObjectRef::new(name).within(namespace))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn slice(name: &str, service: &str) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), service.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(index: &SliceIndex, service: &str) -> Vec<String> {
        index
            .slices_of("ns", service)
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    #[test]
    fn follows_applies_deletes_and_relists() {
        let index = SliceIndex::default();
        index.record(&watcher::Event::Apply(slice("fe-a", "fe")));
        index.record(&watcher::Event::Apply(slice("fe-b", "fe")));
        index.record(&watcher::Event::Apply(slice("be-a", "be")));
        assert_eq!(names(&index, "fe"), ["fe-a", "fe-b"]);
        index.record(&watcher::Event::Delete(slice("fe-a", "fe")));
        assert_eq!(names(&index, "fe"), ["fe-b"]);
        assert!(names(&index, "cn").is_empty());
        // A relist replaces the contents only when it is complete.
        index.record(&watcher::Event::Init);
        index.record(&watcher::Event::InitApply(slice("cn-a", "cn")));
        assert_eq!(names(&index, "be"), ["be-a"]);
        index.record(&watcher::Event::InitDone);
        assert!(names(&index, "be").is_empty());
        assert_eq!(names(&index, "cn"), ["cn-a"]);
    }
}
