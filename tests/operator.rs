//! The operator end to end against the simulator: first deployment of every example, then
//! upgrade, config change, resource change, downgrade, a second change mid-rollout, pause and
//! resume, an invalid spec, and a resync in Steady. The order is checked from outside, on the
//! simulator's audit log and an independent watch (`starrocks_operator::witness`); every
//! cluster's journal must replay with no divergence.

mod support;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::ResourceExt;
use kube::api::ListParams;
use starrocks_model::Direction;
use starrocks_model::journal::replay_with;
use starrocks_operator::crd::ConditionType;
use starrocks_operator::journal::JournalStore;
use support::{DOWNGRADE, Env, UPGRADE, example, examples};

fn condition<'a>(
    c: &'a starrocks_operator::crd::StarRocksCluster,
    t: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|x| x.type_ == t))
        .unwrap_or_else(|| panic!("condition {t} missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_deploys_fe_first_and_reaches_steady() {
    let env = Env::start().await;
    let mut clusters = Vec::new();
    for (file, yaml) in examples() {
        clusters.push((file, env.create(&yaml).await));
    }
    for (file, cluster) in &clusters {
        let c = env.steady(cluster, 1).await;
        env.assert_first_deployment(cluster);
        let status = c.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("running"), "{file}");
        assert_eq!(condition(&c, ConditionType::READY).status, "True", "{file}");
        assert_eq!(
            condition(&c, ConditionType::PROGRESSING).status,
            "False",
            "{file}"
        );
        assert_eq!(
            condition(&c, ConditionType::BLOCKED).status,
            "False",
            "{file}"
        );
        let fe = status.star_rocks_fe_status.as_ref().unwrap();
        assert_eq!(fe.phase.as_deref(), Some("running"), "{file}");
        assert_eq!(
            fe.resource_names.as_deref(),
            Some(&[format!("{}-fe", c.name_any())][..]),
            "{file}"
        );
        if c.spec.star_rocks_cn_spec.is_some() {
            let cn = status.star_rocks_cn_status.as_ref().unwrap();
            assert!(
                cn.selector
                    .as_deref()
                    .unwrap()
                    .contains("app.kubernetes.io/component=cn")
            );
            assert!(
                cn.replicas.unwrap() >= 1,
                "{file}: scale subresource replicas"
            );
        }
        let n = env.assert_replays(cluster);
        assert!(n >= 3, "{file}: {n} records");
    }
    // The printer columns, as kubectl shows them (when kubectl is installed).
    let kubeconfig = env.dir.path().join("kubeconfig");
    env.embedded.sim.write_kubeconfig(&kubeconfig).unwrap();
    match std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "starrocksclusters", "-n", "starrocks"])
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "kubectl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let header = text.lines().next().unwrap_or_default();
            for column in [
                "NAME",
                "PHASE",
                "LIFECYCLE",
                "FESTATUS",
                "BESTATUS",
                "CNSTATUS",
                "AGE",
            ] {
                assert!(header.contains(column), "missing column {column}: {text}");
            }
            for (_, cluster) in &clusters {
                let line = text
                    .lines()
                    .find(|l| l.split_whitespace().next() == Some(cluster.name_any().as_str()))
                    .unwrap_or_else(|| panic!("{} not listed: {text}", cluster.name_any()));
                assert!(
                    line.contains("running") && line.contains("Steady"),
                    "{line}"
                );
            }
        }
        Err(e) => eprintln!("kubectl not available ({e}); printer columns checked with kube only"),
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_resource_change_and_downgrade_roll_in_order() {
    let env = Env::start().await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    env.assert_first_deployment(&cluster);

    // Upgrade: BE, then CN, then FE.
    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.5").await;
    env.steady(&cluster, generation).await;
    let writes = env.writes_since(&cluster, mark);
    assert_eq!(
        writes.len(),
        3,
        "one template write per component: {writes:#?}"
    );
    env.assert_order(&cluster, &writes, &UPGRADE);

    // A resource change (no version change) rolls in the upgrade order too.
    let mark = env.embedded.sim.resource_version();
    let requests = serde_json::json!({"requests": {"cpu": "2", "memory": "4Gi"}});
    let generation = env
        .patch(
            &cluster,
            serde_json::json!({"spec": {"starRocksFeSpec": requests, "starRocksBeSpec": requests, "starRocksCnSpec": requests}}),
        )
        .await;
    env.steady(&cluster, generation).await;
    let writes = env.writes_since(&cluster, mark);
    assert_eq!(writes.len(), 3, "{writes:#?}");
    env.assert_order(&cluster, &writes, &UPGRADE);

    // Downgrade: FE, then BE, then CN.
    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.2").await;
    let rolling = env.state(&cluster, "UpgradingFe").await;
    let lifecycle = rolling.status.unwrap().lifecycle.unwrap();
    assert_eq!(
        lifecycle.direction.as_deref(),
        Some(Direction::Downgrade.to_string().as_str())
    );
    env.steady(&cluster, generation).await;
    let writes = env.writes_since(&cluster, mark);
    assert_eq!(writes.len(), 3, "{writes:#?}");
    env.assert_order(&cluster, &writes, &DOWNGRADE);

    // The journal replays; a model with the wrong order reports the divergent record.
    env.assert_replays(&cluster);
    let records = env.records(&cluster);
    let divergence = replay_with(support::fe_first_rules(), &records, |_, _| {})
        .expect_err("a changed model diverges");
    let record = records.iter().find(|r| r.seq == divergence.seq).unwrap();
    assert!(
        record.after.name() == "UpgradingBe" || record.before.name() == "UpgradingBe",
        "the first divergence is where the upgrade started with BE: {divergence} at {record:?}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_rolls_be_before_fe() {
    let env = Env::start().await;
    let cluster = env
        .create(&example("starrocks-cluster-custom-config.yaml"))
        .await;
    env.steady(&cluster, 1).await;
    env.assert_first_deployment(&cluster);
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(env.embedded.client.clone(), "starrocks");
    let edit = |name: &'static str, key: &'static str| {
        let cms = cms.clone();
        async move {
            let mut cm = cms.get(name).await.unwrap();
            let data = cm.data.get_or_insert_default();
            let text = data.get(key).cloned().unwrap_or_default();
            data.insert(
                key.to_string(),
                format!("{text}\nsys_log_verbose_modules = starrocks\n"),
            );
            cm.metadata.managed_fields = None;
            let stored = cms.replace(name, &Default::default(), &cm).await.unwrap();
            (name, stored.metadata.resource_version)
        }
    };
    // One ConfigMap: only the component that mounts it rolls (no CR change).
    let mark = env.embedded.sim.resource_version();
    edit("be-config", "be.conf").await;
    env.state(&cluster, "UpgradingBe").await;
    env.steady(&cluster, 1).await;
    let writes = env.writes_since(&cluster, mark);
    assert_eq!(
        writes.iter().map(|w| w.component).collect::<Vec<_>>(),
        vec![starrocks_model::Component::Be],
        "{writes:#?}"
    );
    // Two ConfigMaps cannot change at once; with the cluster paused, both changes are seen
    // as one and roll as an upgrade does: BE, then FE.
    let pause = serde_json::json!({"metadata": {"annotations": {"starrocks.com/paused": "true"}}});
    env.patch(&cluster, pause).await;
    env.state(&cluster, "Paused").await;
    let mark = env.embedded.sim.resource_version();
    let edits = [
        edit("fe-config", "fe.conf").await,
        edit("be-config", "be.conf").await,
    ];
    // The resume must find both edits in the operator's ConfigMap cache: the ConfigMap watch
    // and the cluster watch are separate streams, and a resume seen before the second edit
    // rolls the first change alone (FE, as the model allows) and then the second.
    let context = env.operator.as_ref().expect("operator").context.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !edits.iter().all(|(name, rv)| {
        let key = kube::runtime::reflector::ObjectRef::new(name).within("starrocks");
        context
            .caches
            .config_maps
            .get(&key)
            .is_some_and(|cm| cm.metadata.resource_version == *rv)
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the operator's cache never saw the ConfigMap edits"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let resume = serde_json::json!({"metadata": {"annotations": {"starrocks.com/paused": null}}});
    env.patch(&cluster, resume).await;
    // The generation does not change; wait for the rollout to start and finish.
    env.state(&cluster, "UpgradingBe").await;
    env.steady(&cluster, 1).await;
    let writes = env.writes_since(&cluster, mark);
    let components: Vec<_> = writes.iter().map(|w| w.component).collect();
    assert_eq!(components.len(), 2, "BE and FE roll: {writes:#?}");
    env.assert_order(&cluster, &writes, &UPGRADE);
    env.assert_replays(&cluster);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_image_change_mid_rollout_keeps_the_order() {
    let env = Env::start().await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    let first = env.embedded.sim.resource_version();
    let (_, after) = env.change_mid_rollout(&cluster, "3.3.5", "3.3.6").await;
    assert_eq!(after.len(), 3, "every component reaches 3.3.6: {after:#?}");
    // No FE write at 3.3.5 at all: the FE tier was never reached for the first target.
    assert!(
        env.writes_since(&cluster, first)
            .iter()
            .all(|w| !(w.component == starrocks_model::Component::Fe
                && w.images.iter().any(|i| i.ends_with(":3.3.5")))),
        "FE never rolled to the superseded version"
    );
    env.assert_replays(&cluster);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_a_rollout_and_resume_finishes_it_in_order() {
    let env = Env::start().await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.5").await;
    env.state(&cluster, "UpgradingCn").await;
    let pause = serde_json::json!({"metadata": {"annotations": {"starrocks.com/paused": "true"}}});
    env.patch(&cluster, pause).await;
    env.state(&cluster, "Paused").await;
    let paused_at = env.embedded.sim.resource_version();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let during: Vec<_> = env.writes_since(&cluster, paused_at);
    assert!(
        during.is_empty(),
        "nothing is written while paused: {during:#?}"
    );
    let resume = serde_json::json!({"metadata": {"annotations": {"starrocks.com/paused": null}}});
    env.patch(&cluster, resume).await;
    env.steady(&cluster, generation).await;
    let writes = env.writes_since(&cluster, mark);
    env.assert_order(&cluster, &writes, &UPGRADE);
    assert!(
        writes
            .iter()
            .any(|w| w.component == starrocks_model::Component::Fe)
    );
    env.assert_replays(&cluster);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_blocks_with_a_condition_and_an_event_and_applies_nothing() {
    let env = Env::start().await;
    let cluster = env.create(&example("starrocks-cluster-minimal.yaml")).await;
    env.steady(&cluster, 1).await;
    let mark = env.embedded.sim.resource_version();
    env.patch(
        &cluster,
        serde_json::json!({"spec": {"starRocksBeSpec": {"image": "starrocks/be-ubuntu"}}}),
    )
    .await;
    let blocked = env.state(&cluster, "Blocked").await;
    let condition = condition(&blocked, ConditionType::BLOCKED);
    assert_eq!(condition.status, "True");
    assert!(
        condition.message.contains("spec.starRocksBeSpec.image"),
        "the condition names the field: {condition:?}"
    );
    assert_eq!(
        blocked.status.as_ref().unwrap().phase.as_deref(),
        Some("failed")
    );
    // A Warning Event says the same.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(env.embedded.client.clone(), "starrocks");
    let mut found = false;
    for _ in 0..100 {
        let list = events.list(&ListParams::default()).await.unwrap();
        found = list.items.iter().any(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("spec.starRocksBeSpec.image"))
        });
        if found {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(found, "a Warning Event names the field");
    // Nothing was applied.
    let audit = env.embedded.sim.audit();
    let applied: Vec<_> = audit
        .iter()
        .filter(|e| e.resource_version.is_some_and(|rv| rv > mark))
        .filter(|e| !matches!(e.resource.as_str(), "starrocksclusters" | "events"))
        .collect();
    assert!(
        applied.is_empty(),
        "no object written while blocked: {applied:#?}"
    );
    // Fixing the spec unblocks.
    let generation = env.set_tag(&cluster, "3.3.2").await;
    env.steady(&cluster, generation).await;
    env.assert_replays(&cluster);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_in_steady_state_writes_nothing() {
    let env = Env::start().await;
    let a = env.create(&example("starrocks-cluster-demo.yaml")).await;
    let b = env
        .create(&example("starrocks-cluster-fe-proxy.yaml"))
        .await;
    env.steady(&a, 1).await;
    env.steady(&b, 1).await;
    // Let the last status writes and their watch events settle.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = env.records(&a).len() + env.records(&b).len();
    env.embedded.sim.clear_audit();
    // Several resync periods (400 ms each in tests).
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let audit = env.embedded.sim.audit();
    let writes: Vec<_> = audit
        .iter()
        .filter(|e| !matches!(e.verb.as_str(), "get" | "list" | "watch"))
        .collect();
    assert!(
        writes.is_empty(),
        "zero writes in steady state: {writes:#?}"
    );
    let after = env.records(&a).len() + env.records(&b).len();
    assert_eq!(before, after, "a no-op resync is not journaled");
    // The StatefulSets are untouched.
    let sets: kube::Api<StatefulSet> =
        kube::Api::namespaced(env.embedded.client.clone(), "starrocks");
    assert!(sets.list(&ListParams::default()).await.unwrap().items.len() >= 4);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_catches_an_operator_with_the_wrong_order() {
    let config = starrocks_operator::controller::ControllerConfig {
        rules: support::fe_first_rules(),
        ..support::test_config()
    };
    let env = Env::start_with(support::sim_options(), config).await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.5").await;
    env.steady(&cluster, generation).await;
    let writes = env.writes_since(&cluster, mark);
    let violations = starrocks_operator::witness::check_tier_order(
        &writes,
        &env.embedded.samples(),
        &cluster.name_any(),
        &UPGRADE,
    );
    assert!(
        !violations.is_empty(),
        "FE-first must be caught from the audit log: {writes:#?}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_component_is_deleted_and_a_deleted_clusters_log_is_collected() {
    let config = starrocks_operator::controller::ControllerConfig {
        keep_deleted_logs: std::time::Duration::from_millis(500),
        ..support::test_config()
    };
    let env = Env::start_with(support::sim_options(), config).await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    let generation = env
        .patch(
            &cluster,
            serde_json::json!({"spec": {"starRocksCnSpec": null}}),
        )
        .await;
    env.steady(&cluster, generation).await;
    let sets: kube::Api<StatefulSet> =
        kube::Api::namespaced(env.embedded.client.clone(), "starrocks");
    let mut gone = false;
    for _ in 0..250 {
        if sets.get_opt("demo-cn").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gone, "the CN StatefulSet is deleted");
    let services: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(env.embedded.client.clone(), "starrocks");
    assert!(services.get_opt("demo-cn-service").await.unwrap().is_none());
    assert!(sets.get_opt("demo-be").await.unwrap().is_some(), "BE stays");
    env.assert_replays(&cluster);

    // Deleting the cluster removes its journal log after the grace period.
    let uid = cluster.metadata.uid.clone().unwrap();
    let clusters: kube::Api<starrocks_operator::crd::StarRocksCluster> =
        kube::Api::namespaced(env.embedded.client.clone(), "starrocks");
    clusters.delete("demo", &Default::default()).await.unwrap();
    let mut collected = false;
    for _ in 0..250 {
        if env.journal().read(&uid).unwrap().is_empty() {
            collected = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(collected, "the deleted cluster's log is removed");
    env.shutdown().await;
}
