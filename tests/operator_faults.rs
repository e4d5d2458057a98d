//! Faults: with 5% of API requests answered 409 Conflict or 500 (2.5% each) and every watch
//! dropped every 2 seconds, a first deployment, an upgrade, a second change mid-rollout, a
//! pause and resume, and a downgrade still keep StarRocks' order and reach Steady.

mod support;

use kube_sim::InjectedError;
use std::time::Duration;
use support::{DOWNGRADE, Env, UPGRADE, example};

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

    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    env.assert_first_deployment(&cluster);

    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.5").await;
    env.steady(&cluster, generation).await;
    env.assert_order(&cluster, &env.writes_since(&cluster, mark), &UPGRADE);

    // A second change mid-rollout.
    let mark = env.embedded.sim.resource_version();
    env.set_tag(&cluster, "3.3.6").await;
    env.state(&cluster, "UpgradingCn").await;
    let second = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.7").await;
    env.steady(&cluster, generation).await;
    let first_target: Vec<_> = env
        .writes_since(&cluster, mark)
        .into_iter()
        .filter(|w| w.resource_version <= second)
        .collect();
    env.assert_order(&cluster, &first_target, &UPGRADE);
    let second_target: Vec<_> = env
        .writes_since(&cluster, second)
        .into_iter()
        .filter(|w| w.images.iter().all(|i| i.ends_with(":3.3.7")))
        .collect();
    env.assert_order(&cluster, &second_target, &UPGRADE);

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
    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.2").await;
    env.steady(&cluster, generation).await;
    env.assert_order(&cluster, &env.writes_since(&cluster, mark), &DOWNGRADE);

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
