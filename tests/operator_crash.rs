//! Crash and restart: the operator task is killed at a random point of an upgrade, its journal
//! kept, deleted or corrupted, and a new operator started. In every trial the order must hold
//! (audit log and witness), the cluster must reach Steady, and the journal must replay.
//!
//! 50 seeded trials by default; `CRASH_TRIALS` sets the number and `CRASH_SEED` the seed.

mod support;

use kube_sim::SimOptions;
use std::time::Duration;
use support::{Env, UPGRADE, example};

/// What happens to the journal while the operator is down.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Kept,
    Deleted,
    Corrupted,
}

/// splitmix64: a small seeded generator, so a failing trial can be rerun with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Overwrites the start of every file of the sled directory with garbage.
fn corrupt(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("journal dir").flatten() {
        let path = entry.path();
        if path.is_file() {
            let len = std::fs::metadata(&path)
                .map(|m| m.len())
                .unwrap_or(0)
                .clamp(16, 4096);
            std::fs::write(&path, vec![0xA5u8; len as usize]).expect("corrupt");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_of_upgrades_the_operator_keeps_the_order() {
    let trials = env_number("CRASH_TRIALS", 50);
    let seed = env_number("CRASH_SEED", 0x5EED);
    let mut rng = Rng(seed);
    let options = SimOptions {
        pod_ready_delay: Duration::from_millis(40),
        ..SimOptions::default()
    };
    let mut env = Env::start_with(options, support::test_config()).await;
    let cluster = env.create(&example("starrocks-cluster-demo.yaml")).await;
    env.steady(&cluster, 1).await;
    env.assert_first_deployment(&cluster);
    let mut recoveries = 0;
    for trial in 0..trials {
        let fate = match rng.next() % 3 {
            0 => Fate::Kept,
            1 => Fate::Deleted,
            _ => Fate::Corrupted,
        };
        // An upgrade takes about 7 pod restarts of 40 ms plus reconciles: kill within it.
        let kill_after = Duration::from_millis(rng.next() % 700);
        let tag = format!("3.4.{trial}");
        let mark = env.embedded.sim.resource_version();
        let generation = env.set_tag(&cluster, &tag).await;
        tokio::time::sleep(kill_after).await;
        env.kill_operator().await;
        match fate {
            Fate::Kept => {}
            Fate::Deleted => std::fs::remove_dir_all(env.journal_path()).expect("delete journal"),
            Fate::Corrupted => corrupt(&env.journal_path()),
        }
        if env.start_operator().is_some() {
            recoveries += 1;
        }
        env.steady(&cluster, generation).await;
        let writes: Vec<_> = env
            .writes_since(&cluster, mark)
            .into_iter()
            .filter(|w| w.images.iter().all(|i| i.ends_with(&format!(":{tag}"))))
            .collect();
        assert_eq!(
            writes
                .iter()
                .map(|w| w.component)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            3,
            "trial {trial} (seed {seed}, {fate:?}, kill after {kill_after:?}): every component reaches {tag}: {writes:#?}"
        );
        env.assert_order(&cluster, &writes, &UPGRADE);
        let records = env.records(&cluster);
        if let Err(d) = starrocks_model::journal::replay(&records) {
            panic!("trial {trial} (seed {seed}, {fate:?}): the journal diverges: {d}");
        }
    }
    assert!(
        trials < 10 || recoveries > 0,
        "some corrupted journals were moved aside and rebuilt"
    );
    env.shutdown().await;
}
