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
    /// The operator's last apply per component that returned (with its generation and UID).
    pub applied: BTreeMap<Component, LastApply>,
    /// Applies decided and not yet reported back.
    pub in_flight: BTreeMap<Component, LastApply>,
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
        if let Some(pending) = self.in_flight.get(&component) {
            return Some((pending.template_hash.clone(), Some(pending.image.clone())));
        }
        let observed = self.observed.get(&component);
        if let Some(applied) = self.applied.get(&component) {
            let ahead = observed.is_none_or(|o| applied.newer_than(o));
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
            Event::ComponentRemoved { component, uid } => self.remove(*component, uid.as_deref()),
            Event::ApplyFinished {
                component,
                template_hash,
                generation,
                uid,
            } => {
                if let Some(pending) = self.in_flight.get(component)
                    && pending.template_hash == *template_hash
                    && let Some(mut landed) = self.in_flight.remove(component)
                {
                    landed.generation = Some(*generation);
                    landed.uid = uid.clone();
                    self.applied.insert(*component, landed);
                }
            }
            Event::ApplyFailed {
                component,
                template_hash,
                ..
            } => {
                // The previous apply that landed stays known: the object is still as it left it.
                if self
                    .in_flight
                    .get(component)
                    .is_some_and(|a| a.template_hash == *template_hash)
                {
                    self.in_flight.remove(component);
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
                        let uid = self.observed.get(&component).and_then(|o| o.uid.clone());
                        self.remove(component, uid.as_deref());
                        // A fresh listing without the object: nothing of ours exists.
                        self.applied.remove(&component);
                    }
                }
                self.observed = observations.clone();
                // The fresh listing is the truth about which objects exist: an apply record of
                // an object that is no longer there is dropped.
                self.applied.retain(|c, a| {
                    observations
                        .get(c)
                        .is_some_and(|o| a.uid.is_none() || o.uid == a.uid)
                });
                self.paused = *paused;
                // Applies in flight died with the previous process; what landed is in the
                // fresh observation.
                self.in_flight.clear();
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
        if self
            .observed
            .get(&component)
            .is_some_and(|known| known.uid != obs.uid)
        {
            // Another object than the one whose deletion was requested.
            self.deleting.remove(&component);
        }
        self.observed.insert(component, obs.clone());
    }

    /// The object `uid` of `component` is gone: forget its observation and the operator's
    /// apply that hit it. A removal that names another object (or none, when the operator's
    /// own create has not been seen yet) says nothing about the object the operator knows,
    /// and leaves it alone.
    fn remove(&mut self, component: Component, uid: Option<&str>) {
        if let Some(uid) = uid
            && !self.tombstones.iter().any(|t| t == uid)
        {
            if self.tombstones.len() == TOMBSTONE_CAPACITY {
                self.tombstones.pop_front();
            }
            self.tombstones.push_back(uid.to_string());
        }
        if self
            .observed
            .get(&component)
            .is_some_and(|o| o.uid.as_deref() == uid)
        {
            self.observed.remove(&component);
        }
        if self
            .applied
            .get(&component)
            .is_some_and(|a| a.uid.as_deref() == uid)
        {
            self.applied.remove(&component);
        }
        if !self.observed.contains_key(&component) {
            self.deleting.remove(&component);
        }
    }
}
