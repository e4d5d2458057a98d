//! The README's main command, `demo`, as a test: it reaches Steady twice, finds the order
//! right in the audit log, and leaves a journal that replays with no divergence.

use starrocks_model::Rules;
use starrocks_operator::demo::{DemoOptions, run};
use starrocks_operator::journal::replay::{ReplaySource, replay_command};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_and_its_journal_replays() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    run(DemoOptions {
        journal: journal.clone(),
        pod_ready_delay: Duration::from_millis(100),
        phase_timeout: Duration::from_secs(60),
    })
    .await
    .expect("the demo succeeds");
    let mut out = Vec::new();
    let outcome = replay_command(
        &ReplaySource::Journal {
            dir: journal,
            cluster: Some("starrocks/demo".into()),
        },
        Rules::default(),
        &mut out,
    )
    .expect("the journal reads");
    assert!(outcome.first_divergence().is_none());
    let timeline = String::from_utf8(out).unwrap();
    for state in [
        "Creating",
        "WaitingFe",
        "UpgradingBe",
        "UpgradingCn",
        "UpgradingFe",
        "Steady",
    ] {
        assert!(
            timeline.contains(state),
            "{state} in the timeline:\n{timeline}"
        );
    }
}
