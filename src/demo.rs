//! `starrocks-operator demo`: the operator against an embedded simulated cluster, through a
//! first deployment and an upgrade of the example cluster `deploy/examples/starrocks-cluster-demo.yaml`
//! (3 FE, 3 BE, 1 CN), with the transitions printed as they happen and, at the end, the
//! simulator's audit timeline of template writes checked for StarRocks' order.

use crate::controller::ControllerConfig;
use crate::embedded::{Embedded, EmbeddedError, retag_patch, steady_at};
use crate::journal::replay::actions_summary;
use crate::journal::{JournalError, OpenOptions, SledJournal};
use crate::witness::{self, Violation};
use kube::ResourceExt;
use kube_sim::SimOptions;
use starrocks_model::component::Tier;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The example cluster the demo deploys.
pub const DEMO_CLUSTER: &str = include_str!("../deploy/examples/starrocks-cluster-demo.yaml");
/// The image tag of the example.
pub const FROM_TAG: &str = "3.3.2";
/// The newer tag the demo upgrades every image to.
pub const TO_TAG: &str = "3.3.5";

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the journal is written (kept after the demo, for `replay`).
    pub journal: PathBuf,
    /// Simulated time from a pod's creation to Ready.
    pub pod_ready_delay: Duration,
    /// Upper bound of each phase (create, upgrade).
    pub phase_timeout: Duration,
}

/// What went wrong in the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The embedded cluster failed.
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// The journal could not be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The order was wrong.
    #[error("StarRocks' order was violated:\n{}", .0.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n"))]
    Order(Vec<Violation>),
    /// Writing to the terminal failed.
    #[error("writing the demo output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs the demo, printing to standard output. Returns once the upgrade reached Steady and the order
/// was checked.
///
/// # Errors
/// [`DemoError::Order`] when the audit log shows a wrong order; other variants when the
/// simulated cluster, the journal or the terminal fail, or a phase times out.
pub async fn run(options: DemoOptions) -> Result<(), DemoError> {
    let mut out = std::io::stdout();
    let started = Instant::now();
    let embedded = Embedded::start(SimOptions {
        pod_ready_delay: options.pod_ready_delay,
        ..SimOptions::default()
    })
    .await?;
    writeln!(
        out,
        "simulated cluster at {} (CRD installed)",
        embedded.sim.url()
    )?;
    let (journal, recovery) = SledJournal::open(&options.journal, OpenOptions::default())?;
    if let Some(recovery) = recovery {
        writeln!(out, "note: {recovery}")?;
    }
    let journal = Arc::new(journal);
    let operator = embedded.spawn_operator(journal, ControllerConfig::default());
    let mut records = operator.records.resubscribe();
    let printer = tokio::spawn(async move {
        while let Ok(entry) = records.recv().await {
            let r = &entry.record;
            if r.before == r.after && !r.actions.iter().any(|a| a.component().is_some()) {
                continue;
            }
            let line = format!(
                "[{:>6.2}s] {}: {} -> {} (on {}): {}",
                started.elapsed().as_secs_f64(),
                entry.cluster.name,
                r.before.name(),
                r.after.name(),
                r.event.kind(),
                actions_summary(&r.actions)
            );
            println!("{line}");
        }
    });

    let created = embedded.create_cluster(DEMO_CLUSTER).await?;
    let namespace = created.namespace().unwrap_or_default();
    let name = created.name_any();
    writeln!(
        out,
        "created StarRocksCluster {namespace}/{name} (3 FE, 3 BE, 1 CN, {FROM_TAG})"
    )?;
    let generation = created.metadata.generation.unwrap_or(1);
    embedded
        .wait_for(
            &namespace,
            &name,
            "Steady after the first deployment",
            options.phase_timeout,
            |c| steady_at(c, generation),
        )
        .await?;
    let create_done = embedded.sim.resource_version();
    writeln!(
        out,
        "[{:>6.2}s] Steady: first deployment done",
        started.elapsed().as_secs_f64()
    )?;

    let patched = embedded
        .patch_cluster(&namespace, &name, retag_patch(&created, TO_TAG))
        .await?;
    writeln!(
        out,
        "upgrading every image {FROM_TAG} -> {TO_TAG} (generation {})",
        patched.metadata.generation.unwrap_or(0)
    )?;
    let target = patched.metadata.generation.unwrap_or(0);
    embedded
        .wait_for(
            &namespace,
            &name,
            "Steady after the upgrade",
            options.phase_timeout,
            |c| steady_at(c, target),
        )
        .await?;
    writeln!(
        out,
        "[{:>6.2}s] Steady: upgrade done",
        started.elapsed().as_secs_f64()
    )?;
    operator.stop().await;
    printer.abort();

    // The witness follows watches; let it see every write before judging them (if it does
    // not catch up, the check below reports what it lacks).
    embedded
        .wait_for_witness(std::time::Duration::from_secs(30))
        .await;
    let audit = embedded.sim.audit();
    let samples = embedded.samples();
    let writes = witness::template_writes(&audit, &namespace, &name);
    let (create, upgrade): (Vec<_>, Vec<_>) = writes
        .into_iter()
        .partition(|w| w.resource_version <= create_done);
    writeln!(out, "\naudit log: pod template writes, first deployment")?;
    write!(out, "{}", witness::timeline(&create))?;
    writeln!(out, "audit log: pod template writes, upgrade")?;
    write!(out, "{}", witness::timeline(&upgrade))?;
    let mut violations = witness::check_first_deployment(&audit, &samples, &namespace, &name);
    violations.extend(witness::check_tier_order(
        &upgrade,
        &samples,
        &name,
        &[Tier::Be, Tier::Cn, Tier::Fe],
    ));
    embedded.shutdown().await;
    writeln!(out, "\njournal written to {}", options.journal.display())?;
    writeln!(
        out,
        "  replay it: starrocks-operator replay --journal {} --cluster {namespace}/{name}",
        options.journal.display()
    )?;
    if violations.is_empty() {
        writeln!(
            out,
            "order: OK (FE before BE/CN on creation; BE, then CN, then FE on upgrade) in {:.1} s",
            started.elapsed().as_secs_f64()
        )?;
        Ok(())
    } else {
        Err(DemoError::Order(violations))
    }
}
