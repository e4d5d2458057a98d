//! kube::Client against the simulator: CRUD, selectors, pagination, conflicts, patches,
//! server-side apply, status/scale subresources, CRDs, watcher/reflector/Controller.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .expect("cm")
}

#[tokio::test]
async fn crud_selectors_pagination_and_conflicts() {
    let (sim, client) = common::start(common::fast()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &cm(
                &format!("c{i}"),
                json!({"tier": if i < 3 { "a" } else { "b" }}),
            ),
        )
        .await
        .expect("create");
    }
    let err = cms
        .create(&PostParams::default(), &cm("c0", json!({})))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );

    let a = cms
        .list(&ListParams::default().labels("tier=a"))
        .await
        .expect("list");
    assert_eq!(a.items.len(), 3);
    let one = cms
        .list(&ListParams::default().fields("metadata.name=c4"))
        .await
        .expect("list");
    assert_eq!(one.items.len(), 1);
    let page = cms
        .list(&ListParams::default().limit(2))
        .await
        .expect("page");
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("continue token");
    let rest = cms
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(rest.items.len(), 3);

    let got = cms.get("c0").await.expect("get");
    let mut a1 = got.clone();
    a1.data = Some([("k".to_string(), "1".to_string())].into());
    cms.replace("c0", &PostParams::default(), &a1)
        .await
        .expect("first replace");
    let mut a2 = got.clone();
    a2.data = Some([("k".to_string(), "2".to_string())].into());
    let err = cms
        .replace("c0", &PostParams::default(), &a2)
        .await
        .expect_err("stale replace");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );

    let missing = cms.get("nope").await.expect_err("404");
    assert!(matches!(missing, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"));
    let nsless: Api<ConfigMap> = Api::namespaced(client.clone(), "absent");
    let err = nsless
        .create(&PostParams::default(), &cm("x", json!({})))
        .await
        .expect_err("namespace missing");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404));

    cms.delete("c1", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(cms.get_opt("c1").await.expect("get_opt").is_none());
    let audit = sim.audit();
    assert!(
        audit
            .iter()
            .any(|e| e.verb == "delete" && e.name.as_deref() == Some("c1") && e.code == 200)
    );
    assert!(
        audit
            .iter()
            .any(|e| e.verb == "list" && e.resource == "configmaps")
    );
}

#[tokio::test]
async fn patches_and_server_side_apply() {
    let (_sim, client) = common::start(common::fast()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("p", json!({"a": "1"})))
        .await
        .expect("create");
    cms.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"b": "2"}}})),
    )
    .await
    .expect("merge");
    let jp: json_patch::Patch = serde_json::from_value(json!([{"op": "test", "path": "/data/k", "value": "v"}, {"op": "replace", "path": "/data/k", "value": "w"}])).expect("jp");
    let after = cms
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .expect("json patch");
    assert_eq!(
        after
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("w")
    );
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/k", "value": "v"}]))
            .expect("jp");
    let err = cms
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(bad))
        .await
        .expect_err("test op fails");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    let labels = cms
        .get("p")
        .await
        .expect("get")
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(labels.get("b").map(String::as_str), Some("2"));

    // Server-side apply: create-on-apply, managedFields, conflicts, force.
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let desired = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
    let applied = sts
        .patch(
            "web",
            &PatchParams::apply("starrocks-operator").force(),
            &Patch::Apply(&desired),
        )
        .await
        .expect("apply");
    assert_eq!(applied.metadata.generation, Some(1));
    let mf = applied.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        mf.iter()
            .any(|m| m.manager.as_deref() == Some("starrocks-operator")
                && m.operation.as_deref() == Some("Apply"))
    );
    let again = sts
        .patch(
            "web",
            &PatchParams::apply("starrocks-operator").force(),
            &Patch::Apply(&desired),
        )
        .await
        .expect("re-apply");
    assert_eq!(
        again.metadata.generation,
        Some(1),
        "same template, same generation"
    );
    let cm_cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}});
    let first = cms
        .patch("applied", &PatchParams::apply("op"), &Patch::Apply(&cm_cfg))
        .await
        .expect("apply cm");
    let second = cms
        .patch("applied", &PatchParams::apply("op"), &Patch::Apply(&cm_cfg))
        .await
        .expect("re-apply cm");
    assert_eq!(
        first.metadata.resource_version, second.metadata.resource_version,
        "no-op apply does not write"
    );
    // Fields a manager stops applying are removed.
    let third = cms.patch("applied", &PatchParams::apply("op"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"b": "2"}}))).await.expect("apply cm");
    assert_eq!(
        third.data,
        Some([("b".to_string(), "2".to_string())].into())
    );
    let other = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let err = sts
        .patch(
            "web",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&other),
        )
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(s.message.contains(".spec.replicas"), "{}", s.message);
        }
        other => panic!("unexpected {other:?}"),
    }
    let forced = sts
        .patch(
            "web",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("forced");
    assert_eq!(forced.spec.replicas, Some(5));
    assert_eq!(forced.metadata.generation, Some(2));

    // Status subresource: main writes cannot change status, status writes cannot change spec.
    // The simulated StatefulSet controller writes the status on its own schedule: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = sts.get_status("web").await.expect("status");
        if status.status.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the StatefulSet controller never wrote a status"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = sts
        .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"replicas": 42, "availableReplicas": 0}})))
        .await
        .expect("status patch");
    assert_eq!(err.spec.replicas, Some(5));
    // Scale subresource.
    let scale = sts.get_scale("web").await.expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(5));
    sts.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("patch scale");
    assert_eq!(sts.get("web").await.expect("get").spec.replicas, Some(1));
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: starrocksclusters.starrocks.com
spec:
  group: starrocks.com
  scope: Namespaced
  names: {kind: StarRocksCluster, plural: starrocksclusters, singular: starrockscluster, shortNames: [src], listKind: StarRocksClusterList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Phase, type: string, jsonPath: .status.phase}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [image]
            properties:
              image: {type: string, pattern: '^[a-z/]+:[0-9a-z.-]+$'}
              replicas: {type: integer, minimum: 1}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

#[tokio::test]
async fn crd_registers_types_and_enforces_schema() {
    let (_sim, client) = common::start(common::fast()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_saphyr::from_str(CRD).expect("crd yaml");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    let established = crds
        .get("starrocksclusters.starrocks.com")
        .await
        .expect("get crd");
    let conds = established
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "starrocks.com",
            "v1",
            "StarRocksCluster",
        ))
        .expect("discovered");
    assert_eq!(ar.plural, "starrocksclusters");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "starrocksclusters/status" || s.plural == "status"),
        "{:?}",
        caps.subresources
    );

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("starrocks.com", "v1", "StarRocksCluster"),
        "starrocksclusters",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "starrocks.com/v1", "kind": "StarRocksCluster",
        "metadata": {"name": "a"}, "spec": {"image": "starrocks/fe:3.3.2", "unknown": 1}, "status": {"phase": "x"}})).expect("obj");
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create cr");
    assert!(
        created.data["spec"].get("unknown").is_none(),
        "unknown field pruned"
    );
    assert!(
        created.data.get("status").is_none(),
        "status ignored on create"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let bad: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "starrocks.com/v1", "kind": "StarRocksCluster",
        "metadata": {"name": "b"}, "spec": {"image": "Not An Image", "replicas": 0}}),
    )
    .expect("obj");
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("invalid");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert_eq!(s.reason, "Invalid");
            assert!(
                s.message.contains("spec.image") && s.message.contains("spec.replicas"),
                "{}",
                s.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let st = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "running"}})),
        )
        .await
        .expect("status");
    assert_eq!(st.data["status"]["phase"], "running");
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
    let sp = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("spec");
    assert_eq!(sp.metadata.generation, Some(2));
    assert_eq!(
        sp.data["status"]["phase"], "running",
        "main write keeps status"
    );
}

#[tokio::test]
async fn reflector_follows_changes_and_survives_410() {
    let options = kube_sim::SimOptions {
        watch_window: 50,
        ..common::fast()
    };
    let (sim, client) = common::start(options).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().labels("app=r")),
    )
    .applied_objects();
    let handle = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    cms.create(&PostParams::default(), &cm("r1", json!({"app": "r"})))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("other", json!({"app": "x"})))
        .await
        .expect("create");
    common::eventually(5, || {
        let n = reader.state().len();
        async move { (n == 1).then_some(()) }
    })
    .await;
    // Force the relist path: drop history and the watch connection, then change things.
    sim.faults().expire_next_watch();
    sim.compact();
    sim.faults().drop_watches();
    cms.create(&PostParams::default(), &cm("r2", json!({"app": "r"})))
        .await
        .expect("create");
    let reader2 = reader.clone();
    common::eventually(10, || {
        let n = reader2.state().len();
        async move { (n == 2).then_some(()) }
    })
    .await;
    // A label change moves an object out of the selector: the reflector drops it.
    cms.patch(
        "r1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .expect("relabel");
    common::eventually(5, || {
        let names: Vec<String> = reader
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        async move { (names == vec!["r2".to_string()]).then_some(()) }
    })
    .await;
    let watches = sim
        .audit()
        .iter()
        .filter(|e| e.verb == "watch" && e.resource == "configmaps")
        .count();
    assert!(
        watches >= 2,
        "the watcher re-watched after the drop ({watches})"
    );
    handle.abort();
}

#[tokio::test]
async fn runtime_controller_reconciles() {
    use kube::runtime::controller::{Action, Controller};
    let (_sim, client) = common::start(common::fast()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    #[derive(Debug, thiserror::Error)]
    #[error("kube: {0}")]
    struct E(#[from] kube::Error);
    async fn reconcile(obj: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>) -> Result<Action, E> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        if obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("seen"))
            .is_none()
        {
            api.patch(&name, &PatchParams::apply("test-ctl").force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": {"seen": "yes"}}})))
                .await?;
        }
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<ConfigMap>, _: &E, _: Arc<Api<ConfigMap>>) -> Action {
        Action::requeue(Duration::from_millis(50))
    }
    let ctx = Arc::new(cms.clone());
    let ctl = tokio::spawn(
        Controller::new(cms.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );
    cms.create(&PostParams::default(), &cm("ctl", json!({})))
        .await
        .expect("create");
    common::eventually(10, || {
        let cms = cms.clone();
        async move {
            let c = cms.get("ctl").await.ok()?;
            c.metadata.annotations.and_then(|a| a.get("seen").cloned())
        }
    })
    .await;
    ctl.abort();
}

#[tokio::test]
async fn namespaces_and_foreground_deletion() {
    let (_sim, client) = common::start(common::fast()).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "t"}})).expect("ns"),
    )
    .await
    .expect("ns");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "t");
    let owner = cms
        .create(&PostParams::default(), &cm("owner", json!({})))
        .await
        .expect("owner");
    let uid = owner.metadata.uid.clone().expect("uid");
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": true}]}})).expect("dep");
    cms.create(&PostParams::default(), &dep).await.expect("dep");
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete owner");
    common::eventually(5, || {
        let cms = cms.clone();
        async move {
            let a = cms.get_opt("owner").await.ok()?;
            let b = cms.get_opt("dep").await.ok()?;
            (a.is_none() && b.is_none()).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn fault_injection_errors_and_latency() {
    use kube_sim::InjectedError;
    let (sim, client) = common::start(common::fast()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("f", json!({})))
        .await
        .expect("create");
    sim.faults()
        .set_error_rate("get", "configmaps", InjectedError::Internal, 0.5);
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(match cms.get("f").await {
            Ok(_) => 200,
            Err(kube::Error::Api(s)) => s.code,
            Err(e) => panic!("unexpected {e:?}"),
        });
    }
    assert_eq!(codes, vec![200, 500, 200, 500]);
    sim.faults()
        .set_error_rate("patch", "*", InjectedError::Conflict, 1.0);
    let err = cms
        .patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "b"}})),
        )
        .await
        .expect_err("409");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
    sim.faults().clear();
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "b"}})),
    )
    .await
    .expect("no more faults");
    sim.faults().set_latency(Duration::from_millis(150));
    let t = std::time::Instant::now();
    cms.get("f").await.expect("slow get");
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.faults().clear();
    let injected: Vec<u16> = sim
        .audit()
        .iter()
        .filter(|e| e.resource == "configmaps" && e.code >= 400)
        .map(|e| e.code)
        .collect();
    assert_eq!(injected, vec![500, 500, 409]);
}

#[tokio::test]
async fn metadata_watcher_and_streaming_list() {
    use kube::core::PartialObjectMeta;
    let (_sim, client) = common::start(common::fast()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("m1", json!({"app": "m"})))
        .await
        .expect("create");
    let meta = cms.get_metadata("m1").await.expect("get_metadata");
    assert_eq!(meta.metadata.name.as_deref(), Some("m1"));
    let metas: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(client.clone(), "default");
    let mut names = std::pin::pin!(
        watcher(metas, watcher::Config::default().labels("app=m")).applied_objects()
    );
    let first = tokio::time::timeout(Duration::from_secs(5), names.next())
        .await
        .expect("in time")
        .expect("item")
        .expect("ok");
    assert_eq!(first.metadata.name.as_deref(), Some("m1"));
    // The streaming-list initial strategy (sendInitialEvents + initial-events-end bookmark).
    let cfg = watcher::Config::default().labels("app=m").streaming_lists();
    let mut stream = std::pin::pin!(watcher(cms.clone(), cfg).applied_objects());
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("in time")
        .expect("item")
        .expect("ok");
    assert_eq!(first.metadata.name.as_deref(), Some("m1"));
    cms.create(&PostParams::default(), &cm("m2", json!({"app": "m"})))
        .await
        .expect("create");
    let second = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("in time")
        .expect("item")
        .expect("ok");
    assert_eq!(second.metadata.name.as_deref(), Some("m2"));
}

const RBAC: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: operator, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: operator-cm-reader, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {kind: ServiceAccount, name: operator, namespace: default}
"#;

#[tokio::test]
async fn count_and_tally_read_the_store() {
    let (sim, _) = common::start(common::fast()).await;
    let config_map = |ns: &str, name: &str, tier: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    tier: {tier}\n"
        )
    };
    for (ns, name, tier) in [
        ("default", "a", "fe"),
        ("default", "b", "be"),
        ("kube-system", "c", "be"),
    ] {
        sim.create_from_yaml(&config_map(ns, name, tier))
            .expect("config map");
    }
    let tier = |o: &serde_json::Value| {
        o["metadata"]["labels"]["tier"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(sim.count("", "configmaps", |o| tier(o) == "be"), 2);
    let tally = sim.tally("", "configmaps", tier);
    assert_eq!(tally.get("be"), Some(&2));
    assert_eq!(tally.get("fe"), Some(&1));
}

#[tokio::test]
async fn rbac_limits_token_clients() {
    let (sim, admin) = common::start(common::fast()).await;
    assert_eq!(sim.create_from_yaml(RBAC).expect("rbac objects"), 3);
    sim.add_service_account_token("op-token", "default", "operator");
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml_with_token("op-token"))
            .expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let limited = kube::Client::try_from(config).expect("client");
    let admin_cms: Api<ConfigMap> = Api::namespaced(admin, "default");
    admin_cms
        .create(&PostParams::default(), &cm("visible", json!({})))
        .await
        .expect("admin create");
    let cms: Api<ConfigMap> = Api::namespaced(limited.clone(), "default");
    assert_eq!(
        cms.list(&ListParams::default())
            .await
            .expect("list allowed")
            .items
            .len(),
        1
    );
    let err = cms
        .create(&PostParams::default(), &cm("nope", json!({})))
        .await
        .expect_err("create forbidden");
    match err {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert!(s.message.contains("User \"system:serviceaccount:default:operator\" cannot create resource \"configmaps\""), "{}", s.message);
        }
        other => panic!("unexpected {other:?}"),
    }
    let sts: Api<StatefulSet> = Api::namespaced(limited, "default");
    assert!(
        matches!(sts.list(&ListParams::default()).await, Err(kube::Error::Api(ref s)) if s.code == 403)
    );
    assert!(
        sim.audit()
            .iter()
            .any(|e| e.code == 403 && e.verb == "create")
    );
}

#[tokio::test]
async fn orphan_deletion_and_delete_collection() {
    let (_sim, client) = common::start(common::fast()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = cms
        .create(&PostParams::default(), &cm("o", json!({})))
        .await
        .expect("owner");
    let uid = owner.metadata.uid.clone().expect("uid");
    let dep: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "d", "labels": {"grp": "x"}, "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": uid}]}}),
    )
    .expect("dep");
    cms.create(&PostParams::default(), &dep).await.expect("dep");
    cms.delete("o", &DeleteParams::orphan())
        .await
        .expect("orphan delete");
    let kept = common::eventually(5, || {
        let cms = cms.clone();
        async move {
            let gone = cms.get_opt("o").await.ok()?.is_none();
            let d = cms.get_opt("d").await.ok()??;
            (gone
                && d.metadata
                    .owner_references
                    .clone()
                    .unwrap_or_default()
                    .is_empty())
            .then_some(d)
        }
    })
    .await;
    assert_eq!(kept.metadata.name.as_deref(), Some("d"));
    cms.create(&PostParams::default(), &cm("d2", json!({"grp": "x"})))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("keep", json!({"grp": "y"})))
        .await
        .expect("create");
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("grp=x"),
    )
    .await
    .expect("delete collection");
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(
        left.contains(&"keep".to_string())
            && !left.contains(&"d".to_string())
            && !left.contains(&"d2".to_string()),
        "{left:?}"
    );
}
