//! Faults: with 5% of API requests answered 409 Conflict or 500 (2.5% each) and every watch
//! dropped every 2 seconds, a first deployment, an upgrade, a second change mid-rollout, a
//! pause and resume, and a downgrade still keep StarRocks' order and reach Steady.

mod support;

use kube_sim::InjectedError;
use std::time::Duration;
use support::{DOWNGRADE, Env, UPGRADE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_errors_and_dropped_watches_the_order_holds() {
    let env = Env::start().await;
    let faults = env.embedded.sim.faults();
    faults.set_error_rate("*", "*", InjectedError::Conflict, 0.025);
    faults.set_error_rate("*", "*", InjectedError::Internal, 0.025);
    let dropper = {
        let faults = env.embedded.sim.faults();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                faults.drop_watches();
            }
        })
    };

    let cluster = env.deploy_demo().await;
    env.roll_to(&cluster, "3.3.5", &UPGRADE).await;
    // A second change mid-rollout.
    env.change_mid_rollout(&cluster, "3.3.6", "3.3.7").await;

    // Pause mid-rollout, resume.
    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.8").await;
    env.state(&cluster, "UpgradingCn").await;
    env.patch(
        &cluster,
        serde_json::json!({"metadata": {"annotations": {"starrocks.com/paused": "true"}}}),
    )
    .await;
    env.state(&cluster, "Paused").await;
    env.patch(
        &cluster,
        serde_json::json!({"metadata": {"annotations": {"starrocks.com/paused": null}}}),
    )
    .await;
    env.steady(&cluster, generation).await;
    env.assert_order(&cluster, &env.writes_since(&cluster, mark), &UPGRADE);

    // Downgrade.
    env.roll_to(&cluster, "3.3.2", &DOWNGRADE).await;

    dropper.abort();
    faults.clear();
    let failed = env
        .embedded
        .sim
        .audit()
        .iter()
        .filter(|e| e.code == 409 || e.code == 500)
        .count();
    assert!(
        failed > 10,
        "faults were injected ({failed} failed requests)"
    );
    env.assert_replays(&cluster);
    env.shutdown().await;
}

/// A cluster created while the operator's watch of clusters is down, and first seen in the
/// relist that follows a `410 Gone`, is reconciled (the relist's own events trigger it: no
/// owned object exists yet to do so). With one cluster per page the relist takes two pages and
/// the new cluster (`alpha`, listed before `demo`) is on the first: kube-runtime's reflector
/// takes a listing into its cache only after the last page, so a reconcile started as the first
/// page arrives would find no cluster and be dropped, and nothing would reconcile it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_first_seen_in_a_relist_is_reconciled() {
    let config = starrocks_operator::controller::ControllerConfig {
        list_page_size: 1,
        ..support::test_config()
    };
    let env = Env::start_with(support::sim_options(), config).await;
    let first = env.deploy_demo().await;
    let faults = env.embedded.sim.faults();
    // Keep the clusters' watch down: every attempt to watch them fails until the rule is lifted.
    faults.set_error_rate("watch", "starrocksclusters", InjectedError::Internal, 1.0);
    faults.drop_watches();
    // Let every other watch (the operator's and the test's) come back first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alpha = env
        .create(
            &support::example("starrocks-cluster-demo.yaml").replace("name: demo", "name: alpha"),
        )
        .await;
    // The next watch of clusters is answered 410 Gone: the operator relists them, each page
    // answered after 150 ms (as a large list from a busy API server would be).
    faults.set_latency(Duration::from_millis(150));
    faults.expire_next_watch_on("starrocksclusters");
    faults.set_error_rate("watch", "starrocksclusters", InjectedError::Internal, 0.0);
    env.steady(&alpha, 1).await;
    faults.set_latency(Duration::ZERO);
    env.assert_first_deployment(&alpha);
    let audit = env.embedded.sim.audit();
    let held_down = audit
        .iter()
        .filter(|e| e.resource == "starrocksclusters" && e.verb == "watch" && e.code == 500)
        .count();
    assert!(held_down > 0, "the clusters' watch was held down");
    let lists: Vec<_> = audit
        .iter()
        .filter(|e| e.resource == "starrocksclusters" && e.verb == "list")
        .map(|e| e.time)
        .collect();
    assert!(lists.len() >= 3, "the relist took two pages: {lists:?}");
    assert_eq!(
        env.get("starrocks", "demo").await.metadata.uid,
        first.metadata.uid
    );
    env.shutdown().await;
}
