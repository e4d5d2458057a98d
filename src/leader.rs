//! Leader election with a `coordination.k8s.io/v1` Lease (kube-lease-manager): only the leader
//! runs the controller (and so reconciles and writes the journal). A standby waits; when the
//! leader stops renewing the Lease (it died, or lost its connection), the standby takes over
//! within the lease duration and resumes every cluster from its CR status, its journal (if it
//! has one) and a fresh observation (the model's `Restarted` event).

use crate::controller::{Caches, Operator};
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where and how to hold the Lease.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// Name of the Lease.
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// This instance's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal (whole seconds, at least 2).
    pub duration: Duration,
    /// How long before expiry the holder renews (whole seconds, at least 1, below `duration`).
    pub grace: Duration,
}

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be created or read.
    #[error(
        "leader election on Lease {namespace}/{name} failed: {source}; check that the operator \
         may get, create and patch leases in {namespace}"
    )]
    Lease {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// What the lease manager said.
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
}

/// What `/readyz` reports: ready when this instance is a standby (another instance holds the
/// Lease) or when it leads and its caches are synced.
#[derive(Default)]
pub struct Readiness {
    elected: AtomicBool,
    leading: AtomicBool,
    caches: Mutex<Option<Caches>>,
}

impl Readiness {
    /// Readiness without leader election: ready once `caches` are synced.
    pub fn set_caches(&self, caches: Caches) {
        *crate::lock(&self.caches) = Some(caches);
    }

    /// Whether this instance currently leads (always true without leader election once
    /// started).
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// Whether the instance is ready to serve.
    pub fn ready(&self) -> bool {
        if self.elected.load(Ordering::Relaxed) && !self.leading() {
            return true;
        }
        crate::lock(&self.caches)
            .as_ref()
            .is_some_and(Caches::ready)
    }
}

/// Runs `build()`'s operator whenever this instance holds the Lease, until `shutdown`.
/// Leadership lost: the operator is stopped at once and the instance goes back to standby.
///
/// # Errors
/// [`LeaderError::Lease`] when the Lease cannot be set up.
pub async fn run_elected(
    client: Client,
    election: LeaderElection,
    readiness: Arc<Readiness>,
    mut build: impl FnMut() -> Operator,
    shutdown: impl Future<Output = ()>,
) -> Result<(), LeaderError> {
    let lease_error = |source| LeaderError::Lease {
        namespace: election.namespace.clone(),
        name: election.lease_name.clone(),
        source,
    };
    let duration = election.duration.as_secs().max(2);
    let grace = election.grace.as_secs().clamp(1, duration - 1);
    let manager = LeaseManagerBuilder::new(client, &election.lease_name)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(duration)
        .with_grace(grace)
        .build()
        .await
        .map_err(lease_error)?;
    let (mut leader, task) = manager.watch().await;
    // Aborted when the elected run ends or is dropped, so a killed instance stops renewing.
    let renewals = crate::AbortOnDrop::new(task);
    readiness.elected.store(true, Ordering::Relaxed);
    tokio::pin!(shutdown);
    loop {
        tracing::info!(identity = %election.identity, "standing by for the Lease");
        tokio::select! {
            () = &mut shutdown => break,
            changed = leader.wait_for(|l| *l) => if changed.is_err() { break },
        }
        tracing::info!(identity = %election.identity, "leading: starting the controller");
        let operator = build();
        readiness.set_caches(operator.context().caches.clone());
        readiness.leading.store(true, Ordering::Relaxed);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut running = tokio::spawn(operator.run(async move {
            let _ = stopped.await;
        }));
        let mut done = false;
        tokio::select! {
            () = &mut shutdown => done = true,
            _ = leader.wait_for(|l| !*l) => {
                tracing::warn!(identity = %election.identity, "lost the Lease: stopping the controller");
            }
            _ = &mut running => {}
        }
        readiness.leading.store(false, Ordering::Relaxed);
        let _ = stop.send(());
        let _ = running.await;
        if done {
            break;
        }
    }
    // Dropping the receiver makes the lease manager release the Lease for a quick handover.
    drop(leader);
    let _ = tokio::time::timeout(Duration::from_secs(5), renewals.into_inner()).await;
    Ok(())
}
