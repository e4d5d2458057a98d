//! The rollout gate: has a component finished rolling out to the operator's last apply?
//!
//! The upstream operator's `waitForFullRollout` (upstream PRs #704, #707, #801) misses
//! `observedGeneration`, so a cache that has not yet seen the operator's write lets the next
//! tier start early. This gate adds that check and the template check, and names the first
//! condition that fails so status messages and logs can say what is awaited.

use crate::observe::ComponentObservation;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The operator's own knowledge of its last apply of a component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastApply {
    /// The template hash that was applied.
    pub template_hash: String,
    /// The image of that template.
    pub image: String,
    /// `metadata.generation` the API server returned; `None` while the apply is in flight.
    pub generation: Option<i64>,
    /// `metadata.uid` the API server returned; `None` while the apply is in flight.
    #[serde(default)]
    pub uid: Option<String>,
}

impl LastApply {
    /// Whether this apply is newer than what `obs` shows: still in flight, made to another
    /// object (a recreated one, by `metadata.uid`), or returned a generation the observation
    /// has not reached.
    pub fn newer_than(&self, obs: &ComponentObservation) -> bool {
        match self.generation {
            None => true,
            Some(g) => (self.uid.is_some() && obs.uid != self.uid) || obs.generation < g,
        }
    }
}

/// Why the gate did not pass. Variants are in the order the gate checks them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "condition")]
pub enum GateFailure {
    /// Condition 1: the workload object does not exist (in the cache).
    Missing,
    /// Condition 1: the object does not carry the target pod template (hash annotation).
    TemplateNotApplied {
        /// The hash the rollout waits for.
        want: String,
        /// The hash on the observed object.
        have: Option<String>,
    },
    /// Condition 1: the operator's apply has not returned yet.
    ApplyInFlight,
    /// Condition 1: `status.observedGeneration` is below the generation of the operator's own
    /// last apply: the cache or the workload controller has not seen the write.
    StaleObservation {
        /// `status.observedGeneration`.
        observed_generation: Option<i64>,
        /// Generation returned by the operator's apply.
        applied_generation: i64,
    },
    /// Condition 2: `metadata.generation != status.observedGeneration`.
    GenerationNotObserved {
        /// `metadata.generation`.
        generation: i64,
        /// `status.observedGeneration`.
        observed_generation: Option<i64>,
    },
    /// Condition 3: `status.currentRevision != status.updateRevision`.
    RevisionMismatch {
        /// `status.currentRevision`.
        current: Option<String>,
        /// `status.updateRevision`.
        update: Option<String>,
    },
    /// Condition 4: not `status.replicas == readyReplicas == updatedReplicas == spec.replicas`.
    ReplicasNotReady {
        /// `status.replicas`.
        current: i32,
        /// `status.readyReplicas`.
        ready: i32,
        /// `status.updatedReplicas`.
        updated: i32,
        /// `spec.replicas`.
        desired: i32,
    },
    /// Condition 5: the component's Service has no ready endpoint.
    NoReadyEndpoints,
}

impl GateFailure {
    /// The design's number of the condition that failed (1 to 5).
    pub fn condition(&self) -> u8 {
        match self {
            GateFailure::Missing
            | GateFailure::TemplateNotApplied { .. }
            | GateFailure::ApplyInFlight
            | GateFailure::StaleObservation { .. } => 1,
            GateFailure::GenerationNotObserved { .. } => 2,
            GateFailure::RevisionMismatch { .. } => 3,
            GateFailure::ReplicasNotReady { .. } => 4,
            GateFailure::NoReadyEndpoints => 5,
        }
    }

    /// A short stable label for metrics (`gate_waits_total{condition=...}`).
    pub fn label(&self) -> &'static str {
        match self {
            GateFailure::Missing => "missing",
            GateFailure::TemplateNotApplied { .. } => "template_not_applied",
            GateFailure::ApplyInFlight => "apply_in_flight",
            GateFailure::StaleObservation { .. } => "stale_observation",
            GateFailure::GenerationNotObserved { .. } => "generation_not_observed",
            GateFailure::RevisionMismatch { .. } => "revision_mismatch",
            GateFailure::ReplicasNotReady { .. } => "replicas_not_ready",
            GateFailure::NoReadyEndpoints => "no_ready_endpoints",
        }
    }
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateFailure::Missing => write!(f, "the workload does not exist yet"),
            GateFailure::TemplateNotApplied { want, have } => write!(
                f,
                "the pod template is {} and the rollout waits for {want}",
                have.as_deref().unwrap_or("unknown")
            ),
            GateFailure::ApplyInFlight => write!(f, "the operator's apply has not returned yet"),
            GateFailure::StaleObservation {
                observed_generation,
                applied_generation,
            } => write!(
                f,
                "status.observedGeneration {} is below the applied generation {applied_generation}",
                fmt_opt(observed_generation)
            ),
            GateFailure::GenerationNotObserved {
                generation,
                observed_generation,
            } => write!(
                f,
                "metadata.generation {generation} is not yet observed (status.observedGeneration {})",
                fmt_opt(observed_generation)
            ),
            GateFailure::RevisionMismatch { current, update } => write!(
                f,
                "status.currentRevision {} differs from status.updateRevision {}",
                current.as_deref().unwrap_or("unset"),
                update.as_deref().unwrap_or("unset")
            ),
            GateFailure::ReplicasNotReady {
                current,
                ready,
                updated,
                desired,
            } => write!(
                f,
                "{ready} ready and {updated} updated of {desired} replicas ({current} pods)"
            ),
            GateFailure::NoReadyEndpoints => write!(f, "the Service has no ready endpoint"),
        }
    }
}

fn fmt_opt(v: &Option<i64>) -> String {
    v.map_or_else(|| "unset".to_string(), |v| v.to_string())
}

/// Evaluates the rollout gate of one component against the template the rollout waits for.
///
/// All must hold (DESIGN.md, "The rollout gate"):
/// 1. the object exists; the operator's own last apply of it, whatever template it carried,
///    has returned, and both `metadata.generation` and `status.observedGeneration` in the
///    cache are `>=` the generation it returned (vacuous when the operator has no record of
///    an apply, e.g. after adopting a cluster: its caches were freshly listed); and the object
///    carries `target_hash`;
/// 2. `metadata.generation == status.observedGeneration`;
/// 3. `status.currentRevision == status.updateRevision`;
/// 4. `status.replicas == status.readyReplicas == status.updatedReplicas == spec.replicas`
///    (the design has the last three; `status.replicas` is added because a scale-down back to
///    a template whose revision equals `currentRevision` otherwise passes while a pod of an
///    intermediate revision is still there: found by the property tests);
/// 5. the component's Service has at least one ready endpoint.
///
/// Returns the first failing condition.
pub fn gate(
    observation: Option<&ComponentObservation>,
    target_hash: &str,
    last_apply: Option<&LastApply>,
) -> Result<(), GateFailure> {
    let obs = observation.ok_or(GateFailure::Missing)?;
    // The operator's own last apply, whatever template it carried: until the cache shows the
    // write and the controller has observed it, the observation says nothing about the
    // object as it is now.
    if let Some(applied) = last_apply {
        let applied_generation = applied.generation.ok_or(GateFailure::ApplyInFlight)?;
        if applied.newer_than(obs)
            || obs
                .observed_generation
                .is_none_or(|o| o < applied_generation)
        {
            return Err(GateFailure::StaleObservation {
                observed_generation: obs.observed_generation,
                applied_generation,
            });
        }
    }
    if obs.template_hash.as_deref() != Some(target_hash) {
        return Err(GateFailure::TemplateNotApplied {
            want: target_hash.to_string(),
            have: obs.template_hash.clone(),
        });
    }
    check_rolled_out(obs)
}

/// Conditions 2 to 5 of the gate, on their own: the workload's controller has finished
/// rolling out whatever template it carries.
pub fn check_rolled_out(obs: &ComponentObservation) -> Result<(), GateFailure> {
    if obs.observed_generation != Some(obs.generation) {
        return Err(GateFailure::GenerationNotObserved {
            generation: obs.generation,
            observed_generation: obs.observed_generation,
        });
    }
    if obs.current_revision != obs.update_revision {
        return Err(GateFailure::RevisionMismatch {
            current: obs.current_revision.clone(),
            update: obs.update_revision.clone(),
        });
    }
    if !(obs.status_replicas == obs.replicas
        && obs.ready_replicas == obs.updated_replicas
        && obs.updated_replicas == obs.replicas)
    {
        return Err(GateFailure::ReplicasNotReady {
            current: obs.status_replicas,
            ready: obs.ready_replicas,
            updated: obs.updated_replicas,
            desired: obs.replicas,
        });
    }
    if obs.ready_endpoints == 0 {
        return Err(GateFailure::NoReadyEndpoints);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rolled_out() -> ComponentObservation {
        ComponentObservation {
            uid: Some("u1".into()),
            generation: 3,
            observed_generation: Some(3),
            current_revision: Some("fe-7d9".into()),
            update_revision: Some("fe-7d9".into()),
            replicas: 3,
            status_replicas: 3,
            ready_replicas: 3,
            updated_replicas: 3,
            ready_endpoints: 3,
            template_hash: Some("h2".into()),
            image: Some("starrocks/fe-ubuntu:3.3.2".into()),
        }
    }

    fn applied(generation: Option<i64>) -> LastApply {
        LastApply {
            template_hash: "h2".into(),
            image: "starrocks/fe-ubuntu:3.3.2".into(),
            generation,
            uid: Some("u1".into()),
        }
    }

    #[test]
    fn passes_when_every_condition_holds() {
        assert_eq!(
            gate(Some(&rolled_out()), "h2", Some(&applied(Some(3)))),
            Ok(())
        );
        assert_eq!(gate(Some(&rolled_out()), "h2", None), Ok(()));
    }

    #[test]
    fn condition_1_missing_object() {
        assert_eq!(gate(None, "h2", None), Err(GateFailure::Missing));
    }

    #[test]
    fn condition_1_a_later_apply_of_another_template_makes_the_observation_stale() {
        // The cache shows the target fully rolled out, but the operator has since applied a
        // different template (a spec change that was reverted): the object is not at target.
        let other = LastApply {
            template_hash: "h9".into(),
            image: "starrocks/fe-ubuntu:3.4.0".into(),
            generation: Some(4),
            uid: Some("u1".into()),
        };
        let err = gate(Some(&rolled_out()), "h2", Some(&other)).unwrap_err();
        assert!(matches!(err, GateFailure::StaleObservation { .. }));
        let in_flight = LastApply {
            generation: None,
            ..other
        };
        assert_eq!(
            gate(Some(&rolled_out()), "h2", Some(&in_flight)),
            Err(GateFailure::ApplyInFlight)
        );
    }

    #[test]
    fn condition_1_template_not_applied() {
        let err = gate(Some(&rolled_out()), "h3", None).unwrap_err();
        assert_eq!(err.condition(), 1);
        assert!(matches!(err, GateFailure::TemplateNotApplied { .. }));
    }

    #[test]
    fn condition_1_apply_in_flight() {
        assert_eq!(
            gate(Some(&rolled_out()), "h2", Some(&applied(None))),
            Err(GateFailure::ApplyInFlight)
        );
    }

    #[test]
    fn condition_1_stale_cache_has_not_seen_the_write() {
        // The cache still shows generation 3 fully rolled out; the apply returned 4 (the
        // upstream race of PR #707).
        let err = gate(Some(&rolled_out()), "h2", Some(&applied(Some(4)))).unwrap_err();
        assert_eq!(
            err,
            GateFailure::StaleObservation {
                observed_generation: Some(3),
                applied_generation: 4
            }
        );
        assert_eq!(err.condition(), 1);
    }

    #[test]
    fn condition_2_generation_not_observed() {
        let mut obs = rolled_out();
        obs.generation = 4;
        let err = gate(Some(&obs), "h2", None).unwrap_err();
        assert_eq!(err.condition(), 2);
        assert!(err.to_string().contains("metadata.generation 4"));
    }

    #[test]
    fn condition_3_revisions_differ() {
        let mut obs = rolled_out();
        obs.update_revision = Some("fe-8a1".into());
        assert_eq!(gate(Some(&obs), "h2", None).unwrap_err().condition(), 3);
    }

    #[test]
    fn condition_4_replicas_not_ready_or_not_updated() {
        let mut obs = rolled_out();
        obs.ready_replicas = 2;
        assert_eq!(gate(Some(&obs), "h2", None).unwrap_err().condition(), 4);
        let mut obs = rolled_out();
        obs.updated_replicas = 2;
        assert_eq!(gate(Some(&obs), "h2", None).unwrap_err().condition(), 4);
        let mut obs = rolled_out();
        obs.replicas = 4;
        assert_eq!(gate(Some(&obs), "h2", None).unwrap_err().condition(), 4);
        // Scale-down in progress: an extra pod (of any revision) is still there.
        let mut obs = rolled_out();
        obs.status_replicas = 4;
        assert_eq!(gate(Some(&obs), "h2", None).unwrap_err().condition(), 4);
    }

    #[test]
    fn condition_5_no_ready_endpoint() {
        let mut obs = rolled_out();
        obs.ready_endpoints = 0;
        assert_eq!(
            gate(Some(&obs), "h2", None),
            Err(GateFailure::NoReadyEndpoints)
        );
    }
}
