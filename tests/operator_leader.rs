//! Leader election: two operator instances against the simulator; only the Lease holder
//! reconciles. The leader is killed in the middle of an upgrade; the standby takes over within
//! the lease duration and finishes the upgrade in StarRocks' order.

mod support;

use std::time::{Duration, Instant};
use support::{Env, UPGRADE, example};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_killed_leaders_upgrade_in_order() {
    let env = Env::without_operator(support::sim_options(), support::test_config()).await;
    let client = env.embedded.client.clone();
    let a = support::spawn_elected(client.clone(), env.config.clone(), "operator-a", "default");
    let b = support::spawn_elected(client, env.config.clone(), "operator-b", "default");
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    let (leader, standby) = match (a.readiness.leading(), b.readiness.leading()) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        other => panic!("exactly one leader, got {other:?}"),
    };
    assert!(standby.readiness.ready(), "a standby is ready");

    let mark = env.embedded.sim.resource_version();
    let generation = env.set_tag(&cluster, "3.3.5").await;
    env.state(&cluster, "UpgradingCn").await;
    leader.task.abort();
    let _ = leader.task.await;
    let killed = Instant::now();
    while !standby.readiness.leading() {
        assert!(
            killed.elapsed() < Duration::from_secs(6),
            "the standby takes over within the lease duration"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let takeover = killed.elapsed();
    env.steady(&cluster, generation).await;
    let writes = env.writes_since(&cluster, mark);
    assert_eq!(writes.len(), 3, "{writes:#?}");
    env.assert_order(&cluster, &writes, &UPGRADE);
    eprintln!("takeover after {takeover:?} (lease 2 s)");
    standby.task.abort();
    env.shutdown().await;
}
