//! What the machine knows of the world: the desired spec, the latest trustworthy observation
//! of each component, and its own applies. Events are absorbed here before the state machine
//! decides; this is the only place that filters stale or duplicated observations.

use crate::component::Component;
use crate::event::Event;
use crate::gate::LastApply;
use crate::observe::{ClusterObservation, ComponentObservation};
use crate::spec::DesiredCluster;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many deleted object UIDs are remembered to drop their late observations.
pub const TOMBSTONE_CAPACITY: usize = 32;

/// The machine's view of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Knowledge {
    /// The latest desired state; `None` before the first spec.
    pub desired: Option<DesiredCluster>,
    /// The latest trusted observation per existing component.
    pub observed: ClusterObservation,
    /// The operator's own last apply per component.
    pub applied: BTreeMap<Component, LastApply>,
    /// Components whose deletion was requested and not yet observed.
    pub deleting: BTreeSet<Component>,
    /// Whether the pause annotation is set.
    pub paused: bool,
    /// UIDs of workload objects seen deleted; late observations of them are dropped.
    pub tombstones: VecDeque<String>,
}

impl Knowledge {
    /// Where the cluster is for `component`: the template hash and image of the operator's own
    /// apply when the cache has not caught up with it yet (in flight, or returned with a
    /// generation the cache has not reached), else the observed ones. `None` when the
    /// component does not exist as far as the machine knows.
    pub fn current_template(&self, component: Component) -> Option<(String, Option<String>)> {
        let observed = self.observed.get(&component);
        if let Some(applied) = self.applied.get(&component) {
            let ahead = match (applied.generation, observed) {
                (None, _) | (_, None) => true,
                (Some(g), Some(o)) => o.generation < g,
            };
            if ahead {
                return Some((applied.template_hash.clone(), Some(applied.image.clone())));
            }
        }
        observed.map(|o| (o.template_hash.clone().unwrap_or_default(), o.image.clone()))
    }

    /// Folds an event into the knowledge. Observations that go backwards for the same object
    /// (lower `metadata.generation`, or the same generation with a lower
    /// `status.observedGeneration`) and observations of deleted objects are ignored, so late,
    /// duplicated and reordered deliveries never make the machine believe an older state.
    pub fn absorb(&mut self, event: &Event) {
        match event {
            Event::SpecChanged { spec } => self.desired = Some(spec.clone()),
            Event::Observed {
                component,
                observation,
            } => self.observe(*component, observation),
            Event::ComponentRemoved { component } => self.remove(*component),
            Event::ApplyFinished {
                component,
                template_hash,
                generation,
            } => {
                if let Some(record) = self.applied.get_mut(component)
                    && record.template_hash == *template_hash
                {
                    record.generation = Some(*generation);
                }
            }
            Event::ApplyFailed {
                component,
                template_hash,
                ..
            } => {
                if self
                    .applied
                    .get(component)
                    .is_some_and(|a| a.template_hash == *template_hash && a.generation.is_none())
                {
                    self.applied.remove(component);
                }
            }
            Event::Paused => self.paused = true,
            Event::Resumed => self.paused = false,
            Event::Restarted {
                spec,
                observations,
                paused,
            } => {
                self.desired = Some(spec.clone());
                for component in Component::ALL {
                    if !observations.contains_key(&component) {
                        self.remove(component);
                    }
                }
                self.observed = observations.clone();
                self.paused = *paused;
                // Applies in flight died with the previous process; what landed is in the
                // fresh observation.
                self.applied.retain(|_, a| a.generation.is_some());
                self.deleting.clear();
            }
            Event::Resync => {}
        }
    }

    fn observe(&mut self, component: Component, obs: &ComponentObservation) {
        if let Some(uid) = &obs.uid
            && self.tombstones.contains(uid)
        {
            return;
        }
        if let Some(known) = self.observed.get(&component)
            && known.uid == obs.uid
            && (obs.generation, obs.observed_generation)
                < (known.generation, known.observed_generation)
        {
            return;
        }
        self.observed.insert(component, obs.clone());
    }

    fn remove(&mut self, component: Component) {
        if let Some(gone) = self.observed.remove(&component)
            && let Some(uid) = gone.uid
        {
            if self.tombstones.len() == TOMBSTONE_CAPACITY {
                self.tombstones.pop_front();
            }
            self.tombstones.push_back(uid);
        }
        self.applied.remove(&component);
        self.deleting.remove(&component);
    }
}
