//! Adoption of a cluster deployed by the upstream operator: its objects exist with upstream's
//! names but without this operator's template hash. With the spec unchanged the operator takes
//! them over without writing a pod template (no pod is recreated); a changed spec then rolls
//! in StarRocks' order.

mod support;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use starrocks_operator::render::names::TEMPLATE_HASH_ANNOTATION;
use starrocks_operator::render::{ConfigInputs, Workload, render_cluster};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{Env, UPGRADE, example};

async fn pod_uids(env: &Env) -> BTreeSet<String> {
    Api::<Pod>::namespaced(env.embedded.client.clone(), "starrocks")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_cluster_is_adopted_without_restarting_pods() {
    let mut env = Env::without_operator(support::sim_options(), support::test_config()).await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    // What the upstream operator left: the same objects, owned by the same cluster, without
    // this operator's template hash, written by another field manager.
    let rendered = render_cluster(&cluster, &ConfigInputs::new()).unwrap();
    let upstream = PostParams {
        field_manager: Some("starrocks-upstream".into()),
        ..Default::default()
    };
    let client = env.embedded.client.clone();
    for objects in rendered.components.values() {
        for svc in &objects.services {
            Api::namespaced(client.clone(), "starrocks")
                .create(&upstream, svc)
                .await
                .unwrap();
        }
        let Workload::StatefulSet(sts) = &objects.workload else {
            panic!("the demo has no FE proxy")
        };
        let mut sts = (**sts).clone();
        if let Some(meta) = sts.spec.template.metadata.as_mut() {
            meta.annotations
                .get_or_insert_default()
                .remove(TEMPLATE_HASH_ANNOTATION);
        }
        Api::<StatefulSet>::namespaced(client.clone(), "starrocks")
            .create(&upstream, &sts)
            .await
            .unwrap();
    }
    // Wait for upstream's pods to run.
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "starrocks");
    for _ in 0..500 {
        let all = sets.list(&ListParams::default()).await.unwrap().items;
        if all.len() == 3
            && all.iter().all(|s| {
                s.status.as_ref().is_some_and(|st| {
                    st.ready_replicas.unwrap_or(0) == s.spec.replicas.unwrap_or(1)
                })
            })
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pods_before = pod_uids(&env).await;
    assert_eq!(pods_before.len(), 7, "3 FE, 3 BE, 1 CN running");

    let mark = env.embedded.sim.resource_version();
    env.start_operator();
    env.steady(&cluster, 1).await;
    let writes = env.writes_since(&cluster, mark);
    assert!(
        writes.is_empty(),
        "no pod template written on adoption: {writes:#?}"
    );
    assert_eq!(pod_uids(&env).await, pods_before, "no pod recreated");
    for sts in sets.list(&ListParams::default()).await.unwrap().items {
        assert!(
            sts.annotations()
                .contains_key(starrocks_operator::render::names::ADOPTED_HASH_ANNOTATION),
            "{} marked as adopted",
            sts.name_any()
        );
    }

    // A changed spec rolls in order, with this operator's template.
    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.5").await;
    env.steady(&cluster, generation).await;
    let writes = env.writes_since(&cluster, mark);
    assert_eq!(writes.len(), 3, "{writes:#?}");
    env.assert_order(&cluster, &writes, &UPGRADE);
    for sts in sets.list(&ListParams::default()).await.unwrap().items {
        let template = sts.spec.template.metadata.clone().unwrap_or_default();
        assert!(
            template
                .annotations
                .unwrap_or_default()
                .contains_key(TEMPLATE_HASH_ANNOTATION),
            "{} now carries this operator's template",
            sts.name_any()
        );
    }
    env.assert_replays(&cluster);
    env.shutdown().await;
}
