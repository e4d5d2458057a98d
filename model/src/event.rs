//! The typed inputs of the lifecycle machine.

use crate::component::Component;
use crate::observe::{ClusterObservation, ComponentObservation};
use crate::spec::DesiredCluster;
use serde::{Deserialize, Serialize};

/// Something the shell saw or did. Events carry no clock: the journal record that wraps an
/// event carries its time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Event {
    /// The StarRocksCluster spec changed (a new `metadata.generation`, or the referenced config
    /// content changed the rendered template hashes).
    SpecChanged {
        /// The newly rendered desired state.
        spec: DesiredCluster,
    },
    /// A component's workload was observed with a new status or spec.
    Observed {
        /// Which component.
        component: Component,
        /// What the cache shows.
        observation: ComponentObservation,
    },
    /// A component's workload disappeared from the cache.
    ComponentRemoved {
        /// Which component.
        component: Component,
        /// `metadata.uid` of the object that disappeared; `None` when unknown.
        uid: Option<String>,
    },
    /// A server-side apply of a component returned.
    ApplyFinished {
        /// Which component.
        component: Component,
        /// The template hash that was applied.
        template_hash: String,
        /// `metadata.generation` of the workload as returned by the API server.
        generation: i64,
        /// `metadata.uid` of the workload as returned by the API server.
        uid: Option<String>,
    },
    /// A server-side apply of a component failed; it is retried on the next resync.
    ApplyFailed {
        /// Which component.
        component: Component,
        /// The template hash whose apply failed.
        template_hash: String,
        /// What the API server or the client said.
        reason: String,
    },
    /// The pause annotation was set on the cluster.
    Paused,
    /// The pause annotation was removed.
    Resumed,
    /// The operator (re)started, or a new leader took over, and adopts the cluster from the CR
    /// and a fresh listing of its objects. Status and observation win over anything restored.
    Restarted {
        /// The desired state rendered from the current CR.
        spec: DesiredCluster,
        /// Every component workload that exists, freshly listed.
        observations: ClusterObservation,
        /// Whether the pause annotation is set.
        paused: bool,
    },
    /// A periodic resync: re-evaluate and retry anything that failed.
    Resync,
}

impl Event {
    /// A short name for logs and metrics (`specChanged`, `observed`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SpecChanged { .. } => "specChanged",
            Event::Observed { .. } => "observed",
            Event::ComponentRemoved { .. } => "componentRemoved",
            Event::ApplyFinished { .. } => "applyFinished",
            Event::ApplyFailed { .. } => "applyFailed",
            Event::Paused => "paused",
            Event::Resumed => "resumed",
            Event::Restarted { .. } => "restarted",
            Event::Resync => "resync",
        }
    }

    /// Events that only bring news of the world and never change the plan by themselves; a
    /// rollout in progress advances on them.
    pub fn is_progress(&self) -> bool {
        matches!(
            self,
            Event::Observed { .. }
                | Event::ComponentRemoved { .. }
                | Event::ApplyFinished { .. }
                | Event::ApplyFailed { .. }
                | Event::Resync
        )
    }
}
