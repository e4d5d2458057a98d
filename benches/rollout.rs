//! Rollout benchmark against the embedded simulator (a bench binary, not criterion: each
//! sample is a whole rollout).
//!
//! - Next-tier latency: time from the moment a tier's rollout finished in the simulator (the
//!   witness's watch sees every component of the tier rolled out) to the operator's template
//!   write of the next tier, over `ROLLOUT_UPGRADES` upgrades (default 20) of the demo cluster
//!   (two tier changes each). Target: under 50 ms at p99.
//! - Writes per reconcile in steady state: 10 Steady clusters resynced every 100 ms for
//!   3 seconds; API writes (audit log) divided by reconciles. Target: 0.
//!
//! Run: `cargo bench --bench rollout`.

use kube::ResourceExt;
use kube_sim::SimOptions;
use starrocks_model::component::Tier;
use starrocks_operator::controller::ControllerConfig;
use starrocks_operator::embedded::{Embedded, RunningOperator, retag_patch, steady_at};
use starrocks_operator::journal::{OpenOptions, SledJournal};
use starrocks_operator::witness;
use std::sync::Arc;
use std::time::Duration;

const DEMO: &str = include_str!("../deploy/examples/starrocks-cluster-demo.yaml");

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// An embedded cluster with 50 ms pod readiness and the operator running with `config`.
async fn start(
    config: ControllerConfig,
) -> Result<(Embedded, RunningOperator, tempfile::TempDir), Box<dyn std::error::Error>> {
    let embedded = Embedded::start(SimOptions {
        pod_ready_delay: Duration::from_millis(50),
        ..SimOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let (journal, _) = SledJournal::open(dir.path().join("journal"), OpenOptions::default())?;
    let operator = embedded.spawn_operator(Arc::new(journal), config);
    Ok((embedded, operator, dir))
}

async fn next_tier_latency(upgrades: usize) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let (embedded, operator, _dir) = start(ControllerConfig::default()).await?;
    let cluster = embedded.create_cluster(DEMO).await?;
    let (ns, name) = (cluster.namespace().unwrap_or_default(), cluster.name_any());
    let minute = Duration::from_secs(60);
    embedded
        .wait_for(&ns, &name, "Steady", minute, |c| steady_at(c, 1))
        .await?;
    let mut latencies = Vec::new();
    for i in 0..upgrades {
        let mark = embedded.sim.resource_version();
        let tag = format!("3.4.{i}");
        let patched = embedded
            .patch_cluster(&ns, &name, retag_patch(&cluster, &tag))
            .await?;
        let generation = patched.metadata.generation.unwrap_or(0);
        embedded
            .wait_for(&ns, &name, "Steady", minute, |c| steady_at(c, generation))
            .await?;
        embedded.wait_for_witness(minute).await;
        let writes: Vec<_> = witness::template_writes(&embedded.sim.audit(), &ns, &name)
            .into_iter()
            .filter(|w| w.resource_version > mark)
            .collect();
        for d in witness::next_tier_latencies(
            &writes,
            &embedded.samples(),
            &name,
            &[Tier::Be, Tier::Cn, Tier::Fe],
        ) {
            latencies.push(d.num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    operator.stop().await;
    embedded.shutdown().await;
    Ok(latencies)
}

async fn steady_writes_per_reconcile(
    clusters: usize,
) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let (embedded, operator, _dir) = start(ControllerConfig {
        resync: Duration::from_millis(100),
        ..ControllerConfig::default()
    })
    .await?;
    let mut names = Vec::new();
    for i in 0..clusters {
        let yaml = DEMO.replace("name: demo", &format!("name: demo-{i}"));
        let c = embedded.create_cluster(&yaml).await?;
        names.push((c.namespace().unwrap_or_default(), c.name_any()));
    }
    for (ns, name) in &names {
        embedded
            .wait_for(ns, name, "Steady", Duration::from_secs(60), |c| {
                steady_at(c, 1)
            })
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    embedded.sim.clear_audit();
    let before = operator.context.reconcile_count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reconciles = operator.context.reconcile_count() - before;
    let writes = embedded
        .sim
        .audit()
        .iter()
        .filter(|e| !matches!(e.verb.as_str(), "get" | "list" | "watch"))
        .count() as u64;
    operator.stop().await;
    embedded.shutdown().await;
    Ok((writes, reconciles))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special: both run.
    let upgrades = std::env::var("ROLLOUT_UPGRADES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut latencies = rt.block_on(next_tier_latency(upgrades))?;
    latencies.sort_by(f64::total_cmp);
    println!(
        "next-tier latency over {} tier changes ({upgrades} upgrades): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 50 ms)",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    let (writes, reconciles) = rt.block_on(steady_writes_per_reconcile(10))?;
    println!(
        "steady state: {writes} writes over {reconciles} reconciles of 10 clusters in 3 s = {:.3} writes per reconcile (target 0)",
        writes as f64 / reconciles.max(1) as f64
    );
    Ok(())
}
