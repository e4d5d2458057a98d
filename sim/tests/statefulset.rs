//! StatefulSet behaviour, one test per statement of the Kubernetes documentation
//! ("StatefulSets" concept page and the "StatefulSet Basics" tutorial), driven through
//! kube::Client. Also the Deployment, kubelet, EndpointSlice, GC and audit behaviour the
//! operator relies on.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube_sim::jsonpath::JsonPath;
use kube_sim::{PodFailure, Sim};
use serde_json::{Value, json};

fn sts(name: &str, replicas: i32, image: &str, extra_spec: Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas, "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": image}]}},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec})).expect("sts")
}

async fn pods_by_name(pods: &Api<Pod>, app: &str) -> BTreeMap<String, Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
        .collect()
}

fn rev(p: &Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits until the set reports a completed rollout (the `kubectl rollout status` conditions).
async fn rolled_out(api: &Api<StatefulSet>, name: &str, replicas: i32) -> StatefulSet {
    common::eventually(20, || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            let s = api.get(&name).await.ok()?;
            let st = s.status.clone()?;
            let done = st.observed_generation == s.metadata.generation
                && st.ready_replicas == Some(replicas)
                && st.updated_replicas == Some(replicas)
                && st.replicas == replicas
                && st.current_revision == st.update_revision;
            done.then_some(s)
        }
    })
    .await
}

/// Pod watch events (type, name) in arrival order.
type EventLog = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Records pod watch events (type, name) in arrival order.
fn record_pod_events(client: kube::Client) -> (tokio::task::JoinHandle<()>, EventLog) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log2 = log.clone();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let handle = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default()));
        while let Some(ev) = stream.next().await {
            let entry = match ev {
                Ok(watcher::Event::Apply(p)) => ("apply", p),
                Ok(watcher::Event::Delete(p)) => ("delete", p),
                _ => continue,
            };
            let name = entry.1.metadata.name.clone().unwrap_or_default();
            if let Ok(mut g) = log2.lock() {
                g.push((entry.0.to_string(), name));
            }
        }
    });
    (handle, log)
}

fn first_seen(log: &[(String, String)], kind: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (k, n) in log {
        if k == kind && !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

async fn setup() -> (Sim, kube::Client, Api<StatefulSet>, Api<Pod>) {
    let (sim, client) = common::start(common::fast()).await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    (sim, client, sets, pods)
}

/// "For a StatefulSet with N replicas, each Pod in the StatefulSet will be assigned an integer
/// ordinal, that is unique over the Set" and pods get the `statefulset.kubernetes.io/pod-name`
/// label; the revision is recorded in a ControllerRevision and on the pods.
#[tokio::test]
async fn pods_have_stable_ordinal_names_and_revision_labels() {
    let (_sim, client, sets, pods) = setup().await;
    sets.create(&PostParams::default(), &sts("web", 3, "nginx:1", json!({})))
        .await
        .expect("create");
    let s = rolled_out(&sets, "web", 3).await;
    let update = s
        .status
        .and_then(|st| st.update_revision)
        .expect("update revision");
    assert!(update.starts_with("web-"));
    let ps = pods_by_name(&pods, "web").await;
    assert_eq!(
        ps.keys().cloned().collect::<Vec<_>>(),
        vec!["web-0", "web-1", "web-2"]
    );
    for (name, p) in &ps {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("statefulset.kubernetes.io/pod-name"), Some(name));
        assert_eq!(rev(p), update);
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.hostname.clone()).as_ref(),
            Some(name)
        );
    }
    let revs: Api<ControllerRevision> = Api::namespaced(client, "default");
    let r = revs.get(&update).await.expect("controller revision");
    assert_eq!(r.revision, Some(1));
}

/// OrderedReady: "Before a scaling operation is applied to a Pod, all of its predecessors must
/// be Running and Ready" and pods are created in order 0..N-1.
#[tokio::test]
async fn ordered_ready_creates_in_order_and_waits_for_readiness() {
    let (sim, client, sets, pods) = setup().await;
    let (h, log) = record_pod_events(client.clone());
    sim.fail_pods_with_image("never:", PodFailure::NeverReady);
    sets.create(&PostParams::default(), &sts("ord", 3, "never:1", json!({})))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ps = pods_by_name(&pods, "ord").await;
    assert_eq!(
        ps.keys().cloned().collect::<Vec<_>>(),
        vec!["ord-0"],
        "ord-1 waits for ord-0 to be ready"
    );
    sim.clear_pod_failures();
    rolled_out(&sets, "ord", 3).await;
    let order = first_seen(&log.lock().map(|g| g.clone()).unwrap_or_default(), "apply");
    assert_eq!(order, vec!["ord-0", "ord-1", "ord-2"]);
    h.abort();
}

/// Parallel: "launch or terminate all Pods in parallel, and to not wait for Pods to become
/// Running and Ready".
#[tokio::test]
async fn parallel_creates_all_pods_without_waiting() {
    let (sim, _client, sets, pods) = setup().await;
    sim.fail_pods_with_image("never:", PodFailure::NeverReady);
    sets.create(
        &PostParams::default(),
        &sts(
            "par",
            3,
            "never:1",
            json!({"podManagementPolicy": "Parallel"}),
        ),
    )
    .await
    .expect("create");
    let names = common::eventually(5, || {
        let pods = pods.clone();
        async move {
            let ps = pods_by_name(&pods, "par").await;
            (ps.len() == 3).then(|| ps.keys().cloned().collect::<Vec<_>>())
        }
    })
    .await;
    assert_eq!(names, vec!["par-0", "par-1", "par-2"]);
    assert!(pods_by_name(&pods, "par").await.values().all(|p| !ready(p)));
}

/// The pods a StatefulSet creates at once from one revision each carry the controller's
/// managedFields entry of their own fields: the simulator reuses the first pod's `FieldsV1`
/// for the next ones (they differ in values only, also with a volume per claim template),
/// and this checks the reused entries against the fields each pod actually has.
#[tokio::test]
async fn pods_created_together_each_own_exactly_their_fields() {
    let (sim, _client, sets, pods) = setup().await;
    sim.fail_pods_with_image("never:", PodFailure::NeverReady);
    let claims = json!({
        "podManagementPolicy": "Parallel",
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    });
    sets.create(&PostParams::default(), &sts("own", 3, "never:1", claims))
        .await
        .expect("create");
    common::eventually(5, || {
        let pods = pods.clone();
        async move { (pods_by_name(&pods, "own").await.len() == 3).then_some(()) }
    })
    .await;
    let mut stored = Vec::new();
    sim.visit("", "pods", |p| stored.push(p.clone()));
    assert_eq!(stored.len(), 3);
    for pod in stored {
        let entries = pod["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let created = entries
            .iter()
            .find(|e| e["manager"] == "kube-controller-manager")
            .unwrap_or_else(|| panic!("no creator entry: {pod}"));
        // The pod as created: the kubelet's status and the server's bookkeeping left out.
        let mut as_created = pod.clone();
        if let Some(m) = as_created.as_object_mut() {
            m.remove("status");
        }
        if let Some(m) = as_created["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        let computed = kube_sim::fields::fields_v1_of(
            &as_created,
            kube_sim::listtypes::Shape::root(None, false),
        );
        assert_eq!(created["fieldsV1"], computed, "{}", pod["metadata"]["name"]);
        assert!(
            computed
                .at("/f:spec/f:volumes/k:{\"name\":\"data\"}")
                .is_some()
                && computed.at("/f:spec/f:hostname").is_some(),
            "{computed}"
        );
    }
}

/// "When Pods are being deleted, they are terminated in reverse order, from {N-1..0}."
#[tokio::test]
async fn scale_down_removes_highest_ordinals_first() {
    let (_sim, client, sets, pods) = setup().await;
    sets.create(
        &PostParams::default(),
        &sts("down", 4, "nginx:1", json!({})),
    )
    .await
    .expect("create");
    rolled_out(&sets, "down", 4).await;
    let (h, log) = record_pod_events(client.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    sets.patch(
        "down",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale");
    rolled_out(&sets, "down", 1).await;
    let deleted = common::eventually(5, || {
        let d = first_seen(&log.lock().map(|g| g.clone()).unwrap_or_default(), "delete");
        async move { (d.len() >= 3).then_some(d) }
    })
    .await;
    assert_eq!(deleted, vec!["down-3", "down-2", "down-1"]);
    assert_eq!(
        pods_by_name(&pods, "down")
            .await
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec!["down-0"]
    );
    h.abort();
}

/// RollingUpdate: "The StatefulSet controller will delete and recreate each Pod in the
/// StatefulSet. It will proceed in the same order as Pod termination (from the largest ordinal
/// to the smallest), updating each Pod one at a time."
#[tokio::test]
async fn rolling_update_goes_in_reverse_ordinal_order() {
    let (_sim, client, sets, pods) = setup().await;
    sets.create(
        &PostParams::default(),
        &sts("roll", 3, "nginx:1", json!({})),
    )
    .await
    .expect("create");
    let before = rolled_out(&sets, "roll", 3).await;
    let old_rev = before
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    let (h, log) = record_pod_events(client.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    sets.patch("roll", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}})))
        .await
        .expect("update");
    let after = rolled_out(&sets, "roll", 3).await;
    let st = after.status.expect("status");
    assert_ne!(st.update_revision.as_deref(), Some(old_rev.as_str()));
    assert_eq!(st.current_revision, st.update_revision);
    let deleted = common::eventually(5, || {
        let d = first_seen(&log.lock().map(|g| g.clone()).unwrap_or_default(), "delete");
        async move { (d.len() >= 3).then_some(d) }
    })
    .await;
    assert_eq!(deleted, vec!["roll-2", "roll-1", "roll-0"]);
    for p in pods_by_name(&pods, "roll").await.values() {
        assert_eq!(Some(rev(p)), st.update_revision);
        let image = p
            .spec
            .as_ref()
            .map(|s| s.containers[0].image.clone().unwrap_or_default());
        assert_eq!(image.as_deref(), Some("nginx:2"));
    }
    h.abort();
}

/// "The StatefulSet controller ... will wait until an updated Pod is Running and Ready prior to
/// updating its predecessor", and currentRevision stays until the update completes.
#[tokio::test]
async fn rolling_update_waits_for_each_updated_pod_to_be_ready() {
    let (sim, _client, sets, pods) = setup().await;
    sets.create(&PostParams::default(), &sts("wait", 3, "good:1", json!({})))
        .await
        .expect("create");
    let before = rolled_out(&sets, "wait", 3).await;
    let old_rev = before
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    sim.fail_pods_with_image("bad:", PodFailure::CrashLoop);
    sets.patch("wait", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "bad:2"}]}}}})))
        .await
        .expect("update");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ps = pods_by_name(&pods, "wait").await;
    assert_ne!(
        rev(&ps["wait-2"]),
        old_rev,
        "the highest ordinal was replaced"
    );
    assert_eq!(
        rev(&ps["wait-1"]),
        old_rev,
        "wait-1 waits for wait-2 to become ready"
    );
    assert_eq!(rev(&ps["wait-0"]), old_rev);
    let restarts = ps["wait-2"]
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|c| c[0].restart_count)
        .unwrap_or(0);
    assert!(restarts >= 1, "crash loop restarts: {restarts}");
    let st = sets.get("wait").await.expect("get").status.expect("status");
    assert_eq!(st.current_revision.as_deref(), Some(old_rev.as_str()));
    assert_ne!(st.current_revision, st.update_revision);
    assert_eq!(st.updated_replicas, Some(1));
    assert_eq!(st.current_replicas, Some(2));
    assert_eq!(st.ready_replicas, Some(2));
    sim.clear_pod_failures();
    rolled_out(&sets, "wait", 3).await;
}

/// Partitions: "All Pods with an ordinal that is greater than or equal to the partition will be
/// updated ... All Pods with an ordinal that is less than the partition will not be updated,
/// and, even if they are deleted, they will be recreated at the previous version."
#[tokio::test]
async fn partition_limits_the_update_and_recreates_below_it_at_the_old_revision() {
    let (_sim, _client, sets, pods) = setup().await;
    sets.create(
        &PostParams::default(),
        &sts(
            "part",
            4,
            "nginx:1",
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
        ),
    )
    .await
    .expect("create");
    let before = rolled_out(&sets, "part", 4).await;
    let old_rev = before
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    sets.patch("part", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}})))
        .await
        .expect("update");
    let st = common::eventually(10, || {
        let sets = sets.clone();
        async move {
            let st = sets.get("part").await.ok()?.status?;
            (st.updated_replicas == Some(2) && st.ready_replicas == Some(4)).then_some(st)
        }
    })
    .await;
    assert_eq!(
        st.current_revision.as_deref(),
        Some(old_rev.as_str()),
        "partitioned update never completes"
    );
    pods.delete("part-0", &DeleteParams::default())
        .await
        .expect("delete");
    let ps = common::eventually(10, || {
        let pods = pods.clone();
        async move {
            let ps = pods_by_name(&pods, "part").await;
            (ps.len() == 4 && ps.values().all(ready)).then_some(ps)
        }
    })
    .await;
    assert_eq!(rev(&ps["part-0"]), old_rev);
    assert_eq!(rev(&ps["part-1"]), old_rev);
    assert_eq!(Some(rev(&ps["part-2"])), st.update_revision);
    assert_eq!(Some(rev(&ps["part-3"])), st.update_revision);
}

/// OnDelete: "the StatefulSet controller will not automatically update the Pods ... Users must
/// manually delete Pods to cause the controller to create new Pods that reflect modifications".
#[tokio::test]
async fn on_delete_updates_only_deleted_pods() {
    let (_sim, _client, sets, pods) = setup().await;
    sets.create(
        &PostParams::default(),
        &sts(
            "od",
            2,
            "nginx:1",
            json!({"updateStrategy": {"type": "OnDelete"}}),
        ),
    )
    .await
    .expect("create");
    let before = rolled_out(&sets, "od", 2).await;
    let old_rev = before
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    sets.patch("od", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}})))
        .await
        .expect("update");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ps = pods_by_name(&pods, "od").await;
    assert!(
        ps.values().all(|p| rev(p) == old_rev),
        "no automatic replacement"
    );
    pods.delete("od-1", &DeleteParams::default())
        .await
        .expect("delete");
    let ps = common::eventually(10, || {
        let pods = pods.clone();
        let old_rev = old_rev.clone();
        async move {
            let ps = pods_by_name(&pods, "od").await;
            (ps.len() == 2
                && ps
                    .get("od-1")
                    .is_some_and(|p| rev(p) != old_rev && ready(p)))
            .then_some(ps)
        }
    })
    .await;
    assert_eq!(rev(&ps["od-0"]), old_rev);
    // As in the upstream controller, currentRevision only advances for RollingUpdate.
    let st = sets.get("od").await.expect("get").status.expect("status");
    assert_eq!(st.current_revision.as_deref(), Some(old_rev.as_str()));
    assert_eq!(
        (st.current_replicas, st.updated_replicas),
        (Some(1), Some(1))
    );
}

/// With `maxUnavailable` (RollingUpdate), up to that many pods are replaced at once.
#[tokio::test]
async fn max_unavailable_replaces_several_pods_at_once() {
    let (sim, _client, sets, pods) = setup().await;
    sets.create(
        &PostParams::default(),
        &sts("mu", 4, "good:1", json!({"podManagementPolicy": "Parallel", "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}})),
    )
    .await
    .expect("create");
    let before = rolled_out(&sets, "mu", 4).await;
    let old_rev = before
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    sim.fail_pods_with_image("bad:", PodFailure::NeverReady);
    sets.patch("mu", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "bad:2"}]}}}})))
        .await
        .expect("update");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ps = pods_by_name(&pods, "mu").await;
    let updated: Vec<&String> = ps
        .iter()
        .filter(|(_, p)| rev(p) != old_rev)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        updated,
        vec!["mu-2", "mu-3"],
        "two highest ordinals replaced, then blocked"
    );
}

/// Deleting a pod: the controller recreates it with the same identity; a Failed pod is replaced.
#[tokio::test]
async fn deleted_and_failed_pods_are_recreated() {
    let (sim, _client, sets, pods) = setup().await;
    sets.create(&PostParams::default(), &sts("re", 2, "nginx:1", json!({})))
        .await
        .expect("create");
    rolled_out(&sets, "re", 2).await;
    let uid0 = pods.get("re-0").await.expect("pod").metadata.uid;
    pods.delete("re-0", &DeleteParams::default())
        .await
        .expect("delete");
    let p = common::eventually(10, || {
        let pods = pods.clone();
        let uid0 = uid0.clone();
        async move {
            pods.get("re-0")
                .await
                .ok()
                .filter(|p| p.metadata.uid != uid0 && ready(p))
        }
    })
    .await;
    let uid1 = p.metadata.uid;
    sim.fail_pod("default", "re-1").expect("fail pod");
    common::eventually(10, || {
        let pods = pods.clone();
        let uid1 = uid1.clone();
        async move {
            pods.get("re-1")
                .await
                .ok()
                .filter(|p| p.metadata.uid != uid1 && ready(p))
                .map(|_| ())
        }
    })
    .await;
}

/// observedGeneration lags the generation by the configured (simulated) delay.
#[tokio::test]
async fn observed_generation_lags_by_the_configured_delay() {
    let options = kube_sim::SimOptions {
        observed_generation_lag: Duration::from_secs(60),
        ..common::fast()
    };
    let (_sim, client) = common::start(options).await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &sts("lag", 1, "nginx:1", json!({})))
        .await
        .expect("create");
    rolled_out(&sets, "lag", 1).await;
    let start = std::time::Instant::now();
    let patched = sets
        .patch(
            "lag",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale");
    assert_eq!(patched.metadata.generation, Some(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st = sets.get("lag").await.expect("get").status.expect("status");
    assert_eq!(st.observed_generation, Some(1), "status not yet caught up");
    assert_eq!(st.replicas, 1, "the controller has not acted yet");
    rolled_out(&sets, "lag", 2).await;
    assert!(
        start.elapsed() >= Duration::from_millis(590),
        "60 s simulated at 100x is 600 ms real"
    );
}

/// Status counts during and after a scale-up.
#[tokio::test]
async fn status_counts_replicas() {
    let (_sim, _client, sets, _pods) = setup().await;
    sets.create(&PostParams::default(), &sts("cnt", 2, "nginx:1", json!({})))
        .await
        .expect("create");
    let s = rolled_out(&sets, "cnt", 2).await;
    let st = s.status.expect("status");
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.current_replicas,
            st.updated_replicas,
            st.available_replicas
        ),
        (2, Some(2), Some(2), Some(2), Some(2))
    );
    assert_eq!(st.observed_generation, Some(1));
}

/// Deleting a StatefulSet garbage-collects its pods and ControllerRevisions (ownerReferences).
#[tokio::test]
async fn deleting_the_set_collects_pods_and_revisions() {
    let (_sim, client, sets, pods) = setup().await;
    sets.create(&PostParams::default(), &sts("gc", 2, "nginx:1", json!({})))
        .await
        .expect("create");
    rolled_out(&sets, "gc", 2).await;
    sets.delete("gc", &DeleteParams::background())
        .await
        .expect("delete");
    let revs: Api<ControllerRevision> = Api::namespaced(client, "default");
    common::eventually(10, || {
        let pods = pods.clone();
        let revs = revs.clone();
        async move {
            let p = pods_by_name(&pods, "gc").await;
            let r = revs.list(&ListParams::default()).await.ok()?;
            (p.is_empty() && r.items.is_empty()).then_some(())
        }
    })
    .await;
}

/// EndpointSlices list the pods of a Service's selector with their readiness.
#[tokio::test]
async fn endpoint_slices_follow_pod_readiness() {
    let (sim, client, sets, _pods) = setup().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "eps"}, "spec": {"selector": {"app": "eps"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})).expect("svc");
    svcs.create(&PostParams::default(), &svc)
        .await
        .expect("svc");
    sim.fail_pods_with_image("slow:", PodFailure::NeverReady);
    sets.create(
        &PostParams::default(),
        &sts(
            "eps",
            2,
            "slow:1",
            json!({"podManagementPolicy": "Parallel"}),
        ),
    )
    .await
    .expect("create");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().labels("kubernetes.io/service-name=eps");
    let not_ready = common::eventually(10, || {
        let slices = slices.clone();
        let lp = lp.clone();
        async move {
            let s = slices.list(&lp).await.ok()?.items.into_iter().next()?;
            (s.endpoints.as_ref().map(Vec::len) == Some(2)).then_some(s)
        }
    })
    .await;
    assert!(
        not_ready
            .endpoints
            .iter()
            .flatten()
            .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(false))
    );
    assert_eq!(not_ready.ports.as_ref().and_then(|p| p[0].port), Some(8080));
    sim.clear_pod_failures();
    common::eventually(10, || {
        let slices = slices.clone();
        let lp = lp.clone();
        async move {
            let s = slices.list(&lp).await.ok()?.items.into_iter().next()?;
            s.endpoints
                .iter()
                .flatten()
                .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .then_some(())
        }
    })
    .await;
}

/// A Deployment rolls out through a new ReplicaSet and scales the old one to zero.
#[tokio::test]
async fn deployment_rolls_out_a_new_replica_set() {
    let (_sim, client) = common::start(common::fast()).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "proxy"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "proxy"}},
        "template": {"metadata": {"labels": {"app": "proxy"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}}})).expect("deploy");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("create");
    let done = |deps: Api<Deployment>| async move {
        let d = deps.get("proxy").await.ok()?;
        let st = d.status.clone()?;
        let progressing = st.conditions.as_ref()?.iter().any(|c| {
            c.type_.as_deref() == Some("Progressing")
                && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        });
        (st.observed_generation == d.metadata.generation
            && st.updated_replicas == Some(2)
            && st.available_replicas == Some(2)
            && st.replicas == Some(2)
            && progressing)
            .then_some(())
    };
    common::eventually(10, || done(deps.clone())).await;
    deps.patch("proxy", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}})))
        .await
        .expect("update");
    common::eventually(10, || done(deps.clone())).await;
    let rss: Api<ReplicaSet> = Api::namespaced(client, "default");
    let list = rss.list(&ListParams::default()).await.expect("rs");
    assert_eq!(list.items.len(), 2);
    let active: Vec<_> = list
        .items
        .iter()
        .filter(|r| r.spec.replicas == Some(2))
        .collect();
    assert_eq!(active.len(), 1);
    let tmpl_image = active[0]
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers[0].image.clone());
    assert_eq!(tmpl_image, Some(Some("nginx:2".to_string())));
}

/// The audit log records each template change with generation and images, in order.
#[tokio::test]
async fn audit_records_template_changes_with_images() {
    let (sim, _client, sets, _pods) = setup().await;
    sets.patch(
        "au",
        &PatchParams::apply("starrocks-operator").force(),
        &Patch::Apply(sts("au", 1, "fe:3.3.1", json!({}))),
    )
    .await
    .expect("apply");
    sets.patch(
        "au",
        &PatchParams::apply("starrocks-operator").force(),
        &Patch::Apply(sts("au", 2, "fe:3.3.1", json!({}))),
    )
    .await
    .expect("apply");
    sets.patch(
        "au",
        &PatchParams::apply("starrocks-operator").force(),
        &Patch::Apply(sts("au", 2, "fe:3.3.2", json!({}))),
    )
    .await
    .expect("apply");
    let writes: Vec<_> = sim
        .audit()
        .into_iter()
        .filter(|e| e.resource == "statefulsets" && e.verb == "patch")
        .collect();
    assert_eq!(writes.len(), 3);
    assert!(
        writes
            .iter()
            .all(|e| e.field_manager.as_deref() == Some("starrocks-operator") && e.code < 300)
    );
    assert_eq!(
        writes.iter().map(|e| e.generation).collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(3)]
    );
    assert_eq!(
        writes
            .iter()
            .map(|e| e.template_changed)
            .collect::<Vec<_>>(),
        vec![true, false, true]
    );
    assert_eq!(writes[2].images, vec!["fe:3.3.2".to_string()]);
    assert_eq!(writes[0].images, vec!["fe:3.3.1".to_string()]);
}
